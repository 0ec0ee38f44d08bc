"""Project bundles and engine manifests: a faithful round trip, and hostile files refused."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import struct
import zipfile
import zlib

import pytest
from PIL import Image

from storage.bundle import MAX_JSON_BYTES
from storage.errors import BundleError
from storage.library import Library
from storage.views import PageInput


def _png(n: int, size: tuple[int, int] = (8, 8)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (n % 256, 7, 7)).save(buffer, "PNG")
    return buffer.getvalue()


def _member(data: bytes, ext: str = "png") -> str:
    return f"images/{hashlib.sha256(data).hexdigest()}.{ext}"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _bomb_png() -> bytes:
    width = height = 12_000
    row = b"\x00" * (1 + width // 8)
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")


def _full_project(library: Library):
    story = "Der Fuchs 🦊 lief. الثعلب ركض. The end."
    pages = ["Der Fuchs 🦊 lief.", "الثعلب ركض.", "The end."]
    project = library.create_project("Round trip 狐", author="Ana", style="ink", profile="quality", story_text=story)
    project = library.save_story(
        project.id,
        project.version,
        story,
        [
            PageInput(p, story.index(p), story.index(p) + len(p), seed=i or None, locked=i == 2)
            for i, p in enumerate(pages)
        ],
    )
    first, second = project.pages[0].id, project.pages[1].id
    project = library.update_page(first, project.version, prompt_override="a fox", negative_prompt="text")
    v1 = library.add_picture(first, _png(1), {"seed": 1, "steps": 4, "prompt": "a fox"})
    library.add_picture(first, _png(2), {"seed": 2, "guidance": 0.0}, origin="uploaded")
    library.select_picture(v1.id)  # an older version is the chosen one
    library.add_picture(second, _png(1), {"seed": 3})  # the same file used twice
    project = library.get_project(project.id)
    project = library.set_characters(project.id, project.version, [("Fox", "red, curious"), ("Owl", "")])
    project = library.update_project(
        project.id,
        project.version,
        setting="a windy   island, long ago",
        dedication="  For Mia,\n\n\n  who loves   the sea ",
    )
    return library.set_source_images(project.id, project.version, [(_png(5), "a beach"), (_png(6), "")])


def _comparable(view) -> dict:
    return {
        "fields": (view.title, view.author, view.style, view.profile, view.story_text, view.setting, view.dedication),
        "segments": [
            (
                s.position,
                s.text,
                s.start,
                s.end,
                s.prompt_override,
                s.negative_prompt,
                s.seed,
                s.locked,
                [(i.version, i.image_path, i.settings, i.origin, i.created, i.selected) for i in s.pictures],
            )
            for s in view.pages
        ],
        "characters": [(c.name, c.description) for c in view.characters],
        "sources": [(s.image_path, s.caption) for s in view.source_images],
    }


def test_bundle_round_trip(tmp_path):
    library = Library(tmp_path / "a")
    original = _full_project(library)
    data = library.export_bundle(original.id)
    assert original.setting == "a windy island, long ago"  # spaces folded as it was saved
    assert original.dedication == "For Mia,\n\nwho loves the sea"  # lines kept, one blank line at most
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    print(f"\nbundle: {len(data):,} bytes, members {len(names)}")
    assert names[0] == "project.json" and len(names) == 1 + 4  # 4 distinct pictures, each once

    elsewhere = Library(tmp_path / "b")
    imported = elsewhere.import_bundle(data)
    assert imported.version == 1
    want, got = _comparable(original), _comparable(imported)
    rebase = str(tmp_path / "a"), str(tmp_path / "b")
    assert json.loads(json.dumps(want, default=str).replace(*rebase)) == json.loads(json.dumps(got, default=str))
    assert imported.pages[0].selected.version == 1
    for seg in imported.pages:
        for ill in seg.pictures:
            assert hashlib.sha256(ill.image_path.read_bytes()).hexdigest() == ill.image_path.stem
    again = library.import_bundle(data)  # into the same library: a new project sharing the files
    assert again.id != original.id and _comparable(again) == _comparable(original)


def _bundle(doc, members: dict[str, bytes] | None = None, raw_json: bytes | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("project.json", raw_json if raw_json is not None else json.dumps(doc))
        for name, data in (members or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _doc(image: str | None = None) -> dict:
    segment = {"text": "Hi.", "start": 0, "end": 3, "illustrations": []}
    if image:
        segment["illustrations"].append(
            {"version": 1, "image": image, "settings": {}, "origin": "generated", "selected": True}
        )
    return {
        "format": "storybook-bundle",
        "version": 1,
        "project": {"title": "T", "story_text": "Hi."},
        "segments": [segment],
    }


def _patch_central_size(data: bytes, name: str, size: int) -> bytes:
    """Rewrite the uncompressed size a zip's central directory declares for ``name``."""
    at = data.index(b"PK\x01\x02")
    while True:
        name_len = struct.unpack("<H", data[at + 28 : at + 30])[0]
        if data[at + 46 : at + 46 + name_len] == name.encode():
            return data[: at + 24] + struct.pack("<I", size) + data[at + 28 :]
        at = data.index(b"PK\x01\x02", at + 4)


