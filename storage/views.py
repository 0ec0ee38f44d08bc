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
    pictures: list[PictureView] = field(default_factory=list)
    selected: PictureView | None = None


@dataclass(frozen=True)
class CharacterView:
    id: int
    position: int
    name: str
    description: str


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

    @property
    def segments(self) -> list[PageView]:
        """The pages under their old name. Only exports.book_from_project still reads it (duck-typed);
        remove this once exports reads ``pages``."""
        return self.pages


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
