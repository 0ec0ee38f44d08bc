"""The cast sheet and what a draw takes from it: each character's reference picture, best of N, CLIP scores.

A character's reference picture steers the pages the character is on (engine.references):

* shared attention (SD-Turbo and the tiny profile): the reference is drawn again beside each page from the
  prompt and seed it was drawn with, so it must be a picture the app drew (its settings are kept with it);
* IP-Adapter (the SD 1.5 profiles, and any profile that has one for an uploaded picture): the picture itself
  is looked at, so an upload works too;
* a profile that can do neither draws from the character's description alone, and says so.

`plan_drawing` turns a project into what a picture job passes to ``engine.illustrate.illustrate_pages``
(candidates, scoring, references) without importing torch; `engine_references` builds the engine's
Reference objects from it on the worker. Scores are stored in a picture's meta as
``meta["scores"]["clip"]``: the ranker's CLIP score on CLIP's own 0..100 scale (docs/formats.md).

A reference drawn from a description is a small job: a few candidates from the description in the book's
style; the best-scored one becomes the reference (one undoable step) and the others stay on offer
(`proposals`) until the studio restarts, so the person can take another one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core import seeds
from core.errors import InputError
from core.stats import bootstrap_mean
from engine.imageio import load_image, to_png_bytes
from engine.jobs import get_worker
from engine.profiles import REFERENCE_IP_ADAPTER, REFERENCE_SHARED_ATTENTION, Profile
from storage import CharacterView, ConflictError, Library, NotFound, ProjectView
from studio.actions.jobs import job_write
from studio.actions.profiles import ensure_illustrator, missing_models, project_profile

log = logging.getLogger(__name__)

KIND_REFERENCE = "reference"
REFERENCE_CANDIDATES = 3  # pictures drawn when a reference is drawn from a description
SHARE_RATE = 0.5  # engine.references.DEFAULT_SHARE_RATE, without importing torch here
IP_SCALE = 0.6  # engine.references.DEFAULT_IP_SCALE

SCORE_HELP = (
    "CLIP score: how well the picture matches its page's words, as the CLIP model sees it "
    "(max(100 × cosine of the picture's and the words' embeddings, 0); only the first 77 tokens of the words "
    "count). Around 30 is a good match for real models, under 20 a poor one. The tiny profile's random-weight "
    "models give meaningless scores."
)


@dataclass(frozen=True)
class ReferencePlan:
    """How one character's reference picture is used by a draw, torch-free (built into a Reference on the worker)."""

    name: str
    method: str  # REFERENCE_SHARED_ATTENTION or REFERENCE_IP_ADAPTER
    reference_id: str  # the stored picture's SHA-256 (its file name), recorded in each page's settings
    prompt: str = ""
    negative_prompt: str = ""
    seed: int = 0
    image_path: str = ""  # the picture, for the IP-Adapter


@dataclass(frozen=True)
class DrawPlan:
    """What a picture job passes to the engine, and the sentences saying what it could not do."""

    candidates: int = 1
    score: bool = False
    references: tuple[ReferencePlan, ...] = ()
    notes: tuple[str, ...] = field(default=(), compare=False)


def can_score(profile: Profile) -> bool:
    """Whether the profile's ranker (a small CLIP) is set and on this computer."""
    return bool(profile.model("ranker")) and not missing_models(profile, ("ranker",))


def scoring_note(profile: Profile) -> str | None:
    """One sentence when pictures cannot be scored (nor best-of-N chosen) with this profile; None when they can."""
    if can_score(profile):
        return None
    if not profile.model("ranker"):
        return f"The '{profile.name}' profile has no scoring model: pictures are drawn one per page, without scores."
    return (
        f"The scoring model of the '{profile.name}' profile is not on this computer yet, so pictures are drawn "
        "one per page, without scores (download the profile's models in Settings to score them)."
    )


