"""The one door every picture comes in through: uploads, imports, CLI files.

Pictures come from strangers, so this reads them defensively:

* only PNG, JPEG and WebP are parsed (Pillow is told to try no other decoder); GIF, TIFF, BMP, HEIC,
  SVG and anything else are refused with a sentence naming the file and the kind it is;
* the byte size (MAX_UPLOAD_BYTES) is checked before anything is parsed, and the pixel size from the
  header (MAX_PIXELS, MAX_SIDE) before anything is decoded, so a 300 KB file that would expand into
  gigabytes is refused without being expanded; Pillow's own DecompressionBombWarning is an error here;
* the file is verify()'d, then opened again and fully decoded, so truncated and corrupt files fail here
  and not later inside a model;
* what comes out is always an 8-bit RGB image, upright (EXIF orientation applied), with transparency
  laid on white, CMYK and palette turned to RGB, 16-bit samples scaled (not clipped) to 8 bits, and
  the first frame of an animation, each change that a person would notice listed in `notes`.

GIF is refused rather than read: the issue asks for PNG, JPEG and WebP only, and every format we do not
parse is one less decoder exposed to uploads. Animated PNG (APNG) and animated WebP are accepted:
their first frame is used and a note says so.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from engine.errors import ImageRejected

MAX_UPLOAD_BYTES = 30 * 1024 * 1024
MAX_PIXELS = 40_000_000
MAX_SIDE = 8192
ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP")
ACCEPTED_LABEL = "PNG, JPEG or WebP"

# Formats we recognise by their first bytes only to name them in the refusal.
_OTHER_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"BM", 0, "BMP"),
    (b"II*\x00", 0, "TIFF"),
    (b"MM\x00*", 0, "TIFF"),
    (b"\x00\x00\x01\x00", 0, "ICO"),
    (b"8BPS", 0, "Photoshop (PSD)"),
    (b"%PDF", 0, "PDF"),
    (b"PK\x03\x04", 0, "ZIP"),
    (b"ftypheic", 4, "HEIC"),
    (b"ftypheix", 4, "HEIC"),
    (b"ftypmif1", 4, "HEIF"),
    (b"ftypavif", 4, "AVIF"),
    (b"\xff\x0a", 0, "JPEG XL"),
    (b"\x00\x00\x00\x0cJXL ", 0, "JPEG XL"),
)


@dataclass
class LoadedImage:
    image: Image.Image  # 8-bit RGB, upright, fully decoded, detached from the file
    format: str  # "PNG", "JPEG" or "WEBP"
    notes: list[str] = field(default_factory=list)  # sentences about changes a person would notice
    original_size: tuple[int, int] = (0, 0)  # width, height as stored, before EXIF rotation
    name: str = ""


def load_image(source: bytes | bytearray | str | Path | Any, *, name: str = "") -> LoadedImage:
    """Read a picture from bytes, a file path, or an object with getvalue()/read() (an upload).

    Raises ImageRejected with one sentence naming the file when it cannot or should not be used.
    """
    data, label = _read_source(source, name)
    kind = _sniff(data)
    if kind not in ACCEPTED_FORMATS:
        raise ImageRejected(_refusal_for(kind, label))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return _decode(data, kind, label)
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected(
            f"'{label}' would expand to too many pixels to open safely; "
            f"a picture may have at most {MAX_PIXELS // 1_000_000} megapixels."
        ) from None
    except MemoryError:
        raise ImageRejected(f"'{label}' needs more memory to open than this machine can spare.") from None
    except (OSError, SyntaxError, ValueError, EOFError, UnidentifiedImageError, IndexError, TypeError) as exc:
        # Pillow reports corrupt data through all of these; the cause is the file either way.
        raise ImageRejected(_broken_message(label, kind, exc)) from None


def to_png_bytes(image: Image.Image) -> bytes:
    """The image as PNG bytes, without the metadata of wherever it came from."""
    buffer = io.BytesIO()
    if image.mode not in ("RGB", "RGBA", "L", "LA", "P", "1", "I;16", "I"):
        image = image.convert("RGB")
    image.save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


# --- reading ----------------------------------------------------------------------------------


def _read_source(source: Any, name: str) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        label = name or "the picture"
        data = bytes(source)
    elif isinstance(source, (str, Path)):
        path = Path(source)
        label = name or path.name or str(path)
        data = _read_path(path, label)
    elif hasattr(source, "getvalue") or hasattr(source, "read"):
        label = name or Path(str(getattr(source, "name", "") or "")).name or "the picture"
        raw = source.getvalue() if hasattr(source, "getvalue") else source.read(MAX_UPLOAD_BYTES + 1)
        if not isinstance(raw, (bytes, bytearray)):
            raise ImageRejected(f"'{label}' did not arrive as a file of bytes.")
        data = bytes(raw)
    else:
        raise ImageRejected("A picture must be given as a file or its bytes.")
    if not data:
        raise ImageRejected(f"'{label}' is empty (0 bytes), so there is no picture in it.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise ImageRejected(
            f"'{label}' is {_megabytes(len(data))}; a picture may be at most {_megabytes(MAX_UPLOAD_BYTES)}."
        )
    return data, label


def _read_path(path: Path, label: str) -> bytes:
    try:
        if not path.exists():
            raise ImageRejected(f"'{label}' was not found.")
        if not path.is_file():
            raise ImageRejected(f"'{label}' is not a file.")
        size = path.stat().st_size
        if size > MAX_UPLOAD_BYTES:
            raise ImageRejected(
                f"'{label}' is {_megabytes(size)}; a picture may be at most {_megabytes(MAX_UPLOAD_BYTES)}."
            )
        with open(path, "rb") as handle:
            # Bounded read: a device or a file growing under us cannot make this read forever.
            return handle.read(MAX_UPLOAD_BYTES + 1)
    except PermissionError:
        raise ImageRejected(f"'{label}' could not be read: permission denied.") from None
    except OSError as exc:
        raise ImageRejected(f"'{label}' could not be read ({exc.strerror or type(exc).__name__}).") from None


def _megabytes(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def _sniff(data: bytes) -> str:
    """The format the first bytes announce: PNG, JPEG, WEBP, another known kind, 'TEXT' or ''."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    for signature, offset, kind in _OTHER_SIGNATURES:
        if data[offset : offset + len(signature)] == signature:
            return kind
    head = data[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<svg", b"<?xml")) and b"<svg" in data[:4096].lower():
        return "SVG"
    if _looks_like_text(data[:4096]):
        return "TEXT"
    return ""


def _looks_like_text(sample: bytes) -> bool:
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError:
        # A cut in the middle of a multi-byte character at the end of the sample is still text.
        try:
            text = sample[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    if not text:
        return False
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return printable / len(text) > 0.95


_SAID_WITH_AN = frozenset({"SVG", "ICO", "AVIF"})  # "an SVG file", read letter by letter; "a PNG file"


def _refusal_for(kind: str, label: str) -> str:
    if kind == "TEXT":
        return f"'{label}' holds text, not a picture: only {ACCEPTED_LABEL} pictures can be used."
    if kind == "GIF":
        return (
            f"'{label}' is a GIF, which is not supported: only {ACCEPTED_LABEL} pictures can be used, "
            f"so save it as PNG first."
        )
    if kind:
        article = "an" if kind in _SAID_WITH_AN else "a"
        return (
            f"'{label}' is {article} {kind} file: only {ACCEPTED_LABEL} pictures can be used, so save it as PNG first."
        )
    return f"'{label}' is not a {ACCEPTED_LABEL} picture, or it is damaged beyond reading."


def _broken_message(label: str, kind: str, exc: BaseException) -> str:
    text = str(exc).lower()
    if "decompressed data too large" in text or "too much memory used in text chunks" in text:
        # Pillow's guard against a text chunk that unpacks to hundreds of MB: the picture may be fine.
        return (
            f"'{label}' carries too much metadata (text hidden inside the {_kind_label(kind)} file, more than a "
            f"picture needs): metadata too large. Save the picture again without its metadata, then add it."
        )
    if (
        "truncated" in text
        or isinstance(exc, EOFError)
        or "broken data stream" in text
        or "premature end" in text
        or "incomplete" in text
    ):
        return f"'{label}' is cut short (an incomplete {_kind_label(kind)} file): upload the whole file again."
    return f"'{label}' looks like a {_kind_label(kind)} file but is damaged and cannot be read."


def _kind_label(kind: str) -> str:
    return {"WEBP": "WebP"}.get(kind, kind)


# --- decoding ---------------------------------------------------------------------------------


def _open(data: bytes, kind: str) -> Image.Image:
    # formats=[kind]: Pillow tries exactly the decoder the signature named, never a fallback plugin.
    return Image.open(io.BytesIO(data), formats=[kind])


def _decode(data: bytes, kind: str, label: str) -> LoadedImage:
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        # Someone in this process asked Pillow to accept cut-off files; uploads must not be.
        raise RuntimeError("Pillow is set to load truncated images; refusing to read uploads that way.")
    probe = _open(data, kind)
    width, height = probe.size
    _check_size(width, height, label)
    probe.verify()

    image = _open(data, kind)  # verify() leaves the image unusable: reopen to decode
    notes: list[str] = []
    frames = _frame_count(image)
    image.seek(0)
    image.load()
    if frames > 1:
        notes.append(f"'{label}' is animated and had {frames} frames; the first one is used.")
    original_size = image.size
    _check_size(*original_size, label)

    image = _upright(image, label, notes)
    image = _to_rgb(image, label, notes)
    return LoadedImage(image=image, format=kind, notes=notes, original_size=original_size, name=label)


def _check_size(width: int, height: int, label: str) -> None:
    if width <= 0 or height <= 0:
        raise ImageRejected(f"'{label}' says it is {width} × {height} pixels, which is not a picture.")
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise ImageRejected(
            f"'{label}' is {width} × {height} pixels, too large: a picture may have at most "
            f"{MAX_PIXELS // 1_000_000} megapixels and {MAX_SIDE} pixels on a side."
        )


def _frame_count(image: Image.Image) -> int:
    try:
        return max(1, int(getattr(image, "n_frames", 1)))
    except (OSError, ValueError, EOFError):
        return 1


def _upright(image: Image.Image, label: str, notes: list[str]) -> Image.Image:
    try:
        orientation = image.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - a malformed EXIF block must not lose the picture
        notes.append(f"'{label}' has an unreadable rotation tag; it is shown as stored.")
        return image
    if orientation in (None, 1):
        return image
    try:
        rotated = ImageOps.exif_transpose(image)
    except Exception:  # noqa: BLE001
        notes.append(f"'{label}' has an unreadable rotation tag; it is shown as stored.")
        return image
    if rotated is not None and orientation in range(2, 9):
        notes.append(f"'{label}' was turned upright as its camera's orientation tag asks.")
        return rotated
    return image


_SIXTEEN_BIT = {"I;16", "I;16L", "I;16B", "I;16N", "I"}


def _to_rgb(image: Image.Image, label: str, notes: list[str]) -> Image.Image:
    mode = image.mode
    if mode in _SIXTEEN_BIT:
        # convert("L") would clip every 16-bit sample above 255 to white; scale the range instead.
        image = image.convert("I").point(lambda v: v * (1 / 257)).convert("L")
        mode = "L"
    elif mode == "F":
        image = image.point(lambda v: v * 255).convert("L")
        mode = "L"

    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    if has_alpha:
        rgba = image.convert("RGBA")
        if rgba.getextrema()[3][0] < 255:
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            background.alpha_composite(rgba)
            notes.append(f"'{label}' has transparent parts; they are shown on white.")
            rgba = background
        return rgba.convert("RGB")
    if mode == "CMYK":
        notes.append(f"'{label}' is in print colours (CMYK); it was converted to screen colours.")
    if mode != "RGB":
        return image.convert("RGB")
    # copy(): detach from the file object so the decoded pixels outlive it.
    return image.copy()
