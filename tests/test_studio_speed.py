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


def _picture_job(project, page, *, quick: bool):
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
        meta={"project_id": project.id, "page_ids": (page.id,)},
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
