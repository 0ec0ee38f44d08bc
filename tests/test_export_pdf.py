"""PDF export: layouts, text, fonts, escaping, languages, pictures, long stories, previews."""

from __future__ import annotations

import io
import itertools
import re
import shutil
import subprocess
import time
import unicodedata
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageStat
from pypdf import PdfReader

from exports import LAYOUTS, Book, ExportError, Page, PdfOptions, emoji, render_pdf, render_preview
from exports.pdf import PAGE_SIZES

MM = 72 / 25.4
STORY = [
    "Once upon a time, on a windy island at the edge of the sea, there lived a small red fox named Pip.",
    "One evening a storm rolled in from the west. The waves grew tall and grey, and the rain drummed on the windows.",
    "Pip looked up the long spiral stairs. They were dark and steep, and Pip was afraid of the dark.",
    "In the morning the storm was gone, and Pip was never afraid of the dark again.",
]
HOSTILE = [
    "a<b and c>d",
    "&amp; stays &amp; and &lt; stays &lt;",
    "<b>bold</b> is not bold",
    '<img src="/etc/passwd"/> is not a picture',
    '<a href="javascript:alert(1)">x</a> is not a link',
    "<font face='Courier'>no font change</font> <br/> <para>end</para>",
]


def picture(width: int = 320, height: int = 320, seed: int = 0, fmt: str = "PNG") -> bytes:
    image = Image.new("RGB", (width, height), (40 + seed * 30 % 200, 120, 200))
    draw = ImageDraw.Draw(image)
    for k in range(6):
        r = max(2, width // (4 + k))
        x, y = (seed * 37 + k * 53) % width, (seed * 11 + k * 71) % height
        draw.ellipse([x - r, y - r, x + r, y + r], fill=(250 - k * 30, 80 + k * 20, 60))
    buffer = io.BytesIO()
    image.save(buffer, fmt, quality=90)
    return buffer.getvalue()


def sample_book(texts=STORY, size: int = 320) -> Book:
    return Book("The Lighthouse Fox", "Ada", [Page(t, picture(size, size, i)) for i, t in enumerate(texts)])


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text)


def pypdf_text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(pdf)).pages)


def poppler_text(pdf: bytes, tmp_path) -> str:
    """pdftotext undoes the visual ordering of right-to-left lines; fall back to pypdf without it."""
    if shutil.which("pdftotext") is None:
        return pypdf_text(pdf)
    path = tmp_path / "book.pdf"
    path.write_bytes(pdf)
    return subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True, text=True
    ).stdout


def fonts_in(pdf: bytes) -> dict[str, object]:
    fonts = {}
    for page in PdfReader(io.BytesIO(pdf)).pages:
        resources = page.get("/Resources")
        if resources is None or "/Font" not in resources:
            continue
        for font in resources["/Font"].get_object().values():
            font = font.get_object()
            fonts[str(font["/BaseFont"])] = font
    return fonts


def xobjects(page) -> dict:
    found = page["/Resources"].get("/XObject")
    return dict(found.get_object()) if found is not None else {}


needs_poppler = pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils (pdftoppm) is not installed")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_page_count_and_story_order_per_layout(layout):
    result = render_pdf(sample_book(), PdfOptions(layout=layout))
    expected = {"facing": 2 * len(STORY) + 2}.get(layout, len(STORY) + 2)  # cover + pages + closing
    assert result.page_count == expected == len(PdfReader(io.BytesIO(result.pdf)).pages)
    text = " ".join(words(pypdf_text(result.pdf)))
    position = 0
    for segment in STORY:
        found = text.find(" ".join(words(segment)), position)
        assert found >= position, f"{layout}: segment missing or out of order: {segment[:30]}"
        position = found
    assert "The End" in text and "Lighthouse" in text
    print(f"{layout}: {result.page_count} pages")


