"""Image files: checked before writing, content-addressed, removed when unused, and a full disk."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import random
import struct
import time
import warnings
import zlib

import pytest
from PIL import Image
from sqlalchemy import event

from storage import files as files_module
from storage.errors import DiskFullError, InvalidInput
from storage.library import Library
from storage.views import PageInput


def _png(n: int = 0, size: tuple[int, int] = (8, 8)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (n % 256, 40, 80)).save(buffer, "PNG")
    return buffer.getvalue()


def _noise_png() -> bytes:
    buffer = io.BytesIO()
    Image.frombytes("RGB", (64, 64), random.Random(0).randbytes(64 * 64 * 3)).save(buffer, "PNG")
    return buffer.getvalue()


def _image(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buffer, fmt)
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(width: int = 12_000, height: int = 12_000) -> bytes:
    """A real 1-bit PNG of width x height black pixels: ~18 MB of pixels squeezed into a few KB."""
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")


def _story(library: Library, pages: list[str], title: str = "Fox"):
    story = " ".join(pages)
    project = library.create_project(title, story_text=story)
    return library.save_story(
        project.id, project.version, story, [PageInput(p, story.index(p), story.index(p) + len(p)) for p in pages]
    )


def _all_files(library: Library) -> set[str]:
    return {path.name for path, _, _ in library.images.files()}


def test_picture_is_content_addressed_and_checked(tmp_path):
    library = Library(tmp_path)
    project = _story(library, ["One."])
    data = _png(1)
    view = library.add_picture(project.pages[0].id, data, {"seed": 1})
    sha = hashlib.sha256(data).hexdigest()
    assert view.image_path == tmp_path / "images" / sha[:2] / f"{sha}.png"
    assert view.image_path.read_bytes() == data
    for fmt, ext in (("JPEG", "jpg"), ("WEBP", "webp")):
        other = library.add_picture(project.pages[0].id, _image(fmt), {}, origin="uploaded")
        assert other.image_path.suffix == f".{ext}" and other.origin == "uploaded"

    bad_inputs = {
        "text named .png": b"this is not a picture, whatever its name says",
        "truncated PNG": data[: len(data) // 2],
        "PNG cut off mid-pixels": _noise_png()[:-2000],
        "GIF": _image("GIF"),
        "empty": b"",
        "49-megapixel PNG of 6 KB": bomb_png(7_000, 7_000),
        "144-megapixel PNG of 18 KB (Pillow warns)": bomb_png(12_000, 12_000),
    }
    for name, bad in bad_inputs.items():
        before = _all_files(library)
        with pytest.raises(InvalidInput) as caught, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # we refuse it anyway
            library.add_picture(project.pages[0].id, bad, {})
        print(f"\n{name}: {caught.value.message}")
        assert _all_files(library) == before
    with pytest.raises(InvalidInput, match="origin"):
        library.add_picture(project.pages[0].id, data, {}, origin="stolen")
    with pytest.raises(InvalidInput):
        library.add_picture(project.pages[0].id, data, {"seed": float("nan")})
    assert len(library.get_project(project.id).pages[0].pictures) == 3


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
@pytest.mark.parametrize("failing", ["write", "fsync"])
def test_disk_full_while_writing_a_picture(tmp_path, monkeypatch, code, failing):
    library = Library(tmp_path)
    project = _story(library, ["One.", "Two."])
    library.add_picture(project.pages[0].id, _png(1), {"seed": 1})
    before = library.get_project(project.id)
    files_before = _all_files(library)

    class FullDisk:
        def __getattr__(self, name: str):
            return getattr(os, name)

        def write(self, fd: int, data) -> int:
            if failing == "write":
                raise OSError(code, os.strerror(code))
            return os.write(fd, data)

        def fsync(self, fd: int) -> None:
            if failing == "fsync":
                raise OSError(code, os.strerror(code))
            os.fsync(fd)

    monkeypatch.setattr(files_module, "os", FullDisk())
    with pytest.raises(DiskFullError) as caught:
        library.add_picture(project.pages[0].id, _png(2), {"seed": 2})
    with pytest.raises(DiskFullError):
        library.set_source_images(project.id, before.version, [(_png(3), "caption")])
    monkeypatch.undo()
    message = caught.value.message
    print(f"\n{errno.errorcode[code]} on {failing}: {message}")
    assert message.startswith("The disk is full:") and message.endswith("Nothing was changed.")
    assert library.get_project(project.id) == before
    assert _all_files(library) == files_before  # no temporary file left behind
    library.add_picture(project.pages[0].id, _png(2), {"seed": 2})  # space is back: works


def test_disk_full_while_committing(tmp_path):
    library = Library(tmp_path)
    project = _story(library, ["Short story."])
    before = library.get_project(project.id)

    def no_room_to_grow(dbapi_connection, _record):
        pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

    library._engine.dispose()
    event.listen(library._engine, "connect", no_room_to_grow)
    big = ("Ein sehr langer Satz über den Fuchs. " * 30_000).strip()
    with pytest.raises(DiskFullError) as caught:
        library.save_story(project.id, before.version, big, [PageInput(big, 0, len(big))])
    print(f"\nSQLITE_FULL on save: {caught.value.message}")
    assert caught.value.message.startswith("The disk is full:")
    assert caught.value.message.endswith("Nothing was changed.")
    event.remove(library._engine, "connect", no_room_to_grow)
    library._engine.dispose()
    assert library.get_project(project.id) == before
    assert library.integrity_report()["integrity_check"] == ["ok"]
    library.save_story(project.id, before.version, big, [PageInput(big, 0, len(big))])


def test_duplicate_shares_files_and_delete_removes_only_unused_ones(tmp_path):
    library = Library(tmp_path)
    a = _story(library, ["Alpha."], "A")
    b = _story(library, ["Beta."], "B")
    only_a = library.add_picture(a.pages[0].id, _png(1), {}).image_path
    shared = library.add_picture(a.pages[0].id, _png(2), {}).image_path
    library.add_picture(b.pages[0].id, _png(2), {})
    source = library.set_source_images(a.id, library.get_project(a.id).version, [(_png(3), "cap")])
    source_file = source.source_images[0].image_path

    copy = library.duplicate_project(a.id)
    assert copy.title == "A (copy)" and copy.version == 1
    assert [i.image_path for i in copy.pages[0].pictures] == [only_a, shared]
    assert copy.source_images[0].image_path == source_file and copy.source_images[0].caption == "cap"
    assert copy.pages[0].selected.image_path == shared

    library.delete_project(a.id)
    assert only_a.exists() and shared.exists() and source_file.exists()  # the copy still uses them
    library.delete_project(copy.id)
    assert not only_a.exists() and not source_file.exists()
    assert shared.exists()  # B still uses it
    library.delete_project(b.id)
    assert not shared.exists()
    assert library.list_projects() == []
    assert _all_files(library) == set()


def test_pictures_leave_the_disk_only_when_the_bin_is_emptied(tmp_path):
    library = Library(tmp_path)
    project = _story(library, ["One.", "Two."])
    first = library.add_picture(project.pages[0].id, _png(1), {})
    second = library.add_picture(project.pages[1].id, _png(2), {})
    project = library.discard_picture(first.id, library.get_project(project.id).version)
    assert first.image_path.exists() and [p.id for p in project.bin.pictures] == [first.id]
    project = library.save_story(project.id, project.version, "One.", [PageInput("One.", 0, 4)])  # page two left
    assert second.image_path.exists() and [p.id for p in project.loose] == [project.loose[0].id]
    assert [p.id for p in project.loose[0].pictures] == [second.id]
    project, removed = library.empty_bin(project.id, project.version)
    assert removed == 1 and not first.image_path.exists()
    assert second.image_path.exists() and project.bin.empty  # loose pictures are not in the bin


def test_sweep_removes_old_unnamed_files_only(tmp_path):
    library = Library(tmp_path)
    project = _story(library, ["One."])
    kept = library.add_picture(project.pages[0].id, _png(1), {}).image_path
    orphan = library.images.write(files_module.check_image(_png(2)))
    young_orphan = library.images.write(files_module.check_image(_png(3)))
    stale_temp = orphan.parent / ".tmp-0123456789abcdef-deadbeef"
    stale_temp.write_bytes(b"half a picture")
    old = time.time() - 2 * files_module.SWEEP_MIN_AGE_S
    for path in (kept, orphan, stale_temp):
        os.utime(path, (old, old))

    report = library.sweep()
    print(f"\nsweep: {report}")
    assert report.removed_images == 1 and report.removed_temp_files == 1
    assert kept.exists() and not orphan.exists() and not stale_temp.exists()
    assert young_orphan.exists()  # may belong to a writer that has not committed yet
    os.utime(young_orphan, (old, old))
    Library(tmp_path)  # the start-up sweep
    assert not young_orphan.exists() and kept.exists()


@pytest.fixture
def small_disk(tmp_path):
    """A real, tiny file system (tmpfs of 8 MB), so 'full' means full; skipped where mounting is not allowed."""
    import subprocess

    where = tmp_path / "disk"
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(where)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small file system here ({mounted.stderr.decode().strip()[:80]})")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _fill(path) -> None:
    """Fill the disk `path` is on to the last byte."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for block in (b"\0" * 65536, b"\0" * 512, b"\0"):
            try:
                while True:
                    os.write(fd, block)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)


