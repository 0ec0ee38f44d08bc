"""`python -m engine illustrate --scenes`: the storyteller writes each page's scene, the page is drawn from it, and
manifest.json records the scene and who wrote it (tiny profile, offline)."""

from __future__ import annotations

import json

import pytest

from engine.__main__ import main
from engine.characters import page_characters
from engine.profiles import get_profile
from engine.scenes import describe_scenes

TEXT = "Pip ran to the sea. She slept on the sand."
CAST = [("Pip", "a red fox girl")]


@pytest.fixture(autouse=True)
def tiny(monkeypatch, tiny_models):
    monkeypatch.setenv("STORYBOOK_PROFILE", "tiny")


def _illustrate(tmp_path, name: str, *extra: str) -> dict:
    story = tmp_path / "story.txt"
    story.write_text(TEXT, encoding="utf-8")
    out = tmp_path / name
    argv = ["illustrate", str(story), "--out", str(out), "--sentences", "1", "--style", "none", "--seed", "5"]
    assert main([*argv, "--character", "Pip=a red fox girl", *extra]) == 0
    return json.loads((out / "manifest.json").read_text(encoding="utf-8"))


def test_each_page_is_drawn_from_the_scene_the_storyteller_wrote(tmp_path, monkeypatch):
    monkeypatch.setenv("STORYBOOK_STORYTELLER", "tiny:storyteller_plain")  # the tiny storyteller that writes words
    manifest = _illustrate(tmp_path, "book", "--scenes")
    pages = manifest["segments"]
    texts = [p["text"] for p in pages]
    expected = describe_scenes(
        texts, get_profile("tiny"), characters=CAST, cast=page_characters(texts, CAST), style="none", seed=5
    )
    assert [p["scene"] for p in pages] == [s.text for s in expected]
    assert [p["scene_source"] for p in pages] == ["storyteller", "storyteller"]
    for page in pages:
        assert page["characters"] == ["Pip"]
        # The prompt is the scene (the CLIP tokenizer may cut a long one at 77 tokens), not the page's words.
        assert page["scene"].split()[0] in page["prompt"] and "sand" not in page["prompt"]
        assert page["settings"]["prompt"] == page["prompt"]
    plain = _illustrate(tmp_path, "plain")
    assert all("scene" not in p and "scene_source" not in p for p in plain["segments"])
    assert [p["prompt"] for p in plain["segments"]] != [p["prompt"] for p in pages]


def test_pages_the_storyteller_wrote_nothing_usable_for_keep_their_words_and_it_is_said(tmp_path, capsys):
    # The tiny chat storyteller writes only blank lines: nothing usable, on every page.
    manifest = _illustrate(tmp_path, "book", "--scenes")
    plain = _illustrate(tmp_path, "plain")
    for page, before in zip(manifest["segments"], plain["segments"]):
        assert page["scene_source"] == "page text" and page["scene"] == page["text"]
        assert page["prompt"] == before["prompt"]  # drawn from its words, as without --scenes
    assert "The storyteller wrote nothing usable for pages 1, 2: they are drawn" in capsys.readouterr().err
