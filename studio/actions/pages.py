"""A story's text and pages: keep the text, cut it into pages, and move, delete, split or merge pages; a page's
own text, prompts and seed; the characters and the book details.

Every function takes the project version the screen's edit was based on: when another tab changed the story
since, storage refuses the edit with ConflictError and nothing is overwritten.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.errors import InputError
from core.limits import MAX_STORY_CHARS
from core.seeds import parse_seed
from engine import paging
from engine.paging import PagePlan, PageSpan
from engine.profiles import PROFILES
from engine.prompts import build_prompt
from storage import ConflictError, Library, NotFound, PageInput, PageView, ProjectView
from storage.validate import MAX_CLOSING, MAX_DEDICATION, MAX_SETTING
from storage.views import PagePlanInput
from studio.actions.jobs import active_jobs

DEFAULT_TITLE = "Untitled story"

STORY_SOURCE = "images"  # story_settings["source"] of a story written from pictures

MAX_DESCRIPTION_CHARS = 300  # a picture prompt holds about 60 words in all; more would only be cut off

MAX_SETTING_CHARS = MAX_SETTING  # where and when the story happens, on every page's prompt

MAX_DEDICATION_CHARS = MAX_DEDICATION  # printed on its own page after the cover

MAX_CLOSING_CHARS = MAX_CLOSING  # the closing page's words ("The End", "Goodnight, little ferry")


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
class PagesOutcome:
    """What a change of the story's pages did, counted from what was saved (for honest messages)."""

    project: ProjectView
    pages: int  # pages in the story now
    kept: int  # pages that kept their pictures (pages with pictures before and after)
    merged: int  # pages whose pictures joined another page as further versions
    loose: int  # pictures that went to the loose-pictures tray
    words_changed: int  # pages whose words changed since their picture was drawn
    title: str | None = None  # the title line the story opens with, if any (it is not a page)

    @property
    def message(self) -> str:
        """ "8 pages: 7 kept their pictures, 1 picture is in the loose pictures tray." """
        parts = []
        if self.kept:
            parts.append(f"{self.kept} kept {'its picture' if self.kept == 1 else 'their pictures'}")
        if self.merged:
            its = "its" if self.merged == 1 else "their"
            parts.append(f"{plural_pages(self.merged)} joined another page with {its} pictures")
        if self.loose:
            noun = "1 picture is" if self.loose == 1 else f"{self.loose} pictures are"
            parts.append(f"{noun} in the loose pictures tray")
        if self.words_changed:
            its = "its" if self.words_changed == 1 else "their"
            parts.append(f"{plural_pages(self.words_changed)} with words changed since {its} picture")
        text = plural_pages(self.pages) + (": " + ", ".join(parts) if parts else "")
        if self.title:
            text += f". The first line, “{self.title}”, is the book's title"
        return text + "."


def _spans(project: ProjectView) -> list[PageSpan]:
    return [PageSpan(key=page.id, start=page.start, end=page.end, text=page.text) for page in project.pages]


def _title_line(project: ProjectView) -> str | None:
    if not project.title_from_text or not project.pages:
        return None
    head = project.story_text[: project.pages[0].start].strip()
    return head or None


def _refuse_while_drawing(project_id: int, what: str) -> None:
    if active_jobs(project_id):
        raise InputError(f"Pictures are being drawn for this story: stop them, or wait for them, before {what}.")


def _check_length(text: str) -> None:
    if not isinstance(text, str):
        raise InputError("The story must be text.")
    if len(text) > MAX_STORY_CHARS:
        raise InputError(
            f"The story is too long: the limit is {MAX_STORY_CHARS:,} characters and this one "
            f"has {len(text):,}, so split it into several books."
        )


def _save_plan(
    lib: Library, before: ProjectView, expected_version: int, plan: PagePlan, label: str, *, title_from_text: bool
) -> PagesOutcome:
    """Save a plan from engine.paging, and count what it did from the project before and after."""
    title = plan.title if title_from_text and plan.title else None
    new_title = None
    # The title follows its line: a book without a title of its own, or whose title is that line, takes the line
    # as it is now (an edit of the line renames the book); a book the person titled otherwise keeps its title.
    if title and before.title.strip() in ("", DEFAULT_TITLE, (_title_line(before) or "").strip()):
        new_title = title[:200]
    project = lib.apply_pages(
        before.id,
        expected_version,
        plan.text,
        [PagePlanInput(p.start, p.end, keep=p.keep, absorb=p.absorb) for p in plan.pages],
        title=new_title,
        title_from_text=bool(title),
        label=label,
    )
    # The message says the line is the book's title only when it is (else Book details says it is not printed).
    return _outcome(before, project, title if title and project.title.strip() == title[:200].strip() else None)


