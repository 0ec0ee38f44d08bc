"""A Book as a print-ready PDF: cover, one page (or spread) per segment, closing page.

Pages are composed on a reportlab canvas; text goes through platypus Paragraphs placed in Frames,
so long text splits across pages exactly as platypus splits it (no word is ever dropped), while
pictures, bands, crop marks and page numbers are drawn at exact positions.
"""

from __future__ import annotations

import io
import threading
import unicodedata
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from reportlab import rl_config
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.units import inch, mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Frame, Paragraph, Spacer

from exports import emoji
from exports.book import Book, Page
from exports.closing import closing_words
from exports.errors import ExportError
from exports.fonts import FontSet
from exports.images import BrokenImage, Picture, load_picture, soft_backdrop
from exports.typeset import markup, paragraph_style, text_flowables, widest_atom

LAYOUTS = ("picture_above", "text_band", "side_by_side", "facing")
PAGE_SIZES = {
    "A4": (210 * mm, 297 * mm),
    "Letter": (8.5 * inch, 11 * inch),
    "A5": (148 * mm, 210 * mm),
    "8x8": (8 * inch, 8 * inch),
}
ORIENTATIONS = ("auto", "portrait", "landscape")
BLEED = 3 * mm
SLUG = 10 * mm  # paper beyond the trim that holds the crop marks
MIN_DPI = 150
# Full bleed crops whatever of the picture does not share the page's shape. Past a third of it lost, the
# picture is shown whole over a soft backdrop instead. A third keeps the engine's square pictures full
# bleed on every page size (29% lost on A4 and A5, 23% on Letter, and the band hides the bottom anyway),
# while every landscape photo on a portrait page is kept whole (4:3 loses 47%, 3:2 53%, 16:9 60%).
FULL_BLEED_MAX_CROP = 1 / 3
BACKDROP_PX = 300  # long side of the blurred backdrop: a wash of colour, more pixels would only add bytes

INK = colors.HexColor("#2B2522")
SOFT_INK = colors.HexColor("#6E625A")
ACCENT = colors.HexColor("#A0703F")
BAND = colors.HexColor("#FFFBF2")


@dataclass
class PdfOptions:
    layout: str = "picture_above"
    page_size: str = "A4"
    orientation: str = "auto"  # auto: landscape for side_by_side, portrait otherwise
    margin_mm: float | None = None  # None: about 9% of the page's short side
    bleed: bool = False  # 3 mm bleed around the trim, pictures that touch the edge run into it
    crop_marks: bool = True  # drawn outside the bleed when bleed is on
    font: str = "serif"  # serif | sans
    font_size: float | None = None  # body size in points; None: chosen for the page size
    cover: bool = True
    closing_page: bool = True
    page_numbers: bool = True


class ImageReport(NamedTuple):
    page_index: int | None  # index into book.pages; None for the cover picture
    dpi: float  # effective print resolution at the placed size; 0 when the picture could not be used
    ok: bool  # at least MIN_DPI and printed


@dataclass
class PdfResult:
    pdf: bytes
    page_count: int
    image_reports: list[ImageReport] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class _Rect(NamedTuple):
    x: float
    y: float
    w: float
    h: float

    @property
    def top(self) -> float:
        return self.y + self.h

    def inset(self, left: float, bottom: float, right: float, top: float) -> _Rect:
        return _Rect(self.x + left, self.y + bottom, self.w - left - right, self.h - bottom - top)


_SIZE_ALIASES = {
    "a4": "A4",
    "letter": "Letter",
    "us letter": "Letter",
    "us-letter": "Letter",
    "a5": "A5",
    "8x8": "8x8",
    "square": "8x8",
    "8x8in": "8x8",
}


def page_size_name(name: str) -> str | None:
    """The PAGE_SIZES key a person meant ("letter", "US Letter", "square"...), or None."""
    return _SIZE_ALIASES.get(str(name).strip().lower())


