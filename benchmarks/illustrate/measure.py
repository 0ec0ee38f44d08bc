"""What a run is measured with: stage clocks, token counts, host memory, kernel rates, picture differences."""

from __future__ import annotations

import contextlib
import copy
import functools
import gc
import os
import resource
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

# --- measuring ---------------------------------------------------------------------------------------


def sync_for(device: str) -> Callable[[], None]:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.synchronize
    if device == "mps":
        return torch.mps.synchronize
    return lambda: None


class StageClock:
    """Seconds per stage for one run; the device is synchronised at both ends of every timer."""

    def __init__(self, sync: Callable[[], None]):
        self.sync = sync
        self.seconds: dict[str, float] = {}
        self._depth = 0

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.sync()
        started = time.perf_counter()
        try:
            yield
        finally:
            self.sync()
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

    def wrap(self, name: str, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            with self.stage(name):
                return fn(*args, **kwargs)

        return timed


@contextlib.contextmanager
def patched(targets: list[tuple[Any, str, Callable[[Callable], Callable]]]) -> Iterator[None]:
    """Replace obj.attr with make(obj.attr) on the instance for the block, then let the class's show again."""
    done = []
    try:
        for obj, attr, make in targets:
            setattr(obj, attr, make(getattr(obj, attr)))
            done.append((obj, attr))
        yield
    finally:
        for obj, attr in reversed(done):
            with contextlib.suppress(AttributeError):
                delattr(obj, attr)


def stage_hooks(pipe, clock: StageClock, preview_decoder=None):
    targets = [
        (pipe, "encode_prompt", functools.partial(clock.wrap, "text_encoding")),
        (pipe.vae, "decode", functools.partial(clock.wrap, "decoding")),
        (pipe.image_processor, "postprocess", functools.partial(clock.wrap, "decoding")),
    ]
    if preview_decoder is not None:
        targets.append((preview_decoder, "decode", functools.partial(clock.wrap, "decoding")))
    return patched(targets)


class Generation:
    """Holds every generate() call of a model to its full token budget, and counts the tokens written.

    Random weights may write end-of-text at any step, and fp32 and bf16 would stop at different ones;
    with min_new_tokens = max_new_tokens every variant writes exactly the same number of tokens.
    """

    def __init__(self):
        self.tokens = 0
        self.calls = 0

    def hook(self, model):
        import torch

        def make(generate):
            @functools.wraps(generate)
            def fixed(*args, **kwargs):
                if kwargs.get("max_new_tokens"):
                    kwargs["min_new_tokens"] = kwargs["max_new_tokens"]
                out = generate(*args, **kwargs)
                ids = out if isinstance(out, torch.Tensor) else out.sequences
                given = kwargs.get("input_ids")
                start = given.shape[1] if isinstance(given, torch.Tensor) else 1  # BLIP starts from [DEC]
                self.tokens += int(ids.shape[0] * max(0, ids.shape[1] - start))
                self.calls += 1
                return out

            return fixed

        return patched([(model, "generate", make)])


class HostMemory:
    """The largest resident set size of this process while the block runs, sampled every 10 ms."""

    def __init__(self):
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def rss() -> int:
        try:
            import psutil

            return int(psutil.Process().memory_info().rss)
        except ImportError:
            pass
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            return max_rss_bytes()

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self.rss())

    def __enter__(self) -> HostMemory:
        self.peak = self.rss()
        self._thread = threading.Thread(target=self._run, name="bench-rss", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak = max(self.peak, self.rss())


def max_rss_bytes() -> int:
    """The process's lifetime peak resident set (Linux reports kilobytes, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


@contextlib.contextmanager
def private_cache() -> Iterator[Any]:
    """A fresh, empty model cache for the block: what a process without our cache would do per request."""
    import torch

    from engine.cache import ModelCache, use_cache

    fresh = ModelCache(budget_bytes=2**62)
    try:
        with use_cache(fresh):
            yield fresh
    finally:
        fresh.clear()
        del fresh
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def save_durably(folder: Path, name: str, data: bytes) -> None:
    """As the studio saves a picture: a temporary name, flush, fsync, then rename into place."""
    tmp = folder / f".{name}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, folder / name)


def measure_roofline(device: str, dtypes: list[torch.dtype], sync: Callable[[], None], *, small: bool = False) -> dict:
    """The rates of the job's own kernels per number format, and the memory-copy bandwidth, measured now.

    Two kernels, in each number format the variants run in: a large matmul (attention and linear layers)
    and the UNet's commonest convolution (320 channels, 3x3, 64x64 latents at 512 px, channels-last as
    the engine runs it). The roofline of a number format is the faster of the two: what this device can
    reach on the job's work. small: smaller shapes, for smoke runs on tiny models.
    """
    import torch

    gpu = device.startswith("cuda")
    n = 8192 if gpu else (1024 if small else 4096)
    reps = 50 if gpu else (4 if small else 2)
    out: dict[str, Any] = {"matmul": {}, "conv": {}, "best": {}}
    for dtype in dict.fromkeys(dtypes):
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        c = torch.empty(n, n, device=device, dtype=dtype)
        for _ in range(2):
            torch.mm(a, b, out=c)
        sync()
        started = time.perf_counter()
        for _ in range(reps):
            torch.mm(a, b, out=c)
        sync()
        seconds = time.perf_counter() - started
        out["matmul"][str(dtype).removeprefix("torch.")] = {
            "flops_per_second": 2 * n**3 * reps / seconds,
            "shape": f"{n}x{n}x{n}",
            "repeats": reps,
        }
        del a, b, c
    side, channels, batch = (32, 320, 1) if small else (64, 320, 2 if gpu else 1)
    conv_reps = 20 if gpu else 3
    for dtype in dict.fromkeys(dtypes):
        conv = torch.nn.Conv2d(channels, channels, 3, padding=1, device=device, dtype=dtype)
        conv = conv.to(memory_format=torch.channels_last)
        x = torch.randn(batch, channels, side, side, device=device, dtype=dtype).contiguous(
            memory_format=torch.channels_last
        )
        with torch.inference_mode():
            for _ in range(2):
                conv(x)
            sync()
            started = time.perf_counter()
            for _ in range(conv_reps):
                conv(x)
            sync()
        seconds = time.perf_counter() - started
        key = str(dtype).removeprefix("torch.")
        out["conv"][key] = {
            "flops_per_second": 2 * batch * channels * channels * 9 * side * side * conv_reps / seconds,
            "shape": f"{batch}x{channels}x{side}x{side}, 3x3",
            "repeats": conv_reps,
        }
        del conv, x
    for key in out["matmul"]:
        out["best"][key] = max(out["matmul"][key]["flops_per_second"], out["conv"][key]["flops_per_second"])
    nbytes = (2 * 2**30) if gpu else (256 * 2**20)
    src = torch.empty(nbytes // 4, device=device, dtype=torch.float32).fill_(1.0)
    dst = torch.empty_like(src)
    dst.copy_(src)
    sync()
    started = time.perf_counter()
    copies = 10 if gpu else 5
    for _ in range(copies):
        dst.copy_(src)
    sync()
    seconds = time.perf_counter() - started
    out["copy"] = {
        "bytes_per_second": 2 * nbytes * copies / seconds,
        "bytes": nbytes,
        "note": "bytes read plus bytes written",
    }
    del src, dst
    return out


def best_roofline(samples: list[dict]) -> dict:
    """The highest rate seen for each measurement, with every sample kept for the record."""
    best = copy.deepcopy(samples[0])
    kinds = [(kind, name) for kind in ("matmul", "conv") for name in best.get(kind, {})] + [("copy", None)]
    for kind, key in kinds:
        entries = [s[kind][key] if key else s[kind] for s in samples]
        field_name = "bytes_per_second" if kind == "copy" else "flops_per_second"
        target = best[kind][key] if key else best[kind]
        values = [e[field_name] for e in entries]
        target[field_name] = max(values)
        target["samples"] = values
    for key in best.get("best", {}):
        best["best"][key] = max(best["matmul"][key]["flops_per_second"], best["conv"][key]["flops_per_second"])
    return best


EQUIVALENCE_PSNR_DB = 30.0
EQUIVALENCE_MEAN_ABS_DIFF = 2.0  # in levels of 0-255


def picture_difference(a, b) -> dict:
    """PSNR (dB) and mean / largest absolute difference (0-255 levels) between two pictures of one size."""
    import numpy as np

    x = np.asarray(a.convert("RGB"), dtype=np.float64)
    y = np.asarray(b.convert("RGB"), dtype=np.float64)
    diff = np.abs(x - y)
    mse = float((diff**2).mean())
    return {
        "psnr_db": None if mse == 0 else 10 * float(np.log10(255.0**2 / mse)),  # None: identical
        "mean_abs_diff": float(diff.mean()),
        "max_abs_diff": float(diff.max()),
    }