def _outcome(before: ProjectView, after: ProjectView, title: str | None = None) -> PagesOutcome:
    live_after = {page.id for page in after.pages}
    on_live_page = {pic.id for page in after.pages for pic in page.pictures}
    loose_before = {pic.id for page in before.loose for pic in page.pictures}
    changed_before = {page.id for page in before.pages if page.selected is not None and page.selected.words_changed}
    return PagesOutcome(
        project=after,
        pages=len(after.pages),
        kept=sum(1 for page in before.pages if page.pictures and page.id in live_after),
        merged=sum(
            1
            for page in before.pages
            if page.pictures and page.id not in live_after and all(pic.id in on_live_page for pic in page.pictures)
        ),
        loose=len({pic.id for page in after.loose for pic in page.pictures} - loose_before),
        words_changed=sum(
            1
            for page in after.pages
            if page.selected is not None and page.selected.words_changed and page.id not in changed_before
        ),
        title=title,
    )


def plan_pages(text: str, *, sentences: int | None = 2, words: int | None = None) -> tuple[str | None, list]:
    """The story's title line (if any) and its pages, as the engine cuts them (a preview; nothing is saved)."""
    if not isinstance(text, str) or not text.strip():
        raise InputError("The story is empty: write or paste your story first, then split it into pages.")
    plan = paging.plan_split(text, [], sentences=None if words else sentences, words=words)
    if not plan.pages:
        raise InputError("The story has a title but no text after it: add the story itself.")
    return plan.title, [PageInput(text[p.start : p.end], p.start, p.end) for p in plan.pages]


def split_story(
    lib: Library,
    project_id: int,
    expected_version: int,
    text: str,
    *,
    sentences: int | None = 2,
    words: int | None = None,
) -> PagesOutcome:
    """ "Split into pages": save the story and cut it into pages afresh; every picture stays with the page whose
    words it was drawn for (engine.paging matches pages by their words), or waits in the loose-pictures tray.

    The first line becomes the book's title (and not a page) when it looks like one and the book has no other
    title; a book with its own title keeps that line as words of the story."""
    _check_length(text)
    if not text.strip():
        raise InputError("The story is empty: write or paste your story first, then split it into pages.")
    _refuse_while_drawing(project_id, "splitting it into pages again")
    before = lib.get_project(project_id)
    if before.version != expected_version:
        raise ConflictError()
    probe = paging.plan_split(text, [], sentences=None if words else sentences, words=words)
    take_title = bool(probe.title) and (
        before.title.strip() in ("", DEFAULT_TITLE) or before.title.strip() == (probe.title or "").strip()
    )
    plan = paging.plan_split(
        text, _spans(before), sentences=None if words else sentences, words=words, take_title=take_title
    )
    if not plan.pages:
        raise InputError("The story has a title but no text after it: add the story itself.")
    return _save_plan(lib, before, expected_version, plan, "Split into pages", title_from_text=take_title)


def save_story_text(
    lib: Library,
    project_id: int,
    expected_version: int,
    text: str,
    *,
    sentences: int | None = 2,
    words: int | None = None,
) -> PagesOutcome:
    """Keep the story box's text. A story with pages keeps them: the edit is carried onto the pages (a changed
    word changes its page's words; new paragraphs become new pages, cut at the sizes given; a page whose words
    were all deleted leaves with its pictures for the loose-pictures tray). Before the first split it is a draft."""
    _check_length(text)
    before = lib.get_project(project_id)
    if before.version != expected_version:
        raise ConflictError()
    if not before.pages:
        project = lib.update_project(project_id, expected_version, story_text=text)
        return PagesOutcome(project, 0, 0, 0, 0, 0)
    if text == before.story_text:
        return PagesOutcome(before, len(before.pages), 0, 0, 0, 0)
    if not text.strip():
        raise InputError(
            "The story box is empty, so it was not saved and every page is kept. To take pages out, delete "
            "them on the storyboard; to start a new story, use Start a new story in the library."
        )
    _refuse_while_drawing(project_id, "changing its words")
    title = _title_line(before)
    plan = paging.plan_edit(
        before.story_text, _spans(before), text, sentences=None if words else sentences, words=words, title=title
    )
    return _save_plan(lib, before, expected_version, plan, "Edit the story", title_from_text=plan.title is not None)


def save_draft(lib: Library, project_id: int, expected_version: int, text: str) -> ProjectView:
    """Keep the story box's text (see save_story_text): the story and its pages never disagree."""
    return save_story_text(lib, project_id, expected_version, text).project


