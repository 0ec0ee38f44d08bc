"""What the storyboard's parts share: the board's sizes and timings, and two small helpers. A module of its own,
so the parts import it and never each other in a circle."""

from __future__ import annotations

from storage import ProjectView
from studio import actions

BOARD_WINDOW = 24  # a long story's cards are drawn this many at a time (full rows of 2, 3 or 4)
PROMPT_PREVIEW_CHARS = 140


def draw_notes(live: ProjectView, profile) -> str:
    """What a draw does beyond one picture a page, and what it could not do (said once, when it starts)."""
    if profile is None:
        return ""
    plan = actions.plan_drawing(live, profile)
    best = (
        f" Each page gets {plan.candidates} pictures; the best scored one becomes its picture."
        if plan.candidates > 1
        else ""
    )
    return best + "".join(f" {note}" for note in plan.notes)


def short_prompt(prompt: str) -> str:
    if len(prompt) <= PROMPT_PREVIEW_CHARS:
        return prompt
    return prompt[:PROMPT_PREVIEW_CHARS].rsplit(" ", 1)[0] + " …"
