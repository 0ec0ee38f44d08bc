"""The rule-based character resolver on stories with pronouns, several characters and dialogue."""

from __future__ import annotations

import pytest

from engine.characters import Character, head_nouns, infer_gender, page_characters, resolve_characters
from engine.errors import InputError
from engine.prompts import build_prompt

MARA = ("Mara", "a young girl with a yellow raincoat")
KEEPER = ("Tobin", "an old lighthouse keeper with a white beard, Mara's grandfather")
PIP = ("Pip", "a small red fox with a green scarf")
OWL = ("Hoot", "a grey owl")

# (story pages, characters, expected names per page)
STORIES = [
    (
        [
            "Mara lived by the sea.",
            "'Quite sure,' she said, and stepped onto the rocks.",
            "The old keeper waved from the tower.",
            "Her grandfather smiled. He had waited all day.",
            "The waves were high that night.",
        ],
        [MARA, KEEPER],
        [["Mara"], ["Mara"], ["Tobin"], ["Mara", "Tobin"], []],
    ),
    (
        [
            "Pip and Mara went to the forest.",
            "They found a hollow tree.",
            'The fox pointed up. "Look, an owl!"',
            "The owl blinked at them.",
        ],
        [MARA, PIP, OWL],
        [["Pip", "Mara"], ["Pip", "Mara"], ["Pip"], ["Hoot", "Pip", "Mara"]],
    ),
    (
        [
            "She ran down the hill as fast as she could.",
            "At the bottom, Mara stopped to breathe.",
        ],
        [MARA, PIP],
        [["Mara"], ["Mara"]],
    ),
    (
        [
            "Tobin climbed the stairs.",
            "Mara followed. He lit the lamp and she watched.",
            '"Where is he?" asked Mara. Nobody answered.',
        ],
        [MARA, KEEPER],
        [["Tobin"], ["Mara", "Tobin"], ["Mara"]],
    ),
    (
        ["Captain Hook sailed away.", "Hook laughed. Wendy waved at him."],
        [("Captain Hook", "a pirate man with a hook"), ("Wendy", "a girl in a blue dress")],
        [["Captain Hook"], ["Captain Hook", "Wendy"]],
    ),
    (
        ["The fox’s tail was red.", "Mara laughed at the fox's scarf.", "It was windy. I like it, you know."],
        [MARA, PIP],
        [["Pip"], ["Mara", "Pip"], []],
    ),
]


@pytest.mark.parametrize("pages,characters,expected", STORIES)
def test_resolver_matches_expected_page_tables(pages, characters, expected):
    assert page_characters(pages, characters) == expected


def test_evidence_says_why_each_character_is_on_the_page():
    pages, characters, _ = STORIES[0]
    cast = resolve_characters(pages, characters)
    assert cast[1].evidence["Mara"] == ["she"]
    assert cast[2].evidence["Tobin"] == ["the old keeper"]
    assert "her grandfather" in cast[3].evidence["Tobin"]


def test_head_nouns_and_gender():
    assert head_nouns(KEEPER[1]) == ["keeper", "grandfather"]
    assert head_nouns("a small red fox with a green scarf") == ["fox"]
    assert infer_gender(Character(*MARA)) == "female"
    assert infer_gender(Character(*KEEPER)) == "male"
    assert infer_gender(Character(*PIP)) == ""
    assert infer_gender(Character("Sam", "a fox", gender="male")) == "male"


def test_a_head_noun_two_characters_share_names_neither():
    pages = ["The fox ran."]
    assert page_characters(pages, [("Pip", "a red fox"), ("Rua", "a grey fox")]) == [[]]


def test_aliases_and_no_characters():
    assert page_characters(["Granny waved."], [Character("Ada", "an old woman", aliases=("Granny",))]) == [["Ada"]]
    assert page_characters(["She ran."], []) == [[]]
    with pytest.raises(InputError):
        resolve_characters("one page", [MARA])


def test_pronoun_page_gets_the_description_in_its_prompt():
    pages = ["Mara lived by the sea.", "'Quite sure,' she said, and stepped onto the rocks."]
    present = page_characters(pages, [MARA])[1]
    with_cast = build_prompt(pages[1], "none", characters=[MARA], present=present).prompt
    without = build_prompt(pages[1], "none", characters=[MARA]).prompt
    assert "yellow raincoat" in with_cast and "Mara" in with_cast
    assert "raincoat" not in without
