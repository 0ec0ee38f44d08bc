"""Revision 0006: a book's closing words and drafts-first choice, what was learnt about each picture (meta), and
the characters' reference pictures (the cast sheet); kept by undo, copies and bundles (format 3)."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from storage import db
from storage.errors import InvalidInput, NotFound
from storage.library import Library
from storage.views import PageInput
from tests.fixtures_images import png

STORY = "Pip the fox sailed. The ferry waited."


def _story(library: Library):
    project = library.create_project("Cast")
    project = library.save_story(project.id, project.version, STORY, [PageInput(STORY, 0, len(STORY))])
    return library.set_characters(project.id, project.version, [("Pip", "a small red fox"), ("Mo", "a grey mole")])


def test_closing_words_and_drafts_are_kept_undone_and_copied(tmp_path):
    library = Library(tmp_path)
    project = _story(library)
    assert project.closing == "" and project.drafts is False
    project = library.update_project(project.id, project.version, closing="  Goodnight,   little ferry \n\n\n")
    assert project.closing == "Goodnight, little ferry"
    project = library.update_project(project.id, project.version, candidates=4)
    assert project.candidates == 4
    project, _ = library.undo(project.id, project.version)
    assert project.candidates == 1
    with pytest.raises(InvalidInput, match="pictures drawn per page"):
        library.update_project(project.id, project.version, candidates=9)
    project = library.update_project(project.id, project.version, drafts=True)
    assert project.drafts is True and project.undo == "Draw drafts first"
    project, _ = library.undo(project.id, project.version)
    assert project.drafts is False and project.closing == "Goodnight, little ferry"
    project, _ = library.undo(project.id, project.version)
    assert project.closing == ""
    project, _ = library.redo(project.id, project.version)
    copy = library.duplicate_project(project.id)
    assert copy.closing == "Goodnight, little ferry"
    with pytest.raises(InvalidInput, match="closing words"):
        library.update_project(project.id, project.version, closing="x" * 5000)


def test_picture_meta_is_kept_and_checked(tmp_path):
    library = Library(tmp_path)
    project = _story(library)
    page = project.pages[0]
    meta = {"scores": {"character": 0.71}, "candidate": 2, "candidates": 3, "draft": True}
    picture = library.add_picture(page.id, png(), {"seed": 5}, meta=meta)
    assert picture.meta == meta
    assert library.get_project(project.id).pages[0].selected.meta == meta
    with pytest.raises(InvalidInput):
        library.add_picture(page.id, png(), {"seed": 6}, meta={"bad": object()})
    plain = library.add_picture(page.id, png(color=(1, 2, 3)), {"seed": 7})
    assert plain.meta == {}


def test_a_reference_picture_follows_its_character(tmp_path):
    library = Library(tmp_path)
    project = _story(library)
    project = library.set_character_reference(project.id, project.version, "pip", image=png(color=(9, 90, 9)))
    pip = project.characters[0]
    assert pip.reference_path is not None and pip.reference_path.read_bytes() == png(color=(9, 90, 9))
    assert project.characters[1].reference_path is None

    # One of the story's pictures can be a reference too.
    picture = library.add_picture(project.pages[0].id, png(color=(200, 0, 0)), {"seed": 1})
    project = library.get_project(project.id)
    project = library.set_character_reference(project.id, project.version, "Mo", picture_id=picture.id)
    assert project.characters[1].reference_path == picture.image_path
    assert project.characters[1].reference_settings == {"seed": 1}  # to draw it again beside each page
    assert project.characters[0].reference_settings is None  # uploaded

    # Reordered and renamed: the reference follows the name; a character renamed in its place keeps its own.
    project = library.set_characters(project.id, project.version, [("Mo", "a grey mole"), ("Pippa", "a red fox")])
    assert project.characters[0].reference_path == picture.image_path
    assert project.characters[1].reference_path == pip.reference_path

    # Taken away, and brought back by undo.
    project = library.set_character_reference(project.id, project.version, "Pippa")
    assert project.characters[1].reference_path is None
    project, _ = library.undo(project.id, project.version)
    assert project.characters[1].reference_path == pip.reference_path

    with pytest.raises(NotFound):
        library.set_character_reference(project.id, project.version, "Nobody", image=png())
    with pytest.raises(InvalidInput):
        library.set_character_reference(project.id, project.version, "Mo", image=b"not a picture")


def test_a_reference_file_is_not_swept_while_a_character_names_it(tmp_path):
    library = Library(tmp_path)
    project = _story(library)
    project = library.set_character_reference(project.id, project.version, "Pip", image=png(color=(4, 5, 6)))
    path = project.characters[0].reference_path
    assert library.sweep(min_age_s=0).removed_images == 0 and path.exists()
    assert library.integrity_report()["bad_files"] == []
    library.delete_project(project.id)
    assert not path.exists()


def test_bundle_format_3_carries_closing_drafts_meta_and_references(tmp_path):
    library = Library(tmp_path / "a")
    project = _story(library)
    project = library.update_project(project.id, project.version, closing="The very end", drafts=True, candidates=3)
    library.add_picture(project.pages[0].id, png(), {"seed": 3}, meta={"scores": {"character": 0.5}})
    project = library.get_project(project.id)
    project = library.set_character_reference(
        project.id, project.version, "Pip", image=png(color=(7, 7, 7)), settings={"seed": 11, "prompt": "a fox"}
    )
    data = library.export_bundle(project.id)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        doc = json.loads(archive.read("project.json"))
    assert doc["version"] >= 3 and doc["characters"][0]["reference"].startswith("images/")

    other = Library(tmp_path / "b")
    back = other.import_bundle(data)
    assert back.closing == "The very end" and back.drafts is True and back.candidates == 3
    assert back.characters[0].reference_settings == {"seed": 11, "prompt": "a fox"}
    assert back.pages[0].selected.meta == {"scores": {"character": 0.5}}
    assert back.characters[0].reference_path.read_bytes() == png(color=(7, 7, 7))
    assert back.characters[1].reference_path is None


def test_a_library_from_revision_0005_gains_the_columns(tmp_path):
    engine = db.make_engine(tmp_path / db.DB_FILENAME)
    db.upgrade(engine, "0005")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO projects (title, author, style, profile, story_text, created, updated, version) "
            "VALUES ('Old fox', '', 'watercolor', 'fast', 'Once.', '2026-01-01 00:00:00', '2026-01-01 00:00:00', 2)"
        )
        conn.exec_driver_sql(
            "INSERT INTO characters (project_id, position, name, description) VALUES (1, 0, 'Pip', '')"
        )
    engine.dispose()

    library = Library(tmp_path)
    assert library.last_backup is not None and f"0005-to-{db.HEAD_REVISION}" in library.last_backup.name
    old = library.get_project(library.list_projects()[0].id)
    assert old.closing == "" and old.drafts is False and old.candidates == 1
    assert old.characters[0].reference_path is None
    saved = library.update_project(old.id, old.version, closing="Fin")
    assert saved.closing == "Fin"
