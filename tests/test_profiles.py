"""Device choice and model profiles: detection order, number formats, and where each setting comes from."""

import json

import pytest
import torch

from engine import device as device_mod
from engine import profiles
from engine.device import pick_device
from engine.errors import InputError, ModelUnavailable
from engine.profiles import PROFILES, ROLES, get_profile, resolve_model, save_settings, unavailable_message


@pytest.fixture
def machine(monkeypatch):
    """Pretend hardware: set .cuda / .mps / .bf16 to what the machine under test has."""

    class Machine:
        cuda = False
        mps = False
        bf16 = True
        gpus = 1
        cpu_bf16_speedup = 1.0  # what the CPU's bf16-vs-fp32 race measures (engine.device)

    m = Machine()
    monkeypatch.setattr(
        device_mod,
        "measure_cpu_speed",
        lambda: device_mod.CpuSpeed("AVX512", (), m.cpu_bf16_speedup, m.cpu_bf16_speedup),
    )
    monkeypatch.delenv("STORYBOOK_DEVICE", raising=False)
    monkeypatch.delenv("STORYBOOK_DTYPE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: m.cuda)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: m.bf16)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: m.gpus if m.cuda else 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: m.mps)
    return m


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("STORYBOOK_HOME", str(tmp_path))
    monkeypatch.delenv("STORYBOOK_PROFILE", raising=False)
    for role in ROLES:
        monkeypatch.delenv("STORYBOOK_" + role.upper(), raising=False)
    return tmp_path


# --- device -------------------------------------------------------------------------------------


def test_cuda_then_mps_then_cpu(machine):
    machine.cuda, machine.mps = True, True
    assert pick_device().device == "cuda"
    machine.cuda = False
    assert pick_device().device == "mps"
    machine.mps = False
    assert pick_device().device == "cpu"


def test_half_precision_on_gpus_full_on_cpu(machine):
    assert pick_device().dtype == torch.float32
    machine.cpu_bf16_speedup = 2.5  # a CPU with fast bf16 kernels (AVX512-BF16, AMX) runs bf16
    assert pick_device().dtype == torch.bfloat16
    machine.cpu_bf16_speedup = 1.0
    machine.mps = True
    assert pick_device().dtype == torch.float16
    machine.cuda = True
    assert pick_device().dtype == torch.bfloat16
    machine.bf16 = False
    assert pick_device().dtype == torch.float16


def test_arguments_then_environment_override_detection(machine, monkeypatch):
    machine.cuda = True
    assert pick_device("cpu").device == "cpu" and pick_device("cpu").dtype == torch.float32
    monkeypatch.setenv("STORYBOOK_DEVICE", "cpu")
    monkeypatch.setenv("STORYBOOK_DTYPE", "bf16")
    assert pick_device() == device_mod.DeviceChoice("cpu", torch.bfloat16)
    assert pick_device("cuda", "float16") == device_mod.DeviceChoice("cuda", torch.float16)
    assert not pick_device("cpu").is_gpu and pick_device("cuda").is_gpu


@pytest.mark.parametrize(
    "asked,words",
    [("cuda", "no usable CUDA GPU"), ("mps", "Metal GPU is not available"), ("tpu", "Unknown device 'tpu'")],
)
def test_a_device_this_machine_lacks_is_a_sentence(machine, asked, words):
    with pytest.raises(InputError, match=words):
        pick_device(asked)


def test_a_gpu_number_that_is_not_there_is_a_sentence(machine):
    machine.cuda, machine.gpus = True, 1
    assert pick_device("cuda:0").device == "cuda:0"
    with pytest.raises(InputError, match="1 CUDA GPU"):
        pick_device("cuda:3")


def test_unknown_number_format(machine):
    with pytest.raises(InputError, match="float32, float16 or bfloat16"):
        pick_device("cpu", "int4")


# --- profiles -----------------------------------------------------------------------------------


def test_the_named_profiles_and_their_models():
    assert {"fast", "classic", "quality", "tiny"} <= set(PROFILES)
    fast, classic, quality = PROFILES["fast"], PROFILES["classic"], PROFILES["quality"]
    assert fast.model("illustrator") == "stabilityai/sd-turbo" and fast.steps <= 4 and fast.guidance == 0.0
    assert classic.model("illustrator") == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert 25 <= classic.steps <= 50 and classic.guidance > 1
    assert fast.model("captioner") == "Salesforce/blip-image-captioning-base"
    assert quality.model("captioner") == "Salesforce/blip-image-captioning-large"
    assert "Instruct" in fast.model("storyteller")
    assert all(PROFILES["tiny"].model(role) == "tiny:" + role for role in ROLES)
    for profile in PROFILES.values():
        assert all(profile.model(role) for role in ("illustrator", "captioner", "storyteller"))


def test_default_is_fast(home):
    assert get_profile().name == "fast"


def test_environment_beats_the_settings_file_and_an_argument_beats_both(home, monkeypatch):
    save_settings({"profile": "classic"})
    assert get_profile().name == "classic"
    monkeypatch.setenv("STORYBOOK_PROFILE", "tiny")
    assert get_profile().name == "tiny"
    assert get_profile("quality").name == "quality"


def test_role_overrides_from_settings_then_environment_then_arguments(home, monkeypatch, tmp_path):
    save_settings({"profile": "fast", "overrides": {"captioner": "me/my-captioner", "storyteller": "me/teller"}})
    profile = get_profile()
    assert profile.model("captioner") == "me/my-captioner" and profile.model("storyteller") == "me/teller"
    assert profile.model("illustrator") == "stabilityai/sd-turbo"
    assert PROFILES["fast"].model("captioner") == "Salesforce/blip-image-captioning-base", "presets untouched"
    monkeypatch.setenv("STORYBOOK_CAPTIONER", "env/captioner")
    assert get_profile().model("captioner") == "env/captioner"
    folder = str(tmp_path)
    assert get_profile(overrides={"captioner": folder}).model("captioner") == folder
    # Overrides saved for one profile do not leak into another.
    assert get_profile("classic").model("storyteller") == PROFILES["classic"].model("storyteller")


def test_bad_names_are_sentences(home):
    with pytest.raises(InputError, match="Unknown profile 'gigantic': choose one of fast"):
        get_profile("gigantic")
    with pytest.raises(InputError, match="Unknown model role 'painter'"):
        get_profile("fast", overrides={"painter": "x/y"})


@pytest.mark.parametrize(
    "content",
    ["{not json", "[1, 2]", json.dumps({"profile": ["fast"]}), json.dumps({"profile": "tiny", "overrides": "nope"})],
)
def test_a_damaged_settings_file_is_ignored_not_fatal(home, content):
    (home / "settings.json").write_text(content, encoding="utf-8")
    assert get_profile().name in {"fast", "tiny"}


def test_settings_are_written_whole(home):
    save_settings({"profile": "tiny", "note": "Ünïcode"})
    assert json.loads((home / "settings.json").read_text(encoding="utf-8"))["note"] == "Ünïcode"
    assert not list(home.glob("*.tmp"))


def test_model_references(home, tmp_path):
    assert resolve_model("stabilityai/sd-turbo") == "stabilityai/sd-turbo"
    assert resolve_model(str(tmp_path)) == str(tmp_path)
    with pytest.raises(ModelUnavailable, match="does not exist"):
        resolve_model(str(tmp_path / "missing"))
    with pytest.raises(ModelUnavailable, match="no tiny model called 'tiny:painter'"):
        resolve_model("tiny:painter")
    with pytest.raises(ModelUnavailable):
        resolve_model("")


def test_unavailable_messages_say_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub = unavailable_message("someone/model", "captioner", OSError("x"))
    assert "'someone/model'" in hub and "offline" in hub and "python -m engine fetch" in hub and "tiny" in hub
    local = unavailable_message(str(tmp_path), "illustrator", ValueError("x"))
    assert "folder" in local and "safetensors" in local and "fetch" not in local
    assert profiles.is_downloaded("tiny:illustrator") and profiles.is_downloaded(str(tmp_path))
    assert not profiles.is_downloaded("someone/not-downloaded-anywhere")
