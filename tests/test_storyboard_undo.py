"""Undo and redo on the storyboard, and the rules around them, through the functions the page calls."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from core.errors import InputError
from storage import ConflictError, Library
from storage.history import HISTORY_STEPS
from studio import actions

STORY = "Pip lived on an island. She watched the lamp.\n\nOne night it went dark. She lit it again."


def _png(n: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (n, 20, 30)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def lib(tmp_path) -> Library:
    library = Library(tmp_path)
    yield library
    library.close()


def _story(lib: Library, sentences: int = 1):
    project = actions.create_project(lib, story_text=STORY)
    return actions.split_story(lib, project.id, project.version, STORY, sentences=sentences).project


def test_every_kind_of_edit_is_one_step_back_and_forth(lib):
    project = _story(lib)
    first = project.pages[0]
    picture = lib.add_picture(first.id, _png(1), {"seed": 1, "page_text": first.text})
    project = lib.get_project(project.id)
    steps = [
        ("Change the characters", lambda p: actions.save_characters(lib, p.id, p.version, [("Pip", "a red fox")])),
        ("Change the picture style", lambda p: actions.save_detail(lib, p.id, p.version, "style", "ink")),
        ("Merge two pages", lambda p: actions.merge_pages(lib, p.pages[0].id, p.version)),
        ("Discard a picture", lambda p: actions.discard_picture(lib, picture.id, p.version)),
        ("Move page 1", lambda p: actions.move_page(lib, p.id, p.pages[0].id, p.version, 1)),
        ("Delete page 2", lambda p: actions.delete_page(lib, p.id, p.pages[1].id, p.version)),
    ]
    states = [project]
    for label, do in steps:
        project = do(project)
        assert project.undo == label
        states.append(project)
    for label, _ in reversed(steps):
        project, message = actions.undo(lib, project.id, project.version)
        assert message == f"Undone: {label}."
        expected = states[len(states) - 2]
        states.pop()
        assert (project.story_text, project.style, [c.name for c in project.characters]) == (
            expected.story_text,
            expected.style,
            [c.name for c in expected.characters],
        )
        assert [(p.id, p.text, [i.id for i in p.pictures]) for p in project.pages] == [
            (p.id, p.text, [i.id for i in p.pictures]) for p in expected.pages
        ]
    assert project.undo == "Split into pages" and project.redo == "Change the characters"
    project, _ = actions.undo(lib, project.id, project.version)
    assert project.pages == [] and project.story_text == STORY  # before the first split: the draft
    with pytest.raises(InputError, match="nothing to undo"):
        actions.undo(lib, project.id, project.version)
    project, _ = actions.redo(lib, project.id, project.version)
    project, message = actions.redo(lib, project.id, project.version)
    assert message == "Redone: Change the characters." and [c.name for c in project.characters] == ["Pip"]
    # A new edit after an undo drops what could have been redone.
    project = actions.save_detail(lib, project.id, project.version, "title", "Pip")
    assert project.redo is None


def test_undo_survives_a_restart_and_keeps_at_least_fifty_steps(lib, tmp_path):
    project = _story(lib)
    for n in range(60):
        project = actions.save_detail(lib, project.id, project.version, "title", f"Title {n}")
    lib.close()
    again = Library(tmp_path)
    project = again.get_project(project.id)
    for n in range(58, 8, -1):  # 50 steps back, after a restart
        project, _ = actions.undo(again, project.id, project.version)
        assert project.title == f"Title {n}"
    assert HISTORY_STEPS >= 50
    again.close()


def test_an_undo_never_takes_away_a_jobs_picture_nor_overwrites_another_tabs_edit(lib):
    project = _story(lib)
    first, second = project.pages[:2]
    project = actions.merge_pages(lib, first.id, project.version)
    drawn = lib.add_picture(first.id, _png(2), {"seed": 2})  # a job's picture for the merged page
    project = lib.get_project(project.id)
    project, _ = actions.undo(lib, project.id, project.version)
    assert [p.id for p in project.pages[:2]] == [first.id, second.id]
    assert drawn.id in [pic.id for pic in project.pages[0].pictures]  # still there, as a version

    tab = project.version
    other = actions.save_detail(lib, project.id, tab, "author", "Someone")  # another tab's edit
    with pytest.raises(ConflictError):
        actions.undo(lib, project.id, tab)
    assert lib.get_project(project.id).author == "Someone"
    project, _ = actions.undo(lib, project.id, other.version)
    assert project.author == ""


def test_a_stale_tab_writing_to_a_deleted_story_gets_the_conflict_sentence(lib):
    project = _story(lib)
    lib.delete_project(project.id)
    replacement = actions.create_project(lib, story_text="Another story.")
    assert replacement.id != project.id  # ids are never given twice
    with pytest.raises(ConflictError, match="changed in another tab"):
        actions.save_detail(lib, project.id, project.version, "title", "Mine")
    with pytest.raises(ConflictError):
        actions.undo(lib, project.id, project.version)


def test_words_changed_since_the_picture_and_honest_counts(lib):
    project = _story(lib, sentences=2)
    first, second = project.pages
    lib.add_picture(first.id, _png(3), {"seed": 3, "page_text": first.text})
    lib.add_picture(second.id, _png(4), {"seed": 4, "page_text": second.text})
    project = lib.get_project(project.id)
    assert not project.pages[0].selected.words_changed
    # One word changed in the story box: the picture stays, and the page says its words changed.
    outcome = actions.save_story_text(lib, project.id, project.version, STORY.replace("island", "rock"))
    assert outcome.project.pages[0].selected.words_changed and not outcome.project.pages[1].selected.words_changed
    assert outcome.message == "2 pages: 2 kept their pictures, 1 page with words changed since its picture."
    # A page rewritten beyond recognition leaves with its picture for the tray: the message counts it.
    rewritten = outcome.project.story_text.replace("One night it went dark. She lit it again.", "Zebras dance.")
    outcome = actions.split_story(lib, project.id, outcome.project.version, rewritten)
    assert outcome.loose == 1 and "1 picture is in the loose pictures tray" in outcome.message
    assert [len(p.pictures) for p in outcome.project.loose] == [1]
    # From the tray, the picture can go on any page.
    loose = outcome.project.loose[0].pictures[0]
    target = outcome.project.pages[-1]
    project = actions.place_picture(lib, loose.id, target.id, outcome.project.version)
    assert project.loose == [] and project.pages[-1].selected.id == loose.id
    assert project.pages[-1].selected.words_changed  # drawn for other words


def test_the_title_line_is_shown_as_such_and_can_become_a_page(lib):
    story = "The Lighthouse Fox\n\nPip lived on an island."
    project = actions.create_project(lib, story_text=story)
    outcome = actions.split_story(lib, project.id, project.version, story)
    project = outcome.project
    assert outcome.title == "The Lighthouse Fox" and project.title_from_text and project.title == outcome.title
    assert [p.text for p in project.pages] == ["Pip lived on an island."]
    project = actions.title_line_to_page(lib, project.id, project.version)
    assert [p.text for p in project.pages] == ["The Lighthouse Fox", "Pip lived on an island."]
    assert not project.title_from_text and project.title == "The Lighthouse Fox" and project.story_text == story

    # A book with its own title keeps a title-like first line as words of the story.
    titled = actions.create_project(lib, title="My own title", story_text=story)
    outcome = actions.split_story(lib, titled.id, titled.version, story)
    assert outcome.title is None and outcome.project.pages[0].text == "The Lighthouse Fox"


def test_the_title_follows_its_line_and_a_renamed_book_is_not_told_otherwise(lib):
    story = "The Paper Boat\n\nMara folded a boat. It sailed away."
    project = actions.create_project(lib, story_text=story)
    project = actions.split_story(lib, project.id, project.version, story).project
    assert project.title == "The Paper Boat"
    # The line edited in the story box renames the book, and the message says so truthfully.
    outcome = actions.save_story_text(lib, project.id, project.version, story.replace("Boat", "Kite", 1))
    assert outcome.project.title == "The Paper Kite" and outcome.project.title_from_text
    assert "The first line, “The Paper Kite”, is the book's title." in outcome.message
    # A book renamed in its details keeps that name: an edit of the line does not claim the line is the title.
    renamed = lib.update_project(project.id, outcome.project.version, title="Mara's Boat")
    outcome = actions.save_story_text(lib, project.id, renamed.version, outcome.project.story_text + " The end.")
    assert outcome.project.title == "Mara's Boat" and "is the book's title" not in outcome.message
    edited = outcome.project.story_text.replace("Kite", "Plane", 1)
    outcome = actions.save_story_text(lib, project.id, outcome.project.version, edited)
    assert outcome.project.title == "Mara's Boat" and "is the book's title" not in outcome.message


def test_an_emptied_story_box_is_not_saved_over_the_pages(lib):
    project = _story(lib)
    with pytest.raises(InputError, match="every page is kept"):
        actions.save_story_text(lib, project.id, project.version, "  \n ")
    assert lib.get_project(project.id) == project


def test_keeping_a_picture_for_new_words_is_one_step_also_undone_from_older_steps(lib):
    from sqlalchemy import select

    from storage import history
    from storage.models import History

    project = _story(lib)
    first = project.pages[0]
    picture = lib.add_picture(first.id, _png(2), {"seed": 2, "page_text": first.text})
    project = actions.edit_page(
        lib,
        first,
        lib.get_project(project.id).version,
        text="Pip lived on a rock.",
        prompt="",
        negative_prompt="",
        seed="",
        locked=False,
    ).project
    assert project.pages[0].selected.words_changed
    kept = actions.keep_picture_for_words(lib, picture.id, project.version)
    assert kept.undo == "Keep a picture for new words" and not kept.pages[0].selected.words_changed
    # Steps saved before pictures could be kept for new words name five fields per picture: such a step, undone
    # to, gives back a picture kept for no words (the step before this one is made such a step).
    with lib._write() as session:
        row = session.scalar(select(History).where(History.project_id == project.id, History.seq == 2))
        state = history._unpack(row.snapshot)
        assert [r[5] for r in state["pictures"]] == [None]
        state["pictures"] = [r[:5] for r in state["pictures"]]
        row.snapshot = history._pack(state)
    undone, message = actions.undo(lib, project.id, kept.version)
    assert message == "Undone: Keep a picture for new words."
    assert undone.pages[0].selected.words_changed and "kept_for_words" not in undone.pages[0].selected.meta
    redone, _ = actions.redo(lib, project.id, undone.version)
    assert redone.pages[0].selected.meta["kept_for_words"] == "Pip lived on a rock."
