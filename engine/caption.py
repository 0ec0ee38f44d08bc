"""Describe pictures in a sentence each, with an image-captioning model (BLIP and its kin).

The model and its processor load once per process through the shared cache. Captions come from
beam search (or greedy decoding), so the same pictures always get the same words.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from engine.device import DeviceChoice, pick_device
from engine.errors import InputError
from engine.loading import hub_kwargs, loaded_model, oom_guard
from engine.profiles import Profile, get_profile, is_offline

MAX_IMAGES = 64
MAX_PREFIX_CHARS = 200

# BLIP trained on web alt-text says "arafed", "araffe", "arafly" ... for people it cannot name.
_ARTIFACTS = re.compile(r"\bar{1,2}af{1,2}(?:e|ed|es|ey|y|ly)?\b", re.IGNORECASE)
_REPEATED_WORD = re.compile(r"\b(\w+)(?:\s+\1\b)+", re.IGNORECASE)
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.!?;:'])")


@dataclass
class LoadedCaptioner:
    model: Any  # `.model` lets the cache count its bytes
    processor: Any


def clean_caption(text: str) -> str:
    """Tidy a decoded caption: no artefact words, no stutter, single spaces, no dangling article."""
    text = _ARTIFACTS.sub(" ", text)
    text = re.sub(r"\s+", " ", text).strip()
    text = _REPEATED_WORD.sub(r"\1", text)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    text = re.sub(r"\b(a|an|the)\s+(?=\1\b)", "", text, flags=re.IGNORECASE)
    while True:
        shorter = re.sub(r"\s+(a|an|the|of|with|and|on|in|at)$", "", text, flags=re.IGNORECASE)
        if shorter == text:
            break
        text = shorter
    return text.strip(" ,;:-")


class Captioner:
    """`Captioner().caption([image, ...])` -> one caption per image, in order."""

    def __init__(
        self, ref: str | None = None, profile: Profile | str | None = None, device: DeviceChoice | str | None = None
    ):
        if not isinstance(profile, Profile):
            profile = get_profile(profile)
        self.profile = profile
        self.ref = ref or profile.model("captioner")
        self.choice = device if isinstance(device, DeviceChoice) else pick_device(device)

    def _load(self, location: str) -> LoadedCaptioner:
        from transformers import AutoProcessor, BlipForConditionalGeneration

        processor = AutoProcessor.from_pretrained(location, local_files_only=is_offline())
        model = BlipForConditionalGeneration.from_pretrained(location, dtype=self.choice.dtype, **hub_kwargs())
        model.to(self.choice.device).eval()
        return LoadedCaptioner(model=model, processor=processor)

    @contextmanager
    def loaded(self) -> Iterator[LoadedCaptioner]:
        """The model and its processor from the shared cache (loaded the first time), pinned for the block."""
        with loaded_model("captioner", self.ref, self.choice, self._load) as loaded:
            yield loaded

    def caption(
        self,
        images: Sequence[Image.Image],
        *,
        prefix: str | None = None,
        batch_size: int = 8,
        max_new_tokens: int = 30,
        num_beams: int = 3,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[str]:
        """One caption per image, without the prefix when one is given ("a picture of" -> "a dog ...").

        A prefix steers BLIP's wording (conditional captioning); it is removed from what comes back so
        callers always get the same shape of text. progress(done, total) is called after each batch and
        may raise Cancelled to stop.
        """
        images = list(images)
        if not images:
            return []
        if len(images) > MAX_IMAGES:
            raise InputError(f"At most {MAX_IMAGES} pictures can be described at once; {len(images)} were given.")
        if not all(isinstance(im, Image.Image) for im in images):
            raise InputError("Only pictures can be described; load each file with engine.imageio first.")
        prefix = (prefix or "").strip() or None
        if prefix is not None and len(prefix) > MAX_PREFIX_CHARS:
            raise InputError(f"The caption prefix may be at most {MAX_PREFIX_CHARS} characters long.")
        batch_size = max(1, int(batch_size))
        max_new_tokens = max(1, min(int(max_new_tokens), 128))
        num_beams = max(1, int(num_beams))

        captions: list[str] = []
        with loaded_model("captioner", self.ref, self.choice, self._load) as loaded:
            prefix_text = self._normalised(loaded.processor, prefix) if prefix else ""
            for start in range(0, len(images), batch_size):
                batch = [im if im.mode == "RGB" else im.convert("RGB") for im in images[start : start + batch_size]]
                with oom_guard("describing the pictures"):
                    decoded = self._generate(loaded, batch, prefix, max_new_tokens, num_beams)
                captions.extend(clean_caption(_strip_prefix(text, prefix_text)) for text in decoded)
                if progress is not None:
                    progress(len(captions), len(images))
        return captions

    def _generate(
        self, loaded: LoadedCaptioner, batch: list[Image.Image], prefix: str | None, max_new_tokens: int, num_beams: int
    ) -> list[str]:
        processor, model = loaded.processor, loaded.model
        if prefix:
            inputs = processor(images=batch, text=[prefix] * len(batch), return_tensors="pt")
        else:
            inputs = processor(images=batch, return_tensors="pt")
        inputs = {k: v.to(self.choice.device) for k, v in inputs.items()}
        inputs["pixel_values"] = inputs["pixel_values"].to(self.choice.dtype)
        with torch.inference_mode():
            output = model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                num_beams=num_beams,
                do_sample=False,
                early_stopping=num_beams > 1,
            )
        return processor.batch_decode(output, skip_special_tokens=True)

    @staticmethod
    def _normalised(processor: Any, prefix: str) -> str:
        """The prefix as the model writes it back: its tokenizer lower-cases and re-spaces punctuation."""
        tokenizer = getattr(processor, "tokenizer", processor)
        ids = tokenizer(prefix, add_special_tokens=False)["input_ids"]
        return tokenizer.decode(ids, skip_special_tokens=True).strip()


def _strip_prefix(text: str, prefix: str) -> str:
    text = text.strip()
    if not prefix:
        return text
    if text.lower().startswith(prefix.lower()):
        return text[len(prefix) :].strip()
    # Fall back to a spacing- and case-blind comparison, word by word.
    words, prefix_words = text.split(), prefix.split()
    if [w.lower() for w in words[: len(prefix_words)]] == [w.lower() for w in prefix_words]:
        return " ".join(words[len(prefix_words) :])
    return text
