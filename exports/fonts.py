"""Fonts shipped in assets/fonts, registered with reportlab once, and glyph-by-glyph fallback.

The book's family (serif or sans) prints what it can; DejaVu Sans covers Hebrew, Arabic and many
symbols the serif lacks; Droid Sans Fallback covers Chinese, Japanese and Korean. The CJK font is
3 MB, so it is only opened when some text holds a character the DejaVu fonts lack.
"""

from __future__ import annotations

import threading
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

from exports import emoji
from exports.errors import ExportError

FONT_DIR = Path(__file__).resolve().parent.parent / "assets" / "fonts"

_FILES = {
    "StorySerif": "DejaVuSerif.ttf",
    "StorySerif-Bold": "DejaVuSerif-Bold.ttf",
    "StorySans": "DejaVuSans.ttf",
    "StorySans-Bold": "DejaVuSans-Bold.ttf",
    "StoryCJK": "DroidSansFallback.ttf",
}
# Scripts of India and Thailand, each in its own Noto Sans font, opened only when a book uses the script.
# A character of one of these blocks goes to its script's font first (the same font for a letter and the
# marks on it, so they are positioned together).
SCRIPT_FONTS: dict[str, tuple[str, tuple[tuple[int, int], ...]]] = {
    "StoryDevanagari": ("NotoSansDevanagari-Regular.ttf", ((0x0900, 0x097F), (0xA8E0, 0xA8FF), (0x1CD0, 0x1CFF))),
    "StoryBengali": ("NotoSansBengali-Regular.ttf", ((0x0980, 0x09FF),)),
    "StoryGurmukhi": ("NotoSansGurmukhi-Regular.ttf", ((0x0A00, 0x0A7F),)),
    "StoryGujarati": ("NotoSansGujarati-Regular.ttf", ((0x0A80, 0x0AFF),)),
    "StoryOriya": ("NotoSansOriya-Regular.ttf", ((0x0B00, 0x0B7F),)),
    "StoryTamil": ("NotoSansTamil-Regular.ttf", ((0x0B80, 0x0BFF),)),
    "StoryTelugu": ("NotoSansTelugu-Regular.ttf", ((0x0C00, 0x0C7F),)),
    "StoryKannada": ("NotoSansKannada-Regular.ttf", ((0x0C80, 0x0CFF),)),
    "StoryMalayalam": ("NotoSansMalayalam-Regular.ttf", ((0x0D00, 0x0D7F),)),
    "StoryThai": ("NotoSansThai-Regular.ttf", ((0x0E00, 0x0E7F),)),
}
_FILES.update({name: file for name, (file, _) in SCRIPT_FONTS.items()})


def script_font(code: int) -> str | None:
    """The embedded font made for the script of this code point, if it has one of its own."""
    if 0x0900 <= code <= 0x0E7F or 0x1CD0 <= code <= 0x1CFF or 0xA8E0 <= code <= 0xA8FF:
        for name, (_, blocks) in SCRIPT_FONTS.items():
            if any(low <= code <= high for low, high in blocks):
                return name
    return None


# Without a shaping engine reportlab sets these scripts glyph by glyph: a vowel sign written before its
# consonant prints after it, and letters joined by a virama print apart. Named in the export's warnings.
NEEDS_SHAPING = frozenset(
    "\u093f\u094d"  # Devanagari: sign I, virama
    "\u09bf\u09c7\u09c8\u09cb\u09cc\u09cd"  # Bengali: I, E, AI, O, AU, virama
    "\u0a3f\u0a4d"  # Gurmukhi: I, virama
    "\u0abf\u0acd"  # Gujarati: I, virama
    "\u0b47\u0b48\u0b4b\u0b4c\u0b4d"  # Odia: E, AI, O, AU, virama
    "\u0bc6\u0bc7\u0bc8\u0bca\u0bcb\u0bcc\u0bcd"  # Tamil: E, EE, AI, O, OO, AU, virama
    "\u0c4d"  # Telugu: virama
    "\u0ccd"  # Kannada: virama
    "\u0d46\u0d47\u0d48\u0d4a\u0d4b\u0d4c\u0d4d"  # Malayalam: E, EE, AI, O, OO, AU, virama
)
FAMILIES = ("serif", "sans")
CJK = "StoryCJK"
EMOJI = "@emoji"  # not a font: runs under this name are drawn by exports.emoji as pictures

