"""Pictures for pages: draw every page, draw one again, use the person's own picture.

Every picture is drawn on the engine's single worker (``engine.jobs.get_worker()``); each finished
picture is saved by the job's ``on_result`` callback on the worker's saver thread, straight into the
library. Nothing waits on a screen, so a rerun, a click elsewhere, a refresh or a second tab loses no
picture: screens find a project's running job again through its ``project_id`` meta and re-read the
project from storage to see what has arrived.

Seeds are stored on the page (``update_page(seed=...)``) before its job is submitted, and each
picture's settings carry the seed it was drawn with, so every page of a book can be drawn again.

Draft or final: a book draws quick drafts first when ``project.drafts`` says so (a page's "New picture" can
ask for either), and every picture records it in ``meta["draft"]``. ``finish_drafts`` turns drafts into
final pictures: the draft's own latent (drawn again from its recorded settings) through the full decoder,
the picture the person saw in full detail, saved as a new version; the draft stays among the versions.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

from core import seeds
from core.errors import InputError
from core.hardware import OPENVINO_DRAFTS_NOT_INSTALLED, gpu_likely
from core.requests import PageSpec
from engine.imageio import MAX_UPLOAD_BYTES, load_image, to_png_bytes
from engine.jobs import get_worker
from engine.profiles import REFERENCE_IP_ADAPTER
from storage import ConflictError, Library, NotFound, PageView, PictureView, ProjectView
from studio.actions.cast import engine_references, picture_meta, plan_drawing, remeasure_after_draw, story_cast
from studio.actions.jobs import KIND_ILLUSTRATE, JobStart, active_jobs, picture_model_progress
from studio.actions.pages import find_page, prompt_preview
from studio.actions.profiles import ensure_illustrator, has_gpu, project_profile

log = logging.getLogger(__name__)

MAX_PICTURE_MB = MAX_UPLOAD_BYTES // 2**20  # what the picture loader takes; the uploaders ask for no more


def illustrate_all(
    lib: Library,
    project_id: int,
    expected_version: int,
    *,
    redo: bool = False,
    profile=None,
    draft: bool | None = None,
) -> JobStart:
    """Draw every page that has no picture yet (every page with redo=True) in one job.

    A page without a seed gets one; with redo=True every unlocked page gets a fresh seed, while a
    locked page keeps its seed, so it is drawn again exactly (or with its edited prompt).
    draft: quick drafts (True) or final pictures (False); None: what the book says (``project.drafts``).
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
    draft = project.drafts if draft is None else bool(draft)
    job = _submit_pictures(lib, project, pages, profile, label, draft=draft)
    return JobStart(job, project, tuple(s.id for s in pages), kept)


def regenerate(
    lib: Library,
    project_id: int,
    page_id: int,
    expected_version: int,
    *,
    new_seed: bool = True,
    profile=None,
    draft: bool | None = None,
) -> JobStart:
    """Draw one page again: with a new seed, or with its stored seed (and its edited prompt).
    draft: a quick draft (True) or a final picture (False); None: what the book says (``project.drafts``)."""
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
    draft = project.drafts if draft is None else bool(draft)
    return JobStart(_submit_pictures(lib, project, [page], profile, label, draft=draft), project, (page.id,))


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


def keep_picture_for_words(lib: Library, picture_id: int, expected_version: int) -> ProjectView:
    """Keep a picture although its page's words changed since it was drawn: "words changed since this picture"
    goes away until the words change again (one undoable step; the picture's recipe is left as it was)."""
    return lib.keep_picture_for_words(picture_id, expected_version)


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


STUDIO_SETTINGS = ("style", "profile", "page_text", "own_prompt", "planned_prompt")  # what the studio adds


def planned_prompt(
    page: PageView, style: str, characters: Sequence[tuple[str, str]], setting: str, present: Sequence[str]
) -> str:
    """The prompt the studio shows for a page's next picture (the job fits the one it draws from to the model's
    tokenizer). Kept with each picture drawn, so a card says "Next picture" only when what it would show changed
    since (the words, the style, the characters, the setting or the page's own prompt), not whenever the
    tokenizer's fit differs from the studio's guess of it."""
    return page.prompt_override or prompt_preview(page.text, style, characters, setting=setting, present=present)


