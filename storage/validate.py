"""Checks on everything a person (or an imported file) hands the library, with sentences for errors.

Titles are capped at MAX_TITLE characters: typing a longer one is an error (the person can shorten
it), while imports (bundles, engine manifests) shorten an over-long title with an ellipsis so the
whole import is not refused over it. Titles are only ever text: no file or folder is named after one.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from core.limits import MAX_CANDIDATES as MAX_CANDIDATES  # best of N, checked here for storage
from core.seeds import MAX_SEED
from storage.errors import InvalidInput
from storage.files import ALLOWED_EXTENSIONS

MAX_TITLE = 200
MAX_AUTHOR = 200
MAX_SETTING = 300  # a picture prompt holds about 60 words in all
MAX_DEDICATION = 500
MAX_CLOSING = 200  # "The End", "Goodnight, little ferry", a line or two on the closing page
MAX_NAME = 200
MAX_STYLE = 100
MAX_STORY = 2_000_000
MAX_PROMPT = 10_000
MAX_CAPTION = 10_000
MAX_DESCRIPTION = 10_000
MAX_SEARCH = 1_000
MAX_PAGES = 5_000
MAX_CHARACTERS = 500
MAX_SOURCE_IMAGES = 500
MAX_PICTURES_PER_PAGE = 1_000
MAX_SETTINGS_BYTES = 64 * 1024
MAX_PROPOSALS = 12  # pictures drawn for one character's reference kept on offer (the newest)
# How closely pages follow a character's reference picture: shared attention's share rate (0..1: the share of
# the reference's tokens a page attends to) and the IP-Adapter's scale (0..2); engine.references has the defaults.
SHARE_RATE_RANGE = (0.0, 1.0)
IP_SCALE_RANGE = (0.0, 2.0)
ORIGINS = ("generated", "uploaded")


def text(value: Any, what: str, max_len: int, *, required: bool = False) -> str:
    """``value`` if it is storable text; ``what`` names it in the error ("The title", "Page 3's text")."""
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be text.")
    if "\x00" in value:
        raise InvalidInput(f"{what} contains a NUL character (\\0), which cannot be stored; remove it and try again.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(
            f"{what} contains a broken character (a lone UTF-16 surrogate, usually left by a bad copy and paste); "
            "remove it and try again."
        ) from None
    if len(value) > max_len:
        raise InvalidInput(f"{what} is {len(value):,} characters long; the most we keep is {max_len:,}.")
    if required and not value.strip():
        raise InvalidInput(f"{what} is empty.")
    return value


def optional_text(value: Any, what: str, max_len: int) -> str | None:
    return None if value is None else text(value, what, max_len)


def title(value: Any, *, shorten: bool = False) -> str:
    if isinstance(value, str):
        value = value.strip()
        if shorten and len(value) > MAX_TITLE:
            value = value[: MAX_TITLE - 1].rstrip() + "…"
    value = text(value, "The title", MAX_TITLE)
    if not value:
        raise InvalidInput("Give the project a title.")
    return value


def integer(value: Any, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{what} must be a whole number.")
    if not low <= value <= high:
        raise InvalidInput(f"{what} must be between {low:,} and {high:,}.")
    return value


def expected_version(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("The project version to check against must be a whole number; reload the project.")
    return value


def seed(value: Any, what: str = "The seed") -> int | None:
    return None if value is None else integer(value, what, 0, MAX_SEED)


def flag(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{what} must be true or false.")
    return value


def origin(value: Any) -> str:
    if value not in ORIGINS:
        raise InvalidInput("A picture's origin must be 'generated' or 'uploaded'.")
    return value


def settings(value: Any, what: str = "The picture settings") -> dict[str, Any]:
    """A plain-JSON copy of ``value`` (string keys; numbers, text, booleans, null, lists, objects)."""
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} must be a mapping of names to values.")
    if any(not isinstance(key, str) for key in value):
        raise InvalidInput(f"{what} must be named with text.")
    try:
        encoded = json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError, UnicodeEncodeError, RecursionError):
        raise InvalidInput(f"{what} must hold only plain text, numbers, true/false and lists of them.") from None
    if len(encoded) > MAX_SETTINGS_BYTES:
        raise InvalidInput(f"{what} are larger than {MAX_SETTINGS_BYTES // 1024} KB.")
    return json.loads(encoded)


def finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def timestamp(value: Any, what: str) -> datetime:
    """An ISO 8601 time as an aware UTC datetime (a time without a zone is taken as UTC)."""
    if not isinstance(value, str) or len(value) > 64:
        raise InvalidInput(f"{what} must be an ISO 8601 date and time.")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{what} must be an ISO 8601 date and time.") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # "0001-01-01T00:00+05:00" lies before the first moment a datetime holds
        raise InvalidInput(f"{what} is outside the years 1 to 9999.") from None


def setting(value: Any) -> str:
    """Where and when a story happens, as it is kept: at most MAX_SETTING characters, spaces folded."""
    return " ".join(text(value, "Where and when the story happens", MAX_SETTING).split())


def dedication(value: Any, what: str = "The dedication", limit: int = MAX_DEDICATION) -> str:
    """A dedication as it is kept: at most MAX_DEDICATION characters, spaces folded within each line, its
    line breaks kept (one blank line at most between two lines), nothing blank around it."""
    raw = text(value, what, limit).replace("\r\n", "\n")
    lines = [" ".join(line.split()) for line in raw.split("\n")]
    kept: list[str] = []
    for line in lines:
        if line or (kept and kept[-1]):
            kept.append(line)
    while kept and not kept[-1]:
        kept.pop()
    return "\n".join(kept)


def choice(value: Any, allowed: tuple[str, ...], what: str) -> str:
    """One of ``allowed`` (a state, a kind): anything else is refused with the choices named."""
    if not isinstance(value, str) or value not in allowed:
        raise InvalidInput(f"{what}'s state must be one of {', '.join(allowed)}, not {str(value)[:40]!r}.")
    return value


def closing(value: Any) -> str:
    """A book's closing words as they are kept (like a dedication, at most MAX_CLOSING characters); "" for the
    default ("The End" in the story's language)."""
    return dedication(value, "The closing words", MAX_CLOSING)


def meta(value: Any, what: str = "What was learnt about the picture") -> dict[str, Any]:
    """A picture's metadata: plain JSON, like its settings."""
    return settings(value, what)


def number(value: Any, what: str, low: float, high: float) -> float:
    """A finite number between low and high (a strength, a score)."""
    if not finite_number(value):
        raise InvalidInput(f"{what} must be a number.")
    if not low <= value <= high:
        raise InvalidInput(f"{what} must be between {low:g} and {high:g}.")
    return float(value)


def proposal(value: Any, what: str) -> dict[str, Any]:
    """One picture drawn for a character's reference, as a character keeps it: the file's SHA-256 and extension,
    how it was drawn (or None) and its CLIP score (or None)."""
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} must be a mapping.")
    sha = value.get("sha256")
    if not isinstance(sha, str) or len(sha) != 64 or any(ch not in "0123456789abcdef" for ch in sha):
        raise InvalidInput(f"{what} names its picture file oddly.")
    ext = value.get("ext")
    if ext not in ALLOWED_EXTENSIONS:
        raise InvalidInput(f"{what} has a picture of a kind this app does not keep.")
    drawn = value.get("settings")
    score = value.get("score")
    return {
        "sha256": sha,
        "ext": ext,
        "settings": None if drawn is None else settings(drawn, f"How {what[0].lower() + what[1:]} was drawn"),
        "score": None if score is None else number(score, f"The score of {what[0].lower() + what[1:]}", 0, 100),
    }
