"""Any language round-trips byte for byte; broken text gets a clear sentence; titles never become paths."""

from __future__ import annotations

import io
import sqlite3
import time
import zipfile

import pytest
from PIL import Image

from storage import validate
from storage.errors import InvalidInput
from storage.library import Library
from storage.views import PageInput

SAMPLES = [
    "Emoji 🦊🌊🏳️‍🌈 👩🏽‍🚀 and a family 👨‍👩‍👧‍👦.",
    "Arabic: الثعلب الصغير يحب البحر.",
    "Hebrew: השועל הקטן אוהב את הים.",
    "Chinese 小狐狸喜欢大海。 Japanese きつねは海が好き。 Korean 여우는 바다를 좋아해요.",
    "Combining marks: e\u0301 a\u0308 Z\u0351\u0324\u0337 (decomposed stays decomposed), NFC é.",
    "Mixed RTL: \u202bشمال\u202c and zero-width\u200bjoiner\u200d, tabs\tand\r\nCRLF.",
]


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (9, 8, 7)).save(buffer, "PNG")
    return buffer.getvalue()


def _offsets(story: str, parts: list[str]) -> list[PageInput]:
    return [PageInput(p, story.index(p), story.index(p) + len(p)) for p in parts]


def test_unicode_round_trips_byte_for_byte(tmp_path):
    library = Library(tmp_path)
    story = "\n\n".join(SAMPLES)
    title = "Лиса и море — 狐と海 — الثعلب 🦊"
    project = library.create_project(title, author="Zoë Ørsted-ﬁ", story_text=story)
    project = library.save_story(project.id, project.version, story, _offsets(story, SAMPLES))
    seg = project.pages[0]
    project = library.update_page(seg.id, project.version, prompt_override=SAMPLES[3], negative_prompt=SAMPLES[1])
    project = library.set_characters(project.id, project.version, [(SAMPLES[2][:30], SAMPLES[4])])
    project = library.set_source_images(project.id, project.version, [(_png(), SAMPLES[0])])
    library.add_picture(seg.id, _png(), {"prompt": SAMPLES[3], "negative_prompt": SAMPLES[1]})

    def check(view) -> None:
        assert view.title.encode() == title.encode()
        assert view.author.encode() == "Zoë Ørsted-ﬁ".encode()
        assert view.story_text.encode() == story.encode()
        assert [s.text.encode() for s in view.pages] == [s.encode() for s in SAMPLES]
        assert view.pages[0].prompt_override.encode() == SAMPLES[3].encode()
        assert view.pages[0].negative_prompt.encode() == SAMPLES[1].encode()
        assert view.characters[0].description.encode() == SAMPLES[4].encode()
        assert view.source_images[0].caption.encode() == SAMPLES[0].encode()
        assert view.pages[0].selected.settings["prompt"].encode() == SAMPLES[3].encode()

    check(library.get_project(project.id))
    raw = sqlite3.connect(library.db_path)
    stored = raw.execute("SELECT CAST(story_text AS BLOB) FROM projects WHERE id = ?", (project.id,)).fetchone()[0]
    raw.close()
    assert stored == story.encode("utf-8")  # no normalisation on the way in
    check(library.import_bundle(library.export_bundle(project.id)))
    # Search folds case beyond ASCII.
    assert [p.id for p in library.list_projects("ЛИСА")][-1] == project.id
    assert library.list_projects("E\u0301 A\u0308") and library.list_projects("זה לא קיים") == []


