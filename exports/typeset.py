"""User text to reportlab flowables, with every character escaped and every glyph in some font.

Paragraph parses a small XML markup, so story text is never handed to it raw: `a<b` would raise,
`<img src=...>` would read a file from disk and `<a href=...>` would become a link. Each run of
text is XML-escaped and wrapped in a <font> tag we write ourselves, which is the only markup
a Paragraph here ever sees.
"""
from __future__ import annotations

import re
from copy import copy

from reportlab.lib.enums import TA_LEFT, TA_RIGHT
from reportlab.lib.styles import ParagraphStyle
from reportlab.platypus import Paragraph

from .bidi import base_is_rtl, has_rtl, shape_arabic, visual_order
from .fonts import FontSet, clean, font_runs, string_width

# Paragraph re-wraps the remainder of a paragraph on every page it splits across, so a very long
# paragraph costs quadratic time; it is cut into pieces of about this many characters at sentence ends.
CHUNK_CHARS = 2500
RTL_LINES_PER_PARAGRAPH = 30


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def markup(text: str, fonts: FontSet, bold: bool = False) -> str:
    """Escaped Paragraph markup for plain `text`, switching fonts where the main one lacks a glyph."""
    main = fonts.chain(bold)[0]
    parts = []
    for name, run in font_runs(clean(text), fonts, bold):
        run = escape(run)
        parts.append(run if name == main else f'<font face="{name}">{run}</font>')
    return "".join(parts)


def _has_cjk(text: str) -> bool:
    return any(0x2E80 <= ord(c) <= 0x9FFF or 0xAC00 <= ord(c) <= 0xD7AF or 0xF900 <= ord(c) <= 0xFAFF
               or 0xFF00 <= ord(c) <= 0xFFEF for c in text)


def _chunks(block: str, limit: int = CHUNK_CHARS) -> list[str]:
    if len(block) <= limit:
        return [block]
    pieces, start = [], 0
    while len(block) - start > limit:
        window = block[start:start + limit]
        cut = max(window.rfind(". "), window.rfind("! "), window.rfind("? "), window.rfind("\n"),
                  window.rfind("。"), window.rfind("！"), window.rfind("？"))
        if cut < limit // 3:
            cut = window.rfind(" ")
        if cut < limit // 3:
            cut = limit - 1  # no sentence or word end: cut anyway, nothing is lost
        pieces.append(block[start:start + cut + 1])
        start += cut + 1
    pieces.append(block[start:])
    return [p for p in pieces if p.strip()]


def _wrap_words(text: str, width: float, fonts: FontSet, size: float, bold: bool) -> list[str]:
    """Greedy line breaking in logical order, used for right-to-left text we reorder ourselves."""
    lines: list[str] = []
    for logical in text.split("\n"):
        words = logical.split()
        line = ""
        for word in words:
            candidate = f"{line} {word}" if line else word
            if string_width(candidate, fonts, size, bold) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            line = word
            while string_width(line, fonts, size, bold) > width and len(line) > 1:
                cut = len(line) - 1
                while cut > 1 and string_width(line[:cut], fonts, size, bold) > width:
                    cut -= 1
                lines.append(line[:cut])
                line = line[cut:]
        lines.append(line)
    return lines


def paragraph_style(name: str, fonts: FontSet, size: float, *, bold: bool = False, leading: float = 1.45,
                    align: int = TA_LEFT, color=None, space_after: float = 0.0) -> ParagraphStyle:
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


def text_flowables(text: str, style: ParagraphStyle, fonts: FontSet, width: float, *, bold: bool = False) -> list[Paragraph]:
    """Flowables for a piece of story text: one Paragraph per paragraph (blank-line separated)."""
    text = clean(text)
    blocks = [b.strip() for b in re.split(r"\n\s*\n", text) if b.strip()]
    out: list[Paragraph] = []
    tight = copy(style)
    tight.spaceAfter = 0
    for block in blocks:
        block = "\n".join(" ".join(line.split()) for line in block.split("\n"))
        pieces: list[Paragraph] = []
        if has_rtl(block):
            rtl = base_is_rtl(block)
            para_style = copy(style)
            if rtl and style.alignment == TA_LEFT:
                para_style.alignment = TA_RIGHT
            lines = _wrap_words(shape_arabic(block).replace("\u200c", ""), width - 1, fonts, style.fontSize, bold)
            visual = [markup(visual_order(line, rtl), fonts, bold) for line in lines]
            for i in range(0, len(visual), RTL_LINES_PER_PARAGRAPH):
                pieces.append(Paragraph("<br/>".join(visual[i:i + RTL_LINES_PER_PARAGRAPH]), copy(para_style)))
        else:
            para_style = copy(style)
            if _has_cjk(block):
                para_style.wordWrap = "CJK"
            for piece in _chunks(block):
                pieces.append(Paragraph(markup(piece.strip(), fonts, bold).replace("\n", "<br/>"), copy(para_style)))
        for p in pieces[:-1]:
            p.style.spaceAfter = 0
        out.extend(pieces)
    if out:
        out[-1].style.spaceAfter = 0
    return out

