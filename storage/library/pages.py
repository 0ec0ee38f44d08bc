"""The Library's story text and pages: save the story with its pages, change one page, merge two pages,
split one; and what background jobs write into a story (captions, passages, its title and settings)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from core.words import has_words, words_ratio
from storage import history, validate
from storage.errors import ConflictError, InvalidInput, NotFound
from storage.library.base import MAX_ROW_ID, UNSET, LibraryBase, words_for
from storage.models import Page, Picture, Project
from storage.views import PageInput, PagePlanInput, PageView, ProjectView


class PageMethods(LibraryBase):
    """The story text and its pages.

    The story text is always the live pages' words with their separators: each live page's ``text`` is
    ``story_text[start:end]`` (no surrounding whitespace, never empty), the spans are in page order and do not
    overlap, and what lies between and after them is whitespace. What stands before the first page is
    whitespace, or the title line when ``title_from_text``. Every write here keeps that; none deletes a
    picture: a page that leaves the story without the user deleting it turns 'gone' and its pictures wait in
    the loose-pictures tray; a page the user deletes turns 'deleted' and waits in the bin with its pictures.
    """

    def apply_pages(
        self,
        project_id: int,
        expected_version: int,
        story_text: str,
        pages: Sequence[PagePlanInput],
        *,
        deleted: Sequence[int] = (),
        title: str | None = None,
        title_from_text: bool | None = None,
        label: str = "Change the pages",
    ) -> ProjectView:
        """Make the story ``story_text`` cut into ``pages`` (see PagePlanInput), as one undoable step.

        ``deleted`` names live pages the user deleted (to the bin with their pictures). Live pages neither kept,
        absorbed nor deleted turn 'gone' (their pictures go to the loose-pictures tray). ``title`` and
        ``title_from_text`` change the title and whether it is the story's first line (None: unchanged).
        InvalidInput when the pages do not tile the text as the class notes say.
        """
        story_text = validate.text(story_text, "The story", validate.MAX_STORY)
        plan = self._check_plan(pages, len(story_text))
        new_title = validate.title(title) if title is not None else None
        with self._edit(project_id, expected_version, label) as (session, project):
            if title_from_text is not None:
                project.title_from_text = validate.flag(title_from_text, "Whether the title is the first line")
            if new_title is not None:
                project.title = new_title
            self._apply(session, project, story_text, plan, deleted)
        return self.get_project(project_id)

    @staticmethod
    def _check_plan(pages: Any, story_len: int) -> list[PagePlanInput]:
        if not isinstance(pages, (list, tuple)):
            raise InvalidInput("The pages must be given as a list.")
        if len(pages) > validate.MAX_PAGES:
            raise InvalidInput(
                f"The story is split into {len(pages):,} pages; the most we keep is {validate.MAX_PAGES:,}."
            )
        out = []
        for n, item in enumerate(pages, start=1):
            if not isinstance(item, PagePlanInput):
                raise InvalidInput(f"Page {n} must be given as a PagePlanInput.")
            out.append(
                PagePlanInput(
                    start=validate.integer(item.start, f"Page {n}'s start offset", 0, story_len),
                    end=validate.integer(item.end, f"Page {n}'s end offset", 0, story_len),
                    keep=None if item.keep is None else validate.integer(item.keep, f"Page {n}'s row", 0, MAX_ROW_ID),
                    absorb=tuple(validate.integer(k, f"Page {n}'s merged row", 0, MAX_ROW_ID) for k in item.absorb),
                    prompt_override=validate.optional_text(
                        item.prompt_override, f"Page {n}'s prompt", validate.MAX_PROMPT
                    ),
                    negative_prompt=validate.optional_text(
                        item.negative_prompt, f"Page {n}'s negative prompt", validate.MAX_PROMPT
                    ),
                    seed=validate.seed(item.seed, f"Page {n}'s seed"),
                    locked=validate.flag(item.locked, f"Whether page {n} is locked"),
                )
            )
        return out

    def _apply(
        self,
        session: Session,
        project: Project,
        story_text: str,
        plan: Sequence[PagePlanInput],
        deleted: Sequence[int] = (),
    ) -> None:
        """Inside an edit: the project's live pages become ``plan`` over ``story_text`` (see apply_pages)."""
        _check_tiling(story_text, [(p.start, p.end) for p in plan], head_may_hold_text=bool(project.title_from_text))
        live = {page.id: page for page in project.pages if page.state == "live"}
        # A kept page may also be one that left the story (brought back from the tray or the bin).
        every = {page.id: page for page in project.pages}
        kept = [p.keep for p in plan if p.keep is not None]
        named: list[int] = kept + [k for p in plan for k in p.absorb]
        named += [validate.integer(k, "A deleted page", 0, MAX_ROW_ID) for k in deleted]
        if len(set(named)) != len(named):
            raise InvalidInput("A page cannot be kept, merged or deleted twice in one change.")
        missing = [k for k in named if k not in (every if k in kept else live)]
        if missing:
            raise InvalidInput(
                "That page is no longer in the story. It may have been changed in another tab or window."
            )
        for position, item in enumerate(plan):
            words = story_text[item.start : item.end]
            if item.keep is not None:
                page = every[item.keep]
                if " ".join(page.text.split()) != " ".join(words.split()):
                    _remember_words(page)
            else:
                page = Page(
                    prompt_override=item.prompt_override,
                    negative_prompt=item.negative_prompt,
                    seed=item.seed,
                    locked=item.locked,
                    state="live",
                )
                project.pages.append(page)
            page.text, page.start, page.end, page.position, page.state = words, item.start, item.end, position, "live"
            for other in item.absorb:
                _take_what_is_missing(page, live[other])
                self._move_pictures(session, live[other], page)
                live[other].state = "gone"
        for page_id in deleted:
            live[page_id].state = "deleted"
        for page_id, page in live.items():
            if page_id not in named:
                page.state = "gone"
        project.story_text = story_text

    @staticmethod
    def _move_pictures(session: Session, source: Page, target: Page) -> None:
        """``source``'s pictures become further versions of ``target`` (unselected when it has a picture)."""
        session.flush()
        moved = sorted(source.pictures, key=lambda picture: picture.version)
        if not moved:
            return
        next_version = max((picture.version for picture in target.pictures), default=0) + 1
        has_selected = any(picture.selected and picture.state == "kept" for picture in target.pictures)
        for picture in moved:
            picture.version = -picture.id  # (page, version) is unique: park them where no version lives
            if has_selected:
                picture.selected = False
        session.flush()
        for offset, picture in enumerate(moved):
            _remember_words(source, picture)
            picture.page_id = target.id
            picture.version = next_version + offset
        session.flush()
        session.expire(source, ["pictures"])
        session.expire(target, ["pictures"])

    def _live_pages(self, project: Project) -> list[Page]:
        return sorted((p for p in project.pages if p.state == "live"), key=lambda p: (p.position, p.id))

    def save_story(
        self, project_id: int, expected_version: int, story_text: str, pages: Sequence[PageInput]
    ) -> ProjectView:
        """Replace the story and its list of pages (each page's text must be ``story_text[start:end]``).

        A new page whose text equals a live page's text (ignoring differences in whitespace) keeps that
        page's row: its pictures, and its seed, prompts and lock where the new page gives none. Live pages
        that match nothing leave the story ('gone': their pictures go to the loose-pictures tray).
        """
        story_text = validate.text(story_text, "The story", validate.MAX_STORY)
        if not isinstance(pages, (list, tuple)):
            raise InvalidInput("The pages must be given as a list.")
        inputs = [self._check_page_input(item, n, len(story_text)) for n, item in enumerate(pages, start=1)]
        for n, item in enumerate(inputs, start=1):
            if story_text[item.start : item.end] != item.text:
                raise InvalidInput(f"Page {n}'s text is not the story text between its offsets.")
        with self._edit(project_id, expected_version, "Change the pages") as (session, project):
            by_text: dict[str, list[Page]] = {}
            for page in self._live_pages(project):
                by_text.setdefault(_normalise(page.text), []).append(page)
            plan = []
            for item in inputs:
                candidates = by_text.get(_normalise(item.text))
                if candidates:
                    page = candidates.pop(0)
                    if item.prompt_override is not None:
                        page.prompt_override = item.prompt_override
                    if item.negative_prompt is not None:
                        page.negative_prompt = item.negative_prompt
                    if item.seed is not None:
                        page.seed = item.seed
                    page.locked = bool(page.locked or item.locked)
                    plan.append(PagePlanInput(item.start, item.end, keep=page.id))
                else:
                    plan.append(
                        PagePlanInput(
                            item.start,
                            item.end,
                            prompt_override=item.prompt_override,
                            negative_prompt=item.negative_prompt,
                            seed=item.seed,
                            locked=item.locked,
                        )
                    )
            self._apply(session, project, story_text, plan)
        return self.get_project(project_id)

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
        label: str | None = None,
    ) -> ProjectView:
        """Change the given fields of one live page; None clears the prompt fields and the seed.

        New ``text`` (its words) replaces the page's words in the story text at exactly their place, so the
        story box and the page never disagree; the pages after it move with the text.
        """
        changes: dict[str, Any] = {}
        if text is not UNSET:
            words = validate.text(text, "The page's text", validate.MAX_STORY, required=True).strip()
            changes["text"] = words
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
        with self._read() as session:
            project_id = self._page(session, page_id).project_id
        what = label or ("Edit a page's words" if "text" in changes else "Change a page's settings")
        with self._edit(project_id, expected_version, what) as (session, project):
            page = self._page(session, page_id)
            if page.state != "live":
                raise InvalidInput("That page is no longer in the story. It may have been removed in another tab.")
            words = changes.pop("text", None)
            if words is not None and words != page.text:
                self._replace_words(project, page, words)
            for name, value in changes.items():
                setattr(page, name, value)
        return self.get_project(project_id)

    def set_page_prompts(
        self,
        project_id: int,
        expected_version: int | None,
        prompts: Mapping[int, str],
        *,
        only_empty: bool = True,
        label: str = "Use the written scenes as prompts",
    ) -> tuple[ProjectView, tuple[int, ...]]:
        """Give several live pages their own prompt (page id -> prompt), as one undoable step. With ``only_empty``
        a page that has its own prompt by now keeps it (a person's words are never overwritten). Returns the
        project and the ids of the pages whose prompt was set; nothing set: no step is recorded."""
        if not isinstance(prompts, Mapping):
            raise InvalidInput("The prompts must be given by page id, as a mapping.")
        checked = {
            validate.integer(k, "A page", 0, MAX_ROW_ID): validate.text(
                v, "The prompt", validate.MAX_PROMPT, required=True
            )
            for k, v in prompts.items()
        }
        with self._read() as session:
            project = self._project(session, project_id)
            live = {page.id: page for page in project.pages if page.state == "live"}
            todo = [k for k in checked if k in live and not (only_empty and live[k].prompt_override)]
        if not todo:
            return self.get_project(project_id), ()
        set_ids: list[int] = []
        with self._edit(project_id, expected_version, label) as (session, project):
            for page in project.pages:
                if page.id in checked and page.state == "live" and not (only_empty and page.prompt_override):
                    page.prompt_override = checked[page.id].strip()
                    set_ids.append(page.id)
        return self.get_project(project_id), tuple(set_ids)

    def _replace_words(self, project: Project, page: Page, words: str) -> None:
        story = project.story_text
        new_story = story[: page.start] + words + story[page.end :]
        if len(new_story) > validate.MAX_STORY:
            raise InvalidInput(f"The story would be longer than the longest story we keep ({validate.MAX_STORY:,}).")
        shift = len(words) - (page.end - page.start)
        for other in self._live_pages(project):
            if other.start > page.start:
                other.start += shift
                other.end += shift
        _remember_words(page)
        page.text, page.end = words, page.start + len(words)
        project.story_text = new_story

    def get_pages(self, project_id: int, page_ids: Sequence[int]) -> list[PageView]:
        """Just these pages of a story, with their pictures (a light read for a screen following a job)."""
        if not isinstance(page_ids, (list, tuple)) or not all(
            isinstance(k, int) and not isinstance(k, bool) for k in page_ids
        ):
            raise InvalidInput("Pages are named by their whole-number ids.")
        with self._read() as session:
            rows = session.scalars(
                select(Page)
                .where(Page.project_id == project_id, Page.id.in_(list(page_ids)))
                .options(selectinload(Page.pictures))
            ).all()
            return [self._page_view(page) for page in rows]

    def set_seeds(self, project_id: int, expected_version: int, seeds: Mapping[int, int]) -> ProjectView:
        """Store the seeds chosen for pages about to be drawn (page id -> seed), in one write. Not an undo
        step of its own: a seed is what a picture is drawn with, and every picture keeps its own in its settings."""
        if not isinstance(seeds, Mapping):
            raise InvalidInput("The seeds must be given by page id, as a mapping.")
        checked = {
            validate.integer(k, "A page", 0, MAX_ROW_ID): validate.seed(v, "A page's seed") for k, v in seeds.items()
        }
        with self._write() as session:
            project = self._project_for_edit(session, project_id, expected_version)
            pages = {page.id: page for page in project.pages if page.state == "live"}
            for page_id, seed in checked.items():
                if page_id not in pages:
                    raise NotFound("That page no longer exists. It may have been removed in another tab or window.")
                pages[page_id].seed = seed
            self._touch(project)
        return self.get_project(project_id)

    def merge_pages(self, page_id: int, expected_version: int) -> ProjectView:
        """Join a live page with the next one (the words between them stay as they are in the story). The
        first page keeps its row, seed, prompts and lock; the second page's pictures become its versions."""
        with self._read() as session:
            project_id = self._page(session, page_id).project_id
        with self._edit(project_id, expected_version, "Merge two pages") as (session, project):
            pages = self._live_pages(project)
            index = next((i for i, page in enumerate(pages) if page.id == page_id), None)
            if index is None:
                raise InvalidInput("That page is no longer in the story. It may have been removed in another tab.")
            if index + 1 >= len(pages):
                raise InvalidInput("This is the last page, so there is no next page to merge it with.")
            plan = [PagePlanInput(p.start, p.end, keep=p.id) for p in pages]
            first, second = pages[index], pages[index + 1]
            plan[index : index + 2] = [PagePlanInput(first.start, second.end, keep=first.id, absorb=(second.id,))]
            self._apply(session, project, project.story_text, plan)
        return self.get_project(project_id)

    def split_page(self, page_id: int, at: int, expected_version: int) -> ProjectView:
        """Split a live page's words at character index ``at``; the first part keeps the page's row, the second
        becomes a new page right after it (the story text is unchanged).

        Each picture goes with the part most like the words it is for (``meta["kept_for_words"]``, else those it
        was drawn for, ``settings["page_text"]``) by ``core.words.words_ratio``, the measure a re-split matches
        pages by; a picture that records no words, or is as like one part as the other, stays with the first part.
        The part holding the page's chosen picture keeps it chosen, with the page's seed, own prompt and lock (how
        it was drawn); a part with pictures but not that one chooses its newest."""
        with self._read() as session:
            project_id = self._page(session, page_id).project_id
        with self._edit(project_id, expected_version, "Split a page") as (session, project):
            pages = self._live_pages(project)
            index = next((i for i, page in enumerate(pages) if page.id == page_id), None)
            if index is None:
                raise InvalidInput("That page is no longer in the story. It may have been removed in another tab.")
            page = pages[index]
            at = validate.integer(at, "The split position", 1, max(1, len(page.text) - 1))
            head = _strip(project.story_text, page.start, page.start + at)
            tail = _strip(project.story_text, page.start + at, page.end)
            if head[1] <= head[0] or tail[1] <= tail[0]:
                raise InvalidInput("Split the page between words, so that both parts keep some text.")
            text = project.story_text
            if not (has_words(text, *head) and has_words(text, *tail)):
                # A page of only emoji or punctuation has no words to draw a picture from.
                raise InvalidInput("Split the page between words, so that both parts keep some words.")
            first_words, second_words = text[head[0] : head[1]], text[tail[0] : tail[1]]
            to_second = [pic for pic in page.pictures if _goes_with_second(pic, first_words, second_words)]
            # The page's seed, own prompt and lock are how its chosen picture was drawn: they go where it goes, so
            # "draw it again" on that part still draws it (the other part starts with none of them).
            chosen_moves = any(pic.selected and pic.state == "kept" for pic in to_second)
            plan = [PagePlanInput(p.start, p.end, keep=p.id) for p in pages]
            plan[index : index + 1] = [
                PagePlanInput(*head, keep=page.id),
                PagePlanInput(
                    *tail,
                    negative_prompt=page.negative_prompt,
                    prompt_override=page.prompt_override if chosen_moves else None,
                    seed=page.seed if chosen_moves else None,
                    locked=bool(page.locked) and chosen_moves,
                ),
            ]
            if chosen_moves:
                page.prompt_override, page.seed, page.locked = None, None, False
            self._apply(session, project, project.story_text, plan)
            if to_second:
                session.flush()
                new_page = next(p for p in project.pages if p.state == "live" and p.position == index + 1)
                self._split_pictures(session, page, new_page, to_second)
        return self.get_project(project_id)

    @staticmethod
    def _split_pictures(session: Session, first: Page, second: Page, moved: list[Picture]) -> None:
        """``moved`` (some of ``first``'s pictures) become ``second``'s versions 1, 2, ... in their order, and
        those that stay are numbered 1, 2, ... again (no "version 3 of 2"); each part with kept pictures but none
        chosen chooses its newest (as a discard does)."""
        moved = sorted(moved, key=lambda picture: picture.version)
        stay = sorted((p for p in first.pictures if p not in moved), key=lambda picture: picture.version)
        for picture in moved + stay:
            picture.version = -picture.id  # (page, version) is unique: park them where no version lives
        session.flush()
        for n, picture in enumerate(moved, start=1):
            picture.page_id, picture.version = second.id, n
        for n, picture in enumerate(stay, start=1):
            picture.version = n
        session.flush()
        for page in (first, second):
            session.expire(page, ["pictures"])
            kept = [picture for picture in page.pictures if picture.state == "kept"]
            if kept and not any(picture.selected for picture in kept):
                max(kept, key=lambda picture: picture.version).selected = True
        session.flush()

    def undo(self, project_id: int, expected_version: int) -> tuple[ProjectView, str]:
        """Take back the story's last edit; returns the project and what was taken back ("Split into pages").

        Refused with ConflictError when the story changed since ``expected_version`` (another tab's edit is
        never overwritten by an undo); InvalidInput when there is nothing to undo."""
        return self._step(project_id, expected_version, -1)

    def redo(self, project_id: int, expected_version: int) -> tuple[ProjectView, str]:
        """Bring back the edit the last undo took back (see ``undo``)."""
        return self._step(project_id, expected_version, +1)

    def _step(self, project_id: int, expected_version: int, step: int) -> tuple[ProjectView, str]:
        with self._write("the change was not undone" if step < 0 else "the change was not redone") as session:
            project = self._project_for_edit(session, project_id, expected_version)
            try:
                label = history.move(session, project, step)
            except LookupError:
                raise InvalidInput(f"There is nothing to {'undo' if step < 0 else 'redo'}.") from None
            self._touch(project)
        return self.get_project(project_id), label

    def save_job_output(
        self,
        project_id: int,
        *,
        based_on: int | None = None,
        captions: Mapping[int, str] | None = None,
        passages: Mapping[int, str] | None = None,
        replacing: Mapping[int, str] | None = None,
        title: str | None = None,
        story_settings: dict[str, Any] | None = UNSET,
    ) -> ProjectView:
        """Save what a background job made for the project, in one transaction, without bumping ``version``.

        Only job callbacks call this (a person's edit names its version and bumps it): like
        ``add_picture`` it bumps ``updated`` only, so a tab open on the project stays current.
        ``captions`` maps source picture ids to captions; ``passages`` maps page ids to their new
        text, and then the story text becomes the pages' texts joined by blank lines, each page's
        offsets pointing into it (a story written page by page has no other text). ``title`` and
        ``story_settings`` are set as in ``update_project``. ``replacing`` maps page ids to the words a passage
        replaces, as the job read them when it started: a page whose words changed since (a person edited it, in
        this tab, another or another process) keeps them, and ConflictError is raised with nothing written.
        ``based_on``, when given, makes the write
        conditional: ConflictError if the project changed since that version, so a job that read,
        changed and writes back (its story settings) can read again and redo the change.
        """
        caption_changes = self._id_texts(captions, "caption", validate.MAX_CAPTION, required=False)
        passage_changes = self._id_texts(passages, "page's text", validate.MAX_STORY, required=True)
        expected_words = self._id_texts(replacing, "page's text", validate.MAX_STORY, required=False)
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
                pages = {page.id: page for page in project.pages if page.state != "deleted"}
                for page_id, text in passage_changes.items():
                    if page_id not in pages:
                        raise NotFound("That page no longer exists. It may have been removed in another tab or window.")
                    if page_id in expected_words and pages[page_id].text != expected_words[page_id]:
                        raise ConflictError(
                            "This page's words were changed while new ones were being written; yours are kept."
                        )
                    pages[page_id].text = text
                story_text = ""
                for page in self._live_pages(project):
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


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _take_what_is_missing(page: Page, absorbed: Page) -> None:
    """A merge: the page keeps its own prompts and seed, and takes the absorbed page's where it has none (a
    person's prompt is never dropped by a merge; the seed comes with its lock)."""
    if page.prompt_override is None:
        page.prompt_override = absorbed.prompt_override
    if page.negative_prompt is None:
        page.negative_prompt = absorbed.negative_prompt
    if page.seed is None and absorbed.seed is not None:
        page.seed, page.locked = absorbed.seed, bool(page.locked or absorbed.locked)


