"""Scene descriptions written by the profile's storyteller (engine.scenes), as pages' prompts.

"Describe the scene" (one page) and "Describe every page's scene" (the book) run a job on the worker: the
storyteller reads each page, the page before it, and the descriptions of the characters engine.characters finds
on it, and writes what the picture shows in the book's style. When the job ends, in one write:

* a page without its own prompt gets the description as its prompt (one undoable step for the whole job; the
  page's words are untouched); the card says the storyteller wrote it, and it is edited like any prompt;
* a page with its own prompt keeps it (a person's words are never overwritten): the description waits in its
  Edit menu as a suggestion, with "Use this" (`scene_suggestion`, `use_scene_suggestion`, `drop_scene_suggestion`);
* a page the model wrote nothing usable for (engine source "page text") is left as it is, and the outcome says
  so in words (`scene_outcome`).

Suggestions, outcomes and which prompts the storyteller wrote are kept for this server process only (they are
offers, not the book: nothing to migrate, bundle or undo). A picture's settings record the prompt it was drawn
with, so redraws stay exact whoever wrote the prompt.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from core import seeds
from core.errors import InputError
from engine.jobs import get_worker
from engine.profiles import Profile
from storage import Library, NotFound, PageView, ProjectView
from studio.actions.cast import story_cast
from studio.actions.profiles import missing_reason, project_profile

log = logging.getLogger(__name__)

KIND_SCENES = "scenes"
SOURCE_STORYTELLER = "storyteller"


@dataclass(frozen=True)
class SceneSuggestion:
    """A description the storyteller wrote for a page that has its own prompt (shown with "Use this")."""

    text: str
    prompt: str  # the page's own prompt when it was written: a suggestion for other words is stale


@dataclass(frozen=True)
class SceneOutcome:
    """What the newest scene job of a story did, for the screen to say."""

    job_id: str
    set_pages: tuple[int, ...]  # page numbers (1-based) whose prompt became the description
    suggested: tuple[int, ...]  # page numbers with their own prompt, now holding a suggestion
    unusable: tuple[int, ...]  # page numbers the model wrote nothing usable for
    gone: int = 0  # pages that left the story while the job ran
    already: tuple[int, ...] = ()  # page numbers whose prompt already was this very scene

    def lines(self) -> list[str]:
        """The outcome in plain sentences."""
        out = []
        if self.set_pages:
            out.append(
                f"The storyteller wrote the scene of {_pages(self.set_pages)} as "
                f"{'its' if len(self.set_pages) == 1 else 'their'} prompt (Undo takes it back; edit it in the "
                "page's Edit menu)."
            )
        if self.suggested:
            out.append(
                f"{_pages(self.suggested).capitalize()} "
                f"{'keeps its' if len(self.suggested) == 1 else 'keep their'} own prompt: the storyteller's scene "
                "waits in the Edit menu, with “Use this”."
            )
        if self.already:
            out.append(
                f"{_pages(self.already).capitalize()} already {'has' if len(self.already) == 1 else 'have'} "
                "this scene as prompt."
            )
        if self.unusable:
            out.append(
                f"The storyteller wrote nothing usable for {_pages(self.unusable)}; "
                f"{'its prompt is' if len(self.unusable) == 1 else 'their prompts are'} unchanged."
            )
        if self.gone:
            out.append(
                f"{self.gone} page{' was' if self.gone == 1 else 's were'} taken out of the story while the scenes "
                "were written."
            )
        return out


def _pages(numbers: Sequence[int]) -> str:
    if len(numbers) == 1:
        return f"page {numbers[0]}"
    return "pages " + ", ".join(str(n) for n in numbers[:-1]) + f" and {numbers[-1]}"


_lock = threading.Lock()
_suggestions: dict[int, SceneSuggestion] = {}  # page id -> suggestion
_written: dict[int, str] = {}  # page id -> the prompt the storyteller wrote for it
_outcomes: dict[int, SceneOutcome] = {}  # project id -> its newest scene job's outcome


def scene_jobs(project_id: int, active_only: bool = True):
    return get_worker().jobs(kind=KIND_SCENES, active_only=active_only, project_id=project_id)


def scene_note(profile: Profile) -> str | None:
    """One sentence when this profile's storyteller cannot write scenes here; None when it can."""
    if not profile.model("storyteller"):
        return f"The '{profile.name}' profile has no storyteller model to write scenes with."
    return missing_reason(profile, ("storyteller",))


