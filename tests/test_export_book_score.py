"""The Export screen shows the book's CLIP score in the storyboard's words (actions.book_score_line), and
"Judge the book" has the profile's judge score the pictures in use on the worker (tiny profile, AppTest)."""

from __future__ import annotations

import fixtures_images as fx
import pytest
from apptestkit import TIMEOUT, open_screen
from streamlit.testing.v1 import AppTest

from engine.jobs import get_worker
from storage import Library, PageInput
from studio import actions, state

PAGES = ["Mira planted a silver seed.", "The seed grew into a moon flower.", "Everyone came to look at it."]


@pytest.fixture(scope="module")
def lib(tiny_models, one_cpu_thread) -> Library:
    return Library()


def book(lib: Library, scores: list[float]):
    text = " ".join(PAGES)
    project = lib.create_project("The Moon Garden", story_text=text)
    inputs, at = [], 0
    for page in PAGES:
        start = text.index(page, at)
        inputs.append(PageInput(page, start, start + len(page)))
        at = start + len(page)
    project = lib.save_story(project.id, project.version, text, inputs)
    for page, score in zip(project.pages, scores):
        lib.add_picture(
            page.id,
            fx.encode(fx.gradient((64, 64))),
            {"seed": page.position},
            meta={"scores": {"clip": score}, "score_model": "tiny:ranker"},
        )
    return lib.get_project(project.id)


def export_page(project_id: int) -> AppTest:
    return open_screen("export", project_id, timeout=TIMEOUT)


def captions(at: AppTest) -> list[str]:
    return [c.value.replace("\\", "") for c in at.caption]


def test_the_export_screen_shows_the_book_score_as_the_storyboard_words_it_and_judges_the_book(lib):
    project = book(lib, [21.5, 30.25])
    at = export_page(project.id)
    line, help_text = actions.book_score_line(actions.book_score(project))
    assert line.startswith("Book score: CLIP 25.9 (95 % interval") and "over 2 of 3 pages" in line
    shown = [c for c in at.caption if c.value.replace("\\", "") == line]
    assert shown and shown[0].help == help_text
    assert "the model that chose the pictures" in line

    at.session_state[state.RECENT_ACTIONS] = {}
    at.button(key="export.judge").click().run()
    assert not at.exception, at.exception
    for job in actions.judge_jobs(project.id, active_only=False):
        assert get_worker().wait(job.id, timeout=300).status.value == "done"
    at.run()
    judged = lib.get_project(project.id)
    summary = actions.book_score(judged)
    assert summary["role"] == "judge" and summary["n"] == 2 and summary["models"] == ["tiny:judge"]
    line, _ = actions.book_score_line(summary)
    assert line in captions(at) and line.endswith("· judged by tiny:judge")
    assert not [b for b in at.button if b.key == "export.judge"]  # every picture in use is judged


def test_a_book_without_scores_shows_no_score_line(lib):
    project = book(lib, [])
    at = export_page(project.id)
    assert not [c for c in captions(at) if c.startswith("Book score")]
