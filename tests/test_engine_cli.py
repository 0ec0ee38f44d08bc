import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.__main__ import main

SAMPLE = Path(__file__).resolve().parent.parent / "assets" / "sample_story.txt"


def _story(tmp_path, text: str, name="story.txt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_segment_prints_title_and_pages_as_json(capsys):
    assert main(["segment", str(SAMPLE), "--sentences", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    text = SAMPLE.read_text(encoding="utf-8")
    assert out["title"] == "The Lighthouse Fox"
    assert len(out["segments"]) >= 6
    for seg in out["segments"]:
        assert text[seg["start"] : seg["end"]] == seg["text"]
    assert "The Lighthouse Fox" not in [s["text"] for s in out["segments"]]


def test_illustrate_from_a_fresh_process_writes_a_book(tmp_path, tiny_models):
    out = tmp_path / "book"
    env = {**os.environ, "STORYBOOK_PROFILE": "tiny", "HF_HUB_OFFLINE": "1"}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine",
            "illustrate",
            str(SAMPLE),
            "--out",
            str(out),
            "--seed",
            "7",
            "--style",
            "pencil",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    # A person's terminal gets our own lines only: no library warnings, no progress bars.
    for noise in ("Warning", "it/s]", "Traceback", "torchvision"):
        assert noise not in run.stderr, run.stderr
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["format"] == "storybook-manifest" and manifest["title"] == "The Lighthouse Fox"
    assert manifest["style"] == "pencil" and manifest["profile"] == "tiny"
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == [s["image"] for s in manifest["segments"]] and len(pngs) >= 6
    seeds = [s["seed"] for s in manifest["segments"]]
    assert len(set(seeds)) == len(seeds)
    for seg in manifest["segments"]:
        assert manifest["source_text"][seg["start"] : seg["end"]] == seg["text"]
        assert seg["settings"]["seed"] == seg["seed"] and seg["settings"]["prompt"] == seg["prompt"]
        with Image.open(out / seg["image"]) as picture:
            assert picture.size == (64, 64)
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]

    # The same seed draws the same book again, pixel for pixel.
    again = tmp_path / "again"
    assert main(["illustrate", str(SAMPLE), "--out", str(again), "--seed", "7", "--style", "pencil"]) == 0
    for name in pngs:
        assert np.array_equal(np.asarray(Image.open(out / name)), np.asarray(Image.open(again / name)))


def test_characters_and_setting_go_into_the_prompts_and_the_manifest(tmp_path, tiny_models, monkeypatch):
    monkeypatch.setenv("STORYBOOK_PROFILE", "tiny")
    story = _story(tmp_path, "Pip ran. Mo sat. Pip slept.")  # short pages: the tiny tokenizer spends a token a letter
    out = tmp_path / "book"
    assert (
        main(
            [
                "illustrate",
                str(story),
                "--out",
                str(out),
                "--sentences",
                "1",
                "--style",
                "pencil",
                "--character",
                " Pip =  a red fox ",
                "--character",
                "Mo=",
                "--setting",
                "snowy  hill",
            ]
        )
        == 0
    )
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["characters"] == [{"name": "Pip", "description": "a red fox"}, {"name": "Mo", "description": ""}]
    assert manifest["setting"] == "snowy hill"
    prompts = [s["prompt"] for s in manifest["segments"]]
    assert all("snowy hill" in p for p in prompts), prompts
    assert [("red fox named Pip" in p) for p in prompts] == [True, False, True], prompts


@pytest.mark.parametrize(
    "case", ["empty", "whitespace", "too_long", "style", "profile", "model", "not_utf8", "no_file", "character"]
)
def test_bad_input_gets_one_sentence_and_leaves_nothing(case, tmp_path, capsys, monkeypatch, tiny_models):
    story = _story(tmp_path, "A fox lived by the sea. It loved the lighthouse.")
    args = ["--out", str(tmp_path / "book")]
    if case == "empty":
        story = _story(tmp_path, "")
    elif case == "whitespace":
        story = _story(tmp_path, " \n\r\n\t ")
    elif case == "too_long":
        story = _story(tmp_path, "The fox ran. " * 40_000)
    elif case == "style":
        args += ["--style", "neon-glitter"]
    elif case == "profile":
        args += ["--profile", "gigantic"]
    elif case == "model":
        monkeypatch.setenv("STORYBOOK_ILLUSTRATOR", "nobody/no-such-illustrator")
    elif case == "not_utf8":
        story.write_bytes("Le renard était là.".encode("latin-1"))
    elif case == "no_file":
        story = tmp_path / "missing.txt"
    elif case == "character":
        args += ["--character", "Pip a small fox"]
    assert main(["illustrate", str(story), *args]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and errors[0].endswith(".") and "Traceback" not in errors[0]
    assert not (tmp_path / "book").exists()
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]


def test_a_folder_that_already_holds_files_is_not_overwritten(tmp_path, capsys):
    out = tmp_path / "book"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["illustrate", str(SAMPLE), "--out", str(out)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize(
    "text,title,first",
    [
        ("The Fox\rOnce upon a time a fox. It ran.\r\rThe end.", "The Fox", "Once upon a time a fox. It ran."),
        ("The Fox\r\n\r\nOnce upon a time.", "The Fox", "Once upon a time."),
        # A short first line of hard-wrapped prose is no title, and its words are not lost.
        (
            "The fox ran home\nand slept well. Then he woke.\n\nThe owl came.",
            None,
            "The fox ran home\nand slept well. Then he woke.",
        ),
        ("A big day, (part one)\nThe fox ran. It slept.", None, "A big day, (part one)\nThe fox ran. It slept."),
    ],
)
def test_segment_title_line_never_swallows_story_text(tmp_path, capsys, text, title, first):
    story = tmp_path / "story.txt"
    story.write_bytes(text.encode("utf-8"))
    assert main(["segment", str(story)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["title"] == title
    assert out["segments"][0]["text"] == first
    kept = " ".join([title or ""] + [s["text"] for s in out["segments"]])
    assert sorted(kept.split()) == sorted(text.split()), "every word is in the title or a page"


def test_hostile_text_is_plain_text(tmp_path, capsys):
    text = (
        "<b>Hi</b> <script>alert(1)</script> fox 🦊🎉 ran.\n\nمرحبا بالعالم. هذا ثعلب.\n\n"
        '"Hi," said Dr. Who at 5 p.m. today.'
    )
    assert main(["segment", str(_story(tmp_path, text)), "--sentences", "1"]) == 0
    segments = json.loads(capsys.readouterr().out)["segments"]
    assert [s["text"] for s in segments] == [
        "<b>Hi</b> <script>alert(1)</script> fox 🦊🎉 ran.",
        "مرحبا بالعالم.",
        "هذا ثعلب.",
        '"Hi," said Dr. Who at 5 p.m. today.',
    ]
    assert all(text[s["start"] : s["end"]] == s["text"] for s in segments)


@pytest.mark.parametrize("command", ["segment", "illustrate"])
def test_a_two_megabyte_story_is_refused_before_reading_it_all(tmp_path, capsys, command):
    story = _story(tmp_path, "The fox ran far. " * 130_000)  # 2.2 MB
    extra = ["--out", str(tmp_path / "book")] if command == "illustrate" else []
    assert main([command, str(story), *extra]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("Error: ") and "200,000 characters" in err and "\n" not in err
    assert not (tmp_path / "book").exists()


def test_a_folder_that_cannot_be_made_is_one_sentence(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main(["illustrate", str(SAMPLE), "--out", str(blocker / "book")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("Error: Could not read or write") and err.endswith(".") and "\n" not in err
    assert blocker.read_text() == "not a folder"


def test_fetch_asks_the_hub_only_for_what_the_loaders_read(monkeypatch, capsys):
    """The picture model comes through the pipeline's own download (its folders, safetensors, the
    variant this machine loads), never a whole repository with its single-file checkpoints."""
    import diffusers
    import huggingface_hub
    import torch

    from engine.device import DeviceChoice

    asked = []
    monkeypatch.setattr(
        diffusers.DiffusionPipeline, "download", classmethod(lambda cls, ref, **kw: asked.append(("pipeline", ref, kw)))
    )
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda ref, **kw: asked.append(("snapshot", ref, kw)))
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("STORYBOOK_DEVICE", "cpu")

    assert main(["fetch", "--profile", "fast"]) == 0
    pipeline = [a for a in asked if a[0] == "pipeline"]
    assert pipeline == [("pipeline", "stabilityai/sd-turbo", {"variant": None, "use_safetensors": True})]
    snapshots = {ref: kw["allow_patterns"] for kind, ref, kw in asked if kind == "snapshot"}
    assert set(snapshots) == {
        "Salesforce/blip-image-captioning-base",
        "Qwen/Qwen2.5-0.5B-Instruct",
        "madebyollin/taesd",
    }
    from fnmatch import fnmatch

    for patterns in snapshots.values():

        def wanted(name: str, patterns=patterns) -> bool:
            return any(fnmatch(name, p) for p in patterns)

        assert all(
            map(
                wanted,
                [
                    "model.safetensors",
                    "config.json",
                    "tokenizer.json",
                    "merges.txt",
                    "generation_config.json",
                    "diffusion_pytorch_model.safetensors",
                ],
            )
        )
        assert not any(
            map(
                wanted,
                [
                    "pytorch_model.bin",
                    "tf_model.h5",
                    "flax_model.msgpack",
                    "onnx/model.onnx",
                    "rust_model.ot",
                    "taesd_decoder.pth",
                ],
            )
        )
    assert "ready to use offline" in capsys.readouterr().err

    asked.clear()
    assert main(["fetch", "--profile", "classic", "--weights", "fp16"]) == 0
    assert asked[0][2]["variant"] == "fp16"

    from engine.fetch import weights_variant

    assert weights_variant(DeviceChoice("cuda", torch.bfloat16)) == "fp16"
    assert weights_variant(DeviceChoice("cpu", torch.float32)) is None


def test_text_commands_and_the_studio_pages_start_without_torch(tmp_path):
    """Splitting a story, listing profiles and opening the From images page need no torch (seconds to import)."""
    story = _story(tmp_path, "Once upon a time. The end.")
    code = (
        "import sys, io, contextlib\n"
        "from engine.__main__ import main\n"
        "import studio.actions, core.limits, engine.cli_story\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main(['segment', {str(story)!r}]) == 0\n"
        "print('torch' in sys.modules)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False"


def test_a_reader_that_stops_early_gets_no_error(tmp_path):
    """`python -m engine segment story.txt | head -1`: no traceback and no error sentence for a closed pipe."""
    story = _story(tmp_path, ("The fox ran. " * 20 + "\n\n") * 700)  # JSON far past a pipe buffer
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "segment", str(story), "--sentences", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert proc.stdout.readline().strip() == b"{"
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=120) == 1
    assert err == "", err


def test_a_draft_book_is_finished_in_place_into_the_pictures_it_showed(tmp_path, tiny_models, capsys):
    drafts = tmp_path / "drafts"
    assert main(["illustrate", str(SAMPLE), "--out", str(drafts), "--seed", "3", "--draft"]) == 0
    assert "python -m engine finish" in capsys.readouterr().err
    manifest = json.loads((drafts / "manifest.json").read_text(encoding="utf-8"))
    assert all(s["settings"]["draft"] and s["settings"]["decoder"] == "preview" for s in manifest["segments"])
    assert (drafts / "draft-latents.safetensors").is_file()
    before = {s["image"]: np.asarray(Image.open(drafts / s["image"])) for s in manifest["segments"]}

    assert main(["finish", str(drafts)]) == 0
    manifest = json.loads((drafts / "manifest.json").read_text(encoding="utf-8"))
    settings = [s["settings"] for s in manifest["segments"]]
    assert all(not s["draft"] and s["decoder"] == "full" and s["finish"] == "decode" for s in settings)
    assert not (drafts / "draft-latents.safetensors").exists()
    assert not list(drafts.glob(".*.tmp"))
    # A final book drawn with the drafts' one step is the finished book, pixel for pixel.
    final = tmp_path / "final"
    assert main(["illustrate", str(SAMPLE), "--out", str(final), "--seed", "3", "--final", "--steps", "1"]) == 0
    for name, draft_pixels in before.items():
        finished = np.asarray(Image.open(drafts / name))
        assert np.array_equal(finished, np.asarray(Image.open(final / name)))
        assert not np.array_equal(finished, draft_pixels)

    capsys.readouterr()
    assert main(["finish", str(drafts)]) == 0
    assert "already final" in capsys.readouterr().err
    assert main(["finish", str(tmp_path / "nowhere")]) == 1
    assert "no book" in capsys.readouterr().err
