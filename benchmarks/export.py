"""How fast a long story prints to PDF (exports.render_pdf), and a run of emoji with no break opportunity.

    python -m benchmarks.export [--chars 1000000] [--repeats 3] [--emoji 20000] [--profile]

A 1 MB English story is 700+ printed pages. The story is seeded prose (benchmarks/paging.py's `prose`),
cut into pages of about two paragraphs, printed text-only (no pictures: pictures cost the same per page
whatever the text). Prints the best and the median of the repeats, in wall time and in CPU time of this
process (steadier on a busy machine). --profile prints the 25 costliest functions of one run instead.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
from collections.abc import Callable

from benchmarks import timing
from benchmarks.paging import prose
from exports import Book, Page, PdfOptions, render_pdf


def story_book(chars: int) -> Book:
    title, *paragraphs = prose(chars).split("\n\n")
    pages = ["\n\n".join(paragraphs[i : i + 2]) for i in range(0, len(paragraphs), 2)]
    return Book(title=title, author="A. Writer", pages=[Page(text=text) for text in pages])


def measure(label: str, run: Callable[[], object], repeats: int) -> None:
    timing.measure(
        label, run, repeats, width=46, digits=2, detail=lambda pdf: f"   {getattr(pdf, 'page_count', '?')} PDF pages"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--chars", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--emoji", type=int, default=20_000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    book = story_book(args.chars)
    text_chars = sum(len(p.text) for p in book.pages)
    options = PdfOptions(page_size="A5")
    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(render_pdf, book, options)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        return
    render_pdf(Book("warm-up", "", [Page("Fonts load once.")]), options)
    print(f"story: {text_chars:,} characters on {len(book.pages)} pages of the book")
    measure(f"{text_chars / 1e6:.1f} MB story, A5, text only", lambda: render_pdf(book, options), args.repeats)
    one_page = Book(book.title, "", [Page("\n\n".join(p.text for p in book.pages))])
    measure(f"{text_chars / 1e6:.1f} MB story as one page", lambda: render_pdf(one_page, options), args.repeats)
    if args.emoji:
        emoji_book = Book("Emoji", "", [Page("🦊" * args.emoji)])
        measure(f"{args.emoji:,} emoji with no space between", lambda: render_pdf(emoji_book, options), args.repeats)


if __name__ == "__main__":
    main()