def test_fonts_are_embedded_truetype_and_cjk_only_when_needed():
    latin = render_pdf(sample_book())
    fonts = fonts_in(latin.pdf)
    assert fonts, "no fonts found"
    for name, font in fonts.items():
        descriptor = font["/FontDescriptor"].get_object()  # the base-14 fonts have none
        assert "/FontFile2" in descriptor, f"{name} is not an embedded TrueType font"
    assert not any("DroidSans" in name for name in fonts)  # the 3 MB CJK font stays out of Latin books
    assert any("DejaVuSerif" in name for name in fonts)
    sans = fonts_in(render_pdf(sample_book(), PdfOptions(font="sans")).pdf)
    assert all("DejaVuSerif" not in name for name in sans)


def test_markup_in_story_title_and_author_prints_literally(tmp_path):
    book = Book(
        '<b>Bold</b> & <i>"Title"</i>',
        "<a href='javascript:x'>Me</a>",
        [Page(t, picture(seed=i)) for i, t in enumerate(HOSTILE)],
    )
    book.pages[0].caption = "<img src='/etc/hostname'/> caption"
    result = render_pdf(book)
    reader = PdfReader(io.BytesIO(result.pdf))
    for page in reader.pages:
        assert "/Annots" not in page, "story text became a link"
    text = pypdf_text(result.pdf)
    for line in HOSTILE:
        assert " ".join(line.split()) in " ".join(text.split()), line
    assert '<b>Bold</b> & <i>"Title"</i>' in " ".join(text.split())
    assert "<a href='javascript:x'>Me</a>" in text
    assert "<img src='/etc/hostname'/> caption" in text
    # only our own pictures were embedded: one per page, none read from disk because of the text
    images = set()
    for page in reader.pages:
        images.update(xobjects(page))
    assert len(images) == len(HOSTILE)
    assert b"/URI" not in result.pdf and b"/JavaScript" not in result.pdf


def test_emoji_right_to_left_and_cjk_print_their_words(tmp_path, monkeypatch):
    monkeypatch.setenv(emoji.ENV, "none")  # as on a computer without an emoji font
    pages = [
        "Pip laughed 🦊🎉 and smiled 😀 at the sea 👨‍👩‍👧 today.",
        "שלום עולם, אני אוהב שוקולד.",
        "مرحبا بالعالم. القطة تنام على السجادة.",
        "昔々、ある島に小さな赤いキツネが住んでいました。",
        "작은 여우가 등대에 살았습니다.",
        "Mixed: the fox said שלום to the gull.",
    ]
    result = render_pdf(Book("Languages 言葉", "", [Page(t, picture(seed=i)) for i, t in enumerate(pages)]))
    text = unicodedata.normalize("NFKC", poppler_text(result.pdf, tmp_path))  # presentation forms -> letters
    flat = " ".join(text.split())
    for word in (
        "Pip laughed",
        "and smiled",
        "today",
        "昔々",
        "キツネが住んでいました",
        "작은",
        "여우가",
        "言葉",
        "Mixed",
    ):
        assert word in flat, word
    for word in ("שלום", "עולם", "שוקולד", "مرحبا", "بالعالم", "القطة", "السجادة"):
        assert word in flat or word[::-1] in flat, word
    assert any("DroidSans" in name for name in fonts_in(result.pdf))
    # No colour-emoji font: said, with where to get one, not printed as boxes.
    assert any("left out" in w and "🦊" in w and "Noto Color Emoji" in w for w in result.warnings)


needs_emoji_font = pytest.mark.skipif(emoji._find("") is None, reason="no colour emoji font (fonts-noto-color-emoji)")


