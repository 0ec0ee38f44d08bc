"""Bookkeeping that a second click cannot cut short.

Streamlit stops a run at its next st.* call or st.session_state access once another run is asked for
(a second click, a keystroke elsewhere). After an action has saved something, the run must still
record the version it produced and its message, or the next run thinks another tab changed the
story. So guard() (studio.ui.clicks) fetches the session's containers into a Ledger BEFORE the action,
and the bookkeeping after it (set_base_version, flash, the double-click clock) mutates them as plain
Python objects, which cannot be interrupted.
"""

from __future__ import annotations

from contextvars import ContextVar, Token

import streamlit as st

from studio import state


class Ledger:
    def __init__(self) -> None:
        self.versions: dict = st.session_state.setdefault(state.BASE_VERSION, {})
        self.flash: list = st.session_state.setdefault(state.FLASH, [])
        self.recent: dict = st.session_state.setdefault(state.RECENT_ACTIONS, {})
        self.action: str | None = None  # the first_click() name of the action being guarded, if any


_active: ContextVar[Ledger | None] = ContextVar("storybook_ledger", default=None)


def active() -> Ledger | None:
    """The ledger of the guard() block running now; None outside one."""
    return _active.get()


def enter(ledger: Ledger) -> Token:
    return _active.set(ledger)


def leave(token: Token) -> None:
    _active.reset(token)
