"""Where the studio keeps its files on this machine."""

from __future__ import annotations

import os
import re
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


def file_stem(title: str, fallback: str = "storybook", *, unicode: bool = False, limit: int = 60) -> str:
    """A file name stem made from a title, safe on every system: letters, digits and dashes, never a reserved name.

    `unicode` keeps letters of any script (else ASCII only); `fallback` is used when nothing is left.
    """
    pattern = r"[^\w-]+" if unicode else r"[^A-Za-z0-9]+"
    stem = re.sub(pattern, "-", title.lower(), flags=re.UNICODE).strip("-")[:limit].strip("-") or fallback
    if stem.split(".")[0].lower() in WINDOWS_RESERVED_NAMES:
        stem = f"{stem}-{fallback}"
    return stem
