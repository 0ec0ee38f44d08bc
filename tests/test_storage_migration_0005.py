"""Upgrading a library full of pictures to 0005 (ids never reused, states, history): every row and file survives.

0005 rebuilds every table (SQLite adds AUTOINCREMENT no other way). With foreign keys on, dropping the old
``projects`` table would cascade into every page and picture row, and the start-up sweep would then delete the
image files: this test fails loudly if that ever happens again.
"""

from __future__ import annotations

import io
import json
import random
import sqlite3

from PIL import Image

from storage import db
from storage.files import ImageStore, check_image
from storage.library import Library
from storage.views import PageInput

STORIES = [
    # (title, story text, pages as (text, start, end)): consistent, drifted, and a title line.
    ("Fox", "The fox ran. The owl sat.", [("The fox ran.", 0, 12), ("The owl sat.", 13, 25)]),
    # A page edited through its menu (the story text still has the old words) and a draft never split again.
    (
        "Owl",
        "Owl woke up. Owl flew. And a new paragraph typed later.",
        [("Owl woke up early.", 0, 12), ("Owl flew.", 13, 22)],
    ),
    ("The Hare", "The Hare\n\nA hare sat. It was cold.", [("A hare sat.", 10, 21), ("It was cold.", 22, 34)]),
]


def _png(rng: random.Random) -> bytes:
    buffer = io.BytesIO()
    Image.frombytes("RGB", (16, 16), rng.randbytes(16 * 16 * 3)).save(buffer, "PNG")
    return buffer.getvalue()


def _library_at_0004(home) -> dict:
    """A library as the app before 0005 left it: stories, pages, picture versions with files, characters,
    source pictures, and a deleted story whose ids 0004 would have given out again."""
    engine = db.make_engine(home / db.DB_FILENAME)
    db.upgrade(engine, "0004")
    store = ImageStore(home / "images")
    rng = random.Random(5)
    made = {"pictures": [], "files": set(), "pages": [], "projects": []}
    with engine.begin() as conn:
        run = conn.exec_driver_sql
        for title, story, pages in STORIES + [("Doomed", "Gone soon.", [("Gone soon.", 0, 10)])]:
            run(
                "INSERT INTO projects (title, author, style, profile, story_text, created, updated, version, "
                "setting, dedication) VALUES (?, '', 'watercolor', 'fast', ?, '2026-01-01 00:00:00', "
                "'2026-01-01 00:00:00', 2, '', '')",
                (title, story),
            )
            project_id = run("SELECT max(id) FROM projects").scalar()
            made["projects"].append(project_id)
            run(
                "INSERT INTO characters (project_id, position, name, description) VALUES (?, 0, 'Fox', 'red')",
                (project_id,),
            )
            image = check_image(_png(rng))
            store.write(image)
            made["files"].add(image.name)
            run(
                "INSERT INTO source_images (project_id, position, image_sha256, image_ext, caption) "
                "VALUES (?, 0, ?, ?, 'c')",
                (project_id, image.sha256, image.ext),
            )
            for position, (text, start, end) in enumerate(pages):
                run(
                    'INSERT INTO segments (project_id, position, text, start, "end", seed, locked) '
                    "VALUES (?, ?, ?, ?, ?, ?, 0)",
                    (project_id, position, text, start, end, 100 + position),
                )
                page_id = run("SELECT max(id) FROM segments").scalar()
                made["pages"].append(page_id)
                for version in (1, 2, 3):
                    image = check_image(_png(rng))
                    store.write(image)
                    made["files"].add(image.name)
                    run(
                        "INSERT INTO illustrations (segment_id, version, image_sha256, image_ext, settings, origin, "
                        "created, selected) VALUES (?, ?, ?, ?, ?, 'generated', '2026-01-01 00:00:00', ?)",
                        (page_id, version, image.sha256, image.ext, json.dumps({"seed": version}), int(version == 2)),
                    )
                    made["pictures"].append(run("SELECT max(id) FROM illustrations").scalar())
        # The newest story was deleted: before 0005 its id would be handed to the next new story.
        doomed = made["projects"].pop()
        doomed_pages = [r[0] for r in run("SELECT id FROM segments WHERE project_id = ?", (doomed,)).all()]
        run("PRAGMA foreign_keys = ON")
        for page_id in doomed_pages:
            run("DELETE FROM illustrations WHERE segment_id = ?", (page_id,))
        run("DELETE FROM segments WHERE project_id = ?", (doomed,))
        run("DELETE FROM source_images WHERE project_id = ?", (doomed,))
        run("DELETE FROM characters WHERE project_id = ?", (doomed,))
        run("DELETE FROM projects WHERE id = ?", (doomed,))
        made["doomed"] = doomed
        made["pages"] = [p for p in made["pages"] if p not in doomed_pages]
        made["pictures"] = [row[0] for row in run("SELECT id FROM illustrations ORDER BY id").all()]
        made["files"] = {
            f"{sha}.{ext}"
            for sha, ext in run(
                "SELECT image_sha256, image_ext FROM illustrations "
                "UNION SELECT image_sha256, image_ext FROM source_images"
            ).all()
        }
    engine.dispose()
    return made


def test_a_library_full_of_pictures_survives_the_upgrade_and_ids_are_never_reused(tmp_path):
    made = _library_at_0004(tmp_path)
    library = Library(tmp_path, sweep=False)
    assert library.last_backup is not None
    library.sweep(min_age_s=0)  # what a start-up sweep would remove, it removes now: nothing of ours

    raw = sqlite3.connect(tmp_path / db.DB_FILENAME)
    pictures = [row[0] for row in raw.execute("SELECT id FROM illustrations ORDER BY id")]
    pages = {row[0] for row in raw.execute("SELECT id FROM segments")}
    raw.close()
    assert pictures == made["pictures"]  # every picture row, by id
    assert set(made["pages"]) <= pages  # every page row (drifted stories gain pages, never lose one)
    on_disk = {path.name for path, _, _ in library.images.files()}
    assert made["files"] <= on_disk  # every file
    assert library.integrity_report()["bad_files"] == []

    for project_id, (title, _story, old_pages) in zip(made["projects"], STORIES):
        project = library.get_project(project_id)
        assert project.title == title and [c.name for c in project.characters] == ["Fox"]
        for page in project.pages:
            assert project.story_text[page.start : page.end] == page.text  # the story and its pages agree
        old_words = {text for text, _s, _e in old_pages}
        assert old_words <= {page.text for page in project.pages}  # each page kept its own words
        assert all(
            len(page.pictures) == 3 and page.selected.version == 2 for page in project.pages if page.text in old_words
        )
    owl = library.get_project(made["projects"][1])
    assert "And a new paragraph typed later." in owl.story_text  # the draft's words are kept, as pages
    assert any("And a new paragraph typed later." in page.text for page in owl.pages)
    hare = library.get_project(made["projects"][2])
    assert hare.title_from_text and hare.story_text.startswith("The Hare\n\n")

    # From the upgrade on, ids are never given out twice. (A story deleted before it, with the highest id,
    # left no trace a migration could read; its id is given once more, as it always was before.)
    fresh = library.create_project("New")
    assert fresh.id >= made["doomed"]
    newest_page = library.save_story(fresh.id, fresh.version, "Hello.", [PageInput("Hello.", 0, 6)]).pages[0].id
    library.delete_project(fresh.id)
    newer = library.create_project("Newer")
    assert newer.id > fresh.id
    assert library.save_story(newer.id, newer.version, "Hi.", [PageInput("Hi.", 0, 3)]).pages[0].id > newest_page