def move_page(lib: Library, project_id: int, page_id: int, expected_version: int, step: int) -> ProjectView:
    """Move a page one place up (step -1) or down (step +1), by its id: its pictures, seed and prompts go with
    it; only words move, so the paragraph breaks stay where the author put them. A story told from pictures
    keeps their order."""
    project, i = _page_index(lib, project_id, page_id)
    j = i + step
    if step not in (-1, 1) or not 0 <= j < len(project.pages):
        raise InputError(f"Page {i + 1} is already the {'first' if step < 0 else 'last'} page.")
    text, spans = paging.move_page(project.story_text, _spans(project), i, j)
    order = [page.id for page in project.pages]
    order.insert(j, order.pop(i))
    plan = [PagePlanInput(span.start, span.end, keep=key) for span, key in zip(spans, order)]
    return lib.apply_pages(project.id, expected_version, text, plan, label=f"Move page {i + 1}")


def delete_page(lib: Library, project_id: int, page_id: int, expected_version: int) -> ProjectView:
    """Delete a page, by its id: its words leave the story with the separator that belongs to them, and the
    page goes to the story's bin with its pictures (Undo, or bring it back from the bin)."""
    project, i = _page_index(lib, project_id, page_id)
    if len(project.pages) == 1:
        raise InputError(
            "This is the story's only page: change the story text instead, or delete the story in the library."
        )
    text, spans, _removed = paging.delete_page(project.story_text, _spans(project), i)
    keys = [page.id for page in project.pages if page.id != page_id]
    plan = [PagePlanInput(span.start, span.end, keep=key) for span, key in zip(spans, keys)]
    return lib.apply_pages(project.id, expected_version, text, plan, deleted=(page_id,), label=f"Delete page {i + 1}")


def bring_back_page(lib: Library, project_id: int, page_id: int, expected_version: int) -> ProjectView:
    """Put a page from the bin (or the loose-pictures tray) back into the story, with its pictures, at its old
    place (its words come back as a paragraph of their own there). A story told from pictures keeps their order
    (its loose pictures can still go on a page, and Undo brings a page back)."""
    project = lib.get_project(project_id)
    if project.version != expected_version:
        raise ConflictError()
    _refuse_told(project)
    page = next((p for p in [*project.loose, *(project.bin.pages if project.bin else [])] if p.id == page_id), None)
    if page is None:
        raise NotFound("That page is no longer in the bin or the tray. It may have been changed in another tab.")
    at = min(page.position, len(project.pages))
    removed = paging.RemovedPage(words=page.text, separator="\n\n", before=at > 0, at=len(project.story_text))
    text, spans = paging.insert_page(project.story_text, _spans(project), at, removed)
    keys = [p.id for p in project.pages]
    keys.insert(at, page.id)
    plan = [PagePlanInput(span.start, span.end, keep=key) for span, key in zip(spans, keys)]
    return lib.apply_pages(project.id, expected_version, text, plan, label="Bring back a page")


def title_line_to_page(lib: Library, project_id: int, expected_version: int) -> ProjectView:
    """The story's first line, taken as the book's title, becomes the story's first page (the title stays)."""
    project = lib.get_project(project_id)
    head = project.story_text[: project.pages[0].start] if project.pages else project.story_text
    start, end = len(head) - len(head.lstrip()), len(head.rstrip())
    if not project.title_from_text or end <= start:
        raise InputError("The story has no title line to make a page of.")
    plan = [PagePlanInput(start, end)] + [PagePlanInput(p.start, p.end, keep=p.id) for p in project.pages]
    return lib.apply_pages(
        project.id,
        expected_version,
        project.story_text,
        plan,
        title_from_text=False,
        label="Make the title line a page",
    )


def undo(lib: Library, project_id: int, expected_version: int) -> tuple[ProjectView, str]:
    """Take back the story's last edit; returns the project and a sentence saying what was undone."""
    project, label = lib.undo(project_id, expected_version)
    return project, f"Undone: {label}."


def redo(lib: Library, project_id: int, expected_version: int) -> tuple[ProjectView, str]:
    """Bring back the edit the last undo took back."""
    project, label = lib.redo(project_id, expected_version)
    return project, f"Redone: {label}."


TOLD_KEEPS_ORDER = "A story told from pictures follows their order."  # why a button is off, beside it


def _refuse_told(project: ProjectView) -> None:
    """Pages of a story told from pictures are not moved, deleted or put back: they pair with its pictures."""
    if told_from_pictures(project):
        raise InputError(
            "A story told from pictures follows their order, one page a picture: start it again "
            "on the From images page with the pictures you want, in the order you want."
        )


def _page_index(lib: Library, project_id: int, page_id: int) -> tuple[ProjectView, int]:
    """The project and the index of one of its pages, for moving or deleting a page."""
    project = lib.get_project(project_id)
    _refuse_told(project)
    i = next((k for k, page in enumerate(project.pages) if page.id == page_id), None)
    if i is None:
        raise NotFound("That page no longer exists. It may have been changed in another tab or window.")
    return project, i


