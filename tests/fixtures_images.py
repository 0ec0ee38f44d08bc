"""Pictures made in code for the loader, captioner and CLI tests: ordinary, broken and hostile."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def encode(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def png(size=(32, 24), color=(200, 40, 40), mode="RGB") -> bytes:
    return encode(Image.new(mode, size, color), "PNG")


def jpeg(size=(32, 24), color=(40, 120, 200), **kwargs) -> bytes:
    return encode(Image.new("RGB", size, color), "JPEG", quality=90, **kwargs)


def gradient(size=(48, 32)) -> Image.Image:
    """An image whose pixels differ, so a captioner sees something other than a flat colour."""
    image = Image.new("RGB", size)
    image.putdata([((x * 5) % 256, (y * 7) % 256, ((x + y) * 3) % 256) for y in range(size[1]) for x in range(size[0])])
    return image


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def raw_png(width: int, height: int, bit_depth: int, color_type: int, rows: list[bytes], level: int = 9) -> bytes:
    """A PNG written by hand, for kinds Pillow will not write (48-bit RGB) or would not let us make."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    raw = b"".join(b"\x00" + row for row in rows)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, level))
        + _chunk(b"IEND", b"")
    )


def png_rgb16(width=4, height=3, rgb=(0x8000, 0x4000, 0xFFFF)) -> bytes:
    row = struct.pack(">HHH", *rgb) * width
    return raw_png(width, height, 16, 2, [row] * height)


def bomb_png(side: int = 20000) -> bytes:
    """A 1-bit greyscale PNG of side x side pixels: 50 MB of pixels once decoded, a few KB on disk."""
    row_bytes = (side + 7) // 8
    compressor = zlib.compressobj(9)
    parts = [compressor.compress(b"\x00" * (row_bytes + 1)) for _ in range(side)]
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b"")


def animated(fmt: str, frames: int = 3, size=(16, 16)) -> bytes:
    colors = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    images = [Image.new("RGB", size, colors[i % len(colors)]) for i in range(frames)]
    return encode(images[0], fmt, save_all=True, append_images=images[1:], duration=100, loop=0)


def exif_rotated_jpeg(size=(40, 20), orientation: int = 6) -> bytes:
    image = Image.new("RGB", size, (10, 200, 10))
    # A marker in the top-left corner shows which way the pixels end up.
    for x in range(8):
        for y in range(8):
            image.putpixel((x, y), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(image, "JPEG", quality=95, exif=exif.tobytes())
