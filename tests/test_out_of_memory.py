"""Out of GPU memory (issue 14, item 9), simulated on the CPU by a pipeline call that raises
torch.cuda.OutOfMemoryError: one retry at a smaller batch, memory freed, a clear sentence when even one
picture does not fit, and the job worker alive afterwards."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.requests import PageSpec
from engine import loading
from engine.errors import OutOfMemory
from engine.illustrate import PictureRequest, illustrate_pages, open_illustrator
from engine.jobs import JobStatus, JobWorker
from engine.profiles import get_profile


@pytest.fixture
def profile(tiny_models):
    return get_profile("tiny")


class _SmallMemoryPipe:
    """The real pipeline, except that a call with more than `fits` prompts runs out of GPU memory."""

    def __init__(self, pipe, fits: int):
        self.pipe, self.fits, self.calls = pipe, fits, []

    def __getattr__(self, name):
        return getattr(self.pipe, name)

    def __call__(self, **kwargs):
        self.calls.append(len(kwargs["prompt"]))
        if len(kwargs["prompt"]) > self.fits:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.pipe(**kwargs)


@pytest.fixture
def freed(monkeypatch):
    calls = []
    real = loading._release_memory
    monkeypatch.setattr(loading, "_release_memory", lambda: (calls.append(1), real()))
    return calls


def _requests(n: int) -> list[PictureRequest]:
    return [PictureRequest(key=i, prompt=f"a fox number {i}", seed=100 + i) for i in range(n)]


def test_a_batch_that_runs_out_of_memory_is_drawn_again_one_at_a_time(profile, freed):
    with open_illustrator(profile) as illustrator:
        expected = [np.asarray(p.image) for p in illustrator.illustrate(_requests(3), batch_size=3)]
        small = _SmallMemoryPipe(illustrator.pipe, fits=1)
        illustrator.pipe = small
        drawn = illustrator.illustrate(_requests(3), batch_size=3)
    assert small.calls == [3, 1, 1, 1]  # one try at 3, then one retry at a smaller batch
    assert freed  # what the failed batch held was released before the retry
    assert [p.key for p in drawn] == [0, 1, 2]
    # Every picture has its own generator: drawn alone, it is the same picture as in the batch.
    for picture, same in zip(drawn, expected):
        assert np.abs(np.asarray(picture.image).astype(int) - same.astype(int)).max() <= 2


def test_when_even_one_picture_does_not_fit_the_message_says_what_to_do(profile, freed):
    with open_illustrator(profile) as illustrator:
        small = _SmallMemoryPipe(illustrator.pipe, fits=0)
        illustrator.pipe = small
        with pytest.raises(OutOfMemory) as info:
            illustrator.illustrate(_requests(2), batch_size=2)
    assert small.calls == [2, 1]  # no endless retries
    message = info.value.message
    assert "ran out of memory" in message and "fewer pictures" in message and "nothing already saved" in message
    assert "Traceback" not in message and "CUDA" not in message
    assert len(freed) == 2


def test_the_worker_survives_a_job_that_runs_out_of_memory(profile, monkeypatch):
    import engine.illustrate as illustrate

    fail = {"on": True}
    original_draw = illustrate.Illustrator._draw

    def draw(self, batch, *args, **kwargs):
        if fail["on"]:
            with loading.oom_guard("drawing"):
                raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return original_draw(self, batch, *args, **kwargs)

    monkeypatch.setattr(illustrate.Illustrator, "_draw", draw)
    pages = [PageSpec(key=0, text="A fox sat by the sea.", seed=5)]

    def job(ctx):
        for picture in illustrate_pages(pages, profile, style="watercolor"):
            ctx.emit(picture)

    worker = JobWorker(name="oom-test-worker")
    try:
        failed = worker.wait(worker.submit(job, kind="illustrate", label="pictures"), timeout=120)
        assert failed.status is JobStatus.FAILED
        assert failed.error and "ran out of memory" in failed.error and "Traceback" not in failed.error
        assert worker.alive
        fail["on"] = False
        saved = []
        done = worker.wait(worker.submit(job, kind="illustrate", label="pictures", on_result=saved.append), timeout=120)
        assert done.status is JobStatus.DONE and len(saved) == 1 and saved[0].image.size == (64, 64)
    finally:
        worker.shutdown()