def split_points(text: str) -> list[tuple[int, str]]:
    """Where a page can be split: (character index, the words the second part starts with)."""
    return paging.split_points(text)


def split_page(lib: Library, page_id: int, at: int, expected_version: int) -> ProjectView:
    """Split a page in two at character `at` of its text (one of split_points); each picture goes with the part
    most like the words it was drawn for (Library.split_page), the seed, prompts and lock stay with the first."""
    return lib.split_page(page_id, at, expected_version)


def split_message(project: ProjectView, page_id: int) -> str:
    """Where a split page's pictures went, counted from the saved project (`page_id`: the first part):
    "Split page 2 in two: 2 pictures stayed on the first part, 1 went with the second." """
    pages = project.pages
    index = next((i for i, page in enumerate(pages) if page.id == page_id), None)
    if index is None:
        return "Split the page in two."
    first = len(pages[index].pictures)
    second = len(pages[index + 1].pictures) if index + 1 < len(pages) else 0
    text = f"Split page {index + 1} in two"

    def pictures(n: int) -> str:
        return "its picture" if n == 1 else f"its {n} pictures"

    if first and second:
        text += f": {first} picture{'s' if first != 1 else ''} stayed on the first part, {second} went with the second"
    elif first:
        text += f": {pictures(first)} stayed on the first part"
    elif second:
        text += f": {pictures(second)} went with the second part"
    return text + "."


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
    if text.strip() != page.text:
        paging.edit_page(page.text, [(0, len(page.text))], 0, text)  # refuses words no picture can be drawn from
        changes["text"] = text.strip()
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
    text: str,
    style: str,
    characters: Sequence[tuple[str, str]] = (),
    override: str | None = None,
    setting: str = "",
    present: Sequence[str] | None = None,
) -> str:
    """The prompt a page would be drawn from (the token count is guessed; the job fits it exactly). present: the
    characters on the page as the story reads (actions.story_cast); without it, those it names. Remembered: the
    cards show it on every run and a job records it for each page it draws."""
    return _prompt_preview(
        text,
        style,
        tuple((name, description) for name, description in characters),
        override,
        setting,
        tuple(present) if present is not None and characters else None,
    )


@functools.lru_cache(maxsize=4096)
def _prompt_preview(
    text: str,
    style: str,
    characters: tuple[tuple[str, str], ...],
    override: str | None,
    setting: str,
    present: tuple[str, ...] | None,
) -> str:
    try:
        return build_prompt(
            text,
            style,
            characters=list(characters) or None,
            setting=setting or None,
            override=override,
            present=list(present) if present is not None else None,
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


# A few words per profile for the Book details' dropdown, which cuts a long line off; the profile's whole
# description goes in the help beside it.
PROFILE_WORDS = {
    "fast": "quick pictures on a GPU",
    "classic": "the picture-book look, slower",
    "quality": "best pictures, needs a big GPU",
    "tiny": "try it offline, draws noise",
}
PROFILE_WORDS_MAX = 32  # characters: what the dropdown shows beside a name without cutting it


def profile_label(name: str) -> str:
    """ "fast: quick pictures on a GPU": a profile's name and a few words, short enough for a dropdown. A profile
    without its own words gets the first part of its description, cut at a word."""
    words = PROFILE_WORDS.get(name)
    if words is None:
        profile = PROFILES.get(name)
        first = (profile.description if profile is not None else "").split(":")[0].split(". ")[0].strip()
        if len(first) > PROFILE_WORDS_MAX:
            first = first[: PROFILE_WORDS_MAX + 1].rsplit(" ", 1)[0].rstrip(",;") + "…"
        words = first
    return f"{name}: {words}" if words else name


DETAIL_SAVED = {
    "title": "Saved the title.",
    "author": "Saved the author.",
    "setting": "Saved where and when the story happens. Redraw pages to see it.",
    "dedication": "Saved the dedication.",
    "closing": "Saved the closing words.",
    "style": "Saved the picture style: the next pictures are drawn in it. Redraw pages to see it.",
    "profile": "Saved the models: the next pictures and words are made with them.",
}


def save_detail(lib: Library, project_id: int, expected_version: int, field: str, value: str) -> ProjectView:
    """Keep one book detail the moment it is picked or typed (see DETAIL_SAVED), as one undo step."""
    if field not in DETAIL_SAVED:
        raise InputError(f"{field!r} is not a book detail.")
    return lib.update_project(project_id, expected_version, **{field: value})


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
    closing: str | None = None,
) -> ProjectView:
    """Keep the book details: title, author, where and when, dedication, picture style, models (profile) and,
    when given, the closing page's words ("" for "The End" in the story's language)."""
    return lib.update_project(
        project_id,
        expected_version,
        title=title,
        author=author,
        setting=setting,
        dedication=dedication,
        style=style,
        profile=profile,
        closing=closing,
    )
