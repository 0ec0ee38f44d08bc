"""The plain book every exporter takes: a title, an author and pages of text with pictures.

Exporters never see the database or the engine; two adapters build a Book from what they write.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from exports.errors import ExportError

MANIFEST_FORMAT = "storybook-manifest"
MANIFEST_VERSION = 1
MAX_IMAGE_FILE_BYTES = 80 * 1024 * 1024


@dataclass
class Page:
    """One page of the story: its text and its chosen picture as encoded bytes (PNG or JPEG).

    The fields after `caption` are never printed: the ZIP export writes them into its manifest.json, so the
    book can be imported again (`python -m storage import-manifest`) and every picture drawn again.
    """

    text: str
    image: bytes | None = None
    caption: str | None = None  # printed small under the picture where the layout has room
    # The chosen picture's settings as the engine recorded them: what draws it again (seed, prompt, steps,
    # guidance, size, model, reference...; docs/formats.md). {} when unknown or uploaded without them.
    settings: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None  # the page's own seed (None: the picture's settings say it, or nobody knows)
    prompt: str | None = None  # the page's own prompt, when it has one instead of the one built from its text
    negative_prompt: str | None = None
    span: tuple[int, int] | None = None  # where the page's words stand in Book.story_text (end exclusive)


@dataclass
class Book:
    title: str
    author: str = ""
    pages: list[Page] = field(default_factory=list)
    cover_image: bytes | None = None  # None: the first page's picture
    dedication: str = ""  # printed on a page of its own after the cover; "" for none
    closing: str = ""  # the closing page's words; "" for "The End" in the story's language (exports.closing)
    # Problems found while gathering the book (a missing picture file...); exporters pass them on.
    warnings: list[str] = field(default_factory=list)
    # What the book was made with, never printed; the ZIP's manifest.json carries it (docs/formats.md).
    story_text: str = ""  # the whole story as saved; "" when the pages are all there is
    style: str = ""
    profile: str = ""
    setting: str = ""
    characters: list[tuple[str, str]] = field(default_factory=list)  # (name, description)
    created: str = ""  # ISO 8601, "" when unknown


def _read_image_file(path: Path, label: str, warnings: list[str], *, follow_links: bool = True) -> bytes | None:
    """The picture's bytes, or None with a warning saying why that page prints without it."""
    try:
        if not follow_links and path.is_symlink():
            # Storage refuses pictures that are links; a manifest may not point outside its folder through one.
            warnings.append(
                f"The picture for {label} ({path.name}) is a link to another file; manifests may only name "
                "pictures beside them, so that page prints without it."
            )
            return None
        if not path.is_file():
            warnings.append(f"The picture for {label} ({path.name}) is missing, so that page prints without it.")
            return None
        flags = os.O_RDONLY | (0 if follow_links else getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(os.open(path, flags), "rb") as handle:
            data = handle.read(MAX_IMAGE_FILE_BYTES + 1)
        if len(data) > MAX_IMAGE_FILE_BYTES:
            warnings.append(
                f"The picture for {label} ({path.name}) is larger than 80 MB, so that page prints without it."
            )
            return None
        if not data:
            warnings.append(
                f"The picture for {label} ({path.name}) is empty (0 bytes), so that page prints without it."
            )
            return None
        return data
    except OSError:
        warnings.append(f"The picture for {label} ({path.name}) could not be read, so that page prints without it.")
        return None


def _is_plain_file_name(name: str) -> bool:
    return (
        bool(name)
        and name not in {".", ".."}
        and "/" not in name
        and "\\" not in name
        and "\x00" not in name
        and ":" not in name
    )


def book_from_manifest(path: str | Path) -> Book:
    """Read an engine manifest (docs/formats.md): `path` is the manifest.json or the folder holding it."""
    path = Path(path)
    if path.is_dir():
        path = path / "manifest.json"
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ExportError(f"There is no manifest at {path}.") from None
    except (OSError, UnicodeDecodeError):
        raise ExportError(f"The manifest at {path} could not be read.") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        raise ExportError(f"The manifest at {path} is not valid JSON.") from None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise ExportError(f"The file at {path} is not a Storybook manifest.")
    version = data.get("version")
    if not isinstance(version, int) or version > MANIFEST_VERSION:
        raise ExportError(f"The manifest at {path} was written by a newer Storybook Studio; update to print it.")
    segments = data.get("segments")
    if not isinstance(segments, list) or not all(isinstance(s, dict) for s in segments):
        raise ExportError(f"The manifest at {path} has no list of segments.")

    folder = path.parent
    warnings: list[str] = []
    pages: list[Page] = []
    ordered = sorted(enumerate(segments), key=lambda item: (_as_int(item[1].get("index"), item[0]), item[0]))
    for number, (_, segment) in enumerate(ordered, start=1):
        text = segment.get("text")
        text = text if isinstance(text, str) else ""
        label = f"page {number}"
        image = None
        name = segment.get("image")
        if isinstance(name, str) and name:
            if _is_plain_file_name(name):
                image = _read_image_file(folder / name, label, warnings, follow_links=False)
            else:
                warnings.append(
                    f"The picture for {label} is named with a folder path ({name!r}); "
                    "manifests may only name files beside them, so that page prints without it."
                )
        settings = segment.get("settings")
        start, end = segment.get("start"), segment.get("end")
        pages.append(
            Page(
                text=text,
                image=image,
                settings=dict(settings) if isinstance(settings, dict) else {},
                seed=_optional_int(segment.get("seed")),
                prompt=_optional_str(segment.get("prompt")),
                negative_prompt=_optional_str(segment.get("negative_prompt")),
                span=_span(start, end),
            )
        )
    strings = {
        key: value if isinstance(value := data.get(key), str) else ""
        for key in ("title", "author", "dedication", "closing", "source_text", "style", "profile", "setting", "created")
    }
    raw_characters = data.get("characters")
    characters: list[tuple[str, str]] = []
    for entry in raw_characters if isinstance(raw_characters, list) else []:
        if isinstance(entry, dict) and isinstance(name := entry.get("name"), str):
            characters.append((name, _optional_str(entry.get("description")) or ""))
    return Book(
        title=strings["title"] or "Untitled story",
        author=strings["author"],
        pages=pages,
        dedication=strings["dedication"],
        closing=strings["closing"],
        warnings=warnings,
        story_text=strings["source_text"],
        style=strings["style"],
        profile=strings["profile"],
        setting=strings["setting"],
        characters=characters,
        created=strings["created"],
    )


def _as_int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _optional_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _span(start: Any, end: Any) -> tuple[int, int] | None:
    first, last = _optional_int(start), _optional_int(end)
    return None if first is None or last is None else (first, last)


def book_from_project(project: Any) -> Book:
    """Build a Book from storage's ProjectView (duck-typed: title, author, pages with .selected)."""
    warnings: list[str] = []
    pages: list[Page] = []
    found = getattr(project, "pages", None)
    if found is None:  # an older stand-in that still calls them segments
        found = getattr(project, "segments", None)
    for number, page in enumerate(sorted(found or [], key=lambda p: getattr(p, "position", 0)), start=1):
        selected = getattr(page, "selected", None)
        image = None
        settings: dict[str, Any] = {}
        if selected is not None and getattr(selected, "image_path", None):
            image = _read_image_file(Path(selected.image_path), f"page {number}", warnings)
            settings = dict(getattr(selected, "settings", None) or {})
        start, end = getattr(page, "start", None), getattr(page, "end", None)
        pages.append(
            Page(
                text=getattr(page, "text", "") or "",
                image=image,
                settings=settings,
                seed=_optional_int(getattr(page, "seed", None)),
                prompt=_optional_str(getattr(page, "prompt_override", None)),
                negative_prompt=_optional_str(getattr(page, "negative_prompt", None)),
                span=_span(start, end),
            )
        )
    created = getattr(project, "created", None)
    return Book(
        title=getattr(project, "title", "") or "Untitled story",
        author=getattr(project, "author", "") or "",
        pages=pages,
        dedication=getattr(project, "dedication", "") or "",
        closing=getattr(project, "closing", "") or "",
        warnings=warnings,
        story_text=_optional_str(getattr(project, "story_text", None)) or "",
        style=_optional_str(getattr(project, "style", None)) or "",
        profile=_optional_str(getattr(project, "profile", None)) or "",
        setting=_optional_str(getattr(project, "setting", None)) or "",
        characters=[
            (str(getattr(c, "name", "")), str(getattr(c, "description", "") or ""))
            for c in getattr(project, "characters", None) or []
        ],
        created=created.isoformat() if isinstance(created, datetime) else _optional_str(created) or "",
    )