def _normalise_options(options: PdfOptions) -> PdfOptions:
    size = page_size_name(options.page_size)
    if size is None:
        raise ExportError(f"The page size must be one of {', '.join(PAGE_SIZES)}, not {options.page_size!r}.")
    if options.layout not in LAYOUTS:
        raise ExportError(f"The layout must be one of {', '.join(LAYOUTS)}, not {options.layout!r}.")
    if options.orientation not in ORIENTATIONS:
        raise ExportError(f"The orientation must be portrait, landscape or auto, not {options.orientation!r}.")
    if options.margin_mm is not None and not (0 <= options.margin_mm <= 40):
        raise ExportError("Margins must be between 0 and 40 mm.")
    if options.font_size is not None and not (7 <= options.font_size <= 36):
        raise ExportError("The font size must be between 7 and 36 points.")
    return replace(options, page_size=size)


class _Sheet:
    """Page geometry: trim size, bleed and slug, margins, all in points."""

    def __init__(self, options: PdfOptions):
        w, h = PAGE_SIZES[options.page_size]
        landscape = options.orientation == "landscape" or (
            options.orientation == "auto" and options.layout == "side_by_side"
        )
        if landscape != (w > h) and w != h:
            w, h = h, w
        self.trim_w, self.trim_h = w, h
        self.bleed = BLEED if options.bleed else 0.0
        self.offset = (BLEED + (SLUG - BLEED if options.crop_marks else 0.0)) if options.bleed else 0.0
        self.media = (w + 2 * self.offset, h + 2 * self.offset)
        short = min(w, h)
        margin = options.margin_mm * mm if options.margin_mm is not None else 0.09 * short
        self.margin = margin
        self.trim = _Rect(self.offset, self.offset, w, h)
        self.bleed_rect = _Rect(
            self.offset - self.bleed, self.offset - self.bleed, w + 2 * self.bleed, h + 2 * self.bleed
        )
        self.content = self.trim.inset(margin, margin * 1.2, margin, margin)
        auto = min(22.0, max(11.0, round(short / inch * 2.2 * 2) / 2))
        self.base_size = float(options.font_size or auto)


def _fit(pic: Picture, box: _Rect, mode: str) -> tuple[_Rect, float]:
    """Placed rectangle (may overflow box in cover mode) and points per pixel."""
    scale = (min if mode == "contain" else max)(box.w / pic.width, box.h / pic.height)
    w, h = pic.width * scale, pic.height * scale
    return _Rect(box.x + (box.w - w) / 2, box.y + (box.h - h) / 2, w, h), scale


def _line_count(text: str, style, fonts: FontSet, width: float) -> int:
    flow = text_flowables(text, style, fonts, width, bold=style.fontName == fonts.bold)
    return round(_measure(flow, width) / style.leading)


def _measure(flowables: list, width: float) -> float:
    total = 0.0
    for i, f in enumerate(flowables):
        _, h = f.wrap(width, 1e9)
        total += h
        if i < len(flowables) - 1:
            total += f.getSpaceAfter()
    return total


