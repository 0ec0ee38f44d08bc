"""The one place that joins engine jobs to storage. Imports no streamlit, so the CLI and tests can use it.

Every picture is drawn on the engine's single worker (``engine.jobs.get_worker()``); each finished
picture is saved by the job's ``on_result`` callback on the worker's saver thread, straight into the
library. Nothing waits on a page, so a rerun, a click elsewhere, a refresh or a second tab loses no
picture: pages find a project's running job again through its ``project_id`` meta and re-read the
project from storage to see what has arrived.

Seeds are stored on the page (``update_page(seed=...)``) before its job is submitted, and each
picture's settings carry the seed it was drawn with, so every page of a book can be drawn again.

The engine's heavy modules (torch, diffusers) are imported inside the functions that need them.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from core.errors import InputError
from core.requests import check_story_request
from engine.errors import ModelUnavailable
from engine.imageio import MAX_UPLOAD_BYTES
from engine.jobs import JobInfo, get_worker
from storage import (
    ConflictError,
    Library,
    NotFound,
    PageInput,
    PageView,
    PictureView,
    ProjectView,
    StorageError,
)
from storage.bundle import MAX_BUNDLE_BYTES
from storage.validate import MAX_DEDICATION, MAX_SETTING

log = logging.getLogger(__name__)

KIND_ILLUSTRATE = "illustrate"
DEFAULT_TITLE = "Untitled story"
SAMPLE_STORY = Path(__file__).resolve().parents[1] / "assets" / "sample_story.txt"


# ------------------------------------------------------------------------------------- profiles


def current_profile(name: str | None = None):
    """The default profile, which new projects record: STORYBOOK_PROFILE, else Settings, else 'fast'."""
    from engine.profiles import get_profile

    return get_profile(name)


@dataclass(frozen=True)
class ProfileChoice:
    profile: object  # engine.profiles.Profile
    note: str | None = None  # one sentence when the project's own profile could not be used


def project_profile(project: ProjectView) -> ProfileChoice:
    """The profile a project's pictures and story are made with.

    The rule: STORYBOOK_PROFILE, when set in the environment, wins for every project (tests and
    offline users set it to 'tiny'); otherwise the project's own profile is used, the default it
    recorded when it was made (Settings) or the one chosen in its Book details, so the same project
    is drawn and written with the same models again. A project whose profile no longer exists uses
    the default profile, and ``note`` says so.
    """
    import os

    from engine.profiles import PROFILES

    if os.environ.get("STORYBOOK_PROFILE", "").strip():
        return ProfileChoice(current_profile())
    if project.profile in PROFILES:
        return ProfileChoice(current_profile(project.profile))
    default = current_profile()
    return ProfileChoice(
        default,
        f"This story was made with the '{project.profile}' profile, which no longer "
        f"exists, so the default '{default.name}' profile is used.",
    )


def missing_models(profile, roles: Sequence[str] | None = None) -> list[tuple[str, str]]:
    """(role, model reference) for each model of the profile that cannot load without the network."""
    from engine.profiles import ROLES, is_downloaded

    missing = []
    for role in roles or ROLES:
        ref = profile.model(role)
        if ref and not is_downloaded(ref):
            missing.append((role, ref))
    return missing


MAX_UNDO_BYTES = 512 * 1024 * 1024  # a story bigger than this as a bundle is deleted without an undo


def bundle_for_undo(lib: Library, project_id: int) -> bytes | None:
    """The story as a bundle, kept in the tab so its deletion can be undone; None when it cannot be made
    (a damaged picture file, no memory) or is too big to hold, and then the deletion has no undo."""
    try:
        data = lib.export_bundle(project_id)
    except (StorageError, MemoryError):
        return None
    return data if len(data) <= MAX_UNDO_BYTES else None


def start_download(profile):
    """Start downloading the profile's models on a thread of their own (engine.fetch); every tab sees it."""
    from engine.fetch import get_downloads

    return get_downloads().start(profile)


