"""Building a Book from an engine manifest and from a saved project."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PIL import Image

from exports import ExportError, book_from_manifest, book_from_project, render_pdf


def png(color=(200, 120, 40), size=(48, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def write_manifest(folder: Path, segments: list[dict], **fields) -> Path:
    data = {
        "format": "storybook-manifest",
        "version": 1,
        "title": "The Lighthouse Fox",
        "author": "Ada",
        "style": "watercolor",
        "profile": "tiny",
        "source_text": "",
        "segments": segments,
        **fields,
    }
    path = folder / "manifest.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_manifest_pages_in_index_order_with_pictures(tmp_path):
    (tmp_path / "segment-000.png").write_bytes(png((255, 0, 0)))
    (tmp_path / "segment-001.png").write_bytes(png((0, 255, 0)))
    path = write_manifest(
        tmp_path,
        [
            {"index": 1, "text": "Second.", "image": "segment-001.png", "seed": 2},
            {"index": 0, "text": "First.", "image": "segment-000.png", "seed": 1, "settings": {"steps": 4}},
        ],
    )
    for where in (path, tmp_path):  # the file or its folder
        book = book_from_manifest(where)
        assert book.title == "The Lighthouse Fox" and book.author == "Ada"
        assert [p.text for p in book.pages] == ["First.", "Second."]
        assert book.pages[0].image == (tmp_path / "segment-000.png").read_bytes()
        assert book.pages[0].settings == {"steps": 4}
        assert book.warnings == []


def test_manifest_refuses_paths_and_tolerates_missing_pictures(tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(png())
    folder = tmp_path / "run"
    folder.mkdir()
    path = write_manifest(
        folder,
        [
            {"index": 0, "text": "Climbs out.", "image": "../secret.png"},
            {"index": 1, "text": "Absolute.", "image": str(secret)},
            {"index": 2, "text": "Backslash.", "image": "..\\secret.png"},
            {"index": 3, "text": "Missing.", "image": "segment-003.png"},
            {"index": 4, "text": "No picture at all."},
        ],
    )
    book = book_from_manifest(path)
    assert all(page.image is None for page in book.pages)
    assert sum("folder path" in w for w in book.warnings) == 3
    assert sum("missing" in w for w in book.warnings) == 1
    result = render_pdf(book)  # prints anyway, and passes the warnings on
    assert result.page_count == 7
    assert all(w in result.warnings for w in book.warnings)


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no manifest"),
        ("{not json", "not valid JSON"),
        (json.dumps({"format": "something-else"}), "not a Storybook manifest"),
        (json.dumps({"format": "storybook-manifest", "version": 99, "segments": []}), "newer"),
        (json.dumps({"format": "storybook-manifest", "version": 1, "segments": "nope"}), "no list of segments"),
    ],
)
def test_bad_manifests_raise_a_sentence(tmp_path, content, message):
    path = tmp_path / "manifest.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ExportError, match=message):
        book_from_manifest(path)


# A stand-in with the attribute names of storage.views.ProjectView, for the adapter's duck typing.
@dataclass
class FakeIllustration:
    image_path: Path
    settings: dict = field(default_factory=dict)


@dataclass
class FakeSegment:
    id: int
    position: int
    text: str
    selected: FakeIllustration | None = None


@dataclass
class FakeProject:
    title: str
    author: str
    segments: list


def test_project_adapter_with_a_stand_in(tmp_path):
    image = tmp_path / "a.png"
    image.write_bytes(png())
    project = FakeProject(
        "Pip",
        "",
        [
            FakeSegment(2, 1, "Second page.", FakeIllustration(tmp_path / "gone.png")),
            FakeSegment(1, 0, "First page.", FakeIllustration(image, {"seed": 7})),
            FakeSegment(3, 2, "Third page, no picture yet."),
        ],
    )
    book = book_from_project(project)
    assert [p.text for p in book.pages] == ["First page.", "Second page.", "Third page, no picture yet."]
    assert book.pages[0].image == image.read_bytes() and book.pages[0].settings == {"seed": 7}
    assert book.pages[1].image is None and any("missing" in w for w in book.warnings)
    assert book.pages[2].image is None


def test_project_adapter_through_the_storage_library(tmp_path):
    library_mod = pytest.importorskip("storage.library")
    from storage.views import PageInput

    story = "Pip lived in a lighthouse. One night the lamp went out."
    with library_mod.Library(home=tmp_path / "home") as library:
        project = library.create_project("The <Lighthouse> Fox", author="Ada & Co", story_text=story)
        project = library.save_story(
            project.id,
            project.version,
            story,
            [
                PageInput("Pip lived in a lighthouse.", 0, 26),
                PageInput("One night the lamp went out.", 27, len(story)),
            ],
        )
        library.add_picture(project.pages[0].id, png((10, 200, 10)), {"seed": 1, "steps": 4})
        book = book_from_project(library.get_project(project.id))
    assert book.title == "The <Lighthouse> Fox" and book.author == "Ada & Co"
    assert [p.text for p in book.pages] == ["Pip lived in a lighthouse.", "One night the lamp went out."]
    assert book.pages[0].image is not None and book.pages[1].image is None
    result = render_pdf(book)
    assert result.page_count == 4
