"""Typing in a story box that was quietly given another tab's words: kept apart from an edit of those words."""

from __future__ import annotations

import pytest

from studio.ui.editors import carries_change

BEFORE = "The fox sailed.\n\nThe ferry waited at the pier."


@pytest.mark.parametrize(
    ("after", "typed", "expected"),
    [
        # The other tab added an ending; this tab typed its own ending on the old words: not based on it.
        (BEFORE + "\n\nThe end.", BEFORE + "\n\nThey all went home.", False),
        # Typing made on top of the other tab's ending keeps it.
        (BEFORE + "\n\nThe end.", "A title\n\n" + BEFORE + "\n\nThe end. Really.", True),
        # The other tab changed a word; this tab's typing still has the old word.
        (BEFORE.replace("sailed", "swam"), BEFORE + " More.", False),
        (BEFORE.replace("sailed", "swam"), BEFORE.replace("sailed", "swam") + " More.", True),
        # The other tab removed a sentence: typing that still has it is based on the old words.
        ("The fox sailed.", BEFORE + " Extra.", False),
        ("The fox sailed.", "The fox sailed. Extra.", True),
    ],
)
def test_typing_is_told_from_an_edit_of_the_followed_words(after: str, typed: str, expected: bool) -> None:
    assert carries_change(BEFORE, after, typed) is expected
