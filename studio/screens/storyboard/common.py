"""What the storyboard's parts share: the board's sizes and timings, and three small helpers. A module of its own,
so the parts import it and never each other in a circle."""

from __future__ import annotations

from storage import ProjectView
from studio import actions, ui

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


def version_details(picture) -> str:
    """What tells two versions apart: when, seed, prompt (own or automatic), style and models."""
    settings = picture.settings
    parts = [f"v{picture.version}", ui.ago(picture.created)]
    if picture.origin == "uploaded":
        parts.append("your upload")
    else:
        if settings.get("seed") is not None:
            parts.append(f"seed {settings['seed']}")
        for key, label in (("style", "style"), ("profile", "models")):
            if settings.get(key):
                parts.append(f"{label}: {settings[key]}")
    score = actions.clip_score(picture)
    if score is not None:
        parts.append(f"CLIP {score:.1f}")
    if actions.is_draft(picture):
        parts.append("draft")
    elif picture.meta.get("finished_from"):
        parts.append(f"finished from v{picture.meta['finished_from']}")
    line = " · ".join(str(p) for p in parts)
    prompt = settings.get("prompt")
    if prompt:
        line += f"  \n{'Your prompt' if settings.get('own_prompt') else 'Prompt'}: {ui.plain(short_prompt(prompt))}"
    return line
