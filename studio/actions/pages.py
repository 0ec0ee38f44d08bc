"""A story's text and pages: keep the text, cut it into pages, and move, delete, split or merge pages; a page's
own text, prompts and seed; the characters and the book details.

Every function takes the project version the screen's edit was based on: when another tab changed the story
since, storage refuses the edit with ConflictError and nothing is overwritten.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.errors import InputError
from core.limits import MAX_STORY_CHARS
from core.seeds import parse_seed
from engine.prompts import build_prompt
from engine.segment import segment_story, split_title
from storage import Library, NotFound, PageInput, PageView, ProjectView
from storage.validate import MAX_DEDICATION, MAX_SETTING
from studio.actions.jobs import active_jobs

DEFAULT_TITLE = "Untitled story"

STORY_SOURCE = "images"  # story_settings["source"] of a story written from pictures

MAX_DESCRIPTION_CHARS = 300  # a picture prompt holds about 60 words in all; more would only be cut off

MAX_SETTING_CHARS = MAX_SETTING  # where and when the story happens, on every page's prompt

MAX_DEDICATION_CHARS = MAX_DEDICATION  # printed on its own page after the cover


def told_from_pictures(project: ProjectView | None) -> bool:
    """Whether the story was written from pictures (its pages pair with its source pictures by position)."""
    return project is not None and (project.story_settings or {}).get("source") == STORY_SOURCE


def find_page(project: ProjectView, page_id: int) -> PageView:
    """The project's page with this id; NotFound when another tab took it away."""
    for page in project.pages:
        if page.id == page_id:
            return page
    raise NotFound("That page no longer exists. It may have been changed in another tab or window.")


def plural_pages(n: int) -> str:
    """ "1 page", "3 pages": for sentences about a story's pages."""
    return f"{n} page{'s' if n != 1 else ''}"


@dataclass(frozen=True)
class SplitOutcome:
    project: ProjectView
    title: str | None  # the title line the story opened with, if any (it is not a page)
    pages: int
    kept_pictures: int  # pages whose text did not change and so kept their pictures


def plan_pages(text: str, *, sentences: int | None = 2, words: int | None = None) -> tuple[str | None, list]:
    """The story's title line (if any) and its pages, as the engine cuts them."""
    if not isinstance(text, str) or not text.strip():
        raise InputError("The story is empty: write or paste your story first, then split it into pages.")
    page_texts = segment_story(text, sentences_per_segment=None if words else sentences, words_per_segment=words)
    title, body_start = split_title(text)
    if title is not None:
        page_texts = [s for s in page_texts if s.start >= body_start]
        if not page_texts:
            raise InputError("The story has a title but no text after it: add the story itself.")
    return title, page_texts


def split_story(
    lib: Library,
    project_id: int,
    expected_version: int,
    text: str,
    *,
    sentences: int | None = 2,
    words: int | None = None,
) -> SplitOutcome:
    """Save the story and cut it into pages; pages whose text is unchanged keep their pictures and seeds."""
    if active_jobs(project_id):
        raise InputError(
            "Pictures are being drawn for this story: stop them, or wait for them, before "
            "splitting it into pages again."
        )
    title, page_texts = plan_pages(text, sentences=sentences, words=words)
    inputs = [PageInput(text=s.text, start=s.start, end=s.end) for s in page_texts]
    project = lib.save_story(project_id, expected_version, text, inputs)
    if title and project.title.strip() in ("", DEFAULT_TITLE):
        project = lib.update_project(project.id, project.version, title=title[:200])
    kept = sum(1 for page in project.pages if page.pictures)
    return SplitOutcome(project=project, title=title, pages=len(project.pages), kept_pictures=kept)


def save_draft(lib: Library, project_id: int, expected_version: int, text: str) -> ProjectView:
    """Keep the story text without cutting it into pages again (the pages and their pictures stay as they are)."""
    if len(text) > MAX_STORY_CHARS:
        raise InputError(
            f"The story is too long: the limit is {MAX_STORY_CHARS:,} characters and this one "
            f"has {len(text):,}, so split it into several books."
        )
    return lib.update_project(project_id, expected_version, story_text=text)


