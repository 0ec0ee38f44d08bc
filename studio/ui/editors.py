"""Editors drawn from stored values: a widget gets its first value from storage (never through value=, so
typing is not lost), follows a value stored elsewhere while nothing is typed in it, and tells typing that is
not saved yet from what is stored (studio.state.DRAFTS)."""

from __future__ import annotations

import streamlit as st

from studio import state


def init_widget(key: str, value) -> str:
    """Give a keyed widget its first value from storage (never through value=, so typing is not lost).

    Only for editors that follow storage (their key changes with the stored value). A constant default goes
    through the widget's own value=/index=: a value put here before the widget first showed could leave the
    browser showing, and later sending back, the widget's own default (a number box's minimum, a toggle off)
    while the server used this one (tests/widgetkit.py's shows_what_it_holds checks a screen for it)."""
    if key not in st.session_state:
        st.session_state[key] = value
        st.session_state.setdefault(state.DRAFTS, {})[key] = value
    return key


def starts_from(key: str, value):
    """For a widget given its stored value through value=/index= (its key changes with the stored value, so a
    new value is a new widget): remember the value it starts from, as init_widget does, so that typed_here()
    counts a change not saved yet; nothing is put in Session State (the browser draws the widget from its own
    default, which is then this value). Returns the value."""
    st.session_state.setdefault(state.DRAFTS, {}).setdefault(key, value)
    return value


def follow_stored(key: str, stored: str) -> str:
    """Like init_widget for an editor whose key does not change with the stored value: it shows a value
    stored elsewhere (another tab) when nothing is typed in it, and keeps what is typed otherwise.

    "Nothing typed" is what the server knows: a text box sends its words only when it loses focus, so the
    browser may hold typing based on the text shown before. What the box showed is remembered (FOLLOWED)
    until this tab's person does something, and based_on_followed() tells such typing from an edit of the
    new text.
    """
    drafts: dict = st.session_state.setdefault(state.DRAFTS, {})
    if key not in st.session_state:
        st.session_state[key] = drafts[key] = stored
    elif drafts.get(key) != stored and st.session_state[key] == drafts.get(key):
        if st.session_state.get(state.WATCHER_RUN):  # a person's run comes after the box sent its words
            followed: dict = st.session_state.setdefault(state.FOLLOWED, {})
            before = followed[key][0] if key in followed else drafts.get(key)
            followed[key] = (before, stored)
        st.session_state[key] = drafts[key] = stored
    return key


def person_ran() -> None:
    """Call once at the top of a screen's run. A run this tab's person asked for (a click, a box left) comes
    after every text box in the tab sent its words, so what follow_stored replaced quietly is what they see."""
    watcher = st.session_state[state.WATCHER_RUN] = st.session_state.pop(state.WATCH_RERUN, False)
    if not watcher:
        st.session_state.pop(state.FOLLOWED, None)


def rerun_to_follow() -> None:
    """st.rerun(scope="app") for a watcher (another tab's edit, a job ending): not this tab's person's doing."""
    st.session_state[state.WATCH_RERUN] = True
    st.rerun(scope="app")


def based_on_followed(key: str, typed: str) -> bool:
    """Whether words the box `key` sent are based on what it shows now; False when the box was quietly given
    another tab's text while the browser still held typing based on the text before (the typing would
    otherwise replace the other tab's change unseen)."""
    followed = st.session_state.get(state.FOLLOWED, {}).pop(key, None)
    if followed is None or typed == followed[1]:
        return True
    return carries_change(followed[0], followed[1], typed)


def carries_change(before: str, after: str, text: str) -> bool:
    """Whether `text` keeps the change that turned `before` into `after` (an edit made on top of `after`),
    rather than being `before` edited elsewhere. The change is the part between the common start and end;
    new words must be in `text`; a removal must leave its two sides joined, and the removed words not there."""
    start = 0
    limit = min(len(before), len(after))
    while start < limit and before[start] == after[start]:
        start += 1
    end = 0
    while end < limit - start and before[len(before) - 1 - end] == after[len(after) - 1 - end]:
        end += 1
    added = after[start : len(after) - end]
    if added.strip():
        return added in text
    context = 24
    joined = after[max(0, start - context) : len(after) - end + context]
    removed = before[max(0, start - context) : start + min(len(before) - end - start, context)]
    return joined in text and removed not in text


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