def reference_method(profile: Profile, character: CharacterView) -> str:
    """How this character's reference picture steers pages with this profile ("" when it cannot)."""
    methods = profile.reference_methods()
    if character.reference_path is None or not methods:
        return ""
    settings = character.reference_settings or {}
    redrawable = bool(str(settings.get("prompt") or "").strip()) and settings.get("seed") is not None
    for method in methods:
        if method == REFERENCE_SHARED_ATTENTION and redrawable:
            return method
        if method == REFERENCE_IP_ADAPTER and not missing_models(profile, ("ip_adapter",)):
            return method
    return ""


def profile_reference_note(profile: Profile) -> str:
    """In plain words, how this profile's pages use the characters' reference pictures."""
    methods = profile.reference_methods()
    if not methods:
        return (
            f"The '{profile.name}' profile cannot draw with reference pictures: pages use the characters' "
            "descriptions only."
        )
    if methods[0] == REFERENCE_IP_ADAPTER:
        return (
            "Pages with a character are drawn looking at the character's reference picture (IP-Adapter): a "
            "drawn or an uploaded picture works."
        )
    extra = (
        " An uploaded picture is looked at with the IP-Adapter instead."
        if REFERENCE_IP_ADAPTER in methods
        else " An uploaded picture cannot be used this way: those pages use the description."
    )
    return (
        "Pages with a character share attention with the character's reference picture, drawn again beside "
        "each page from its prompt and seed (this picture model has no IP-Adapter), so a reference must be a "
        "picture the app drew." + extra
    )


def character_note(profile: Profile, character: CharacterView) -> str | None:
    """Why this character's reference picture is not used with this profile, or None when it is (or it has none)."""
    if character.reference_path is None or reference_method(profile, character):
        return None
    if not profile.reference_methods():
        return None  # profile_reference_note already says so
    if REFERENCE_IP_ADAPTER in profile.reference_methods():
        return (
            f"{character.name}'s reference picture needs the IP-Adapter, which is not on this computer yet: "
            f"{character.name}'s pages use the description until it is downloaded."
        )
    return (
        f"{character.name}'s reference picture was not drawn here, so this picture model cannot redraw it "
        f"beside the pages: {character.name}'s pages use the description. Draw one from the description instead."
    )


def plan_drawing(project: ProjectView, profile: Profile) -> DrawPlan:
    """Candidates (the book's pictures per page), scoring, and the characters' references, for a picture job."""
    notes: list[str] = []
    score = can_score(profile)
    candidates = max(1, int(project.candidates or 1))
    if not score:
        note = scoring_note(profile)
        if note:
            notes.append(note)
        candidates = 1  # best of N needs scores
    references: list[ReferencePlan] = []
    with_pictures = [c for c in project.characters if c.reference_path is not None]
    if with_pictures and not profile.reference_methods():
        notes.append(profile_reference_note(profile))
    for character in with_pictures:
        method = reference_method(profile, character)
        if not method:
            note = character_note(profile, character)
            if note:
                notes.append(note)
            continue
        settings = character.reference_settings or {}
        references.append(
            ReferencePlan(
                name=character.name,
                method=method,
                reference_id=Path(character.reference_path).stem,  # type: ignore[arg-type]
                prompt=str(settings.get("prompt") or "") if method == REFERENCE_SHARED_ATTENTION else "",
                negative_prompt=str(settings.get("negative_prompt") or "")
                if method == REFERENCE_SHARED_ATTENTION
                else "",
                seed=int(settings.get("seed") or 0) if method == REFERENCE_SHARED_ATTENTION else 0,
                image_path=str(character.reference_path) if method == REFERENCE_IP_ADAPTER else "",
            )
        )
    return DrawPlan(candidates=candidates, score=score, references=tuple(references), notes=tuple(notes))


def engine_references(plans: Sequence[ReferencePlan]) -> dict:
    """name -> engine.references.Reference, on the worker (imports torch; reads the IP-Adapter pictures)."""
    from engine.references import Reference

    out = {}
    for plan in plans:
        image = None
        if plan.method == REFERENCE_IP_ADAPTER:
            image = load_image(Path(plan.image_path), name=f"{plan.name}'s reference picture").image
        out[plan.name] = Reference(
            name=plan.name,
            method=plan.method,
            prompt=plan.prompt,
            negative_prompt=plan.negative_prompt,
            seed=plan.seed,
            share_rate=SHARE_RATE,
            scale=IP_SCALE,
            image=image,
            reference_id=plan.reference_id,
        )
    return out