def _remember_words(page: Page, picture: Picture | None = None) -> None:
    """Before a page's words change: its pictures that do not yet say which words they were made for get
    the words they had until now, so the page can show "words changed since this picture"."""
    for pic in [picture] if picture is not None else list(page.pictures):
        settings = dict(pic.settings or {})
        if "page_text" not in settings:
            settings["page_text"] = page.text
            pic.settings = settings


def _goes_with_second(picture: Picture, first: str, second: str) -> bool:
    """Whether a split page's picture goes with the second part: it is more like the words it is for (see
    core.words). A picture that records no words, or is as like one part as the other, stays with the first."""
    words = words_for(picture)
    return words is not None and words_ratio(words, second) > words_ratio(words, first)


def _check_tiling(text: str, spans: Sequence[tuple[int, int]], *, head_may_hold_text: bool) -> None:
    """InvalidInput unless the spans are the story's pages as PageMethods' notes say."""
    cursor = 0
    for n, (start, end) in enumerate(spans, start=1):
        if end <= start or _strip(text, start, end) != (start, end):
            raise InvalidInput(f"Page {n} must hold some words, without spaces around them.")
        if start < cursor:
            raise InvalidInput(f"Page {n} overlaps the page before it.")
        gap = text[cursor:start]
        if gap.strip() and not (n == 1 and head_may_hold_text):
            raise InvalidInput(f"Some of the story's words before page {n} belong to no page.")
        cursor = end
    if text[cursor:].strip() and spans:  # a story with no pages yet is a draft: any text
        raise InvalidInput("Some of the story's words after the last page belong to no page.")
