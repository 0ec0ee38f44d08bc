"""Thai and the major Indic scripts print from embedded Noto fonts (issue 14, item 6); what cannot be printed
correctly is said plainly: combining marks no font has are named by their code, and letters that need a
shaping engine (pre-base vowel signs, virama conjuncts) are named in a warning."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from exports import Book, Page, PdfOptions, render_pdf
from exports.fonts import FONT_DIR, SCRIPT_FONTS

OPTIONS = PdfOptions(cover=False, closing_page=False, page_size="A5")
SAMPLES = {
    "StoryThai": "หนังสือนิทาน เด็กๆ ชอบอ่าน",
    "StoryDevanagari": "हिन्दी किताब",
    "StoryBengali": "বাংলা বই",
    "StoryTamil": "தமிழ் புத்தகம்",
    "StoryTelugu": "తెలుగు పుస్తకం",
    "StoryGujarati": "ગુજરાતી પુસ્તક",
    "StoryGurmukhi": "ਪੰਜਾਬੀ ਕਿਤਾਬ",
    "StoryOriya": "ଓଡ଼ିଆ ବହି",
    "StoryKannada": "ಕನ್ನಡ ಪುಸ್ತಕ",
    "StoryMalayalam": "മലയാളം പുസ്തകം",
}


def _fonts_used(pdf: bytes) -> set[str]:
    names = set()
    for page in PdfReader(io.BytesIO(pdf)).pages:
        for font in page["/Resources"]["/Font"].values():
            names.add(str(font.get_object()["/BaseFont"]).split("+")[-1])
    return names


def test_every_script_font_is_shipped_with_its_licence():
    assert set(SAMPLES) == set(SCRIPT_FONTS)
    for file, _ in SCRIPT_FONTS.values():
        assert (FONT_DIR / file).is_file()
    assert "SIL OPEN FONT LICENSE" in (FONT_DIR / "LICENSE-Noto-OFL-1.1.txt").read_text()
    readme = (FONT_DIR / "README.md").read_text()
    assert all(file in readme for file, _ in SCRIPT_FONTS.values())


@pytest.mark.parametrize("script", list(SAMPLES))
def test_each_script_prints_from_its_own_font_with_nothing_left_out(script):
    result = render_pdf(Book("Scripts", "", [Page(SAMPLES[script])]), OPTIONS)
    assert not any("left out" in w for w in result.warnings), result.warnings
    file = SCRIPT_FONTS[script][0]
    assert any(name.startswith(file.split("-")[0]) for name in _fonts_used(result.pdf)), _fonts_used(result.pdf)


def test_letters_that_need_shaping_are_named_thai_is_not():
    thai = render_pdf(Book("Thai", "", [Page(SAMPLES["StoryThai"])]), OPTIONS)
    assert not thai.warnings
    hindi = render_pdf(Book("Hindi", "", [Page(SAMPLES["StoryDevanagari"])]), OPTIONS)
    (warning,) = [w for w in hindi.warnings if "could not be joined" in w]
    assert "U+093F" in warning and "U+094D" in warning  # the pre-base vowel sign and the virama
    odia = render_pdf(Book("Odia", "", [Page("ଘୋଡ଼ା")]), OPTIONS)  # a horse: O is written on both sides
    (warning,) = [w for w in odia.warnings if "could not be joined" in w]
    assert "U+0B4B" in warning and not any("left out" in w for w in odia.warnings)


def test_combining_marks_no_font_has_are_named_not_printed_as_boxes():
    stacked = "Z" + "".join(chr(c) for c in range(0x0351, 0x0358)) + "algo"
    result = render_pdf(Book("Marks", "", [Page(stacked)]), OPTIONS)
    (warning,) = [w for w in result.warnings if "left out" in w]
    assert "U+0354" in warning and "U+0355" in warning and "U+0356" in warning
    assert "U+0351" not in warning  # DejaVu has this one: printed
