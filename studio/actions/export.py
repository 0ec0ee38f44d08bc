"""The printable book: the PDF with a preview of its first pages, and the ZIP of its pictures and text.

Rendering is CPU work on pure functions (exports/), quick for a picture book, so the Export screen calls it
directly under a spinner rather than through the GPU worker. exports (reportlab, about 0.7 s to import) is
imported when a book is made, not when a screen loads.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass
from pathlib import Path

from core.paths import file_stem
from storage import ProjectView
from studio.actions.pictures import draft_pages


def emoji_font() -> Path | None:
    """The colour emoji font PDFs draw emoji from, None when there is none (exports.emoji)."""
    from exports import emoji

    return emoji.font_path() if emoji.available() else None


@dataclass(frozen=True)
class ExportOutcome:
    key: tuple  # export_key(): what this PDF was made from
    pdf: bytes
    page_count: int
    warnings: tuple[str, ...]  # everything exports found: low-resolution pictures, missing files…
    low_dpi: tuple[tuple[int | None, float], ...]  # (story page index or None for the cover, dpi)
    previews: tuple[bytes, ...]  # PNGs of the first pages; empty when they cannot be drawn
    preview_note: str | None  # why there is no preview, in a sentence
    zip: bytes  # the pictures and story.md
    file_stem: str  # a safe file name for the downloads, from the title


def export_key(project: ProjectView, options) -> tuple:
    """What a PDF depends on: the project as saved (a new picture changes `updated`, not `version`; the closing
    words, like every book detail, change `version`) and the options."""
    return (project.id, project.version, project.updated.isoformat(), astuple(options))


def language_closing_words(project: ProjectView) -> str:
    """ "The End" in the story's language (exports.closing), for the scripts the PDF's fonts draw: what the
    closing page says while the book has no closing words of its own."""
    from exports.closing import WORDS, language_of

    return WORDS[language_of([p.text for p in project.pages] or [project.title])]


def default_closing_words(project: ProjectView) -> str:
    """What the closing page says: the book's own closing words (ProjectView.closing), else "The End" in the
    story's language."""
    return project.closing.strip() or language_closing_words(project)


def drafts_note(project: ProjectView) -> str | None:
    """ "3 pages are drafts" when pictures the book would print are quick drafts not finished yet, else None."""
    count = len(draft_pages(project))
    if not count:
        return None
    return f"{count} page{'s' if count != 1 else ''} {'are drafts' if count != 1 else 'is a draft'}"


MAX_PREVIEW_PAGES = 200  # "leaf through all pages" draws at most this many


def preview_every_page(outcome: ExportOutcome, dpi: int = 40) -> tuple[bytes, ...]:
    """PNGs of the made PDF's pages, up to MAX_PREVIEW_PAGES, small: to leaf through before printing."""
    from exports import render_preview

    return tuple(render_preview(outcome.pdf, pages=min(outcome.page_count, MAX_PREVIEW_PAGES), dpi=dpi))


def export_book(project: ProjectView, options, *, preview_pages: int = 3, preview_dpi: int = 60) -> ExportOutcome:
    """The PDF (with a preview of its first pages) and the ZIP of a saved project; ExportError says what to change.
    The closing page says the project's closing words (default_closing_words)."""
    from exports import ExportError, book_from_project, preview_available, render_pdf, render_preview, render_zip

    book = book_from_project(project)
    result = render_pdf(book, options)
    archive = render_zip(book)
    previews: list[bytes] = []
    note = None
    if not preview_available():
        note = (
            "The preview needs poppler's pdftoppm, which is not installed on this computer "
            "(apt-get install poppler-utils); the PDF itself is complete."
        )
    else:
        try:
            previews = render_preview(result.pdf, pages=preview_pages, dpi=preview_dpi)
        except ExportError as exc:
            note = exc.message
    low = tuple((r.page_index, r.dpi) for r in result.image_reports if not r.ok and r.dpi > 0)
    stem = file_stem(project.title)
    return ExportOutcome(
        key=export_key(project, options),
        pdf=result.pdf,
        page_count=result.page_count,
        warnings=tuple(dict.fromkeys(result.warnings)),
        low_dpi=low,
        previews=tuple(previews),
        preview_note=note,
        zip=archive,
        file_stem=stem,
    )