_lock = threading.Lock()
_cmaps: dict[str, dict[int, int]] = {}


def _register(name: str) -> dict[int, int]:
    with _lock:
        cmap = _cmaps.get(name)
        if cmap is None:
            path = FONT_DIR / _FILES[name]
            try:
                font = TTFont(name, str(path))
            except Exception:  # noqa: BLE001 - reportlab raises many types for a bad font file
                raise ExportError(
                    f"The font file {path.name} is missing or damaged in {FONT_DIR}; reinstall Storybook Studio."
                ) from None
            pdfmetrics.registerFont(font)
            cmap = _cmaps[name] = font.face.charToGlyph
        return cmap


@dataclass(frozen=True)
class FontSet:
    regular: str
    bold: str
    # Characters no shipped font can draw (most emoji): left out of the page and reported once.
    missing: set[str] = field(default_factory=set, compare=False, hash=False)
    # Characters printed but not joined as their script asks (no shaping engine): named in a warning.
    unshaped: set[str] = field(default_factory=set, compare=False, hash=False)

    @classmethod
    def for_family(cls, family: str) -> FontSet:
        if family not in FAMILIES:
            raise ExportError(f"The font family must be one of {', '.join(FAMILIES)}, not {family!r}.")
        stem = "StorySerif" if family == "serif" else "StorySans"
        fonts = cls(stem, stem + "-Bold")
        for name in (fonts.regular, fonts.bold, "StorySans", "StorySans-Bold"):
            _register(name)
        pdfmetrics.registerFontFamily(stem, normal=stem, bold=stem + "-Bold", italic=stem, boldItalic=stem + "-Bold")
        return fonts

    def chain(self, bold: bool = False) -> tuple[str, ...]:
        main = self.bold if bold else self.regular
        sans = "StorySans-Bold" if bold else "StorySans"
        return (main, sans, CJK) if main != sans else (main, CJK)


# Characters that never pick a font of their own: they join the run around them.
def _rides_along(ch: str) -> bool:
    return ch.isspace() or unicodedata.category(ch) in ("Mn", "Me", "Cf")


# Emoji presentation selectors and joiners have no glyph in any of our fonts and would print as boxes.
_DROP = {0xFE0E, 0xFE0F, 0x200D, 0x20E3}


def clean(text: str) -> str:
    """Drop control and invisible format characters; tabs become spaces, line breaks stay.

    Where the computer has an emoji font, whole emoji sequences (joiners, skin tones, presentation
    selectors) are kept as they are, to be drawn as one picture each.
    """
    if not emoji.available():
        return _clean(text)
    out, at = [], 0
    for match in emoji.CLUSTER.finditer(text):
        out.append(_clean(text[at : match.start()]))
        out.append(match.group())
        at = match.end()
    out.append(_clean(text[at:]))
    return "".join(out)


def _clean(text: str) -> str:
    # Decided once per distinct character, applied by str.translate: a 1 MB story has a few hundred.
    table = {}
    for ch in set(text):
        kept = _CLEANED.get(ch)
        if kept is None:
            kept = _CLEANED[ch] = _clean_char(ch)
        if kept != ch:
            table[ord(ch)] = kept
    return text.translate(table) if table else text


_CLEANED: dict[str, str] = {}


def _clean_char(ch: str) -> str:
    code = ord(ch)
    if ch == "\n":
        return ch
    if ch in "\t\r\v\f":
        return " " if ch != "\r" else ""
    if code in _DROP or 0x1F3FB <= code <= 0x1F3FF:  # skin-tone modifiers
        return ""
    category = unicodedata.category(ch)
    if category in ("Cc", "Cs", "Co", "Cn"):
        return ""
    if category == "Cf" and code != 0x200C:
        # Invisible format characters (zero-width space, BOM, soft hyphen, bidi overrides) would
        # only confuse line breaking and our own bidi pass. ZWNJ stays: it stops Arabic letters joining.
        return ""
    return ch


