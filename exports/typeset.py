"""User text to reportlab flowables, with every character escaped and every glyph in some font.

Paragraph parses a small XML markup, so story text is never handed to it raw: `a<b` would raise,
`<img src=...>` would read a file from disk and `<a href=...>` would become a link. Each run of
text is XML-escaped and wrapped in a <font> tag we write ourselves, which is the only markup
a Paragraph here ever sees.
"""

from __future__ import annotations

import re
import unicodedata
from collections import deque
from copy import copy

from reportlab.lib.enums import TA_LEFT, TA_RIGHT
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfbase import pdfmetrics
from reportlab.platypus import Paragraph

from exports import emoji
from exports.bidi import base_is_rtl, has_rtl, shape_arabic, visual_order
from exports.fonts import EMOJI, FontSet, clean, emoji_markup, font_runs

# Paragraph re-wraps the remainder of a paragraph on every page it splits across, so a very long
# paragraph costs quadratic time; it is cut into pieces of about this many characters at sentence ends.
CHUNK_CHARS = 2500
LINES_PER_PARAGRAPH = 30  # for text broken into lines here: splits across pages stay cheap


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def markup(text: str, fonts: FontSet, size: float, bold: bool = False) -> str:
    """Escaped Paragraph markup for plain `text` at font size `size`, switching fonts where the main one
    lacks a glyph; emoji become pictures of that size."""
    main = fonts.chain(bold)[0]
    parts = []
    for name, run in font_runs(clean(text), fonts, bold):
        if name == EMOJI:
            parts.append(emoji_markup(run, size, fonts))
            continue
        run = escape(run)
        parts.append(run if name == main else f'<font face="{name}">{run}</font>')
    return "".join(parts)


# Scripts written without spaces between words: a line may break between any two of their characters.
# Hangul is not among them: Korean puts spaces between words and breaks lines there.
def _is_cjk(ch: str) -> bool:
    code = ord(ch)
    return (
        (0x2E80 <= code <= 0x9FFF and not 0x3130 <= code <= 0x318F)
        or 0xF900 <= code <= 0xFAFF
        or 0xFF00 <= code <= 0xFFEF
        or 0x20000 <= code <= 0x2FFFF
    )


def _has_cjk(text: str) -> bool:
    return any(_is_cjk(c) for c in set(text))


# Line-breaking rules (kinsoku): these never begin a line, those never end one.
_NO_START = frozenset(
    "、。，．・：；？！ー―‐〜…‥ヽヾゝゞ々〻ぁぃぅぇぉっゃゅょゎゕゖァィゥェォッャュョヮヵヶ"
    "）］｝〕〉》」』】〙〗〟’”｠,.!?;:)]}%"
)
_NO_END = frozenset("（［｛〔〈《「『【〘〖〝‘“｟([{")


def _atoms(line: str) -> list[tuple[str, bool]]:
    """Unbreakable pieces of one logical line, each with whether a space comes before it.

    A word of a spaced script is one piece; a CJK character is a piece of its own, joined to its
    neighbour where the kinsoku rules forbid a break. So a Latin word inside Japanese text stays whole.
    """
    atoms: list[tuple[str, bool]] = []
    spaced = False
    word = ""

    def push(piece: str, piece_is_cjk: bool) -> None:
        nonlocal spaced
        if atoms:
            prev = atoms[-1][0]
            held = piece[0] in _NO_START or prev[-1] in _NO_END  # even across a space
            if held or not (spaced or piece_is_cjk or _is_cjk(prev[-1])):
                atoms[-1] = (prev + (" " if spaced else "") + piece, atoms[-1][1])
                spaced = False
                return
        atoms.append((piece, spaced and bool(atoms)))
        spaced = False

    for ch in line:
        if ch.isspace():
            if word:
                push(word, False)
                word = ""
            spaced = True
        elif _is_cjk(ch):
            if word:
                push(word, False)
                word = ""
            push(ch, True)
        else:
            word += ch
    if word:
        push(word, False)
    return atoms


