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


QUICK_JOB_S = 0.6  # how long after a picture job's start a run waits for it before drawing the page


def let_quick_jobs_finish() -> None:
    """In a run right after a picture job started (a click on New picture, Redraw, Illustrate all), give the job
    until QUICK_JOB_S after its start before the page is drawn. A picture that takes a moment (the tiny profile, a
    GPU) is then on the page that this one run draws, with no live fragment and no second full run after it, each
    of which the browser would draw again (issue 16). A longer job is followed live as before; while an older job
    runs (a long one, another tab's) a run waits for nothing."""
    jobs_worker = worker()
    while True:
        revision = jobs_worker.revision
        active = jobs_worker.jobs(kind=KIND_ILLUSTRATE, active_only=True)
        if not active:
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
