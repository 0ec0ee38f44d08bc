"""The ZIP export: chosen pictures plus the story as escaped Markdown."""

from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image

from exports import Book, ExportError, Page, render_zip
from exports.bundle import escape_markdown


def image(fmt="PNG", color=(30, 90, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(buffer, fmt)
    return buffer.getvalue()


def test_zip_holds_pictures_and_story_markdown():
    pages = [
        Page("First *page* with a [link](javascript:alert(1)).", image()),
        Page("# Not a heading\n\n- not a list\n1. not numbered", image("JPEG")),
        Page("No picture here.", None),
        Page("Broken picture.", b"garbage"),
    ]
    data = render_zip(Book("Pip & <the> Fox", "Ada_Lovelace", pages))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = sorted(zf.namelist())
        assert names == ["page-01.png", "page-02.jpg", "story.md"]
        assert zf.read("page-01.png") == pages[0].image and zf.read("page-02.jpg") == pages[1].image
        md = zf.read("story.md").decode("utf-8")
    assert md.startswith("# Pip \\& \\<the\\> Fox\n")
    assert "*Ada\\_Lovelace*" in md
    assert "First \\*page\\* with a \\[link\\](javascript:alert(1))." in md
    assert "\n\\# Not a heading\n" in md and "\n\\- not a list" in md and "1\\. not numbered" in md
    assert "![Picture for page 1](page-01.png)" in md and "page-03" not in md and "page-04" not in md
    assert "No picture here." in md and "Broken picture." in md


def test_markdown_escaping_keeps_the_words():
    assert escape_markdown("a<b and c>d & `code` | ~x~ _y_") == "a\\<b and c\\>d \\& \\`code\\` \\| \\~x\\~ \\_y\\_"
    assert escape_markdown("+ plus\n> quote\n===") == "\\+ plus\n\\> quote\n\\==="


def test_zip_of_empty_book_raises():
    with pytest.raises(ExportError):
        render_zip(Book("Empty", "", []))


def test_the_dedication_is_quoted_under_the_title_in_story_md():
    import io as _io
    import zipfile as _zipfile

    from exports import Book, Page
    from exports.bundle import render_zip

    data = render_zip(Book("T", "Ann", [Page("Hi.")], dedication="For Mia,\nwho *loves* the sea\n\nand Pip"))
    md = _zipfile.ZipFile(_io.BytesIO(data)).read("story.md").decode()
    assert "> For Mia,  \n> who \\*loves\\* the sea\n>\n> and Pip\n" in md
    assert md.index("For Mia") < md.index("## 1")
