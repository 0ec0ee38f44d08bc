"""A damaged model folder (weights cut short, empty, a git-lfs pointer, a missing shard) is one clear sentence
for every role, in the library and on the command line; a pickle is never loaded in its place."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from engine.cache import get_cache
from engine.caption import Captioner
from engine.device import pick_device
from engine.errors import ModelUnavailable
from engine.illustrate import _load_preview_decoder, load_pipeline
from engine.loading import loaded_model
from engine.storyteller import Storyteller

ROOT = Path(__file__).resolve().parents[1]
DAMAGES = ["cut short", "empty", "git-lfs pointer", "missing shard"]
LFS_POINTER = (
    "version https://git-lfs.github.com/spec/v1\n"
    "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 1048576\n"
)


def _weights(folder: Path) -> Path:
    return max(folder.rglob("*.safetensors"), key=lambda p: p.stat().st_size)


def _damage(folder: Path, how: str) -> None:
    weights = _weights(folder)
    if how == "cut short":
        data = weights.read_bytes()
        weights.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        weights.write_bytes(b"")
    elif how == "git-lfs pointer":
        weights.write_text(LFS_POINTER)
    elif how == "missing shard":
        # A two-shard save whose second shard never arrived.
        stem = weights.name[: -len(".safetensors")]
        first, second = f"{stem}-00001-of-00002.safetensors", f"{stem}-00002-of-00002.safetensors"
        weights.rename(weights.with_name(first))
        index = {"metadata": {}, "weight_map": {"a.weight": first, "b.weight": second}}
        weights.with_name(weights.name + ".index.json").write_text(json.dumps(index))


@pytest.fixture
def damaged(tiny_models, tmp_path):
    def make(role: str, how: str) -> Path:
        folder = tmp_path / f"{role}-{how.replace(' ', '-')}"
        shutil.copytree(tiny_models[role], folder)
        _damage(folder, how)
        return folder

    yield make
    get_cache().clear()


def _load(role: str, folder: Path) -> None:
    choice = pick_device("cpu")
    if role == "captioner":
        Captioner(ref=str(folder), device=choice).caption([Image.new("RGB", (16, 16))])
    elif role == "storyteller":
        Storyteller(ref=str(folder), device=choice).tell(["a cat"], words_per_picture=10)
    else:
        loader = load_pipeline if role == "illustrator" else _load_preview_decoder
        with loaded_model(role, str(folder), choice, lambda location: loader(location, choice)):
            pass


@pytest.mark.parametrize("how", DAMAGES)
@pytest.mark.parametrize("role", ["illustrator", "captioner", "storyteller", "preview_decoder"])
def test_every_role_names_a_damaged_folder(damaged, role, how):
    folder = damaged(role, how)
    with pytest.raises(ModelUnavailable) as info:
        _load(role, folder)
    message = info.value.message
    assert "damaged or incomplete" in message and "download it again" in message, message
    assert str(folder) in message and role in message


def test_a_pickle_beside_missing_safetensors_is_never_loaded(tiny_models, tmp_path, monkeypatch):
    folder = tmp_path / "storyteller"
    shutil.copytree(tiny_models["storyteller"], folder)
    from safetensors.torch import load_file

    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    opened: list[str] = []

    def no_pickles(*args, **kwargs):
        opened.append(str(args[0]) if args else "?")
        raise AssertionError("a pickle was loaded")

    monkeypatch.setattr(torch, "load", no_pickles)
    with pytest.raises(ModelUnavailable):
        _load("storyteller", folder)
    assert opened == []
    get_cache().clear()


def test_the_command_line_says_the_sentence(damaged, tmp_path):
    folder = damaged("captioner", "git-lfs pointer")
    picture = tmp_path / "one.png"
    Image.new("RGB", (16, 16), "orange").save(picture)
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "STORYBOOK_HOME": str(home)}
    result = subprocess.run(
        [sys.executable, "-m", "engine", "caption", str(picture), "--profile", "tiny", "--device", "cpu"],
        env={**env, "STORYBOOK_CAPTIONER": str(folder)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stderr
    assert "damaged or incomplete" in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_the_studio_says_the_sentence(damaged, monkeypatch):
    """In the app: a story written from pictures with a damaged picture reader stops with the sentence, not
    "Something went wrong (SafetensorError: ...)", and the pictures are kept."""
    import fixtures_images as fx
    from apptestkit import click, open_screen, wait_for_jobs

    from studio import state

    folder = damaged("captioner", "cut short")
    monkeypatch.setenv("STORYBOOK_CAPTIONER", str(folder))
    at = open_screen("from_images")
    at.file_uploader[0].set_value([("red.png", fx.encode(Image.new("RGB", (32, 32), "red"), "PNG"), "image/png")])
    at.run()
    click(at, "images.write")
    wait_for_jobs(at.session_state[state.PROJECT_ID], timeout=120)
    at.run()
    errors = [e.value for e in at.error]
    assert any("damaged or incomplete" in e and str(folder) in e.replace("\\", "") for e in errors), errors
    assert not any("Something went wrong" in e for e in errors), errors
