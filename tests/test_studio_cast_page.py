"""The storyboard's cast sheet, pictures per page, score badges and the last draw side by side, under AppTest
on the tiny profile (real engine, offline)."""

from __future__ import annotations

from pathlib import Path

import fixtures_images as fx
import pytest
from streamlit.testing.v1 import AppTest

from engine.jobs import get_worker
from storage import Library
from studio import actions, state

HOME = str(Path(__file__).resolve().parents[1] / "studio" / "Home.py")
TIMEOUT = 60
STORY = "Mara by the Sea\n\nMara lived by the sea.\n\nShe walked on the rocks. A gull flew over the water.\n"


@pytest.fixture(scope="module")
def lib(tiny_models, one_cpu_thread) -> Library:
    return Library()


def storyboard(project_id: int) -> AppTest:
    at = AppTest.from_file(HOME, default_timeout=TIMEOUT)
    at.query_params["project"] = str(project_id)
    at.run()
    at.switch_page("screens/storyboard.py")
    at.run()
    assert not at.exception, at.exception
    return at


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
    return " ".join(e.value for e in [*at.markdown, *at.caption, *at.toast, *at.info])


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
    offered = actions.proposals(project.id, "Mara")
    other = next(k for k, p in enumerate(offered) if not p.chosen)
    click(at, f"ref.prop.0.{other}")
    assert lib.get_project(project.id).characters[0].reference_settings["seed"] == offered[other].settings["seed"]

    # The person's own picture: read by the hardened loader; on the tiny profile its IP-Adapter looks at it.
    open_popover(at, f"pop.ref.{project.id}.0")
    uploader = next(u for u in at.file_uploader if u.label.startswith("Upload a picture"))
    uploader.set_value(("mara.png", fx.png((48, 48)), "image/png"))
    rerun(at)
    click(at, "ref.upload.go.0")
    mara = lib.get_project(project.id).characters[0]
    assert mara.reference_path is not None and mara.reference_settings is None
    assert "Reference: your own picture." in words(at) and "is your picture" in words(at)

    open_popover(at, f"pop.ref.{project.id}.0")
    click(at, "ref.remove.0")
    assert lib.get_project(project.id).characters[0].reference_path is None
    assert "has no reference picture now" in words(at)
