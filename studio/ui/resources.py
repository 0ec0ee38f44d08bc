"""The process-wide objects every screen and tab shares: the Library and the engine's job worker."""

from __future__ import annotations

import os

import streamlit as st

from engine.jobs import JobWorker, get_worker
from storage import Library


@st.cache_resource(show_spinner=False)
def _library_for(home: str) -> Library:
    return Library(home or None)


def library() -> Library:
    """The process-wide Library (thread-safe: one short Session per call), one per data folder."""
    return _library_for(os.environ.get("STORYBOOK_HOME", "").strip())


@st.cache_resource(show_spinner=False, validate=lambda worker: worker.alive)
def worker() -> JobWorker:
    return get_worker()
