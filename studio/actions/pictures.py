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
import uuid
from collections.abc import Sequence

from core import seeds
from core.errors import InputError
from engine.imageio import MAX_UPLOAD_BYTES, load_image, to_png_bytes
from engine.jobs import get_worker
from storage import ConflictError, Library, NotFound, PageView, PictureView, ProjectView
from studio.actions.cast import engine_references, picture_meta, plan_drawing
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
        project = lib.set_seeds(project.id, project.version, {page.id: seeds.new_seed()})
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


def choose_picture(lib: Library, picture_id: int, expected_version: int) -> ProjectView:
    """Make this version its page's picture, the one the book prints; the other versions are kept (undoable)."""
    return lib.select_picture(picture_id, expected_version)


def discard_picture(lib: Library, picture_id: int, expected_version: int) -> ProjectView:
    """Put one version of a picture (or a loose picture) in the story's bin; when it was the page's picture,
    the newest other version becomes it. Undo, or bring it back from the bin, until the bin is emptied."""
    return lib.discard_picture(picture_id, expected_version)


def restore_picture(lib: Library, picture_id: int, expected_version: int) -> ProjectView:
    """Bring a discarded picture back from the bin to its page (or to the loose-pictures tray)."""
    return lib.restore_picture(picture_id, expected_version)


def place_picture(lib: Library, picture_id: int, page_id: int, expected_version: int) -> ProjectView:
    """Put a loose picture on a page of the story as its newest version."""
    return lib.place_picture(picture_id, page_id, expected_version)


def empty_bin(lib: Library, project_id: int, expected_version: int) -> tuple[ProjectView, str]:
    """Remove for good what is in the story's bin, freeing its disk space; returns a sentence saying so."""
    before = lib.get_project(project_id)
    freed = before.bin.files_bytes if before.bin else 0
    project, removed = lib.empty_bin(project_id, expected_version)
    files = f"{removed} picture file{'s' if removed != 1 else ''}"
    return project, f"The bin is empty: {files} removed, about {freed / 2**20:.1f} MB freed."


def _store_seeds(lib: Library, project: ProjectView, pages: Sequence[PageView], *, fresh: bool) -> ProjectView:
    base = seeds.new_seed()
    chosen = {
        page.id: seeds.page_seed(base, page.position)
        for page in pages
        if page.seed is None or (fresh and not page.locked)
    }
    return lib.set_seeds(project.id, project.version, chosen) if chosen else project


def _submit_pictures(lib: Library, project: ProjectView, pages: Sequence[PageView], profile, label: str) -> str:
    # engine.illustrate imports torch and diffusers (seconds, the first time): that happens on the worker,
    # so the page shows the job at once instead of freezing after the click.
    pages_to_draw = [(page.id, page.text, int(page.seed), page.prompt_override, page.negative_prompt) for page in pages]
    style = project.style
    characters = tuple((c.name, c.description) for c in project.characters)
    setting = project.setting
    count = len(pages_to_draw)
    plan = plan_drawing(project, profile)  # best of N, scores, references (actions.cast)
    for note in plan.notes:
        log.info("drawing %s: %s", label, note)

    def run(ctx) -> None:
        ctx.progress(0, message="Getting the picture model ready…")
        from engine.illustrate import PageSpec, choose_best, illustrate_pages

        specs = [
            PageSpec(key=key, text=text, seed=seed, prompt_override=override, negative_prompt=negative)
            for key, text, seed, override, negative in pages_to_draw
        ]
        references = engine_references(plan.references)
        ready, steps_done = 0, 0
        waiting: dict = {}  # page id -> its candidates drawn so far, saved once the page's best is known

        def status() -> str:
            return f"Drawing… {ready} of {count} picture{'s' if count != 1 else ''} ready"

        def on_progress(done: int, total: int) -> None:
            nonlocal steps_done
            steps_done = done
            ctx.progress(done, total, message=status())

        def page_ready(results) -> None:
            nonlocal ready
            ready += 1
            for result in results:
                ctx.emit(result)
            ctx.progress(steps_done, message=status())

        def on_image(result) -> None:
            if plan.candidates == 1:
                page_ready([result])
            else:
                waiting.setdefault(result.key, []).append(result)

        def on_chosen(best) -> None:
            # Every candidate is kept as a version; only the chosen one becomes the page's picture.
            if plan.candidates > 1:
                page_ready(sorted(waiting.pop(best.key, []), key=lambda r: r.metadata.get("candidate", 0)))

        try:
            illustrate_pages(
                specs,
                profile,
                style=style,
                characters=characters,
                setting=setting,
                on_image=on_image,
                on_progress=on_progress,
                should_cancel=lambda: ctx.cancelled,
                candidates=plan.candidates,
                score=plan.score,
                references=references,
                on_chosen=on_chosen,
            )
        finally:
            # Stopped part-way: what was drawn of an unfinished page is kept too, its best so far chosen.
            for group in waiting.values():
                best = choose_best(group)
                for result in group:
                    result.metadata["chosen"] = result is best
                    ctx.emit(result)

    drawn_for = {page.id: page.text for page in pages}
    own_prompt = {page.id for page in pages if page.prompt_override}
    draw = uuid.uuid4().hex[:12]  # names this draw in each picture's meta: the candidates drawn together

    def save(result) -> None:
        # Runs on the worker's saver thread while the next pictures are drawn. A page that left the story
        # meanwhile still gets its picture (it waits in the loose-pictures tray or the bin, with the page).
        settings = {**result.settings, "style": style, "profile": profile.name}
        if result.key in drawn_for:
            settings["page_text"] = drawn_for[result.key]  # so the page can say when its words change
            settings["own_prompt"] = result.key in own_prompt
        meta = picture_meta(result.metadata, draw)
        try:
            lib.add_picture(
                result.key, to_png_bytes(result.image), settings, origin="generated", select=meta["chosen"], meta=meta
            )
        except NotFound:
            # Only when the page was removed for good (its story's bin emptied) while its picture was drawn.
            log.info("picture for page %s dropped: the page was removed for good", result.key)

    return get_worker().submit(
        run,
        kind=KIND_ILLUSTRATE,
        label=label,
        total=count * plan.candidates,
        on_result=save,
        meta={"project_id": project.id, "page_ids": tuple(s.id for s in pages), "candidates": plan.candidates},
    )
