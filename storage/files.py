"""Image files, named by the SHA-256 of their bytes: ``images/ab/abcdef....png`` under the data folder.

A file is written to a temporary name in its final folder, flushed, fsynced and renamed into place
(and the folder fsynced) before any database row naming it is committed, so a crash leaves at worst
an unnamed file, never a row naming a missing or truncated one. The start-up sweep removes files no
row names, but only old ones: a concurrent writer may have written a file it has not committed yet.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import re
import secrets
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from storage.errors import DiskFullError, InvalidInput, StorageError

MAX_IMAGE_BYTES = 50 * 1024 * 1024
# Pillow's own limit (about 89 MP, and only a warning below 179 MP) lets a 292 KB PNG expand to
# 779 MB; we check the declared size against our own, lower limit before anything is decoded. It is
# below Pillow's warning threshold, so every picture Pillow would warn about is refused (we do not
# turn the warning into an error with warnings.catch_warnings: that is not thread-safe).
MAX_IMAGE_PIXELS = 40_000_000
MAX_IMAGE_SIDE = 20_000
FORMAT_EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}
ALLOWED_EXTENSIONS = frozenset(FORMAT_EXTENSIONS.values())
SWEEP_MIN_AGE_S = 15 * 60
_NAME = re.compile(r"^([0-9a-f]{64})\.(png|jpg|webp)$")
_TMP_PREFIX = ".tmp-"
_NO_SPACE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


@dataclass(frozen=True)
class CheckedImage:
    data: bytes
    sha256: str
    ext: str
    width: int
    height: int

    @property
    def name(self) -> str:
        return f"{self.sha256}.{self.ext}"


def check_image(data: bytes, what: str = "The picture", error: type[StorageError] = InvalidInput) -> CheckedImage:
    """Verify that ``data`` is a whole PNG, JPEG or WebP picture of a sane size, or raise ``error``."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise error(f"{what} must be given as image bytes.")
    data = bytes(data)
    if not data:
        raise error(f"{what} is empty.")
    if len(data) > MAX_IMAGE_BYTES:
        raise error(f"{what} is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB.")
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format
            width, height = im.size
            if fmt not in FORMAT_EXTENSIONS:
                raise error(f"{what} is a {fmt or 'unknown'} file; only PNG, JPEG and WebP pictures can be used.")
            if (
                width < 1
                or height < 1
                or width > MAX_IMAGE_SIDE
                or height > MAX_IMAGE_SIDE
                or width * height > MAX_IMAGE_PIXELS
            ):
                raise error(
                    f"{what} is {width}x{height} pixels, larger than the "
                    f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels we accept."
                )
            im.verify()
        # verify() checks structure and checksums but not that the pixels decode; decode them too.
        with Image.open(io.BytesIO(data)) as im:
            im.load()
    except StorageError:
        raise
    except Image.DecompressionBombError:
        raise error(f"{what} is larger than the {MAX_IMAGE_PIXELS // 1_000_000} megapixels we accept.") from None
    except UnidentifiedImageError:
        raise error(f"{what} is not in a format we can read (PNG, JPEG or WebP).") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, MemoryError) as exc:
        raise error(f"{what} is damaged or incomplete and cannot be read ({exc.__class__.__name__}).") from None
    return CheckedImage(data, hashlib.sha256(data).hexdigest(), FORMAT_EXTENSIONS[fmt], width, height)


def disk_full(action: str) -> DiskFullError:
    return DiskFullError(f"The disk is full: {action}. Free some space and try again. Nothing was changed.")


def is_no_space(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in _NO_SPACE


class ImageStore:
    """The content-addressed image folder. Paths come only from hashes, never from user text."""

    def __init__(self, root: Path):
        self.root = root
        self._root_text = str(root)
        root.mkdir(parents=True, exist_ok=True)

    def path_for(self, sha256: str, ext: str) -> Path:
        name = f"{sha256}.{ext}"
        if not _NAME.match(name):
            raise StorageError("The library names an image file that is not valid; the database may be damaged.")
        return Path(f"{self._root_text}/{sha256[:2]}/{name}")

    def has(self, image: CheckedImage) -> bool:
        try:
            return self.path_for(image.sha256, image.ext).stat().st_size == len(image.data)
        except FileNotFoundError:
            return False

    def write(self, image: CheckedImage) -> Path:
        """Put the file in place durably (temp file, fsync, rename, fsync folder); a no-op if present."""
        final = self.path_for(image.sha256, image.ext)
        if self.has(image):
            return final
        folder = final.parent
        tmp = folder / f"{_TMP_PREFIX}{image.sha256[:16]}-{secrets.token_hex(6)}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                view = memoryview(image.data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, final)
            _fsync_dir(folder)
        except OSError as exc:
            _unlink_quietly(tmp)
            if is_no_space(exc):
                raise disk_full("the picture could not be saved") from None
            raise StorageError(f"The picture could not be saved to {folder} ({exc.strerror or exc}).") from None
        return final

    def write_all(self, images: Iterable[CheckedImage]) -> None:
        seen: set[str] = set()
        for image in images:
            if image.sha256 not in seen:
                seen.add(image.sha256)
                self.write(image)

    def remove(self, sha256: str) -> bool:
        removed = False
        for ext in ALLOWED_EXTENSIONS:
            path = self.path_for(sha256, ext)
            try:
                path.unlink()
                removed = True
            except FileNotFoundError:
                pass
            except OSError:
                pass  # left for the next sweep
        return removed

    def files(self) -> Iterator[tuple[Path, str | None, float]]:
        """Every file under the folder: (path, sha256 or None for a stray/temporary file, mtime)."""
        if not self.root.is_dir():
            return
        for sub in self.root.iterdir():
            if not sub.is_dir() or sub.is_symlink():
                continue
            for entry in os.scandir(sub):
                if not entry.is_file(follow_symlinks=False):
                    continue
                match = _NAME.match(entry.name)
                sha = match.group(1) if match and entry.name[:2] == sub.name else None
                try:
                    mtime = entry.stat(follow_symlinks=False).st_mtime
                except FileNotFoundError:
                    continue
                yield Path(entry.path), sha, mtime

    def sweep_candidates(self, min_age_s: float) -> tuple[dict[str, list[Path]], list[Path]]:
        """Old image files by hash, and old temporary files left by a crashed writer."""
        cutoff = time.time() - min_age_s
        named: dict[str, list[Path]] = {}
        stray: list[Path] = []
        for path, sha, mtime in self.files():
            if mtime > cutoff:
                continue
            if sha is None:
                if path.name.startswith(_TMP_PREFIX):
                    stray.append(path)
            else:
                named.setdefault(sha, []).append(path)
        return named, stray


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems cannot fsync a directory; the rename itself is still atomic
    finally:
        os.close(fd)


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass
