"""The optional scene description: the profile's storyteller writes what each page's picture shows.

The rule-based prompt (engine.prompts) keeps a page's content words; a storyteller model can instead say
who is there, where, and what is happening, in the style's words, reading the page before for context
and the descriptions of the characters engine.characters found on the page. The result is meant to be
shown to the user and edited, then used as the page's prompt (PageSpec.prompt_override). Generation is
greedy with a seed derived from the book's seed and the page, so the same page writes the same scene.
A model that writes nothing usable (the tiny random one often does) leaves the page's own words, and
the description says so (`source`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.seeds import sub_seed
from engine.loading import loaded_model
from engine.profiles import Profile
from engine.prompts import get_style
from engine.storyteller import Storyteller, clean_passage

SCENE_WORDS = 40
_SYSTEM = (
    "You help illustrate a children's picture book. For the page you are given, describe the one picture "
    "to draw: who is in it (with how they look), where they are and what is happening. One or two short "
    "sentences, only what can be seen, no dialogue, no story text."
)


@dataclass(frozen=True)
class SceneDescription:
    text: str
    source: str  # "storyteller", or "page text" when the model wrote nothing usable


def scene_messages(
    page_text: str,
    *,
    previous: str = "",
    characters: Sequence[tuple[str, str]] = (),
    present: Sequence[str] = (),
    style: str = "watercolor",
) -> list[dict]:
    """The chat messages asking for one page's scene (pure: what the model is told, for tests and the UI)."""
    described = dict(characters)
    who = [f"- {name}: {described.get(name) or 'no description'}" for name in present]
    label = get_style(style).label
    parts = [f"Picture style: {label}."]
    if previous.strip():
        parts.append(f"The page before: {previous.strip()}")
    parts.append(f"This page: {page_text.strip()}")
    parts.append("Characters on this page:\n" + "\n".join(who) if who else "No named characters are on this page.")
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": "\n".join(parts)}]


def describe_scenes(
    pages: Sequence[str],
    profile: Profile,
    *,
    characters: Sequence[tuple[str, str]] = (),
    cast: Sequence[Sequence[str]] | None = None,
    style: str = "watercolor",
    seed: int = 0,
    max_words: int = SCENE_WORDS,
    only: Sequence[int] | None = None,
) -> list[SceneDescription]:
    """One scene description per page, written by the profile's storyteller (see the module notes); with `only`,
    just for the pages at those indices (in that order), each still read with the page before it and written
    with the seed it has in the whole book, so one page's scene is the same as in a run over every page."""
    from engine.characters import page_characters

    if cast is None:
        cast = page_characters(list(pages), characters) if characters else [[] for _ in pages]
    teller = Storyteller(profile=profile)
    out = []
    with loaded_model("storyteller", teller.ref, teller.choice, teller._load) as loaded:
        chat = teller._uses_chat(loaded)
        for i in range(len(pages)) if only is None else only:
            text = pages[i]
            messages = scene_messages(
                text, previous=pages[i - 1] if i else "", characters=characters, present=cast[i], style=style
            )
            prompt: str | list[dict] = messages
            if not chat:
                prompt = messages[0]["content"] + "\n\n" + messages[1]["content"] + "\n\nThe picture shows"
            raw = teller._generate(
                loaded,
                prompt,
                max_new_tokens=int(max_words * 1.6) + 8,
                temperature=0.0,
                seed=sub_seed(seed, "scene", i),
            )
            written = clean_passage(raw, max_words=max_words, plain=not chat)
            out.append(SceneDescription(written, "storyteller") if written else SceneDescription(text, "page text"))
    return out
