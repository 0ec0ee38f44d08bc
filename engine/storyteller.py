"""Write a picture book's text from its pictures' captions: exactly one passage per picture, in order.

Each passage is generated on its own, conditioned on all captions, the author's hints and the end of
the story so far. That makes the one-passage-per-picture contract hold by construction (no parsing of
"Page 3:" out of one long answer, which small models get wrong), lets `retell` redo one passage alone,
and gives every passage its own seed derived from the story's seed, so any passage can be made again.

Works with an instruct model through its chat template, and with a plain continuation model (GPT-2
lineage) through a prompt that reads like the start of a picture book. Whatever the model writes is
cleaned; a passage that comes back empty is retried once with another derived seed, then replaced by a
plain sentence built from its caption, and `settings['fallbacks']` lists where that happened.
"""

from __future__ import annotations

import copy
import re
import threading
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from core.limits import (
    DEFAULT_AGE,
    DEFAULT_TEMPERATURE,
    DEFAULT_TONE,
    DEFAULT_WORDS,
    MAX_TITLE_CHARS,
    TONES,
)
from core.requests import check_story_request, clean_captions
from core.seeds import sub_seed
from engine.device import DeviceChoice, pick_device
from engine.errors import InputError
from engine.loading import hub_kwargs, loaded_model, oom_guard
from engine.profiles import Profile, get_profile, is_offline

TOP_P = 0.95
REPETITION_PENALTY = 1.1
CONTEXT_WORDS = 120  # how much of the story so far a passage sees
TITLE_MAX_NEW_TOKENS = 16

# torch's global RNG is shared by the whole process; seeding and sampling happen under one lock.
_GENERATE_LOCK = threading.Lock()

_END_MARKERS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>", "</s>")


@dataclass
class Story:
    title: str
    passages: list[str]
    seed: int
    settings: dict = field(default_factory=dict)
    raw: str = ""  # what the model wrote, before cleaning, passage by passage (a log)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Story:
        return cls(
            title=str(data.get("title", "")),
            passages=[str(p) for p in data.get("passages", [])],
            seed=int(data.get("seed", 0)),
            settings=dict(data.get("settings", {})),
            raw=str(data.get("raw", "")),
        )

    @property
    def text(self) -> str:
        return "\n\n".join(self.passages)


@dataclass
class LoadedStoryteller:
    model: Any  # `.model` lets the cache count its bytes
    tokenizer: Any


# --- validation -------------------------------------------------------------------------------


def _check_inputs(
    captions: Sequence[str], hints: str, tone: str, age: int, words_per_picture: int, temperature: float
) -> list[str]:
    cleaned = clean_captions(captions)
    check_story_request(
        len(cleaned),
        hints=hints or "",
        tone=tone,
        age=age,
        words_per_picture=words_per_picture,
        temperature=temperature,
    )
    return cleaned


def max_new_tokens_for(words_per_picture: int) -> int:
    # English runs about 1.3 tokens a word; leave room to finish the last sentence.
    return int(words_per_picture * 1.6) + 16


# --- prompts ----------------------------------------------------------------------------------


def _age_style(age: int) -> str:
    if age <= 5:
        return "very short sentences and simple, concrete words"
    if age <= 8:
        return "short sentences and everyday words"
    return "lively sentences and a richer vocabulary"


def _tail_words(text: str, limit: int = CONTEXT_WORDS) -> str:
    words = text.split()
    return " ".join(words[-limit:]) if len(words) > limit else text


def _caption_or_default(caption: str) -> str:
    return caption or "a picture"