class _Widths:
    """Widths of text as `font_runs` will set it, summed character by character (TrueType widths add up)."""

    def __init__(self, fonts: FontSet, size: float, bold: bool):
        self.fonts, self.size, self.bold = fonts, size, bold
        self.main = fonts.chain(bold)[0]
        self.glyphs: dict[str, tuple[float, str | None]] = {}  # char -> (width, its font; None: rides along)
        self.spaces: dict[tuple[str, str], float] = {}

    def char(self, ch: str, current: str) -> tuple[float, str]:
        """Width of `ch` set after text in font `current`, and the font in use after it."""
        if ch in emoji.JOINERS and current == EMOJI:
            return 0.0, current  # a part of the emoji before it, which is counted whole
        if ch.isspace():
            width = self.spaces.get((ch, current))
            if width is None:
                # a space takes the font of the text before it, which reordering may change: allow the widest
                width = self.spaces[(ch, current)] = max(
                    pdfmetrics.stringWidth(ch, name, self.size) for name in {current, self.main} - {EMOJI}
                )
            return width, current
        known = self.glyphs.get(ch)
        if known is None:
            runs = font_runs(ch, self.fonts, self.bold)
            if not runs:  # no font has it: left out of the page
                known = (0.0, None)
            elif unicodedata.category(ch) in ("Mn", "Me", "Cf"):
                known = (pdfmetrics.stringWidth(ch, self.main, self.size), None)
            elif runs[0][0] == EMOJI:
                known = (self.size * emoji.ADVANCE, EMOJI)
            else:
                known = (pdfmetrics.stringWidth(ch, runs[0][0], self.size), runs[0][0])
            self.glyphs[ch] = known
        width, name = known
        return width, name or current

    def of(self, text: str, current: str | None = None) -> tuple[float, str]:
        current = current or self.main
        total = 0.0
        for ch in text:
            w, current = self.char(ch, current)
            total += w
        return total, current


def break_lines(text: str, width: float, fonts: FontSet, size: float, bold: bool = False) -> list[str]:
    """Greedy line breaking in logical order, for text we lay out ourselves (right-to-left, CJK).

    Lines break at spaces and between CJK characters, never inside a word unless the word alone is
    wider than the line; no character is dropped.
    """
    widths = _Widths(fonts, size, bold)
    lines: list[str] = []
    for logical in text.split("\n"):
        line, used, font = "", 0.0, widths.main
        for atom, spaced in _atoms(logical):
            piece = " " + atom if spaced and line else atom
            w, after = widths.of(piece, font)
            if line and used + w <= width:
                line, used, font = line + piece, used + w, after
                continue
            if line:
                lines.append(line)
            line, (used, font) = atom, widths.of(atom)
            if used > width and len(line) > 1:  # one word wider than the line: cut it, keep every letter
                *full, line = _cut(line, width, widths)
                lines.extend(full)
                used, font = widths.of(line)
        lines.append(line)
    return lines


def _units(word: str) -> list[str]:
    """`word` as the pieces a line may break between: a whole emoji (family, flag, skin tone) is one piece,
    and so is a letter with the combining marks that ride on it."""
    spans = {m.start(): m.end() for m in emoji.CLUSTER.finditer(word) if m.end() - m.start() > 1}
    units: list[str] = []
    i = 0
    while i < len(word):
        end = spans.get(i, i + 1)
        piece = word[i:end]
        if units and (
            unicodedata.category(piece[0])[0] == "M" or piece[0] in emoji.JOINERS or units[-1][-1] == "\u200d"
        ):
            units[-1] += piece
        else:
            units.append(piece)
        i = end
    return units


def _cut(word: str, width: float, widths: _Widths) -> list[str]:
    """A word wider than the line, cut into lines in one pass (a run of 20,000 emoji costs 20,000 steps, not
    20,000 times the rest of the run), never inside an emoji or between a letter and its marks."""
    units: list[str] = []
    for unit in _units(word):  # a space (kept inside CJK atoms by kinsoku) travels with what follows it
        if units and units[-1].isspace():
            units[-1] += unit
        else:
            units.append(unit)
    lines: list[str] = []
    line: list[str] = []
    used, current = 0.0, widths.main
    pending = deque(units)
    while pending:
        unit = pending.popleft()
        w, after = widths.of(unit, current)
        if line and used + w > width:
            # kinsoku: a closing mark never starts the next line, an opening one never ends this one; what
            # moves down is laid out again (one mark always stays, so every pass makes progress)
            pending.appendleft(unit)
            while len(line) > 1 and (pending[0].lstrip()[:1] in _NO_START or line[-1][-1:] in _NO_END):
                pending.appendleft(line.pop())
            lines.append("".join(line).rstrip())
            line, used, current = [], 0.0, widths.main
            pending[0] = pending[0].lstrip()
            continue
        line.append(unit)
        used, current = used + w, after
    lines.append("".join(line))
    return [piece for piece in lines if piece] or [word]


def widest_atom(text: str, fonts: FontSet, size: float, bold: bool = False) -> float:
    """Width of the widest piece a line may not break inside (a title set narrower would split a word)."""
    widths = _Widths(fonts, size, bold)
    return max((widths.of(atom)[0] for line in clean(text).split("\n") for atom, _ in _atoms(line)), default=0.0)


