"""Shared widgets and helpers of the studio's pages: the library and worker, the open project, errors.

Pages stay thin: they lay out widgets and call the Library (storage's API) or studio.actions.
"""

from __future__ import annotations

import itertools
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

import streamlit as st
from streamlit.runtime.scriptrunner_utils.exceptions import RerunException, StopException

from core.errors import UserError
from storage import ConflictError, Library, NotFound, ProjectView, StorageError
from studio import actions, state

# ----------------------------------------------------------------------- shared, thread-safe resources


@st.cache_resource(show_spinner=False)
def _library_for(home: str) -> Library:
    return Library(home or None)


def library() -> Library:
    """The process-wide Library (thread-safe: one short Session per call), one per data folder."""
    return _library_for(os.environ.get("STORYBOOK_HOME", "").strip())


@st.cache_resource(show_spinner=False, validate=lambda worker: worker.alive)
def worker():
    from engine.jobs import get_worker

    return get_worker()


# ------------------------------------------------------------------------------------ messages


# --- bookkeeping that a second click cannot cut short ----------------------------------------------
# Streamlit stops a run at its next st.* call or st.session_state access once another run is asked for
# (a second click, a keystroke elsewhere). After an action has saved something, the run must still
# record the version it produced and its message, or the next run thinks another tab changed the
# story. So guard() fetches the session's containers BEFORE the action and the bookkeeping after it
# mutates them as plain Python objects, which cannot be interrupted.


class _Books:
    def __init__(self) -> None:
        self.versions: dict = st.session_state.setdefault(state.BASE_VERSION, {})
        self.flash: list = st.session_state.setdefault(state.FLASH, [])
        self.recent: dict = st.session_state.setdefault(state.RECENT_ACTIONS, {})
        self.action: str | None = None


_books: ContextVar[_Books | None] = ContextVar("storybook_books", default=None)
_pending_action: ContextVar[str | None] = ContextVar("storybook_action", default=None)
DOUBLE_CLICK_S = 1.5  # a second click on the same action within this time of the first one's end is ignored


def first_click(action: str) -> bool:
    """False for the second click of a double click (the same action, just done in this session).

    Use as ``if st.button(...) and ui.first_click("name"):`` with a ``ui.guard()`` block under it; the
    guard records when the action ended, even if the run is cut short after it.
    """
    recent = st.session_state.setdefault(state.RECENT_ACTIONS, {})
    last = recent.get(action)
    if last is not None and time.monotonic() - last < DOUBLE_CLICK_S:
        return False
    _pending_action.set(action)
    return True


def flash(kind: str, message: str) -> None:
    """A message shown once, at the top of the next run (survives st.rerun and page switches)."""
    books = _books.get()
    (books.flash if books is not None else st.session_state.setdefault(state.FLASH, [])).append((kind, message))


def show_flash() -> None:
    messages = st.session_state.setdefault(state.FLASH, [])
    pending = list(messages)
    messages.clear()  # the same list object stays in the session, so guard() may hold it
    # Always one container, with or without messages: elements after it keep their place in the page, so
    # the run after a message does not rebuild (and close) an open popover and empty its file uploader.
    with st.container():
        for kind, message in pending:
            {"success": st.success, "info": st.info, "warning": st.warning, "error": st.error}[kind](
                message, icon=_ICONS[kind]
            )


_ICONS = {
    "success": ":material/check_circle:",
    "info": ":material/info:",
    "warning": ":material/warning:",
    "error": ":material/error:",
}
_guard_ids = itertools.count()
ERROR_ICON = ":material/error:"


@contextmanager
def guard(project_id: int | None = None) -> Iterator[None]:
    """Show a person's error as one st.error sentence (never a traceback); a stale tab gets a Reload button.

    Inside it, set_base_version() and flash() cannot be cut short by a second click (see _Books).
    """
    books = _Books()
    books.action = _pending_action.get()
    _pending_action.set(None)
    token = _books.set(books)
    failed = True
    try:
        yield
        failed = False
    except (RerunException, StopException):
        failed = False  # st.rerun() after the action, or the next click cutting the run short
        raise
    except ConflictError as exc:
        st.error(exc.message, icon=":material/sync_problem:")
        if project_id is not None:
            st.button(
                "Reload the latest version",
                key=f"reload.{next(_guard_ids)}",
                icon=":material/refresh:",
                on_click=reload_project,
                args=(project_id,),
            )
    except NotFound as exc:
        st.error(exc.message, icon=ERROR_ICON)
    except UserError as exc:
        st.error(exc.message, icon=ERROR_ICON)
    finally:
        _books.reset(token)
        if books.action is not None and not failed:  # after a refusal the person may fix it and click at once
            books.recent[books.action] = time.monotonic()


