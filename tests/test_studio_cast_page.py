"""The storyboard's cast sheet, pictures per page, score badges and the last draw side by side, under AppTest
on the tiny profile (real engine, offline)."""

from __future__ import annotations

import fixtures_images as fx
import pytest
from apptestkit import open_screen
from streamlit.testing.v1 import AppTest
from widgetkit import shows_what_it_holds

from engine.jobs import get_worker
from storage import Library
from studio import actions, state

STORY = "Mara by the Sea\n\nMara lived by the sea.\n\nShe walked on the rocks. A gull flew over the water.\n"


@pytest.fixture(scope="module")
def lib(tiny_models, one_cpu_thread) -> Library:
    return Library()


def storyboard(project_id: int) -> AppTest:
    return open_screen("storyboard", project_id)


def rerun(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, at.exception
    return at


def click(at: AppTest, key: str) -> AppTest:
    at.session_state[state.RECENT_ACTIONS] = {}
    at.button(key=key).click()
    return rerun(at)


def open_popover(at: AppTest, key: str) -> AppTest:
    at.session_state[key] = True
    return rerun(at)


def wait_for_jobs(project_id: int) -> None:
    for job in get_worker().jobs(project_id=project_id):
        assert get_worker().wait(job.id, timeout=300).finished


def words(at: AppTest) -> str:
    return " ".join(e.value for e in [*at.markdown, *at.caption, *at.toast, *at.info]).replace("\\", "")


def test_pictures_per_page_scores_and_the_last_draw_side_by_side(lib):
    project = actions.create_project(lib, story_text=STORY)
    project = actions.split_story(lib, project.id, project.version, STORY).project
    at = storyboard(project.id)
    per_page = next(n for n in at.number_input if n.label == "Pictures per page")
    assert per_page.value == 1
    per_page.set_value(2)
    rerun(at)
    assert lib.get_project(project.id).candidates == 2
    assert "next draw makes 2 pictures" in words(at)

    click(at, "illustrate.all")
    assert "Each page gets 2 pictures; the best scored one becomes its picture." in words(at)
    wait_for_jobs(project.id)
    rerun(at)
    done = lib.get_project(project.id)
    assert [len(page.pictures) for page in done.pages] == [2, 2]
    text = words(at)
    assert "Book score: CLIP" in text and "over 2 of 2 pages" in text and "scored by tiny:ranker" in text
    line, _ = actions.book_score_line(actions.book_score(done))
    assert line in text  # the words the Export screen shows too
    for page in done.pages:  # each card shows its picture's score
        assert f"CLIP {actions.clip_score(page.selected):.1f}" in text

    page = done.pages[0]
    open_popover(at, f"pop.pictures.{page.id}")
    assert "The last draw: 2 pictures" in words(at)
    assert at.button(key=f"cand.{page.selected.id}").disabled
    other = next(p for p in page.pictures if not p.selected)
    click(at, f"cand.{other.id}")
    assert lib.get_project(project.id).pages[0].selected.id == other.id

    back, _ = actions.undo(lib, project.id, lib.get_project(project.id).version)  # the pick
    back, message = actions.undo(lib, project.id, back.version)
    assert back.candidates == 1 and message == "Undone: Change the pictures drawn per page."


def test_pictures_per_page_and_the_follow_slider_show_on_their_own_the_stored_values(lib):
    """The boxes "Pictures per page" and "How closely pages follow this picture" show, from their own default as
    a browser draws them, the stored values (not their minimum); values saved another way come as new widgets
    showing them."""
    project = actions.create_project(lib, story_text=STORY)
    project = actions.split_story(lib, project.id, project.version, STORY).project
    project = actions.save_characters(lib, project.id, project.version, [("Mara", "a girl in a yellow raincoat")])
    project, _ = actions.upload_reference(lib, project.id, project.version, "Mara", fx.png((48, 48)), "mara.png")
    project = actions.set_pictures_per_page(lib, project.id, project.version, 3)
    control = actions.follow_control(actions.current_profile(), project.characters[0])
    assert control is not None and control.value > control.low
    at = storyboard(project.id)
    open_popover(at, f"pop.ref.{project.id}.0")

    def widgets():
        per_page = next(n for n in at.number_input if n.label == "Pictures per page")
        return per_page, next(s for s in at.slider if s.label == control.label)

    per_page, follow = widgets()
    assert (per_page.value, follow.value) == (3, control.value)
    assert shows_what_it_holds(per_page) and shows_what_it_holds(follow), (per_page.proto, follow.proto)
    project = actions.set_pictures_per_page(lib, project.id, project.version, 5)  # as another tab would
    high = round(control.value + control.step * 3, 2)
    actions.set_reference_follow(lib, project.id, project.version, "Mara", control.method, high)
    rerun(at)
    per_page, follow = widgets()
    assert (per_page.value, follow.value) == (5, high)
    assert shows_what_it_holds(per_page) and shows_what_it_holds(follow), (per_page.proto, follow.proto)


def test_cast_sheet_draws_a_reference_offers_the_others_and_removes_it(lib):
    project = actions.create_project(lib, story_text=STORY)
    project = actions.split_story(lib, project.id, project.version, STORY).project
    project = actions.save_characters(lib, project.id, project.version, [("Mara", "a girl in a yellow raincoat")])
    at = storyboard(project.id)
    assert "Pages with a character share attention" in words(at)
    assert "No reference picture" in words(at)

    open_popover(at, f"pop.ref.{project.id}.0")
    click(at, "ref.draw.0")
    wait_for_jobs(project.id)
    rerun(at)
    mara = lib.get_project(project.id).characters[0]
    assert mara.reference_path is not None
    assert f"Reference drawn by the app (seed {mara.reference_settings['seed']})" in words(at)

    open_popover(at, f"pop.ref.{project.id}.0")
    offered = actions.proposals(lib.get_project(project.id), "Mara")
    assert len(offered) == actions.REFERENCE_CANDIDATES and "kept with the story" in words(at)
    other = next(p.index for p in offered if not p.in_use)
    click(at, f"ref.prop.0.{other}")
    assert lib.get_project(project.id).characters[0].reference_settings["seed"] == offered[other].settings["seed"]

    # A new tab (nothing in memory) still offers them; one is removed, and Undo brings it back.
    at = storyboard(project.id)
    open_popover(at, f"pop.ref.{project.id}.0")
    dropped = next(p.index for p in offered if not p.in_use)
    click(at, f"ref.prop.rm.0.{dropped}")
    assert len(actions.proposals(lib.get_project(project.id), "Mara")) == len(offered) - 1
    assert "no longer on offer" in words(at)
    back, _ = actions.undo(lib, project.id, lib.get_project(project.id).version)
    assert len(actions.proposals(back, "Mara")) == len(offered)

    # How closely pages follow the picture: shared attention on the tiny profile, saved on change, undoable.
    at = storyboard(project.id)
    open_popover(at, f"pop.ref.{project.id}.0")
    slider = next(s for s in at.slider if s.label == "How closely pages follow this picture")
    assert slider.value == 0.5 and "shared attention" in slider.help
    slider.set_value(0.25)
    rerun(at)
    mara = lib.get_project(project.id).characters[0]
    assert mara.reference_settings["share_rate"] == 0.25
    assert actions.plan_drawing(lib.get_project(project.id), actions.current_profile()).references[0].share_rate == 0.25

    # The person's own picture: read by the hardened loader; on the tiny profile its IP-Adapter looks at it.
    open_popover(at, f"pop.ref.{project.id}.0")
    uploader = next(u for u in at.file_uploader if u.label.startswith("Upload a picture"))
    uploader.set_value(("mara.png", fx.png((48, 48)), "image/png"))
    rerun(at)
    click(at, "ref.upload.go.0")
    mara = lib.get_project(project.id).characters[0]
    # No seed or prompt (an upload); how closely pages follow a reference stays the person's choice.
    assert mara.reference_path is not None and mara.reference_settings == {"share_rate": 0.25}
    assert "Reference: your own picture." in words(at) and "is your picture" in words(at)

    open_popover(at, f"pop.ref.{project.id}.0")
    click(at, "ref.remove.0")
    assert lib.get_project(project.id).characters[0].reference_path is None
    assert "has no reference picture now" in words(at)


def test_the_cast_sheet_measures_each_characters_likeness_and_says_what_it_is(lib):
    project = actions.create_project(lib, story_text=STORY)
    project = actions.split_story(lib, project.id, project.version, STORY).project
    project = actions.save_characters(lib, project.id, project.version, [("Mara", "a girl in a yellow raincoat")])
    at = storyboard(project.id)
    assert "Likeness not measured yet." in words(at)
    assert not [b for b in at.button if b.key == "cast.measure"]  # nothing drawn: nothing to measure
    actions.illustrate_all(lib, project.id, project.version)
    wait_for_jobs(project.id)
    at = storyboard(project.id)
    button = at.button(key="cast.measure")
    assert "DINOv2" in button.help and "meaningless" in button.help
    click(at, "cast.measure")
    for job in actions.likeness_jobs(project.id, active_only=False):
        assert get_worker().wait(job.id, timeout=300).status.value == "done"
    rerun(at)
    mara = lib.get_project(project.id).characters[0]
    assert mara.likeness["pictures"] == 2 and mara.likeness["model"] == "tiny:consistency"
    line = next(c for c in at.caption if "Likeness" in c.value)
    assert f"Likeness {mara.likeness['score']:.1f} across 2 pages" in line.value.replace("\\", "")
    assert line.help == actions.LIKENESS_HELP