# font chain -> character -> the first font in the chain that has it ("" for none). Shared by every
# call: text broken into lines here is marked up line by line, and a cache per call would look
# every character up again on each line.
_font_for: dict[tuple[str, ...], dict[str, str]] = {}


def font_runs(text: str, fonts: FontSet, bold: bool = False) -> list[tuple[str, str]]:
    """Split `text` into (font name, text) runs so every character uses a font that has it.

    A character no font has is left out (a box in a children's book looks broken) and remembered
    in `fonts.missing` so the exporter can say so.
    """
    chain = fonts.chain(bold)
    runs: list[tuple[str, str]] = []
    current = chain[0]
    buf: list[str] = []
    cache = _font_for.setdefault(chain, {})

    def font_of(ch: str) -> str:
        name = cache.get(ch)
        if name is None:
            name = ""
            code = ord(ch)
            own = script_font(code)
            # reportlab writes characters beyond U+FFFF into the ToUnicode map as odd-length hex
            # (`<1F600>`), which breaks text extraction and strict validators: treat them as missing.
            # The CJK and script fonts open only when DejaVu lacks a glyph.
            for candidate in ((own,) if own else ()) + chain if code <= 0xFFFF else ():
                if code in _register(candidate):
                    name = candidate
                    break
            cache[ch] = name
        return name

    def mark_fits(ch: str, name: str) -> bool:
        """Whether a mark that rides on the text before it has a glyph in that text's font."""
        return ch.isspace() or name == EMOJI or ord(ch) in _register(name)

    def add(name: str, piece: str) -> None:
        nonlocal buf, current
        if name != current and buf:
            runs.append((current, "".join(buf)))
            buf = []
        current = name
        buf.append(piece)

    with_emoji = emoji.available()
    # Most text is one run in the main font: known after one look at each distinct character.
    distinct = set(text)
    if not distinct.isdisjoint(NEEDS_SHAPING):
        fonts.unshaped.update(distinct & NEEDS_SHAPING)
    if text and not (with_emoji and emoji.CLUSTER.search(text)):
        if all((mark_fits(ch, current) if _rides_along(ch) else font_of(ch) == current) for ch in distinct):
            return [(current, text)]
    at, end = 0, len(text)
    while at < end:
        match = emoji.CLUSTER.match(text, at) if with_emoji else None
        if match is not None and (emoji.is_emoji(match.group()) or not font_of(match.group())):
            cluster = match.group()
            at = match.end()
            if emoji.picture(cluster) is not None:
                add(EMOJI, cluster)
            else:
                fonts.missing.update(ch for ch in cluster if ch not in emoji.JOINERS)
            continue
        ch = text[at]
        at += 1
        if _rides_along(ch):
            if current == EMOJI:  # a space after an emoji is set in the text's font
                add(chain[0], ch)
            elif mark_fits(ch, current):
                buf.append(ch)
            elif font_of(ch):  # a mark the letter's font lacks: from a font that has it, not a box
                add(font_of(ch), ch)
            else:
                fonts.missing.add(ch)
            continue
        name = font_of(ch)
        if not name:
            fonts.missing.add(ch)
            continue
        add(name, ch)
    if buf:
        runs.append((current, "".join(buf)))
    return runs


def emoji_markup(run: str, size: float, fonts: FontSet) -> str:
    """An EMOJI run of font_runs as Paragraph markup: one picture per emoji (one that cannot be placed
    is left out and remembered in `fonts.missing`, like a character no font has)."""
    out = []
    for match in emoji.CLUSTER.finditer(run):
        tag = emoji.img_tag(match.group(), size)
        if tag is None:
            fonts.missing.update(ch for ch in match.group() if ch not in emoji.JOINERS)
        out.append(tag or "")
    return "".join(out)


def run_width(name: str, run: str, size: float) -> float:
    if name == EMOJI:
        return sum(1 for _ in emoji.CLUSTER.finditer(run)) * size * emoji.ADVANCE
    return pdfmetrics.stringWidth(run, name, size)


def string_width(text: str, fonts: FontSet, size: float, bold: bool = False) -> float:
    return sum(run_width(name, run, size) for name, run in font_runs(text, fonts, bold))
