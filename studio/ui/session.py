"""The open story of this tab: which one it is (session and ?project=ID), the version its edits are based on,
opening and reloading it, and noticing that another tab changed it."""

from __future__ import annotations

import re
from dataclasses import dataclass

import streamlit as st

from storage import Library, NotFound, ProjectView, StorageError
from studio import actions, state
from studio.ui import ledger
from studio.ui.editors import typed_here
from studio.ui.messages import ERROR_ICON, flash
from studio.ui.resources import library
from studio.ui.text import plural


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


def read_project(lib: Library, project_id: int) -> ProjectView:
    """The project as stored now: read whole only when its (version, updated) stamp moved since this tab last read
    it (every edit and every job's picture moves it), else the view read then. The sidebar and the screen ask for
    the open story on every run; a whole read of a 120-page story is most of a run's database time (issue 16).
    NotFound and StorageError as Library.get_project."""
    stamp = lib.project_stamp(project_id)
    kept = st.session_state.get(state.PROJECT_READ)
    if kept is not None and kept[0] == (project_id, *stamp):
        return kept[1]
    view = lib.get_project(project_id)
    # Stamped with what was read: a change landing between the two reads only makes the next run read again.
    st.session_state[state.PROJECT_READ] = ((view.id, view.version, view.updated), view)
    return view


def load_current_project() -> ProjectView | None:
    """The open project as stored now (read_project); None (with a message) when none is open or it is gone."""
    pid = current_project_id()
    if pid is None:
        return None
    try:
        return read_project(library(), pid)
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
    record = ledger.active()
    versions = record.versions if record is not None else st.session_state.setdefault(state.BASE_VERSION, {})
    versions[project.id] = project.version


@dataclass(frozen=True)
class Editing:
    """What a screen's editors save against, handed to the helpers that draw them: the library, the open story,
    the version this tab's edits are based on, and the reload generation the editors' keys carry."""

    lib: Library
    project_id: int
    base: int
    gen: int


def editing(project: ProjectView) -> Editing:
    """The Editing of the open story, as this run sees it (after behind_another_tab())."""
    return Editing(library(), project.id, base_version(project), reload_gen())


def reload_project(project_id: int) -> None:
    """Forget what this tab typed and was based on; show what is stored now."""
    st.session_state.setdefault(state.BASE_VERSION, {}).pop(project_id, None)
    st.session_state[state.RELOAD_GEN] = st.session_state.get(state.RELOAD_GEN, 0) + 1
    flash("info", "Reloaded: you are looking at the latest saved version.")


def stale_notice(project_id: int, key: str) -> None:
    """The warning a tab gets when another tab or window changed its story, with the Reload button."""
    st.warning(
        "This story was changed in another tab or window since you opened it here. Reload it to see "
        "the latest version; edits made here before reloading will not be saved.",
        icon=":material/refresh:",
    )
    st.button(
        "Reload the latest version",
        key=key,
        icon=":material/refresh:",
        on_click=reload_project,
        args=(project_id,),
    )


def reload_gen() -> int:
    return st.session_state.get(state.RELOAD_GEN, 0)


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
