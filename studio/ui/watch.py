"""Screens that follow what other tabs and jobs do: a small fragment polls a cheap stamp and redraws the whole
screen when it no longer matches what the screen was drawn from."""

from __future__ import annotations

import time
from collections.abc import Callable

import streamlit as st

from storage import ProjectView, StorageError
from studio.actions import KIND_ILLUSTRATE
from studio.ui.editors import rerun_to_follow
from studio.ui.resources import library, worker

WATCH_EVERY_S = 2.0
IDLE_AFTER_S = 3.0

# A live fragment follows running jobs (the storyboard's cards, From images' story panel): it runs again LIVE_EVERY_S
# after each run, and each run waits on the worker for up to LIVE_WAIT_S (a click queued behind it waits no longer).
LIVE_EVERY_S = 0.05
LIVE_WAIT_S = 0.3
BURST_S = 0.05  # changes this close together are drawn together (a batch saving its pictures)
SEND_PAUSE_S = 0.03  # at the end of a live run that drew something: for it to be sent before the next run starts
PROGRESS_STEP = 0.05  # a live progress bar moves in steps of this
BAR_EVERY_S = 0.5  # and a change of the bar alone is drawn at most this often (each draw sends every card again)


def live_news(key: str) -> int:
    """The start of a live fragment's run: the worker's revision to draw from. In a full run (no record under
    `key`: the full run pops it) that is the revision now. In a fragment run it waits for the worker to change (up
    to LIVE_WAIT_S, then for a burst of changes to end); when nothing changed it starts the run over at once,
    sending nothing (st.rerun(scope="fragment"): unlike a run that ends, a run stopped for a rerun clears nothing
    on the page, and every message costs the browser work on the cores the models use). So a widget inside such a
    fragment acts in a callback (a run that draws nothing would lose an `if st.button(...)` click).

    Each run that goes on to draw calls live_unchanged() with what it would show (a pair: what the screen shows,
    and its progress bars, jobs_shown), and live_drawn() after drawing."""
    jobs_worker = worker()
    last = st.session_state.get(key)
    if last is None:
        return jobs_worker.revision
    since = last[0]
    revision = jobs_worker.wait_for_change(since, LIVE_WAIT_S)
    if revision == since:
        st.rerun(scope="fragment")
    while revision != since:
        since = revision
        revision = jobs_worker.wait_for_change(since, BURST_S)
    return since


def worth_drawing(drawn: tuple | None, drawn_at: float, shown: tuple, now: float) -> bool:
    """Whether a live run should draw `shown` ((what the screen shows, its progress bars)) after `drawn` was drawn at
    `drawn_at`: when what it shows changed, or its bars alone moved and BAR_EVERY_S has passed (on a fast machine a
    job's steps come many a second, and each draw sends every followed card again)."""
    if drawn is None or drawn[0] != shown[0]:
        return True
    return drawn[1] != shown[1] and now - drawn_at >= BAR_EVERY_S


def live_unchanged(key: str, since: int, shown: tuple) -> None:
    """Start the run over, sending nothing, when the last run's drawing will do (see live_news, worth_drawing)."""
    last = st.session_state.get(key)
    if last is not None and not worth_drawing(last[1], last[2], shown, time.monotonic()):
        st.session_state[key] = (since, last[1], last[2])
        st.rerun(scope="fragment")


def live_drawn(key: str, since: int, shown: tuple) -> None:
    """The end of a live run that drew `shown`: remembered, and a moment for the messages to be sent (the next run,
    asked for already by run_every, starts as soon as this one ends, and Streamlit drops what is not yet sent)."""
    st.session_state[key] = (since, shown, time.monotonic())
    time.sleep(SEND_PAUSE_S)


def jobs_shown(jobs: list) -> tuple[tuple, tuple]:
    """What a progress panel shows of these jobs, as (their states and messages, their bars in PROGRESS_STEP)."""
    states = tuple((job.id, job.status.value, job.results, job.message, job.stopping) for job in jobs)
    return states, tuple(round(job.fraction / PROGRESS_STEP) for job in jobs)


QUICK_JOB_S = 0.6  # how long after a picture job's start a run waits for it before drawing the page
QUICK_JOB_PAGES = 1  # ... when it draws this many pages at most (New picture, Redraw; Illustrate all is followed live)


def let_quick_jobs_finish() -> None:
    """In a run right after a picture job for one page started (a click on New picture or Redraw), give the job
    until QUICK_JOB_S after its start before the page is drawn. A picture that takes a moment (the tiny profile, a
    GPU) is then on the page that this one run draws, with no live fragment and no second full run after it, each
    of which the browser would draw again (issue 16). A longer job is followed live as before, and so is one that
    draws several pages (on a CPU, Illustrate all takes seconds: its first run shows the cards being drawn at once);
    while an older job runs (a long one, another tab's) a run waits for nothing."""
    jobs_worker = worker()
    while True:
        revision = jobs_worker.revision
        active = jobs_worker.jobs(kind=KIND_ILLUSTRATE, active_only=True)
        if not active or any(len(job.meta.get("page_ids", ())) > QUICK_JOB_PAGES for job in active):
            return
        left = min(job.created for job in active) + QUICK_JOB_S - time.time()
        if left <= 0:
            return
        jobs_worker.wait_for_change(revision, left)


def _project_jobs(project_id: int) -> tuple[str, ...]:
    return tuple(j.id for j in worker().jobs(active_only=True, project_id=project_id))


def watch(read: Callable[[], object], drawn_from: object, on_idle: Callable[[], object] | None = None) -> None:
    """Redraw the whole screen when ``read()`` no longer gives what the screen was drawn from.

    Every WATCH_EVERY_S a small fragment calls ``read`` (a cheap query); a StorageError reads as None
    (deleted, or the library cannot be read: the full run says which). ``on_idle`` is called when nothing
    changed and the screen has shown unchanged for IDLE_AFTER_S (background work that should not compete with
    a person who is busy typing and clicking).
    """
    drawn_at = time.monotonic()

    @st.fragment(run_every=WATCH_EVERY_S)
    def check() -> None:
        try:
            now = read()
        except StorageError:
            now = None
        if now != drawn_from:
            rerun_to_follow()
        if on_idle is not None and time.monotonic() - drawn_at >= IDLE_AFTER_S:
            on_idle()

    check()


def watch_project(project: ProjectView, on_idle: Callable[[], object] | None = None) -> None:
    """Keep a tab where nothing runs up to date with what another tab or window does to its story.

    The screen polls only while this tab knows of a job, so without this a second tab would show old
    pictures and would learn of an edit only when its own save was refused. The story's (version,
    updated) and its running jobs are compared with what the screen was drawn from: pictures being drawn
    appear and are followed, an edit is taken (or, over unsaved typing, announced), a deleted story
    says so.
    """
    watch(
        lambda: (library().project_stamp(project.id), _project_jobs(project.id)),
        ((project.version, project.updated), _project_jobs(project.id)),
        on_idle,
    )


def watch_library() -> None:
    """Keep the library screen current with stories made, changed or deleted in another tab or window.
    Call it before the projects are listed, so a change made while they are read is caught next time."""
    stamp = library().library_stamp
    watch(stamp, stamp())
