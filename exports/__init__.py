"""Pure exporters: a Book in, bytes out (PDF, ZIP, PNG previews). No streamlit, no database.

    book = book_from_manifest("out/manifest.json")      # or book_from_project(library.get_project(id))
    result = render_pdf(book, PdfOptions(layout="facing", page_size="8x8", bleed=True))
    result.pdf, result.page_count, result.image_reports, result.warnings
"""
from .book import Book, Page, book_from_manifest, book_from_project
from .bundle import render_zip
from .errors import ExportError
from .pdf import LAYOUTS, PAGE_SIZES, ImageReport, PdfOptions, PdfResult, render_pdf
from .preview import preview_available, render_preview

__all__ = [
    "Book", "Page", "book_from_manifest", "book_from_project", "render_zip", "ExportError", "LAYOUTS",
    "PAGE_SIZES", "ImageReport", "PdfOptions", "PdfResult", "render_pdf", "preview_available", "render_preview",
]