# -------------------------------------------------------------------------------- open project


def sync_project_from_url() -> None:
    """?project=ID wins (a refresh, a bookmark, a second tab); else the session's project goes into the URL."""
    raw = st.query_params.get(state.QP_PROJECT)
    pid = None
    if raw is not None and re.fullmatch(r"\d{1,12}", str(raw).strip()):
        pid = int(str(raw).strip())
    if pid is not None:
        st.session_state[state.PROJECT_ID] = pid
    elif st.session_state.get(state.PROJECT_ID) is not None:
        st.query_params[state.QP_PROJECT] = str(st.session_state[state.PROJECT_ID])


def current_project_id() -> int | None:
    return st.session_state.get(state.PROJECT_ID)


def set_current_project(project: ProjectView | None) -> None:
    if project is None:
        st.session_state[state.PROJECT_ID] = None
        st.query_params.pop(state.QP_PROJECT, None)
        return
    st.session_state[state.PROJECT_ID] = project.id
    st.query_params[state.QP_PROJECT] = str(project.id)
    set_base_version(project)


def open_project(project: ProjectView) -> None:
    """Make the project the open one and go to its storyboard."""
    set_current_project(project)
    st.switch_page(state.SCREEN_STORYBOARD, query_params={state.QP_PROJECT: str(project.id)})


def start_sample() -> None:
    project = actions.open_sample(library())
    flash(
        "success",
        f"Here is the sample story, already split into {plural(len(project.pages), 'page')}. "
        "Press “Illustrate all” to draw every page, or change the story first.",
    )
    open_project(project)


def start_new(title: str = "", author: str = "") -> None:
    project = actions.create_project(library(), title=title, author=author)
    flash("success", "Started a new story: write or paste it below, then split it into pages.")
    open_project(project)


def load_current_project() -> ProjectView | None:
    """The open project, read fresh from storage; None (with a message) when none is open or it is gone."""
    pid = current_project_id()
    if pid is None:
        return None
    try:
        return library().get_project(pid)
    except NotFound:
        set_current_project(None)
        st.warning(
            "That story no longer exists: it may have been deleted in another tab. Pick another one from the library.",
            icon=":material/warning:",
        )
    except StorageError as exc:
        st.error(exc.message, icon=ERROR_ICON)
    return None


def base_version(project: ProjectView) -> int:
    """The version this tab's edits are based on: set when the project was opened, saved or reloaded.

    Jobs (pictures, a story being written) do not change a project's version, so only another
    person's edit makes it differ from the stored one.
    """
    return st.session_state.setdefault(state.BASE_VERSION, {}).setdefault(project.id, project.version)


def set_base_version(project: ProjectView) -> None:
    books = _books.get()
    versions = books.versions if books is not None else st.session_state.setdefault(state.BASE_VERSION, {})
    versions[project.id] = project.version


def project_profile(project: ProjectView):
    """The profile the project's jobs use (actions.project_profile), with its one-line note when there is one;
    None, after one st.error sentence, when no profile can be used."""
    try:
        choice = actions.project_profile(project)
    except UserError as exc:
        st.error(exc.message, icon=ERROR_ICON)
        return None
    if choice.note:
        st.info(choice.note, icon=":material/info:")
    return choice.profile


def reload_project(project_id: int) -> None:
    """Forget what this tab typed and was based on; show what is stored now."""
    st.session_state.setdefault(state.BASE_VERSION, {}).pop(project_id, None)
    st.session_state[state.RELOAD_GEN] = st.session_state.get(state.RELOAD_GEN, 0) + 1
    flash("info", "Reloaded: you are looking at the latest saved version.")


def reload_gen() -> int:
    return st.session_state.get(state.RELOAD_GEN, 0)


def init_widget(key: str, value) -> str:
    """Give a keyed widget its first value from storage (never through value=, so typing is not lost)."""
    if key not in st.session_state:
        st.session_state[key] = value
        st.session_state.setdefault(state.DRAFTS, {})[key] = value
    return key


