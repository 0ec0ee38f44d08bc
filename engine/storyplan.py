"""From a story to the pages of a book: its title line, its segments, and a seed for every page."""
from __future__ import annotations

import secrets

TITLE_MAX_CHARS = 80
MAX_SEED = 2**63 - 1  # the largest seed torch.Generator.manual_seed and SQLite's INTEGER both hold


def split_title(text: str) -> tuple[str | None, int]:
    """A first line that reads as a title (short, alone in its paragraph, no closing full stop).

    Returns the title and the offset where the story after it begins; (None, 0) when there is none.
    """
    stripped = text.lstrip()
    lead = len(text) - len(stripped)
    first, sep, rest = stripped.replace("\r\n", "\n").replace("\r", "\n").partition("\n")
    first = first.strip()
    if not sep or not first or len(first) > TITLE_MAX_CHARS or first[-1] in ".!?。！？\"'”’:;,":
        return None, 0
    if rest.strip() == "" or (not rest.startswith("\n") and len(first.split()) > 8):
        return None, 0
    end = text.find("\n", lead)
    return first, end + 1


def new_seed() -> int:
    return secrets.randbelow(2**31)


def derive_seed(base: int, index: int) -> int:
    """The seed of page `index` in a book whose seed is `base`: stable, spread, within torch's range."""
    return (int(base) * 1_000_003 + int(index) * 7_919) % (MAX_SEED + 1) if index else int(base) % (MAX_SEED + 1)
