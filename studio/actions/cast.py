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
style; the best-scored one becomes the reference (one undoable step) and all of them are kept in the library
with the character (`proposals`: files in the picture store, carried by bundles), so the person can take
another one later, or remove one (undoable).

How closely pages follow a reference is the person's choice, kept in the reference's settings: the share rate
for shared attention (0..1) and the scale for the IP-Adapter (0..2); absent, the engine's defaults (0.5, 0.6).
Each page records the value it was drawn with (engine.references.Reference.to_settings), so it redraws exactly.

A character's likeness (how alike it looks across the pages it is on: DINOv2 embeddings of those pages'
pictures, engine.scoring.ConsistencyScorer) is measured by a job on the worker (`measure_likeness`) and kept
with the character, with the pictures it was measured on, so the cast sheet can tell when pages changed since.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from core import seeds
from core.errors import InputError, UserError
from core.limits import DEFAULT_IP_SCALE, DEFAULT_SHARE_RATE, MAX_CANDIDATES
from core.requests import PageSpec
from core.stats import bootstrap_mean
from engine.characters import page_characters
from engine.imageio import load_image, to_png_bytes
from engine.jobs import get_worker
from engine.profiles import REFERENCE_IP_ADAPTER, REFERENCE_SHARED_ATTENTION, Profile
from storage import CharacterView, ConflictError, Library, NotFound, ProjectView, ProposalView
from storage.validate import IP_SCALE_RANGE, SHARE_RATE_RANGE
from studio.actions.jobs import job_write, picture_model_progress
from studio.actions.profiles import (
    ensure_illustrator,
    missing_models,
    missing_reason,
    model_here,
    project_profile,
    role_note,
)

log = logging.getLogger(__name__)

KIND_REFERENCE = "reference"
KIND_LIKENESS = "likeness"
KIND_JUDGE = "judge"
REFERENCE_CANDIDATES = 3  # pictures drawn when a reference is drawn from a description

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
    share_rate: float = DEFAULT_SHARE_RATE  # how closely pages follow it (the person's choice, kept in its settings)
    scale: float = DEFAULT_IP_SCALE


@dataclass(frozen=True)
class DrawPlan:
    """What a picture job passes to the engine, and the sentences saying what it could not do."""

    candidates: int = 1
    score: bool = False
    references: tuple[ReferencePlan, ...] = ()
    notes: tuple[str, ...] = field(default=(), compare=False)


def can_score(profile: Profile) -> bool:
    """Whether the profile's ranker (a small CLIP) is set and on this computer."""
    return model_here(profile, "ranker")


