"""A Book as a ZIP: the chosen pictures (page-01.png ...) and the story as Markdown (story.md)."""

from __future__ import annotations

import io
import re
import zipfile

from exports.book import Book
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
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        if book.cover_image and (kind := image_kind(book.cover_image)):
            zf.writestr(f"cover.{kind}", book.cover_image, compress_type=zipfile.ZIP_STORED)
        for number, page in enumerate(book.pages, start=1):
            md += [f"## {number}", ""]
            kind = image_kind(page.image) if page.image else None
            if kind and page.image:
                name = f"page-{number:0{width}d}.{kind}"
                # pictures are already compressed; deflating them again only costs time
                zf.writestr(name, page.image, compress_type=zipfile.ZIP_STORED)
                md += [f"![Picture for page {number}]({name})", ""]
                if page.caption and page.caption.strip():
                    md += [f"*{escape_markdown(' '.join(page.caption.split()))}*", ""]
            md += [p + "\n" for p in _paragraphs(page.text)]
        zf.writestr("story.md", "\n".join(md).rstrip() + "\n")
    return buffer.getvalue()