def download_status(profile_name: str):
    """The profile's download (engine.fetch.Download) since the studio started, or None."""
    from engine.fetch import get_downloads

    return get_downloads().get(profile_name)


def ensure_illustrator(profile) -> None:
    from engine.profiles import fetch_command

    for _role, ref in missing_models(profile, ("illustrator",)):
        raise ModelUnavailable(
            f"The picture model of the '{profile.name}' profile ({ref}) is not downloaded yet: run "
            f"'{fetch_command(profile)}' in a terminal once, or choose the 'tiny' profile (in this story's "
            f"Book details, or in Settings for new stories) to try the studio offline."
        )


# ------------------------------------------------------------------------------ story and pages


@dataclass(frozen=True)
class SplitOutcome:
    project: ProjectView
    title: str | None  # the title line the story opened with, if any (it is not a page)
    pages: int
    kept_pictures: int  # pages whose text did not change and so kept their pictures


def plan_pages(text: str, *, sentences: int | None = 2, words: int | None = None) -> tuple[str | None, list]:
    """The story's title line (if any) and its pages, as the engine cuts them."""
    from engine.segment import segment_story, split_title

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
    from core.limits import MAX_STORY_CHARS

    if len(text) > MAX_STORY_CHARS:
        raise InputError(
            f"The story is too long: the limit is {MAX_STORY_CHARS:,} characters and this one "
            f"has {len(text):,}, so split it into several books."
        )
    return lib.update_project(project_id, expected_version, story_text=text)


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


def split_points(text: str) -> list[tuple[int, str]]:
    """Where a page can be split: (character index, the words the second part starts with)."""
    from engine.segment import segment_story

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


def create_project(
    lib: Library, title: str = "", author: str = "", story_text: str = "", profile: str | None = None
) -> ProjectView:
    """A new project; it records `profile`, else the current default profile (see project_profile)."""
    from engine.profiles import DEFAULT_PROFILE
    from engine.prompts import DEFAULT_STYLE

    if profile is None:
        try:
            profile = current_profile().name
        except InputError:
            profile = DEFAULT_PROFILE
    return lib.create_project(
        (title or "").strip() or DEFAULT_TITLE,
        author=author or "",
        style=DEFAULT_STYLE,
        profile=profile,
        story_text=story_text,
    )


def open_sample(lib: Library) -> ProjectView:
    """A new project holding the sample story, already split into pages."""
    text = SAMPLE_STORY.read_text(encoding="utf-8")
    project = create_project(lib, story_text=text)
    return split_story(lib, project.id, project.version, text).project


# ------------------------------------------------------------------------------------- pictures


@dataclass(frozen=True)
class JobStart:
    job_id: str | None  # None: nothing needed drawing
    project: ProjectView  # the project as it is after the seeds were stored
    drawing: tuple[int, ...]  # page ids in the job, in page order
    kept: tuple[int, ...] = ()  # page ids left alone because they already have a picture


def illustrate_all(
    lib: Library, project_id: int, expected_version: int, *, redo: bool = False, profile=None
) -> JobStart:
    """Draw every page that has no picture yet (every page with redo=True) in one job.

    A page without a seed gets one; with redo=True every unlocked page gets a fresh seed, while a
    locked page keeps its seed, so it is drawn again exactly (or with its edited prompt).
    """
    project = lib.get_project(project_id)
    if project.version != expected_version:
        raise ConflictError()
    if not project.pages:
        raise InputError("There are no pages yet: write the story and press 'Split into pages' first.")
    todo = list(project.pages) if redo else [s for s in project.pages if not s.pictures]
    kept = tuple(s.id for s in project.pages if s not in todo)
    if not todo:
        return JobStart(None, project, (), kept)
    if active_jobs(project_id):
        raise InputError("Pictures for this story are being drawn right now: wait for them, or stop them first.")
    profile = profile or project_profile(project).profile
    ensure_illustrator(profile)
    project = _store_seeds(lib, project, todo, fresh=redo)
    ids = {s.id for s in todo}
    pages = [s for s in project.pages if s.id in ids]
    label = f"{len(pages)} picture{'s' if len(pages) != 1 else ''} for “{project.title}”"
    return JobStart(_submit(lib, project, pages, profile, label), project, tuple(s.id for s in pages), kept)


