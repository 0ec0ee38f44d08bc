"""The ZIP export: chosen pictures, the story as escaped Markdown, and manifest.json to import and redraw it."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from PIL import Image

from exports import Book, ExportError, Page, book_from_manifest, render_zip
from exports.archive import escape_markdown


def image(fmt="PNG", color=(30, 90, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(buffer, fmt)
    return buffer.getvalue()


def test_zip_holds_pictures_and_story_markdown():
    pages = [
        Page("First *page* with a [link](javascript:alert(1)).", image()),
        Page("# Not a heading\n\n- not a list\n1. not numbered", image("JPEG")),
        Page("No picture here.", None),
        Page("Broken picture.", b"garbage"),
    ]
    data = render_zip(Book("Pip & <the> Fox", "Ada_Lovelace", pages))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = sorted(zf.namelist())
        assert names == ["manifest.json", "page-01.png", "page-02.jpg", "story.md"]
        assert zf.read("page-01.png") == pages[0].image and zf.read("page-02.jpg") == pages[1].image
        md = zf.read("story.md").decode("utf-8")
    assert md.startswith("# Pip \\& \\<the\\> Fox\n")
    assert "*Ada\\_Lovelace*" in md
    assert "First \\*page\\* with a \\[link\\](javascript:alert(1))." in md
    assert "\n\\# Not a heading\n" in md and "\n\\- not a list" in md and "1\\. not numbered" in md
    assert "![Picture for page 1](page-01.png)" in md and "page-03" not in md and "page-04" not in md
    assert "No picture here." in md and "Broken picture." in md


def test_markdown_escaping_keeps_the_words():
    assert escape_markdown("a<b and c>d & `code` | ~x~ _y_") == "a\\<b and c\\>d \\& \\`code\\` \\| \\~x\\~ \\_y\\_"
    assert escape_markdown("+ plus\n> quote\n===") == "\\+ plus\n\\> quote\n\\==="


def test_zip_of_empty_book_raises():
    with pytest.raises(ExportError):
        render_zip(Book("Empty", "", []))


def test_the_dedication_is_quoted_under_the_title_in_story_md():
    import io as _io
    import zipfile as _zipfile

    from exports import Book, Page
    from exports.archive import render_zip

    data = render_zip(Book("T", "Ann", [Page("Hi.")], dedication="For Mia,\nwho *loves* the sea\n\nand Pip"))
    md = _zipfile.ZipFile(_io.BytesIO(data)).read("story.md").decode()
    assert "> For Mia,  \n> who \\*loves\\* the sea\n>\n> and Pip\n" in md
    assert md.index("For Mia") < md.index("## 1")


def _unzip(data: bytes, folder):
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        zf.extractall(folder)
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))


def test_the_manifest_lists_every_page_with_its_picture_and_settings(tmp_path):
    story = "The Fox\n\nPip ran.\n\nThe lamp went out.\n\nThe end came."
    settings = {"seed": 11, "steps": 4, "guidance": 0.0, "width": 64, "height": 64, "prompt": "a fox", "x": [1]}
    pages = [
        Page("Pip ran.", image(), settings=settings, seed=11, span=(9, 17)),
        Page("The lamp went out.", b"garbage", settings={"seed": 12, "prompt": "a lamp"}, span=(19, 37)),
        Page("The end came.", None, seed=13, prompt="my own words", negative_prompt="no text", span=(39, 52)),
    ]
    book = Book(
        "The Fox",
        "Ann",
        pages,
        cover_image=image(color=(1, 2, 3)),
        dedication="For Mia",
        story_text=story,
        style="pencil",
        profile="tiny",
        setting="an island",
        characters=[("Pip", "a small red fox")],
        created="2026-12-03T10:00:00+00:00",
    )
    doc = _unzip(render_zip(book), tmp_path)
    assert (doc["format"], doc["version"]) == ("storybook-manifest", 1)
    assert (doc["title"], doc["author"], doc["source_text"], doc["style"], doc["profile"]) == (
        "The Fox",
        "Ann",
        story,
        "pencil",
        "tiny",
    )
    assert doc["characters"] == [{"name": "Pip", "description": "a small red fox"}] and doc["cover"] == "cover.png"
    first, second, third = doc["segments"]
    assert first == {"index": 0, "text": "Pip ran.", "start": 9, "end": 17, "seed": 11, "image": "page-01.png",
                     "settings": settings}  # fmt: skip
    # The unreadable picture is left out, but its settings still say how to draw it again.
    assert "image" not in second and second["settings"]["prompt"] == "a lamp" and second["seed"] == 12
    assert third["prompt"] == "my own words" and third["negative_prompt"] == "no text" and "settings" not in third
    for segment in doc["segments"]:
        assert story[segment["start"] : segment["end"]] == segment["text"]

    # The exporters read it back as the same book: a ZIP is a manifest folder.
    again = book_from_manifest(tmp_path)
    assert [p.text for p in again.pages] == [p.text for p in pages]
    assert again.pages[0].image == pages[0].image and again.pages[0].settings == settings
    assert [p.seed for p in again.pages] == [11, 12, 13] and again.pages[2].prompt == "my own words"
    assert (again.story_text, again.style, again.characters, again.setting) == (
        story,
        "pencil",
        [("Pip", "a small red fox")],
        "an island",
    )


def test_a_book_without_a_story_text_gets_one_from_its_pages(tmp_path):
    doc = _unzip(render_zip(Book("T", "", [Page("One."), Page("Two, again.")])), tmp_path)
    assert doc["source_text"] == "One.\n\nTwo, again."
    assert [(s["start"], s["end"]) for s in doc["segments"]] == [(0, 4), (6, 17)]
    # A story text the pages do not stand in is not trusted with their offsets.
    doc = _unzip(render_zip(Book("T", "", [Page("One.", span=(0, 4))], story_text="Other words.")), tmp_path)
    assert doc["source_text"] == "One." and doc["segments"][0]["start"] == 0


def test_a_saved_story_comes_back_from_its_zip_and_every_picture_redraws(tmp_path, tiny_models, one_cpu_thread):
    """Export a saved story to ZIP, import its manifest.json as a new story: pages, texts, pictures and seeds
    are equal, and each picture's settings draw the same pixels again on the tiny models."""
    import numpy as np

    from engine.illustrate import PictureRequest, open_illustrator, request_from_settings
    from engine.imageio import to_png_bytes
    from engine.profiles import get_profile
    from engine.references import Reference
    from exports import book_from_project
    from storage.library import Library
    from storage.views import PageInput

    profile = get_profile("tiny")
    texts = ["Pip lived by the sea.", "One night the lamp went out.", "No picture yet."]
    story = "\n\n".join(texts)
    reference = Reference(name="Pip", prompt="a small red fox", seed=77, share_rate=0.5)
    requests = [
        PictureRequest(key=0, prompt="a fox by the sea, watercolor", seed=101),
        PictureRequest(key=1, prompt="a dark lighthouse, watercolor", seed=102, reference=reference),
    ]
    with open_illustrator(profile) as illustrator:
        drawn = illustrator.illustrate(requests, batch_size=1)

    with Library(home=tmp_path / "home") as library:
        project = library.create_project("The Lighthouse Fox", author="Ann", style="watercolor", profile="tiny")
        spans = [(story.index(t), story.index(t) + len(t)) for t in texts]
        project = library.save_story(
            project.id,
            project.version,
            story,
            [PageInput(t, s, e, seed=seed) for t, (s, e), seed in zip(texts, spans, (101, 102, 103))],
        )
        project = library.set_characters(project.id, project.version, [("Pip", "a small red fox")])
        for page, picture in zip(project.pages, drawn):
            library.add_picture(page.id, to_png_bytes(picture.image), json.loads(json.dumps(picture.settings)))
        original = library.get_project(project.id)
        archive = render_zip(book_from_project(original))
        folder = tmp_path / "unzipped"
        folder.mkdir()
        doc = _unzip(archive, folder)
        copy = library.import_manifest(folder / "manifest.json")

        assert copy.id != original.id and copy.title == original.title and copy.author == original.author
        assert copy.story_text == original.story_text and copy.profile == "tiny"
        assert [(c.name, c.description) for c in copy.characters] == [("Pip", "a small red fox")]
        assert [p.text for p in copy.pages] == [p.text for p in original.pages] == texts
        assert [p.seed for p in copy.pages] == [p.seed for p in original.pages] == [101, 102, 103]
        for before, after in zip(original.pages, copy.pages):
            if before.selected is None:
                assert after.selected is None
                continue
            assert after.selected.image_path.read_bytes() == before.selected.image_path.read_bytes()
            assert after.selected.settings == before.selected.settings
    assert doc["segments"][1]["settings"]["reference"]["seed"] == 77

    redrawn_requests = [request_from_settings(s["index"], s["settings"]) for s in doc["segments"] if "settings" in s]
    with open_illustrator(profile) as illustrator:
        redrawn = illustrator.illustrate(redrawn_requests, batch_size=1)
    for segment, picture in zip(doc["segments"], redrawn):
        saved = np.asarray(Image.open(folder / segment["image"]).convert("RGB"), dtype=np.int16)
        again = np.asarray(picture.image.convert("RGB"), dtype=np.int16)
        assert saved.shape == again.shape and np.abs(saved - again).max() <= 1
        # storage adds what it learnt (the page's words then); everything the engine recorded is there
        assert picture.settings.items() <= segment["settings"].items()