def picture_meta(metadata: dict, draw: str) -> dict:
    """A picture's stored meta from what the engine learnt about it (DrawnPicture.metadata); draw names the job."""
    meta: dict = {
        "candidate": int(metadata.get("candidate", 0)) + 1,  # 1-based in storage
        "candidates": int(metadata.get("candidates", 1)),
        "chosen": bool(metadata.get("chosen", True)),
        "characters": list(metadata.get("characters", ())),
        "draw": draw,
    }
    if metadata.get("clip_score") is not None:
        meta["scores"] = {"clip": round(float(metadata["clip_score"]), 4)}
        meta["score_model"] = str(metadata.get("clip_model") or "")
    return meta


# ---------------------------------------------------------------- scores as the screens show them


def clip_score(picture) -> float | None:
    """The picture's stored CLIP score (0..100), or None when it was not scored."""
    scores = (getattr(picture, "meta", None) or {}).get("scores") or {}
    value = scores.get("clip")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def book_score(project: ProjectView) -> dict:
    """The book's CLIP score: the mean of its pages' pictures' scores with a 95 % bootstrap interval, and how
    many pages have a scored picture ({"mean", "low", "high", "n", "pages", "models"})."""
    scores, models = [], set()
    for page in project.pages:
        value = clip_score(page.selected) if page.selected is not None else None
        if value is not None:
            scores.append(value)
            models.add(str(page.selected.meta.get("score_model") or ""))  # type: ignore[union-attr]
    return {**bootstrap_mean(scores), "pages": len(project.pages), "models": sorted(m for m in models if m)}


def last_draw(page) -> list:
    """The candidates of the page's newest draw of several (oldest candidate first), or [] when its newest
    drawn picture came alone."""
    drawn = [p for p in page.pictures if p.meta.get("draw")]
    if not drawn:
        return []
    newest = max(drawn, key=lambda p: p.version)
    group = [p for p in drawn if p.meta.get("draw") == newest.meta.get("draw")]
    if int(newest.meta.get("candidates", 1)) < 2 and len(group) < 2:
        return []
    return sorted(group, key=lambda p: int(p.meta.get("candidate", 0)))


def set_pictures_per_page(lib: Library, project_id: int, expected_version: int, count: int) -> ProjectView:
    """How many pictures each page's draw makes (1..8, best of N: the best scored becomes the page's picture).
    One undoable step."""
    return lib.update_project(project_id, expected_version, candidates=int(count))


# ---------------------------------------------------------------- the cast sheet's actions


def _character(project: ProjectView, name: str) -> CharacterView:
    wanted = (name or "").strip().casefold()
    for character in project.characters:
        if character.name.casefold() == wanted:
            return character
    raise NotFound(f"There is no character called {name.strip()!r} in this story any more: save the characters first.")


def upload_reference(
    lib: Library, project_id: int, expected_version: int, name: str, data: bytes, file_name: str = ""
) -> tuple[ProjectView, list[str]]:
    """Make the person's own picture the character's reference (read by the hardened loader); returns the notes."""
    _character(lib.get_project(project_id), name)
    loaded = load_image(data, name=file_name)
    project = lib.set_character_reference(project_id, expected_version, name, image=to_png_bytes(loaded.image))
    return project, list(loaded.notes)


def reference_from_picture(lib: Library, project_id: int, expected_version: int, name: str, picture_id: int):
    """Make one of the story's pictures the character's reference (a drawn one keeps how it was drawn)."""
    _character(lib.get_project(project_id), name)
    return lib.set_character_reference(project_id, expected_version, name, picture_id=picture_id)


def remove_reference(lib: Library, project_id: int, expected_version: int, name: str) -> ProjectView:
    """Take the character's reference picture away (Undo brings it back); pages use the description again."""
    _character(lib.get_project(project_id), name)
    return lib.set_character_reference(project_id, expected_version, name)