def regenerate(
    lib: Library, project_id: int, page_id: int, expected_version: int, *, new_seed: bool = True, profile=None
) -> JobStart:
    """Draw one page again: with a new seed, or with its stored seed (and its edited prompt)."""
    project = lib.get_project(project_id)
    if project.version != expected_version:
        raise ConflictError()
    page = _page(project, page_id)
    if new_seed and page.locked:
        raise InputError("This page's seed is locked: unlock it to draw with a new seed, or redraw with the same seed.")
    profile = profile or project_profile(project).profile
    ensure_illustrator(profile)
    if new_seed or page.seed is None:
        from core.seeds import new_seed as make_seed

        project = lib.update_page(page.id, project.version, seed=make_seed())
        page = _page(project, page_id)
    label = f"Page {page.position + 1} of “{project.title}”"
    return JobStart(_submit(lib, project, [page], profile, label), project, (page.id,))


def upload_picture(lib: Library, page_id: int, data: bytes, name: str = "") -> tuple[PictureView, list[str]]:
    """Use the user's own picture for a page (read by the hardened loader); returns the notes on it."""
    from engine.imageio import load_image, to_png_bytes

    loaded = load_image(data, name=name)
    settings = {
        "source": "upload",
        "file_name": (name or "")[:200],
        "format": loaded.format,
        "width": loaded.image.width,
        "height": loaded.image.height,
        "notes": list(loaded.notes),
    }
    view = lib.add_picture(page_id, to_png_bytes(loaded.image), settings, origin="uploaded", select=True)
    return view, list(loaded.notes)


MAX_DESCRIPTION_CHARS = 300  # a picture prompt holds about 60 words in all; more would only be cut off
MAX_SETTING_CHARS = MAX_SETTING  # where and when the story happens, on every page's prompt
MAX_DEDICATION_CHARS = MAX_DEDICATION  # printed on its own page after the cover
MAX_PICTURE_MB = MAX_UPLOAD_BYTES // 2**20  # what the picture loader takes; the uploaders ask for no more
MAX_BUNDLE_MB = MAX_BUNDLE_BYTES // 2**20  # what the library imports (server.maxUploadSize allows it)


def emoji_font() -> Path | None:
    """The colour emoji font PDFs draw emoji from, None when there is none (exports.emoji)."""
    from exports import emoji

    return emoji.font_path() if emoji.available() else None


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


def prompt_preview(
    text: str, style: str, characters: Sequence[tuple[str, str]] = (), override: str | None = None, setting: str = ""
) -> str:
    """The prompt a page would be drawn from (the token count is guessed; the job fits it exactly)."""
    from engine.prompts import build_prompt

    try:
        return build_prompt(
            text, style, characters=list(characters) or None, setting=setting or None, override=override
        ).prompt
    except InputError:
        return override or ""


# ----------------------------------------------------------------------------------------- jobs


def project_jobs(project_id: int) -> list[JobInfo]:
    """This project's picture jobs still known to the worker, oldest first."""
    return get_worker().jobs(kind=KIND_ILLUSTRATE, project_id=project_id)


def active_jobs(project_id: int | None = None) -> list[JobInfo]:
    meta = {} if project_id is None else {"project_id": project_id}
    return get_worker().jobs(kind=KIND_ILLUSTRATE, active_only=True, **meta)


