"""python -m exports: print a saved project or an engine manifest as a PDF or a ZIP.

    python -m exports pdf PROJECT_ID OUT.pdf [--layout L] [--page-size S] [--orientation O] [--bleed]
    python -m exports pdf --manifest DIR/manifest.json OUT.pdf [...]
    python -m exports zip PROJECT_ID OUT.zip
    python -m exports zip --manifest DIR/manifest.json OUT.zip

Errors print one sentence on stderr and exit with status 1; OUT is written to a temporary file
and renamed into place, so it is either complete or absent.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from core.errors import UserError
from exports.book import Book, book_from_manifest, book_from_project
from exports.errors import ExportError
from exports.pdf import LAYOUTS, ORIENTATIONS, PAGE_SIZES, PdfOptions, page_size_name, render_pdf


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one sentence, exit 1, like every other failure
        self.exit(1, f"{self.prog}: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m exports", description="Print a story as a PDF book or a ZIP of pictures and text.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, helptext in (
        ("pdf", "write a print-ready PDF"),
        ("zip", "write the pictures, story.md and manifest.json as a ZIP"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument(
            "target", nargs="+", metavar="[PROJECT_ID] OUT", help="project id (unless --manifest) and output file"
        )
        p.add_argument("--manifest", help="an engine manifest.json (or its folder) instead of a saved project")
        if name == "pdf":
            p.add_argument("--layout", choices=LAYOUTS, default="picture_above")
            # "letter" or "a5" are what people type; the names are matched without regard to case
            p.add_argument("--page-size", type=lambda v: page_size_name(v) or v, choices=list(PAGE_SIZES), default="A4")
            p.add_argument("--orientation", choices=ORIENTATIONS, default="auto")
            p.add_argument("--bleed", action="store_true", help="add 3 mm bleed and crop marks")
            p.add_argument("--no-crop-marks", action="store_true", help="with --bleed: leave the crop marks off")
            p.add_argument("--font", choices=("serif", "sans"), default="serif")
            p.add_argument(
                "--font-size", type=float, default=None, help="body text size in points (default: by page size)"
            )
            p.add_argument("--margin-mm", type=float, default=None)
            p.add_argument("--no-cover", action="store_true")
            p.add_argument("--no-closing-page", action="store_true")
            p.add_argument(
                "--closing-words",
                default="",
                help="what the closing page says (default: the book's own closing words, else 'The End' in the "
                "story's language)",
            )
            p.add_argument("--no-page-numbers", action="store_true")
    return parser


def _load(args) -> tuple[Book, Path]:
    if args.manifest:
        if len(args.target) != 1:
            raise ExportError("With --manifest give only the output file.")
        return book_from_manifest(args.manifest), Path(args.target[0])
    if len(args.target) != 2:
        raise ExportError("Give a project id and an output file, or --manifest and an output file.")
    project_id, out = args.target
    if not project_id.isdigit():
        raise ExportError(f"The project id must be a number, not {project_id!r}.")
    # Only the CLI touches storage; the renderers take a plain Book.
    from storage.errors import StorageError
    from storage.library import Library

    try:
        with Library() as library:
            return book_from_project(library.get_project(int(project_id))), Path(out)
    except StorageError as err:
        raise ExportError(str(err)) from None


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_atomically(out: Path, data: bytes) -> None:
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise ExportError(f"The folder {folder} does not exist.")
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=folder)
    try:
        # mkstemp makes the file private (0600); the finished export gets what any new file would: 0666 less umask.
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        book, out = _load(args)
        if args.command == "pdf":
            options = PdfOptions(
                layout=args.layout,
                page_size=args.page_size,
                orientation=args.orientation,
                bleed=args.bleed,
                crop_marks=not args.no_crop_marks,
                font=args.font,
                font_size=args.font_size,
                margin_mm=args.margin_mm,
                cover=not args.no_cover,
                closing_page=not args.no_closing_page,
                page_numbers=not args.no_page_numbers,
            )
            if args.closing_words.strip():
                book.closing = args.closing_words.strip()
            result = render_pdf(book, options)
            _write_atomically(out, result.pdf)
            for warning in result.warnings:
                print(f"warning: {warning}", file=sys.stderr)
            print(f"Wrote {out} ({result.page_count} pages).")
        else:
            from exports.archive import render_zip

            for warning in book.warnings:
                print(f"warning: {warning}", file=sys.stderr)
            _write_atomically(out, render_zip(book))
            print(f"Wrote {out} ({len(book.pages)} pages of story).")
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"error: could not write the file: {err.strerror or err}.", file=sys.stderr)
        return 1
    except Exception as err:  # noqa: BLE001 - a bug, but scripts still get one line and status 1
        print(f"error: the export failed unexpectedly ({type(err).__name__}: {err}).", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