class _Composer:
    def __init__(self, book: Book, options: PdfOptions):
        self.book = book
        self.opt = options
        self.sheet = _Sheet(options)
        self.fonts = FontSet.for_family(options.font)
        self.buffer = io.BytesIO()
        self.canvas = Canvas(
            self.buffer, pagesize=self.sheet.media, pageCompression=1, initialFontName=self.fonts.regular
        )
        self.canvas.setTitle(book.title)
        self.canvas.setAuthor(book.author or "")
        self.canvas.setCreator("Storybook Studio")
        self.canvas.setSubject("A picture book")
        self.reports: list[ImageReport] = []
        self.warnings: list[str] = list(book.warnings)
        # Pictures below MIN_DPI: (story page index or None, dpi, PDF page, px wide, px high, mm wide, mm high).
        self.low_res: list[tuple[int | None, float, int, int, int, float, float]] = []
        self.broken: set[int] = set()
        self.page_no = 1
        # A facing text page has the whole page to itself, so its type is set larger.
        self.base = self.sheet.base_size * (1.15 if options.layout == "facing" else 1.0)

    # pictures ------------------------------------------------------------------------------------
    def picture(self, index: int) -> Picture | None:
        """The page's picture, decoded now (not kept: a long book of decoded pictures would fill memory)."""
        data = self.book.pages[index].image
        if not data or index in self.broken:
            return None
        try:
            return load_picture(data)
        except BrokenImage as why:
            self.broken.add(index)
            self.warnings.append(
                f"The picture for page {index + 1} of the story {why}, so that page prints without it."
            )
            self.reports.append(ImageReport(index, 0.0, False))
            return None

    def cover_picture(self) -> Picture | None:
        if self.book.cover_image:
            try:
                return load_picture(self.book.cover_image)
            except BrokenImage as why:
                self.warnings.append(f"The cover picture {why}, so the cover prints without it.")
                self.reports.append(ImageReport(None, 0.0, False))
        for i in range(len(self.book.pages)):
            pic = self.picture(i)
            if pic is not None:
                return pic
        return None

    def draw_picture(self, pic: Picture, box: _Rect, mode: str, page_index: int | None) -> _Rect:
        placed, scale = _fit(pic, box, mode)
        c = self.canvas
        c.saveState()
        if mode == "cover":
            path = c.beginPath()
            path.rect(*box)
            c.clipPath(path, stroke=0, fill=0)
        c.drawImage(ImageReader(pic.source), placed.x, placed.y, placed.w, placed.h, mask="auto")
        c.restoreState()
        if isinstance(pic.source, io.BytesIO):
            pic.source.seek(0)
        dpi = round(72.0 / scale, 1)
        ok = dpi >= MIN_DPI
        self.reports.append(ImageReport(page_index, dpi, ok))
        if not ok:
            self.low_res.append((page_index, dpi, self.page_no, pic.width, pic.height, placed.w / mm, placed.h / mm))
        return placed

    def low_res_warning(self) -> str | None:
        """One sentence for every picture printing below MIN_DPI: the picture itself when there is one, else how
        many, which pages and the range of dpi (a book of small pictures gets one note, not one per page)."""
        if not self.low_res:
            return None
        if len(self.low_res) == 1:
            index, dpi, pdf_page, w, h, wmm, hmm = self.low_res[0]
            what = "The cover picture" if index is None else f"The picture for page {index + 1} of the story"
            return (
                f"{what} prints at {dpi:.0f} dpi on page {pdf_page} of the PDF ({w} x {h} pixels over "
                f"{wmm:.0f} x {hmm:.0f} mm); {MIN_DPI} dpi or more looks sharp, so choose a smaller page or a "
                "larger picture."
            )
        low = min(r[1] for r in self.low_res)
        high = max(r[1] for r in self.low_res)
        dpis = f"{low:.0f} dpi" if round(low) == round(high) else f"{low:.0f} to {high:.0f} dpi"
        pages = sorted({r[0] + 1 for r in self.low_res if r[0] is not None})
        where = []
        if any(r[0] is None for r in self.low_res):
            where.append("the cover")
        if pages:
            where.append(("page " if len(pages) == 1 else "pages ") + _number_ranges(pages) + " of the story")
        return (
            f"{len(self.low_res)} pictures print at {dpis} ({' and '.join(where)}); {MIN_DPI} dpi or more looks "
            "sharp, so choose a smaller page or larger pictures."
        )

    def picture_mode(self, pic: Picture, box: _Rect, max_crop: float = 0.2) -> str:
        """Cover (fill, cropping) when little of the picture is lost, else contain."""
        box_aspect = box.w / box.h
        lost = 1 - min(pic.aspect, box_aspect) / max(pic.aspect, box_aspect)
        return "cover" if lost <= max_crop else "contain"

    def full_bleed(self, pic: Picture, free: _Rect, page_index: int | None) -> None:
        """The picture over the whole bleed; or, where that would cut off too much of it, whole inside
        `free` (the part of the page the text leaves uncovered) over a soft backdrop made from it."""
        s = self.sheet
        if self.picture_mode(pic, s.bleed_rect, FULL_BLEED_MAX_CROP) == "cover":
            self.draw_picture(pic, s.bleed_rect, "cover", page_index)
            return
        self.backdrop(pic, s.bleed_rect)
        gap = s.margin * 0.5
        self.draw_picture(pic, free.inset(gap, gap, gap, gap), "contain", page_index)

    def backdrop(self, pic: Picture, box: _Rect) -> None:
        """Fill box with the picture blurred and faded toward the band's paper colour. It is not
        reported: the dpi checks are for the picture itself, and a blur has no sharpness to lose."""
        longest = max(box.w, box.h)
        size = (max(1, round(BACKDROP_PX * box.w / longest)), max(1, round(BACKDROP_PX * box.h / longest)))
        tone = tuple(round(v * 255) for v in BAND.rgb())
        self.canvas.drawImage(ImageReader(io.BytesIO(soft_backdrop(pic, size, tone))), *box)

    # pages ---------------------------------------------------------------------------------------
    def end_page(self, number: bool, band: _Rect | None = None) -> None:
        c = self.canvas
        s = self.sheet
        if number and self.opt.page_numbers:
            c.saveState()
            size = max(7.5, self.sheet.base_size * 0.62)
            c.setFont(self.fonts.regular, size)
            c.setFillColor(SOFT_INK)
            y = s.trim.y + s.margin * 0.55 - size / 3 if band is None else band.y + s.margin * 0.35
            c.drawCentredString(s.trim.x + s.trim.w / 2, y, str(self.page_no))
            c.restoreState()
        if self.opt.bleed:
            c.setTrimBox((s.trim.x, s.trim.y, s.trim.x + s.trim.w, s.trim.y + s.trim.h))
            b = s.bleed_rect
            c.setBleedBox((b.x, b.y, b.x + b.w, b.y + b.h))
            if self.opt.crop_marks:
                self.crop_marks()
        c.showPage()
        self.page_no += 1

    def crop_marks(self) -> None:
        c = self.canvas
        t = self.sheet.trim
        near, far = BLEED + 0.5 * mm, SLUG
        c.saveState()
        c.setLineWidth(0.25)
        c.setStrokeColorCMYK(1, 1, 1, 1)  # registration black: shows on every plate
        for x, dx in ((t.x, -1), (t.x + t.w, 1)):
            for y, dy in ((t.y, -1), (t.y + t.h, 1)):
                c.line(x + dx * near, y, x + dx * far, y)
                c.line(x, y + dy * near, x, y + dy * far)
        c.restoreState()

    def body_style(self, size: float):
        return paragraph_style("body", self.fonts, size, color=INK, space_after=size * 0.7)

    def measure_width(self, available: float, size: float) -> float:
        """Comfortable line length: at most about 34 ems, never wider than the space there is."""
        return min(available, size * 34)

    def fit_text(self, text: str, width: float, height: float) -> tuple[float, list, bool]:
        """Largest size (down to 86% of the base) at which `text` fits in width x height."""
        base = self.base
        smallest = round(base * 0.86 * 2) / 2
        # A rough area estimate (an average glyph is about half an em wide) skips the measuring
        # when the text plainly needs more than the page at the smallest size.
        estimate = len(text) * (0.45 * smallest) * (1.45 * smallest) / max(width, 1.0)
        if estimate <= height * 1.5:
            for factor in (1.0, 0.93, 0.86):
                size = round(base * factor * 2) / 2
                flow = text_flowables(text, self.body_style(size), self.fonts, width)
                if _measure(flow, width) <= height:
                    return size, flow, True
        return base, text_flowables(text, self.body_style(base), self.fonts, width), False

    def flow(self, flowables: list, box: _Rect, valign: str = "top") -> list:
        """Draw as much of `flowables` as fits in box; return what is left."""
        if not flowables:
            return []
        if valign == "middle":
            need = _measure(flowables, box.w)
            if need < box.h:
                box = _Rect(box.x, box.y + (box.h - need) / 2, box.w, need + 0.5)
        frame = Frame(
            box.x, box.y, box.w, box.h, leftPadding=0, rightPadding=0, topPadding=0, bottomPadding=0, showBoundary=0
        )
        rest = list(flowables)
        drew = False
        while rest:
            if frame.add(rest[0], self.canvas, trySplit=0):
                rest.pop(0)
                drew = True
                continue
            # Frame.addFromList never splits (the doc template does that), so split here: what fits
            # goes on this page, the rest comes back for the next one.
            parts = frame.split(rest[0], self.canvas)
            if parts and frame.add(parts[0], self.canvas, trySplit=0):
                rest[0:1] = parts[1:]
                drew = True
            break
        if rest and not drew and box.h >= self.sheet.content.h * 0.9:
            raise ExportError("A line of text is too tall for the page; choose a smaller font size.")
        return rest

    def text_pages(self, rest: list, size: float) -> None:
        """Continuation pages for text that did not fit beside its picture."""
        content = self.sheet.content
        while rest:
            width = self.measure_width(content.w, size)
            box = _Rect(content.x + (content.w - width) / 2, content.y, width, content.h)
            rest = self.flow(rest, box)
            self.end_page(number=True)

    def caption(self, page: Page, width: float) -> list:
        if not page.caption or not page.caption.strip():
            return []
        size = max(7.5, self.sheet.base_size * 0.68)
        style = paragraph_style("caption", self.fonts, size, color=SOFT_INK, align=TA_CENTER, leading=1.3)
        return text_flowables(page.caption, style, self.fonts, width)

    # cover and closing ---------------------------------------------------------------------------
    def title_flowables(self, width: float) -> tuple[list, float]:
        """Title (and author) flowables and the width to set them in, lines balanced like a designer would."""
        base = self.sheet.base_size
        title = self.book.title.strip() or "Untitled story"
        size = base * 2.4
        while True:
            style = paragraph_style("title", self.fonts, size, bold=True, leading=1.18, align=TA_CENTER, color=INK)
            lines = _line_count(title, style, self.fonts, width)
            if lines <= 3 or size <= base * 1.2:
                break
            size *= 0.9
        # Never narrower than the longest word: a balanced title must not split one.
        narrow, wide = min(width, max(width * 0.35, widest_atom(title, self.fonts, size, bold=True) + 2)), width
        if lines > 1:  # shortest width that keeps the line count: no lonely last word
            for _ in range(12):
                mid = (narrow + wide) / 2
                if _line_count(title, style, self.fonts, mid) > lines:
                    narrow = mid
                else:
                    wide = mid
        out = text_flowables(title, style, self.fonts, wide + 1, bold=True)
        if self.book.author.strip():
            out.append(Spacer(1, base * 0.9))
            out.append(_Rule(wide, ACCENT))
            out.append(Spacer(1, base * 0.9))
            author = paragraph_style("author", self.fonts, base * 1.05, align=TA_CENTER, color=SOFT_INK)
            out.extend(text_flowables(self.book.author.strip(), author, self.fonts, wide + 1))
        return out, wide + 1

    def cover(self) -> None:
        s = self.sheet
        pic = self.cover_picture()
        heading, width = self.title_flowables(min(s.content.w, s.base_size * 26))
        need = _measure(heading, width)
        x = s.trim.x + (s.trim.w - width) / 2
        if pic is not None and self.opt.layout == "text_band":
            pad = s.margin * 0.9
            band = _Rect(s.bleed_rect.x, s.trim.top - s.margin * 0.7 - need - 2 * pad, s.bleed_rect.w, need + 2 * pad)
            self.full_bleed(pic, _Rect(s.trim.x, s.trim.y, s.trim.w, band.y - s.trim.y), None)
            self._band(band)
            self.flow(heading, _Rect(x, band.y + pad, width, need + 1))
        elif pic is not None:
            content = s.content.inset(0, -s.margin * 0.2, 0, 0)
            gap = s.base_size * 2.2
            box = _Rect(content.x, content.y + need + gap * 1.5, content.w, content.h - need - gap * 1.5)
            placed = self.draw_picture(pic, box, "contain", None)
            self.flow(heading, _Rect(x, content.y, width, placed.y - gap - content.y), "middle")
        else:
            self.flow(heading, _Rect(x, s.content.y + s.content.h * 0.2, width, s.content.h * 0.6), "middle")
        self.end_page(number=False)

    def dedication(self) -> None:
        """The dedication alone on a page, a little above the middle, as picture books set it."""
        s = self.sheet
        base = s.base_size
        width = min(s.content.w, base * 22)
        style = paragraph_style("dedication", self.fonts, base * 1.15, align=TA_CENTER, color=SOFT_INK, leading=1.6)
        flow = [
            _Ornament(width),
            Spacer(1, base * 1.2),
            *text_flowables(self.book.dedication.strip(), style, self.fonts, width),
        ]
        x = s.content.x + (s.content.w - width) / 2
        self.flow(flow, _Rect(x, s.content.y + s.content.h * 0.35, width, s.content.h * 0.5), "middle")
        self.end_page(number=False)

    def closing(self) -> None:
        s = self.sheet
        base = s.base_size
        width = min(s.content.w, base * 26)
        end_style = paragraph_style("end", self.fonts, base * 2.1, bold=True, align=TA_CENTER, color=INK)
        flow = [
            *text_flowables(closing_words(self.book), end_style, self.fonts, width, bold=True),
            Spacer(1, base * 1.2),
            _Ornament(width),
        ]
        x = s.content.x + (s.content.w - width) / 2
        self.flow(flow, _Rect(x, s.content.y + s.content.h * 0.25, width, s.content.h * 0.6), "middle")
        small = paragraph_style(
            "colophon", self.fonts, max(7.5, base * 0.64), align=TA_CENTER, color=SOFT_INK, leading=1.4
        )
        byline = self.book.title.strip() or "Untitled story"
        if self.book.author.strip():
            byline += " by " + self.book.author.strip()
        # The title and author may be in any script, so they go through the same typesetting as the story.
        colophon = text_flowables(byline, small, self.fonts, width) + [
            Paragraph(markup("Made with Storybook Studio.", self.fonts, small.fontSize), small)
        ]
        need = _measure(colophon, width)
        self.flow(colophon, _Rect(x, s.content.y, width, need + 1))
        self.end_page(number=False)

    # layouts -------------------------------------------------------------------------------------
    def _band(self, band: _Rect) -> None:
        c = self.canvas
        c.saveState()
        c.setFillColor(BAND)
        c.setFillAlpha(0.9)
        c.rect(*band, stroke=0, fill=1)
        c.restoreState()

    def text_only_page(self, page: Page) -> None:
        content = self.sheet.content
        width = self.measure_width(content.w, self.base)
        size, flow, fits = self.fit_text(page.text, width, content.h)
        box = _Rect(content.x + (content.w - width) / 2, content.y, width, content.h)
        rest = self.flow(flow, box, "middle" if fits else "top")
        self.end_page(number=True)
        self.text_pages(rest, size)

    def picture_above(self, index: int, page: Page) -> None:
        s = self.sheet
        content = s.content
        pic = self.picture(index)
        if pic is None:
            return self.text_only_page(page)
        gap = s.base_size * 1.6
        caption = self.caption(page, content.w)
        caption_h = _measure(caption, content.w) + s.base_size * 0.5 if caption else 0.0  # with its gap
        max_pic = min(content.h * 0.64, content.w / pic.aspect)
        min_pic = min(content.h * 0.46, max_pic)
        # the text column lines up with the picture unless that makes lines too short or too long
        width = min(content.w, max(max_pic * pic.aspect, self.base * 22), self.base * 34)
        has_text = bool(page.text.strip())
        room_for_text = content.h - min_pic - gap - caption_h
        size, flow, fits = self.fit_text(page.text, width, room_for_text) if has_text else (s.base_size, [], True)
        need = _measure(flow, width) if fits else room_for_text
        pic_h = (
            max(min_pic, min(max_pic, content.h - need - gap - caption_h))
            if has_text
            else min(content.h - caption_h, content.w / pic.aspect)
        )
        box = _Rect(content.x, content.top - pic_h, content.w, pic_h)
        placed = self.draw_picture(pic, box, "contain", index)
        bottom = placed.y
        if caption:
            self.flow(caption, _Rect(placed.x, bottom - caption_h, placed.w, caption_h - s.base_size * 0.5))
            bottom -= caption_h
        text_box = _Rect(content.x + (content.w - width) / 2, content.y, width, bottom - gap - content.y)
        rest = self.flow(flow, text_box, "middle" if fits else "top")
        self.end_page(number=True)
        self.text_pages(rest, size)

    def text_band(self, index: int, page: Page) -> None:
        s = self.sheet
        pic = self.picture(index)
        if pic is None:
            return self.text_only_page(page)
        if not page.text.strip():
            self.full_bleed(pic, s.trim, index)
            self.end_page(number=False)
            return
        width = self.measure_width(s.trim.w - 2 * s.margin, s.base_size)
        pad_top = s.margin * 0.7
        pad_bottom = s.margin * 0.9  # the page number sits here
        max_text = s.trim.h * 0.42 - pad_top - pad_bottom
        size, flow, fits = self.fit_text(page.text, width, max_text)
        need = min(_measure(flow, width), max_text) if fits else max_text
        band = _Rect(
            s.bleed_rect.x, s.bleed_rect.y, s.bleed_rect.w, (s.trim.y - s.bleed_rect.y) + pad_bottom + need + pad_top
        )
        # The band's size comes from the text, so the picture is placed once the text is measured.
        self.full_bleed(pic, _Rect(s.trim.x, band.top, s.trim.w, s.trim.top - band.top), index)
        self._band(band)
        rest = self.flow(flow, _Rect(s.trim.x + (s.trim.w - width) / 2, s.trim.y + pad_bottom, width, need + 0.5))
        self.end_page(number=True, band=_Rect(s.trim.x, s.trim.y, s.trim.w, band.h))
        self.text_pages(rest, size)

    def side_by_side(self, index: int, page: Page) -> None:
        s = self.sheet
        content = s.content
        pic = self.picture(index)
        if pic is None:
            return self.text_only_page(page)
        gutter = max(s.margin, content.w * 0.06)
        has_text = bool(page.text.strip())
        panel_w = (content.w - gutter) * 0.56 if has_text else content.w  # a wordless page is all picture
        caption = self.caption(page, panel_w)
        caption_h = _measure(caption, panel_w) + s.base_size * 0.5 if caption else 0.0
        fitted, _ = _fit(pic, _Rect(0, 0, panel_w, content.h - caption_h), "contain")
        # Picture and text column sit together as one centred group, whatever the picture's shape.
        text_w = self.measure_width(content.w - gutter - fitted.w, s.base_size) if has_text else 0.0
        group = fitted.w + (gutter + text_w if has_text else 0.0)
        left = content.x + (content.w - group) / 2
        box = _Rect(left, content.y + caption_h, fitted.w, content.h - caption_h)
        placed = self.draw_picture(pic, box, "contain", index)
        if caption:
            self.flow(caption, _Rect(placed.x, placed.y - caption_h, placed.w, caption_h - s.base_size * 0.5))
        if not has_text:
            self.end_page(number=True)
            return
        size, flow, fits = self.fit_text(page.text, text_w, content.h)
        rest = self.flow(
            flow, _Rect(left + fitted.w + gutter, content.y, text_w, content.h), "middle" if fits else "top"
        )
        self.end_page(number=True)
        self.text_pages(rest, size)

    def facing(self, index: int, page: Page, picture_parity: int) -> None:
        s = self.sheet
        if self.page_no % 2 != picture_parity:
            self.end_page(number=False)  # a blank page keeps every picture on the left of its spread
        pic = self.picture(index)
        if pic is not None:
            caption = self.caption(page, s.content.w)
            mode = "contain" if caption else self.picture_mode(pic, s.trim, 0.12)
            if mode == "cover":
                self.draw_picture(pic, s.bleed_rect, "cover", index)
            else:
                caption_h = _measure(caption, s.content.w) + s.base_size * 0.5 if caption else 0.0
                box = s.content.inset(0, caption_h, 0, 0)
                placed = self.draw_picture(pic, box, "contain", index)
                if caption:
                    self.flow(caption, _Rect(placed.x, placed.y - caption_h, placed.w, caption_h - s.base_size * 0.5))
        self.end_page(number=False)
        self.text_only_page(page)

    # the whole book ------------------------------------------------------------------------------
    def build(self) -> PdfResult:
        if self.opt.cover:
            self.cover()
        if self.book.dedication.strip():
            self.dedication()
        picture_parity = self.page_no % 2
        for index, page in enumerate(self.book.pages):
            if self.opt.layout == "facing":
                self.facing(index, page, picture_parity)
            else:
                getattr(self, self.opt.layout)(index, page)
        if self.opt.closing_page:
            self.closing()
        grouped = self.low_res_warning()
        if grouped:
            self.warnings.append(grouped)
        if self.fonts.missing:
            shown = ", ".join(_shown(ch) for ch in sorted(self.fonts.missing)[:16])
            more = len(self.fonts.missing) - 16
            shown += f" and {more} more" if more > 0 else ""
            note = f"Some characters have no shape in the book's fonts and were left out: {shown}."
            if any(emoji.CLUSTER.fullmatch(ch) for ch in self.fonts.missing) and not emoji.available():
                note += (
                    " Emoji print in colour where the computer has an emoji font (Noto Color Emoji on Linux) "
                    f"or {emoji.ENV} names one."
                )
            self.warnings.append(note)
        if self.fonts.unshaped:
            shown = ", ".join(_shown(ch) for ch in sorted(self.fonts.unshaped))
            self.warnings.append(
                "Some letters could not be joined as their script asks, because the PDF maker sets them one by "
                f"one: vowel signs written before a consonant print after it, and letters joined by a virama "
                f"print apart. The characters printed that way: {shown}."
            )
        self.canvas.save()
        return PdfResult(self.buffer.getvalue(), self.page_no - 1, self.reports, self.warnings)