def _damage_deflate(data: bytes, name: str) -> bytes:
    """Overwrite ``name``'s compressed bytes with 0xFF: a deflate block of the reserved type (zlib.error)."""
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(name)
    at = info.header_offset
    name_len, extra_len = struct.unpack("<HH", data[at + 26 : at + 30])
    start = at + 30 + name_len + extra_len
    return data[:start] + b"\xff" * info.compress_size + data[start + info.compress_size :]


def _patch_extract_version(data: bytes, version: int) -> bytes:
    """Set the "version needed to extract" of the first central directory entry."""
    at = data.index(b"PK\x01\x02")
    return data[: at + 6] + struct.pack("<H", version) + data[at + 8 :]


def _hostile_bundles() -> dict[str, bytes]:
    good = _png(1)
    text = b"just some text, not a picture"
    bomb = _bomb_png()
    cases = {
        "not a zip": b"PK but not really a zip file",
        "zip slip ../": _bundle(_doc(), {"../evil.png": good}),
        "zip slip deep": _bundle(_doc(), {"images/../../evil.png": good}),
        "absolute name": _bundle(_doc(), {"/tmp/evil.png": good}),
        "backslash name": _bundle(_doc(), {"images\\..\\evil.png": good}),
        "drive letter": _bundle(_doc(), {"C:/evil.png": good}),
        "unexpected file": _bundle(_doc(), {"run.sh": b"rm -rf /"}),
        "bad JSON": _bundle(None, raw_json=b"{not json"),
        "JSON list": _bundle(["format"]),
        "NaN in JSON": _bundle(None, raw_json=b'{"format": "storybook-bundle", "version": 1, "x": NaN}'),
        "wrong format": _bundle({**_doc(), "format": "something-else"}),
        "future version": _bundle({**_doc(), "version": 99}),
        "segments not a list": _bundle({**_doc(), "segments": "abc"}),
        "seed as text": _bundle({**_doc(), "segments": [{"text": "Hi.", "start": 0, "end": 3, "seed": "12"}]}),
        "offset past the story": _bundle({**_doc(), "segments": [{"text": "Hi.", "start": 0, "end": 99}]}),
        "title not text": _bundle({**_doc(), "project": {"title": 5}}),
        "NUL in text": _bundle({**_doc(), "project": {"title": "a\u0000b"}}),
        "time before year 1": _bundle({**_doc(), "project": {"title": "T", "created": "0001-01-01T00:00:00+05:00"}}),
        "time after year 9999": _bundle(
            {
                **_doc(),
                "segments": [
                    {
                        "text": "Hi.",
                        "start": 0,
                        "end": 3,
                        "illustrations": [
                            {"version": 1, "image": _member(good), "created": "9999-12-31T23:59:59-05:00"}
                        ],
                    }
                ],
            },
            {_member(good): good},
        ),
        "missing picture": _bundle(_doc(_member(good))),
        "text file named .png": _bundle(_doc(_member(text)), {_member(text): text}),
        "decompression bomb PNG": _bundle(_doc(_member(bomb)), {_member(bomb): bomb}),
        "picture not matching its name": _bundle(_doc(_member(b"other")), {_member(b"other"): good}),
    }
    huge = _bundle(_doc())
    cases["huge declared size"] = _patch_central_size(huge, "project.json", 0xFFFFFFF0)
    lying = _bundle(_doc(_member(good)), {_member(good): good})
    cases["size smaller than claimed"] = _patch_central_size(lying, _member(good), 10)
    cases["damaged deflate stream"] = _damage_deflate(huge, "project.json")
    cases["zip format from the future"] = _patch_extract_version(huge, 255)
    # A real deflate bomb: 60 MB of zeros in ~60 KB, refused before it is unpacked.
    zeros = b"\x00" * (60 * 1024 * 1024)
    cases["60 MB deflate bomb"] = _bundle(_doc(_member(zeros)), {_member(zeros): zeros})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("project.json", json.dumps(_doc()))
        link = zipfile.ZipInfo("images/" + "a" * 64 + ".png")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    cases["symlink member"] = buffer.getvalue()
    return cases


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # refused anyway
def test_hostile_bundles_are_refused(tmp_path):
    home = tmp_path / "home"
    library = Library(home)
    before_files = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    for name, data in _hostile_bundles().items():
        with pytest.raises(BundleError) as caught:
            library.import_bundle(data)
        message = caught.value.message
        print(f"\n{name}: {message}")
        assert message.endswith((".", ")")) and "Traceback" not in message
    assert library.list_projects() == []
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before_files
    assert MAX_JSON_BYTES < 0xFFFFFFF0