@needs_emoji_font
def test_emoji_print_in_colour_from_the_computers_emoji_font(tmp_path, monkeypatch):
    monkeypatch.delenv(emoji.ENV, raising=False)
    text = "Pip 🦊 met a family 👨‍👩‍👧, waved 👋🏽, saw 🇬🇧, loved ❤️ and 🍓 🍓, page 1️⃣ ☀ sun."
    book = Book("The 🦊 book", "", [Page(text, picture()), Page("昔々🦊、キツネ🍓がいました。", None)])
    result = render_pdf(book, PdfOptions(page_size="A5"))
    assert not any("left out" in w for w in result.warnings), result.warnings
    flat = " ".join(poppler_text(result.pdf, tmp_path).split())
    for word in ("Pip", "met a family", "waved", "loved", "and", "sun", "昔々", "キツネ", "がいました"):
        assert word in flat, word
    reader = PdfReader(io.BytesIO(result.pdf))
    # The picture, then one image for each different emoji: a family, a skin tone, a flag are one each.
    assert len(xobjects(reader.pages[1])) == 1 + 7
    assert len(xobjects(reader.pages[0])) == 1 + 1  # the cover: its picture and the fox in the title
    page = Image.open(io.BytesIO(render_preview(result.pdf, pages=3, dpi=60)[2])).convert("RGB")
    assert any(r > 150 and g < 110 and b < 110 for r, g, b in page.get_flattened_data())  # the strawberry is red

    # A font file that is not one: emoji are left out, as without a font, and the book is made.
    broken = tmp_path / "broken.ttf"
    broken.write_bytes(b"not a font")
    monkeypatch.setenv(emoji.ENV, str(broken))
    result = render_pdf(book, PdfOptions(page_size="A5"))
    assert any("left out" in w and "🦊" in w for w in result.warnings)


def test_right_to_left_lines_are_reordered_for_display():
    from exports.bidi import shape_arabic, visual_order

    assert visual_order("שלום עולם", True) == "םלוע םולש"
    assert visual_order("abc שלום def", False) == "abc םולש def"
    assert visual_order("שלום 123 (x)", True) == "(x) 123 םולש"
    shaped = shape_arabic("بسم")
    assert shaped == "\ufe91\ufeb4\ufee2"  # initial beh, medial seen, final meem


@needs_poppler
@pytest.mark.parametrize("layout", LAYOUTS)
def test_pages_render_and_are_not_blank(layout):
    result = render_pdf(sample_book(), PdfOptions(layout=layout, page_size="8x8"))
    pngs = render_preview(result.pdf, pages=result.page_count, dpi=30)
    assert len(pngs) == result.page_count
    for number, png in enumerate(pngs, start=1):
        image = Image.open(io.BytesIO(png)).convert("RGB")
        assert max(ImageStat.Stat(image).stddev) > 3.0, f"{layout}: page {number} looks blank"


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_long_segment_flows_onto_more_pages_without_losing_a_word(layout):
    long_text = "\n\n".join(" ".join(f"w{n:04d}" for n in range(start, start + 150)) for start in range(0, 1200, 150))
    book = Book(
        "Long",
        "",
        [
            Page("Short first page.", picture()),
            Page(long_text, picture(seed=2)),
            Page("After the long one.", picture(seed=3)),
        ],
    )
    result = render_pdf(book, PdfOptions(layout=layout, page_size="A5"))
    assert result.page_count > (6 if layout == "facing" else 5)
    found = re.findall(r"w\d{4}", pypdf_text(result.pdf))
    assert found == [f"w{n:04d}" for n in range(1200)]
    assert "After the long one" in pypdf_text(result.pdf)
    if layout == "facing":  # every picture stays on the left-hand (even) page of its spread
        reader = PdfReader(io.BytesIO(result.pdf))
        with_pictures = [i + 1 for i, p in enumerate(reader.pages) if i > 0 and xobjects(p)]
        assert with_pictures and all(n % 2 == 0 for n in with_pictures)


def test_one_megabyte_story_exports_in_reasonable_time():
    sentence = "The little fox climbed the stairs and lit the lamp for the boats at sea. "
    paragraphs = []
    n = 0
    while sum(map(len, paragraphs)) < 1_000_000:
        paragraphs.append(f"Chapter {n}. " + sentence * (3 + n % 25))
        n += 1
    story = "\n\n".join(paragraphs)[:1_000_000]
    pages = [Page(story[i : i + 100_000], picture(seed=i)) for i in range(0, len(story), 100_000)]
    start = time.perf_counter()
    result = render_pdf(Book("A very long story", "", pages))
    elapsed = time.perf_counter() - start
    print(
        f"1 MB story: {len(story):,} characters, {result.page_count} pages, {len(result.pdf) / 1e6:.1f} MB PDF, "
        f"{elapsed:.1f} s"
    )
    assert elapsed < 60
    assert result.page_count > 300
    last_words = words(story)[-8:]
    reader = PdfReader(io.BytesIO(result.pdf))
    tail = " ".join(words(" ".join(reader.pages[i].extract_text() for i in range(-4, 0))))
    assert " ".join(last_words) in tail