def drawing_page_ids(project_id: int) -> set[int]:
    """Pages waiting for, or getting, a picture from a job that has not finished."""
    ids: set[int] = set()
    for job in active_jobs(project_id):
        ids.update(job.meta.get("page_ids", ()))
    return ids


def cancel_jobs(project_id: int) -> int:
    worker = get_worker()
    return sum(1 for job in active_jobs(project_id) if worker.cancel(job.id))


def _page(project: ProjectView, page_id: int) -> PageView:
    for page in project.pages:
        if page.id == page_id:
            return page
    raise NotFound("That page no longer exists. It may have been changed in another tab or window.")


def _store_seeds(lib: Library, project: ProjectView, pages: Sequence[PageView], *, fresh: bool) -> ProjectView:
    from core.seeds import new_seed, page_seed

    base = new_seed()
    for page in pages:
        if page.seed is None or (fresh and not page.locked):
            project = lib.update_page(page.id, project.version, seed=page_seed(base, page.position))
    return project


def _submit(lib: Library, project: ProjectView, pages: Sequence[PageView], profile, label: str) -> str:
    # engine.illustrate imports torch and diffusers (seconds, the first time): that happens on the worker,
    # so the page shows the job at once instead of freezing after the click.
    pages_to_draw = [(page.id, page.text, int(page.seed), page.prompt_override, page.negative_prompt) for page in pages]
    style = project.style
    characters = tuple((c.name, c.description) for c in project.characters)
    setting = project.setting
    count = len(pages_to_draw)

    def run(ctx) -> None:
        ctx.progress(0, message="Getting the picture model ready…")
        from engine.illustrate import PageSpec, illustrate_pages

        specs = [
            PageSpec(key=key, text=text, seed=seed, prompt_override=override, negative_prompt=negative)
            for key, text, seed, override, negative in pages_to_draw
        ]
        ready, steps_done = 0, 0

        def status() -> str:
            return f"Drawing… {ready} of {count} picture{'s' if count != 1 else ''} ready"

        def on_progress(done: int, total: int) -> None:
            nonlocal steps_done
            steps_done = done
            ctx.progress(done, total, message=status())

        def on_image(result) -> None:
            nonlocal ready
            ready += 1
            ctx.emit(result)
            ctx.progress(steps_done, message=status())

        illustrate_pages(
            specs,
            profile,
            style=style,
            characters=characters,
            setting=setting,
            on_image=on_image,
            on_progress=on_progress,
            should_cancel=lambda: ctx.cancelled,
        )

    def save(result) -> None:
        # Runs on the worker's saver thread while the next pictures are drawn.
        from engine.imageio import to_png_bytes

        settings = {**result.settings, "style": style, "profile": profile.name}
        try:
            lib.add_picture(result.key, to_png_bytes(result.image), settings, origin="generated", select=True)
        except NotFound:
            # The page was merged, re-split or deleted while its picture was being drawn: nothing to keep.
            log.info("picture for page %s dropped: the page no longer exists", result.key)

    return get_worker().submit(
        run,
        kind=KIND_ILLUSTRATE,
        label=label,
        total=count,
        on_result=save,
        meta={"project_id": project.id, "page_ids": tuple(s.id for s in pages)},
    )


# --- images to story ---------------------------------------------------------------------------------
# Pictures in, a story out (the "From images" page). The pictures are saved at once, as the project's
# source pictures and as each page's picture (origin "uploaded"), so nothing is lost on a refresh. Then
# ONE job on the worker captions them and writes one passage per picture; its on_result saves the
# captions, then each passage as soon as it is written, then the title and the settings that make the
# story reproducible (Project.story_settings). Like pictures, these job writes go through
# Library.save_job_output, which leaves the project's version alone: a tab open on the project is
# not made stale by them, while two people's edits still conflict.

KIND_STORY = "story"
STORY_SOURCE = "images"  # story_settings["source"] of a story written from pictures