def _manifest_dir(tmp_path, image_names=("segment-000.png", "segment-001.png")):
    folder = tmp_path / "out"
    folder.mkdir()
    story = "The Lighthouse Fox\n\nOnce upon a time a fox lived by the sea. Every night it watched the light."
    texts = ["Once upon a time a fox lived by the sea.", "Every night it watched the light."]
    segments = []
    for index, (text, image) in enumerate(zip(texts, image_names, strict=True)):
        start = story.index(text)
        (folder / f"segment-{index:03d}.png").write_bytes(_png(10 + index, (16, 16)))
        settings = {
            "model_id": "stabilityai/sd-turbo",
            "scheduler": "EulerDiscreteScheduler",
            "seed": 1234 + index,
            "steps": 4,
            "guidance": 0.0,
            "width": 16,
            "height": 16,
            "prompt": f"watercolor {index}",
            "negative_prompt": "text, letters",
        }
        segments.append(
            {
                "index": index,
                "text": text,
                "start": start,
                "end": start + len(text),
                "prompt": f"watercolor {index}",
                "negative_prompt": "text, letters",
                "seed": 1234 + index,
                "image": image,
                "settings": settings,
            }
        )
    manifest = {
        "format": "storybook-manifest",
        "version": 1,
        "title": "The Lighthouse Fox",
        "author": "",
        "style": "watercolor",
        "profile": "fast",
        "source_text": story,
        "created": "2026-11-23T18:30:00+00:00",
        "segments": segments,
        "characters": [{"name": "Fox", "description": "small and red"}],
        "setting": "by the sea",
    }
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder, manifest


def test_import_manifest(tmp_path):
    library = Library(tmp_path / "home")
    folder, manifest = _manifest_dir(tmp_path)
    project = library.import_manifest(folder / "manifest.json")
    assert project.title == "The Lighthouse Fox" and project.style == "watercolor" and project.profile == "fast"
    assert project.story_text == manifest["source_text"]
    assert project.created.isoformat() == "2026-11-23T18:30:00+00:00"
    assert [(c.name, c.description) for c in project.characters] == [("Fox", "small and red")]
    assert project.setting == "by the sea"
    for seg, entry in zip(project.pages, manifest["segments"], strict=True):
        assert (seg.text, seg.start, seg.end, seg.seed) == (entry["text"], entry["start"], entry["end"], entry["seed"])
        assert project.story_text[seg.start : seg.end] == seg.text
        assert seg.prompt_override == entry["prompt"] and seg.negative_prompt == entry["negative_prompt"]
        (ill,) = seg.pictures
        assert (ill.version, ill.origin, ill.selected) == (1, "generated", True)
        assert ill.settings == entry["settings"]
        assert ill.image_path.read_bytes() == (folder / entry["image"]).read_bytes()
    assert library.import_manifest(folder).id != project.id  # a folder works too


@pytest.mark.parametrize("bad_name", ["../segment-000.png", "sub/segment-000.png", "a\\b.png", "/etc/passwd", ".."])
def test_manifest_refuses_image_names_with_separators(tmp_path, bad_name):
    library = Library(tmp_path / "home")
    folder, _ = _manifest_dir(tmp_path, image_names=(bad_name, "segment-001.png"))
    with pytest.raises(BundleError, match="not a plain file name"):
        library.import_manifest(folder / "manifest.json")
    assert library.list_projects() == []


def test_manifest_problems_are_clear(tmp_path):
    library = Library(tmp_path / "home")
    folder, manifest = _manifest_dir(tmp_path)
    os.symlink("/etc/hostname", folder / "linked.png")
    cases = {
        "missing file": {**manifest, "segments": [{**manifest["segments"][0], "image": "nope.png"}]},
        "symlink": {**manifest, "segments": [{**manifest["segments"][0], "image": "linked.png"}]},
        "wrong format": {**manifest, "format": "other"},
        "seed not a number": {**manifest, "segments": [{**manifest["segments"][0], "seed": "x"}]},
    }
    for name, doc in cases.items():
        (folder / "manifest.json").write_text(json.dumps(doc))
        with pytest.raises(BundleError) as caught:
            library.import_manifest(folder / "manifest.json")
        print(f"\nmanifest {name}: {caught.value.message}")
    with pytest.raises(BundleError, match="no manifest"):
        library.import_manifest(tmp_path / "nowhere" / "manifest.json")
    if os.path.exists("/dev/zero"):  # claims size 0 and never ends: read only up to the limit
        with pytest.raises(BundleError, match=f"larger than {MAX_JSON_BYTES // 2**20} MB"):
            library.import_manifest("/dev/zero")
    assert library.list_projects() == []