def test_low_resolution_picture_is_reported_and_large_one_is_embedded_at_full_size():
    small = Book("Dpi", "", [Page("A tiny picture on a big page.", picture(64, 64))])
    result = render_pdf(small, PdfOptions(page_size="A4", cover=False))
    (report,) = result.image_reports
    assert report.page_index == 0 and report.dpi < 150 and not report.ok
    assert any("dpi" in w and "page 1 of the story" in w for w in result.warnings)

    big = picture(2000, 1500, fmt="JPEG")
    result = render_pdf(Book("Dpi", "", [Page("A sharp picture.", big)]), PdfOptions(page_size="A5"))
    assert all(r.ok and r.dpi >= 150 for r in result.image_reports)
    assert not any("dpi" in w for w in result.warnings)
    reader = PdfReader(io.BytesIO(result.pdf))
    xobject = next(iter(xobjects(reader.pages[1]).values())).get_object()
    assert (xobject["/Width"], xobject["/Height"]) == (2000, 1500)
    assert xobject["/Filter"] in ("/DCTDecode", ["/DCTDecode"])  # the JPEG went in byte for byte


def test_broken_picture_prints_page_without_it_and_says_so():
    pages = [
        Page("First page has a broken picture.", b"\x89PNG\r\n\x1a\nnot really"),
        Page("Second page has none.", None),
        Page("Third page is fine.", picture()),
    ]
    result = render_pdf(Book("Broken", "", pages))
    assert result.page_count == 5
    assert any("page 1 of the story" in w and "without it" in w for w in result.warnings)
    assert (0, 0.0, False) in result.image_reports
    assert "First page has a broken picture." in pypdf_text(result.pdf)


def test_pixel_bomb_is_refused_not_decoded():
    buffer = io.BytesIO()
    Image.new("1", (12000, 12000)).save(buffer, "PNG")  # 144 megapixels in a few KB
    result = render_pdf(Book("Bomb", "", [Page("Careful.", buffer.getvalue())]))
    assert any("too large" in w for w in result.warnings)


def test_empty_book_and_bad_options_raise_a_sentence():
    with pytest.raises(ExportError, match="no pages"):
        render_pdf(Book("Empty", "", []))
    with pytest.raises(ExportError, match="no pages"):
        render_pdf(Book("Blank", "", [Page("   "), Page("")]))
    with pytest.raises(ExportError, match="layout must be one of"):
        render_pdf(sample_book(), PdfOptions(layout="zigzag"))
    with pytest.raises(ExportError, match="page size"):
        render_pdf(sample_book(), PdfOptions(page_size="B7"))
    with pytest.raises(ExportError, match="font family"):
        render_pdf(sample_book(), PdfOptions(font="comic"))


def test_page_sizes_orientation_bleed_and_crop_marks():
    book = sample_book(STORY[:1])
    for size, (w, h) in PAGE_SIZES.items():
        page = PdfReader(io.BytesIO(render_pdf(book, PdfOptions(page_size=size)).pdf)).pages[0]
        assert (float(page.mediabox.width), float(page.mediabox.height)) == pytest.approx((w, h), abs=0.01)
    landscape = PdfReader(io.BytesIO(render_pdf(book, PdfOptions(layout="side_by_side")).pdf)).pages[0]
    assert float(landscape.mediabox.width) > float(landscape.mediabox.height)
    forced = PdfReader(io.BytesIO(render_pdf(book, PdfOptions(orientation="landscape", page_size="A5")).pdf)).pages[0]
    assert float(forced.mediabox.width) == pytest.approx(PAGE_SIZES["A5"][1], abs=0.01)

    w, h = PAGE_SIZES["8x8"]
    page = PdfReader(io.BytesIO(render_pdf(book, PdfOptions(page_size="8x8", bleed=True)).pdf)).pages[1]
    assert float(page.mediabox.width) == pytest.approx(w + 20 * MM, abs=0.01)  # 10 mm slug each side for the marks
    assert "/TrimBox" in page and "/BleedBox" in page
    assert float(page.trimbox.width) == pytest.approx(w, abs=0.01)
    assert float(page.bleedbox.width) == pytest.approx(w + 6 * MM, abs=0.01)
    bare = PdfReader(io.BytesIO(render_pdf(book, PdfOptions(page_size="8x8", bleed=True, crop_marks=False)).pdf)).pages[
        1
    ]
    assert float(bare.mediabox.width) == pytest.approx(w + 6 * MM, abs=0.01)
    plain = PdfReader(io.BytesIO(render_pdf(book, PdfOptions(page_size="8x8")).pdf)).pages[1]
    assert "/TrimBox" not in plain


