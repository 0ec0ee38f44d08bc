"""Issue 16, a studio that answers at once: the settings and helpers that keep a click's answer quick.

The end-to-end figures come from `python -m benchmarks.studio` (docs/benchmarks.md), not from timed tests."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from studio.screens.storyboard.common import BOARD_WINDOW

ROOT = Path(__file__).resolve().parents[1]


def test_no_full_garbage_collection_after_every_run():
    # Streamlit's default gc.collect(2) after each run walks every object torch and diffusers made: a quarter of a
    # second or more of held GIL per run, fragment ticks included (profiled in issue 16).
    config = tomllib.loads((ROOT / "studio" / ".streamlit" / "config.toml").read_text())
    assert config["runner"]["postScriptGC"] is False
    # Nor a walk of every loaded module after each run by the source file watcher (the studio's files do not change
    # while a person uses it).
    assert config["server"]["fileWatcherType"] == "none"


HOME = str(ROOT / "studio" / "Home.py")


def _storyboard(project_id: int):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(HOME, default_timeout=60)
    at.query_params["project"] = str(project_id)
    at.run()
    at.switch_page("screens/storyboard.py")
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.fixture(scope="module")
def lib(tiny_models):
    from storage import Library

    return Library()


def _long_story(lib, pages: int):
    from studio import actions

    story = "\n\n".join(f"Page {n} tells of a fox. It runs far." for n in range(1, pages + 1))
    project = actions.create_project(lib, story_text=story)
    return actions.split_story(lib, project.id, project.version, story, sentences=2).project


def _cards(at) -> list[str]:
    return sorted(b.key for b in at.button if b.key and b.key.startswith("new."))


def test_a_long_story_shows_its_cards_a_window_at_a_time_and_every_page_stays_reachable(lib):
    project = _long_story(lib, BOARD_WINDOW + 5)
    at = _storyboard(project.id)
    ids = [page.id for page in project.pages]
    assert _cards(at) == sorted(f"new.{i}" for i in ids[:BOARD_WINDOW])
    picker = at.selectbox(key=f"sb.window.{project.id}")
    assert picker.options == [f"Pages 1–{BOARD_WINDOW}", f"Pages {BOARD_WINDOW + 1}–{BOARD_WINDOW + 5}"]
    picker.set_value(1).run()
    assert _cards(at) == sorted(f"new.{i}" for i in ids[BOARD_WINDOW:])
    shown = f"Showing pages {BOARD_WINDOW + 1}–{BOARD_WINDOW + 5} of {BOARD_WINDOW + 5}."
    assert shown in [c.value for c in at.caption]

    # The story gets shorter than the window shown: the last window is shown, not an empty board.
    from studio import actions

    short = "\n\n".join(f"Page {n} tells of a fox. It runs far." for n in range(1, 4))
    stored = lib.get_project(project.id)
    actions.split_story(lib, project.id, stored.version, short, sentences=2)
    at.run()
    assert not at.exception, at.exception
    assert len(_cards(at)) == 3


def test_a_run_with_nothing_changed_reads_the_story_only_as_a_stamp(lib, monkeypatch):
    from storage import Library

    project = _long_story(lib, 6)
    at = _storyboard(project.id)
    reads: list[int] = []
    whole = Library.get_project

    def counted(self, project_id):
        reads.append(project_id)
        return whole(self, project_id)

    monkeypatch.setattr(Library, "get_project", counted)
    at.run()
    assert reads == []  # sidebar, screen and board all use the view read before: its stamp has not moved
    page = project.pages[0]
    lib.add_picture(page.id, _png(), {"seed": 3})  # a job's picture moves the stamp
    at.run()
    assert reads == [project.id]  # read whole once, for the whole run
    assert any(c.value.startswith("Version 1 of 1") for c in at.caption)


def _png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), "orange").save(buffer, "PNG")
    return buffer.getvalue()


def _picture_job(project, page, *, quick: bool, pages=None):
    """A picture job on the real worker, as New picture submits it: quick saves the page's picture at once; a
    slow one draws until it is stopped."""
    import time

    from engine.jobs import get_worker
    from studio import actions

    def run(ctx) -> None:
        ctx.progress(0, 1, message="Drawing… 0 of 1 picture ready")
        if quick:
            time.sleep(0.05)
            ctx.emit(page.id)
            return
        while not ctx.cancelled:
            time.sleep(0.02)
        ctx.check_cancel()

    from storage import Library

    lib = Library()
    return get_worker().submit(
        run,
        kind=actions.KIND_ILLUSTRATE,
        label="1 picture",
        total=1,
        on_result=lambda page_id: lib.add_picture(page_id, _png(), {"seed": 7}),
        meta={"project_id": project.id, "page_ids": tuple(pages or (page.id,))},
    )


def test_a_quick_picture_is_drawn_in_the_run_its_click_started(lib):
    # The run after a click waits (briefly) for the picture job it started: the page is drawn once, with the new
    # version and no live fragment, instead of a "Drawing…" card that a fragment and a second full run replace.
    project = _long_story(lib, 3)
    at = _storyboard(project.id)
    _picture_job(project, project.pages[0], quick=True)
    at.run()
    assert not at.exception, at.exception
    assert any(c.value.startswith("Version 1 of 1") for c in at.caption)
    assert "Drawing a new picture…" not in [i.value for i in at.info]
    assert not list(at.get("progress"))  # the job is over: no panel following it


def test_a_long_picture_job_is_followed_live_and_older_ones_cost_a_run_no_wait(lib, monkeypatch):
    from engine.jobs import JobWorker, get_worker
    from studio import ui

    project = _long_story(lib, 3)
    at = _storyboard(project.id)
    job_id = _picture_job(project, project.pages[0], quick=False)
    try:
        at.run()  # waits QUICK_JOB_S at most, then shows the job being drawn
        assert not at.exception, at.exception
        assert "Drawing a new picture…" in [i.value for i in at.info]
        assert list(at.get("progress"))
        waits: list[float] = []
        real_wait = JobWorker.wait_for_change

        def counted(self, since, timeout):
            waits.append(timeout)
            return real_wait(self, since, timeout)

        monkeypatch.setattr(JobWorker, "wait_for_change", counted)
        ui.let_quick_jobs_finish()  # the job started more than QUICK_JOB_S ago: no wait
        assert waits == []
    finally:
        get_worker().cancel(job_id)
        get_worker().wait(job_id, timeout=30)
    # A job for several pages (Illustrate all) is followed live from its first run: no wait even when just started.
    job_id = _picture_job(project, project.pages[0], quick=False, pages=[p.id for p in project.pages])
    try:
        ui.let_quick_jobs_finish()
        assert waits == []
    finally:
        get_worker().cancel(job_id)
        get_worker().wait(job_id, timeout=30)


def _clicks_script():
    import streamlit as st

    from studio import ui

    done = st.session_state.setdefault("done", [])
    for action in ("new.5", "story.split"):
        if ui.first_click(action):
            with ui.guard():
                done.append(action)


def test_new_picture_may_be_clicked_again_once_its_quick_result_shows():
    # A quick picture shows half a second after the click; a person trying seeds clicks again then. Only a click that
    # close to the last one's end is taken for a double click's second click; other actions keep the longer window.
    from streamlit.testing.v1 import AppTest

    from studio import state
    from studio.ui.clicks import DOUBLE_CLICK_S, REPEAT_CLICK_S

    at = AppTest.from_function(_clicks_script)
    at.run()
    assert at.session_state["done"] == ["new.5", "story.split"]
    at.run()  # at once: a double click's second click, for both
    assert at.session_state["done"] == ["new.5", "story.split"]
    gone = REPEAT_CLICK_S + 0.1
    assert gone < DOUBLE_CLICK_S
    at.session_state[state.RECENT_ACTIONS] = {k: v - gone for k, v in at.session_state[state.RECENT_ACTIONS].items()}
    at.run()
    assert at.session_state["done"] == ["new.5", "story.split", "new.5"]


def test_the_live_board_redraws_when_what_a_person_sees_changes_and_only_then(lib):
    # Every live redraw sends every followed card again (Streamlit clears what a fragment run leaves out), and the
    # browser's work on those messages took a core from the worker: a run with nothing new to show sends nothing.
    import io
    from dataclasses import replace

    from PIL import Image

    from engine.jobs import JobInfo, JobStatus
    from studio.screens.storyboard.live import _Live
    from studio.ui.watch import BAR_EVERY_S, PROGRESS_STEP, worth_drawing

    project = _long_story(lib, 2)
    first, second = project.pages
    job = JobInfo(
        id="j1", kind="illustrate", label="Drawing 2 pictures", status=JobStatus.RUNNING, done=10, total=100,
        message="Drawing… 0 of 2 pictures ready",
    )  # fmt: skip

    def shown(job=job, first_state="drawing", page=first):
        return _Live([job], [(None, page, first_state), (None, second, "waiting")]).shown()

    before = shown()
    assert shown(job=replace(job, done=11)) == before  # a step within the bar's PROGRESS_STEP
    assert shown(job=replace(job, done=10 + round(100 * PROGRESS_STEP))) != before  # the bar moves
    assert shown(job=replace(job, message="Drawing… 1 of 2 pictures ready")) != before
    assert shown(first_state=None) != before  # page 1 is no longer being drawn
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "navy").save(buffer, "PNG")
    lib.add_picture(first.id, buffer.getvalue(), {"seed": 1})
    drawn = next(p for p in lib.get_project(project.id).pages if p.id == first.id)
    assert shown(page=drawn) != before  # its picture arrived
    assert shown(job=replace(job, status=JobStatus.DONE)) != before
    assert _Live([job], []).running and not _Live([replace(job, status=JobStatus.DONE)], []).running

    # Drawn when what it shows changed; a move of the bar alone at most every BAR_EVERY_S (a fast machine's steps
    # come many a second, and each draw sends every card again).
    moved = shown(job=replace(job, done=10 + round(100 * PROGRESS_STEP)))
    assert worth_drawing(None, 0.0, before, 100.0)  # nothing drawn yet
    assert not worth_drawing(before, 100.0, before, 100.1)
    assert not worth_drawing(before, 100.0, moved, 100.0 + BAR_EVERY_S / 2)
    assert worth_drawing(before, 100.0, moved, 100.0 + BAR_EVERY_S)
    assert worth_drawing(before, 100.0, shown(first_state=None), 100.1)  # a card changed: at once