def move_page(lib: Library, project_id: int, page_id: int, expected_version: int, step: int) -> ProjectView:
    """Swap a page with the one before (step -1) or after (step +1); its pictures, seed and prompts go with it,
    and the two pages' passages trade places in the story text. A story told from pictures keeps their order."""
    project, pages, i = _pages_of(lib, project_id, page_id)
    j = i + step
    if step not in (-1, 1) or not 0 <= j < len(pages):
        raise InputError(f"Page {i + 1} is already the {'first' if step < 0 else 'last'} page.")
    pages[i], pages[j] = pages[j], pages[i]
    return _save_pages(lib, project, expected_version, pages)


def delete_page(lib: Library, project_id: int, page_id: int, expected_version: int) -> ProjectView:
    """Take a page out of the story, with its pictures; its passage leaves the story text too."""
    project, pages, i = _pages_of(lib, project_id, page_id)
    if len(pages) == 1:
        raise InputError(
            "This is the story's only page: change the story text instead, or delete the story in the library."
        )
    return _save_pages(lib, project, expected_version, pages[:i] + pages[i + 1 :])


def _pages_of(lib: Library, project_id: int, page_id: int) -> tuple[ProjectView, list[PageView], int]:
    """The project, its pages and the index of one of them, for moving or deleting a page."""
    project = lib.get_project(project_id)
    if told_from_pictures(project):
        raise InputError(
            "A story told from pictures follows their order, one page a picture: start it again "
            "on the From images page with the pictures you want, in the order you want."
        )
    pages = list(project.pages)
    i = next((k for k, page in enumerate(pages) if page.id == page_id), None)
    if i is None:
        raise NotFound("That page no longer exists. It may have been changed in another tab or window.")
    return project, pages, i


def _save_pages(lib: Library, project: ProjectView, expected_version: int, order: list[PageView]) -> ProjectView:
    """Save `order` (some of the project's pages, in a new order) as the story.

    Each page's passage of the story text goes with it; the text between pages (blank lines, a title)
    stays where it was. Pages whose offsets no longer line up with the text are joined by blank lines.
    """
    pages, text = list(project.pages), project.story_text
    if all(0 <= a.start <= a.end <= b.start for a, b in itertools.pairwise(pages)) and pages[-1].end <= len(text):
        head, tail = text[: pages[0].start], text[pages[-1].end :]
        body = {page.id: text[page.start : page.end] for page in pages}
        gaps = [text[a.end : b.start] for a, b in itertools.pairwise(pages)]
    else:
        head, tail, body, gaps = "", "", {page.id: page.text for page in pages}, ["\n\n"] * (len(pages) - 1)
    pieces, inputs, at = [head], [], len(head)
    for slot, page in enumerate(order):
        if slot:
            pieces.append(gaps[slot - 1])
            at += len(gaps[slot - 1])
        pieces.append(body[page.id])
        inputs.append(PageInput(page.text, at, at + len(body[page.id])))
        at += len(body[page.id])
    return lib.save_story(project.id, expected_version, "".join(pieces + [tail]), inputs)


