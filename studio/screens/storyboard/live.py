"""The board while pictures are drawn: the cards shown (a window of a long story), the job panel, and the
fragment that follows a running job and redraws only the cards it draws, as their pictures arrive."""

from __future__ import annotations

import dataclasses
import time
from functools import partial

import streamlit as st

from engine.jobs import JobInfo
from storage import PageView, StorageError
from studio import actions, ui
from studio.screens.storyboard.cards import grid, picture_area
from studio.screens.storyboard.common import BOARD_WINDOW
from studio.screens.storyboard.tray import bin_section, tray
from studio.ui import Editing

ENDED_PAUSE_S = 0.2  # from a job's end drawn by the fragment to the full run that follows it


def _drawing_outcome(last: JobInfo) -> None:
    if last.meta.get("finishing") and last.status.value == "done":
        st.success(
            f"Done: {ui.plural(last.results, 'draft')} finished; each draft stays among its page's versions.",
            icon=":material/celebration:",
        )
    elif last.status.value == "done":
        st.success(f"Done: {ui.plural(last.results, 'picture')} drawn and saved.", icon=":material/celebration:")
    elif last.status.value == "cancelled":
        kept = f"{ui.plural(last.results, 'picture')} drawn before that {'is' if last.results == 1 else 'are'} kept"
        st.info(f"Stopped. {kept}.", icon=":material/stop_circle:")
    else:
        st.error((last.error or "Drawing stopped.") + " Pictures already drawn are kept.", icon=":material/error:")


def job_panel(jobs: list[JobInfo]) -> None:
    ui.job_panel(jobs, stop_note="Stopping… every picture already drawn is kept.", outcome=_drawing_outcome)


def _window_label(windows: list[tuple[int, int]], i: int) -> str:
    first, end = windows[i]
    return f"Pages {first + 1}–{end}" if end - first > 1 else f"Page {first + 1}"


def shown_pages(project_id: int, pages: list[PageView]) -> list[PageView]:
    """The pages whose cards this run draws: all of them, or for a long story BOARD_WINDOW at a time, picked above
    the cards. A card costs a few dozen elements; a 120-page story drawn whole took a third of a second a run, and
    every click and picture waited for it (issue 16)."""
    if len(pages) <= BOARD_WINDOW:
        return pages
    windows = [(start, min(start + BOARD_WINDOW, len(pages))) for start in range(0, len(pages), BOARD_WINDOW)]
    key = f"sb.window.{project_id}"
    if st.session_state.get(key, 0) >= len(windows):  # the story got shorter
        st.session_state[key] = len(windows) - 1
    i = st.selectbox(
        "Show pages",
        options=list(range(len(windows))),
        key=key,
        format_func=partial(_window_label, windows),
        help=f"A long story's cards are shown {BOARD_WINDOW} pages at a time.",
    )
    first, end = windows[i]
    st.caption(f"Showing pages {first + 1}–{end} of {len(pages)}.")
    return pages[first:end]


def board(edit: Editing, profile, not_ready: str | None) -> tuple[object, dict[int, object]] | None:
    """The page cards, as stored now. While a job draws, returns the job panel's place and the places of the cards
    it draws, which follow_jobs (a fragment) then redraws alone as their pictures arrive."""
    try:
        live = ui.read_project(edit.lib, edit.project_id)  # the view read at the top, unless a picture came since
    except StorageError as exc:
        st.error(exc.message, icon=":material/error:")
        return None
    edit = dataclasses.replace(edit, base=ui.base_version(live))  # as behind_another_tab() left it above
    jobs = actions.project_jobs(edit.project_id)
    panel = st.empty()
    drawing = actions.drawing_page_ids(edit.project_id)
    slots: dict[int, object] = {}
    pages = shown_pages(edit.project_id, live.pages)
    grid(edit, live, pages, drawing, slots, profile, not_ready)
    tray(edit, live)
    bin_section(edit, live)
    if any(not j.finished for j in jobs):
        return panel, slots
    with panel.container():
        job_panel(jobs)
    return None


