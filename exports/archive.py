"""A Book as a ZIP archive: the chosen pictures (page-01.png ...), the story as Markdown (story.md), and
manifest.json in the engine's manifest format (docs/formats.md) with every picture's settings, so the book
can be imported again (`python -m storage import-manifest`) and every picture drawn again from its seed.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from typing import Any

from core.seeds import is_seed
from exports.book import MANIFEST_FORMAT, MANIFEST_VERSION, Book, Page
from exports.errors import ExportError
from exports.fonts import clean
from exports.images import image_kind

_MD_INLINE = re.compile(r"([\\`*_\[\]<>|~&#])")
_MD_LINE_START = re.compile(r"^(\s*)([-+=>#]|\d+[.)])")


def escape_markdown(text: str) -> str:
    """Plain text that Markdown renders as the same plain text: no emphasis, links, HTML or headings."""
    out = []
    for line in clean(text).split("\n"):
        line = _MD_INLINE.sub(r"\\\1", line.strip())
        line = _MD_LINE_START.sub(lambda m: m.group(1) + (m.group(2)[:-1] + "\\" + m.group(2)[-1]), line)
        out.append(line)
    return "\n".join(out)


def _paragraphs(text: str) -> list[str]:
    blocks = [b.strip() for b in re.split(r"\n\s*\n", text) if b.strip()]
    # A single line break inside a paragraph stays a line break (two trailing spaces in Markdown).
    return ["  \n".join(escape_markdown(line) for line in block.split("\n") if line.strip()) for block in blocks]


def render_zip(book: Book) -> bytes:
    """ZIP bytes holding story.md and every readable picture; unreadable pictures are left out."""
    if not book.pages:
        raise ExportError("This book has no pages yet; add some story text before exporting it.")
    width = max(2, len(str(len(book.pages))))
    md = [f"# {escape_markdown(book.title.strip() or 'Untitled story')}", ""]
    if book.author.strip():
        md += [f"*{escape_markdown(book.author.strip())}*", ""]
    if book.dedication.strip():
        for n, paragraph in enumerate(_paragraphs(book.dedication)):
            md += [">"] * (n > 0) + [f"> {line}" for line in paragraph.split("\n")]
        md.append("")
    buffer = io.BytesIO()
    names: list[str | None] = []
    cover = None
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        if book.cover_image and (kind := image_kind(book.cover_image)):
            cover = f"cover.{kind}"
            zf.writestr(cover, book.cover_image, compress_type=zipfile.ZIP_STORED)
        for number, page in enumerate(book.pages, start=1):
            md += [f"## {number}", ""]
            kind = image_kind(page.image) if page.image else None
            name = None
            if kind and page.image:
                name = f"page-{number:0{width}d}.{kind}"
                # pictures are already compressed; deflating them again only costs time
                zf.writestr(name, page.image, compress_type=zipfile.ZIP_STORED)
                md += [f"![Picture for page {number}]({name})", ""]
                if page.caption and page.caption.strip():
                    md += [f"*{escape_markdown(' '.join(page.caption.split()))}*", ""]
            names.append(name)
            md += [p + "\n" for p in _paragraphs(page.text)]
        zf.writestr("story.md", "\n".join(md).rstrip() + "\n")
        manifest = json.dumps(book_manifest(book, names, cover), ensure_ascii=False, indent=2, default=str)
        zf.writestr("manifest.json", manifest + "\n")
    return buffer.getvalue()


def _story_and_spans(book: Book) -> tuple[str, list[tuple[int, int]]]:
    """The story text and each page's place in it: the book's own where every page's words stand there,
    else the pages' words joined by blank lines (a book built by hand, or one whose text disagrees)."""
    spans = [page.span for page in book.pages]
    text = book.story_text
    if text and all(s is not None and 0 <= s[0] <= s[1] <= len(text) for s in spans):
        if all(text[s[0] : s[1]] == page.text for s, page in zip(spans, book.pages) if s is not None):
            return text, [s for s in spans if s is not None]
    joined: list[str] = []
    out: list[tuple[int, int]] = []
    at = 0
    for page in book.pages:
        if joined:
            at += 2
        out.append((at, at + len(page.text)))
        joined.append(page.text)
        at += len(page.text)
    return "\n\n".join(joined), out


def _segment(index: int, page: Page, span: tuple[int, int], image: str | None) -> dict[str, Any]:
    segment: dict[str, Any] = {"index": index, "text": page.text, "start": span[0], "end": span[1]}
    seed = page.seed if page.seed is not None else page.settings.get("seed")
    if is_seed(seed):
        segment["seed"] = seed
    if page.prompt is not None:
        segment["prompt"] = page.prompt
    if page.negative_prompt is not None:
        segment["negative_prompt"] = page.negative_prompt
    if image is not None:
        segment["image"] = image
    if page.settings:
        # Kept even when the picture could not be read: its settings still draw it again.
        segment["settings"] = page.settings
    return segment


def book_manifest(book: Book, images: list[str | None], cover: str | None = None) -> dict[str, Any]:
    """The ZIP's manifest.json: the engine's manifest format (docs/formats.md), naming the pictures by
    their file names inside the ZIP (images[i] for page i, None where it has none)."""
    story_text, spans = _story_and_spans(book)
    doc: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "title": book.title,
        "author": book.author,
        "source_text": story_text,
    }
    doc.update({key: value for key, value in _book_details(book).items() if value})
    if cover is not None:
        doc["cover"] = cover
    doc["segments"] = [
        _segment(index, page, span, image) for index, (page, span, image) in enumerate(zip(book.pages, spans, images))
    ]
    return doc


def _book_details(book: Book) -> dict[str, Any]:
    return {
        "dedication": book.dedication,
        "closing": book.closing,
        "style": book.style,
        "profile": book.profile,
        "setting": book.setting,
        "characters": [{"name": name, "description": description} for name, description in book.characters],
        "created": book.created,
    }
