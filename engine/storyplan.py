"""From a story to the pages of a book: its title line, its segments, and a seed for every page."""

from __future__ import annotations

import secrets

TITLE_MAX_CHARS = 80
MAX_SEED = 2**63 - 1  # the largest seed torch.Generator.manual_seed and SQLite's INTEGER both hold


def split_title(text: str) -> tuple[str | None, int]:
    """A first line that reads as a title (short, a segment of its own, no closing full stop).

    Returns the title and the offset where the story after it begins; (None, 0) when there is none.
    The line must be one the segmenter keeps apart (alone in its paragraph, or a heading line), so
    dropping the segments before that offset never drops story text with the title.
    """
    from engine.segment import first_line_alone

    span = first_line_alone(text) if isinstance(text, str) else None
    if span is None:
        return None, 0
    start, end = span
    first = text[start:end]
    if len(first) > TITLE_MAX_CHARS or first[-1] in ".!?。！？\"'”’:;,":
        return None, 0
    body = len(text) - len(text[end:].lstrip())
    if body >= len(text):
        return None, 0  # nothing after it: the line is the story, not its title
    return first, body


def new_seed() -> int:
    return secrets.randbelow(2**31)


def derive_seed(base: int, index: int) -> int:
    """The seed of page `index` in a book whose seed is `base`: stable, spread, within torch's range."""
    return (int(base) * 1_000_003 + int(index) * 7_919) % (MAX_SEED + 1) if index else int(base) % (MAX_SEED + 1)
