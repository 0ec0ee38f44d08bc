"""Reading picture bytes safely before they go into a book.

Pictures come from our own engine, from uploads and from manifests on disk, so they are treated as
untrusted: a pixel limit applies before decoding, decompression-bomb warnings are errors, and
`verify()` runs before the pixels are used.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageFilter, ImageOps

# 64 megapixels: a 9000 x 7000 photograph fits, a pixel bomb does not.
MAX_PIXELS = 64_000_000
MAX_BYTES = 80 * 1024 * 1024
READABLE_FORMATS = {"PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF"}


class BrokenImage(Exception):
    """The bytes are not a picture we can print; str() is a phrase for a warning sentence."""


@dataclass(frozen=True)
class Picture:
    """A checked picture: what to hand to reportlab and its size in pixels."""

    source: io.BytesIO | Image.Image  # raw JPEG bytes (embedded as-is) or a decoded PIL image
    width: int
    height: int
    format: str

    @property
    def aspect(self) -> float:
        return self.width / self.height


def _open_checked(data: bytes) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            probe = Image.open(io.BytesIO(data))
            if probe.format not in READABLE_FORMATS:
                raise BrokenImage(f"is a {probe.format or 'unknown'} file, not a picture format we print")
            width, height = probe.size
            if width < 1 or height < 1:
                raise BrokenImage("has no pixels")
            if width * height > MAX_PIXELS:
                raise BrokenImage(f"is too large ({width} x {height} pixels)")
            probe.verify()
            image = Image.open(io.BytesIO(data))
            image.load()
        except BrokenImage:
            raise
        except (Image.DecompressionBombWarning, Image.DecompressionBombError):
            raise BrokenImage("is too large to open safely") from None
        except Exception:  # noqa: BLE001 - Pillow raises many types for damaged files; all mean the same to a reader
            raise BrokenImage("is damaged or not a picture") from None
    return image


def load_picture(data: bytes | None) -> Picture:
    """Check `data` and return a Picture ready to embed at full resolution; raise BrokenImage."""
    if not data:
        raise BrokenImage("is empty")
    if len(data) > MAX_BYTES:
        raise BrokenImage("is larger than 80 MB")
    image = _open_checked(data)
    fmt = image.format or ""
    orientation = image.getexif().get(0x0112, 1) if hasattr(image, "getexif") else 1
    # A plain JPEG goes into the PDF byte for byte (no re-compression, no resampling).
    if fmt == "JPEG" and image.mode in ("RGB", "L") and orientation in (None, 1):
        return Picture(io.BytesIO(data), image.width, image.height, fmt)
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
    elif image.mode != "L":
        image = image.convert("RGB")
    return Picture(image, image.width, image.height, fmt)


def soft_backdrop(pic: Picture, size: tuple[int, int], tone: tuple[int, int, int], fade: float = 0.55) -> bytes:
    """JPEG bytes of `pic` cropped to fill `size` pixels, strongly blurred and faded toward `tone`.

    A background behind the whole picture, not a second copy of it: it is made from a small copy
    (a JPEG is decoded at reduced scale, never in full) so it costs little time and a few KB.
    """
    if isinstance(pic.source, Image.Image):
        image = pic.source
    else:
        pic.source.seek(0)
        image = Image.open(pic.source)
        image.draft("RGB", size)  # JPEG decodes at 1/2, 1/4 or 1/8 scale, still at least `size`
        image.load()
        pic.source.seek(0)
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if "transparency" in image.info or image.mode in ("LA", "PA") else "RGB")
    # The centred crop that fills `size`, as cover mode would place the picture.
    scale = max(size[0] / image.width, size[1] / image.height)
    crop_w, crop_h = size[0] / scale, size[1] / scale
    left, top = (image.width - crop_w) / 2, (image.height - crop_h) / 2
    small = image.resize(
        size, Image.Resampling.BILINEAR, box=(left, top, left + crop_w, top + crop_h), reducing_gap=2.0
    )
    if small.mode == "RGBA":  # transparent parts show the paper, as they do on the page
        small = Image.alpha_composite(Image.new("RGBA", size, tone), small).convert("RGB")
    small = small.filter(ImageFilter.GaussianBlur(max(size) / 25))
    out = io.BytesIO()
    Image.blend(small, Image.new("RGB", size, tone), fade).save(out, "JPEG", quality=80)
    return out.getvalue()


def image_kind(data: bytes) -> str | None:
    """'png', 'jpg', 'webp'... for a readable picture, None for anything else (used to name files)."""
    try:
        image = _open_checked(data)
    except BrokenImage:
        return None
    name = image.format or ""
    return {"JPEG": "jpg", "TIFF": "tif"}.get(name, name.lower()) or None
