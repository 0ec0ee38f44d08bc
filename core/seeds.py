"""Seeds: every picture and every written passage is made from a stored integer, so it can be made again."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from core.errors import InputError

MAX_SEED = 2**63 - 1  # the largest seed torch.Generator.manual_seed and SQLite's INTEGER both hold
NEW_SEED_BELOW = 2**31  # fresh seeds stay short enough to read out and type back


def new_seed() -> int:
    """A fresh random seed."""
    return secrets.randbelow(NEW_SEED_BELOW)


def is_seed(value: Any) -> bool:
    """Whether ``value`` is a whole number a seed can be (booleans are not)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_SEED


def page_seed(base: int, index: int) -> int:
    """The seed of page ``index`` of a book drawn with seed ``base``: stable, spread, within MAX_SEED."""
    if not index:
        return int(base) % (MAX_SEED + 1)
    return (int(base) * 1_000_003 + int(index) * 7_919) % (MAX_SEED + 1)


def sub_seed(seed: int, *labels: Any) -> int:
    """A seed derived from ``seed`` and some labels ("passage", 3, attempt): stable across runs and machines."""
    digest = hashlib.sha256(repr((int(seed), *labels)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") & MAX_SEED


def parse_seed(raw: str) -> int | None:
    """A seed typed by a person ("12,345" and "12_345" read as 12345); None for an empty box."""
    raw = (raw or "").strip().replace(",", "").replace("_", "")
    if not raw:
        return None
    if not raw.isdecimal() or int(raw) > MAX_SEED:
        raise InputError("A seed is a whole number from 0 up, like 12345: fix it, or leave it empty to get a new one.")
    return int(raw)