def chat_messages(
    captions: list[str], index: int, *, hints: str, tone: str, age: int, words: int, before: str, after: str = ""
) -> list[dict]:
    system = (
        f"You write the text of children's picture books for a child of {age}, using {_age_style(age)}. "
        f"The tone is {TONES[tone]}. Write plain story prose only: no title, no heading, no list, "
        f"no notes to the reader."
    )
    lines = [f"The book has {len(captions)} picture{'s' if len(captions) != 1 else ''}:"]
    lines += [f"{n}. {_caption_or_default(c)}" for n, c in enumerate(captions, start=1)]
    if hints.strip():
        lines.append(f"The author's wishes for the story: {hints.strip()}")
    if before.strip():
        lines.append(f'The story so far ends: "{_tail_words(before)}"')
    if after.strip():
        lines.append(f'After this picture the story goes on: "{" ".join(after.split()[: CONTEXT_WORDS // 2])}"')
    where = (
        "Begin the story."
        if index == 0 and len(captions) > 1
        else "Tell the whole story."
        if len(captions) == 1
        else "End the story."
        if index == len(captions) - 1
        else "Carry the story on."
    )
    lines.append(f"Write the text for picture {index + 1} only, about {words} words in one paragraph. {where}")
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n".join(lines)}]


def plain_prompt(captions: list[str], index: int, *, hints: str, tone: str, age: int, passages: list[str]) -> str:
    """A prompt a continuation model completes: the book so far, then the next picture's label."""
    head = f"A {TONES[tone].split(',')[0]} picture book story for {age}-year-old children."
    if hints.strip():
        head += f"\nWhat the story is about: {hints.strip()}"
    parts = [head, ""]
    # Earlier pictures keep their caption; only the last two keep their text, so the prompt stays short.
    for n in range(index):
        parts.append(f"Picture {n + 1}: {_caption_or_default(captions[n])}.")
        if n >= index - 2 and n < len(passages) and passages[n]:
            parts.append(_tail_words(passages[n], CONTEXT_WORDS // 2))
        parts.append("")
    parts.append(f"Picture {index + 1}: {_caption_or_default(captions[index])}.")
    return "\n".join(parts) + "\n"


# --- cleaning ---------------------------------------------------------------------------------

_SPECIAL_TOKEN = re.compile(r"<\|[^|>]{0,40}\|>|</?s>|\[/?INST\]|<start_of_turn>|<end_of_turn>|<<SYS>>|<</SYS>>")
_ROLE_PREFIX = re.compile(r"^\s*(?:assistant|user|system|narrator|model|answer|response)\s*(?::|\n)\s*", re.IGNORECASE)
_LABEL_PREFIX = re.compile(r"^\s*(?:(?:picture|page|passage|part|text|story)\s*\d*\s*[:.)\-–]\s*)+", re.IGNORECASE)
_NEXT_LABEL = re.compile(
    r"\n\s*(?:picture|page|passage|part|title)\s*\d*\s*[:.)]|\n\s*(?:user|assistant|system)\s*[:\n]", re.IGNORECASE
)
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*")
_LETTER = re.compile(r"[^\W\d_]")


def _strip_controls(text: str) -> str:
    out = []
    for ch in text:
        if ch in "\n\t":
            out.append(ch)
        elif ch == "\ufffd" or unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs"):
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def clean_passage(text: str, *, max_words: int | None = None, plain: bool = False) -> str:
    """One paragraph of story text out of whatever the model wrote; '' when nothing usable is left."""
    text = _strip_controls(text)
    text = _SPECIAL_TOKEN.sub("\n", text)
    text = text.replace("\r", "\n")
    # Drop anything after the model starts on the next picture or plays the user's part.
    text = _NEXT_LABEL.split(text.strip(), maxsplit=1)[0]
    if plain:
        # A continuation model's passage ends at its paragraph.
        paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
        text = paragraphs[0] if paragraphs else ""
    previous = None
    while previous != text:
        previous = text
        text = _ROLE_PREFIX.sub("", text)
        text = _LABEL_PREFIX.sub("", text)
    text = re.sub(r"[#*_`]{1,3}", "", text)  # markdown emphasis and headings
    text = re.sub(r"\s+", " ", text).strip()
    text = text.strip('"“”').strip()
    if max_words is not None:
        words = text.split()
        if len(words) > max_words:
            text = " ".join(words[:max_words])
    text = _drop_unfinished_sentence(text)
    return text if _LETTER.search(text) else ""


def _drop_unfinished_sentence(text: str) -> str:
    ends = list(_SENTENCE_END.finditer(text))
    if not ends:
        return text
    last = ends[-1].end()
    tail = text[last:]
    if _LETTER.search(tail) and _LETTER.search(text[:last]):
        return text[:last].strip()
    return text


def clean_title(text: str) -> str:
    text = _strip_controls(text)
    text = _SPECIAL_TOKEN.sub("\n", text)
    text = _ROLE_PREFIX.sub("", text.strip())
    text = text.strip().split("\n")[0]
    text = re.sub(r"^\s*(?:title|book title)\s*[:\-]\s*", "", text, flags=re.IGNORECASE)
    text = re.sub(r"[#*_`]", "", text)
    text = re.sub(r"\s+", " ", text).strip()
    previous = None
    while previous != text:
        previous = text
        text = text.strip(" \"'“”‘’").rstrip(".,;:")
    return text


def _title_is_usable(text: str) -> bool:
    words = text.split()
    if not 1 <= len(words) <= 10 or len(text) > MAX_TITLE_CHARS:
        return False
    visible = [ch for ch in text if not ch.isspace()]
    letters = sum(1 for ch in visible if _LETTER.match(ch))
    return letters / len(visible) >= 0.8 and any(len(w) >= 3 and _LETTER.search(w) for w in words)


_SMALL_WORDS = {"a", "an", "the", "and", "or", "of", "on", "in", "at", "to", "with", "by", "for", "from"}
_CAPTION_LEADS = re.compile(
    r"^(?:there (?:is|are)|this is|it is|an? (?:picture|photo|image|drawing|painting) of)\s+", re.IGNORECASE
)


def derived_title(captions: list[str]) -> str:
    """A title from the first caption: 'a dog running on the beach' -> 'The Dog Running on the Beach'."""
    caption = next((c for c in captions if _LETTER.search(c or "")), "")
    text = _CAPTION_LEADS.sub("", re.sub(r"[^\w\s'-]", " ", caption).strip())
    words = [w for w in text.split() if w]
    while words and words[0].lower() in _SMALL_WORDS:
        words = words[1:]
    words = words[:6]
    while words and words[-1].lower() in _SMALL_WORDS:
        words = words[:-1]
    if not words:
        return "A Picture Story"
    titled = [w if w.lower() in _SMALL_WORDS and i else w[:1].upper() + w[1:] for i, w in enumerate(words)]
    return "The " + " ".join(titled)


def caption_sentence(caption: str) -> str:
    """The plain sentence used when the model gives nothing usable for a picture."""
    caption = caption.strip().rstrip(".!?")
    if not caption:
        return "The story goes on in this picture."
    return f"In this picture, there is {caption}."


# --- the storyteller --------------------------------------------------------------------------


class Storyteller:
    """`Storyteller().tell(captions)` -> Story with exactly one passage per caption."""

    def __init__(
        self,
        ref: str | None = None,
        profile: Profile | str | None = None,
        device: DeviceChoice | str | None = None,
        chat: bool | None = None,
    ):
        if not isinstance(profile, Profile):
            profile = get_profile(profile)
        self.profile = profile
        self.ref = ref or profile.model("storyteller")
        self.choice = device if isinstance(device, DeviceChoice) else pick_device(device)
        self.chat = chat  # None: use the chat template when the tokenizer has one

    def _load(self, location: str) -> LoadedStoryteller:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(location, local_files_only=is_offline())
        model = AutoModelForCausalLM.from_pretrained(location, dtype=self.choice.dtype, **hub_kwargs())
        model.to(self.choice.device).eval()
        return LoadedStoryteller(model=model, tokenizer=tokenizer)

    @contextmanager
    def loaded(self) -> Iterator[LoadedStoryteller]:
        """The model and its tokenizer from the shared cache (loaded the first time), pinned for the block."""
        with loaded_model("storyteller", self.ref, self.choice, self._load) as loaded:
            yield loaded

    def _uses_chat(self, loaded: LoadedStoryteller) -> bool:
        if self.chat is not None:
            return self.chat and bool(getattr(loaded.tokenizer, "chat_template", None))
        return bool(getattr(loaded.tokenizer, "chat_template", None))

    # -- public ----------------------------------------------------------------------------

    def tell(
        self,
        captions: Sequence[str],
        *,
        hints: str = "",
        tone: str = DEFAULT_TONE,
        age: int = DEFAULT_AGE,
        words_per_picture: int = DEFAULT_WORDS,
        temperature: float = DEFAULT_TEMPERATURE,
        seed: int = 0,
        title: str | None = None,
        progress: Callable[[int, int], None] | None = None,
        on_passage: Callable[[int, str], None] | None = None,
    ) -> Story:
        """Write the story: passage i tells picture i. progress(done, total) may raise Cancelled to stop.

        on_passage(index, text) is called as each passage is finished (cleaned, or replaced by its
        caption's sentence), before progress, with the text the returned Story holds: a caller can
        save each passage as it arrives, and keep the ones written before a cancel.
        """
        captions = _check_inputs(captions, hints, tone, age, words_per_picture, temperature)
        hints = (hints or "").strip()
        seed = int(seed)
        given_title = self._check_title(title)
        max_new = max_new_tokens_for(words_per_picture)
        passages: list[str] = []
        raws: list[str] = []
        passage_seeds: list[int] = []
        fallbacks: list[int] = []
        retried: list[int] = []
        with loaded_model("storyteller", self.ref, self.choice, self._load) as loaded:
            chat = self._uses_chat(loaded)
            for index in range(len(captions)):
                seeds = [sub_seed(seed, "passage", index, attempt) for attempt in range(2)]
                text, raw, used_seed, attempts = self._write_passage(
                    loaded,
                    chat,
                    captions,
                    index,
                    passages,
                    hints=hints,
                    tone=tone,
                    age=age,
                    words=words_per_picture,
                    max_new=max_new,
                    temperature=float(temperature),
                    seeds=seeds,
                )
                if attempts > 1:
                    retried.append(index)
                if not text:
                    fallbacks.append(index)
                    text = caption_sentence(captions[index])
                passages.append(text)
                raws.append(f"=== picture {index + 1} ===\n{raw}")
                passage_seeds.append(used_seed)
                if on_passage is not None:
                    on_passage(index, text)
                if progress is not None:
                    progress(index + 1, len(captions))
            if given_title:
                story_title, title_source = given_title, "given"
            else:
                story_title, title_raw = self._write_title(
                    loaded, chat, captions, passages, hints, float(temperature), sub_seed(seed, "title")
                )
                raws.append(f"=== title ===\n{title_raw}")
                title_source = "generated" if story_title else "derived"
                story_title = story_title or derived_title(captions)

        settings = {
            "model": self.ref,
            "chat": chat,
            "device": self.choice.device,
            "dtype": str(self.choice.dtype).removeprefix("torch."),
            "seed": seed,
            "temperature": float(temperature),
            "top_p": TOP_P,
            "repetition_penalty": REPETITION_PENALTY,
            "tone": tone,
            "age": age,
            "words_per_picture": words_per_picture,
            "max_new_tokens": max_new,
            "hints": hints,
            "captions": captions,
            "passage_seeds": passage_seeds,
            "fallbacks": fallbacks,
            "retried": retried,
            "retold": {},
            "title_source": title_source,
        }
        return Story(title=story_title, passages=passages, seed=seed, settings=settings, raw="\n\n".join(raws))

    def retell(
        self,
        story: Story,
        index: int,
        *,
        seed: int | None = None,
        temperature: float | None = None,
        hints: str | None = None,
    ) -> Story:
        """A new Story in which only passage `index` is written again, with its own derived seed.

        The passage sees the story before it and the start of the one after it. Without a seed, the
        n-th retelling of a passage uses sub_seed(story.seed, 'retell', index, n), so retelling is
        reproducible too. A story made at temperature 0 is retold at the default temperature, since
        greedy decoding would write the same passage again.
        """
        settings = copy.deepcopy(story.settings)
        captions = list(settings.get("captions") or [])
        if len(captions) != len(story.passages):
            raise InputError("This story does not record one caption per passage, so a passage cannot be retold.")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(story.passages):
            raise InputError(
                f"There is no passage {index + 1 if isinstance(index, int) else index} "
                f"in this story of {len(story.passages)}."
            )
        hints = settings.get("hints", "") if hints is None else hints
        tone = settings.get("tone", DEFAULT_TONE)
        age = int(settings.get("age", DEFAULT_AGE))
        words = int(settings.get("words_per_picture", DEFAULT_WORDS))
        if temperature is None:
            temperature = float(settings.get("temperature", DEFAULT_TEMPERATURE)) or DEFAULT_TEMPERATURE
        captions = _check_inputs(captions, hints, tone, age, words, temperature)
        retold = {str(k): int(v) for k, v in (settings.get("retold") or {}).items()}
        count = retold.get(str(index), 0) + 1
        if seed is None:
            seeds = [sub_seed(story.seed, "retell", index, count, attempt) for attempt in range(2)]
        else:
            seeds = [int(seed), sub_seed(int(seed), "retell", index, 1)]
        max_new = max_new_tokens_for(words)

        with loaded_model("storyteller", self.ref, self.choice, self._load) as loaded:
            chat = self._uses_chat(loaded)
            text, raw, used_seed, attempts = self._write_passage(
                loaded,
                chat,
                captions,
                index,
                story.passages[:index],
                hints=hints.strip(),
                tone=tone,
                age=age,
                words=words,
                max_new=max_new,
                temperature=float(temperature),
                seeds=seeds,
                after=" ".join(story.passages[index + 1 : index + 2]),
                avoid=story.passages[index],
            )

        fallbacks = [i for i in settings.get("fallbacks", []) if i != index]
        if not text:
            fallbacks.append(index)
            text = caption_sentence(captions[index])
        passages = list(story.passages)
        passages[index] = text
        passage_seeds = list(settings.get("passage_seeds") or [None] * len(passages))
        passage_seeds[index] = used_seed
        retold[str(index)] = count
        settings.update(
            {"passage_seeds": passage_seeds, "fallbacks": sorted(fallbacks), "retold": retold, "hints": hints.strip()}
        )
        settings.setdefault("retell_settings", {})[str(index)] = {
            "model": self.ref,
            "temperature": float(temperature),
            "seed": used_seed,
            "attempts": attempts,
        }
        raw = story.raw + f"\n\n=== picture {index + 1}, retold {count} ===\n{raw}"
        return Story(title=story.title, passages=passages, seed=story.seed, settings=settings, raw=raw)

    # -- steps -----------------------------------------------------------------------------

    @staticmethod
    def _check_title(title: str | None) -> str:
        title = re.sub(r"\s+", " ", title or "").strip()
        if len(title) > MAX_TITLE_CHARS:
            raise InputError(f"The title may be at most {MAX_TITLE_CHARS} characters long.")
        return title

    def _write_passage(
        self,
        loaded: LoadedStoryteller,
        chat: bool,
        captions: list[str],
        index: int,
        passages: list[str],
        *,
        hints: str,
        tone: str,
        age: int,
        words: int,
        max_new: int,
        temperature: float,
        seeds: list[int],
        after: str = "",
        avoid: str | None = None,
    ) -> tuple[str, str, int, int]:
        """(clean text or '', raw text, seed used, attempts made): the next seed only if one comes back empty."""
        if chat:
            before = " ".join(p for p in passages[:index] if p)
            prompt = chat_messages(
                captions, index, hints=hints, tone=tone, age=age, words=words, before=before, after=after
            )
        else:
            prompt = plain_prompt(captions, index, hints=hints, tone=tone, age=age, passages=passages)
        raw_parts: list[str] = []
        text, used = "", seeds[0]
        for passage_seed in seeds:
            raw = self._generate(loaded, prompt, max_new, temperature, passage_seed)
            raw_parts.append(raw)
            used = passage_seed
            text = clean_passage(raw, max_words=int(words * 1.5) + 10, plain=not chat)
            if text and text != avoid:
                break
        return text, "\n--- retry ---\n".join(raw_parts), used, len(raw_parts)

    def _write_title(
        self,
        loaded: LoadedStoryteller,
        chat: bool,
        captions: list[str],
        passages: list[str],
        hints: str,
        temperature: float,
        seed: int,
    ) -> tuple[str, str]:
        story_start = " ".join(" ".join(passages).split()[:80])
        if chat:
            prompt: Any = [
                {"role": "system", "content": "You name children's picture books."},
                {
                    "role": "user",
                    "content": (
                        f"Pictures: {'; '.join(_caption_or_default(c) for c in captions)}.\n"
                        + (f"Wishes: {hints}\n" if hints else "")
                        + f"Story: {story_start}\nGive this picture book a short title of at most six words. "
                        f"Answer with the title only."
                    ),
                },
            ]
        else:
            prompt = f'{story_start}\n\nThe title of this picture book is "'
        raw = self._generate(loaded, prompt, TITLE_MAX_NEW_TOKENS, temperature, seed)
        title = clean_title(raw.split('"')[0] if not chat else raw)
        return (title[:1].upper() + title[1:] if _title_is_usable(title) else ""), raw

    def _generate(
        self, loaded: LoadedStoryteller, prompt: str | list[dict], max_new_tokens: int, temperature: float, seed: int
    ) -> str:
        tokenizer, model = loaded.tokenizer, loaded.model
        if isinstance(prompt, list):
            text = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        else:
            text = prompt
        encoded = tokenizer(text, return_tensors="pt", add_special_tokens=not isinstance(prompt, list))
        input_ids = encoded["input_ids"]
        attention_mask = encoded.get("attention_mask", torch.ones_like(input_ids))
        room = _context_length(tokenizer, model) - max_new_tokens
        if input_ids.shape[1] > room > 0:
            # Keep the end of the prompt: it holds the instruction and the picture being written.
            input_ids, attention_mask = input_ids[:, -room:], attention_mask[:, -room:]
        input_ids = input_ids.to(self.choice.device)
        attention_mask = attention_mask.to(self.choice.device)
        eos = _eos_ids(tokenizer, model)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (eos[0] if eos else None)
        kwargs: dict[str, Any] = dict(
            max_new_tokens=max_new_tokens,
            eos_token_id=eos or None,
            pad_token_id=pad,
            repetition_penalty=REPETITION_PENALTY,
        )
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature, top_p=TOP_P, top_k=0)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        devices = [torch.device(self.choice.device).index or 0] if self.choice.device.startswith("cuda") else []
        with (
            _GENERATE_LOCK,
            oom_guard("writing the story"),
            torch.inference_mode(),
            torch.random.fork_rng(devices=devices),
        ):
            torch.manual_seed(seed)
            output = model.generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        new_tokens = output[0, input_ids.shape[1] :]
        # NUL bytes would be cut by some text stores; nothing else is changed in the raw log.
        return tokenizer.decode(new_tokens, skip_special_tokens=True).replace("\x00", "")


def _context_length(tokenizer: Any, model: Any) -> int:
    limits = [getattr(model.config, name, None) for name in ("max_position_embeddings", "n_positions")]
    limits.append(getattr(tokenizer, "model_max_length", None))
    usable = [int(v) for v in limits if isinstance(v, int) and 0 < v < 1_000_000]
    return min(usable) if usable else 2048


def _eos_ids(tokenizer: Any, model: Any) -> list[int]:
    ids: list[int] = []
    configured = getattr(model.generation_config, "eos_token_id", None)
    if isinstance(configured, int):
        ids.append(configured)
    elif isinstance(configured, (list, tuple)):
        ids.extend(int(v) for v in configured)
    if tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
    unk = getattr(tokenizer, "unk_token_id", None)
    vocab = tokenizer.get_vocab()
    for marker in _END_MARKERS:
        token_id = vocab.get(marker)
        if token_id is not None and token_id != unk:
            ids.append(int(token_id))
    return list(dict.fromkeys(ids))
