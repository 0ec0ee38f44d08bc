"""One model, one name: a download's progress line, the missing-model sentence and Settings' tables call each
role's model by the same words (engine.profiles.ROLE_WORDS)."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from engine import fetch
from engine.profiles import ALL_ROLES, EXTRA_ROLES, ROLE_WORDS, get_profile
from studio import actions


def test_every_role_has_its_words_and_every_extra_role_says_what_it_brings():
    assert set(ROLE_WORDS) == set(ALL_ROLES)
    assert all(words.name and words.does for words in ROLE_WORDS.values())
    assert all(ROLE_WORDS[role].brings for role in EXTRA_ROLES)


@pytest.mark.parametrize("role", ALL_ROLES)
def test_the_download_progress_and_the_missing_model_sentence_name_the_model_alike(role, monkeypatch):
    tiny = get_profile("tiny")
    missing = dataclasses.replace(tiny, models={**tiny.models, role: "nobody/none"})
    sentence = actions.missing_reason(missing, (role,))
    assert sentence is not None and sentence.startswith(f"The {ROLE_WORDS[role].name} of the 'tiny' profile")

    steps: list[str] = []
    said = threading.Event()
    downloads = fetch.Downloads()
    extras = role in EXTRA_ROLES

    def fake_fetch(profile, weights="auto", say=lambda role, what: None, *, extras=False, main=True):
        say(role, "downloading nobody/none …")
        now = downloads.get("tiny", extras=extras)
        steps.append(now.step if now is not None else "")
        said.set()

    monkeypatch.setattr(fetch, "fetch_profile", fake_fetch)
    download = downloads.start(missing, extras=extras)
    assert said.wait(10)
    assert steps == [f"the {ROLE_WORDS[role].name}: downloading nobody/none …"]
    while download.running:
        threading.Event().wait(0.01)


@pytest.mark.parametrize("role", ["ranker", "judge", "consistency"])
def test_a_profile_without_a_scorer_names_it_as_the_studio_does(role):
    from core.errors import InputError
    from engine import scoring

    tiny = get_profile("tiny")
    without = dataclasses.replace(tiny, models={k: v for k, v in tiny.models.items() if k != role})
    opened = scoring.open_consistency(without) if role == "consistency" else scoring.open_scorer(without, role)
    with pytest.raises(InputError, match=f"has no {ROLE_WORDS[role].name}, so"), opened:
        pass