def test_the_bin_can_be_emptied_on_a_completely_full_disk(small_disk):
    library = Library(small_disk / "home")
    project = _story(library, ["One.", "Two."])
    rng = random.Random(7)
    pictures = []
    for n in range(6):
        data = io.BytesIO()
        Image.frombytes("RGB", (160, 160), rng.randbytes(160 * 160 * 3)).save(data, "PNG")
        pictures.append(library.add_picture(project.pages[n % 2].id, data.getvalue(), {"seed": n}))
    version = library.get_project(project.id).version
    for picture in pictures[:3]:
        version = library.discard_picture(picture.id, version).version
    _fill(small_disk / "filler")
    with pytest.raises(DiskFullError):
        library.add_picture(project.pages[0].id, _noise_png(), {})  # full indeed
    library.discard_picture(pictures[3].id, version)  # the last one goes to the bin on the full disk
    before = library.get_project(project.id)
    assert len(before.bin.pictures) == 4 and before.bin.files_bytes > 0

    after, removed = library.empty_bin(project.id, before.version)
    print(f"\nemptied the bin on a full disk: {removed} files, {before.bin.files_bytes:,} bytes freed")
    assert removed == 4 and after.bin.empty
    assert all(not picture.image_path.exists() for picture in pictures[:4])
    assert all(picture.image_path.exists() for picture in pictures[4:])
    assert library.integrity_report()["integrity_check"] == ["ok"]
    (small_disk / "filler").unlink()
    library.add_picture(project.pages[0].id, _noise_png(), {})  # space again: works, and the reserve is back
    assert (small_disk / "home" / ".space-reserve").stat().st_size > 0

    # Full again: a whole story can be deleted too, and its files leave the disk.
    _fill(small_disk / "filler")
    with pytest.raises(DiskFullError):
        library.add_picture(project.pages[0].id, _noise_png(), {})
    library.delete_project(project.id)
    assert library.list_projects() == [] and all(not picture.image_path.exists() for picture in pictures)