def test_cover_closing_and_page_number_switches():
    book = sample_book()
    full = render_pdf(book)
    bare = render_pdf(book, PdfOptions(cover=False, closing_page=False, page_numbers=False))
    assert bare.page_count == full.page_count - 2
    assert "The End" not in pypdf_text(bare.pdf)
    numbered = PdfReader(io.BytesIO(full.pdf)).pages[1].extract_text()
    unnumbered = PdfReader(io.BytesIO(bare.pdf)).pages[0].extract_text()
    assert numbered.split()[-1] == "2" and unnumbered.split()[-1] != "1"


def test_cover_uses_chosen_picture_or_first_page_picture():
    book = sample_book()
    result = render_pdf(book)
    assert result.image_reports[0].page_index is None  # the cover, drawn from page 1's picture
    book.cover_image = picture(500, 300, seed=9)
    result = render_pdf(book)
    cover = PdfReader(io.BytesIO(result.pdf)).pages[0]
    xobject = next(iter(xobjects(cover).values())).get_object()
    assert (xobject["/Width"], xobject["/Height"]) == (500, 300)


@needs_poppler
def test_preview_returns_pngs_and_nothing_without_poppler(monkeypatch):
    result = render_pdf(sample_book())
    pngs = render_preview(result.pdf, pages=2, dpi=30)
    assert len(pngs) == 2 and all(p.startswith(b"\x89PNG") for p in pngs)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert render_preview(result.pdf) == []


MIXED_JAPANESE = (
    "キツネはLighthouseという名前のとても大きなbuildingに住んでいました。毎晩キツネはextraordinarily"
    "にwonderfulなランプを灯していました。「こんにちは」とPipはseagullsに言いました。" * 3
)


@pytest.mark.parametrize("layout", ["picture_above", "side_by_side"])
def test_latin_words_inside_japanese_text_are_never_cut(layout):
    result = render_pdf(Book("Mixed", "", [Page(MIXED_JAPANESE, picture())]), PdfOptions(layout=layout, page_size="A5"))
    text = pypdf_text(result.pdf)
    tokens = set(re.findall(r"[A-Za-z]+", text))
    for word in ("Lighthouse", "building", "extraordinarily", "wonderful", "Pip", "seagulls"):
        assert word in tokens, f"{word} was cut across lines"
    assert set(re.findall(r"[A-Za-z]+", text)) <= set(re.findall(r"[A-Za-z]+", MIXED_JAPANESE)) | {
        "Mixed",
        "The",
        "End",
        "by",
        "Made",
        "with",
        "Storybook",
        "Studio",
    }
    japanese = "".join(re.findall(r"[\u3000-\u9fff]", MIXED_JAPANESE))
    assert japanese in "".join(re.findall(r"[\u3000-\u9fff]", text))  # every character, in order


