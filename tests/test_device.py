"""The CPU path picks its number format by measurement, and torch's threads by the model: one for a small model,
every core it may use for a full-size one."""

import pytest
import torch

from engine import device
from engine.device import CpuSpeed, bf16_is_fast, measure_cpu_speed, pick_device, threads_for
from engine.errors import InputError


def _speed(matmul: float, conv: float) -> CpuSpeed:
    return CpuSpeed("AVX512", ("avx512_bf16",), matmul, conv)


def test_bf16_only_where_it_races_clearly_ahead_on_both_kernels():
    assert bf16_is_fast(_speed(2.6, 2.1))  # AVX512-BF16, as measured on this project's machines
    assert not bf16_is_fast(_speed(1.0, 1.05))  # no gain: keep full precision
    assert not bf16_is_fast(_speed(0.2, 0.3))  # emulated bf16 (AVX2 only): much slower than fp32
    assert not bf16_is_fast(_speed(4.0, 0.9))  # convolutions slower: the VAE would lose what the UNet gains


@pytest.fixture
def no_dtype_setting(monkeypatch):
    monkeypatch.delenv("STORYBOOK_DTYPE", raising=False)
    monkeypatch.delenv("STORYBOOK_DEVICE", raising=False)


def test_a_cpu_runs_what_the_race_favours(no_dtype_setting, monkeypatch):
    monkeypatch.setattr(device, "measure_cpu_speed", lambda: _speed(2.6, 2.1))
    assert pick_device("cpu").dtype == torch.bfloat16
    monkeypatch.setattr(device, "measure_cpu_speed", lambda: _speed(0.3, 0.4))
    assert pick_device("cpu").dtype == torch.float32


def test_the_setting_and_the_argument_come_before_the_race(no_dtype_setting, monkeypatch):
    monkeypatch.setattr(device, "measure_cpu_speed", lambda: _speed(2.6, 2.1))
    assert pick_device("cpu", "float32").dtype == torch.float32
    monkeypatch.setenv("STORYBOOK_DTYPE", "fp32")
    assert pick_device("cpu").dtype == torch.float32
    with pytest.raises(InputError):
        pick_device("cpu", "float8")


def test_the_race_runs_once_per_process_and_measures_both_kernels(one_cpu_thread):
    speed = measure_cpu_speed()
    assert measure_cpu_speed() is speed
    assert speed.matmul_speedup > 0 and speed.conv_speedup > 0
    assert speed.capability == torch.backends.cpu.get_cpu_capability()
    assert "matmul" in speed.describe() and "convolution" in speed.describe()


def test_threads_follow_the_usable_cores_unless_told(monkeypatch):
    monkeypatch.delenv("STORYBOOK_SPARE_CORES", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads_for(None) == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    import os

    assert threads_for(None) == len(os.sched_getaffinity(0))
    assert threads_for(22_000_000) == len(os.sched_getaffinity(0))  # DINOv2-small, the likeness scorer, is real


def test_small_models_get_one_thread_and_full_size_ones_every_core(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv(device.SPARE_CORES_ENV, raising=False)
    monkeypatch.setattr(device, "usable_cores", lambda: 8)
    assert device.threads_for(3_000_000) == 1  # a tiny test model
    assert device.threads_for(865_000_000) == 8  # SD-Turbo's UNet
    assert device.threads_for(None) == 8  # unknown: counted as full-size
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert device.threads_for(3_000_000) == 3 and device.threads_for(None) == 3  # told wins


def test_an_interactive_app_keeps_a_core_for_its_page_but_never_the_only_one(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv(device.SPARE_CORES_ENV, "1")
    monkeypatch.setattr(device, "usable_cores", lambda: 8)
    assert device.threads_for(865_000_000) == 7
    assert device.threads_for(3_000_000) == 1
    monkeypatch.setattr(device, "usable_cores", lambda: 2)
    assert device.threads_for(865_000_000) == 1
    monkeypatch.setattr(device, "usable_cores", lambda: 1)
    assert device.threads_for(865_000_000) == 1
    monkeypatch.delenv(device.SPARE_CORES_ENV)  # the CLI and the benches: every core
    monkeypatch.setattr(device, "usable_cores", lambda: 2)
    assert device.threads_for(865_000_000) == 2


def test_parameters_are_counted_through_pipelines_tuples_and_dataclasses():
    import dataclasses

    linear = torch.nn.Linear(10, 10)  # 110 parameters
    assert device.count_params(linear) == 110

    class Pipeline:
        def __init__(self):
            self.components = {"unet": torch.nn.Linear(10, 10), "tokenizer": object(), "scheduler": None}

    @dataclasses.dataclass
    class Loaded:
        model: torch.nn.Module
        processor: object

    assert device.count_params(Pipeline()) == 110
    assert device.count_params((linear, "processor")) == 110
    assert device.count_params(Loaded(torch.nn.Linear(2, 2), object())) == 6
    assert device.count_params(object()) is None and device.count_params(("a", "b")) is None


def test_threads_follow_the_largest_model_held_and_come_back(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv(device.SPARE_CORES_ENV, raising=False)
    monkeypatch.setattr(device, "usable_cores", lambda: 2)
    before = torch.get_num_threads()
    with device.cpu_threads_while_held(865_000_000) as big:
        assert big == 2 and torch.get_num_threads() == 2
        with device.cpu_threads_while_held(3_000_000) as with_scorer:  # a small scorer beside the big model
            assert with_scorer == 2 and torch.get_num_threads() == 2
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == before
    with device.cpu_threads_while_held(3_000_000) as small:
        assert small == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_a_tiny_model_is_used_with_one_thread(monkeypatch, tiny_models):
    from engine.illustrate import open_illustrator
    from engine.profiles import get_profile

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv(device.SPARE_CORES_ENV, raising=False)
    monkeypatch.setattr(device, "usable_cores", lambda: 2)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with open_illustrator(get_profile("tiny"), pick_device("cpu", "float32")):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
