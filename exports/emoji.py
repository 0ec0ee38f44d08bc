"""Colour emoji in the book: each one drawn from the computer's own emoji font as a small picture.

reportlab sets TrueType outlines only, while emoji fonts hold bitmaps (CBDT, sbix) or colour layers,
and it writes characters past U+FFFF wrongly into the text layer. So a whole emoji (with its skin
tone, a family joined by zero-width joiners, a flag, a keycap) is drawn by Pillow with the font's
own colours, shaped by libraqm where Pillow has it, and placed in the line at the text's size.

No emoji font is shipped (the usual one is 10 MB). The first of these is used:
``STORYBOOK_EMOJI_FONT`` (a font file, or ``none`` to print no emoji), then the usual places on Linux
(Noto Color Emoji), macOS (Apple Color Emoji) and Windows (Segoe UI Emoji). Without one, emoji are
left out of the page and the exporter says so, as before.
"""

from __future__ import annotations

import atexit
import hashlib
import io
import os
import re
import shutil
import tempfile
import threading
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ENV = "STORYBOOK_EMOJI_FONT"
CANDIDATES = (
    "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",
    "/usr/share/fonts/noto/NotoColorEmoji.ttf",
    "/usr/share/fonts/google-noto-emoji/NotoColorEmoji.ttf",
    "/usr/share/fonts/noto-emoji/NotoColorEmoji.ttf",
    "/usr/local/share/fonts/NotoColorEmoji.ttf",
    "/System/Library/Fonts/Apple Color Emoji.ttc",
    "C:/Windows/Fonts/seguiemj.ttf",
)
# Bitmap emoji fonts open only at the sizes they hold (Noto: 109 px; Apple: 160, 96, 64...);
# outline and colour-layer fonts open at any of them.
STRIKES = (109, 160, 136, 128, 96, 64, 48, 40, 32, 20)
ADVANCE = 1.0  # an emoji's width in the line, in ems: img_tag places it 1 em square

# One emoji as a person sees it. Python's re has no emoji property, so the blocks are named:
# pictographs, dingbats and symbols, arrows and technical signs, a few letterlike ones (© ® ™ ‼ ⁉ ℹ).
_PICTO = (
    r"\U0001F000-\U0001FAFF\u2600-\u27BF\u2300-\u23FF\u2B00-\u2BFF\u2190-\u21FF\u25A0-\u25FF"
    r"\u2900-\u297F\u3030\u303D\u3297\u3299\u00A9\u00AE\u203C\u2049\u2122\u2139"
)
_TAIL = r"(?:\uFE0F|[\U0001F3FB-\U0001F3FF]|[\U000E0020-\U000E007F]+)*"
CLUSTER = re.compile(
    r"[\U0001F1E6-\U0001F1FF]{2}"  # a flag: two regional indicators
    r"|[0-9#*]\uFE0F?\u20E3"  # a keycap
    rf"|[{_PICTO}]{_TAIL}(?:\u200D[{_PICTO}]{_TAIL})*"  # a pictograph, its modifiers, joined ones
)
# Parts of an emoji sequence that are not emoji themselves.
JOINERS = frozenset("\u200d\ufe0f\ufe0e\u20e3") | {chr(c) for c in range(0x1F3FB, 0x1F400)}


def font_path() -> Path | None:
    """The emoji font this computer offers, or None."""
    return _find(os.environ.get(ENV, "").strip())


@lru_cache(maxsize=8)
def _find(chosen: str) -> Path | None:
    if chosen:
        return None if chosen.lower() == "none" else Path(chosen)
    return next((Path(p) for p in CANDIDATES if Path(p).is_file()), None)


_lock = threading.Lock()  # FreeType faces are not safe to share between threads


@lru_cache(maxsize=4)
def _open(path: Path) -> ImageFont.FreeTypeFont | None:
    for size in STRIKES:
        try:
            return ImageFont.truetype(str(path), size)
        except OSError:  # not this size (a bitmap font), or not a font at all
            continue
    return None


def available() -> bool:
    path = font_path()
    return path is not None and _open(path) is not None


def is_emoji(cluster: str) -> bool:
    """Whether `cluster` (one CLUSTER match) asks for emoji presentation whatever the text font has:
    a sequence, a flag, a keycap, a skin tone, or a character outside the Basic Multilingual Plane."""
    return len(cluster) > 1 or ord(cluster[0]) > 0xFFFF


@lru_cache(maxsize=2048)
def _picture(path: Path, cluster: str) -> bytes | None:
    font = _open(path)
    if font is None:
        return None
    with _lock:
        try:
            width = max(1, min(4096, round(font.getlength(cluster))))
            ascent, descent = font.getmetrics()
            canvas = Image.new("RGBA", (width, max(1, ascent + descent)), (0, 0, 0, 0))
            ImageDraw.Draw(canvas).text((0, 0), cluster, font=font, embedded_color=True)
        except (OSError, ValueError, MemoryError):  # a font Pillow or FreeType cannot draw this with
            return None
    box = canvas.getbbox()
    if box is None:  # the font has nothing for it: an empty glyph
        return None
    side = max(canvas.size)  # square, so every emoji sits alike in the line
    square = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    square.paste(canvas, ((side - canvas.width) // 2, (side - canvas.height) // 2))
    out = io.BytesIO()
    square.resize((72, 72), Image.Resampling.LANCZOS).save(out, "PNG", optimize=True)
    return out.getvalue()


def picture(cluster: str) -> bytes | None:
    """PNG bytes of one emoji (72 px square, transparent around it), or None when it cannot be drawn."""
    path = font_path()
    return None if path is None else _picture(path, cluster)


_files: dict[bytes, str] = {}
_folder: list[str] = []


def _file(png: bytes) -> str:
    """A file holding `png`, in a folder of this process's own removed at exit. (Paragraph's <img> takes
    a file name; reportlab 4's reading of data: addresses fails.)"""
    with _lock:
        path = _files.get(png)
        if path is None or not os.path.exists(path):  # a long-running studio may see /tmp cleaned
            if not _folder:
                _folder.append(tempfile.mkdtemp(prefix="storybook-emoji-"))
                atexit.register(shutil.rmtree, _folder[0], ignore_errors=True)
            os.makedirs(_folder[0], exist_ok=True)  # the cleaner may have taken the folder too
            path = os.path.join(_folder[0], hashlib.sha1(png).hexdigest() + ".png")
            if not os.path.exists(path):
                with open(path + ".part", "wb") as out:
                    out.write(png)
                os.replace(path + ".part", path)
            _files[png] = path
        return path


def img_tag(cluster: str, size: float) -> str | None:
    """Paragraph markup placing the emoji at font size `size`, or None when it cannot be drawn."""
    png = picture(cluster)
    if png is None:
        return None
    try:
        path = _file(png)
    except OSError:  # no room in the temporary folder: the emoji is left out and reported
        return None
    path = path.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    return f'<img src="{path}" width="{size:.2f}" height="{size:.2f}" valign="{-0.14 * size:.2f}"/>'
