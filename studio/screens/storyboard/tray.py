"""Below the cards: the loose-pictures tray (pictures whose page left the story) and the story's bin."""

from __future__ import annotations

import itertools

import streamlit as st

from storage import ProjectView
from studio import actions, state, ui
from studio.screens.storyboard.common import version_details
from studio.ui import Editing


def tray(edit: Editing, live: ProjectView) -> None:
    """The loose-pictures tray: pictures whose page left the story, with its words and what each was drawn with;
    put one on a page, bring the page back (not in a story told from pictures: it keeps their order), or discard
    it."""
    if not live.loose:
        return
    count = sum(len(page.pictures) for page in live.loose)
    st.header(f":material/inventory_2: Loose pictures ({count})", divider="orange")
    st.caption(
        "Their pages left the story when its words changed. Nothing here is lost: put a picture on a page, "
        "bring its page back, or discard it."
    )
    numbers = {page.id: page.position + 1 for page in live.pages}
    told = actions.told_from_pictures(live)
    for page in live.loose:
        with st.container(border=True):
            st.markdown(f"*“{ui.plain(page.text[:300])}”*")
            if st.button(
                "Bring these words back as a page",
                icon=":material/undo:",
                key=f"tray.back.{page.id}",
                disabled=told,
                help=actions.TOLD_KEEPS_ORDER if told else None,
            ) and ui.first_click(f"tray.back.{page.id}"):
                with ui.guard(edit.project_id):
                    ui.set_base_version(actions.bring_back_page(edit.lib, edit.project_id, page.id, edit.base))
                    ui.flash("success", "The page is back in the story, with its pictures.")
                    st.rerun()
            cols = st.columns(4)
            for col, picture in zip(itertools.cycle(cols), page.pictures):
                with col:
                    st.image(ui.thumbnail(picture.image_path), width="stretch", alt=f"Version {picture.version}")
                    st.caption(version_details(picture))  # what it was drawn with: seed, style, models, prompt
                    target = st.selectbox(
                        "Put it on page",
                        options=list(numbers),
                        format_func=lambda i: f"Page {numbers[i]}",
                        key=f"tray.to.{picture.id}",
                    )
                    with st.container(horizontal=True, gap="xsmall"):
                        if st.button("Put it there", key=f"tray.put.{picture.id}", icon=":material/move_down:"):
                            with ui.guard(edit.project_id):
                                view = actions.place_picture(edit.lib, picture.id, target, edit.base)
                                ui.set_base_version(view)
                                ui.flash("success", f"Page {numbers[target]} now has this picture.")
                                st.rerun()
                        if st.button(
                            "Discard", key=f"tray.bin.{picture.id}", icon=":material/delete:", help="Put it in the bin"
                        ):
                            with ui.guard(edit.project_id):
                                ui.set_base_version(actions.discard_picture(edit.lib, picture.id, edit.base))
                                ui.flash("success", "The picture is in the bin.")
                                st.rerun()


def bin_section(edit: Editing, live: ProjectView) -> None:
    """The story's bin: deleted pages and discarded pictures, until the bin is emptied."""
    if live.bin is None or live.bin.empty:
        return
    items = len(live.bin.pages) + len(live.bin.pictures)
    told = actions.told_from_pictures(live)
    with st.expander(f":material/delete: Bin ({items} item{'s' if items != 1 else ''})"):
        for page in live.bin.pages:
            cols = st.columns([4, 1], vertical_alignment="center")
            cols[0].markdown(f"Page: *“{ui.plain(page.text[:200])}”* · {ui.plural(len(page.pictures), 'picture')}")
            if cols[1].button(
                "Bring back",
                key=f"bin.page.{page.id}",
                icon=":material/restore_from_trash:",
                disabled=told,
                help=actions.TOLD_KEEPS_ORDER if told else None,
            ):
                with ui.guard(edit.project_id):
                    ui.set_base_version(actions.bring_back_page(edit.lib, edit.project_id, page.id, edit.base))
                    ui.flash("success", "The page is back in the story, with its pictures.")
                    st.rerun()
        for picture in live.bin.pictures:
            cols = st.columns([1, 3, 1], vertical_alignment="center")
            cols[0].image(ui.thumbnail(picture.image_path), width=96, alt=f"Discarded version {picture.version}")
            cols[1].caption(f"Version {picture.version} · seed {picture.settings.get('seed', '—')}")
            if cols[2].button("Bring back", key=f"bin.pic.{picture.id}", icon=":material/restore_from_trash:"):
                with ui.guard(edit.project_id):
                    ui.set_base_version(actions.restore_picture(edit.lib, picture.id, edit.base))
                    ui.flash("success", "The picture is back.")
                    st.rerun()
        megabytes = live.bin.files_bytes / 2**20
        if st.session_state.get(state.CONFIRM_EMPTY_BIN) == edit.project_id:
            st.warning(
                f"Remove everything in the bin for good (about {megabytes:.1f} MB)? This cannot be undone.",
                icon=":material/warning:",
            )
            with st.container(horizontal=True, gap="small"):
                if st.button("Empty the bin", type="primary", key="bin.empty.yes") and ui.first_click("bin.empty"):
                    with ui.guard(edit.project_id):
                        view, message = actions.empty_bin(edit.lib, edit.project_id, edit.base)
                        ui.set_base_version(view)
                        st.session_state[state.CONFIRM_EMPTY_BIN] = None
                        ui.flash("success", message)
                        st.rerun()
                if st.button("Keep it", key="bin.empty.no"):
                    st.session_state[state.CONFIRM_EMPTY_BIN] = None
                    st.rerun()
        elif st.button(
            f"Empty the bin… (frees about {megabytes:.1f} MB)", key="bin.empty", icon=":material/delete_forever:"
        ):
            st.session_state[state.CONFIRM_EMPTY_BIN] = edit.project_id
            st.rerun()
