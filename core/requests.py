"""Requests as the studio and the command line hand them to the engine, and their checks.

Torch-free, so a page can build and check a request before anything heavy is imported.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.errors import InputError
from core.limits import (
    DEFAULT_AGE,
    DEFAULT_TEMPERATURE,
    DEFAULT_TONE,
    DEFAULT_WORDS,
    MAX_AGE,
    MAX_CAPTION_CHARS,
    MAX_CAPTIONS,
    MAX_HINTS_CHARS,
    MAX_TEMPERATURE,
    MAX_WORDS,
    MIN_AGE,
    MIN_CAPTIONS,
    MIN_WORDS,
    TONES,
)


@dataclass(frozen=True)
class PageSpec:
    """One page to draw, as the studio or the CLI knows it: its words and its stored seed."""

    key: Any
    text: str
    seed: int
    prompt_override: str | None = None
    negative_prompt: str | None = None


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_picture_count(count: int) -> None:
    """How many pictures a story can be told from: the one sentence the screen, the CLI and the storyteller say."""
    if count < MIN_CAPTIONS:
        raise InputError("Add at least one picture (PNG, JPEG or WebP) to tell a story from.")
    if count > MAX_CAPTIONS:
        raise InputError(
            f"A story can be told from at most {MAX_CAPTIONS} pictures and there are {count}: "
            f"leave {count - MAX_CAPTIONS} out."
        )


def check_story_request(
    count: int | None,
    *,
    hints: str = "",
    tone: str = DEFAULT_TONE,
    age: int = DEFAULT_AGE,
    words_per_picture: int = DEFAULT_WORDS,
    temperature: float = DEFAULT_TEMPERATURE,
) -> None:
    """The storyteller's limits, checked before anything is saved or submitted (count None: not yet known)."""
    if count is not None:
        check_picture_count(count)
    if not isinstance(hints, str):
        raise InputError("The hints must be text.")
    if len(hints) > MAX_HINTS_CHARS:
        raise InputError(f"The hints are {len(hints):,} characters long; keep them under {MAX_HINTS_CHARS:,}.")
    if tone not in TONES:
        raise InputError(f"Choose one of the tones: {', '.join(TONES)}.")
    if not _whole(age) or not MIN_AGE <= age <= MAX_AGE:
        raise InputError(f"The reader's age must be a whole number from {MIN_AGE} to {MAX_AGE}.")
    if not _whole(words_per_picture) or not MIN_WORDS <= words_per_picture <= MAX_WORDS:
        raise InputError(f"Words per picture must be a whole number from {MIN_WORDS} to {MAX_WORDS}.")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
        raise InputError(f"The temperature must be a number between 0 (always the same words) and {MAX_TEMPERATURE}.")
    if not 0 <= float(temperature) <= MAX_TEMPERATURE:
        raise InputError(f"The temperature must be between 0 (always the same words) and {MAX_TEMPERATURE}.")


def clean_captions(captions: Sequence[str]) -> list[str]:
    """One caption per picture, spaces folded; InputError for a wrong count or an over-long caption."""
    if isinstance(captions, str) or not isinstance(captions, Sequence):
        raise InputError("The captions must be a list with one caption per picture.")
    check_story_request(len(captions))
    cleaned = []
    for number, caption in enumerate(captions, start=1):
        caption = re.sub(r"\s+", " ", str(caption or "")).strip()
        if len(caption) > MAX_CAPTION_CHARS:
            raise InputError(
                f"The caption of picture {number} is {len(caption)} characters long; "
                f"at most {MAX_CAPTION_CHARS} are allowed."
            )
        cleaned.append(caption)
    return cleaned
