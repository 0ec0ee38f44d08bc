"""The download of the scoring and reference models sits beside the notes that ask for it, for the story's own
profile: Settings offer it for the default profile only, so a story made with another one (Book details) gets
its download on the storyboard (scoring, the cast sheet) and on the Export screen (the judge)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

HOME = str(Path(__file__).resolve().parents[1] / "studio" / "Home.py")
TIMEOUT = 60


@pytest.fixture
def classic_story(tmp_path, monkeypatch):
    """A story made with 'classic' (SD 1.5: scoring, judge, likeness, IP-Adapter) while the default is 'tiny',
    with a picture on its first page and a character with a reference picture; nothing of classic is here (an
    empty hub cache); the studio is online, and a download only records what it was asked for."""
    import fixtures_images as fx
    from huggingface_hub import constants

    from engine import fetch
    from storage import Library
    from studio import actions

    home = tmp_path / "home"
    home.mkdir()
    (home / "settings.json").write_text(json.dumps({"profile": "tiny"}))
    monkeypatch.setenv("STORYBOOK_HOME", str(home))
    monkeypatch.delenv("STORYBOOK_PROFILE")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(fetch, "_downloads", None)
    asked: list[tuple[str, bool, bool]] = []

    def fake_fetch(profile, weights="auto", say=lambda role, what: None, *, extras=False, main=True):
        asked.append((profile.name, extras, main))

    monkeypatch.setattr(fetch, "fetch_profile", fake_fetch)
    lib = Library(home)
    story = actions.create_project(lib, title="Fox", story_text="One. Two. Three. Four.", profile="classic")
    story = actions.split_story(lib, story.id, story.version, story.story_text).project
    png = fx.encode(fx.gradient((64, 64)))
    actions.upload_picture(lib, story.pages[0].id, png, "fox.png")
    story = lib.get_project(story.id)
    story = actions.save_characters(lib, story.id, story.version, [("Mara", "a girl in a red coat")])
    actions.upload_reference(lib, story.id, story.version, "Mara", png, "mara.png")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    return story.id, asked


def done(asked) -> None:
    """Wait for the download thread (its fake fetch) to have run."""
    import threading

    from engine import fetch

    download = fetch.get_downloads().get("classic", extras=True)
    assert download is not None
    while download.running:
        threading.Event().wait(0.02)


def screen(path: str, project_id: int) -> AppTest:
    at = AppTest.from_file(HOME, default_timeout=TIMEOUT)
    at.query_params["project"] = str(project_id)
    at.run()
    at.switch_page(path).run()
    assert not at.exception, at.exception  # drawn twice on a page, its buttons' keys must not clash
    return at


def test_the_storyboard_offers_the_storys_own_scoring_and_reference_models_beside_their_notes(classic_story):
    from studio import actions

    project_id, asked = classic_story
    at = screen("screens/storyboard.py", project_id)
    captions = [c.value.replace("\\", "") for c in at.caption]  # as ui.plain escaped them
    scoring = next(c for c in captions if c.startswith("The scoring model of the 'classic' profile"))
    assert f"\"{actions.EXTRAS_BUTTON}\" button (here, or in Settings when 'classic' is the default" in scoring
    assert any(c.startswith("The reference-picture adapter (IP-Adapter) of the 'classic'") for c in captions)
    buttons = [b for b in at.button if b.label == actions.EXTRAS_BUTTON]
    assert len(buttons) == 2, [b.label for b in at.button]  # under the scoring note, and under the cast sheet
    buttons[1].click().run()
    done(asked)
    assert asked == [("classic", True, False)]  # the story's profile, not the default 'tiny'


def test_the_export_screen_offers_the_storys_own_judge_beside_judge_the_book(classic_story):
    from studio import actions

    project_id, asked = classic_story
    at = screen("screens/export.py", project_id)
    judge = next(b for b in at.button if b.label == "Judge the book")
    assert judge.disabled and "The judge model of the 'classic' profile" in judge.help
    assert any("**classic** profile" in m.value for m in at.markdown if m.value.startswith("Optional"))
    next(b for b in at.button if b.label == actions.EXTRAS_BUTTON).click().run()
    done(asked)
    assert asked == [("classic", True, False)]
