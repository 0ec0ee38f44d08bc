"""Editors drawn from stored values: a widget gets its first value from storage (never through value=, so
typing is not lost), follows a value stored elsewhere while nothing is typed in it, and tells typing that is
not saved yet from what is stored (studio.state.DRAFTS)."""

from __future__ import annotations

import streamlit as st

from studio import state


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
