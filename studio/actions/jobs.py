"""Jobs on the engine's worker, as the screens see them: which are running for a project, which pages they
are drawing or writing, and stopping one. Also the read-change-write a job's saver uses (job_write).

Every job carries its project in ``meta["project_id"]`` and the pages it works on in ``meta["page_ids"]``,
so a refreshed or second tab finds the running job again.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.jobs import JobInfo, get_worker
from storage import ConflictError, Library, ProjectView

KIND_ILLUSTRATE = "illustrate"

KIND_STORY = "story"


@dataclass(frozen=True)
class JobStart:
    job_id: str | None  # None: nothing needed drawing
    project: ProjectView  # the project as it is after the seeds were stored
    drawing: tuple[int, ...]  # page ids in the job, in page order
    kept: tuple[int, ...] = ()  # page ids left alone because they already have a picture


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


def cancel_job(job_id: str) -> bool:
    """Ask the worker to stop a job; what it already saved is kept. False when it had already finished."""
    return get_worker().cancel(job_id)


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


def job_write(lib: Library, project_id: int, write) -> ProjectView:
    """A job's read-change-write (save_job_output with based_on): a person's edit in between is kept, and the
    change is made again on what they saved."""
    for _ in range(8):
        project = lib.get_project(project_id)
        try:
            return write(project)
        except ConflictError:
            continue
    raise ConflictError()


KIND_WARM = "warm"

PICTURE_MODEL_READY = "Getting the picture model ready…"
PICTURE_MODEL_FROM_DISK = "Loading the picture model from disk…"


def picture_model_progress(ctx, profile, total: int | None = None, drafts=None) -> None:
    """A picture job's first words, on the worker: a cold start (the picture model read from disk into memory,
    seconds to a minute on a CPU) says so, so the progress bar waiting at zero says what it waits for. `drafts`
    (what engine.illustrate.finish_drafts is given): asked for the number format they are finished in."""
    ctx.progress(0, total, message=PICTURE_MODEL_READY)
    from engine.illustrate import finishing_choice, illustrator_loaded

    if not illustrator_loaded(profile, finishing_choice(drafts) if drafts else None):
        ctx.progress(0, total, message=PICTURE_MODEL_FROM_DISK)


_warmed: set[str] = set()  # profiles whose picture model this process has loaded, or is loading, for a warm-up


def warm_up(profile) -> str | None:
    """Load the profile's picture model on the worker in the background, so the first "New picture" is as quick
    as the later ones; returns the job id, or None when there is nothing to do.

    The quick decoder that drafts are decoded with is loaded too, when the profile has one on this computer.
    Only a model already on this computer is loaded (warming never downloads), once per profile per process,
    and only when a screen that draws opens a story: someone who only browses the library loads nothing.
    The job waits behind any job already running, and its progress shows in the sidebar like any other.
    """
    from studio.actions.profiles import missing_reason, model_here

    if profile is None or profile.name in _warmed or missing_reason(profile, ("illustrator",)):
        return None
    _warmed.add(profile.name)
    # The quick decoder drafts use comes too (a few MB), so a draft is as quick as the next one, when it is here.
    draft = model_here(profile, "preview_decoder")

    def run(ctx) -> None:
        from engine.illustrate import open_illustrator

        ctx.progress(0, 1, message="Loading it from disk…")
        with open_illustrator(profile, draft=draft):
            pass
        ctx.progress(1, 1, message="Ready.")

    return get_worker().submit(
        run, kind=KIND_WARM, label=f"Getting the '{profile.name}' picture model ready", total=1, meta={}
    )
