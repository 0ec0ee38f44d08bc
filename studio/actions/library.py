"""The library's stories as wholes: make one, open the sample, and (with the screens' undo) delete one.

The bundle a deleted story is kept as, for Undo, is made here; renaming, copying, deleting and importing
stories go through here too, so every change to the library has one door.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from core import hardware
from core.errors import InputError
from engine.profiles import DEFAULT_PROFILE, get_profile
from engine.prompts import DEFAULT_STYLE
from storage import Library, ProjectView, StorageError
from storage.bundle import MAX_BUNDLE_BYTES
from storage.validate import MAX_TITLE
from studio.actions.pages import DEFAULT_TITLE, split_story
from studio.actions.pictures import drafts_for_new_book
from studio.actions.profiles import current_profile

SAMPLE_STORY = Path(__file__).resolve().parents[2] / "assets" / "sample_story.txt"

MAX_UNDO_BYTES = 512 * 1024 * 1024  # a story bigger than this as a bundle is deleted without an undo

MAX_BUNDLE_MB = MAX_BUNDLE_BYTES // 2**20  # what the library imports (server.maxUploadSize allows it)
# Streamlit holds an uploaded bundle in memory for as long as the page shows it; the models may take half of
# this computer's memory (engine.cache's budget). An upload may take an eighth of it, and never less than this.
UPLOAD_MEMORY_SHARE = 8
MIN_BUNDLE_UPLOAD_MB = 64


def bundle_upload_mb(memory_bytes: int | None = None) -> int:
    """The largest bundle the library page takes, in MB: what the library imports, or an eighth of this
    computer's memory when that is less (a larger bundle imports from a terminal, which reads it from disk)."""
    if memory_bytes is None:
        memory_bytes = hardware.memory_bytes()
        if memory_bytes is None:  # not known (Windows): the library's own limit
            return MAX_BUNDLE_MB
    share = memory_bytes // UPLOAD_MEMORY_SHARE // 2**20
    return max(MIN_BUNDLE_UPLOAD_MB, min(MAX_BUNDLE_MB, share))


def bundle_for_undo(lib: Library, project_id: int) -> bytes | None:
    """The story as a bundle, kept in the tab so its deletion can be undone; None when it cannot be made
    (a damaged picture file, no memory) or is too big to hold, and then the deletion has no undo."""
    try:
        data = lib.export_bundle(project_id)
    except (StorageError, MemoryError):
        return None
    return data if len(data) <= MAX_UNDO_BYTES else None


def create_project(
    lib: Library, title: str = "", author: str = "", story_text: str = "", profile: str | None = None
) -> ProjectView:
    """A new project; it records `profile`, else the current default profile (see project_profile). Its pictures
    start as quick drafts where this computer favours them for that profile (drafts_for_new_book)."""
    if profile is None:
        try:
            profile = current_profile().name
        except InputError:
            profile = DEFAULT_PROFILE
    try:
        drafts = drafts_for_new_book(get_profile(profile))
    except (InputError, KeyError):
        drafts = False
    return lib.create_project(
        (title or "").strip() or DEFAULT_TITLE,
        author=author or "",
        style=DEFAULT_STYLE,
        profile=profile,
        story_text=story_text,
        drafts=drafts,
    )


def open_sample(lib: Library) -> ProjectView:
    """A new project holding the sample story, already split into pages."""
    text = SAMPLE_STORY.read_text(encoding="utf-8")
    project = create_project(lib, story_text=text)
    return split_story(lib, project.id, project.version, text).project


def rename_project(lib: Library, project_id: int, title: str) -> ProjectView:
    """Give a story a new title (from the library, which shows no version to base it on: the latest is used)."""
    current = lib.get_project(project_id)
    return lib.rename_project(project_id, title, current.version)


def duplicate_project(lib: Library, project_id: int) -> ProjectView:
    """A copy of the story with every page, picture version and character, titled "… (copy)"."""
    return lib.duplicate_project(project_id)


def delete_project(lib: Library, project_id: int) -> bytes | None:
    """Delete a story with its pictures. Returns the story as a bundle, for the screen to keep so the
    deletion can be undone (import_bundle brings it back); None when it could not be kept (bundle_for_undo)."""
    kept = bundle_for_undo(lib, project_id)
    lib.delete_project(project_id)
    return kept


def import_bundle(lib: Library, data: bytes | BinaryIO) -> ProjectView:
    """A new story from a bundle (a story exported from the library, or one kept to undo a deletion)."""
    return lib.import_bundle(data)


IMPORTED_MARK = "imported"


@dataclass(frozen=True)
class Imported:
    project: ProjectView
    same_title_as: str | None = None  # the title it had in the bundle, when a story of that title was here already


def _free_title(title: str, taken: set[str]) -> str:
    """`title` marked "(imported)", "(imported 2)", … as the first of those no other story has, within MAX_TITLE."""
    for n in range(1, 1000):
        suffix = f" ({IMPORTED_MARK})" if n == 1 else f" ({IMPORTED_MARK} {n})"
        base = title
        if len(base) + len(suffix) > MAX_TITLE:
            base = base[: MAX_TITLE - len(suffix) - 1].rstrip() + "…"
        if base + suffix not in taken:
            return base + suffix
    return title


def import_story(lib: Library, data: bytes | BinaryIO) -> Imported:
    """A new story from a bundle the person chose. When the library already holds a story with its title,
    the new one is titled "… (imported)", so the two cards can be told apart, and `same_title_as` says so."""
    taken = {p.title for p in lib.list_projects()}
    project = lib.import_bundle(data)
    if project.title not in taken:
        return Imported(project)
    original = project.title
    project = lib.rename_project(project.id, _free_title(original, taken), project.version)
    return Imported(project, original)
