"""A story segment to the prompt pair an image model reads.

Narrative is not a picture description: "Pip looked up the long spiral stairs" draws better as
"Pip looked up long spiral stairs" than with the pronouns, speech verbs and filler around it, and a
CLIP text encoder reads only 77 tokens (BOS and EOS included), silently dropping the rest. So:

- `build_prompt` keeps a segment's content words in reading order, clause by clause, and drops
  stopwords, speech verbs ("said", "cried") and filler ("suddenly", "once upon a time"). Quoted
  speech is kept but ranks below narration, since what is said is seldom what is seen. No POS tagger:
  NLTK's need downloads, and a stopword list does most of the work offline.
- The style preset puts a prefix first and a suffix last; named characters whose name appears in the
  segment add their description ("a small red fox with a green scarf named Pip") so they look the
  same on every page; an optional setting follows.
- `fit_to_tokens` then makes it fit the encoder's window by dropping the least important pieces
  first: repeated words, the style suffix, quoted speech, the setting, weak words (-ly adverbs,
  "thought", "began"), long character descriptions, then words from the ends of the longest clauses,
  so every clause keeps its head. The style prefix is cut only if nothing else is left.

The prompt is prose for a model; it is never shown as a caption in the book.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from engine.errors import InputError


@dataclass(frozen=True)
class Style:
    key: str
    label: str
    prefix: str
    suffix: str
    negative_extra: str = ""


@dataclass(frozen=True)
class PromptPair:
    prompt: str
    negative_prompt: str


STYLES: dict[str, Style] = {
    style.key: style
    for style in (
        Style(
            "watercolor",
            "Watercolor picture book",
            "watercolor children's book illustration",
            "soft pastel colors, gentle light, paper texture, whimsical, detailed",
            "photo, photorealistic, 3d render",
        ),
        Style(
            "pencil",
            "Pencil sketch",
            "pencil sketch illustration",
            "graphite, cross-hatching, hand-drawn lines, white paper",
            "color, photo, painting",
        ),
        Style(
            "comic",
            "Comic",
            "comic book panel",
            "bold ink outlines, flat colors, halftone shading, dynamic composition",
            "photo, photorealistic, blurry lines",
        ),
        Style(
            "oil",
            "Storybook oil painting",
            "storybook oil painting",
            "rich brushstrokes, warm colors, classic fairy tale art, canvas texture",
            "photo, flat colors, vector art",
        ),
        Style(
            "photo",
            "Photo",
            "photograph",
            "natural light, 35mm, shallow depth of field, realistic, high detail",
            "illustration, drawing, painting, cartoon, anime",
        ),
        Style(
            "flat_vector",
            "Flat vector",
            "flat vector illustration",
            "clean shapes, simple geometric forms, limited palette, minimal",
            "photo, photorealistic, texture, noise",
        ),
        Style(
            "crayon",
            "Crayon drawing",
            "crayon drawing",
            "wax crayon strokes, bright colors, childlike, paper texture",
            "photo, photorealistic, 3d render",
        ),
        Style("none", "No style (the prompt as written)", "", ""),
    )
}
DEFAULT_STYLE = "watercolor"

# Text is first: diffusion models love to scribble fake letters, and the book prints the story itself.
_NEGATIVE_CORE = ("text", "watermark", "letters", "words", "writing", "caption", "speech bubble", "signature", "logo")
_NEGATIVE_BASICS = (
    "blurry",
    "lowres",
    "jpeg artifacts",
    "deformed",
    "disfigured",
    "bad anatomy",
    "extra limbs",
    "extra fingers",
    "cropped",
    "out of frame",
)
DEFAULT_NEGATIVE = ", ".join(_NEGATIVE_CORE + _NEGATIVE_BASICS)

DEFAULT_MAX_TOKENS = 77
# When even that is too long, the scene's first words outrank a character's description.
_CONTENT_KEPT_BEFORE_CHARACTERS = 8

_STOPWORDS = frozenset(
    """