def test_cover_title_lines_are_balanced_without_splitting_a_word():
    for title in ("Languages 言葉 שלום", "Bartholomew and the Extraordinary Lighthouse of Grandmother Fox"):
        result = render_pdf(Book(title, "Ada", [Page("One page.", picture())]), PdfOptions(page_size="8x8"))
        cover = PdfReader(io.BytesIO(result.pdf)).pages[0].extract_text()
        tokens = set(re.findall(r"[A-Za-z]+", cover))
        assert set(re.findall(r"[A-Za-z]+", title)) <= tokens, cover
        assert len([line for line in cover.splitlines() if line.strip()]) >= 3  # two title lines and the author


@needs_poppler
def test_closing_page_prints_a_right_to_left_title_in_reading_order(tmp_path):
    result = render_pdf(Book("שלום עולם", "אדה", [Page("One page.", picture())]))
    closing = tmp_path / "closing.pdf"
    closing.write_bytes(result.pdf)
    text = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", "-f", str(result.page_count), "-l", str(result.page_count), str(closing), "-"],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    assert "שלום" in text and "עולם" in text and "אדה" in text, text
    assert "םולש" not in text


def test_line_breaking_keeps_every_character_and_fits_the_width():
    import random

    from exports.fonts import FontSet, string_width
    from exports.typeset import break_lines

    fonts = FontSet.for_family("serif")
    pieces = [
        "fox",
        "lighthouse",
        "שלום",
        "مرحبا",
        "キツネ",
        "灯台",
        "、",
        "。",
        "「",
        "」",
        "Pip,",
        "(x)",
        "123",
        "작은",
    ]
    rng = random.Random(7)
    for _ in range(40):
        text = "".join(rng.choice(pieces) + rng.choice(["", " ", " "]) for _ in range(rng.randint(1, 60))).strip()
        width = rng.choice([40.0, 90.0, 200.0])
        lines = break_lines(text, width, fonts, 12)
        assert "".join(lines).replace(" ", "") == text.replace(" ", "")
        for line in lines:
            assert line == line.strip()
            assert string_width(line, fonts, 12) <= width + 0.01 or len(line.split()) == 1
        for before, after in itertools.pairwise(
            lines
        ):  # kinsoku: no closing mark starts a line, no opening one ends it
            assert len(before) == 1 or (not after.startswith(("、", "。", "」")) and not before.endswith("「")), (
                before,
                after,
            )


def test_margins_move_the_text_and_pictures_in_from_the_trim():
    def left_edges(margin_mm: float) -> tuple[float, float]:
        book = Book("Margins", "", [Page(STORY[1] * 2, None), Page(STORY[0], picture(400, 200))])
        reader = PdfReader(io.BytesIO(render_pdf(book, PdfOptions(page_size="A5", margin_mm=margin_mm)).pdf))
        xs: list[float] = []
        reader.pages[1].extract_text(
            visitor_text=lambda text, cm, tm, font, size: xs.append(tm[4] * cm[0] + cm[4]) if text.strip() else None
        )
        placed = re.search(
            rb"([\d.]+) 0 0 [\d.]+ ([\d.]+) [\d.]+ cm\s*/\S+ Do", reader.pages[2].get_contents().get_data()
        )
        return min(xs), float(placed.group(2)), float(placed.group(1))

    a5_width = PAGE_SIZES["A5"][0]
    for margin in (5, 25):
        text_x, picture_x, picture_w = left_edges(margin)
        assert text_x == pytest.approx(margin * MM, abs=1.0)  # a page of text runs from margin to margin
        assert picture_x == pytest.approx(margin * MM, abs=0.5)  # a wide picture fills the width inside them
        assert picture_w == pytest.approx(a5_width - 2 * margin * MM, abs=0.5)
    with pytest.raises(ExportError, match="Margins"):
        render_pdf(sample_book(), PdfOptions(margin_mm=60))


