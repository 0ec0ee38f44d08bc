"""Library: every saved story as a card; new, open, rename, duplicate, delete, import and export."""

from __future__ import annotations

from functools import partial

import streamlit as st

from core.paths import file_stem
from storage import ProjectSummary
from studio import actions, state, ui

CARD_MIN_REM = 16  # the narrowest a story card gets: its title and its two buttons read whole
SEARCH_WIDTH_PX = 340

lib = ui.library()
ui.close_finished_menus()  # after an action in a menu (Import, a card's More), before any menu is drawn

st.title("Your library")
st.caption("Every story you write is saved here as you go, with all its pictures.")
ui.show_flash()

undo = st.session_state.get(state.UNDO_DELETE)
if undo is not None:
    with st.container(horizontal=True, vertical_alignment="center", gap="small"):
        st.success(f"Deleted “{ui.plain(undo[0])}”.", icon=":material/delete:")
        if st.button("Undo", icon=":material/undo:", key="undo.delete", type="primary") and ui.first_click("undo"):
            with ui.guard():
                back = actions.import_bundle(lib, undo[1])
                st.session_state[state.UNDO_DELETE] = None
                ui.flash("success", f"Brought back “{back.title}” with its {ui.plural(len(back.pages), 'page')}.")
                st.rerun()
        if st.button("OK", key="undo.dismiss"):
            st.session_state[state.UNDO_DELETE] = None
            st.rerun()

projects: list[ProjectSummary] = []
empty = False
with ui.guard():
    ui.watch_library()  # stories made, changed or deleted in another tab appear here by themselves
    empty = not lib.list_projects()

# An empty library shows its two ways in once, in the welcome box below (a new story opens at once: its title
# is the story's first line); the top row keeps only Import. The New story form with title and author comes back
# once there is a story.
# One row that wraps in a narrow window, each button as wide as its words (columns cut them to "Open …" at 800 px).
top_row = st.container(
    horizontal=True, gap="small", vertical_alignment="bottom", horizontal_alignment="right" if empty else "left"
)
search = (
    ""
    if empty
    else top_row.text_input(
        "Search",
        key=state.LIBRARY_SEARCH,
        placeholder="Search titles, authors and story text",
        label_visibility="collapsed",
        width=SEARCH_WIDTH_PX,
    )
)


def new_story_popover(where) -> None:
    with where.popover("New story", icon=":material/add:", type="primary", key="library.new"):
        with st.form("new-story", clear_on_submit=True, border=False):
            title = st.text_input("Title", placeholder=actions.DEFAULT_TITLE)
            author = st.text_input("Author", placeholder="Who wrote it (optional)")
            create = st.form_submit_button("Create and open", icon=":material/add:", type="primary")
        if create and ui.first_click("new"):
            with ui.guard():
                ui.start_new(title, author)


if not empty:
    new_story_popover(top_row)
    if top_row.button(
        "Open the sample story",
        icon=":material/pets:",
        help="A short story about a fox in a lighthouse, already split into pages.",
    ) and ui.first_click("sample"):
        with ui.guard():
            ui.start_sample()

with top_row.popover("Import", icon=":material/upload_file:", key="pop.library.import", on_change="rerun"):
    st.caption("Open a story bundle (.zip) exported from Storybook Studio.")
    upload_mb = actions.bundle_upload_mb()  # the page holds the upload in memory: what this computer can spare
    if upload_mb < actions.MAX_BUNDLE_MB:
        st.caption(
            f"A bundle larger than {upload_mb:,} MB imports from a terminal, which reads it from disk: "
            "`python -m storage import-bundle FILE`."
        )
    upload = st.file_uploader(
        "Story bundle",
        type=["zip"],
        key=f"import.{st.session_state.get(state.UPLOAD_GEN, 0)}",
        max_upload_size=upload_mb,
    )
    if (
        st.button("Import this bundle", icon=":material/upload_file:", disabled=upload is None)
        and upload is not None
        and ui.first_click("import")
    ):
        with ui.guard():
            result = actions.import_story(lib, upload)  # the upload itself: Streamlit holds it, no second copy
            imported = result.project
            st.session_state[state.UPLOAD_GEN] = st.session_state.get(state.UPLOAD_GEN, 0) + 1
            said = f"Imported “{ui.plain(imported.title)}” with {ui.plural(len(imported.pages), 'page')}."
            if result.same_title_as is not None:
                said += (
                    f" Your library already had a story called “{ui.plain(result.same_title_as)}”, so the imported one "
                    "is marked “(imported)”: rename it from its card's More menu."
                )
            ui.flash("success", said)
            ui.menu_done()
            st.rerun()

with ui.guard():
    projects = [] if empty else lib.list_projects(search=search)

