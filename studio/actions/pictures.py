"""Pictures for pages: draw every page, draw one again, use the person's own picture.

Every picture is drawn on the engine's single worker (``engine.jobs.get_worker()``); each finished
picture is saved by the job's ``on_result`` callback on the worker's saver thread, straight into the
library. Nothing waits on a screen, so a rerun, a click elsewhere, a refresh or a second tab loses no
picture: screens find a project's running job again through its ``project_id`` meta and re-read the
project from storage to see what has arrived.

Seeds are stored on the page (``update_page(seed=...)``) before its job is submitted, and each
picture's settings carry the seed it was drawn with, so every page of a book can be drawn again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from core import seeds
from core.errors import InputError
from engine.imageio import MAX_UPLOAD_BYTES, load_image, to_png_bytes
from engine.jobs import get_worker
from storage import ConflictError, Library, NotFound, PageView, PictureView, ProjectView
from studio.actions.jobs import KIND_ILLUSTRATE, JobStart, active_jobs
from studio.actions.pages import find_page
from studio.actions.profiles import ensure_illustrator, project_profile

log = logging.getLogger(__name__)

MAX_PICTURE_MB = MAX_UPLOAD_BYTES // 2**20  # what the picture loader takes; the uploaders ask for no more


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
    return JobStart(_submit_pictures(lib, project, pages, profile, label), project, tuple(s.id for s in pages), kept)


def regenerate(
    lib: Library, project_id: int, page_id: int, expected_version: int, *, new_seed: bool = True, profile=None
) -> JobStart:
    """Draw one page again: with a new seed, or with its stored seed (and its edited prompt)."""
    project = lib.get_project(project_id)
    if project.version != expected_version:
        raise ConflictError()
    page = find_page(project, page_id)
    if new_seed and page.locked:
        raise InputError("This page's seed is locked: unlock it to draw with a new seed, or redraw with the same seed.")
    profile = profile or project_profile(project).profile
    ensure_illustrator(profile)
    if new_seed or page.seed is None:
        project = lib.update_page(page.id, project.version, seed=seeds.new_seed())
        page = find_page(project, page_id)
    label = f"Page {page.position + 1} of “{project.title}”"
    return JobStart(_submit_pictures(lib, project, [page], profile, label), project, (page.id,))


def upload_picture(lib: Library, page_id: int, data: bytes, name: str = "") -> tuple[PictureView, list[str]]:
    """Use the user's own picture for a page (read by the hardened loader); returns the notes on it."""
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


def choose_picture(lib: Library, picture_id: int) -> PictureView:
    """Make this version its page's picture, the one the book prints; the other versions are kept."""
    return lib.select_picture(picture_id)


def delete_picture(lib: Library, picture_id: int) -> None:
    """Delete one version of a page's picture; when it was the chosen one, the newest left is chosen."""
    lib.delete_picture(picture_id)


def _store_seeds(lib: Library, project: ProjectView, pages: Sequence[PageView], *, fresh: bool) -> ProjectView:
    base = seeds.new_seed()
    for page in pages:
        if page.seed is None or (fresh and not page.locked):
            project = lib.update_page(page.id, project.version, seed=seeds.page_seed(base, page.position))
    return project


def _submit_pictures(lib: Library, project: ProjectView, pages: Sequence[PageView], profile, label: str) -> str:
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