def _shown(ch: str) -> str:
    """A character as a warning names it: itself, and its code where it is a mark or invisible alone."""
    if unicodedata.category(ch)[0] in "MC" or ch.isspace():
        return f"\u25cc{ch} (U+{ord(ch):04X})" if unicodedata.category(ch)[0] == "M" else f"U+{ord(ch):04X}"
    return ch


class _Rule(Spacer):
    """A short centred accent line."""

    def __init__(self, width: float, color, length: float = 36, thickness: float = 0.9):
        super().__init__(width, thickness)
        self.color, self.length, self.thickness = color, length, thickness

    def draw(self):
        c = self.canv
        c.saveState()
        c.setStrokeColor(self.color)
        c.setLineWidth(self.thickness)
        mid = self.width / 2
        c.line(mid - self.length / 2, 0, mid + self.length / 2, 0)
        c.restoreState()


class _Ornament(Spacer):
    """Three small diamonds, centred: the closing flourish."""

    def __init__(self, width: float, size: float = 4.0):
        super().__init__(width, size * 2)
        self.size = size

    def draw(self):
        c = self.canv
        c.saveState()
        c.setFillColor(ACCENT)
        mid, r = self.width / 2, self.size
        for dx in (-4 * r, 0, 4 * r):
            p = c.beginPath()
            cx, cy = mid + dx, r
            p.moveTo(cx, cy + r)
            p.lineTo(cx + r, cy)
            p.lineTo(cx, cy - r)
            p.lineTo(cx - r, cy)
            p.close()
            c.drawPath(p, stroke=0, fill=1)
        c.restoreState()


# reportlab keeps module-level state (font subsets, caches); one book at a time keeps it consistent.
_render_lock = threading.Lock()


def _number_ranges(numbers: list[int]) -> str:
    """[1, 2, 3, 5, 7, 8] -> '1-3, 5, 7-8' (sorted, distinct numbers)."""
    parts: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ", ".join(parts)


def render_pdf(book: Book, options: PdfOptions | None = None) -> PdfResult:
    """Print `book` as a PDF. Raises ExportError for a book or options a person must change."""
    options = _normalise_options(options or PdfOptions())
    if not book.pages or not any(p.text.strip() or p.image for p in book.pages):
        raise ExportError("This book has no pages yet; add some story text before exporting it.")
    with _render_lock:
        # ASCII85 would make every embedded picture a quarter larger for no benefit in a binary PDF.
        saved, rl_config.useA85 = rl_config.useA85, 0
        try:
            return _Composer(book, options).build()
        finally:
            rl_config.useA85 = saved
