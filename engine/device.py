"""Pick the device and number format: CUDA, then Apple MPS, then CPU; half precision on GPUs only."""

from __future__ import annotations

import os
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
            dtype = torch.float32
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