def told_from_pictures(project: ProjectView | None) -> bool:
    """Whether the story was written from pictures (its pages pair with its source pictures by position)."""
    return project is not None and (project.story_settings or {}).get("source") == STORY_SOURCE


PLACEHOLDER_PASSAGE = "(The words for picture {n} are still to be written.)"
_STORED_PNG_LIMIT = 40 * 1024 * 1024  # storage keeps pictures up to 50 MB; bigger PNGs go as JPEG
_MODEL_NAMES = {"illustrator": "picture model", "captioner": "picture reader", "storyteller": "storyteller"}


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
    from engine.errors import ImageRejected
    from engine.imageio import load_image, to_png_bytes

    try:
        loaded = load_image(data, name=name)
    except ImageRejected as exc:
        return PictureRead(name=name, error=exc.message)
    thumb = loaded.image.copy()
    thumb.thumbnail((thumb_side, thumb_side))
    return PictureRead(name=name, thumbnail=to_png_bytes(thumb), notes=tuple(loaded.notes), size=loaded.image.size)


def ensure_models(profile, roles: Sequence[str]) -> None:
    """ModelUnavailable, with the command that fetches it, for the first model of `roles` not downloaded."""
    from engine.profiles import fetch_command

    for role, ref in missing_models(profile, roles):
        raise ModelUnavailable(
            f"The {_MODEL_NAMES.get(role, role)} model of the '{profile.name}' profile ({ref}) is not downloaded "
            f"yet: run '{fetch_command(profile)}' in a terminal once, or choose the 'tiny' profile (in the "
            f"storyboard's Book details, or in Settings for new stories) to try the studio offline."
        )


def start_story_from_images(
    lib: Library,
    pictures: Sequence[tuple[bytes, str]],
    *,
    hints: str = "",
    tone: str = "gentle",
    age: int = 6,
    words_per_picture: int = 60,
    seed: int | None = None,
    profile=None,
) -> StoryStart:
    """A new project from (bytes, file name) pictures, in order, and the job that writes its story.

    Files the loader refuses are left out (their sentences come back in `refused`); the rest are saved
    before the job is submitted, one page per picture, so the story's words arrive into saved pages.
    """
    from core.limits import DEFAULT_TEMPERATURE
    from core.seeds import new_seed
    from engine.errors import ImageRejected
    from engine.imageio import load_image

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

    seed = new_seed() if seed is None else int(seed)
    title = f"A story from {len(usable)} picture{'s' if len(usable) != 1 else ''}"
    project = create_project(lib, title=title, profile=profile.name)
    try:
        project = lib.set_source_images(project.id, project.version, [(png, "") for png, _ in usable])
        pages = [PageInput(text=PLACEHOLDER_PASSAGE.format(n=n), start=0, end=0) for n in range(1, len(usable) + 1)]
        project = lib.save_story(project.id, project.version, "", pages)
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


