"""User text and numbers as a screen shows them: escaped for markdown, "3 pages", "5 minutes ago"."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=^&])")


def plain(text: str) -> str:
    """User text for st.markdown/st.caption, shown exactly as typed: markup, links, HTML, LaTeX stay text."""
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", text or "")
    return escaped.replace("\n", "  \n")


def ago(when: datetime) -> str:
    seconds = (datetime.now(UTC) - when).total_seconds()
    if seconds < 60:
        return "just now"
    for size, unit in ((86400 * 365, "year"), (86400 * 30, "month"), (86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"


def reading_grade(value: float) -> str:
    """A Flesch-Kincaid grade as a reader should see it: the formula goes below zero for short, simple
    sentences, and "grade -2" means nothing to anyone."""
    return "below 1" if value < 1 else f"{value:.1f}"


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"
