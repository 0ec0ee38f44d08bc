"""Where the studio keeps its files on this machine."""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

from platformdirs import user_data_dir


def data_home() -> Path:
    """The user's data folder: STORYBOOK_HOME if set, else the platform's user data folder (created if needed)."""
    override = os.environ.get("STORYBOOK_HOME", "").strip()
    home = Path(override).expanduser() if override else Path(user_data_dir("storybook-studio", appauthor=False))
    home.mkdir(parents=True, exist_ok=True)
    return home


# Names Windows keeps for devices, with or without an extension: a download saved as CON.pdf or nul.zip
# cannot be opened or even created there.
WINDOWS_RESERVED_NAMES = frozenset(
    {"con", "prn", "aux", "nul", "conin$", "conout$"}
    | {f"{device}{n}" for device in ("com", "lpt") for n in (*"123456789", "¹", "²", "³")}
)


MAX_STEM_BYTES = 120  # well under the 255-byte limit of common file systems, leaving room for ".storybook.zip"
_FORBIDDEN = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]+')
_SPACES = re.compile(r"\s+")


def file_stem(title: str, fallback: str = "storybook") -> str:
    """A file name stem (no extension) from a book's title: readable, in any script, valid on every system.

    Letters of every script stay (a Japanese title gives a Japanese file name); what Windows, macOS or Linux
    refuse in a name goes (/ \\ : * ? " < > |, control characters, leading and trailing dots and spaces), and a
    Windows device name (CON, NUL.txt, COM1 ...) gets " (book)" after it, before any dot. NFC-normalised (macOS
    stores decomposed names, which look the same) and at most MAX_STEM_BYTES of UTF-8, cut between characters.
    """
    text = unicodedata.normalize("NFC", title or "")
    text = "".join(
        " " if unicodedata.category(ch) == "Cc" else ch
        for ch in text
        if unicodedata.category(ch) not in ("Cf", "Cs", "Co", "Cn")
    )
    text = _SPACES.sub(" ", _FORBIDDEN.sub(" ", text)).strip(" .")
    encoded = text.encode("utf-8")
    if len(encoded) > MAX_STEM_BYTES:
        text = encoded[:MAX_STEM_BYTES].decode("utf-8", errors="ignore").rstrip(" .")
    if not text:
        return fallback
    base, dot, rest = text.partition(".")
    if base.strip().lower() in WINDOWS_RESERVED_NAMES:  # Windows reads the part before the first dot
        return f"{base.rstrip()} (book){dot}{rest}"
    return text