@pytest.mark.parametrize(
    ("bad", "words"),
    [("bad \ud800 surrogate", "broken character"), ("nul \x00 char", "NUL character"), ("\udfff", "broken character")],
)
def test_lone_surrogates_and_nul_are_refused_with_a_sentence(tmp_path, bad, words):
    library = Library(tmp_path)
    project = library.create_project("Fine", story_text="One.")
    project = library.save_story(project.id, project.version, "One.", [PageInput("One.", 0, 4)])
    seg_id = project.pages[0].id
    attempts = {
        "title": lambda: library.create_project(bad),
        "author": lambda: library.create_project("ok", author=bad),
        "story": lambda: library.save_story(project.id, project.version, bad, []),
        "page": lambda: library.save_story(project.id, project.version, "One.", [PageInput(bad, 0, 4)]),
        "prompt": lambda: library.update_page(seg_id, project.version, prompt_override=bad),
        "character": lambda: library.set_characters(project.id, project.version, [(bad, "")]),
        "caption": lambda: library.set_source_images(project.id, project.version, [(_png(), bad)]),
        "search": lambda: library.list_projects(bad),
        "rename": lambda: library.rename_project(project.id, bad, project.version),
    }
    for name, attempt in attempts.items():
        with pytest.raises(InvalidInput) as caught:
            attempt()
        assert words in caught.value.message, name
        assert caught.value.message.endswith(".") and "\ud800" not in caught.value.message
    if "\x00" not in bad:  # settings are JSON; a surrogate cannot be written as UTF-8
        with pytest.raises(InvalidInput):
            library.add_picture(seg_id, _png(), {"prompt": bad})
    after = library.get_project(project.id)
    assert after.version == project.version and after.title == "Fine"
    print(f"\n{bad!r}: refused with e.g. {caught.value.message!r}")


def _tree(root) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_titles_are_only_text_never_paths(tmp_path):
    home = tmp_path / "home"
    library = Library(home)
    outside_before = _tree(tmp_path) - {p for p in _tree(tmp_path) if p.startswith("home")}
    titles = ["../x", "/abs/path", "CON", "NUL.txt", "..\\..\\win", "a/b/c", "x" * validate.MAX_TITLE]
    for title in titles:
        project = library.create_project(title, story_text="Text.")
        project = library.save_story(project.id, project.version, "Text.", [PageInput("Text.", 0, 5)])
        library.add_picture(project.pages[0].id, _png(), {})
        assert library.get_project(project.id).title == title
        bundle = library.export_bundle(project.id)
        names = zipfile.ZipFile(io.BytesIO(bundle)).namelist()
        assert all(title not in name for name in names if len(title) > 3)
        library.duplicate_project(project.id)
    outside_after = _tree(tmp_path) - {p for p in _tree(tmp_path) if p.startswith("home")}
    assert outside_after == outside_before == set()
    for path in home.rglob("*"):
        assert path.resolve().is_relative_to(home.resolve())
        assert path.name in (
            "library.sqlite3",
            "library.sqlite3-wal",
            "library.sqlite3-shm",
            "images",
            ".space-reserve",
        ) or (path.parent.parent == home / "images" or path.parent == home / "images"), path
    with pytest.raises(InvalidInput, match="300 characters long; the most we keep is 200"):
        library.create_project("y" * 300)
    with pytest.raises(InvalidInput, match="Give the project a title"):
        library.create_project("   ")
    long_copy = [p for p in library.list_projects() if p.title.endswith("(copy)") and p.title.startswith("xxx")]
    assert long_copy and len(long_copy[0].title) <= validate.MAX_TITLE


def test_story_limits(tmp_path):
    library = Library(tmp_path)
    project = library.create_project("Big")
    megabyte = ("Der Fuchs läuft zum Meer. 狐が走る。 " * 40_000)[:1_000_000]
    parts, inputs, pos = [megabyte[i : i + 2_000] for i in range(0, len(megabyte), 2_000)], [], 0
    for part in parts:
        start, end = pos + len(part) - len(part.lstrip()), pos + len(part.rstrip())
        inputs.append(PageInput(megabyte[start:end], start, end))
        pos += len(part)
    started = time.monotonic()
    project = library.save_story(project.id, project.version, megabyte, inputs)
    saved = time.monotonic() - started
    started = time.monotonic()
    loaded = library.get_project(project.id)
    read = time.monotonic() - started
    print(f"\n1,000,000-character story in {len(inputs)} pages: saved in {saved:.2f} s, read back in {read:.2f} s")
    assert loaded.story_text == megabyte and len(loaded.pages) == 500
    too_long = "a" * (validate.MAX_STORY + 1)
    with pytest.raises(InvalidInput, match="2,000,001 characters long; the most we keep is 2,000,000"):
        library.save_story(project.id, project.version, too_long, [])
    with pytest.raises(InvalidInput):
        library.create_project("x", story_text=too_long)
    assert library.get_project(project.id).story_text == megabyte