def split_points(text: str) -> list[tuple[int, str]]:
    """Where a page can be split: (character index, the words the second part starts with)."""
    points: list[int] = []
    try:
        points = [s.start for s in segment_story(text, sentences_per_segment=1)[1:]]
    except InputError:
        points = []
    if not points:  # one sentence: offer the gap between words nearest the middle
        gaps = [i + 1 for i, ch in enumerate(text) if ch.isspace() and 0 < i < len(text) - 1]
        if gaps:
            points = [min(gaps, key=lambda i: abs(i - len(text) // 2))]
    out = []
    for at in points:
        tail = text[at:].lstrip()
        words = tail.split()
        preview = " ".join(words[:6]) + (" …" if len(words) > 6 else "")
        out.append((at, preview))
    return out


def split_page(lib: Library, page_id: int, at: int, expected_version: int) -> ProjectView:
    """Split a page in two at character `at` of its text (one of split_points); the first part keeps its pictures."""
    return lib.split_page(page_id, at, expected_version)


def merge_pages(lib: Library, page_id: int, expected_version: int) -> ProjectView:
    """Join a page with the next one; the pictures of both are kept, the second page's as further versions."""
    return lib.merge_pages(page_id, expected_version)


@dataclass(frozen=True)
class PageEdit:
    version: int  # the version further edits are based on: the saved one, or the given one when nothing changed
    changed: tuple[str, ...]  # the fields saved; empty when the editor held what the page holds
    project: ProjectView | None = None  # the project after the save; None when nothing changed


def edit_page(
    lib: Library,
    page: PageView,
    expected_version: int,
    *,
    text: str,
    prompt: str,
    negative_prompt: str,
    seed: str,
    locked: bool,
) -> PageEdit:
    """Save what a person typed in a page's editor, drawn from `page`: only the fields that differ from it.

    An empty prompt or negative prompt means none (the page's text and the style's own are used); `seed` is
    the text typed in the seed box ("12,345" reads as 12345; empty: a new one is picked when drawing).
    Comparing with the page as the editor showed it, not as stored now, keeps words a story job wrote
    meanwhile from being overwritten by an editor nobody typed in.
    """
    changes: dict[str, Any] = {}
    if text != page.text:
        changes["text"] = text
    prompt_override = prompt.strip() or None
    if prompt_override != page.prompt_override:
        changes["prompt_override"] = prompt_override
    negative = negative_prompt.strip() or None
    if negative != page.negative_prompt:
        changes["negative_prompt"] = negative
    typed_seed = parse_seed(seed)
    if typed_seed != page.seed:
        changes["seed"] = typed_seed
    if bool(locked) != page.locked:
        changes["locked"] = bool(locked)
    if not changes:
        return PageEdit(expected_version, ())
    project = lib.update_page(page.id, expected_version, **changes)
    return PageEdit(project.version, tuple(changes), project)


def prompt_preview(
    text: str, style: str, characters: Sequence[tuple[str, str]] = (), override: str | None = None, setting: str = ""
) -> str:
    """The prompt a page would be drawn from (the token count is guessed; the job fits it exactly)."""
    try:
        return build_prompt(
            text, style, characters=list(characters) or None, setting=setting or None, override=override
        ).prompt
    except InputError:
        return override or ""


def clean_characters(rows: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The (name, description) pairs a person typed, ready to store: blank rows dropped, spaces trimmed.

    InputError for a description without a name (it could never be matched to a page), for one name
    given twice (which description should a page get?) and for a description too long for a prompt.
    """
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for n, (name, description) in enumerate(rows, start=1):
        name, description = " ".join((name or "").split()), " ".join((description or "").split())
        if not name and not description:
            continue
        if not name:
            raise InputError(f"Character {n} has a description but no name: give it the name the story calls it by.")
        if name.casefold() in seen:
            raise InputError(f"Two characters are called “{name}”: give each its own name, or keep one of them.")
        if len(description) > MAX_DESCRIPTION_CHARS:
            raise InputError(
                f"{name}'s description is {len(description):,} characters long; keep it under "
                f"{MAX_DESCRIPTION_CHARS} (a few words a picture can show)."
            )
        seen.add(name.casefold())
        out.append((name, description))
    return out


def save_characters(
    lib: Library, project_id: int, expected_version: int, rows: Sequence[tuple[str, str]]
) -> ProjectView:
    """Keep the (name, description) rows a person typed as the story's characters (see clean_characters)."""
    return lib.set_characters(project_id, expected_version, clean_characters(rows))


def save_details(
    lib: Library,
    project_id: int,
    expected_version: int,
    *,
    title: str,
    author: str,
    setting: str,
    dedication: str,
    style: str,
    profile: str,
) -> ProjectView:
    """Keep the book details: title, author, where and when, dedication, picture style and models (profile)."""
    return lib.update_project(
        project_id,
        expected_version,
        title=title,
        author=author,
        setting=setting,
        dedication=dedication,
        style=style,
        profile=profile,
    )
