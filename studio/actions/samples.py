"""Visual choices: a small sample picture for each picture style and a thumbnail of each PDF layout.

Style samples are schematic: one scene (a sun, hills, a little house, a tree) drawn with Pillow in the manner
of each style (soft washes for watercolor, hatching for pencil, ink outlines and halftone dots for comic…), so a
person sees what the words mean without any model. Layout thumbnails are the exporter's own first page of a
two-page sample book, drawn by exports.render_preview (poppler), so they show exactly what the PDF does.
Both are made once per process and kept (functools.cache): a few hundred kilobytes in all.
"""

from __future__ import annotations

import io
import random
from functools import cache

from PIL import Image, ImageChops, ImageDraw, ImageFilter

SAMPLE_SIDE = 192

SKY, SUN, HILL, FAR_HILL, WALL, ROOF, DOOR, TRUNK, LEAVES = (
    (150, 200, 235),
    (255, 205, 60),
    (110, 175, 90),
    (160, 200, 130),
    (235, 220, 190),
    (200, 80, 60),
    (120, 80, 50),
    (110, 80, 50),
    (70, 140, 70),
)


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "PNG", optimize=True)
    return out.getvalue()


def _scene(draw: ImageDraw.ImageDraw, s: int, palette: dict, outline=None, width: int = 0) -> None:
    """The one scene every sample shows, in `palette`'s colours, with optional ink outlines."""
    draw.ellipse((s * 0.66, s * 0.08, s * 0.88, s * 0.30), fill=palette["sun"], outline=outline, width=width)
    draw.ellipse((-s * 0.3, s * 0.52, s * 0.8, s * 1.3), fill=palette["far_hill"], outline=outline, width=width)
    draw.ellipse((s * 0.2, s * 0.6, s * 1.4, s * 1.4), fill=palette["hill"], outline=outline, width=width)
    draw.rectangle((s * 0.22, s * 0.50, s * 0.46, s * 0.70), fill=palette["wall"], outline=outline, width=width)
    draw.polygon(
        [(s * 0.18, s * 0.51), (s * 0.34, s * 0.36), (s * 0.50, s * 0.51)], fill=palette["roof"], outline=outline
    )
    draw.rectangle((s * 0.31, s * 0.60, s * 0.37, s * 0.70), fill=palette["door"], outline=outline, width=width)
    draw.rectangle((s * 0.72, s * 0.52, s * 0.76, s * 0.70), fill=palette["trunk"], outline=outline, width=width)
    draw.ellipse((s * 0.62, s * 0.34, s * 0.86, s * 0.56), fill=palette["leaves"], outline=outline, width=width)


def _palette(shift=(0, 0, 0), scale: float = 1.0, toward=None, amount: float = 0.0) -> dict:
    names = ("sky", "sun", "hill", "far_hill", "wall", "roof", "door", "trunk", "leaves")
    colours = (SKY, SUN, HILL, FAR_HILL, WALL, ROOF, DOOR, TRUNK, LEAVES)
    out = {}
    for name, c in zip(names, colours):
        c = tuple(min(255, max(0, int(v * scale + d))) for v, d in zip(c, shift))
        if toward is not None:
            c = tuple(int(v + (t - v) * amount) for v, t in zip(c, toward))
        out[name] = c
    return out