def _edged(width: int, height: int) -> bytes:
    """A green picture with a red left edge and a blue right edge, each a tenth of its width."""
    image = Image.new("RGB", (width, height), (40, 160, 60))
    ImageDraw.Draw(image).rectangle([0, 0, width // 10, height], fill=(230, 20, 20))
    ImageDraw.Draw(image).rectangle([width - width // 10, 0, width, height], fill=(20, 20, 230))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _has(image: Image.Image, colour: tuple[int, int, int]) -> bool:
    return any(all(abs(a - b) < 40 for a, b in zip(p, colour)) for p in image.get_flattened_data())


@needs_poppler
def test_text_band_shows_a_wide_picture_whole_and_a_square_one_full_bleed():
    """Full bleed on a portrait page would cut both sides off a landscape photo: it is shown whole above
    the band (under the title on the cover) over a soft backdrop made from it. Square pictures still
    fill the page, and only the real picture is checked for dpi."""
    wide = Book("Wide", "", [Page(STORY[0], _edged(800, 600))])
    result = render_pdf(wide, PdfOptions(layout="text_band", page_size="A5", closing_page=False))
    cover, page = (Image.open(io.BytesIO(p)).convert("RGB") for p in render_preview(result.pdf, pages=2, dpi=30))
    for image in (cover, page):
        assert _has(image, (230, 20, 20)) and _has(image, (20, 20, 230)), "an edge of the picture was cut off"
        corner = image.getpixel((1, 1))
        assert corner != (255, 255, 255) and not _has(Image.new("RGB", (1, 1), corner), (230, 20, 20))
    assert len(result.image_reports) == 2 and {r.page_index for r in result.image_reports} == {None, 0}
    assert len(xobjects(PdfReader(io.BytesIO(result.pdf)).pages[1])) == 2  # the picture and its backdrop

    square = Book("Square", "", [Page(STORY[0], _edged(600, 600))])
    result = render_pdf(square, PdfOptions(layout="text_band", page_size="A5", closing_page=False))
    page = Image.open(io.BytesIO(render_preview(result.pdf, pages=2, dpi=30)[1])).convert("RGB")
    assert page.getpixel((page.width // 2, 1)) == pytest.approx((40, 160, 60), abs=12)  # runs to the top edge
    assert len(xobjects(PdfReader(io.BytesIO(result.pdf)).pages[1])) == 1


@needs_emoji_font
def test_an_emoji_that_cannot_be_placed_is_left_out_and_said(monkeypatch):
    monkeypatch.delenv(emoji.ENV, raising=False)

    def no_room(png):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(emoji, "_file", no_room)
    result = render_pdf(Book("Full", "", [Page("A fox 🦊 ran.", None)]), PdfOptions(cover=False))
    assert any("left out" in w and "🦊" in w for w in result.warnings), result.warnings
    assert "A fox" in pypdf_text(result.pdf)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_dedication_gets_a_page_of_its_own_after_the_cover(layout, tmp_path):
    plain = render_pdf(sample_book(), PdfOptions(layout=layout))
    book = sample_book()
    book.dedication = "For Mia,\nwho loves the <b>sea</b> 🦊\n\nand for Pip"
    result = render_pdf(book, PdfOptions(layout=layout))
    assert result.page_count == plain.page_count + 1
    reader = PdfReader(io.BytesIO(result.pdf))
    second = " ".join((reader.pages[1].extract_text() or "").split())
    assert "For Mia," in second and "who loves the <b>sea</b>" in second and "and for Pip" in second
    assert "For Mia" not in " ".join(p.extract_text() or "" for p in reader.pages[2:])
    without_cover = render_pdf(book, PdfOptions(layout=layout, cover=False))
    assert "For Mia" in (PdfReader(io.BytesIO(without_cover.pdf)).pages[0].extract_text() or "")


@needs_emoji_font
def test_an_emoji_picture_removed_from_the_temporary_folder_is_written_again(monkeypatch):
    monkeypatch.delenv(emoji.ENV, raising=False)
    book = Book("Tmp", "", [Page("A fox 🦊 ran.", None)])
    render_pdf(book, PdfOptions(cover=False))
    for path in list(emoji._files.values()):
        Path(path).unlink(missing_ok=True)  # a cleaner emptied /tmp under a long-running studio
    shutil.rmtree(emoji._folder[0], ignore_errors=True)
    result = render_pdf(book, PdfOptions(cover=False))
    assert not any("left out" in w for w in result.warnings), result.warnings
    assert len(xobjects(PdfReader(io.BytesIO(result.pdf)).pages[0])) == 1
