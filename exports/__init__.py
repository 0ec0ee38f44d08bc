"""Pure exporters: a Book in, bytes out (PDF, ZIP, PNG previews). No streamlit, no database.

book = book_from_manifest("out/manifest.json")      # or book_from_project(library.get_project(id))
result = render_pdf(book, PdfOptions(layout="facing", page_size="8x8", bleed=True))
result.pdf, result.page_count, result.image_reports, result.warnings
"""

from exports.archive import render_zip
from exports.book import Book, Page, book_from_manifest, book_from_project
from exports.errors import ExportError
from exports.pdf import LAYOUTS, PAGE_SIZES, ImageReport, PdfOptions, PdfResult, render_pdf
from exports.preview import preview_available, render_preview

__all__ = [
    "LAYOUTS",
    "PAGE_SIZES",
    "Book",
    "ExportError",
    "ImageReport",
    "Page",
    "PdfOptions",
    "PdfResult",
    "book_from_manifest",
    "book_from_project",
    "preview_available",
    "render_pdf",
    "render_preview",
    "render_zip",
]