def _paper(size: int, seed: int, strength: int = 18) -> Image.Image:
    rng = random.Random(seed)
    noise = Image.new("L", (size // 4, size // 4))
    noise.putdata([128 + rng.randint(-strength, strength) for _ in range(noise.width * noise.height)])
    return noise.resize((size, size), Image.Resampling.BICUBIC).convert("RGB")


def _draw_style(key: str, s: int) -> Image.Image:
    rng = random.Random(key)
    if key == "pencil":
        grey = {
            k: (v,) * 3
            for k, v in zip(
                ("sky", "sun", "hill", "far_hill", "wall", "roof", "door", "trunk", "leaves"),
                (250, 245, 215, 230, 245, 190, 150, 160, 200),
            )
        }
        img = Image.new("RGB", (s, s), (250, 250, 248))
        d = ImageDraw.Draw(img)
        _scene(d, s, grey, outline=(60, 60, 60), width=2)
        for _ in range(220):  # cross-hatching over the shaded parts
            x, y = rng.randint(0, s), rng.randint(int(s * 0.5), s)
            d.line((x, y, x + 7, y - 7), fill=(120, 120, 120), width=1)
        return img
    if key == "comic":
        img = Image.new("RGB", (s, s), (120, 200, 250))
        d = ImageDraw.Draw(img)
        _scene(d, s, _palette(scale=1.15), outline=(0, 0, 0), width=4)
        for y in range(0, int(s * 0.45), 8):  # halftone dots in the sky
            for x in range((y // 8) % 2 * 4, s, 8):
                d.ellipse((x, y, x + 2.5, y + 2.5), fill=(80, 160, 220))
        return img
    if key == "flat_vector":
        img = Image.new("RGB", (s, s), (190, 225, 240))
        _scene(ImageDraw.Draw(img), s, _palette(toward=(255, 255, 255), amount=0.15))
        return img
    if key == "photo":
        img = Image.new("RGB", (s, s))
        d = ImageDraw.Draw(img)
        for y in range(s):  # a real sky is a gradient
            t = y / s
            d.line((0, y, s, y), fill=(int(90 + 120 * t), int(150 + 80 * t), int(220 + 20 * t)))
        _scene(d, s, _palette(scale=0.9))
        far = img.filter(ImageFilter.GaussianBlur(3))  # shallow depth of field: the far half is soft
        mask = Image.new("L", (s, s), 0)
        ImageDraw.Draw(mask).rectangle((0, 0, s, int(s * 0.55)), fill=255)
        return Image.composite(far, img, mask.filter(ImageFilter.GaussianBlur(8)))
    if key == "oil":
        img = Image.new("RGB", (s, s), (230, 190, 120))
        _scene(ImageDraw.Draw(img), s, _palette(shift=(20, 0, -30), scale=0.95))
        d = ImageDraw.Draw(img)
        for _ in range(700):  # short brushstrokes sampled from the paint below
            x, y = rng.randrange(s), rng.randrange(s)
            r, g, b = img.getpixel((x, y))
            jitter = rng.randint(-18, 18)
            d.line((x, y, x + rng.randint(3, 8), y + rng.randint(-2, 2)), fill=(r + jitter, g + jitter, b), width=3)
        return img
    if key == "crayon":
        img = Image.new("RGB", (s, s), (252, 250, 240))
        d = ImageDraw.Draw(img)
        shapes = Image.new("RGB", (s, s), (252, 250, 240))
        _scene(ImageDraw.Draw(shapes), s, _palette(scale=1.1))
        for _ in range(2600):  # waxy strokes that leave paper showing
            x, y = rng.randrange(s), rng.randrange(s)
            colour = shapes.getpixel((x, y))
            if colour != (252, 250, 240):
                d.line((x, y, x + rng.randint(-5, 5), y + rng.randint(2, 6)), fill=colour, width=2)
        return img
    if key == "none":
        img = Image.new("RGB", (s, s), (236, 236, 236))
        d = ImageDraw.Draw(img)
        d.rectangle((s * 0.1, s * 0.1, s * 0.9, s * 0.9), outline=(170, 170, 170), width=3)
        d.line((s * 0.1, s * 0.1, s * 0.9, s * 0.9), fill=(190, 190, 190), width=2)
        d.line((s * 0.1, s * 0.9, s * 0.9, s * 0.1), fill=(190, 190, 190), width=2)
        return img
    # watercolor (and any style added later): soft pastel washes bleeding on textured paper
    img = Image.new("RGB", (s, s), _palette(toward=(255, 255, 255), amount=0.35)["sky"])
    _scene(ImageDraw.Draw(img), s, _palette(toward=(255, 255, 255), amount=0.35))
    img = img.filter(ImageFilter.GaussianBlur(2.2))
    return ImageChops.multiply(img, _paper(s, 7, strength=12).point(lambda v: 238 + (v - 128) // 3))


@cache
def style_sample(key: str, side: int = SAMPLE_SIDE) -> bytes:
    """A PNG of the sample scene drawn in the manner of picture style `key` (engine.prompts.STYLES)."""
    return _png(_draw_style(key, side))


LAYOUT_SAMPLE_TEXT = (
    "The fox climbed the lighthouse stairs, one by one, and lit the lamp for the boats.",
    "Far away, a little boat saw the light and turned for home.",
)


@cache
def layout_thumbnail(layout: str, page_size: str = "A4", orientation: str = "auto", dpi: int = 18) -> bytes | None:
    """A PNG of the first story page (both facing pages for 'facing') of a two-page sample book in `layout`,
    made by the exporter itself; None when previews cannot be drawn here (no pdftoppm)."""
    from exports import Book, Page, PdfOptions, preview_available, render_pdf, render_preview

    if not preview_available():
        return None
    picture = style_sample("watercolor", 256)
    book = Book("Sample", pages=[Page(text, image=picture) for text in LAYOUT_SAMPLE_TEXT])
    options = PdfOptions(
        layout=layout, page_size=page_size, orientation=orientation, cover=False, closing_page=False, page_numbers=False
    )
    pngs = render_preview(render_pdf(book, options).pdf, pages=2 if layout == "facing" else 1, dpi=dpi)
    if not pngs:
        return None
    pages = [Image.open(io.BytesIO(png)).convert("RGB") for png in pngs]
    gap = 4
    sheet = Image.new(
        "RGB", (sum(p.width for p in pages) + gap * (len(pages) - 1), max(p.height for p in pages)), "white"
    )
    x = 0
    for p in pages:
        sheet.paste(p, (x, 0))
        x += p.width + gap
    bordered = Image.new("RGB", (sheet.width + 2, sheet.height + 2), (180, 160, 140))
    bordered.paste(sheet, (1, 1))
    return _png(bordered)
