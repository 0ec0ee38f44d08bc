"""Stories told from pictures (the From images screen): the source pictures, the job that describes them and
writes one passage for each, a passage written again or edited by hand.

The pictures are saved at once, as the project's source pictures and as each page's picture (origin
"uploaded"), so nothing is lost on a refresh. Then ONE job on the worker captions them and writes one passage
per picture; its on_result saves the captions, then each passage as soon as it is written, then the title and
the settings that make the story reproducible (Project.story_settings). Like pictures, these job writes go
through Library.save_job_output, which leaves the project's version alone: a tab open on the project is not
made stale by them, while two people's edits still conflict.

The captioner and the storyteller (torch) are imported on the worker, inside the job.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from core import seeds
from core.errors import InputError
from core.limits import DEFAULT_AGE, DEFAULT_TEMPERATURE, DEFAULT_TONE, DEFAULT_WORDS, MAX_HINTS_CHARS
from core.requests import check_story_request
from engine.errors import ImageRejected
from engine.imageio import load_image, to_png_bytes
from engine.jobs import get_worker
from engine.metrics import story_metrics
from storage import ConflictError, Library, NotFound, PageInput, ProjectView
from studio.actions.jobs import KIND_STORY, JobStart, active_story_jobs, job_write
from studio.actions.library import create_project
from studio.actions.pages import DEFAULT_TITLE, STORY_SOURCE, find_page, plural_pages
from studio.actions.profiles import current_profile, ensure_models, project_profile

log = logging.getLogger(__name__)

PLACEHOLDER_PASSAGE = "(The words for picture {n} are still to be written.)"

_STORED_PNG_LIMIT = 40 * 1024 * 1024  # storage keeps pictures up to 50 MB; bigger PNGs go as JPEG


@dataclass(frozen=True)
class PictureRead:
    """One uploaded file as the hardened loader read it: a thumbnail and notes, or the refusal sentence."""

    name: str
    thumbnail: bytes | None = None
    notes: tuple[str, ...] = ()
    error: str | None = None
    size: tuple[int, int] = (0, 0)

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class StoryStart:
    job_id: str
    project: ProjectView
    refused: tuple[str, ...] = ()  # one sentence per file left out
    notes: tuple[str, ...] = ()  # changes a person would notice ("animated, first frame used")


def read_picture(data: bytes, name: str = "", thumb_side: int = 320) -> PictureRead:
    """Read an upload through engine.imageio (the one door pictures come in through) for a preview."""
    try:
        loaded = load_image(data, name=name)
    except ImageRejected as exc:
        return PictureRead(name=name, error=exc.message)
    thumb = loaded.image.copy()
    thumb.thumbnail((thumb_side, thumb_side))
    return PictureRead(name=name, thumbnail=to_png_bytes(thumb), notes=tuple(loaded.notes), size=loaded.image.size)


def start_story_from_images(
    lib: Library,
    pictures: Sequence[tuple[bytes, str]],
    *,
    hints: str = "",
    tone: str = DEFAULT_TONE,
    age: int = DEFAULT_AGE,
    words_per_picture: int = DEFAULT_WORDS,
    seed: int | None = None,
    profile=None,
) -> StoryStart:
    """A new project from (bytes, file name) pictures, in order, and the job that writes its story.

    Files the loader refuses are left out (their sentences come back in `refused`); the rest are saved
    before the job is submitted, one page per picture, so the story's words arrive into saved pages.
    """
    hints = (hints or "").strip()
    if not pictures:
        raise InputError("Add at least one picture (PNG, JPEG or WebP) to tell a story from.")
    check_story_request(None, hints=hints, tone=tone, age=age, words_per_picture=words_per_picture)
    profile = profile or current_profile()
    ensure_models(profile, ("captioner", "storyteller"))
    usable: list[tuple[bytes, dict]] = []
    refused: list[str] = []
    notes: list[str] = []
    for data, name in pictures:
        try:
            loaded = load_image(data, name=name)
        except ImageRejected as exc:
            refused.append(exc.message)
            continue
        notes.extend(loaded.notes)
        usable.append(
            (
                _storable(loaded.image),
                {
                    "source": "upload",
                    "file_name": (name or "")[:200],
                    "format": loaded.format,
                    "width": loaded.image.width,
                    "height": loaded.image.height,
                    "notes": list(loaded.notes),
                },
            )
        )
    if not usable:
        raise InputError(
            "None of the pictures can be used, so no story was started: add PNG, JPEG or WebP "
            "pictures that open on your computer."
        )
    check_story_request(len(usable), hints=hints, tone=tone, age=age, words_per_picture=words_per_picture)

    seed = seeds.new_seed() if seed is None else int(seed)
    title = f"A story from {len(usable)} picture{'s' if len(usable) != 1 else ''}"
    project = create_project(lib, title=title, profile=profile.name)
    try:
        project = lib.set_source_images(project.id, project.version, [(png, "") for png, _ in usable])
        project = lib.save_story(project.id, project.version, *_placeholder_story(len(usable)))
        for page, (png, settings) in zip(project.pages, usable):
            lib.add_picture(page.id, png, settings, origin="uploaded", select=True)
        request = {
            "hints": hints,
            "tone": tone,
            "age": age,
            "words_per_picture": words_per_picture,
            "temperature": DEFAULT_TEMPERATURE,
            "seed": seed,
        }
        project = lib.update_project(
            project.id,
            project.version,
            story_settings={
                "source": STORY_SOURCE,
                "request": request,
                "profile": profile.name,
                "captioner": profile.model("captioner"),
                "storyteller": profile.model("storyteller"),
                "placeholder_title": title,
            },
        )
    except Exception:
        # Half a project is worse than none: the person starts again with the same files.
        try:
            lib.delete_project(project.id)
        except Exception:  # noqa: BLE001 - the first error is the one to report
            log.warning("could not remove the unfinished project %s", project.id)
        raise
    job_id = _submit_story(lib, project, profile)
    return StoryStart(job_id, project, tuple(refused), tuple(notes))


SIMPLER_HINT = "Use very short sentences and simple, everyday words a young child knows."
GRADE_SLACK = 2.0  # how far above the reader's school grade a story may read before it is flagged


def expected_grade(age: int) -> float:
    """The school grade a reader of `age` is in (US grades: 6-year-olds in grade 1); 0 before school."""
    return float(max(0, age - 5))


def grade_too_hard(grade: float | None, age: int) -> bool:
    """Whether a Flesch-Kincaid `grade` reads too hard for a reader of `age` (more than GRADE_SLACK above)."""
    return grade is not None and grade > expected_grade(age) + GRADE_SLACK


def write_story_again(
    lib: Library,
    project_id: int,
    expected_version: int,
    *,
    new_seed: bool = True,
    simpler: bool = False,
    profile=None,
) -> JobStart:
    """Write every passage again from the stored pictures (and their captions, when all have one).

    With new_seed=False the stored seed is used, so the same models write the same story again. With
    simpler=True the storyteller is also asked for short sentences and simple words (SIMPLER_HINT, kept in the
    story's hints, so later rewrites keep it), with a new seed.
    """
    project = lib.get_project(project_id)
    if project.version != expected_version:
        raise ConflictError()
    settings = project.story_settings or {}
    if settings.get("source") != STORY_SOURCE or not project.source_images:
        raise InputError("This story was not told from pictures, so there is nothing to write it from.")
    if len(project.pages) != len(project.source_images):
        raise InputError(
            f"The story now has {plural_pages(len(project.pages))} for "
            f"{len(project.source_images)} pictures (pages were split or merged), so it cannot be "
            "written again picture by picture."
        )
    if active_story_jobs(project_id):
        raise InputError("The story is being written right now: wait for it to finish first.")
    profile = profile or project_profile(project).profile
    ensure_models(profile, ("captioner", "storyteller"))
    if new_seed or simpler:
        request = {**(settings.get("request") or {}), "seed": seeds.new_seed()}
        if simpler:
            hints = str(request.get("hints") or "").strip()
            if SIMPLER_HINT not in hints:
                room = MAX_HINTS_CHARS - len(SIMPLER_HINT) - 1
                request["hints"] = f"{hints[:room].rstrip()} {SIMPLER_HINT}".strip()
        project = lib.update_project(project.id, project.version, story_settings={**settings, "request": request})
    job_id = _submit_story(lib, project, profile)
    return JobStart(job_id, project, tuple(s.id for s in project.pages))


def retell_passage(lib: Library, project_id: int, page_id: int, expected_version: int, *, profile=None) -> JobStart:
    """Write one passage again (Storyteller.retell on the stored story); the other passages stay as they are."""
    project = lib.get_project(project_id)
    if project.version != expected_version:
        raise ConflictError()
    page = find_page(project, page_id)
    story = stored_story(project)
    if active_story_jobs(project_id):
        raise InputError("The story is being written right now: wait for it to finish, then write this passage again.")
    profile = profile or project_profile(project).profile
    ensure_models(profile, ("storyteller",))
    index, pid = page.position, project.id

    def run(ctx) -> None:
        from engine.storyteller import Storyteller

        ctx.progress(0, 1, message=f"Writing the words for picture {index + 1} again…")
        ctx.emit(Storyteller(profile=profile).retell(story, index))
        ctx.progress(1, 1, message="Saving…")

    words_before = page.text

    def save(told) -> None:
        try:
            lib.save_job_output(pid, passages={page_id: told.passages[index]}, replacing={page_id: words_before})
        except NotFound:
            log.info("passage for page %s dropped: the page no longer exists", page_id)
            return
        except ConflictError:
            log.info("passage for page %s dropped: a person edited its words meanwhile", page_id)
            return
        job_write(
            lib,
            pid,
            lambda p: lib.save_job_output(
                pid, based_on=p.version, story_settings={**(p.story_settings or {}), "story": told.settings}
            ),
        )

    job_id = get_worker().submit(
        run,
        kind=KIND_STORY,
        label=f"Words for picture {index + 1} of “{project.title}”",
        total=1,
        on_result=save,
        meta={"project_id": pid, "page_ids": (page_id,), "action": "retell", "results_before_passages": 0},
    )
    return JobStart(job_id, project, (page_id,))


def edit_passage(lib: Library, project_id: int, page_id: int, expected_version: int, text: str) -> ProjectView:
    """Save a passage typed by hand (the story's full text follows, so the storyboard shows the same words)."""
    project = lib.get_project(project_id)
    page = find_page(project, page_id)
    text = (text or "").strip()
    if not text:
        raise InputError("A passage cannot be empty: write a few words, or write it again with the storyteller.")
    if any(page_id in job.meta.get("page_ids", ()) for job in active_story_jobs(project_id)):
        raise InputError("These words are being written again right now: wait for them, then edit.")
    if text == page.text and project.version == expected_version:
        return project
    return lib.update_page(page_id, expected_version, text=text)  # the story text follows the passage


def stored_story(project: ProjectView):
    """The engine's Story as stored for this project (passages as they read now, edits included)."""
    from engine.storyteller import Story

    settings = project.story_settings or {}
    told = settings.get("story")
    if settings.get("source") != STORY_SOURCE or not isinstance(told, dict):
        raise InputError(
            "This story has not been written from pictures yet, so a passage cannot be written "
            "again: write the story first, or edit the passage by hand."
        )
    if len(told.get("captions") or []) != len(project.pages):
        raise InputError(
            f"The story now has {plural_pages(len(project.pages))} for "
            f"{len(told.get('captions') or [])} pictures (pages were split or merged), so a passage "
            "cannot be written again: edit it by hand instead."
        )
    return Story(
        title=project.title,
        passages=[s.text for s in project.pages],
        seed=int(settings.get("seed", told.get("seed", 0))),
        settings=told,
    )


def story_report(project: ProjectView) -> tuple[dict, list[dict | None]]:
    """Metrics of the whole story against all captions, and of each passage against its own picture's caption."""
    captions = [src.caption for src in project.source_images]
    whole = story_metrics(captions, "\n\n".join(s.text for s in project.pages))
    each: list[dict | None] = []
    for page in project.pages:
        caption = captions[page.position] if page.position < len(captions) else None
        each.append(story_metrics([caption], page.text) if caption else None)
    return whole, each


def _storable(image) -> bytes:
    png = to_png_bytes(image)
    if len(png) <= _STORED_PNG_LIMIT:
        return png
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def _open_stored(path: Path):
    # Our own file, checked (size, pixels, verify) when it was saved; the upload limit does not apply.
    with Image.open(path) as image:
        return image.convert("RGB")


def _placeholder_story(n: int) -> tuple[str, list[PageInput]]:
    """A story of ``n`` placeholder passages (one a picture) joined by blank lines, until the storyteller writes it."""
    story_text, pages = "", []
    for number in range(1, n + 1):
        if story_text:
            story_text += "\n\n"
        start = len(story_text)
        story_text += PLACEHOLDER_PASSAGE.format(n=number)
        pages.append(PageInput(text=story_text[start:], start=start, end=len(story_text)))
    return story_text, pages


def _submit_story(lib: Library, project: ProjectView, profile) -> str:
    settings = project.story_settings or {}
    request = dict(settings.get("request") or {})
    sources = [(src.id, src.image_path) for src in project.source_images]
    known = [src.caption for src in project.source_images]
    captions_known = bool(known) and all(c.strip() for c in known)
    page_ids = tuple(page.id for page in project.pages)
    words_before = {page.id: page.text for page in project.pages}  # what each passage replaces
    count, pid = len(sources), project.id

    def run(ctx) -> None:
        from engine.storyteller import Storyteller

        captions = known
        if not captions_known:
            from engine.caption import Captioner

            ctx.progress(0, 2 * count, message="Getting the picture reader ready…")
            images = [_open_stored(path) for _, path in sources]

            def looked(done: int, _total: int) -> None:
                ctx.check_cancel()
                ctx.progress(done, message=f"Looking at the pictures… {done} of {count}")

            captions = Captioner(profile=profile).caption(images, progress=looked)
            ctx.emit(("captions", captions))
        ctx.progress(count, 2 * count, message="Getting the storyteller ready…")

        def wrote(done: int, _total: int) -> None:
            ctx.check_cancel()
            ctx.progress(count + done, message=f"Writing the story… {done} of {count} passages written")

        def written(index: int, passage: str) -> None:
            ctx.emit(("passage", (index, passage)))  # saved while the next passage is written

        story = Storyteller(profile=profile).tell(
            captions,
            hints=request.get("hints", ""),
            tone=request.get("tone", DEFAULT_TONE),
            age=int(request.get("age", DEFAULT_AGE)),
            words_per_picture=int(request.get("words_per_picture", DEFAULT_WORDS)),
            temperature=float(request.get("temperature", 0.8)),
            seed=int(request.get("seed", 0)),
            progress=wrote,
            on_passage=written,
        )
        ctx.emit(("story", story))

    def save(result) -> None:
        # On the worker's saver thread; save_job_output leaves the version alone (see the section's note).
        kind, value = result
        if kind == "captions":
            lib.save_job_output(pid, captions={source_id: caption for (source_id, _), caption in zip(sources, value)})
            return
        if kind == "passage":
            index, passage = value
            if index < len(page_ids):
                page_id = page_ids[index]
                try:
                    lib.save_job_output(pid, passages={page_id: passage}, replacing={page_id: words_before[page_id]})
                except NotFound:
                    log.info("passage for page %s dropped: the page no longer exists", page_id)
                except ConflictError:
                    log.info("passage for page %s dropped: a person edited its words meanwhile", page_id)
            return

        def finish(p: ProjectView) -> ProjectView:
            stored = dict(p.story_settings or {})
            title = p.title
            if value.title and title in (stored.get("placeholder_title"), stored.get("title"), DEFAULT_TITLE):
                title = value.title[:200]
            stored.update({"source": STORY_SOURCE, "title": value.title, "seed": value.seed, "story": value.settings})
            return lib.save_job_output(pid, based_on=p.version, title=title, story_settings=stored)

        job_write(lib, pid, finish)

    label = f"Story for {count} picture{'s' if count != 1 else ''} (“{project.title}”)"
    return get_worker().submit(
        run,
        kind=KIND_STORY,
        label=label,
        total=2 * count,
        on_result=save,
        meta={
            "project_id": pid,
            "page_ids": page_ids,
            "action": "tell",
            "results_before_passages": 0 if captions_known else 1,
        },
    )
