"""The tiny model kit: every role, offline, deterministic, safetensors only, loaded like a real model."""

import hashlib
from pathlib import Path

import pytest
import torch

from engine import tinykit

pytestmark = pytest.mark.usefixtures("one_cpu_thread")

WEIGHT_SUFFIXES = {".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".msgpack", ".h5"}


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_every_role_builds_deterministically_as_safetensors(tmp_path):
    first = tinykit.build_tiny_models(tmp_path / "a")
    tinykit.build_tiny_models(tmp_path / "b")
    assert set(first) == set(tinykit.ROLES)
    a, b = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    assert a == b, "two builds give the same bytes"
    weights = [name for name in a if Path(name).suffix in WEIGHT_SUFFIXES]
    assert weights and all(name.endswith(".safetensors") for name in weights), weights
    assert sum((tmp_path / "a" / name).stat().st_size for name in a) < 20 * 2**20
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.startswith(".")], "no staging folders left"


def test_every_role_loads_back_through_from_pretrained(tiny_models):
    from diffusers import AutoencoderTiny, AutoPipelineForText2Image
    from transformers import AutoModelForCausalLM, AutoProcessor, AutoTokenizer, BlipForConditionalGeneration

    strict = {"local_files_only": True, "use_safetensors": True}
    pipe = AutoPipelineForText2Image.from_pretrained(tiny_models["illustrator"], **strict)
    assert pipe.tokenizer.model_max_length == 77
    image = pipe(
        "a fox",
        num_inference_steps=1,
        guidance_scale=0.0,
        width=64,
        height=64,
        generator=torch.Generator("cpu").manual_seed(0),
    ).images[0]
    assert image.size == (64, 64)
    AutoencoderTiny.from_pretrained(tiny_models["preview_decoder"], **strict)
    AutoProcessor.from_pretrained(tiny_models["captioner"], local_files_only=True)
    BlipForConditionalGeneration.from_pretrained(tiny_models["captioner"], **strict)
    chat_tokenizer = AutoTokenizer.from_pretrained(tiny_models["storyteller"], local_files_only=True)
    assert chat_tokenizer.chat_template
    AutoModelForCausalLM.from_pretrained(tiny_models["storyteller"], **strict)
    plain_tokenizer = AutoTokenizer.from_pretrained(tiny_models["storyteller_plain"], local_files_only=True)
    assert not getattr(plain_tokenizer, "chat_template", None)
    AutoModelForCausalLM.from_pretrained(tiny_models["storyteller_plain"], **strict)


def test_ensure_builds_once_then_reuses(tmp_path, monkeypatch):
    calls = []
    real = tinykit.build_tiny_models

    def counting(folder, roles=tinykit.ROLES):
        calls.append(folder)
        return real(folder, roles=("preview_decoder",))

    monkeypatch.setattr(tinykit, "build_tiny_models", counting)
    paths = tinykit.ensure_tiny_models(tmp_path)
    again = tinykit.ensure_tiny_models(tmp_path)
    assert paths == again and len(calls) == 1
    assert (tmp_path / "READY").read_text() == tinykit.KIT_VERSION
    (tmp_path / "READY").write_text("0")  # an older kit is rebuilt
    tinykit.ensure_tiny_models(tmp_path)
    assert len(calls) == 2
