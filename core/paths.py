"""Where the studio keeps its files on this machine."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_data_dir


def data_home() -> Path:
    """The user's data folder: STORYBOOK_HOME if set, else the platform's user data folder (created if needed)."""
    override = os.environ.get("STORYBOOK_HOME", "").strip()
    home = Path(override).expanduser() if override else Path(user_data_dir("storybook-studio", appauthor=False))
    home.mkdir(parents=True, exist_ok=True)
    return home
