"""The plain book every exporter takes: a title, an author and pages of text with pictures.

Exporters never see the database or the engine; two adapters build a Book from what they write.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exports.errors import ExportError

MANIFEST_FORMAT = "storybook-manifest"
MANIFEST_VERSION = 1
MAX_IMAGE_FILE_BYTES = 80 * 1024 * 1024


@dataclass
class Page:
    """One segment of the story: its text and its chosen picture as encoded bytes (PNG or JPEG)."""

    text: str
    image: bytes | None = None
    caption: str | None = None  # printed small under the picture where the layout has room
    extra: dict[str, Any] = field(default_factory=dict)  # carried along, never printed


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
        extra = {k: segment[k] for k in ("seed", "settings", "prompt") if k in segment}
        pages.append(Page(text=text, image=image, extra=extra))
    title, author, dedication, closing = (data.get(key) for key in ("title", "author", "dedication", "closing"))
    closing = closing if isinstance(closing, str) else ""
    title = title if isinstance(title, str) else ""
    author = author if isinstance(author, str) else ""
    dedication = dedication if isinstance(dedication, str) else ""
    return Book(
        title=title or "Untitled story",
        author=author or "",
        pages=pages,
        dedication=dedication,
        closing=closing,
        warnings=warnings,
    )


def _as_int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def book_from_project(project: Any) -> Book:
    """Build a Book from storage's ProjectView (duck-typed: title, author, segments with .selected)."""
    warnings: list[str] = []
    pages: list[Page] = []
    segments = sorted(getattr(project, "segments", None) or [], key=lambda s: getattr(s, "position", 0))
    for number, segment in enumerate(segments, start=1):
        selected = getattr(segment, "selected", None)
        image = None
        extra: dict[str, Any] = {"segment_id": getattr(segment, "id", None)}
        if selected is not None and getattr(selected, "image_path", None):
            image = _read_image_file(Path(selected.image_path), f"page {number}", warnings)
            extra["settings"] = dict(getattr(selected, "settings", None) or {})
        pages.append(Page(text=getattr(segment, "text", "") or "", image=image, extra=extra))
    return Book(
        title=getattr(project, "title", "") or "Untitled story",
        author=getattr(project, "author", "") or "",
        pages=pages,
        dedication=getattr(project, "dedication", "") or "",
        closing=getattr(project, "closing", "") or "",
        warnings=warnings,
    )
