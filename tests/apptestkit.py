"""The studio's screens in AppTest, as a person reaches them: a fresh session (a new tab, a refresh) on a story,
a separate click, and waiting for the jobs a click started."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

HOME = str(Path(__file__).resolve().parents[1] / "studio" / "Home.py")
TIMEOUT = 60  # the first run imports torch; the first split and the first picture load models


def open_screen(screen: str, project_id: int | None = None, timeout: float = TIMEOUT) -> AppTest:
    """A fresh session (as after a refresh, on ?project=ID when given), then studio/screens/<screen>.py.

    AppTest's switch_page clears the query string as a click in the navigation does, so the first run (on the
    library page) reads ?project= into the session, as a refreshed tab does."""
    at = AppTest.from_file(HOME, default_timeout=timeout)
    if project_id is not None:
        at.query_params["project"] = str(project_id)
    at.run()
    at.switch_page(f"screens/{screen}.py")
    at.run()
    assert not at.exception, at.exception
    return at


def click(at: AppTest, key: str) -> AppTest:
    """A person's separate click. With tiny models a test clicks again sooner than DOUBLE_CLICK_S after the same
    action, which the app would take for a double click's second; the double-click tests click directly."""
    from studio import state

    at.session_state[state.RECENT_ACTIONS] = {}
    at.button(key=key).click().run()
    assert not at.exception, at.exception
    return at


def wait_for_jobs(project_id: int, timeout: float = 300, done: bool = False) -> None:
    """Until every job of the story has ended (done=True: and ended well)."""
    from engine.jobs import get_worker

    for job in get_worker().jobs(project_id=project_id):
        info = get_worker().wait(job.id, timeout=timeout)
        assert info.finished, f"job {job.id} did not finish"
        if done:
            assert info.status.value == "done", (info.status, info.error)
