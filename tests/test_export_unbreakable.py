"""Runs without a break opportunity (a line of emoji, a long word of letters and marks) wrap like any other
text: every emoji is printed inside the page, none is cut in two, no letter loses its marks."""

from __future__ import annotations

import io
import unicodedata

import pytest
from pypdf import PdfReader
from pypdf.generic import ContentStream

from exports import Book, Page, PdfOptions, emoji, render_pdf
from exports.fonts import FontSet
from exports.typeset import break_lines

needs_emoji_font = pytest.mark.skipif(emoji._find("") is None, reason="no colour emoji font (fonts-noto-color-emoji)")
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"


def _multiply(m, n):
    a, b, c, d, e, f = m
    a2, b2, c2, d2, e2, f2 = n
    return (
        a * a2 + b * c2,
        a * b2 + b * d2,
        c * a2 + d * c2,
        c * b2 + d * d2,
        e * a2 + f * c2 + e2,
        e * b2 + f * d2 + f2,
    )


def image_boxes(pdf: bytes) -> list[tuple[int, str, float, float, float, float]]:
    """(page, image name, x0, y0, x1, y1) of every image drawn, in page coordinates."""
    reader = PdfReader(io.BytesIO(pdf))
    boxes = []
    for number, page in enumerate(reader.pages):
        stack, ctm = [], (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
        for operands, operator in ContentStream(page.get_contents(), reader).operations:
            if operator == b"q":
                stack.append(ctm)
            elif operator == b"Q":
                ctm = stack.pop()
            elif operator == b"cm":
                ctm = _multiply(tuple(float(v) for v in operands), ctm)
            elif operator == b"Do":
                a, _, _, d, e, f = ctm
                boxes.append((number, str(operands[0]), min(e, e + a), min(f, f + d), max(e, e + a), max(f, f + d)))
    return boxes


def _inside_pages(pdf: bytes, boxes) -> bool:
    box = PdfReader(io.BytesIO(pdf)).pages[0].mediabox
    width, height = float(box.width), float(box.height)
    return all(0 <= x0 and x1 <= width + 0.01 and 0 <= y0 and y1 <= height + 0.01 for _, _, x0, y0, x1, y1 in boxes)


def _book(text: str) -> Book:
    return Book("Emoji", "", [Page(text)])


OPTIONS = PdfOptions(cover=False, closing_page=False, page_size="A5")


@needs_emoji_font
@pytest.mark.parametrize("count", [120, 700])
def test_a_line_of_emoji_wraps_and_prints_every_one_inside_the_page(monkeypatch, count):
    monkeypatch.delenv(emoji.ENV, raising=False)
    result = render_pdf(_book("🦊" * count), OPTIONS)
    boxes = image_boxes(result.pdf)
    assert len(boxes) == count
    assert _inside_pages(result.pdf, boxes), max(x1 for *_, x1, _ in boxes)
    assert len({round(y0) for _, _, _, y0, _, _ in boxes}) > 3  # on several lines
    assert not result.warnings


@needs_emoji_font
def test_joined_emoji_are_never_cut_in_two(monkeypatch):
    monkeypatch.delenv(emoji.ENV, raising=False)
    text = "Look" + (FAMILY + "🇬🇧" + "👋🏽") * 40 + "end"
    result = render_pdf(_book(text), OPTIONS)
    boxes = image_boxes(result.pdf)
    assert len(boxes) == 120 and len({name for _, name, *_ in boxes}) == 3  # whole family, flag and hand
    assert _inside_pages(result.pdf, boxes)


def test_a_long_word_breaks_between_letters_never_between_a_letter_and_its_marks():
    fonts = FontSet.for_family("serif")
    word = "e\u0301\u0323" * 300 + "🦊" * 50 + FAMILY * 20
    lines = break_lines(word, 200, fonts, 12)
    assert len(lines) > 3 and "".join(lines) == word
    for line in lines:
        assert unicodedata.category(line[0])[0] != "M" and line[0] not in emoji.JOINERS
        assert not line.endswith("\u200d")
        assert emoji.CLUSTER.sub("", line).count("\U0001f468") == 0  # a family is never split from its joiners