def describe_scenes(
    lib: Library, project_id: int, page_ids: Sequence[int] | None = None, *, profile: Profile | None = None
) -> str | None:
    """Let the storyteller write the scene of every page (or of those named), on the worker; see the module notes
    for what happens to each page. Returns the job id, or None when the story has no pages."""
    project = lib.get_project(project_id)
    profile = profile or project_profile(project).profile
    note = scene_note(profile)
    if note:
        raise InputError(note)
    pages = list(project.pages)
    named = None if page_ids is None else set(page_ids)
    indices = [i for i, p in enumerate(pages) if named is None or p.id in named]
    wanted = [pages[i] for i in indices]
    if not wanted:
        return None
    if scene_jobs(project_id):
        raise InputError("Scenes are being written for this story right now: wait for them first.")
    texts = [p.text for p in pages]
    characters = [(c.name, c.description) for c in project.characters]
    by_page = story_cast(project)  # who is on each page, as the draws read it
    cast = [by_page[p.id] for p in pages]
    ids = [p.id for p in wanted]
    style = project.style
    seed = _book_seed(project)
    total = len(wanted)

    def run(ctx) -> None:
        ctx.progress(0, total, message="Getting the storyteller ready…")
        from engine.scenes import describe_scenes as engine_describe

        ctx.check_cancel()
        written = engine_describe(
            texts, profile, characters=characters, cast=cast, style=style, seed=seed, only=indices
        )
        ctx.progress(total, total, message=f"Wrote {total} scene{'s' if total != 1 else ''}")
        ctx.emit((ctx.job_id, [(page_id, scene.text, scene.source) for page_id, scene in zip(ids, written)]))

    def save(result: tuple[str, list[tuple[int, str, str]]]) -> None:
        _save_scenes(lib, project_id, result[1], result[0])

    label = f"Scene of page {wanted[0].position + 1}" if total == 1 else f"Scenes of “{project.title}”"
    return get_worker().submit(
        run,
        kind=KIND_SCENES,
        label=label,
        total=total,
        on_result=save,
        meta={"project_id": project_id, "page_ids": ids},
    )


def describe_scene(lib: Library, project_id: int, page_id: int, *, profile: Profile | None = None) -> str | None:
    """The storyteller writes one page's scene (a job; see describe_scenes)."""
    return describe_scenes(lib, project_id, [page_id], profile=profile)


def _book_seed(project: ProjectView) -> int:
    """The seed the scenes are written with: a written story's own seed, else the story's id (the same book
    writes the same scenes)."""
    settings = project.story_settings or {}
    seed = settings.get("seed")
    return int(seed) if seeds.is_seed(seed) else int(project.id)


def _save_scenes(lib: Library, project_id: int, result: list[tuple[int, str, str]], job_id: str) -> None:
    """The job's results, in one write: prompts for pages without one, suggestions for the others."""
    try:
        project = lib.get_project(project_id)
    except NotFound:
        log.info("scenes of story %s dropped: the story is gone", project_id)
        return
    live = {p.id: p for p in project.pages}
    usable = {k: text.strip() for k, text, source in result if source == SOURCE_STORYTELLER and text.strip()}
    unusable = [live[k].position + 1 for k, _, _ in result if k in live and k not in usable]
    gone = sum(1 for k, _, _ in result if k not in live)
    # The project as it is now, not as the job read it: a prompt a person typed meanwhile is kept.
    empty = {page_id: text for page_id, text in usable.items() if page_id in live and not live[page_id].prompt_override}
    set_ids: tuple[int, ...] = ()
    if empty:
        project, set_ids = lib.set_page_prompts(project_id, None, empty, label="Describe the scenes")
        live = {p.id: p for p in project.pages}
    suggested: list[int] = []
    already: list[int] = []
    with _lock:
        for page_id in set_ids:
            _written[page_id] = empty[page_id]
            _suggestions.pop(page_id, None)
        for page_id, text in usable.items():
            page = live.get(page_id)
            if page is None or page_id in set_ids:
                continue
            if page.prompt_override == text:
                already.append(page.position + 1)  # written again as it was (the same book writes the same scene)
            elif page.prompt_override:
                _suggestions[page_id] = SceneSuggestion(text, page.prompt_override)
                suggested.append(page.position + 1)
        _outcomes[project_id] = SceneOutcome(
            job_id,
            tuple(sorted(live[k].position + 1 for k in set_ids)),
            tuple(sorted(suggested)),
            tuple(sorted(unusable)),
            gone,
            tuple(sorted(already)),
        )


def scene_outcome(project_id: int) -> SceneOutcome | None:
    """What the newest scene job of this story did (this server process only); None before any."""
    with _lock:
        return _outcomes.get(project_id)


def scene_suggestion(page: PageView) -> SceneSuggestion | None:
    """The storyteller's scene waiting for a page with its own prompt; None when there is none, or when the page's
    prompt changed since (it was offered for other words)."""
    with _lock:
        found = _suggestions.get(page.id)
    if found is None or not page.prompt_override or found.prompt != page.prompt_override:
        return None
    return found


def storyteller_wrote(page: PageView) -> bool:
    """Whether the page's own prompt is the one the storyteller wrote, unedited."""
    with _lock:
        written = _written.get(page.id)
    return bool(written) and written == page.prompt_override


def use_scene_suggestion(lib: Library, page: PageView, expected_version: int) -> ProjectView:
    """Make the storyteller's suggestion the page's prompt (one undoable step)."""
    found = scene_suggestion(page)
    if found is None:
        raise InputError("There is no scene from the storyteller waiting for this page any more.")
    project = lib.update_page(page.id, expected_version, prompt_override=found.text, label="Use the written scene")
    with _lock:
        _suggestions.pop(page.id, None)
        _written[page.id] = found.text
    return project


def drop_scene_suggestion(page_id: int) -> None:
    """Forget the storyteller's suggestion for a page (the person keeps their prompt)."""
    with _lock:
        _suggestions.pop(page_id, None)