def story_pictures(project: ProjectView) -> list[tuple[int, str, object]]:
    """(picture id, label, picture) for every kept picture of the story's pages, page by page, newest first."""
    out = []
    for page in project.pages:
        for picture in reversed(page.pictures):
            label = f"Page {page.position + 1}, version {picture.version}" + (" (in use)" if picture.selected else "")
            out.append((picture.id, label, picture))
    return out


@dataclass(frozen=True)
class Proposal:
    """A reference picture drawn from a description, on offer to the person."""

    png: bytes
    settings: dict
    score: float | None
    chosen: bool


_proposals: dict[tuple[int, str], list[Proposal]] = {}
_proposals_lock = threading.Lock()


def proposals(project_id: int, name: str) -> list[Proposal]:
    """The pictures last drawn for this character's reference (kept until the studio restarts)."""
    with _proposals_lock:
        return list(_proposals.get((project_id, name.strip().casefold()), ()))


def use_proposal(lib: Library, project_id: int, expected_version: int, name: str, index: int) -> ProjectView:
    """Make another of the drawn proposals the character's reference, with the settings it was drawn with."""
    offered = proposals(project_id, name)
    if not 0 <= index < len(offered):
        raise InputError("That picture is no longer on offer: draw the reference again.")
    chosen = offered[index]
    project = lib.set_character_reference(
        project_id, expected_version, name, image=chosen.png, settings=chosen.settings
    )
    with _proposals_lock:
        key = (project_id, name.strip().casefold())
        _proposals[key] = [
            Proposal(p.png, p.settings, p.score, i == index) for i, p in enumerate(_proposals.get(key, offered))
        ]
    return project


def reference_jobs(project_id: int, active_only: bool = True):
    return get_worker().jobs(kind=KIND_REFERENCE, active_only=active_only, project_id=project_id)


def draw_reference(
    lib: Library,
    project_id: int,
    expected_version: int,
    name: str,
    *,
    count: int = REFERENCE_CANDIDATES,
    profile: Profile | None = None,
) -> str:
    """Draw `count` pictures of the character from its description, in the book's style (a job); the best
    scored one becomes its reference with the settings it was drawn with, the others are offered (proposals).
    Returns the job id."""
    project = lib.get_project(project_id)
    if project.version != expected_version:
        raise ConflictError()
    character = _character(project, name)
    if not character.description.strip():
        raise InputError(f"Describe {character.name} first (what they look like): the picture is drawn from that.")
    if reference_jobs(project_id):
        raise InputError("A reference picture is being drawn for this story right now: wait for it first.")
    profile = profile or project_profile(project).profile
    ensure_illustrator(profile)
    count = max(1, min(8, int(count)))
    score = can_score(profile)
    if not score:
        count = 1
    who, description, style, base_seed = character.name, character.description, project.style, seeds.new_seed()
    key = (project_id, who.casefold())

    def run(ctx) -> None:
        ctx.progress(0, message="Getting the picture model ready…")
        from engine.illustrate import PageSpec, illustrate_pages

        drawn = illustrate_pages(
            [PageSpec(key=who, text=description, seed=base_seed)],
            profile,
            style=style,
            characters=[(who, description)],
            cast=[[]],  # the description is the page's words: not added twice
            candidates=count,
            score=score,
            draft=False,  # a reference is a finished picture: pages redraw it at their own steps anyway
            on_progress=lambda done, total: ctx.progress(done, total, message=f"Drawing {who}…"),
            should_cancel=lambda: ctx.cancelled,
        )
        offered = [
            Proposal(
                to_png_bytes(p.image),
                {**p.settings, "style": style, "profile": profile.name, "reference_of": who},
                p.metadata.get("clip_score"),
                bool(p.metadata.get("chosen", True)),
            )
            for p in drawn
        ]
        with _proposals_lock:
            _proposals[key] = offered
        best = next(p for p in offered if p.chosen)
        ctx.emit(best)

    def save(best: Proposal) -> None:
        job_write(
            lib,
            project_id,
            lambda p: lib.set_character_reference(p.id, p.version, who, image=best.png, settings=best.settings),
        )

    return get_worker().submit(
        run,
        kind=KIND_REFERENCE,
        label=f"A reference picture of {who}",
        total=1,
        on_result=save,
        meta={"project_id": project_id, "character": who},
    )