def _has_unbreakable_run(block: str, width: float, fonts: FontSet, size: float, bold: bool) -> bool:
    """Whether a run without a break opportunity (a line of emoji, a long address) is wider than the line.

    Paragraph cuts long words of text, but not a run of emoji pictures: those would run off the page. Only
    runs long enough to possibly overflow are measured (no glyph here is wider than about 1.2 em).
    """
    shortest_possible = int(width / (size * 1.2))
    long_runs = [run for run in block.split() if len(run) > shortest_possible]
    if not long_runs:
        return False
    widths = _Widths(fonts, size, bold)
    return any(widths.of(run)[0] > width for run in long_runs)


def _chunks(block: str, limit: int = CHUNK_CHARS) -> list[str]:
    if len(block) <= limit:
        return [block]
    pieces, start = [], 0
    while len(block) - start > limit:
        window = block[start : start + limit]
        cut = max(
            window.rfind(". "),
            window.rfind("! "),
            window.rfind("? "),
            window.rfind("\n"),
            window.rfind("。"),
            window.rfind("！"),
            window.rfind("？"),
        )
        if cut < limit // 3:
            cut = window.rfind(" ")
        if cut < limit // 3:
            cut = limit - 1  # no sentence or word end: cut anyway, nothing is lost
        pieces.append(block[start : start + cut + 1])
        start += cut + 1
    pieces.append(block[start:])
    return [p for p in pieces if p.strip()]


def _share_pictures(paragraphs: list[Paragraph]) -> None:
    """One image reader per emoji picture instead of one per emoji printed.

    The parser opens a reader for every <img>, and drawing decodes each reader's pixels again to find the
    image it already embedded: 20,000 emoji cost 20,000 decodes. A shared reader decodes once.
    """
    readers: dict[str, object] = {}
    for paragraph in paragraphs:
        for frag in getattr(paragraph, "frags", ()):
            defn = getattr(frag, "cbDefn", None)
            if defn is not None and getattr(defn, "kind", None) == "img":
                defn.image = readers.setdefault(defn.src, defn.image)


def paragraph_style(
    name: str,
    fonts: FontSet,
    size: float,
    *,
    bold: bool = False,
    leading: float = 1.45,
    align: int = TA_LEFT,
    color=None,
    space_after: float = 0.0,
) -> ParagraphStyle:
    style = ParagraphStyle(
        name,
        fontName=fonts.bold if bold else fonts.regular,
        fontSize=size,
        leading=size * leading,
        alignment=align,
        spaceAfter=space_after,
        allowWidows=0,
        allowOrphans=0,
        splitLongWords=1,
    )
    if color is not None:
        style.textColor = color
    return style


def text_flowables(
    text: str, style: ParagraphStyle, fonts: FontSet, width: float, *, bold: bool = False
) -> list[Paragraph]:
    """Flowables for a piece of story text: one Paragraph per paragraph (blank-line separated)."""
    text = clean(text)
    blocks = [b.strip() for b in re.split(r"\n\s*\n", text) if b.strip()]
    out: list[Paragraph] = []
    for block in blocks:
        block = "\n".join(" ".join(line.split()) for line in block.split("\n"))
        para_style = copy(style)
        rtl = has_rtl(block)
        if rtl or _has_cjk(block) or _has_unbreakable_run(block, width - 1, fonts, style.fontSize, bold):
            # Lines we break ourselves: right-to-left lines must be reordered one by one after breaking,
            # and reportlab's CJK wrapping would cut Latin words anywhere. Slack of 1 pt keeps
            # reportlab from wrapping them again.
            right_to_left = rtl and base_is_rtl(block)
            if right_to_left and style.alignment == TA_LEFT:
                para_style.alignment = TA_RIGHT
            logical = shape_arabic(block).replace("\u200c", "") if rtl else block
            lines = break_lines(logical, width - 1, fonts, style.fontSize, bold)
            shown = [
                markup(visual_order(line, right_to_left) if rtl else line, fonts, style.fontSize, bold)
                for line in lines
            ]
            pieces = [
                Paragraph("<br/>".join(shown[i : i + LINES_PER_PARAGRAPH]), copy(para_style))
                for i in range(0, len(shown), LINES_PER_PARAGRAPH)
            ]
        else:
            pieces = [
                Paragraph(markup(piece.strip(), fonts, style.fontSize, bold).replace("\n", "<br/>"), copy(para_style))
                for piece in _chunks(block)
            ]
        for p in pieces[:-1]:
            p.style.spaceAfter = 0
        _share_pictures(pieces)
        out.extend(pieces)
    if out:
        out[-1].style.spaceAfter = 0
    return out
