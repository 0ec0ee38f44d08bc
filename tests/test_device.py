"""The CPU path picks its number format by measurement and uses every core it may."""

import pytest
import torch

from engine import device
from engine.device import CpuSpeed, bf16_is_fast, cpu_threads, measure_cpu_speed, pick_device
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
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cpu_threads() == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    import os

    assert cpu_threads() == len(os.sched_getaffinity(0))
