"""Clicks: a double click does its action once (first_click), and guard() turns a person's error into one
sentence on the screen, with a Reload button when another tab changed the story."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import streamlit as st
from streamlit.runtime.scriptrunner_utils.exceptions import RerunException, StopException

from core.errors import UserError
from storage import ConflictError, NotFound
from studio import state
from studio.ui import ledger
from studio.ui.messages import ERROR_ICON
from studio.ui.session import reload_project

_pending_action: ContextVar[str | None] = ContextVar("storybook_action", default=None)
DOUBLE_CLICK_S = 1.5  # a second click on the same action within this time of the first one's end is ignored
# Actions a person repeats as soon as the result shows: New picture and Redraw on a page ("new.<page id>",
# "same.<page id>"). A quick picture is on screen half a second after the click (issue 16), and a person trying seeds
# clicks again about then: only a click this close to the last one's end is a double click's second click.
REPEAT_CLICK_S = 0.6
REPEATABLE_ACTIONS = ("new.", "same.")
_guard_ids = itertools.count()


def first_click(action: str) -> bool:
    """False for the second click of a double click (the same action, just done in this session).

    Use as ``if st.button(...) and ui.first_click("name"):`` with a ``ui.guard()`` block under it; the
    guard records when the action ended, even if the run is cut short after it.
    """
    recent = st.session_state.setdefault(state.RECENT_ACTIONS, {})
    last = recent.get(action)
    window = REPEAT_CLICK_S if action.startswith(REPEATABLE_ACTIONS) else DOUBLE_CLICK_S
    if last is not None and time.monotonic() - last < window:
        return False
    _pending_action.set(action)
    return True


@contextmanager
def guard(project_id: int | None = None) -> Iterator[None]:
    """Show a person's error as one st.error sentence (never a traceback); a stale tab gets a Reload button.

    Inside it, set_base_version() and flash() cannot be cut short by a second click (see studio.ui.ledger).
    """
    record = ledger.Ledger()
    record.action = _pending_action.get()
    _pending_action.set(None)
    token = ledger.enter(record)
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
        ledger.leave(token)
        if record.action is not None and not failed:  # after a refusal the person may fix it and click at once
            record.recent[record.action] = time.monotonic()
