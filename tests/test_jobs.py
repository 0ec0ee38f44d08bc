import itertools
import threading
import time

import pytest

from engine.errors import InputError
from engine.jobs import JobStatus, JobWorker
from storage.errors import DiskFullError


@pytest.fixture
def worker():
    w = JobWorker(name="test-worker")
    yield w
    w.shutdown()


def test_job_reports_progress_and_saves_each_result_as_it_arrives(worker):
    saved = []
    seen_done = []

    def job(ctx):
        for i in range(5):
            ctx.emit(i)
            ctx.progress(i + 1, 5)
            seen_done.append(worker.get(ctx.job_id).done)
        return "ignored"

    job_id = worker.submit(
        job, kind="illustrate", label="five", total=5, on_result=saved.append, meta={"project_id": 7}
    )
    info = worker.wait(job_id, timeout=10)
    assert info.status is JobStatus.DONE
    assert saved == [0, 1, 2, 3, 4]
    assert info.results == 5 and info.done == 5 and info.fraction == 1.0
    assert seen_done == [1, 2, 3, 4, 5]
    assert worker.jobs(project_id=7)[0].id == job_id
    assert worker.jobs(project_id=8) == []


def test_jobs_run_one_at_a_time_on_one_thread(worker):
    spans, threads = [], set()

    def job(ctx):
        threads.add(threading.get_ident())
        start = time.perf_counter()
        time.sleep(0.05)
        spans.append((start, time.perf_counter()))

    ids = [worker.submit(job, kind="k", label=str(i)) for i in range(4)]
    for job_id in ids:
        assert worker.wait(job_id, timeout=10).status is JobStatus.DONE
    spans.sort()
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))
    assert len(threads) == 1 and threading.get_ident() not in threads


def test_cancel_running_and_queued_jobs(worker):
    started = threading.Event()

    def long_job(ctx):
        started.set()
        for _ in range(500):
            ctx.check_cancel()
            time.sleep(0.01)

    running = worker.submit(long_job, kind="k", label="long")
    queued = worker.submit(long_job, kind="k", label="queued")
    assert started.wait(5)
    revision = worker.revision
    assert worker.cancel(queued) and worker.cancel(running)
    # Said at once, to whoever waits on the worker: both jobs are stopping (a screen redraws its panel then).
    assert worker.wait_for_change(revision, 0) > revision
    assert all(j.stopping for j in worker.jobs() if j.id in (queued, running) and not j.finished)
    assert worker.wait(running, timeout=10).status is JobStatus.CANCELLED
    info = worker.wait(queued, timeout=10)
    assert info.status is JobStatus.CANCELLED and info.started is None
    assert worker.cancel(running) is False  # already finished


def test_errors_are_kept_as_sentences(worker):
    def user_error(ctx):
        raise InputError("The story is empty: write or paste some text first.")

    def bug(ctx):
        raise ZeroDivisionError("division by zero")

    a = worker.wait(worker.submit(user_error, kind="k", label="a"), timeout=10)
    b = worker.wait(worker.submit(bug, kind="k", label="b"), timeout=10)
    assert a.status is JobStatus.FAILED and a.error == "The story is empty: write or paste some text first."
    assert b.status is JobStatus.FAILED and isinstance(b.error, str) and "ZeroDivisionError" in b.error
    # the worker survives both
    assert worker.wait(worker.submit(lambda ctx: None, kind="k", label="c"), timeout=10).status is JobStatus.DONE


def test_a_failed_save_stops_the_job_and_says_why(worker):
    def save(result):
        if result == 2:
            raise DiskFullError()

    def job(ctx):
        for i in range(200):
            ctx.check_cancel()
            ctx.emit(i)
            time.sleep(0.005)

    info = worker.wait(worker.submit(job, kind="k", label="x", on_result=save), timeout=20)
    assert info.status is JobStatus.FAILED
    assert info.error == DiskFullError.default_message
    assert 2 <= info.results < 200


def test_finished_jobs_are_forgotten_beyond_the_limit():
    w = JobWorker(keep_finished=3)
    try:
        ids = [w.submit(lambda ctx: None, kind="k", label=str(i)) for i in range(6)]
        w.wait(ids[-1], timeout=10)
        time.sleep(0.05)
        assert len(w.jobs()) == 3 and w.get(ids[0]) is None and w.get(ids[-1]) is not None
    finally:
        w.shutdown()


def test_a_screen_waits_for_a_change_instead_of_polling():
    worker = JobWorker(name="test-wait-for-change")
    try:
        start = worker.revision
        assert worker.wait_for_change(start, timeout=0.05) == start  # nothing happened: back after the timeout
        gate = threading.Event()
        job = worker.submit(lambda ctx: (gate.wait(5), ctx.emit("picture")), kind="test", label="one picture")
        after_submit = worker.wait_for_change(start, timeout=1)
        assert after_submit > start
        woke = []

        def wait() -> None:
            began = time.monotonic()
            seen = after_submit
            while worker.get(job).results == 0 and time.monotonic() - began < 5:
                seen = worker.wait_for_change(seen, timeout=5)
            woke.append(time.monotonic() - began)

        waiter = threading.Thread(target=wait)
        waiter.start()
        time.sleep(0.2)
        gate.set()
        waiter.join(10)
        assert woke and woke[0] < 1.0  # woken by the saved result, not by a timer running out
        assert worker.wait(job, timeout=5).finished
    finally:
        worker.shutdown()
