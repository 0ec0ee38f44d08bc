"""The captioner on the tiny BLIP: one caption per picture, batched equals unbatched, loads once."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
import fixtures_images as fx

from engine.cache import get_cache
from engine.caption import Captioner, clean_caption
from engine.errors import InputError, ModelUnavailable

pytestmark = pytest.mark.usefixtures("one_cpu_thread")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def pictures():
    return [
        fx.gradient((48, 32)),
        Image.new("RGB", (30, 30), "navy"),
        fx.gradient((90, 20)),
        Image.new("RGB", (64, 64), "white"),
        Image.new("L", (20, 20), 128),
    ]


@pytest.fixture(scope="module")
def captioner(tiny_models):
    return Captioner(profile="tiny")


def test_one_caption_per_picture_in_order(captioner, pictures):
    captions = captioner.caption(pictures, max_new_tokens=8)
    assert len(captions) == len(pictures)
    assert all(isinstance(c, str) and c == c.strip() and "  " not in c for c in captions)


def test_batched_equals_unbatched_and_is_deterministic(captioner, pictures):
    one_by_one = captioner.caption(pictures, batch_size=1, max_new_tokens=8)
    batched = captioner.caption(pictures, batch_size=8, max_new_tokens=8)
    uneven = captioner.caption(pictures, batch_size=2, max_new_tokens=8)
    assert one_by_one == batched == uneven
    assert captioner.caption(pictures, batch_size=3, max_new_tokens=8) == batched


def test_model_loads_once_across_calls_and_instances(captioner, pictures):
    key = ("captioner", captioner.ref, captioner.choice.device, str(captioner.choice.dtype))
    captioner.caption(pictures[:1], max_new_tokens=4)
    loads = get_cache().load_count[key]
    Captioner(profile="tiny").caption(pictures[:2], max_new_tokens=4)
    captioner.caption(pictures[:1], prefix="a picture of", max_new_tokens=4)
    assert get_cache().load_count[key] == loads
    assert key in get_cache()


def test_prefix_is_stripped_from_the_caption(captioner, pictures):
    from engine.loading import loaded_model

    with loaded_model("captioner", captioner.ref, captioner.choice, captioner._load) as bundle:
        raw = captioner._generate(bundle, pictures[:2], "A picture of", 8, 3)
    assert all(text.startswith("a picture of") for text in raw), "BLIP writes the prompt back, lower-cased"
    captions = captioner.caption(pictures[:2], prefix="A picture of", max_new_tokens=8)
    assert captions == [clean_caption(text[len("a picture of") :]) for text in raw]
    assert not any(c.lower().startswith("a picture of") for c in captions)


def test_progress_is_reported_per_batch(captioner, pictures):
    seen = []
    captioner.caption(pictures, batch_size=2, max_new_tokens=4, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(2, 5), (4, 5), (5, 5)]


def test_inputs_are_checked(captioner):
    assert captioner.caption([]) == []
    with pytest.raises(InputError, match="Only pictures"):
        captioner.caption(["not a picture"])
    with pytest.raises(InputError, match="prefix may be at most"):
        captioner.caption([Image.new("RGB", (8, 8))], prefix="x" * 500)


def test_missing_model_folder_is_a_sentence(tmp_path):
    with pytest.raises(ModelUnavailable, match="does not exist"):
        Captioner(ref=str(tmp_path / "no-such-model")).caption([Image.new("RGB", (8, 8))])


@pytest.mark.parametrize(
    "raw,clean",
    [
        ("arafed man standing on a beach", "man standing on a beach"),
        ("araffe woman with a dog", "woman with a dog"),
        ("a dog dog dog on the the grass", "a dog on the grass"),
        ("  a cake ,  drawing drawing  with a ", "a cake, drawing"),
        ("", ""),
    ],
)
def test_clean_caption(raw, clean):
    assert clean_caption(raw) == clean


def test_cli_caption_prints_json(tiny_models, tmp_path):
    first, second = tmp_path / "one.png", tmp_path / "two.webp"
    first.write_bytes(fx.encode(fx.gradient((40, 30)), "PNG"))
    second.write_bytes(fx.animated("WEBP", frames=2))
    env = {**os.environ, "STORYBOOK_PROFILE": "tiny", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine",
            "caption",
            str(first),
            str(second),
            "--profile",
            "tiny",
            "--prefix",
            "a picture of",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [row["file"] for row in rows] == [str(first), str(second)]
    assert all(isinstance(row["caption"], str) for row in rows)
    assert rows[0]["notes"] == [] and "had 2 frames" in rows[1]["notes"][0]


def test_cli_caption_refuses_a_broken_file_in_one_sentence(tiny_models, tmp_path, capsys):
    from engine.__main__ import main

    broken = tmp_path / "broken.png"
    broken.write_bytes(fx.encode(fx.gradient((64, 64)), "PNG")[:-40])
    assert main(["caption", str(broken), "--profile", "tiny"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("Error: 'broken.png' is cut short") and "\n" not in err
