"""What the library hands out: frozen snapshots, never live ORM objects or sessions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class PictureView:
    id: int
    page_id: int
    version: int
    image_path: Path
    settings: dict[str, Any]
    origin: str
    created: datetime
    selected: bool
    state: str = "kept"  # or "binned": discarded, in the story's bin until it is emptied
    # What was learnt after drawing: "scores" ({"character": 0.71, ...}), "candidate" (1-based) and "candidates"
    # (how many were drawn together), "draft" (True until finished); see docs/formats.md.
    meta: dict[str, Any] = field(default_factory=dict)
    # The page's words changed since this picture was drawn (False when that is not known).
    words_changed: bool = False


@dataclass(frozen=True)
class PageView:
    id: int
    position: int
    text: str
    start: int
    end: int
    prompt_override: str | None
    negative_prompt: str | None
    seed: int | None
    locked: bool
    pictures: list[PictureView] = field(default_factory=list)  # its kept versions, oldest first
    selected: PictureView | None = None
    state: str = "live"  # "gone": its words left the story (pictures in the tray); "deleted": in the bin


@dataclass(frozen=True)
class CharacterView:
    id: int
    position: int
    name: str
    description: str
    reference_path: Path | None = None  # the character's reference picture (cast sheet), None for none
    reference_settings: dict[str, Any] | None = None  # how it was drawn (None: uploaded, or none)
    # The pictures drawn for its reference, oldest first, whose files are still there (the cast sheet offers them).
    proposals: tuple[ProposalView, ...] = ()
    likeness: dict[str, Any] | None = None  # how alike it looks across its pages, when measured (see models)


@dataclass(frozen=True)
class ProposalView:
    """A picture drawn for a character's reference, on offer: ``index`` names it in the character's list."""

    index: int
    image_path: Path
    settings: dict[str, Any] | None
    score: float | None
    in_use: bool  # it is the character's reference picture now


@dataclass(frozen=True)
class SourceImageView:
    id: int
    position: int
    image_path: Path
    caption: str


@dataclass(frozen=True)
class ProjectView:
    id: int
    title: str
    author: str
    style: str
    profile: str
    story_text: str
    version: int
    created: datetime
    updated: datetime
    pages: list[PageView] = field(default_factory=list)
    characters: list[CharacterView] = field(default_factory=list)
    source_images: list[SourceImageView] = field(default_factory=list)
    story_settings: dict[str, Any] | None = None  # how a generated story was written; None if typed
    setting: str = ""  # where and when the story happens, for every picture's prompt
    dedication: str = ""  # printed on its own page after the cover
    closing: str = ""  # the closing page's words; "" for the default ("The End" in the story's language)
    drafts: bool = False  # pages are drawn as quick drafts first, finished later
    candidates: int = 1  # pictures drawn per page (best of N)
    title_from_text: bool = False  # the title is the story text's first line (not a page)
    # Pages whose words left the story while they still hold pictures: the loose-pictures tray.
    loose: list[PageView] = field(default_factory=list)
    bin: BinView | None = None
    undo: str | None = None  # what Undo would take back ("Split into pages"), None when there is nothing
    redo: str | None = None  # what Redo would bring back

    @property
    def segments(self) -> list[PageView]:
        """The pages under their old name. Only exports.book_from_project still reads it (duck-typed);
        remove this once exports reads ``pages``."""
        return self.pages


@dataclass(frozen=True)
class BinView:
    """What the user removed from a story and can still bring back, until the bin is emptied."""

    pages: list[PageView] = field(default_factory=list)  # deleted pages, with all their pictures
    pictures: list[PictureView] = field(default_factory=list)  # discarded versions of other pages
    files_bytes: int = 0  # about what emptying the bin frees on disk

    @property
    def empty(self) -> bool:
        return not self.pages and not self.pictures


@dataclass(frozen=True)
class ProjectSummary:
    id: int
    title: str
    author: str
    updated: datetime
    page_count: int
    cover_image: Path | None


@dataclass(frozen=True)
class PageInput:
    """One page of a story as the splitter (or the user) proposes it; see Library.save_story."""

    text: str
    start: int
    end: int
    prompt_override: str | None = None
    negative_prompt: str | None = None
    seed: int | None = None
    locked: bool = False


@dataclass(frozen=True)
class PagePlanInput:
    """One page of a story as a plan gives it (Library.apply_pages): ``story_text[start:end]`` are its words.

    ``keep`` names the live page whose row it continues (pictures, seed, prompts, lock), None for a new page
    (which takes the prompts, seed and lock given here); ``absorb`` names live pages whose pictures join it as
    further versions (a merge).
    """

    start: int
    end: int
    keep: int | None = None
    absorb: tuple[int, ...] = ()
    prompt_override: str | None = None
    negative_prompt: str | None = None
    seed: int | None = None
    locked: bool = False
