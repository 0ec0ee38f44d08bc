"""What this computer has, told without importing torch (a screen cannot wait seconds for that).

`gpu_likely` is a guess for defaults only (a new book's "Draw pages as"); where it matters for running,
engine.device.pick_device asks torch itself.
"""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path

# Said when drafts drawn with the OpenVINO runtime are to be finished where OpenVINO is not installed: by the engine
# (engine.illustrate.finish_drafts) and, before the job is submitted, by the studio (studio.actions.pictures).
OPENVINO_DRAFTS_NOT_INSTALLED = (
    "These drafts were drawn with the OpenVINO runtime, which is not installed here: run "
    "'pip install openvino' to finish them into the pictures they show, or draw the pages again."
)

# Files an installed GPU driver leaves: NVIDIA's kernel module and device nodes, AMD's ROCm compute node.
_GPU_MARKS = ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd")


def gpu_likely(marks: tuple[str, ...] = _GPU_MARKS) -> bool:
    """Whether models will most likely run on a GPU here, judged from STORYBOOK_DEVICE, the drivers' files and
    the platform: an Apple silicon Mac has a Metal GPU; elsewhere a GPU driver must be installed."""
    told = os.environ.get("STORYBOOK_DEVICE", "").strip().lower()
    if told:
        return told != "cpu"
    if platform.system() == "Darwin":
        return platform.machine() == "arm64"
    return any(Path(mark).exists() for mark in marks) or shutil.which("nvidia-smi") is not None


# A container's memory limit (cgroup v2, then v1); "max" or a huge number means none.
_CGROUP_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def memory_bytes(limits: tuple[str, ...] = _CGROUP_LIMITS) -> int | None:
    """The memory this process may use: the computer's, or its container's limit when that is lower (a 2 GB
    container on a 64 GB host has 2 GB). None when it cannot be told (no sysconf: Windows)."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
    for path in limits:
        try:
            limit = int(Path(path).read_text().strip())
        except (OSError, ValueError):  # absent, unreadable, or "max"
            continue
        if 0 < limit < total:
            return limit
    return total
