"""The Library's story text and pages: save the story with its pages, change one page, merge two pages,
split one; and what background jobs write into a story (captions, passages, its title and settings)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from storage import validate
from storage.errors import InvalidInput, NotFound
from storage.library.base import UNSET, LibraryBase
from storage.models import Page
from storage.views import (
    PageInput,
    ProjectView,
)


class PageMethods(LibraryBase):
    """The story text and its pages."""

    def save_story(
        self, project_id: int, expected_version: int, story_text: str, pages: Sequence[PageInput]
    ) -> ProjectView:
        """Replace the story and its list of pages.

        A new page whose text equals an old page's text (ignoring differences in whitespace) keeps
        that page's row: its pictures, and its seed, prompts and lock where the new page gives none.
        Old pages that match nothing are deleted with their pictures.
        """
        story_text = validate.text(story_text, "The story", validate.MAX_STORY)
        if not isinstance(pages, (list, tuple)):
            raise InvalidInput("The pages must be given as a list.")
        if len(pages) > validate.MAX_PAGES:
            raise InvalidInput(
                f"The story is split into {len(pages):,} pages; the most we keep is {validate.MAX_PAGES:,}."
            )
        inputs = [self._check_page_input(item, n, len(story_text)) for n, item in enumerate(pages, start=1)]
        for n, item in enumerate(inputs, start=1):
            if item.end < item.start:
                raise InvalidInput(f"Page {n} ends (at {item.end}) before it starts (at {item.start}).")
        with self._write() as session:
            project = self._project_for_edit(session, project_id, expected_version)
            old_pages = list(project.pages)
            old_by_text: dict[str, list[Page]] = {}
            for page in old_pages:
                old_by_text.setdefault(_normalise(page.text), []).append(page)
            kept: set[int] = set()
            ordered: list[Page] = []
            for item in inputs:
                candidates = old_by_text.get(_normalise(item.text))
                if candidates:
                    page = candidates.pop(0)
                    kept.add(page.id)
                    page.text, page.start, page.end = item.text, item.start, item.end
                    if item.prompt_override is not None:
                        page.prompt_override = item.prompt_override
                    if item.negative_prompt is not None:
                        page.negative_prompt = item.negative_prompt
                    if item.seed is not None:
                        page.seed = item.seed
                    page.locked = bool(page.locked or item.locked)
                else:
                    page = Page(
                        text=item.text,
                        start=item.start,
                        end=item.end,
                        prompt_override=item.prompt_override,
                        negative_prompt=item.negative_prompt,
                        seed=item.seed,
                        locked=item.locked,
                        position=0,
                    )
                    project.pages.append(page)
                ordered.append(page)
            dropped = [page for page in old_pages if page.id not in kept]
            shas = {picture.image_sha256 for page in dropped for picture in page.pictures}
            for page in dropped:
                project.pages.remove(page)
            self._renumber(ordered)
            project.story_text = story_text
            self._touch(project)
            view = self._project_view(session, project.id)
        self._collect_garbage(shas)
        return view

    @staticmethod
    def _check_page_input(raw: Any, n: int, story_len: int) -> PageInput:
        # PageInput, or anything shaped like it (the engine's own page type, a dict).
        if isinstance(raw, dict):
            fields = raw
        elif all(hasattr(raw, name) for name in ("text", "start", "end")):
            fields = {name: getattr(raw, name) for name in PageInput.__dataclass_fields__ if hasattr(raw, name)}
        else:
            raise InvalidInput(f"Page {n} must be given as a PageInput (text, start, end).")
        try:
            item = PageInput(**{k: fields[k] for k in PageInput.__dataclass_fields__ if k in fields})
        except TypeError:
            raise InvalidInput(f"Page {n} needs a text, a start and an end.") from None
        return PageInput(
            text=validate.text(item.text, f"Page {n}'s text", validate.MAX_STORY, required=True),
            start=validate.integer(item.start, f"Page {n}'s start offset", 0, story_len),
            end=validate.integer(item.end, f"Page {n}'s end offset", 0, story_len),
            prompt_override=validate.optional_text(item.prompt_override, f"Page {n}'s prompt", validate.MAX_PROMPT),
            negative_prompt=validate.optional_text(
                item.negative_prompt, f"Page {n}'s negative prompt", validate.MAX_PROMPT
            ),
            seed=validate.seed(item.seed, f"Page {n}'s seed"),
            locked=validate.flag(item.locked, f"Whether page {n} is locked"),
        )

    def update_page(
        self,
        page_id: int,
        expected_version: int,
        *,
        text: str = UNSET,
        prompt_override: str | None = UNSET,
        negative_prompt: str | None = UNSET,
        seed: int | None = UNSET,
        locked: bool = UNSET,
    ) -> ProjectView:
        """Change the given fields of one page; None clears the prompt fields and the seed.

        The page's start/end offsets are left as they were (they point into the original story).
        """
        changes: dict[str, Any] = {}
        if text is not UNSET:
            changes["text"] = validate.text(text, "The page's text", validate.MAX_STORY, required=True)
        if prompt_override is not UNSET:
            changes["prompt_override"] = validate.optional_text(prompt_override, "The prompt", validate.MAX_PROMPT)
        if negative_prompt is not UNSET:
            changes["negative_prompt"] = validate.optional_text(
                negative_prompt, "The negative prompt", validate.MAX_PROMPT
            )
        if seed is not UNSET:
            changes["seed"] = validate.seed(seed)
        if locked is not UNSET:
            changes["locked"] = validate.flag(locked, "Whether the page is locked")
        with self._write() as session:
            page = self._page(session, page_id)
            project = self._project_for_edit(session, page.project_id, expected_version)
            for name, value in changes.items():
                setattr(page, name, value)
            self._touch(project)
            return self._project_view(session, project.id)

    def merge_pages(self, page_id: int, expected_version: int) -> ProjectView:
        """Join a page with the next one. The first page keeps its pictures, seed, prompts and lock;
        the second page's pictures are moved over as further (unselected) versions, not thrown away."""
        with self._write() as session:
            first = self._page(session, page_id)
            project = self._project_for_edit(session, first.project_id, expected_version)
            pages = list(project.pages)
            index = pages.index(first)
            if index + 1 >= len(pages):
                raise InvalidInput("This is the last page, so there is no next page to merge it with.")
            second = pages[index + 1]
            story = project.story_text
            in_sync = (
                first.end <= second.start
                and story[first.start : first.end] == first.text
                and story[second.start : second.end] == second.text
            )
            merged = story[first.start : second.end] if in_sync else f"{first.text.rstrip()} {second.text.lstrip()}"
            if len(merged) > validate.MAX_STORY:
                raise InvalidInput("The merged page would be longer than the longest story we keep.")
            first.text = merged
            first.start, first.end = min(first.start, second.start), max(first.end, second.end)
            next_version = max((picture.version for picture in first.pictures), default=0) + 1
            has_selected = any(picture.selected for picture in first.pictures)
            moved = sorted(second.pictures, key=lambda picture: picture.version)
            for picture in moved:
                picture.version = -picture.version  # (page, version) is unique: park them where no version lives
            session.flush()
            for offset, picture in enumerate(moved):
                picture.page_id = first.id
                picture.version = next_version + offset
                if has_selected:
                    picture.selected = False
            session.flush()
            session.expire(first, ["pictures"])
            session.expire(second, ["pictures"])
            project.pages.remove(second)
            self._renumber(project.pages)
            self._touch(project)
            return self._project_view(session, project.id)

    def split_page(self, page_id: int, at: int, expected_version: int) -> ProjectView:
        """Split a page's text at character index ``at``; the first part keeps the page's pictures,
        seed, prompts and lock, the second becomes a new page right after it."""
        with self._write() as session:
            page = self._page(session, page_id)
            project = self._project_for_edit(session, page.project_id, expected_version)
            text = page.text
            at = validate.integer(at, "The split position", 1, max(1, len(text) - 1))
            head, tail = text[:at].rstrip(), text[at:].lstrip()
            if not head.strip() or not tail.strip():
                raise InvalidInput("Split the page between words, so that both parts keep some text.")
            in_sync = project.story_text[page.start : page.end] == text
            boundary = page.start + at if in_sync else min(page.start + at, page.end)
            tail_start = boundary + (len(text) - at - len(tail)) if in_sync else boundary
            head_end = page.start + len(head) if in_sync else boundary
            new = Page(
                text=tail,
                start=tail_start,
                end=page.end,
                prompt_override=None,
                negative_prompt=page.negative_prompt,
                seed=None,
                locked=False,
                position=page.position + 1,
            )
            page.text, page.end = head, head_end
            pages = list(project.pages)
            pages.insert(pages.index(page) + 1, new)
            project.pages.append(new)
            self._renumber(pages)
            self._touch(project)
            return self._project_view(session, project.id)

    def save_job_output(
        self,
        project_id: int,
        *,
        based_on: int | None = None,
        captions: Mapping[int, str] | None = None,
        passages: Mapping[int, str] | None = None,
        title: str | None = None,
        story_settings: dict[str, Any] | None = UNSET,
    ) -> ProjectView:
        """Save what a background job made for the project, in one transaction, without bumping ``version``.

        Only job callbacks call this (a person's edit names its version and bumps it): like
        ``add_picture`` it bumps ``updated`` only, so a tab open on the project stays current.
        ``captions`` maps source picture ids to captions; ``passages`` maps page ids to their new
        text, and then the story text becomes the pages' texts joined by blank lines, each page's
        offsets pointing into it (a story written page by page has no other text). ``title`` and
        ``story_settings`` are set as in ``update_project``. ``based_on``, when given, makes the write
        conditional: ConflictError if the project changed since that version, so a job that read,
        changed and writes back (its story settings) can read again and redo the change.
        """
        caption_changes = self._id_texts(captions, "caption", validate.MAX_CAPTION, required=False)
        passage_changes = self._id_texts(passages, "page's text", validate.MAX_STORY, required=True)
        new_title = validate.title(title) if title is not None else None
        if story_settings is not UNSET and story_settings is not None:
            story_settings = validate.settings(story_settings, "The story's settings")
        with self._write() as session:
            if based_on is None:
                project = self._project(session, project_id)
            else:
                project = self._project_for_edit(session, project_id, based_on)
            if caption_changes:
                sources = {src.id: src for src in project.source_images}
                for source_id, caption in caption_changes.items():
                    if source_id not in sources:
                        raise NotFound(
                            "That picture no longer exists. It may have been removed in another tab or window."
                        )
                    sources[source_id].caption = caption
            if passage_changes:
                pages = {page.id: page for page in project.pages}
                for page_id, text in passage_changes.items():
                    if page_id not in pages:
                        raise NotFound("That page no longer exists. It may have been removed in another tab or window.")
                    pages[page_id].text = text
                story_text = ""
                for page in sorted(project.pages, key=lambda s: (s.position, s.id)):
                    if story_text:
                        story_text += "\n\n"
                    page.start = len(story_text)
                    story_text += page.text
                    page.end = len(story_text)
                if len(story_text) > validate.MAX_STORY:
                    raise InvalidInput(
                        f"The story would be longer than the longest story we keep ({validate.MAX_STORY:,} characters)."
                    )
                project.story_text = story_text
            if new_title is not None:
                project.title = new_title
            if story_settings is not UNSET:
                project.story_settings = story_settings
            self._touch(project, bump=False)
            return self._project_view(session, project.id)

    @staticmethod
    def _id_texts(items: Any, what: str, max_len: int, *, required: bool) -> dict[int, str]:
        if items is None:
            return {}
        if not isinstance(items, Mapping):
            raise InvalidInput(f"Each {what} must be given by its id, as a mapping.")
        out: dict[int, str] = {}
        for key, value in items.items():
            if isinstance(key, bool) or not isinstance(key, int):
                raise InvalidInput(f"A {what} is named by its whole-number id.")
            out[key] = validate.text(value, f"The {what}", max_len, required=required)
        return out


def _normalise(text: str) -> str:
    return " ".join(text.split())