a an the and or but nor so yet if then than that this these those there here it its it's itself
i me my mine myself we us our ours ourselves you your yours yourself yourselves he him his himself
she her hers herself they them their theirs themselves who whom whose which what when where why how
is am are was were be been being have has had having do does did doing will would shall should can
could may might must ought not no nor don't didn't won't can't couldn't wasn't weren't isn't aren't
of to for from by with about as at like unto upon onto
all any both each every few more most other some such only own same too very just really quite
also even still now soon once again ever never always already perhaps maybe indeed actually
certainly rather somehow suddenly finally anyway anyhow though although because while until till
whether since else oh ah yes okay ok hello hi well
thing things something anything everything nothing someone anyone everyone somebody anybody
everybody way lot lots much one eg ie etc
""".split()
)
_SPEECH_VERBS = frozenset(
    """
say says said saying ask asks asked asking cry cries cried reply replies replied shout shouts shouted
whisper whispers whispered exclaim exclaims exclaimed answer answers answered call calls called
mutter mutters muttered murmur murmurs murmured yell yells yelled add adds added tell tells told
explain explains explained continue continues continued agree agreed suggest suggested
""".split()
)
_WEAK_WORDS = frozenset(
    """
think thinks thought know knows knew want wants wanted decide decides decided seem seems seemed
feel feels felt begin begins began start starts started try tries tried look looks looked go goes
went come comes came get gets got make makes made take takes took give gives gave let lets keep
keeps kept live lives lived named become became
""".split()
)
_NOT_ADVERBS = frozenset(
    "family lily holly fly butterfly belly jelly ugly curly early hilly jolly "
    "silly chilly woolly bully italy july rely reply apply supply".split()
)
_PREPOSITIONS = frozenset(
    "in on under above below behind beside inside outside across through over "
    "near into between among around toward towards beneath along".split()
)

# A title's period is not the end of a clause: "Mrs. Gull" stays one name.
_TITLE_PERIOD = re.compile(r"\b(Mr|Mrs|Ms|Mx|Dr|St|Mt|Prof|Capt|Sgt|Jr|Sr|Sir)\.", re.IGNORECASE)
_FILLER_PHRASES = re.compile(r"\bonce upon a time\b|\bthe end\b|\bone day\b", re.IGNORECASE)
_QUOTED = re.compile(r'"[^"]*"|“[^”]*”|«[^»]*»|「[^」]*」|『[^』]*』|‘(?:[^’]|’(?=\w))*’')
_APOSTROPHE = re.compile(r"(?<=\w)[’'](?=\w)")
# Markup a user pasted (<b>, <i>, <img src=...>) is text on the page but not something to draw.
_MARKUP_TAG = re.compile(r"</?[A-Za-z][^<>]{0,200}>")
# What a <script> or <style> element holds is code, not scenery: "alert(1)" is no picture.
_CODE_ELEMENT = re.compile(r"<(script|style)\b[^<>]{0,200}>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
# "p.m.", "U.S.A.", "e.g.": their periods end no clause, so "5 p.m. today" is not cut into "p", "m".
_INITIALISM = re.compile(r"(?<!\w)(?:[^\W\d_]\.){2,}")
_CLAUSE_SPLIT = re.compile(r"[,;:.!?…—–()\[\]{}\"“”«»「」『』‘’。！？、，；：]|\s-\s|\s+'|'\s+")
_WORD = re.compile(r"[^\W_][\w'-]*")
_TOKEN_GUESS = re.compile(r"[A-Za-z]+|[0-9]+|[^\W_]+|[^\w\s]")


def get_style(key: str) -> Style:
    """The preset named `key`; InputError listing the valid keys for anything else."""
    try:
        return STYLES[key]
    except (KeyError, TypeError):
        raise InputError(f'There is no style called "{key}"; choose one of: {", ".join(STYLES)}.') from None


# ---------------------------------------------------------------- counting tokens


def count_tokens(text: str, tokenizer=None) -> int:
    """Tokens the text encoder sees for `text`, BOS and EOS included.

    With a tokenizer (CLIPTokenizer or any transformers tokenizer) this is exact; without one it
    is a deliberately generous guess (a word of up to 6 letters is one token, longer ones one per 6
    letters, every punctuation mark and non-Latin character one token), so a prompt that fits the
    guess fits a real CLIP tokenizer too.
    """
    if tokenizer is None:
        total = 2
        for piece in _TOKEN_GUESS.findall(text):
            if piece.isascii() and piece.isalnum():
                total += max(1, math.ceil(len(piece) / 6))
            else:
                total += len(piece)
        return total
    # verbose=False: measuring an over-long prompt is the point here, not a mistake to warn about.
    return len(tokenizer(text, truncation=False, verbose=False)["input_ids"])


# ---------------------------------------------------------------- prompt parts

# Kinds of prompt part; `_removals` says which give up their pieces first.
_PREFIX, _CONTENT, _CHARACTER = "prefix", "content", "character"
_SETTING, _QUOTE, _SUFFIX = "setting", "quote", "suffix"


@dataclass
class _Part:
    kind: str
    pieces: list[str] = field(default_factory=list)
    joiner: str = " "
    keep_tail: int = 0  # pieces at the end that outlive the others (a character's "named Pip")

    def render(self) -> str:
        return self.joiner.join(self.pieces)


def _render(parts: list[_Part]) -> str:
    return ", ".join(text for text in (part.render() for part in parts) if text)


def _is_name(word: str, line_start: bool) -> bool:
    """A capitalised stopword inside a line is part of a name: "Dr Who", "said Will", "The Who".

    At the start of a clause or a line (verse capitalises every line) capitals say nothing; "I" is
    always capitalised.
    """
    return not line_start and word.isalpha() and len(word) > 1 and word[0].isupper() and word[1:].islower()


def _content_words(clause: str) -> list[str]:
    words = []
    end = 0
    for match in _WORD.finditer(clause):
        line_start = end == 0 or "\n" in clause[end : match.start()]
        end = match.end()
        word = match.group().strip("'-")
        if word.lower().endswith("'s"):
            word = word[:-2]
        low = word.lower()
        if not word or low in _SPEECH_VERBS or (low in _STOPWORDS and not _is_name(word, line_start)):
            continue
        words.append(word)
    while words and words[0].lower() in _PREPOSITIONS:
        words.pop(0)
    while words and words[-1].lower() in _PREPOSITIONS:
        words.pop()
    return words


def _clauses(text: str, kind: str) -> list[_Part]:
    return [_Part(kind, words) for words in map(_content_words, _CLAUSE_SPLIT.split(text)) if words]


def _describe(segment_text: str) -> tuple[list[_Part], list[_Part]]:
    """Narration clauses and quoted-speech clauses of a segment, as word lists in reading order."""
    text = _MARKUP_TAG.sub(" ", _CODE_ELEMENT.sub(" ", segment_text))
    text = _INITIALISM.sub(lambda m: m.group().replace(".", ""), _APOSTROPHE.sub("'", text))
    text = _FILLER_PHRASES.sub(" ", _TITLE_PERIOD.sub(r"\1", text))
    quotes = [m.group() for m in _QUOTED.finditer(text)]
    narration = _QUOTED.sub(" , ", text)
    return _clauses(narration, _CONTENT), _clauses(" , ".join(quotes), _QUOTE)


def _character_parts(segment_text: str, characters, present=None) -> list[_Part]:
    parts = []
    wanted = None if present is None else {(n or "").strip().lower() for n in present}
    for name, description in characters or ():
        name, description = (name or "").strip(), (description or "").strip()
        if not name or not description:
            continue
        if wanted is not None:
            if name.lower() in wanted:
                parts.append(_Part(_CHARACTER, description.split() + ["named", name], keep_tail=2))
        elif re.search(rf"(?<!\w){re.escape(name)}(?!\w)", segment_text, re.IGNORECASE):
            parts.append(_Part(_CHARACTER, description.split() + ["named", name], keep_tail=2))
    return parts


def _style_parts(style: Style, middle: list[_Part]) -> list[_Part]:
    parts = []
    if style.prefix:
        parts.append(_Part(_PREFIX, [style.prefix]))
    parts.extend(middle)
    if style.suffix:
        parts.append(_Part(_SUFFIX, [item.strip() for item in style.suffix.split(",") if item.strip()], ", "))
    return parts


# ---------------------------------------------------------------- fitting


def _drop_repeats(parts: list[_Part]) -> bool:
    """Remove words already said earlier in the prompt; True if anything went."""
    seen: set[str] = set()
    changed = False
    for part in parts:
        kept = []
        for i, piece in enumerate(part.pieces):
            words = [w.lower() for w in _WORD.findall(piece)]
            protected = part.kind == _PREFIX or i >= len(part.pieces) - part.keep_tail
            # A capitalised stopword reaches a content part only as a name (_is_name), never filler.
            name = part.kind in (_CONTENT, _QUOTE) and piece[:1].isupper()
            if not protected and words and all(w in seen or (w in _STOPWORDS and not name) for w in words):
                changed = True
                continue
            seen.update(w for w in words if name or w not in _STOPWORDS)
            kept.append(piece)
        part.pieces = kept
    return changed


def _is_weak(word: str) -> bool:
    low = word.lower()
    return low in _WEAK_WORDS or (len(low) > 4 and low.endswith("ly") and low not in _NOT_ADVERBS)


def _removals(parts: list[_Part]):
    """Yield once per piece removed, least important first; the caller stops when the prompt fits."""
    for kind in (_SUFFIX, _QUOTE, _SETTING):
        for part in reversed([p for p in parts if p.kind == kind]):
            while part.pieces:
                part.pieces.pop()
                yield
    for part in reversed([p for p in parts if p.kind == _CONTENT]):
        for i in range(len(part.pieces) - 1, -1, -1):
            if len(part.pieces) > 1 and _is_weak(part.pieces[i]):
                del part.pieces[i]
                yield
    characters = [p for p in parts if p.kind == _CHARACTER]
    for part in reversed(characters):
        body = len(part.pieces) - part.keep_tail
        for i in range(body - 1, -1, -1):
            if part.pieces[i].lower() in _STOPWORDS:
                del part.pieces[i]
                yield
        while len(part.pieces) > part.keep_tail + 3:
            del part.pieces[-part.keep_tail - 1]
            yield
    content = [p for p in parts if p.kind == _CONTENT]
    yield from _cut_content(content, keep=_CONTENT_KEPT_BEFORE_CHARACTERS)
    for part in reversed(characters):
        part.pieces.clear()
        yield
    yield from _cut_content(content, keep=1)


def _cut_content(content: list[_Part], keep: int):
    """Drop content words from the end, the earliest clauses being what the picture is about."""
    while sum(len(p.pieces) for p in content) > keep:
        last = next(p for p in reversed(content) if p.pieces)
        last.pieces.pop()
        yield


def _cap(parts: list[_Part], max_tokens: int) -> None:
    """Keep at most max_tokens pieces of each kind: every piece costs a token, so more never fit.

    Without this a pasted novel would cost one tokenizer call per word it has to lose.
    """
    left: dict[str, int] = {}
    for part in parts:
        room = left.setdefault(part.kind, max_tokens)
        if len(part.pieces) > room:
            tail = part.pieces[len(part.pieces) - part.keep_tail :] if part.keep_tail else []
            part.pieces = part.pieces[: max(0, room - len(tail))] + tail
        left[part.kind] = max(0, room - len(part.pieces))


def _fit_parts(parts: list[_Part], tokenizer, max_tokens: int) -> str:
    prompt = _render(parts)
    if count_tokens(prompt, tokenizer) <= max_tokens:
        return prompt
    _cap(parts, max_tokens)
    if _drop_repeats(parts):
        prompt = _render(parts)
        if count_tokens(prompt, tokenizer) <= max_tokens:
            return prompt
    for _ in _removals(parts):
        prompt = _render(parts)
        if count_tokens(prompt, tokenizer) <= max_tokens:
            return prompt
    return _cut_words(prompt, tokenizer, max_tokens)


def _cut_words(prompt: str, tokenizer, max_tokens: int) -> str:
    """Last resort: the longest run of whole leading words that fits (binary search)."""
    words = prompt.split()
    low, high = 0, len(words)
    while low < high:
        middle = (low + high + 1) // 2
        if count_tokens(" ".join(words[:middle]).rstrip(","), tokenizer) <= max_tokens:
            low = middle
        else:
            high = middle - 1
    if low or not words:
        return " ".join(words[:low]).rstrip(",")
    # Not even one word fits (a tiny window): as many leading characters of it as do.
    word, low, high = words[0], 0, len(words[0])
    while low < high:
        middle = (low + high + 1) // 2
        if count_tokens(word[:middle], tokenizer) <= max_tokens:
            low = middle
        else:
            high = middle - 1
    return word[:low]


def _window(tokenizer, max_tokens: int) -> int:
    if max_tokens < 3:
        raise ValueError("max_tokens must leave room for BOS, EOS and at least one word")
    model_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(model_max, int) and 2 < model_max < 100_000:
        return min(max_tokens, model_max)
    return max_tokens


def _parse(prompt: str) -> list[_Part]:
    """Structure a prompt string: a known style prefix, known suffix items, and content clauses."""
    text = prompt.strip()
    parts: list[_Part] = []
    for style in sorted(STYLES.values(), key=lambda s: -len(s.prefix)):
        if style.prefix and text.lower().startswith(style.prefix.lower()):
            parts.append(_Part(_PREFIX, [text[: len(style.prefix)]]))
            text = text[len(style.prefix) :]
            break
    suffix_items = {item.strip().lower() for style in STYLES.values() for item in style.suffix.split(",")}
    suffix_items.discard("")
    for chunk in text.split(","):
        chunk = chunk.strip()
        if not chunk:
            continue
        if chunk.lower() in suffix_items:
            if parts and parts[-1].kind == _SUFFIX:
                parts[-1].pieces.append(chunk)
            else:
                parts.append(_Part(_SUFFIX, [chunk], ", "))
        else:
            parts.append(_Part(_CONTENT, chunk.split()))
    return parts


def fit_to_tokens(prompt: str, tokenizer=None, max_tokens: int = DEFAULT_MAX_TOKENS) -> str:
    """Make `prompt` fit the text encoder's window (BOS and EOS included), keeping what matters.

    A prompt that fits comes back unchanged. Otherwise a leading style prefix is kept, then content
    words; repeated words and known style-suffix items go first, then trailing words of the longest
    comma-separated clauses (see the module notes). tokenizer=None uses `count_tokens`' guess.
    """
    window = _window(tokenizer, max_tokens)
    if count_tokens(prompt, tokenizer) <= window:
        return prompt
    return _fit_parts(_parse(prompt), tokenizer, window)


def _fit_negative(items: list[str], tokenizer, window: int) -> str:
    seen, unique = set(), []
    for item in items:
        if item and item.lower() not in seen:
            seen.add(item.lower())
            unique.append(item)
    while len(unique) > 1 and count_tokens(", ".join(unique), tokenizer) > window:
        unique.pop()
    return ", ".join(unique)


def build_prompt(
    segment_text: str,
    style: str = DEFAULT_STYLE,
    *,
    characters: list[tuple[str, str]] | None = None,
    setting: str | None = None,
    override: str | None = None,
    tokenizer=None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    present: list[str] | None = None,
) -> PromptPair:
    """The prompt pair for one segment, fitted to `max_tokens` of `tokenizer` (or a guess of it).

    characters: (name, description) pairs; a description is added when its name appears in the
    segment (whole word, any case), or, when `present` is given (the names engine.characters found on
    the page, pronouns and "the old keeper" included), when its name is in `present`.
    setting: a place or period added after the characters.
    override: the user's own prompt, which replaces the one made from the text (characters and
    setting are then not added, the user said what they want). It gets the style's prefix and suffix,
    unless it already starts with the style's prefix: then it is used exactly as written, unfitted
    (the encoder keeps its first tokens, as for any long prompt).
    """
    chosen = get_style(style)
    window = _window(tokenizer, max_tokens)
    extra = [item.strip() for item in chosen.negative_extra.split(",")]
    negative = _fit_negative(list(_NEGATIVE_CORE) + extra + list(_NEGATIVE_BASICS), tokenizer, window)

    own = (override or "").strip()
    if own:
        if not chosen.prefix or own.lower().startswith(chosen.prefix.lower()):
            return PromptPair(own, negative)
        parts = _style_parts(chosen, [_Part(_CONTENT, own.split())])
        return PromptPair(_fit_parts(parts, tokenizer, window), negative)

    if not (segment_text or "").strip():
        raise InputError("This page has no text to illustrate: write some text or your own prompt for it.")
    content, quotes = _describe(segment_text)
    middle = content + _character_parts(segment_text, characters, present)
    if setting and setting.strip():
        middle.append(_Part(_SETTING, setting.split()))
    middle += quotes
    if not middle and not chosen.prefix:
        # Nothing but stopwords and no style: the words as written beat an empty prompt.
        middle = [_Part(_CONTENT, segment_text.split())]
    return PromptPair(_fit_parts(_style_parts(chosen, middle), tokenizer, window), negative)