def write_story_again(
    lib: Library, project_id: int, expected_version: int, *, new_seed: bool = True, profile=None
) -> JobStart:
    """Write every passage again from the stored pictures (and their captions, when all have one).

    With new_seed=False the stored seed is used, so the same models write the same story again.
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
    if new_seed:
        from core.seeds import new_seed as make_seed

        request = {**(settings.get("request") or {}), "seed": make_seed()}
        project = lib.update_project(project.id, project.version, story_settings={**settings, "request": request})
    job_id = _submit_story(lib, project, profile)
    return JobStart(job_id, project, tuple(s.id for s in project.pages))


def retell_passage(lib: Library, project_id: int, page_id: int, expected_version: int, *, profile=None) -> JobStart:
    """Write one passage again (Storyteller.retell on the stored story); the other passages stay as they are."""
    project = lib.get_project(project_id)
    if project.version != expected_version:
        raise ConflictError()
    page = _page(project, page_id)
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

    def save(told) -> None:
        try:
            lib.save_job_output(pid, passages={page_id: told.passages[index]})
        except NotFound:
            log.info("passage for page %s dropped: the page no longer exists", page_id)
            return
        _job_write(
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
    page = _page(project, page_id)
    text = (text or "").strip()
    if not text:
        raise InputError("A passage cannot be empty: write a few words, or write it again with the storyteller.")
    if any(page_id in job.meta.get("page_ids", ()) for job in active_story_jobs(project_id)):
        raise InputError("These words are being written again right now: wait for them, then edit.")
    if text == page.text and project.version == expected_version:
        return project
    project = lib.update_page(page_id, expected_version, text=text)
    return _resync_story_text(lib, project)


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
    from engine.metrics import story_metrics

    captions = [src.caption for src in project.source_images]
    whole = story_metrics(captions, "\n\n".join(s.text for s in project.pages))
    each: list[dict | None] = []
    for page in project.pages:
        caption = captions[page.position] if page.position < len(captions) else None
        each.append(story_metrics([caption], page.text) if caption else None)
    return whole, each


def story_jobs(project_id: int) -> list[JobInfo]:
    """This project's story-writing jobs still known to the worker, oldest first."""
    return get_worker().jobs(kind=KIND_STORY, project_id=project_id)


def active_story_jobs(project_id: int | None = None) -> list[JobInfo]:
    meta = {} if project_id is None else {"project_id": project_id}
    return get_worker().jobs(kind=KIND_STORY, active_only=True, **meta)


def story_page_ids(project_id: int) -> set[int]:
    """Pages whose words a story job that has not finished is writing or has just written."""
    ids: set[int] = set()
    for job in active_story_jobs(project_id):
        ids.update(job.meta.get("page_ids", ()))
    return ids


def writing_page_ids(project_id: int) -> set[int]:
    """Pages still waiting for their words from a running story job (passages already saved are left out)."""
    ids: set[int] = set()
    for job in active_story_jobs(project_id):
        pages = tuple(job.meta.get("page_ids", ()))
        # `results` counts saves that finished: the captions first (when read by the job), then one per passage.
        saved = max(0, job.results - int(job.meta.get("results_before_passages", 0)))
        ids.update(pages[saved:])
    return ids


def plural_pages(n: int) -> str:
    return f"{n} page{'s' if n != 1 else ''}"


def _storable(image) -> bytes:
    from engine.imageio import to_png_bytes

    png = to_png_bytes(image)
    if len(png) <= _STORED_PNG_LIMIT:
        return png
    import io

    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def _open_stored(path: Path):
    # Our own file, checked (size, pixels, verify) when it was saved; the upload limit does not apply.
    from PIL import Image

    with Image.open(path) as image:
        return image.convert("RGB")


def _job_write(lib: Library, project_id: int, write) -> ProjectView:
    """A job's read-change-write (save_job_output with based_on): a person's edit in between is kept, and the
    change is made again on what they saved."""
    for _ in range(8):
        project = lib.get_project(project_id)
        try:
            return write(project)
        except ConflictError:
            continue
    raise ConflictError()


def _resync_story_text(lib: Library, project: ProjectView) -> ProjectView:
    """Make the story's full text the passages joined by blank lines (pages keep their rows and pictures)."""
    story_text, pages = "", []
    for page in project.pages:
        if story_text:
            story_text += "\n\n"
        start = len(story_text)
        story_text += page.text
        pages.append(PageInput(text=page.text, start=start, end=len(story_text)))
    if story_text == project.story_text and all(
        (p.start, p.end) == (s.start, s.end) for p, s in zip(pages, project.pages)
    ):
        return project
    return lib.save_story(project.id, project.version, story_text, pages)


