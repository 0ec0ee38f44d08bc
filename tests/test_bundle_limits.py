"""Bundle imports with bounded memory (issue 14, item 5): zip bombs and JSON bombs refused with a sentence
before they unpack, pictures checked one at a time and set aside on disk, nothing left behind."""

from __future__ import annotations

import gc
import hashlib
import io
import json
import re
import tempfile
import tracemalloc
import zipfile

import numpy as np
import pytest
from PIL import Image

from storage import validate
from storage.bundle import MAX_COMPRESSION_RATIO, MAX_JSON_ITEMS, read_bundle, write_bundle
from storage.errors import BundleError
from storage.library import Library
from storage.views import PageInput


def _noise_png(seed: int, side: int = 800) -> bytes:
    """About 2 MB of PNG that does not compress: what a real painted picture weighs."""
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def _doc(names: list[str]) -> dict:
    story = " ".join(f"Page {n}." for n in range(len(names)))
    return {
        "format": "storybook-bundle",
        "version": 1,
        "project": {"title": "Big", "story_text": story},
        "segments": [
            {"text": f"Page {n}.", "illustrations": [{"version": 1, "image": name, "selected": True}]}
            for n, name in enumerate(names)
        ],
    }


def _bundle(images: list[bytes]) -> bytes:
    files = {f"images/{hashlib.sha256(data).hexdigest()}.png": data for data in images}
    return write_bundle(_doc(list(files)), files)


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """tempfile's folder, watched: the import must leave nothing in it."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_pictures_are_checked_one_at_a_time_not_all_held(private_tmp):
    images = [_noise_png(seed) for seed in range(6)]
    bundle = _bundle(images)
    largest = max(len(data) for data in images)
    gc.collect()
    tracemalloc.start()
    try:
        imported = read_bundle(bundle)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Today's reader kept every picture (and a copy of each): six pictures' worth and more.
    assert peak < 3.5 * largest, f"peak {peak / 2**20:.1f} MB for pictures of {largest / 2**20:.1f} MB"
    assert [hashlib.sha256(p.image.data).digest() for page in imported.pages for p in page.pictures] == [
        hashlib.sha256(data).digest() for data in images
    ]
    assert list(private_tmp.iterdir())  # set aside on disk until the library writes them
    del imported
    gc.collect()
    assert not list(private_tmp.iterdir())


def test_an_import_from_an_open_file_lands_and_leaves_nothing_behind(tmp_path, private_tmp):
    images = [_noise_png(seed, 200) for seed in range(3)]
    path = tmp_path / "story.storybook.zip"
    path.write_bytes(_bundle(images))
    with Library(tmp_path / "home") as library, path.open("rb") as handle:
        project = library.import_bundle(handle)
        pictures = [p for page in project.pages for p in page.pictures]
        assert len(pictures) == 3 and all(p.image_path.read_bytes() in images for p in pictures)
    gc.collect()
    assert not list(private_tmp.iterdir())


def test_a_refused_bundle_leaves_nothing_behind(private_tmp):
    good = _noise_png(1, 200)
    bad = b"\x89PNG\r\n\x1a\n" + b"\x00" * 500  # named by its hash, but not a picture
    files = {f"images/{hashlib.sha256(d).hexdigest()}.png": d for d in (good, bad)}
    with pytest.raises(BundleError):
        read_bundle(write_bundle(_doc(list(files)), files))
    gc.collect()
    assert not list(private_tmp.iterdir())


def test_a_member_packed_like_a_zip_bomb_is_refused_before_it_unpacks():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("project.json", json.dumps(_doc([])))
        archive.writestr(f"images/{'a' * 64}.png", b"\x00" * (40 * 2**20))  # 40 MB from about 40 KB
    bundle = buffer.getvalue()
    assert len(bundle) < 200_000
    tracemalloc.start()
    try:
        with pytest.raises(BundleError) as info:
            read_bundle(bundle)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "zip bomb" in info.value.message and f"at most {MAX_COMPRESSION_RATIO}" in info.value.message
    assert peak < 5 * 2**20


def test_a_project_json_of_countless_tiny_items_is_refused_before_it_is_parsed():
    items = "[" + ",".join(["0"] * (MAX_JSON_ITEMS + 10)) + "]"  # under 1 MB of text, a million objects
    doc = json.dumps(_doc([]))[:-1] + f', "padding": {items}}}'
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("project.json", doc)
    with pytest.raises(BundleError, match="items"):
        read_bundle(buffer.getvalue())


def test_a_real_projects_json_is_far_below_the_item_limit(tmp_path):
    with Library(tmp_path / "home") as library:
        story = " ".join(f"Sentence {n}, with a comma." for n in range(3000))
        project = library.create_project("Long", story_text=story)
        pages = [
            PageInput(m.group(0), m.start(), m.end(), seed=m.start())
            for m in re.finditer(r"Sentence \d+, with a comma\.", story)
        ]
        project = library.save_story(project.id, project.version, story, pages)
        assert len(project.pages) == 3000
        bundle = library.export_bundle(project.id)
    raw = zipfile.ZipFile(io.BytesIO(bundle)).read("project.json")
    items = raw.count(b",") + raw.count(b"[") + raw.count(b"{")
    # At the page limit, with room for pictures and their settings three times over the pages themselves.
    assert items * (validate.MAX_PAGES / 3000) * 4 < MAX_JSON_ITEMS


def test_a_bundle_unpacking_to_more_than_the_total_limit_is_refused_before_it_unpacks(monkeypatch, private_tmp):
    import storage.bundle as bundle_module

    images = [_noise_png(seed, 300) for seed in range(3)]  # each well within the limits of one picture
    bundle = _bundle(images)
    monkeypatch.setattr(bundle_module, "MAX_BUNDLE_UNPACKED", 2 * max(len(data) for data in images))
    spooled = []
    monkeypatch.setattr(bundle_module._Spool, "keep", lambda self, data, image: spooled.append(image))
    with pytest.raises(BundleError, match="would unpack to more than"):
        read_bundle(bundle)
    assert not spooled and not list(private_tmp.iterdir())  # refused before a picture was unpacked
