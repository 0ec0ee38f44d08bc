"""Storyboard: write the story, cut it into pages, and illustrate every page.

Pictures are drawn by a job on the engine's worker (studio.actions); this page only submits, and a
fragment re-reads the project from storage every second while a job runs, so each picture appears
as soon as it is saved, whatever happens to this browser tab.

The page script is studio/screens/storyboard.py (the path st.navigation and the tests name); it calls render()
here. The parts: book (story box, Book details, pages, the Illustrate row), cast (characters and their reference
pictures), cards (the page cards and their menus, in a grid), live (the board and the fragment that follows a
running job), tray (loose pictures and the bin), common (what they share).
"""

from __future__ import annotations

from functools import partial

import streamlit as st

from engine.prompts import DEFAULT_STYLE, STYLES
from studio import actions, state, ui
from studio.screens.storyboard import book, cast, live


def _step(project_id: int, back: bool) -> None:
    """Undo (back) or redo the story's last edit; kept in the library, so it works after a refresh too."""
    with ui.guard(project_id):
        lib_ = ui.library()
        version = ui.base_version(lib_.get_project(project_id))  # after the story box's own save in this run
        view, message = (actions.undo if back else actions.redo)(lib_, project_id, version)
        ui.set_base_version(view)
        ui.flash("success", message)
        # Every box shows the restored words and settings, not what it held before.
        st.session_state[state.RELOAD_GEN] = ui.reload_gen() + 1


def render() -> None:
    """The whole page, top to bottom."""
    project = ui.load_current_project()

    if project is None:
        st.title("Storyboard")
        ui.show_flash()
        with st.container(border=True):
            st.header("No story is open")
            st.markdown("Pick a story in the library, start a new one, or open the sample story to look around.")
            cols = st.columns(3)
            if cols[0].button("Start a new story", icon=":material/add:", type="primary") and ui.first_click("new"):
                with ui.guard():
                    ui.start_new()
            if cols[1].button("Open the sample story", icon=":material/pets:") and ui.first_click("sample"):
                with ui.guard():
                    ui.start_sample()
            cols[2].page_link(state.SCREEN_LIBRARY, label="Go to the library", icon=":material/local_library:")
        st.stop()

    pid = project.id
    ui.close_finished_menus()
    ui.person_ran()
    stale = ui.behind_another_tab(project)
    edit = ui.editing(project)  # what every editor below saves against
    style_key = project.style if project.style in STYLES else DEFAULT_STYLE

    st.title(ui.plain(project.title))
    pictures = sum(1 for s in project.pages if s.selected is not None)
    byline = f"by {ui.plain(project.author)} · " if project.author else ""
    st.caption(
        f"{byline}{ui.plural(len(project.pages), 'page')} · {ui.plural(pictures, 'picture')} · "
        f"{STYLES[style_key].label} · saved {ui.ago(project.updated)}"
    )
    ui.show_flash()

    with st.container(horizontal=True, gap="small", vertical_alignment="center"):
        st.button(
            "Undo",
            icon=":material/undo:",
            key="history.undo",
            disabled=project.undo is None or stale,
            help=f"Take back: {project.undo}" if project.undo else "Nothing to undo yet",
            on_click=_step,
            args=(pid, True),
        )
        st.button(
            "Redo",
            icon=":material/redo:",
            key="history.redo",
            disabled=project.redo is None or stale,
            help=f"Bring back: {project.redo}" if project.redo else "Nothing to redo",
            on_click=_step,
            args=(pid, False),
        )
        if project.undo:
            st.caption(f"Last change: {ui.plain(project.undo)}")

    if stale:
        ui.stale_notice(pid, "stale.reload")

    profile = ui.project_profile(project)
    missing = actions.missing_models(profile, ("illustrator",)) if profile is not None else []
    not_ready = actions.illustrate_ready(profile)  # None, or why Illustrate cannot work (in plain words)
    if not actions.active_jobs(pid):  # while pictures are drawn for this story, the storyboard follows the job instead
        # Once the page has stood still for a moment, the story's picture model is loaded in the background (from disk
        # only): the first click is then as quick as the next. Not at once: loading takes the processor for a few
        # seconds, and a person typing or clicking should not feel it.
        warm = not_ready is None and bool(project.pages) and not stale
        ui.watch_project(project, on_idle=partial(actions.warm_up, profile) if warm else None)
    if profile is not None and missing:
        ui.model_download(
            profile,
            f"Pages cannot be illustrated yet: the picture model ({ui.plain(missing[0][1])}) is missing.",
            tip="Or choose the **tiny** profile in Book details to try the studio offline (it draws noise).",
        )

    # ------------------------------------------------------------------------------------------ story

    st.header(":material/edit_note: Story", divider="orange")
    # The story and, beside it, the Book details at a width their boxes read whole in; in a narrow window (or beside
    # the open sidebar) the details go below the story instead of squeezing into a sliver.
    story_row = st.container(horizontal=True, gap="large")
    left, right = story_row.container(width="stretch"), story_row.container(width=380)
    with left:
        text = book.story_box(project, edit.gen)
        cast.characters_box(edit, project, profile, not_ready)
    with right:
        book.book_details(project, profile, edit.gen)
        book.pages_box(edit, project, text)

    # ------------------------------------------------------------------------------------- storyboard

    st.header(":material/photo_library: Storyboard", divider="orange")
    if not project.pages:
        st.info(
            "No pages yet. Write your story above and press **Split into pages**: every page gets its own picture.",
            icon=":material/content_cut:",
        )
        if project.loose:
            kept = sum(len(page.pictures) for page in project.loose)
            st.caption(
                f"{ui.plural(kept, 'picture')} from earlier pages {'is' if kept == 1 else 'are'} kept: split the story "
                "into pages, then put them on pages from the loose pictures tray (or press Undo)."
            )
        st.stop()

    active_now = actions.active_jobs(pid)
    book.illustrate_row(edit, project, profile, not_ready, active_now)
    book.best_of_n_row(edit, project, profile)
    live.show_board(edit, profile, not_ready)