def follow_stored(key: str, stored) -> str:
    """Like init_widget for an editor whose key does not change with the stored value: it shows a value
    stored elsewhere (another tab) when nothing is typed in it, and keeps what is typed otherwise."""
    drafts: dict = st.session_state.setdefault(state.DRAFTS, {})
    if key not in st.session_state:
        st.session_state[key] = drafts[key] = stored
    elif drafts.get(key) != stored and st.session_state[key] == drafts.get(key):
        st.session_state[key] = drafts[key] = stored
    return key


def kept(key: str) -> None:
    """What the editor `key` holds is saved now: it is no longer typing to keep (see typed_here)."""
    st.session_state.setdefault(state.DRAFTS, {})[key] = st.session_state.get(key)


def typed_here() -> bool:
    """Whether an editor drawn from the stored story holds typing that is not saved. Streamlit forgets
    the state of a widget a run did not draw, so only the editors on screen last run are looked at."""
    drafts: dict = st.session_state.setdefault(state.DRAFTS, {})
    for key in [k for k in drafts if k not in st.session_state]:
        del drafts[key]
    return any(key.startswith("w.") and st.session_state[key] != value for key, value in drafts.items())


def behind_another_tab(project: ProjectView) -> bool:
    """Whether to tell this tab that its story was changed elsewhere and its edits would be refused.

    A tab with nothing typed follows quietly: its editors already show the stored values (their keys
    carry the value's fingerprint, or follow_stored updated them), so it takes the new version as its
    base and says so in a toast.
    Only a tab with unsaved typing keeps the old base, so that typing is not saved over the other edit.
    """
    if project.version == base_version(project):
        return False
    if typed_here():
        return True
    set_base_version(project)
    st.toast("Updated with changes made in another tab or window.", icon=":material/sync:")
    return False


WATCH_EVERY_S = 2.0


def _project_jobs(project_id: int) -> tuple[str, ...]:
    return tuple(j.id for j in worker().jobs(active_only=True, project_id=project_id))


def watch(read: Callable[[], object], drawn_from: object) -> None:
    """Redraw the whole page when ``read()`` no longer gives what the page was drawn from.

    Every WATCH_EVERY_S a small fragment calls ``read`` (a cheap query); a StorageError reads as None
    (deleted, or the library cannot be read: the full run says which).
    """

    @st.fragment(run_every=WATCH_EVERY_S)
    def check() -> None:
        try:
            now = read()
        except StorageError:
            now = None
        if now != drawn_from:
            st.rerun(scope="app")

    check()


def watch_project(project: ProjectView) -> None:
    """Keep a tab where nothing runs up to date with what another tab or window does to its story.

    The page polls only while this tab knows of a job, so without this a second tab would show old
    pictures and would learn of an edit only when its own save was refused. The story's (version,
    updated) and its running jobs are compared with what the page was drawn from: pictures being drawn
    appear and are followed, an edit is taken (or, over unsaved typing, announced), a deleted story
    says so.
    """
    watch(
        lambda: (library().project_stamp(project.id), _project_jobs(project.id)),
        ((project.version, project.updated), _project_jobs(project.id)),
    )


def watch_library() -> None:
    """Keep the library page current with stories made, changed or deleted in another tab or window.
    Call it before the projects are listed, so a change made while they are read is caught next time."""
    stamp = library().library_stamp
    watch(stamp, stamp())


DOWNLOAD_POLL_S = 2.0


def model_download(profile, what: str, tip: str = "") -> None:
    """How to get a profile's models: a button that downloads them while the studio runs, then the page
    redraws by itself; or the terminal command. `what` says what cannot run without them, `tip` what
    else the person can do."""
    from engine.profiles import fetch_command

    with st.container(border=True):
        st.warning(
            f"{what} The models of the **{profile.name}** profile are not downloaded yet: "
            f"{profile.download_size}. Download them once; after that the studio works offline.",
            icon=":material/download:",
        )
        download = actions.download_status(profile.name)
        if download is not None and download.running:

            @st.fragment(run_every=DOWNLOAD_POLL_S)
            def progress() -> None:
                now = actions.download_status(profile.name)
                if now is None or not now.running:
                    if now is not None and now.state == "done":
                        flash(
                            "success", f"Downloaded: the '{profile.name}' profile's models are ready on this computer."
                        )
                    st.rerun(scope="app")
                elapsed = int(time.monotonic() - now.started)
                st.info(
                    f"Downloading {now.step} ({elapsed // 60} min {elapsed % 60:02d} s so far). You can keep "
                    "working; this page updates by itself.",
                    icon=":material/downloading:",
                )

            progress()
        else:
            if download is not None and download.state == "failed":
                st.error(download.error, icon=ERROR_ICON)
            if st.button(
                "Try the download again" if download is not None else "Download them now",
                icon=":material/download:",
                type="primary",
                key=f"download.{profile.name}",
            ):
                actions.start_download(profile)
                st.rerun()
        st.caption("Or in a terminal, from the studio's folder:")
        st.code(fetch_command(profile), language="bash")
        if tip:
            st.caption(tip)


