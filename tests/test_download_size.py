"""The download size the studio states is the one this computer fetches (issue 18): the half-size weights on a
GPU and on a processor that runs bf16 fast, the full-precision ones otherwise (engine.fetch.weights_variant)."""

from __future__ import annotations

import pytest
import torch

from engine.device import DeviceChoice
from engine.fetch import weights_variant
from engine.profiles import PROFILES
from studio.actions import profiles


@pytest.mark.parametrize(
    ("device", "dtype", "size", "why"),
    [
        ("cuda", torch.float16, "about 5 GB", "it has a GPU"),
        ("cpu", torch.bfloat16, "about 5 GB", "its processor computes in bfloat16"),
        ("cpu", torch.float32, "about 7 GB", "it has no GPU"),
        ("cuda", torch.float32, "about 7 GB", "full precision"),
    ],
)
def test_the_fast_profile_states_the_download_this_computer_fetches(monkeypatch, device, dtype, size, why):
    choice = DeviceChoice(device, dtype)
    monkeypatch.setattr("engine.device.pick_device", lambda *a, **k: choice)
    text = profiles.download_size_here(PROFILES["fast"])
    assert text.startswith(f"{size} to download on this computer") and why in text, text
    # The size said is the one of the weights fetch takes on this device.
    half = weights_variant(choice) == "fp16"
    assert size == (PROFILES["fast"].size_gpu if half else PROFILES["fast"].size_cpu)


def test_a_profile_without_sizes_says_what_it_says(monkeypatch):
    monkeypatch.setattr("engine.device.pick_device", lambda *a, **k: DeviceChoice("cpu", torch.bfloat16))
    assert profiles.download_size_here(PROFILES["tiny"]) == PROFILES["tiny"].download_size
