"""`python -m engine illustrate` with characters on pronoun pages, candidates, scores and references."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from engine.__main__ import main


@pytest.fixture(autouse=True)
def tiny(monkeypatch, tiny_models):
    monkeypatch.setenv("STORYBOOK_PROFILE", "tiny")


def _story(tmp_path, text):
    path = tmp_path / "story.txt"
    path.write_text(text, encoding="utf-8")
    return path


def test_manifest_records_characters_candidates_scores_references(tmp_path):
    story = _story(tmp_path, "Pip ran. She slept. The sea was grey.")
    out = tmp_path / "book"
    argv = ["illustrate", str(story), "--out", str(out), "--sentences", "1", "--style", "none", "--seed", "3"]
    argv += ["--character", "Pip=a red fox girl", "--candidates", "2", "--judge", "--consistency", "--reference"]
    assert main(argv) == 0
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    pages = manifest["segments"]
    assert [p["characters"] for p in pages] == [["Pip"], ["Pip"], []]
    for page in pages:
        assert len(page["candidates"]) == 2 and sum(c["chosen"] for c in page["candidates"]) == 1
        best = max(page["candidates"], key=lambda c: c["clip_score"])
        assert best["chosen"] and page["image"] == best["image"] and page["clip_score"] == best["clip_score"]
        for candidate in page["candidates"]:
            assert (out / candidate["image"]).is_file()
        assert page["judge_score"] >= 0.0
    assert pages[0]["reference"]["name"] == "Pip" and pages[0]["reference"]["method"] == "shared_attention"
    assert pages[2]["reference"] is None
    assert manifest["references"][0]["name"] == "Pip" and (out / manifest["references"][0]["image"]).is_file()
    assert manifest["references"][0]["settings"]["seed"] == pages[1]["reference"]["seed"]
    scores = manifest["scores"]
    assert "77 tokens" in scores["definition"]
    assert scores["ranker"]["chosen"]["n"] == 3 and scores["ranker"]["all"]["n"] == 6
    assert scores["judge"]["model"] == "tiny:judge"
    assert set(manifest["consistency"]) == {"Pip"}
    from storage.bundle import read_manifest  # the new fields leave the manifest importable

    assert len(read_manifest(out).pages) == 3


def test_an_uploaded_reference_needs_the_ip_adapter_and_uses_it(tmp_path, capsys):
    story = _story(tmp_path, "Pip ran. Pip slept.")
    picture = tmp_path / "pip.png"
    Image.new("RGB", (40, 40), "orange").save(picture)
    base = ["illustrate", str(story), "--sentences", "1", "--style", "none", "--character", "Pip=a red fox"]
    assert main([*base, "--out", str(tmp_path / "a"), "--reference-image", f"Pip={picture}"]) == 1
    assert "IP-Adapter" in capsys.readouterr().err
    argv = [*base, "--out", str(tmp_path / "b"), "--reference-image", f"Pip={picture}"]
    assert main([*argv, "--reference-method", "ip_adapter"]) == 0
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text(encoding="utf-8"))
    assert [p["reference"]["method"] for p in manifest["segments"]] == ["ip_adapter", "ip_adapter"]
    assert manifest["segments"][0]["candidates"] == [] and manifest["segments"][0]["clip_score"] is None
    assert main([*base, "--out", str(tmp_path / "c"), "--reference-image", f"Mo={picture}"]) == 1
    assert main([*base, "--out", str(tmp_path / "d"), "--candidates", "9"]) == 1


def test_a_draft_book_with_candidates_and_references_is_finished_keeping_them(tmp_path, capsys):
    story = _story(tmp_path, "Pip ran. She slept.")
    out = tmp_path / "drafts"
    argv = ["illustrate", str(story), "--out", str(out), "--sentences", "1", "--style", "none", "--seed", "3"]
    argv += ["--character", "Pip=a red fox girl", "--candidates", "2", "--reference", "--draft"]
    assert main(argv) == 0
    pages = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["segments"]
    assert all(p["settings"]["draft"] and p["reference"]["name"] == "Pip" for p in pages)
    assert all(len(p["candidates"]) == 2 for p in pages)
    capsys.readouterr()
    assert main(["finish", str(out), "--method", "refine"]) == 1
    assert "'decode' only" in capsys.readouterr().err
    (out / "draft-latents.safetensors").unlink()  # the latents are drawn again, with the reference row
    assert main(["finish", str(out)]) == 0
    finished = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["segments"]
    for before, after in zip(pages, finished):
        s = after["settings"]
        assert not s["draft"] and s["finished_from"] == "draft" and s["reference"] == before["settings"]["reference"]
        assert after["image"] == before["image"]
