"""Pick the device and number format: CUDA, then Apple MPS, then CPU.

GPUs run in half precision. A CPU runs bf16 only where it is measurably fast (AVX512-BF16 or AMX
kernels): a short matmul and convolution race at first use, cached for the process, decides; a CPU
that emulates bf16 keeps fp32, where bf16 would be slower than full precision.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


@dataclass(frozen=True)
class DeviceChoice:
    device: str  # "cuda", "mps" or "cpu" (optionally "cuda:1")
    dtype: torch.dtype

    @property
    def is_gpu(self) -> bool:
        return not self.device.startswith("cpu")

    def describe(self) -> str:
        name = self.device
        if self.device.startswith("cuda") and torch.cuda.is_available():
            name = f"{self.device} ({torch.cuda.get_device_name(torch.device(self.device))})"
        return f"{name}, {str(self.dtype).removeprefix('torch.')}"


def pick_device(device: str | None = None, dtype: str | torch.dtype | None = None) -> DeviceChoice:
    """Choose where models run. Arguments, then STORYBOOK_DEVICE / STORYBOOK_DTYPE, then detection."""
    from engine.errors import InputError

    device = device or os.environ.get("STORYBOOK_DEVICE", "").strip() or None
    if device is None:
        if torch.cuda.is_available():
            device = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            device = "mps"
        else:
            device = "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"The device '{device}' was asked for, but this machine has no usable CUDA GPU.")
    if device.startswith("cuda:"):
        index = device.partition(":")[2]
        if not index.isdigit() or int(index) >= torch.cuda.device_count():
            raise InputError(
                f"The device '{device}' was asked for, but this machine has "
                f"{torch.cuda.device_count()} CUDA GPU(s), numbered from 0."
            )
    if device == "mps" and not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
        raise InputError("The device 'mps' was asked for, but Apple's Metal GPU is not available here.")
    if device not in {"cpu", "mps"} and not device.startswith("cuda"):
        raise InputError(f"Unknown device '{device}': use cuda, mps or cpu.")

    dtype = dtype or os.environ.get("STORYBOOK_DTYPE", "").strip() or None
    if isinstance(dtype, str):
        if dtype not in _DTYPES:
            raise InputError(f"Unknown number format '{dtype}': use float32, float16 or bfloat16.")
        dtype = _DTYPES[dtype]
    if dtype is None:
        if device == "cpu":
            dtype = cpu_dtype()
        elif device.startswith("cuda") and torch.cuda.is_bf16_supported():
            # bf16 keeps fp32's range, so the SD VAE cannot overflow into black images as in fp16.
            dtype = torch.bfloat16
        else:
            dtype = torch.float16
    return DeviceChoice(device=device, dtype=dtype)


def memory_report(choice: DeviceChoice) -> dict:
    """Bytes in use and total on the chosen device (host memory for the CPU)."""
    if choice.device.startswith("cuda"):
        free, total = torch.cuda.mem_get_info(torch.device(choice.device))
        return {
            "device": choice.describe(),
            "used": total - free,
            "total": total,
            "allocated_by_torch": torch.cuda.memory_allocated(torch.device(choice.device)),
        }
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        return {"device": choice.describe(), "used": pages - avail, "total": pages}
    except (ValueError, OSError, AttributeError):
        return {"device": choice.describe(), "used": None, "total": None}


# bf16 must beat fp32 by this much on the race below to be chosen: below it, the rounding is not worth it.
BF16_MIN_SPEEDUP = 1.3


@dataclass(frozen=True)
class CpuSpeed:
    """What this CPU offers for reduced precision, and how fast bf16 ran against fp32 here."""

    capability: str  # torch's dispatch level: "AVX512", "AVX2", "DEFAULT" ...
    flags: tuple[str, ...]  # bf16-related CPU flags: avx512_bf16, amx_bf16, ...
    matmul_speedup: float  # bf16 rate / fp32 rate on a matmul the size of the UNet's
    conv_speedup: float  # the same for a channels-last 3x3 convolution

    @property
    def speedup(self) -> float:
        return (self.matmul_speedup * self.conv_speedup) ** 0.5

    def describe(self) -> str:
        return (
            f"{self.capability} ({', '.join(self.flags) or 'no bf16 instructions'}); bf16 over fp32: "
            f"matmul {self.matmul_speedup:.2f}x, convolution {self.conv_speedup:.2f}x"
        )


def bf16_is_fast(speed: CpuSpeed) -> bool:
    """bf16 where both kernel kinds the diffusion models spend their time in are clearly faster in it."""
    return speed.speedup >= BF16_MIN_SPEEDUP and min(speed.matmul_speedup, speed.conv_speedup) >= 1.1


def _cpu_flags() -> tuple[str, ...]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return tuple(sorted(x for x in line.split(":", 1)[1].split() if "bf16" in x or x.startswith("amx")))
    except OSError:
        pass
    return ()


def _rate(fn, repeats: int = 3) -> float:
    fn()  # the first call pays for oneDNN's kernel selection
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return 1.0 / max(best, 1e-9)


@functools.cache
def measure_cpu_speed() -> CpuSpeed:
    """Race bf16 against fp32 on a matmul and a convolution (about 0.2 s on 2 cores), once per process."""
    capability = str(torch.backends.cpu.get_cpu_capability())
    rates = {}
    with torch.inference_mode():
        for dtype in (torch.float32, torch.bfloat16):
            a = torch.randn(1024, 1024).to(dtype)
            b = torch.randn(1024, 1024).to(dtype)
            x = torch.randn(1, 320, 32, 32).to(dtype).contiguous(memory_format=torch.channels_last)
            conv = torch.nn.Conv2d(320, 320, 3, padding=1).to(dtype).to(memory_format=torch.channels_last)
            rates[dtype] = (_rate(functools.partial(torch.mm, a, b)), _rate(functools.partial(conv, x)))
    (mm32, cv32), (mm16, cv16) = rates[torch.float32], rates[torch.bfloat16]
    return CpuSpeed(capability, _cpu_flags(), mm16 / mm32, cv16 / cv32)


def cpu_dtype() -> torch.dtype:
    """The number format models run in on this CPU: bf16 where it races clearly ahead of fp32, else fp32."""
    return torch.bfloat16 if bf16_is_fast(measure_cpu_speed()) else torch.float32


def usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


# A model below this many parameters (the tiny test models: 2.1 million at most) does too little per op for a second
# thread to help: handing every small op between threads costs more than the op. Measured on a 2-core machine
# shared with a browser and the studio's server: one tiny picture 0.35-0.43 s with one thread, 3.1-3.5 s with two
# (docs/benchmarks.md, issue 16). Real models use every core, the smallest too (DINOv2-small, the likeness scorer,
# has 22 million; SD-Turbo's UNet alone 865 million).
SMALL_MODEL_PARAMS = 10_000_000
# An app whose own page shares the CPU with the models (the studio: its server and the browser) sets this to the
# cores it keeps for itself; the CLI and the benches leave it unset and use every core. With other work on the
# cores, a second torch thread loses more to waiting than it gains: SD-Turbo's full-size UNet, one 256 px step in
# bf16 on this 2-core machine at load average 5, took 2.1-2.6 s on one thread and 5.7-11.8 s on two (issue 16).
SPARE_CORES_ENV = "STORYBOOK_SPARE_CORES"


def spare_cores() -> int:
    told = os.environ.get(SPARE_CORES_ENV, "").strip()
    return int(told) if told.isdigit() else 0


def threads_for(params: int | None) -> int:
    """torch threads for work with a model of `params` parameters (None: unknown, counted as full-size).

    OMP_NUM_THREADS, when set, wins. A small model gets one thread; a full-size one every usable core, less
    the cores an interactive app keeps for itself (spare_cores) where there are enough of them."""
    told = os.environ.get("OMP_NUM_THREADS", "").strip()
    if told.isdigit() and int(told) > 0:
        return int(told)
    if params is not None and params < SMALL_MODEL_PARAMS:
        return 1
    return max(1, usable_cores() - spare_cores())  # never less than one: a single core is never spared


def count_params(model: object) -> int | None:
    """Parameters of a loaded model: a torch module, a diffusers pipeline (its components), or a tuple or
    dataclass holding modules (with processors and tokenizers beside them); None when no module is found."""
    if isinstance(model, torch.nn.Module):
        return sum(p.numel() for p in model.parameters())
    if isinstance(model, (tuple, list)):
        parts: list = list(model)
    elif isinstance(getattr(model, "components", None), dict):
        parts = list(model.components.values())
    elif dataclasses.is_dataclass(model) and not isinstance(model, type):
        parts = [getattr(model, f.name) for f in dataclasses.fields(model)]
    else:
        return None
    counts = [c for c in (count_params(part) for part in parts) if c is not None]
    return sum(counts) if counts else None


_held = threading.local()  # per thread: the parameter counts of the models it holds open on the CPU


@contextmanager
def cpu_threads_while_held(params: int | None) -> Iterator[int]:
    """While a model of `params` parameters is in use on this thread: torch threads fitted to the largest model
    this thread holds (threads_for), restored when it is put down. A job holding a full-size picture model and a
    small scorer keeps every core; one holding only small models runs on one thread."""
    sizes: list = _held.__dict__.setdefault("sizes", [])
    before = torch.get_num_threads()
    sizes.append(params)
    largest = None if any(size is None for size in sizes) else max(sizes)
    threads = threads_for(largest)
    if threads != before:
        torch.set_num_threads(threads)
    try:
        yield threads
    finally:
        sizes.pop()
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
