"""The process-wide objects every screen and tab shares: the Library and the engine's job worker."""

from __future__ import annotations

import functools
import io
import os

import streamlit as st
from PIL import Image

from engine.jobs import JobWorker, get_worker
from storage import Library, ProjectView
from studio import actions


@st.cache_resource(show_spinner=False)
def _library_for(home: str) -> Library:
    return Library(home or None)


def library() -> Library:
    """The process-wide Library (thread-safe: one short Session per call), one per data folder."""
    return _library_for(os.environ.get("STORYBOOK_HOME", "").strip())


@st.cache_resource(show_spinner=False, validate=lambda worker: worker.alive)
def worker() -> JobWorker:
    # Full-size models on a CPU leave a core to this page and the browser (engine.device.SPARE_CORES_ENV; never the
    # only core); the CLI and the benches use every core. Set it to 0 to give the models all.
    os.environ.setdefault("STORYBOOK_SPARE_CORES", "1")
    return get_worker()


THUMBNAIL_PX = 400  # a card is about a third of a 1,400 px window: pictures are sent at that size, not full size


@functools.lru_cache(maxsize=1024)
def _thumbnail(path: str, size: int) -> bytes | str:
    try:
        with Image.open(path) as image:
            if max(image.size) <= THUMBNAIL_PX:
                return path  # small already: Streamlit serves the file itself
            image = image.convert("RGB")
            image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", quality=88)
            return buffer.getvalue()
    except OSError:
        return path  # st.image says what is wrong with it


def thumbnail(path) -> bytes | str:
    """A card-sized copy of a picture, made once per file (files are named by their content, so never stale)."""
    path = str(path)
    try:
        size = os.stat(path).st_size
    except OSError:
        return path
    return _thumbnail(path, size)


def story_cast(project: ProjectView) -> dict[int, list[str]]:
    """actions.story_cast, remembered for the story's words and characters as they are (read on every run)."""
    texts = tuple((page.id, page.text) for page in project.pages)
    return _story_cast(texts, tuple((c.name, c.description) for c in project.characters))


@functools.lru_cache(maxsize=64)
def _story_cast(texts: tuple[tuple[int, str], ...], characters: tuple[tuple[str, str], ...]) -> dict[int, list[str]]:
    return actions.cast_by_page(texts, characters)