# ------------------------------------------------------------------------------------ text helpers

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=^&])")


def plain(text: str) -> str:
    """User text for st.markdown/st.caption, shown exactly as typed: markup, links, HTML, LaTeX stay text."""
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", text or "")
    return escaped.replace("\n", "  \n")


def ago(when: datetime) -> str:
    seconds = (datetime.now(UTC) - when).total_seconds()
    if seconds < 60:
        return "just now"
    for size, unit in ((86400 * 365, "year"), (86400 * 30, "month"), (86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"


def reading_grade(value: float) -> str:
    """A Flesch-Kincaid grade as a reader should see it: the formula goes below zero for short, simple
    sentences, and "grade -2" means nothing to anyone."""
    return "below 1" if value < 1 else f"{value:.1f}"


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


# ---------------------------------------------------------------------------------------- sidebar


def sidebar() -> None:
    with st.sidebar:
        project = None
        pid = current_project_id()
        if pid is not None:
            try:
                project = library().get_project(pid)
            except StorageError:
                project = None
        st.caption("Open story")
        if project is None:
            st.markdown("*None yet — pick one in the library.*")
        else:
            st.markdown(f":material/menu_book: **{plain(project.title)}**")
            pictures = sum(1 for s in project.pages if s.selected is not None)
            st.caption(f"{plural(len(project.pages), 'page')} · {plural(pictures, 'picture')}")
            st.page_link(
                state.SCREEN_STORYBOARD,
                label="Go to the storyboard",
                icon=":material/auto_stories:",
                query_params={state.QP_PROJECT: str(project.id)},
            )
        active = worker().jobs(active_only=True)
        st.fragment(_sidebar_jobs, run_every=2 if active else None)()


_JOB_KINDS = {actions.KIND_ILLUSTRATE: ":material/brush: Drawing", actions.KIND_STORY: ":material/edit_note: Writing"}


def _sidebar_jobs() -> None:
    active = worker().jobs(active_only=True)  # every kind of job: pictures and stories, oldest first
    st.caption("Running now")
    if not active:
        st.markdown("*Nothing is being drawn or written.*")
        return
    for job in active:
        waiting = job.status.value == "queued"
        text = f"{job.label} — {job.message or ('Waiting…' if waiting else 'Working…')}"
        kind = _JOB_KINDS.get(job.kind)
        st.progress(job.fraction, text=f"{kind} · {plain(text)}" if kind else plain(text))


def _mark_seen(job_id: str) -> None:
    st.session_state.setdefault(state.SEEN_JOBS, set()).add(job_id)


def job_panel(jobs: list, *, stop_note: str, outcome: Callable, outcome_kind: str | None = None) -> None:
    """A progress bar and a Stop button for each unfinished job; once none is left, the outcome of the
    last finished one (of `outcome_kind`, if given), drawn by outcome(job), until the user dismisses it."""
    active = [j for j in jobs if not j.finished]
    for job in active:
        with st.container(border=True):
            cols = st.columns([5, 1], vertical_alignment="center")
            waiting = job.status.value == "queued"
            text = f"**{plain(job.label)}** — {plain(job.message or ('Waiting…' if waiting else 'Working…'))}"
            cols[0].progress(job.fraction, text=text)
            if cols[1].button("Stop", icon=":material/stop_circle:", key=f"stop.{job.id}", width="stretch"):
                worker().cancel(job.id)
                flash("info", stop_note)
                st.rerun()
    finished = [j for j in jobs if j.finished and (outcome_kind is None or j.kind == outcome_kind)]
    if active or not finished:
        return
    last = finished[-1]
    if last.id in st.session_state.get(state.SEEN_JOBS, set()):
        return
    cols = st.columns([6, 1], vertical_alignment="center")
    with cols[0]:
        outcome(last)
    cols[1].button("OK", key=f"seen.{last.id}", on_click=_mark_seen, args=(last.id,))
