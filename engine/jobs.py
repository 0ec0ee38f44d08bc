"""One worker thread runs all GPU work, one job at a time; pages only submit and poll.

A job reports progress, can be cancelled, and hands each finished result to its `on_result` callback
on a separate saver thread, so pictures are written to disk as they arrive while the GPU goes on.
Errors are kept as sentences, never as exception objects: a held CUDA out-of-memory exception keeps
its frames, and with them the GPU memory, alive.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from core.errors import UserError
from engine.errors import Cancelled

log = logging.getLogger(__name__)


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)


@dataclass(frozen=True)
class JobInfo:
    """A snapshot of a job, safe to read from any thread."""

    id: str
    kind: str
    label: str
    status: JobStatus
    done: int = 0
    total: int = 0
    message: str = ""
    error: str | None = None
    results: int = 0
    save_errors: tuple[str, ...] = ()
    created: float = 0.0
    started: float | None = None
    finished_at: float | None = None
    meta: dict = field(default_factory=dict)
    stopping: bool = False  # a stop was asked for: the job ends at its next check (what it saved is kept)

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else (1.0 if self.status.finished else 0.0)

    @property
    def finished(self) -> bool:
        return self.status.finished


class JobContext:
    """What a running job sees: progress, the cancel flag, and emit() for each finished result."""

    def __init__(self, worker: JobWorker, job_id: str):
        self._worker = worker
        self.job_id = job_id
        self._cancel = worker._cancel_events[job_id]

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check_cancel(self) -> None:
        if self._cancel.is_set():
            raise Cancelled()

    def progress(self, done: int, total: int | None = None, message: str | None = None) -> None:
        self._worker._update(
            self.job_id,
            done=done,
            **({"total": total} if total is not None else {}),
            **({"message": message} if message is not None else {}),
        )

    def emit(self, result: Any) -> None:
        self._worker._emit(self.job_id, result)


@dataclass
class _Pending:
    fn: Callable[[JobContext], Any]
    on_result: Callable[[Any], None] | None
    on_finish: Callable[[JobInfo], None] | None
    saves: list[Future] = field(default_factory=list)


class JobWorker:
    def __init__(self, name: str = "storybook-gpu-worker", keep_finished: int = 200):
        self._lock = threading.RLock()
        # Every change of any job (submitted, progress, a result saved, finished) bumps the revision and wakes
        # whoever waits in wait_for_change: screens redraw when something happened, not on a timer.
        self._changed = threading.Condition(self._lock)
        self._revision = 0
        self._jobs: dict[str, JobInfo] = {}
        self._pending: dict[str, _Pending] = {}
        self._cancel_events: dict[str, threading.Event] = {}
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._ids = itertools.count(1)
        self._keep_finished = keep_finished
        self._saver = ThreadPoolExecutor(max_workers=1, thread_name_prefix="storybook-saver")
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # --- what pages and the CLI call -----------------------------------------------------------
    def submit(
        self,
        fn: Callable[[JobContext], Any],
        *,
        kind: str,
        label: str,
        total: int = 0,
        on_result: Callable[[Any], None] | None = None,
        on_finish: Callable[[JobInfo], None] | None = None,
        meta: dict | None = None,
    ) -> str:
        job_id = f"{kind}-{next(self._ids)}-{int(time.time() * 1000) % 100000}"
        with self._lock:
            self._jobs[job_id] = JobInfo(
                id=job_id,
                kind=kind,
                label=label,
                status=JobStatus.QUEUED,
                total=total,
                created=time.time(),
                meta=dict(meta or {}),
                message="Waiting for the jobs before it.",
            )
            self._pending[job_id] = _Pending(fn, on_result, on_finish)
            self._cancel_events[job_id] = threading.Event()
            self._bump()
        self._queue.put(job_id)
        return job_id

    def get(self, job_id: str) -> JobInfo | None:
        with self._lock:
            return self._jobs.get(job_id)

    def jobs(self, *, kind: str | None = None, active_only: bool = False, **meta) -> list[JobInfo]:
        """Jobs, oldest first, filtered by kind, by being unfinished, and by meta values."""
        with self._lock:
            found = list(self._jobs.values())
        return [
            j
            for j in found
            if (kind is None or j.kind == kind)
            and (not active_only or not j.finished)
            and all(j.meta.get(k) == v for k, v in meta.items())
        ]

    def cancel(self, job_id: str) -> bool:
        with self._lock:
            event = self._cancel_events.get(job_id)
            info = self._jobs.get(job_id)
            if event is None or info is None or info.finished:
                return False
            event.set()
            # Said at once to whoever follows the job (a screen waiting on the revision redraws its panel).
            self._jobs[job_id] = replace(info, stopping=True)
            self._bump()
        return True

    def wait(self, job_id: str, timeout: float | None = None) -> JobInfo:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while True:
                info = self._jobs.get(job_id)
                if info is None or info.finished:
                    return info
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return info
                self._changed.wait(left)

    @property
    def revision(self) -> int:
        """A number that grows with every change of any job (see wait_for_change)."""
        with self._lock:
            return self._revision

    def wait_for_change(self, since: int, timeout: float) -> int:
        """Block until some job changed after revision ``since`` (or ``timeout`` seconds passed); returns the
        revision now. A screen keeps the number it drew from and redraws only when it moved."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._revision == since:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            return self._revision

    def _bump(self) -> None:  # under self._lock
        self._revision += 1
        self._changed.notify_all()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def shutdown(self, wait: bool = True) -> None:
        for job in self.jobs(active_only=True):
            self.cancel(job.id)
        self._queue.put(None)
        if wait:
            self._thread.join(timeout=30)
        self._saver.shutdown(wait=wait)

    # --- the worker's side ---------------------------------------------------------------------
    def _update(self, job_id: str, **changes) -> None:
        with self._lock:
            info = self._jobs.get(job_id)
            if info is not None:
                self._jobs[job_id] = replace(info, **changes)
                self._bump()

    def _emit(self, job_id: str, result: Any) -> None:
        pending = self._pending[job_id]
        if pending.on_result is None:
            self._bump_results(job_id)
            return

        def save() -> None:
            try:
                pending.on_result(result)
            except Exception as exc:  # noqa: BLE001 - a failed save must not kill the saver thread
                message = _user_message(exc) or f"A finished picture could not be saved ({type(exc).__name__}: {exc})."
                log.warning("job %s: save failed: %s", job_id, message)
                with self._lock:
                    info = self._jobs[job_id]
                    self._jobs[job_id] = replace(info, save_errors=info.save_errors + (message,))
                    self._bump()
                # Whatever broke this save (a full disk, a deleted project) breaks the next one too.
                self._cancel_events[job_id].set()
                return
            self._bump_results(job_id)

        pending.saves.append(self._saver.submit(save))

    def _bump_results(self, job_id: str) -> None:
        with self._lock:
            info = self._jobs[job_id]
            self._jobs[job_id] = replace(info, results=info.results + 1)
            self._bump()

    def _run(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None:
                return
            self._run_one(job_id)
            self._forget_old()

    def _run_one(self, job_id: str) -> None:
        pending = self._pending[job_id]
        if self._cancel_events[job_id].is_set():
            self._finish(job_id, JobStatus.CANCELLED, "Cancelled before it started.", None)
            return
        self._update(job_id, status=JobStatus.RUNNING, started=time.time(), message="Working…")
        status, message, error = JobStatus.DONE, "Finished.", None
        try:
            pending.fn(JobContext(self, job_id))
        except Cancelled as exc:
            status, message = JobStatus.CANCELLED, str(exc)
        except UserError as exc:
            status, message, error = JobStatus.FAILED, "Stopped.", str(exc)
        except Exception as exc:  # noqa: BLE001 - kept as a sentence; the traceback goes to the log
            log.error("job %s failed:\n%s", job_id, traceback.format_exc())
            status, message = JobStatus.FAILED, "Stopped."
            error = f"Something went wrong ({type(exc).__name__}: {exc}). Nothing already finished was lost."
        for save in pending.saves:
            save.result()  # every result is on disk (or its failure recorded) before the job ends
        info = self.get(job_id)
        if info.save_errors and status is not JobStatus.FAILED:
            status, error = JobStatus.FAILED, info.save_errors[0]
        self._finish(job_id, status, message, error)

    def _finish(self, job_id: str, status: JobStatus, message: str, error: str | None) -> None:
        self._update(job_id, status=status, message=message, error=error, finished_at=time.time())
        pending = self._pending.pop(job_id, None)
        if pending and pending.on_finish:
            try:
                pending.on_finish(self.get(job_id))
            except Exception:  # noqa: BLE001
                log.error("job %s: on_finish failed:\n%s", job_id, traceback.format_exc())

    def _forget_old(self) -> None:
        with self._lock:
            finished = sorted((j for j in self._jobs.values() if j.finished), key=lambda j: j.finished_at or 0)
            for info in finished[: max(0, len(finished) - self._keep_finished)]:
                self._jobs.pop(info.id, None)
                self._cancel_events.pop(info.id, None)


def _user_message(exc: BaseException) -> str | None:
    """The sentence an error carries for people (any layer's UserError), else None."""
    return exc.message if isinstance(exc, UserError) else None


_worker: JobWorker | None = None
_worker_lock = threading.Lock()


def get_worker() -> JobWorker:
    """The process-wide GPU worker shared by every page, tab and user."""
    global _worker
    with _worker_lock:
        if _worker is None or not _worker.alive:
            _worker = JobWorker()
        return _worker