if not projects:
    if search.strip():
        st.info(
            f"No stories match “{ui.plain(search.strip())}”. Try another word, or clear the search.",
            icon=":material/search_off:",
        )
    else:
        with st.container(border=True):
            st.header("No stories yet — start one or open the sample")
            st.markdown(
                "Write a story (or paste one), split it into pages, and let the studio draw a picture "
                "for every page. You can redraw, pick between versions, or use your own pictures."
            )
            cols = st.columns(2)
            if cols[0].button(
                "Start a new story", icon=":material/add:", type="primary", key="empty.new"
            ) and ui.first_click("new"):
                with ui.guard():
                    ui.start_new()
            if cols[1].button("Open the sample story", icon=":material/pets:", key="empty.sample") and ui.first_click(
                "sample"
            ):
                with ui.guard():
                    ui.start_sample()
    st.stop()


def _slug(title: str) -> str:
    return file_stem(title, "story")


def card_menu(summary: ProjectSummary) -> None:
    """Rename, duplicate, export and delete: built only while the card's menu is open."""
    lib = ui.library()
    with st.form(f"rename.{summary.id}", border=False):
        new_title = st.text_input("Title", value=summary.title, key=f"rename.title.{summary.id}")
        if st.form_submit_button("Rename", icon=":material/edit:", key=f"rename.go.{summary.id}"):
            with ui.guard():
                actions.rename_project(lib, summary.id, new_title)
                ui.flash("success", f"Renamed to “{new_title.strip()}”.")
                ui.menu_done()
                st.rerun()
    if st.button("Duplicate", key=f"dup.{summary.id}", icon=":material/content_copy:") and ui.first_click(
        f"dup.{summary.id}"
    ):
        with ui.guard():
            copy = actions.duplicate_project(lib, summary.id)
            ui.flash("success", f"Made a copy: “{copy.title}”.")
            ui.menu_done()
            st.rerun()
    st.download_button(
        "Export bundle",
        data=partial(lib.export_bundle, summary.id),
        file_name=f"{_slug(summary.title)}.storybook.zip",
        mime="application/zip",
        key=f"export.{summary.id}",
        icon=":material/download:",
        on_click="ignore",
        help="Everything in this story, pictures included, as one file to keep or share.",
    )
    if st.session_state.get(state.CONFIRM_DELETE) == summary.id:
        st.warning(
            "Delete this story and all its pictures? You can undo it while this window stays open.",
            icon=":material/warning:",
        )
        yes, no = st.columns(2)
        if yes.button("Delete", key=f"delete.yes.{summary.id}", type="primary"):
            with ui.guard():
                kept = actions.delete_project(lib, summary.id)
                st.session_state[state.CONFIRM_DELETE] = None
                if ui.current_project_id() == summary.id:
                    ui.set_current_project(None)
                if kept is not None:
                    st.session_state[state.UNDO_DELETE] = (summary.title, kept)
                else:
                    ui.flash("success", f"Deleted “{summary.title}”.")
                st.rerun()
        if no.button("Keep it", key=f"delete.no.{summary.id}"):
            st.session_state[state.CONFIRM_DELETE] = None
            st.rerun()
    elif st.button("Delete…", key=f"delete.{summary.id}", icon=":material/delete:"):
        st.session_state[state.CONFIRM_DELETE] = summary.id
        st.rerun()


def card(summary: ProjectSummary) -> None:
    lib = ui.library()
    with st.container(border=True, height="stretch"):
        # The body grows to the row's tallest card, so every card's buttons line up at the bottom.
        with st.container(height="stretch"):
            if summary.cover_image is not None and summary.cover_image.exists():
                st.image(str(summary.cover_image), width="stretch", alt=f"Cover of {summary.title}")
            else:
                # Words, not an icon as a heading (a screen reader read it as "menu_book").
                with st.container(height=180, horizontal_alignment="center", vertical_alignment="center"):
                    st.markdown("No pictures yet", width="content")
            st.markdown(f"## {ui.plain(summary.title)}")  # h2 under the page title (one level, no skip)
            by = f"by {ui.plain(summary.author)} · " if summary.author else ""
            st.caption(f"{by}{ui.plural(summary.page_count, 'page')} · updated {ui.ago(summary.updated)}")
        row = st.columns([1, 1], vertical_alignment="center")
        if row[0].button(
            "Open", key=f"open.{summary.id}", icon=":material/auto_stories:", type="primary", width="stretch"
        ):
            with ui.guard():
                ui.open_project(lib.get_project(summary.id))
        menu = row[1].popover(
            "More", icon=":material/more_horiz:", width="stretch", key=f"pop.menu.{summary.id}", on_change="rerun"
        )
        if menu.open:
            with menu:
                card_menu(summary)


st.caption(
    f"{ui.plural(len(projects), 'story', 'stories')}"
    if not search.strip()
    else f"{ui.plural(len(projects), 'story', 'stories')} matching “{ui.plain(search.strip())}”"
)
with ui.card_grid("library-cards", CARD_MIN_REM):  # as many to a row as fit, in reading order
    for summary in projects:
        card(summary)
