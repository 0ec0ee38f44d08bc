"""Revision 0007: a character keeps the pictures drawn for its reference (proposals: files in the picture store,
seen by the sweep, the integrity report, copies, undo and bundles, format 4) and its measured likeness; how
closely pages follow a reference is kept in the reference's settings."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from storage import db
from storage.errors import BundleError, InvalidInput, NotFound
from storage.library import Library
from storage.views import PageInput
from tests.fixtures_images import png

STORY = "Pip the fox sailed. The ferry waited."
DRAWN = [
    (png(color=(10, 20, 30)), {"seed": 1, "prompt": "a small red fox"}, 24.5),
    (png(color=(40, 50, 60)), {"seed": 2, "prompt": "a small red fox"}, 31.0),
    (png(color=(70, 80, 90)), {"seed": 3, "prompt": "a small red fox"}, None),
]


def _story(library: Library):
    project = library.create_project("Cast")
    project = library.save_story(project.id, project.version, STORY, [PageInput(STORY, 0, len(STORY))])
    return library.set_characters(project.id, project.version, [("Pip", "a small red fox"), ("Mo", "a grey mole")])


def test_proposals_are_kept_offered_chosen_removed_and_undone(tmp_path):
    library = Library(tmp_path)
    project = _story(library)
    project = library.add_reference_proposals(project.id, project.version, "pip", DRAWN, use=1)
    pip = project.characters[0]
    assert [p.score for p in pip.proposals] == [24.5, 31.0, None]
    assert [p.in_use for p in pip.proposals] == [False, True, False]
    assert pip.reference_path == pip.proposals[1].image_path and pip.reference_settings == DRAWN[1][1]
    assert [p.image_path.read_bytes() for p in pip.proposals] == [data for data, _, _ in DRAWN]
    assert project.undo == "Draw a reference picture"

    # Another one is taken later, from the library (not from memory): a new Library on the same folder.
    again = Library(tmp_path)
    project = again.use_reference_proposal(project.id, project.version, "Pip", 2)
    pip = project.characters[0]
    assert pip.reference_path == pip.proposals[2].image_path and pip.reference_settings == DRAWN[2][1]

    # A second draw adds to the offer (the same picture is not kept twice).
    more = [(png(color=(1, 1, 1)), {"seed": 4, "prompt": "a fox"}, 20.0), DRAWN[0]]
    project = again.add_reference_proposals(project.id, project.version, "Pip", more, use=None)
    assert len(project.characters[0].proposals) == 4
    assert project.characters[0].reference_settings == DRAWN[2][1]  # use=None: the reference stays

    # Removing one is undoable; the one in use stays the reference.
    project = again.remove_reference_proposal(project.id, project.version, "Pip", 1)
    assert len(project.characters[0].proposals) == 3 and project.characters[0].reference_path is not None
    project, _ = again.undo(project.id, project.version)
    assert len(project.characters[0].proposals) == 4
    project, _ = again.redo(project.id, project.version)
    assert len(project.characters[0].proposals) == 3

    with pytest.raises(NotFound):
        again.use_reference_proposal(project.id, project.version, "Pip", 7)
    with pytest.raises(NotFound):
        again.remove_reference_proposal(project.id, project.version, "Nobody", 0)
    with pytest.raises(InvalidInput):
        again.add_reference_proposals(project.id, project.version, "Pip", [(b"not a picture", None, None)])
    with pytest.raises(InvalidInput):
        again.add_reference_proposals(project.id, project.version, "Pip", [(png(), None, 140.0)])
    with pytest.raises(InvalidInput):
        again.add_reference_proposals(project.id, project.version, "Pip", [(png(), None, None)] * 13)

    # The offer follows the character's name, and its copy.
    project = again.set_characters(project.id, project.version, [("Mo", "a grey mole"), ("Pip", "a red fox")])
    assert len(project.characters[1].proposals) == 3 and not project.characters[0].proposals
    copy = again.duplicate_project(project.id)
    assert [p.image_path for p in copy.characters[1].proposals] == [
        p.image_path for p in project.characters[1].proposals
    ]


def test_proposal_files_are_not_swept_while_named_and_are_checked(tmp_path):
    library = Library(tmp_path)
    project = _story(library)
    project = library.add_reference_proposals(project.id, project.version, "Pip", DRAWN, use=0)
    paths = [p.image_path for p in project.characters[0].proposals]
    assert library.sweep(min_age_s=0).removed_images == 0 and all(p.exists() for p in paths)
    report = library.integrity_report()
    assert report["bad_files"] == [] and report["rows_checked"] >= 1 + len(DRAWN)
    paths[2].write_bytes(b"damaged")
    assert [path for _, path in library.integrity_report()["bad_files"]] == [paths[2]]
    paths[2].unlink()
    assert len(library.get_project(project.id).characters[0].proposals) == 2  # a lost file is not offered
    # Removed from the offer and swept: gone for good, and an undo does not offer a missing file.
    project = library.get_project(project.id)
    project = library.remove_reference_proposal(project.id, project.version, "Pip", 1)
    library.sweep(min_age_s=0)
    assert not paths[1].exists() and paths[0].exists()  # [0] is the reference in use
    project, _ = library.undo(project.id, project.version)
    assert [p.image_path for p in project.characters[0].proposals] == [paths[0]]
    library.delete_project(project.id)
    assert not paths[0].exists()


def test_strength_is_kept_in_the_reference_settings_checked_undone_and_follows_a_new_picture(tmp_path):
    library = Library(tmp_path)
    project = _story(library)
    with pytest.raises(NotFound, match="no reference picture"):
        library.set_reference_strength(project.id, project.version, "Pip", share_rate=0.3)
    project = library.add_reference_proposals(project.id, project.version, "Pip", DRAWN, use=0)
    project = library.set_reference_strength(project.id, project.version, "Pip", share_rate=0.25)
    assert project.characters[0].reference_settings == {**DRAWN[0][1], "share_rate": 0.25}
    project = library.set_reference_strength(project.id, project.version, "Pip", ip_scale=1.2)
    assert project.characters[0].reference_settings == {**DRAWN[0][1], "share_rate": 0.25, "ip_scale": 1.2}
    project, _ = library.undo(project.id, project.version)
    assert "ip_scale" not in project.characters[0].reference_settings
    for bad in ({"share_rate": 1.5}, {"share_rate": True}, {"ip_scale": -0.1}, {"ip_scale": float("nan")}):
        with pytest.raises(InvalidInput):
            library.set_reference_strength(project.id, project.version, "Pip", **bad)
    # Another picture taken as the reference keeps the person's choice; an upload too.
    project = library.use_reference_proposal(project.id, project.version, "Pip", 1)
    assert project.characters[0].reference_settings == {**DRAWN[1][1], "share_rate": 0.25}
    project = library.set_character_reference(project.id, project.version, "Pip", image=png(color=(5, 5, 5)))
    assert project.characters[0].reference_settings == {"share_rate": 0.25}
    # Taken away, the choice goes with it.
    project = library.set_character_reference(project.id, project.version, "Pip")
    assert project.characters[0].reference_settings is None


def test_likeness_is_a_measure_not_an_edit(tmp_path):
    library = Library(tmp_path)
    project = _story(library)
    measured = {"score": 81.5, "model": "tiny:consistency", "pictures": 3}
    after = library.set_character_likeness(project.id, "mo", measured)
    assert after.characters[1].likeness == measured and after.characters[0].likeness is None
    assert after.version == project.version and after.undo == project.undo  # no step, no version
    with pytest.raises(NotFound):
        library.set_character_likeness(project.id, "Nobody", measured)
    with pytest.raises(InvalidInput):
        library.set_character_likeness(project.id, "Mo", {"score": object()})
    # An edit and its undo leave the measure alone.
    project = library.set_character_reference(after.id, after.version, "Mo", image=png())
    project, _ = library.undo(project.id, project.version)
    assert project.characters[1].likeness == measured
    assert library.duplicate_project(project.id).characters[1].likeness == measured


def test_bundle_format_4_carries_proposals_strength_and_likeness_and_reads_3(tmp_path):
    library = Library(tmp_path / "a")
    project = _story(library)
    project = library.add_reference_proposals(project.id, project.version, "Pip", DRAWN, use=1)
    project = library.set_reference_strength(project.id, project.version, "Pip", share_rate=0.75)
    library.set_character_likeness(project.id, "Pip", {"score": 70.0, "pictures": 2})
    data = library.export_bundle(project.id)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        doc = json.loads(archive.read("project.json"))
    assert doc["version"] == 4 and len(doc["characters"][0]["proposals"]) == 3

    back = Library(tmp_path / "b").import_bundle(data)
    pip = back.characters[0]
    assert [p.score for p in pip.proposals] == [24.5, 31.0, None] and [p.in_use for p in pip.proposals][1]
    assert [p.image_path.read_bytes() for p in pip.proposals] == [d for d, _, _ in DRAWN]
    assert pip.reference_settings == {**DRAWN[1][1], "share_rate": 0.75}
    assert pip.likeness == {"score": 70.0, "pictures": 2}

    # A format 3 bundle (no proposals) still reads.
    doc["version"] = 3
    for character in doc["characters"]:
        character.pop("proposals", None)
        character.pop("likeness", None)
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(buffer, "w") as target:
        for info in source.infolist():
            body = json.dumps(doc).encode() if info.filename == "project.json" else source.read(info)
            target.writestr(info.filename, body)
    old = Library(tmp_path / "c").import_bundle(buffer.getvalue())
    assert old.characters[0].proposals == () and old.characters[0].reference_path is not None

    # A proposal that names a file the bundle lacks, or a score off the scale, is refused.
    for damage in ({"image": "images/" + "0" * 64 + ".png"}, {"score": 200}):
        doc["version"] = 4
        doc["characters"][0]["proposals"] = [{"image": doc["characters"][0]["reference"], **damage}]
        buffer = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(buffer, "w") as target:
            for info in source.infolist():
                body = json.dumps(doc).encode() if info.filename == "project.json" else source.read(info)
                target.writestr(info.filename, body)
        with pytest.raises(BundleError, match="drawn picture 1"):
            Library(tmp_path / "d").import_bundle(buffer.getvalue())


def test_a_library_from_revision_0006_gains_the_columns(tmp_path):
    engine = db.make_engine(tmp_path / db.DB_FILENAME)
    db.upgrade(engine, "0006")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO projects (title, author, style, profile, story_text, created, updated, version) "
            "VALUES ('Old fox', '', 'watercolor', 'fast', 'Once.', '2026-01-01 00:00:00', '2026-01-01 00:00:00', 2)"
        )
        conn.exec_driver_sql(
            "INSERT INTO characters (project_id, position, name, description, reference_settings) "
            "VALUES (1, 0, 'Pip', '', '{\"seed\": 3}')"
        )
    engine.dispose()

    library = Library(tmp_path)
    assert library.last_backup is not None and "0006-to-0007" in library.last_backup.name
    old = library.get_project(library.list_projects()[0].id)
    assert old.characters[0].proposals == () and old.characters[0].likeness is None
    with engine.connect() as conn:
        columns = {row[1] for row in conn.exec_driver_sql("PRAGMA table_info(characters)")}
        autoincrement = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'characters'").scalar()
    assert {"reference_proposals", "likeness"} <= columns
    assert "AUTOINCREMENT" in autoincrement  # a plain ADD COLUMN: the table was not rebuilt
    saved = library.add_reference_proposals(old.id, old.version, "Pip", DRAWN[:1])
    assert len(saved.characters[0].proposals) == 1