def _submit_story(lib: Library, project: ProjectView, profile) -> str:
    settings = project.story_settings or {}
    request = dict(settings.get("request") or {})
    sources = [(src.id, src.image_path) for src in project.source_images]
    known = [src.caption for src in project.source_images]
    captions_known = bool(known) and all(c.strip() for c in known)
    page_ids = tuple(page.id for page in project.pages)
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
            tone=request.get("tone", "gentle"),
            age=int(request.get("age", 6)),
            words_per_picture=int(request.get("words_per_picture", 60)),
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
                try:
                    lib.save_job_output(pid, passages={page_ids[index]: passage})
                except NotFound:
                    log.info("passage for page %s dropped: the page no longer exists", page_ids[index])
            return

        def finish(p: ProjectView) -> ProjectView:
            stored = dict(p.story_settings or {})
            title = p.title
            if value.title and title in (stored.get("placeholder_title"), stored.get("title"), DEFAULT_TITLE):
                title = value.title[:200]
            stored.update({"source": STORY_SOURCE, "title": value.title, "seed": value.seed, "story": value.settings})
            return lib.save_job_output(pid, based_on=p.version, title=title, story_settings=stored)

        _job_write(lib, pid, finish)

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


# --- export ------------------------------------------------------------------------------------------
# The printable book. Rendering is CPU work on pure functions (exports/), quick for a picture book, so
# the Export page calls it directly under a spinner rather than through the GPU worker.


@dataclass(frozen=True)
class ExportOutcome:
    key: tuple  # export_key(): what this PDF was made from
    pdf: bytes
    page_count: int
    warnings: tuple[str, ...]  # everything exports found: low-resolution pictures, missing files…
    low_dpi: tuple[tuple[int | None, float], ...]  # (story page index or None for the cover, dpi)
    previews: tuple[bytes, ...]  # PNGs of the first pages; empty when they cannot be drawn
    preview_note: str | None  # why there is no preview, in a sentence
    zip: bytes  # the pictures and story.md
    file_stem: str  # a safe file name for the downloads, from the title


def export_key(project: ProjectView, options) -> tuple:
    """What a PDF depends on: the project as saved (a new picture changes `updated`, not `version`) and the options."""
    from dataclasses import astuple

    return (project.id, project.version, project.updated.isoformat(), astuple(options))


MAX_PREVIEW_PAGES = 200  # "leaf through all pages" draws at most this many


def preview_every_page(outcome: ExportOutcome, dpi: int = 40) -> tuple[bytes, ...]:
    """PNGs of the made PDF's pages, up to MAX_PREVIEW_PAGES, small: to leaf through before printing."""
    from exports import render_preview

    return tuple(render_preview(outcome.pdf, pages=min(outcome.page_count, MAX_PREVIEW_PAGES), dpi=dpi))


def export_book(project: ProjectView, options, *, preview_pages: int = 3, preview_dpi: int = 60) -> ExportOutcome:
    """The PDF (with a preview of its first pages) and the ZIP of a saved project; ExportError says what to change."""
    import re

    from exports import ExportError, book_from_project, preview_available, render_pdf, render_preview, render_zip

    book = book_from_project(project)
    result = render_pdf(book, options)
    archive = render_zip(book)
    previews: list[bytes] = []
    note = None
    if not preview_available():
        note = (
            "The preview needs poppler's pdftoppm, which is not installed on this computer "
            "(apt-get install poppler-utils); the PDF itself is complete."
        )
    else:
        try:
            previews = render_preview(result.pdf, pages=preview_pages, dpi=preview_dpi)
        except ExportError as exc:
            note = exc.message
    low = tuple((r.page_index, r.dpi) for r in result.image_reports if not r.ok and r.dpi > 0)
    stem = re.sub(r"[^A-Za-z0-9]+", "-", project.title).strip("-").lower()[:60] or "storybook"
    return ExportOutcome(
        key=export_key(project, options),
        pdf=result.pdf,
        page_count=result.page_count,
        warnings=tuple(dict.fromkeys(result.warnings)),
        low_dpi=low,
        previews=tuple(previews),
        preview_note=note,
        zip=archive,
        file_stem=stem,
    )
