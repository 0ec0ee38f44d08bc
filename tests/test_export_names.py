"""File names from titles (core.paths.file_stem), the closing page's language (exports.closing) and the grouped
low-resolution note (exports.pdf)."""

from __future__ import annotations

import fixtures_images as fx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.paths import MAX_STEM_BYTES as MAX_BYTES
from core.paths import file_stem
from exports.closing import WORDS, closing_words, language_of


@pytest.mark.parametrize(
    ("title", "stem"),
    [
        ("The Lighthouse Fox", "The Lighthouse Fox"),
        ("きつねの とうだい", "きつねの とうだい"),
        ('Why? A "story": part 1/2', "Why A story part 1 2"),
        ("  ...dots and spaces...  ", "dots and spaces"),
        ("CON", "CON (book)"),
        ("nul.txt", "nul (book).txt"),
        ("", "storybook"),
        ("???", "storybook"),
        ("tab\there\nnewline", "tab here newline"),
    ],
)
def test_file_names_keep_the_title_readable_and_valid_everywhere(title, stem):
    assert file_stem(title) == stem


@given(st.text(max_size=400))
def test_any_title_gives_a_short_valid_file_name(title):
    stem = file_stem(title)
    assert stem and len(stem.encode("utf-8")) <= MAX_BYTES + len(" (book)")
    assert not set(stem) & set('<>:"/\\|?*') and not any(ord(c) < 32 for c in stem)
    assert stem == stem.strip(" .") or stem.endswith(" (book)")


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("The fox lived in the lighthouse and she lit the lamp.", "english"),
        ("きつねは とうだいに すんでいました。", "japanese"),
        ("狐狸住在灯塔里。每天晚上它点亮灯。", "chinese"),
        ("여우는 등대에 살았어요.", "korean"),
        ("Лиса жила на маяке.", "russian"),
        ("Der Fuchs wohnte im Leuchtturm und die Lampe war nicht aus.", "german"),
        ("Le renard vivait dans le phare et il allumait la lampe.", "french"),
        ("الثعلب يعيش في المنارة", "arabic"),
    ],
)
def test_the_closing_words_follow_the_language_of_the_story(text, language):
    from exports import Book, Page

    assert language_of([text]) == language
    assert closing_words(Book("t", pages=[Page(text)])) == WORDS[language]
    assert closing_words(Book("t", pages=[Page(text)], closing="Fin.")) == "Fin."


def test_many_low_resolution_pictures_make_one_note():
    from exports import Book, Page, PdfOptions, render_pdf

    small = fx.encode(fx.gradient((64, 64)))
    book = Book("Small pictures", pages=[Page(f"Page {i}.", image=small) for i in range(9)])
    result = render_pdf(book, PdfOptions(cover=False))
    notes = [w for w in result.warnings if "dpi" in w]
    assert len(notes) == 1 and notes[0].startswith("9 pictures print at") and "pages 1-9 of the story" in notes[0]
    assert sum(1 for r in result.image_reports if not r.ok) == 9  # every picture is still reported on its own
    one = render_pdf(Book("One", pages=[Page("Only.", image=small)]), PdfOptions(cover=False))
    assert next(w for w in one.warnings if "dpi" in w).startswith("The picture for page 1 of the story prints at")