def _submit_pictures(
    lib: Library, project: ProjectView, pages: Sequence[PageView], profile, label: str, *, draft: bool = False
) -> str:
    # engine.illustrate imports torch and diffusers (seconds, the first time): that happens on the worker,
    # so the page shows the job at once instead of freezing after the click.
    specs = [
        PageSpec(
            key=page.id,
            text=page.text,
            seed=int(page.seed),
            prompt_override=page.prompt_override,
            negative_prompt=page.negative_prompt,
        )
        for page in pages
    ]
    style = project.style
    characters = tuple((c.name, c.description) for c in project.characters)
    setting = project.setting
    count = len(specs)
    # Who is on each page is read across the whole story, as when the whole book is drawn: a page redrawn alone
    # that says "she" still gets the description of the girl named on the page before.
    cast_by_page = story_cast(project)
    cast = [cast_by_page.get(page.id, []) for page in pages] if characters else None
    planned = {
        page.id: planned_prompt(page, style, characters, setting, cast_by_page.get(page.id, [])) for page in pages
    }
    plan = plan_drawing(project, profile)  # best of N, scores, references (actions.cast)
    for note in plan.notes:
        log.info("drawing %s: %s", label, note)

    def run(ctx) -> None:
        picture_model_progress(ctx, profile)
        from engine.illustrate import choose_best, illustrate_pages

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
                draft=draft,
                cast=cast,
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
            settings["planned_prompt"] = planned[result.key]  # so its card can say when the next one differs
        meta = picture_meta(result.metadata, draw)
        try:
            meta["draft"] = bool(result.settings.get("draft", draft))
            lib.add_picture(
                result.key, to_png_bytes(result.image), settings, origin="generated", select=meta["chosen"], meta=meta
            )
        except NotFound:
            # Only when the page was removed for good (its story's bin emptied) while its picture was drawn.
            log.info("picture for page %s dropped: the page was removed for good", result.key)

    page_ids = tuple(s.id for s in pages)

    def after(info) -> None:
        # A character's likeness, once measured, follows its pages: measured again behind the draw (actions.cast).
        if info.results:
            remeasure_after_draw(lib, project.id, page_ids, profile)

    return get_worker().submit(
        run,
        kind=KIND_ILLUSTRATE,
        label=label,
        total=count * plan.candidates,
        on_result=save,
        on_finish=after,
        meta={"project_id": project.id, "page_ids": page_ids, "candidates": plan.candidates},
    )


# --- drafts ---------------------------------------------------------------------------------------------------


def set_drafts(lib: Library, project_id: int, expected_version: int, drafts: bool) -> ProjectView:
    """Whether the book draws quick drafts first (True) or final pictures (False); one undo step."""
    return lib.update_project(project_id, expected_version, drafts=bool(drafts))


def is_draft(picture: PictureView | None) -> bool:
    """Whether a picture is a quick draft not finished yet (meta["draft"]; older pictures: their settings)."""
    if picture is None or picture.origin == "uploaded":
        return False
    return bool(picture.meta.get("draft", picture.settings.get("draft", False)))


def draft_pages(project: ProjectView) -> list[PageView]:
    """The story's pages whose picture in use (the one the book prints) is a draft, in page order."""
    return [page for page in project.pages if is_draft(page.selected)]


_gpu_here: list[bool] = []  # has_gpu(), once known: it cannot change while the studio runs


def drafts_recommended(profile) -> bool | None:
    """Whether this computer favours quick drafts first for the profile (engine.illustrate.draft_by_default: a
    profile whose drafts the bench favours on a processor, and no GPU here).

    None when that is not known yet: finding out imports torch (seconds), which a screen does not wait for; the
    worker imports it when a story's picture model is loaded, and from then on the answer is at hand."""
    if not getattr(profile, "draft_on_cpu", False):
        return False
    if not _gpu_here:
        if "torch" not in sys.modules:
            return None
        _gpu_here.append(has_gpu())
    return not _gpu_here[0]


def drafts_for_new_book(profile) -> bool:
    """Whether a new book with this profile starts with quick drafts: what this computer favours
    (`drafts_recommended`), guessed without torch when torch is not loaded yet (core.hardware.gpu_likely). The
    person can change it on the storyboard at any time."""
    recommended = drafts_recommended(profile)
    if recommended is None:
        return not gpu_likely()
    return recommended