def scoring_note(profile: Profile) -> str | None:
    """One sentence when pictures cannot be scored (nor best-of-N chosen) with this profile; None when they can."""
    return role_note(
        profile,
        "ranker",
        f"The '{profile.name}' profile has no scoring model: pictures are drawn one per page, without scores.",
        until="pictures are drawn one per page, without scores",
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
        return missing_reason(
            profile, ("ip_adapter",), until=f"{character.name}'s pages use the description, not the reference picture"
        ) or (
            f"The '{profile.name}' profile names no IP-Adapter to look at {character.name}'s reference picture "
            f"with, so {character.name}'s pages use the description."
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
                share_rate=follow_value(character, REFERENCE_SHARED_ATTENTION),
                scale=follow_value(character, REFERENCE_IP_ADAPTER),
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
            share_rate=plan.share_rate,
            scale=plan.scale,
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


def judge_score(picture) -> float | None:
    """The picture's stored judge score (0..100: the profile's judge, a larger CLIP than the ranker), or None."""
    scores = (getattr(picture, "meta", None) or {}).get("scores") or {}
    value = scores.get("judge")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def book_score(project: ProjectView) -> dict:
    """The book's CLIP score: the mean of its pages' pictures' scores with a 95 % bootstrap interval
    ({"mean", "low", "high", "n", "pages", "models", "role", "unjudged"}).

    The judge's scores when the book was judged ("Judge the book": a different, larger CLIP than the ranker that
    chose the pictures, so the book is not graded by its chooser; role "judge", "unjudged" counting the pictures
    in use it has not scored yet); else the ranker's scores stored with the pictures (role "ranker")."""
    in_use = [page.selected for page in project.pages if page.selected is not None]

    def scored(score, model_key: str) -> tuple[list[float], set[str]]:
        pairs = [(score(p), str(p.meta.get(model_key) or "")) for p in in_use]
        return [value for value, _ in pairs if value is not None], {
            model for value, model in pairs if value is not None
        }

    scores, models = scored(judge_score, "judge_model")
    role, unjudged = "judge", len(in_use) - len(scores)
    if not scores:
        scores, models = scored(clip_score, "score_model")
        role, unjudged = "ranker", len(in_use)
    return {
        **bootstrap_mean(scores),
        "pages": len(project.pages),
        "models": sorted(m for m in models if m),
        "role": role,
        "unjudged": unjudged,
    }


def book_score_line(summary: dict) -> tuple[str, str]:
    """The book score in words, as the storyboard and the Export screen both show it: (line, help); ("", help)
    when no picture in use has a score."""
    help_text = SCORE_HELP + " The interval is a 95 % bootstrap interval of the mean."
    if not summary.get("n"):
        return "", help_text
    n = summary["n"]
    interval = f" (95 % interval {summary['low']:.1f}–{summary['high']:.1f})" if n > 1 else ""
    pages = summary["pages"]
    line = f"Book score: CLIP {summary['mean']:.1f}{interval} over {n} of {pages} page{'s' if pages != 1 else ''}"
    models = ", ".join(summary.get("models") or [])
    if summary.get("role") == "judge":
        if models:
            line += f" · judged by {models}"
        help_text += (
            " Judged by the profile's judge, a larger CLIP model than the one that chose the pictures, so the book "
            "is not graded by its chooser."
        )
        if summary.get("unjudged"):
            line += f" ({summary['unjudged']} not judged yet)"
    else:
        if models:
            line += f" · scored by {models}, the model that chose the pictures"
        help_text += (
            " These are the scores of the model that chose the pictures, which favour them: Judge the book for a "
            "score from a different, larger model."
        )
    return line, help_text


def can_judge(profile: Profile) -> bool:
    """Whether the profile's judge (a larger CLIP) is set and on this computer."""
    return model_here(profile, "judge")


def judge_note(profile: Profile) -> str | None:
    """One sentence when the book cannot be judged with this profile; None when it can."""
    return role_note(profile, "judge", f"The '{profile.name}' profile has no judge model to score the book with.")


def judge_jobs(project_id: int, active_only: bool = True):
    return get_worker().jobs(kind=KIND_JUDGE, active_only=active_only, project_id=project_id)


def judge_book(lib: Library, project_id: int, *, profile: Profile | None = None) -> str | None:
    """Score every page's picture in use against its page's words with the profile's judge, on the worker; each
    score is kept with its picture (meta scores.judge, judge_model; not an undo step). Returns the job id, or None
    when no page has a picture."""
    project = lib.get_project(project_id)
    profile = profile or project_profile(project).profile
    note = judge_note(profile)
    if note:
        raise InputError(note)
    todo = [
        (page.selected.id, page.selected.image_path, page.text, page.position)
        for page in project.pages
        if page.selected is not None
    ]
    if not todo:
        return None
    if judge_jobs(project_id):
        raise InputError("The book is being judged right now: wait for it first.")
    total = len(todo)

    def run(ctx) -> None:
        ctx.progress(0, total, message="Getting the judge model ready…")
        from engine.scoring import open_scorer

        with open_scorer(profile, "judge") as judge:
            for done, (picture_id, path, text, position) in enumerate(todo, start=1):
                ctx.check_cancel()
                image = load_image(path, name=f"page {position + 1}'s picture").image
                ctx.emit((picture_id, round(judge.score([image], [text])[0], 4), judge.model_id))
                ctx.progress(done, total, message=f"Judged {done} of {total} pages")

    def save(result: tuple[int, float, str]) -> None:
        picture_id, value, model = result
        try:
            lib.add_picture_scores(picture_id, {"judge": value}, judge_model=model)
        except NotFound:
            log.info("judge score of picture %s dropped: the picture is gone", picture_id)

    return get_worker().submit(
        run,
        kind=KIND_JUDGE,
        label=f"Judging “{project.title}”",
        total=total,
        on_result=save,
        meta={"project_id": project_id},
    )


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


def proposals(project: ProjectView, name: str) -> list[ProposalView]:
    """The pictures drawn for this character's reference that the library keeps, oldest first (in_use: the one
    that is its reference now); [] when it has none or there is no such character."""
    wanted = (name or "").strip().casefold()
    character = next((c for c in project.characters if c.name.casefold() == wanted), None)
    return list(character.proposals) if character is not None else []


def use_proposal(lib: Library, project_id: int, expected_version: int, name: str, index: int) -> ProjectView:
    """Make another of the kept proposals the character's reference, with the settings it was drawn with (how
    closely pages follow it stays as it was). One undoable step."""
    _character(lib.get_project(project_id), name)
    return lib.use_reference_proposal(project_id, expected_version, name, int(index))


def remove_proposal(lib: Library, project_id: int, expected_version: int, name: str, index: int) -> ProjectView:
    """Take one drawn picture off the character's offer (Undo brings it back); the reference in use stays."""
    _character(lib.get_project(project_id), name)
    return lib.remove_reference_proposal(project_id, expected_version, name, int(index))


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
    count = max(1, min(MAX_CANDIDATES, int(count)))
    score = can_score(profile)
    if not score:
        count = 1
    who, description, style, base_seed = character.name, character.description, project.style, seeds.new_seed()

    def run(ctx) -> None:
        picture_model_progress(ctx, profile)
        from engine.illustrate import illustrate_pages

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
        if not drawn:
            return  # stopped before the first picture
        offered = [
            (
                to_png_bytes(p.image),
                {**p.settings, "style": style, "profile": profile.name, "reference_of": who},
                None if p.metadata.get("clip_score") is None else round(float(p.metadata["clip_score"]), 4),
            )
            for p in drawn
        ]
        best = next((k for k, p in enumerate(drawn) if p.metadata.get("chosen")), 0)
        ctx.emit((offered, best))

    def save(result: tuple[list, int]) -> None:
        # All of them are kept with the character (the library, not memory): the person can take another later.
        offered, best = result
        job_write(lib, project_id, lambda p: lib.add_reference_proposals(p.id, p.version, who, offered, use=best))

    return get_worker().submit(
        run,
        kind=KIND_REFERENCE,
        label=f"A reference picture of {who}",
        total=1,
        on_result=save,
        meta={"project_id": project_id, "character": who},
    )


# ---------------------------------------------------------------- how closely pages follow a reference

_FOLLOW_KEY = {REFERENCE_SHARED_ATTENTION: "share_rate", REFERENCE_IP_ADAPTER: "ip_scale"}
_FOLLOW_DEFAULT = {REFERENCE_SHARED_ATTENTION: DEFAULT_SHARE_RATE, REFERENCE_IP_ADAPTER: DEFAULT_IP_SCALE}
_FOLLOW_RANGE = {REFERENCE_SHARED_ATTENTION: SHARE_RATE_RANGE, REFERENCE_IP_ADAPTER: IP_SCALE_RANGE}  # storage's limits


@dataclass(frozen=True)
class FollowControl:
    """The cast sheet's "How closely pages follow this picture" for one character, in the method's own terms."""

    method: str
    label: str
    value: float
    low: float
    high: float
    default: float
    step: float
    help: str


def follow_value(character: CharacterView, method: str) -> float:
    """How closely pages follow the character's reference with this method: the person's choice kept in the
    reference's settings, else the engine's default (share rate 0.5, IP-Adapter scale 0.6)."""
    value = (character.reference_settings or {}).get(_FOLLOW_KEY[method])
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        low, high = _FOLLOW_RANGE[method]
        return min(max(float(value), low), high)  # a hand-edited bundle cannot stop a draw with a wild value
    return _FOLLOW_DEFAULT[method]


def follow_control(profile: Profile, character: CharacterView) -> FollowControl | None:
    """The slider for how closely pages follow this character's reference picture with this profile, with words
    for the method it is used by; None when the reference is not used (no picture, or the profile cannot)."""
    method = reference_method(profile, character)
    if method == REFERENCE_SHARED_ATTENTION:
        return FollowControl(
            method=method,
            label="How closely pages follow this picture",
            value=follow_value(character, method),
            low=_FOLLOW_RANGE[method][0],
            high=_FOLLOW_RANGE[method][1],
            default=DEFAULT_SHARE_RATE,
            step=0.05,
            help=(
                "The share of this picture that each page looks at while it is drawn (shared attention: the "
                "picture is drawn again beside the page, and the page borrows that part of it). Higher keeps the "
                f"face, clothes and colours closer to the picture, and may copy its pose too; lower lets the page "
                f"follow its own words more; 0 ignores the picture. {DEFAULT_SHARE_RATE:g} is the usual setting. "
                "Higher takes a little longer to draw."
            ),
        )
    if method == REFERENCE_IP_ADAPTER:
        return FollowControl(
            method=method,
            label="How closely pages follow this picture",
            value=follow_value(character, method),
            low=_FOLLOW_RANGE[method][0],
            high=_FOLLOW_RANGE[method][1],
            default=DEFAULT_IP_SCALE,
            step=0.05,
            help=(
                "How strongly each page is pushed toward this picture (the IP-Adapter looks at the picture and "
                f"adds what it sees to the page's words). 0 ignores the picture; {DEFAULT_IP_SCALE:g} is the usual "
                "setting; above 1 pages copy the picture more and follow their own words less."
            ),
        )
    return None


def set_reference_follow(
    lib: Library, project_id: int, expected_version: int, name: str, method: str, value: float
) -> ProjectView:
    """Keep how closely pages follow the character's reference picture with this method (shared attention's
    share rate, 0..1, or the IP-Adapter's scale, 0..2) in the reference's settings. One undoable step; pages
    already drawn keep what they were drawn with (their settings record it), the next draw uses the new value."""
    if method not in _FOLLOW_KEY:
        raise InputError("Pages follow a reference picture by shared attention or by the IP-Adapter.")
    _character(lib.get_project(project_id), name)
    return lib.set_reference_strength(project_id, expected_version, name, **{_FOLLOW_KEY[method]: float(value)})


# ---------------------------------------------------------------- likeness across pages

LIKENESS_HELP = (
    "Likeness: how alike this character looks on the pages it is on. Each page's picture (the one in the book) "
    "is turned into a DINOv2 image embedding, a summary of what the picture shows; the figure is the mean cosine "
    "similarity of every pair of those pages' pictures, times 100 (100: they look identical to the model). Higher "
    "is more alike: compare the figure before and after a change (a reference picture, another draw). It compares "
    "whole pictures, so a shared background raises it too. It needs two pages with pictures; once measured, it is "
    "measured again after each draw of a page the character is on. The tiny profile's random-weight models give "
    "meaningless numbers."
)


def can_measure_likeness(profile: Profile) -> bool:
    """Whether the profile's consistency model (DINOv2-small) is set and on this computer."""
    return model_here(profile, "consistency")


def likeness_note(profile: Profile) -> str | None:
    """One sentence when likeness cannot be measured with this profile; None when it can."""
    return role_note(
        profile,
        "consistency",
        f"The '{profile.name}' profile has no model to measure how alike a character looks across pages.",
    )


def story_cast(project: ProjectView) -> dict[int, list[str]]:
    """page id -> the characters on that page (by name, pronoun or "the old keeper": engine.characters), read
    across the whole story, so a page drawn alone ("she" on page 3) gets the same characters as when the whole
    book is drawn (page 2 named her). Empty when the story has no characters."""
    return cast_by_page([(p.id, p.text) for p in project.pages], [(c.name, c.description) for c in project.characters])


def cast_by_page(pages: Sequence[tuple[int, str]], characters: Sequence[tuple[str, str]]) -> dict[int, list[str]]:
    """story_cast from the pages' (id, words), in reading order, and the characters' (name, description)."""
    if not characters or not pages:
        return {page_id: [] for page_id, _ in pages}
    present = page_characters([text for _, text in pages], list(characters))
    return {page_id: list(found) for (page_id, _), found in zip(pages, present)}


def character_pages(project: ProjectView, cast: dict[int, list[str]] | None = None) -> dict[str, list[int]]:
    """For each character, the positions of the story's pages it is on (story_cast, the resolver the draws use;
    given when the caller has it already)."""
    found: dict[str, list[int]] = {c.name: [] for c in project.characters}
    cast = story_cast(project) if cast is None else cast
    for page in project.pages:
        for name in cast.get(page.id, []):
            found.setdefault(name, []).append(page.position)
    return found


def _measured_pictures(
    project: ProjectView, cast: dict[int, list[str]] | None = None
) -> dict[str, list[tuple[int, str, Path]]]:
    """name -> (page position, picture SHA-256, path) of the picture in use on each of its pages that has one."""
    pages = {page.position: page for page in project.pages}
    out: dict[str, list[tuple[int, str, Path]]] = {}
    for name, positions in character_pages(project, cast).items():
        out[name] = [
            (position, pages[position].selected.image_path.stem, pages[position].selected.image_path)  # type: ignore[union-attr]
            for position in positions
            if pages[position].selected is not None
        ]
    return out


@dataclass(frozen=True)
class Likeness:
    """A character's likeness as the cast sheet shows it."""

    score: float | None  # None: not measured, or fewer than two pages with pictures
    pictures: int  # pictures it was measured on
    model: str
    current: bool  # measured on the pictures the pages have now
    text: str  # one line for the cast sheet


def likeness(project: ProjectView, character: CharacterView, cast: dict[int, list[str]] | None = None) -> Likeness:
    """The character's measured likeness, and whether its pages' pictures changed since. The cast sheet asks for
    every character on every run: it passes the story's cast it read once (story_cast)."""
    stored = character.likeness or {}
    if not stored:
        return Likeness(None, 0, "", False, "Likeness not measured yet.")
    now = [sha for _, sha, _ in _measured_pictures(project, cast).get(character.name, [])]
    score = stored.get("score")
    score = float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else None
    count = int(stored.get("pictures") or 0)
    current = list(stored.get("shas") or []) == now
    if score is None:
        text = f"Likeness needs two pages with pictures of {character.name} (measured on {count})."
    else:
        text = f"Likeness {score:.1f} across {count} pages"
    if not current:
        text += " · the pages' pictures changed since: measure again"
    return Likeness(score, count, str(stored.get("model") or ""), current, text)


def likeness_jobs(project_id: int, active_only: bool = True):
    return get_worker().jobs(kind=KIND_LIKENESS, active_only=active_only, project_id=project_id)


def measure_likeness(
    lib: Library, project_id: int, names: Sequence[str] | None = None, *, profile: Profile | None = None
) -> str | None:
    """Measure how alike each character (or those named) looks across the pages it is on, on the worker: the
    DINOv2 embeddings of those pages' pictures in use (engine.scoring.ConsistencyScorer). Each figure is kept with
    its character (not an undo step). Returns the job id, or None when no character is on a page with a picture."""
    project = lib.get_project(project_id)
    profile = profile or project_profile(project).profile
    note = likeness_note(profile)
    if note:
        raise InputError(note)
    wanted = None if names is None else {n.strip().casefold() for n in names}
    todo = {
        name: found
        for name, found in _measured_pictures(project).items()
        if found and (wanted is None or name.casefold() in wanted)
    }
    if not todo:
        return None
    if likeness_jobs(project_id):
        raise InputError("Likeness is being measured for this story right now: wait for it first.")
    total = len(todo)

    def run(ctx) -> None:
        ctx.progress(0, total, message="Getting the likeness model ready…")
        from engine.scoring import open_consistency

        with open_consistency(profile) as scorer:
            for done, (name, found) in enumerate(todo.items(), start=1):
                ctx.check_cancel()
                images = [load_image(path, name=f"page {position + 1}'s picture").image for position, _, path in found]
                score = scorer.score(images)
                ctx.emit(
                    (
                        name,
                        {
                            "score": None if score is None else round(float(score), 4),
                            "model": scorer.model_id,
                            "pictures": len(found),
                            "pages": [position + 1 for position, _, _ in found],
                            "shas": [sha for _, sha, _ in found],
                            "measured": datetime.now(UTC).isoformat(timespec="seconds"),
                        },
                    )
                )
                ctx.progress(done, total, message=f"Measured {done} of {total}")

    def save(result: tuple[str, dict]) -> None:
        name, measured = result
        try:
            lib.set_character_likeness(project_id, name, measured)
        except NotFound:
            log.info("likeness of %s dropped: the character or the story is gone", name)

    label = "Likeness of " + (next(iter(todo)) if total == 1 else f"{total} characters")
    return get_worker().submit(
        run, kind=KIND_LIKENESS, label=label, total=total, on_result=save, meta={"project_id": project_id}
    )


def remeasure_after_draw(lib: Library, project_id: int, page_ids: Sequence[int], profile: Profile) -> str | None:
    """After a draw: measure again the likeness of the characters on the drawn pages whose likeness was measured
    before (the person asked for it once; from then on it follows the pages). A job queued behind the draw; None
    when there is nothing to measure again. Never raises: a figure not refreshed says so on the cast sheet."""
    try:
        if not can_measure_likeness(profile):
            return None
        project = lib.get_project(project_id)
        drawn = {page.position for page in project.pages if page.id in set(page_ids)}
        on_them = {name for name, positions in character_pages(project).items() if drawn & set(positions)}
        names = [c.name for c in project.characters if c.likeness and c.name in on_them]
        return measure_likeness(lib, project_id, names, profile=profile) if names else None
    except UserError as exc:  # the story is gone, or a measure is already running
        log.info("likeness not measured again after a draw: %s", exc.message)
        return None
