"""Messages to the person: flash messages shown once at the top of the next run, and the error icon."""

from __future__ import annotations

import streamlit as st

from studio import state
from studio.ui import ledger

ERROR_ICON = ":material/error:"
_ICONS = {
    "success": ":material/check_circle:",
    "info": ":material/info:",
    "warning": ":material/warning:",
    "error": ERROR_ICON,
}


def flash(kind: str, message: str) -> None:
    """A message shown once, at the top of the next run (survives st.rerun and screen switches); kind "toast"
    shows a success as a toast instead, for confirmations of an action taken at a card."""
    record = ledger.active()
    (record.flash if record is not None else st.session_state.setdefault(state.FLASH, [])).append((kind, message))
    if kind == "toast":
        menu_done()


def menu_done() -> None:
    """The action taken in a popover menu is done: the menus close on the next run (close_finished_menus)."""
    st.session_state[state.CLOSE_MENUS] = True


def menu(label: str, *, key: str, icon: str, help: str, type: str = "tertiary"):
    """A popover menu (key "pop.…", so close_finished_menus closes it) whose content is built only while it is
    open: the popover when it is, else None. On a long storyboard every card has three closed menus, and
    building them on every run took a quarter of it (issue 16)."""
    pop = st.popover(label, icon=icon, type=type, key=key, help=help, on_change="rerun")
    return pop if pop.open else None


def close_finished_menus() -> None:
    """Close the popover menus (keys starting "pop.") after an action taken in one of them; call it before any
    popover is drawn."""
    if st.session_state.pop(state.CLOSE_MENUS, False):
        for key in [k for k in st.session_state if isinstance(k, str) and k.startswith("pop.")]:
            st.session_state[key] = False


def show_flash() -> None:
    messages = st.session_state.setdefault(state.FLASH, [])
    pending = list(messages)
    messages.clear()  # the same list object stays in the session, so guard() may hold it
    # Always one container, with or without messages: elements after it keep their place on the screen, so
    # the run after a message does not rebuild (and close) an open popover and empty its file uploader.
    with st.container():
        for kind, message in pending:
            if kind == "toast":  # a confirmation of something done at a card: shown beside it, not at the top
                st.toast(message, icon=_ICONS["success"])
                continue
            {"success": st.success, "info": st.info, "warning": st.warning, "error": st.error}[kind](
                message, icon=_ICONS[kind]
            )
