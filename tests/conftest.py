"""Every test runs offline, in a private data folder, on the tiny profile unless it says otherwise."""

import os
import tempfile

# Set before any test module imports huggingface_hub (it reads HF_HUB_OFFLINE at import time).
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("STORYBOOK_HOME", tempfile.mkdtemp(prefix="storybook-test-home-"))
os.environ["STORYBOOK_PROFILE"] = "tiny"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Tiny models gain nothing from threads, and on a shared 2-core machine (the app server of the browser
# test, parallel jobs) oversubscribed OpenMP spin-waits make them fifty times slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# The engine picks bf16 on a CPU that runs it fast; tests draw the same pixels on every machine in fp32
# (tests/test_device.py and the bf16 tests in tests/test_illustrate.py ask for bf16 themselves).
os.environ.setdefault("STORYBOOK_DTYPE", "float32")

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_models() -> dict[str, Path]:
    """The tiny random-weight models, built once per test session into the test data folder."""
    from engine import tinykit

    return tinykit.ensure_tiny_models()


@pytest.fixture(scope="module")
def one_cpu_thread():
    """One torch thread for a module of tiny-model tests: they spend their time in thread hand-offs, and
    one thread is about fifty times faster on a busy 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
