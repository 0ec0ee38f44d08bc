"""The storyteller-written scene description: what it is told, and one description per page."""

from __future__ import annotations

import pytest

from engine.profiles import get_profile
from engine.scenes import describe_scenes, scene_messages

CAST = [("Mara", "a young girl with a yellow raincoat"), ("Tobin", "an old lighthouse keeper")]
PAGES = ["Mara lived by the sea.", "'Quite sure,' she said, and stepped onto the rocks."]


def test_the_model_is_told_the_page_its_context_and_who_is_there():
    messages = scene_messages(PAGES[1], previous=PAGES[0], characters=CAST, present=["Mara"], style="pencil")
    user = messages[1]["content"]
    assert "Pencil sketch" in user and PAGES[0] in user and PAGES[1] in user
    assert "Mara: a young girl with a yellow raincoat" in user and "Tobin" not in user
    assert "No named characters" in scene_messages("The sea.", characters=CAST)[1]["content"]


def test_one_description_per_page_and_the_same_again(tiny_models, one_cpu_thread):
    profile = get_profile("tiny")
    first = describe_scenes(PAGES, profile, characters=CAST, seed=4, max_words=12)
    again = describe_scenes(PAGES, profile, characters=CAST, seed=4, max_words=12)
    assert len(first) == 2 and first == again
    for scene, page in zip(first, PAGES):
        assert scene.source in ("storyteller", "page text")
        assert scene.text.strip()
        assert (scene.source == "page text" and scene.text == page) or len(scene.text.split()) <= 12


@pytest.mark.parametrize("chat", [True, False])
def test_plain_storytellers_are_asked_too(tiny_models, chat, monkeypatch, one_cpu_thread):
    profile = get_profile("tiny")
    if not chat:
        profile = profile.with_overrides({"storyteller": "tiny:storyteller_plain"})
    assert len(describe_scenes(PAGES[:1], profile)) == 1