def _live_key(project_id: int) -> str:
    return f"sb.live.{project_id}"


@dataclasses.dataclass(frozen=True)
class _Live:
    """What the fragment shows of the running jobs: the jobs, and each followed card's page and state."""

    jobs: list[JobInfo]
    cards: list[tuple[object, PageView, str | None]]  # (slot, page as stored now, "drawing" / "waiting" / None)

    @property
    def running(self) -> bool:
        return any(not job.finished for job in self.jobs)

    def shown(self) -> tuple:
        """What a person sees of this, as (the cards and the jobs' states, the progress bars): ui.worth_drawing."""
        cards = tuple(
            (page.id, page.selected.id if page.selected is not None else None, len(page.pictures), state)
            for _, page, state in self.cards
        )
        states, bars = ui.jobs_shown(self.jobs)
        return (cards, states), bars


def follow_jobs(edit: Editing, panel, slots: dict[int, object]) -> None:
    """While this story's pictures are drawn: wait on the worker and redraw the cards being drawn, and nothing else,
    when a picture is saved; the progress panel with them (its Stop button may be drawn only once a run). Called by
    the full run first, which draws the cards at once, then as a fragment (ui.live_news: a run with nothing new to
    show sends nothing; the pictures of a batch are drawn together). When the last job ends, its pictures and
    outcome are drawn and sent first, then one full run redraws the rest of the page (its buttons) (issue 16)."""
    key = _live_key(edit.project_id)
    since = ui.live_news(key)
    live = _read(edit, slots)
    shown = live.shown()
    if live.running:
        ui.live_unchanged(key, since, shown)
    for slot, page, state_now in live.cards:
        with slot.container():
            picture_area(page, state_now)
    with panel.container():
        job_panel(live.jobs)
    if not live.running:
        # The last job ended: its last pictures and its outcome go to the browser first (a moment to be sent and
        # drawn), then one full run redraws the page with its buttons ready again.
        st.session_state.pop(key, None)
        time.sleep(ENDED_PAUSE_S)
        ui.rerun_to_follow()
    ui.live_drawn(key, since, shown)


def _read(edit: Editing, slots: dict[int, object]) -> _Live:
    """The followed cards' pages as stored now, and the jobs read just before."""
    jobs = actions.project_jobs(edit.project_id)
    drawing = actions.drawing_page_ids(edit.project_id)
    try:
        pages = {page.id: page for page in edit.lib.get_pages(edit.project_id, list(slots))}
    except StorageError:
        return _Live(jobs, [])
    first_waiting = next((page_id for page_id in _drawing_order(jobs) if page_id in drawing), None)
    cards = []
    for page_id, slot in slots.items():
        page = pages.get(page_id)
        if page is not None:
            state_now = None if page_id not in drawing else ("drawing" if page_id == first_waiting else "waiting")
            cards.append((slot, page, state_now))
    return _Live(jobs, cards)


def _drawing_order(jobs: list[JobInfo]) -> list[int]:
    """The pages of the unfinished jobs, in the order the worker draws them."""
    order: list[int] = []
    for job in jobs:
        if not job.finished:
            done = job.results // max(1, int(job.meta.get("candidates", 1)))  # every candidate is a result
            ids = list(job.meta.get("page_ids", ()))
            order.extend(ids[done:])
    return order


def show_board(edit: Editing, profile, not_ready: str | None) -> None:
    """The cards, the tray and the bin; while a job draws this story's pictures, the fragment that follows it."""
    following = board(edit, profile, not_ready)
    if following is not None:  # pictures are being drawn: follow them as they arrive
        st.session_state.pop(_live_key(edit.project_id), None)  # this run drew everything: the live part starts here
        st.fragment(follow_jobs, run_every=ui.LIVE_EVERY_S)(edit, *following)
