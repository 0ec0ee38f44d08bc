"""Projects keep the settings their story was written with (migration 0003): saved, versioned, validated,
copied by duplicate and bundles, and added to a library made before the column existed."""

from __future__ import annotations

import json

import pytest

from storage import db
from storage.errors import ConflictError, InvalidInput
from storage.library import Library

SETTINGS = {
    "source": "images",
    "seed": 1234,
    "tone": "funny",
    "age": 5,
    "hints": "Pip the dog",
    "story": {"model": "tiny:storyteller", "passage_seeds": [11, 22, 33], "retold": {"1": 2}},
}


def test_story_settings_round_trip_and_bump_the_version(tmp_path):
    library = Library(tmp_path)
    project = library.create_project("Pictures")
    assert project.story_settings is None

    saved = library.update_project(project.id, project.version, story_settings=SETTINGS)
    assert saved.version == project.version + 1
    assert saved.story_settings == SETTINGS
    assert library.get_project(project.id).story_settings == SETTINGS

    # Other edits leave the settings alone; None clears them.
    renamed = library.update_project(saved.id, saved.version, title="Pip at the Sea")
    assert renamed.story_settings == SETTINGS
    with pytest.raises(ConflictError):
        library.update_project(project.id, project.version, story_settings={"seed": 1})
    cleared = library.update_project(renamed.id, renamed.version, story_settings=None)
    assert cleared.story_settings is None


def test_the_view_is_a_copy(tmp_path):
    library = Library(tmp_path)
    project = library.create_project("Pictures")
    view = library.update_project(project.id, project.version, story_settings=SETTINGS)
    view.story_settings["story"]["passage_seeds"].append(99)
    assert library.get_project(project.id).story_settings == SETTINGS


@pytest.mark.parametrize("bad", [[1, 2], {"x": float("nan")}, {1: "a"}, {"x": object()}, {"x": "y" * 70_000}])
def test_settings_that_are_not_plain_json_are_refused(tmp_path, bad):
    library = Library(tmp_path)
    project = library.create_project("Pictures")
    with pytest.raises(InvalidInput, match="story's settings"):
        library.update_project(project.id, project.version, story_settings=bad)
    assert library.get_project(project.id).version == project.version


def test_duplicate_and_bundle_keep_the_settings(tmp_path):
    library = Library(tmp_path)
    project = library.create_project("Pictures")
    library.update_project(project.id, project.version, story_settings=SETTINGS)
    assert library.duplicate_project(project.id).story_settings == SETTINGS
    data = library.export_bundle(project.id)
    assert library.import_bundle(data).story_settings == SETTINGS
    # A project without settings still exports and imports as before.
    plain = library.create_project("Typed")
    assert library.import_bundle(library.export_bundle(plain.id)).story_settings is None


def test_a_library_from_revision_0002_gains_the_column(tmp_path):
    engine = db.make_engine(tmp_path / db.DB_FILENAME)
    db.upgrade(engine, "0002")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO projects (title, author, style, profile, story_text, created, updated, version) "
            "VALUES ('Old fox', '', 'watercolor', 'fast', 'Once.', '2026-01-01 00:00:00', '2026-01-01 00:00:00', 2)"
        )
    engine.dispose()

    library = Library(tmp_path)
    assert library.last_backup is not None and f"0002-to-{db.HEAD_REVISION}" in library.last_backup.name
    (summary,) = library.list_projects()
    old = library.get_project(summary.id)
    assert old.story_settings is None and old.version == 2 and old.setting == ""
    saved = library.update_project(old.id, old.version, story_settings={"seed": 7})
    assert saved.story_settings == {"seed": 7}
    with library._engine.connect() as conn:
        raw = conn.exec_driver_sql("SELECT story_settings FROM projects").scalar()
    assert json.loads(raw) == {"seed": 7}
