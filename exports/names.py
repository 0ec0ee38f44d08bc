"""File names made from a book's title that every operating system accepts.

Letters of every script stay (a Japanese title gives a Japanese file name); what Windows, macOS or Linux
refuse in a name goes: / \\ : * ? " < > |, control characters, leading and trailing dots and spaces, and
Windows' reserved device names (CON, PRN, AUX, NUL, COM1-9, LPT1-9). The result is NFC-normalised (macOS
stores decomposed names, which look the same) and at most MAX_BYTES of UTF-8, cut between characters.
"""

from __future__ import annotations

import re
import unicodedata

MAX_BYTES = 120  # well under the 255-byte limit of common file systems, leaving room for ".storybook.zip"
_FORBIDDEN = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]+')
_SPACES = re.compile(r"\s+")
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}


def safe_file_stem(title: str, fallback: str = "storybook") -> str:
    """A file name stem (no extension) from `title`: readable, in any script, valid on every OS."""
    text = unicodedata.normalize("NFC", title or "")
    text = "".join(
        " " if unicodedata.category(ch) == "Cc" else ch
        for ch in text
        if unicodedata.category(ch) not in ("Cf", "Cs", "Co", "Cn")
    )
    text = _FORBIDDEN.sub(" ", text)
    text = _SPACES.sub(" ", text).strip(" .")
    encoded = text.encode("utf-8")
    if len(encoded) > MAX_BYTES:
        text = encoded[:MAX_BYTES].decode("utf-8", errors="ignore").rstrip(" .")
    if not text or text.split(".")[0].strip().lower() in _RESERVED:
        return fallback if not text else f"{text} (book)"
    return text