def finish_drafts(lib: Library, project_id: int, *, picture_ids: Sequence[int] | None = None, profile=None) -> JobStart:
    """Finish drafts into final pictures, in one job on the worker.

    By default every page whose picture in use is a draft; ``picture_ids``: these draft versions only. Each draft
    is finished by decoding its own latent (drawn again exactly from its recorded settings: seed, prompt, steps,
    size, number format and the character reference it was drawn with) with the full decoder: the picture the
    person saw, in full detail (engine.illustrate.finish_drafts, method "decode"). Each result is saved as a new
    version of its page, selected, with meta {"draft": False, "finished_from": the draft's version}; the draft
    stays among the versions. JobStart.drawing names the pages in the job; job_id is None when there is no draft.
    """
    project = lib.get_project(project_id)
    if picture_ids is None:
        chosen = [(page, page.selected) for page in draft_pages(project)]
    else:
        wanted = {int(i) for i in picture_ids}
        chosen = [(page, pic) for page in project.pages for pic in page.pictures if pic.id in wanted]
        if len(chosen) != len(wanted):
            raise InputError(
                "That picture is no longer on a page of this story: it may have been deleted or moved in another "
                "tab or window. Reload the story."
            )
        finished = [f"page {page.position + 1}" for page, pic in chosen if not is_draft(pic)]
        if finished:
            raise InputError(f"The picture of {finished[0]} is not a draft: it is already a final picture.")
    if not chosen:
        return JobStart(None, project, ())
    if active_jobs(project_id):
        raise InputError("Pictures for this story are being drawn right now: wait for them, or stop them first.")
    profile = profile or project_profile(project).profile
    model = profile.model("illustrator")
    for page, picture in chosen:
        drawn_with = picture.settings.get("model_id")
        if drawn_with and drawn_with != model:
            raise InputError(
                f"The draft of page {page.position + 1} was drawn with other models ({drawn_with}) than this story "
                f"uses now ({model}): choose those models again in Book details to finish it, or draw the page again."
            )
    if (
        any(str(picture.settings.get("runtime") or "") == "openvino" for _, picture in chosen)
        and importlib.util.find_spec("openvino") is None
        # A GPU finishes them with torch (engine.illustrate.finish_drafts). Asked without loading torch on the
        # screen's thread (seconds): torch's answer when the worker has it loaded, else the drivers' files.
        and not (_gpu_here[0] if _gpu_here else gpu_likely())
    ):
        raise InputError(OPENVINO_DRAFTS_NOT_INSTALLED)
    references: dict[str, Path] = {}
    for page, picture in chosen:
        stored = picture.settings.get("reference") or {}
        if stored.get("method") != REFERENCE_IP_ADAPTER:
            continue  # a shared-attention reference is drawn again from its own prompt and seed
        name = stored.get("name", "")
        path = next((c.reference_path for c in project.characters if c.name == name and c.reference_path), None)
        if path is None or stored.get("reference_id") not in (None, "", Path(path).stem):
            raise InputError(
                f"The draft of page {page.position + 1} was drawn with {name}'s reference picture, which this story "
                f"no longer has{'' if path is None else ' (it has another one now)'}: it cannot be finished the "
                "same; draw the page again instead."
            )
        references[name] = Path(path)
    ensure_illustrator(profile)
    drafts = [(picture.id, dict(picture.settings)) for _, picture in chosen]
    origin = {picture.id: (page.id, picture.version, picture.settings) for page, picture in chosen}
    count = len(drafts)

    def run(ctx) -> None:
        picture_model_progress(ctx, profile, count, drafts)
        from engine.illustrate import finish_drafts as finish

        images = {name: load_image(path).image for name, path in references.items()}

        def on_progress(done: int, total: int) -> None:
            ctx.progress(done, total, message=f"Finishing… {done} of {total} ready")

        finish(
            drafts,
            profile,
            method="decode",
            reference_images=images,
            on_image=ctx.emit,
            on_progress=on_progress,
            should_cancel=lambda: ctx.cancelled,
        )

    def save(result) -> None:
        page_id, version, draft_settings = origin[result.key]
        # What the studio added to the draft's settings (style, profile, the words it was drawn for) still holds.
        kept = {k: draft_settings[k] for k in STUDIO_SETTINGS if k in draft_settings}
        settings = {**kept, **result.settings, "profile": profile.name}
        meta = {"draft": False, "finished_from": version}
        try:
            lib.add_picture(page_id, to_png_bytes(result.image), settings, origin="generated", select=True, meta=meta)
        except NotFound:
            log.info("finished picture for page %s dropped: the page was removed for good", page_id)

    page_ids = tuple(page.id for page, _ in chosen)
    label = f"Finishing {count} draft{'s' if count != 1 else ''} of “{project.title}”"
    job = get_worker().submit(
        run,
        kind=KIND_ILLUSTRATE,
        label=label,
        total=count,
        on_result=save,
        meta={"project_id": project.id, "page_ids": page_ids, "finishing": True},
    )
    return JobStart(job, project, page_ids)


def finishing_jobs(project_id: int) -> list:
    """This story's jobs that finish drafts, still known to the worker, oldest first."""
    return get_worker().jobs(kind=KIND_ILLUSTRATE, project_id=project_id, finishing=True)
