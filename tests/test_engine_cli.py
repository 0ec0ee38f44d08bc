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
        assert text[seg["start"]:seg["end"]] == seg["text"]
    assert "The Lighthouse Fox" not in [s["text"] for s in out["segments"]]


def test_illustrate_from_a_fresh_process_writes_a_book(tmp_path, tiny_models):
    out = tmp_path / "book"
    env = {**os.environ, "STORYBOOK_PROFILE": "tiny", "HF_HUB_OFFLINE": "1"}
    run = subprocess.run([sys.executable, "-m", "engine", "illustrate", str(SAMPLE), "--out", str(out),
                          "--seed", "7", "--style", "pencil"], capture_output=True, text=True, env=env, timeout=300)
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
        assert manifest["source_text"][seg["start"]:seg["end"]] == seg["text"]
        assert seg["settings"]["seed"] == seg["seed"] and seg["settings"]["prompt"] == seg["prompt"]
        assert Image.open(out / seg["image"]).size == (64, 64)
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]

    # The same seed draws the same book again, pixel for pixel.
    again = tmp_path / "again"
    assert main(["illustrate", str(SAMPLE), "--out", str(again), "--seed", "7", "--style", "pencil"]) == 0
    for name in pngs:
        assert np.array_equal(np.asarray(Image.open(out / name)), np.asarray(Image.open(again / name)))


@pytest.mark.parametrize("case", ["empty", "whitespace", "too_long", "style", "profile", "model", "not_utf8",
                                  "no_file"])
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


@pytest.mark.parametrize("text,title,first", [
    ("The Fox\rOnce upon a time a fox. It ran.\r\rThe end.", "The Fox", "Once upon a time a fox. It ran."),
    ("The Fox\r\n\r\nOnce upon a time.", "The Fox", "Once upon a time."),
    # A short first line of hard-wrapped prose is no title, and its words are not lost.
    ("The fox ran home\nand slept well. Then he woke.\n\nThe owl came.", None,
     "The fox ran home\nand slept well. Then he woke."),
    ("A big day, (part one)\nThe fox ran. It slept.", None, "A big day, (part one)\nThe fox ran. It slept."),
])
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
    text = ("<b>Hi</b> <script>alert(1)</script> fox 🦊🎉 ran.\n\nمرحبا بالعالم. هذا ثعلب.\n\n"
            "\"Hi,\" said Dr. Who at 5 p.m. today.")
    assert main(["segment", str(_story(tmp_path, text)), "--sentences", "1"]) == 0
    segments = json.loads(capsys.readouterr().out)["segments"]
    assert [s["text"] for s in segments] == ["<b>Hi</b> <script>alert(1)</script> fox 🦊🎉 ran.", "مرحبا بالعالم.",
                                             "هذا ثعلب.", "\"Hi,\" said Dr. Who at 5 p.m. today."]
    assert all(text[s["start"]:s["end"]] == s["text"] for s in segments)


@pytest.mark.parametrize("command", ["segment", "illustrate"])
def test_a_two_megabyte_story_is_refused_before_reading_it_all(tmp_path, capsys, command):
    story = _story(tmp_path, "The fox ran far. " * 130_000)   # 2.2 MB
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
