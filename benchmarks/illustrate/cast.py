"""`python -m benchmarks.illustrate --cast`: what the cast features cost and give, on fixed stories and seeds.

For stories with recurring characters (STORIES), drawn with the profile's models:

* CLIP scores (ranker, torchmetrics' definition) of all candidates, of the chosen ones and of a random
  pick among each page's candidates (fixed seed), best of N with N = --candidates; and the judge's score of
  the chosen and of the random pick, so the choice is not graded by the model that made it;
* character consistency (DINOv2, engine.scoring) without references and with each reference method the
  profile has;
* seconds per page of each feature: plain drawing, scoring, best of N, references (shared attention at each
  share rate; the IP-Adapter where the profile has one);
* FLOPs of shared attention at share rates 0.25, 0.5 and 1.0 for 4 pages at 512 px on the full-size SD-Turbo
  UNet (counted on the meta device, no compute): the pages' extra attention alone, and with the reference
  row drawn beside them.

On random-weight models (the tiny profile, or the bench's full-size random models) every score is
meaningless and the report says so; the timings and the code paths are the real ones.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from core.requests import PageSpec
from core.seeds import page_seed
from engine.errors import InputError

STORIES: tuple[tuple[str, tuple[tuple[str, str], ...], tuple[str, ...]], ...] = (
    (
        "lighthouse",
        (("Mara", "a young girl with a yellow raincoat"), ("Tobin", "an old lighthouse keeper with a white beard")),
        (
            "Mara lived by the sea in a small blue house.",
            "Every morning she walked to the lighthouse.",
            "The old keeper waved from the tower.",
            "He showed Mara the great lamp.",
            "She polished the glass until it shone.",
            "That night Mara and Tobin watched the ships come home.",
        ),
    ),
    (
        "forest",
        (("Pip", "a small red fox with a green scarf"), ("Hoot", "a grey owl with round glasses")),
        (
            "Pip the fox ran into the forest.",
            "The fox found a hollow tree.",
            "Hoot sat on a branch above him.",
            "The owl read a book by moonlight.",
            "Pip climbed up to listen.",
            "They fell asleep under the stars.",
        ),
    ),
)
SHARE_RATES = (0.25, 0.5, 1.0)
MEANINGLESS = (
    "These models have random weights: every CLIP and consistency score here is meaningless; the timings "
    "and code paths are the real ones. Run with a downloaded profile (--cast-profile fast) for real scores."
)


def story_pages(base_seed: int = 19) -> list[tuple[str, list[tuple[str, str]], list[PageSpec]]]:
    out = []
    for s, (name, characters, texts) in enumerate(STORIES):
        pages = [PageSpec(key=i, text=t, seed=page_seed(base_seed + s, i)) for i, t in enumerate(texts)]
        out.append((name, list(characters), pages))
    return out


def shared_attention_flops(unet, size: int = 512, pages: int = 4, rates: Sequence[float] = SHARE_RATES) -> dict:
    """UNet FLOPs of one step for `pages` pages, plain and with shared attention at each rate (meta device)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from engine.references import SharedPlan, shared_attention

    side = size // 8

    def count(rows: int, plan: SharedPlan | None) -> float:
        with torch.device("meta"), FlopCounterMode(display=False) as counter, torch.no_grad():
            latents = torch.empty(rows, unet.config.in_channels, side, side)
            context = torch.empty(rows, 77, unet.config.cross_attention_dim)
            if plan is None:
                unet(latents, torch.tensor([999] * rows), encoder_hidden_states=context)
            else:
                with shared_attention(unet, plan):
                    unet(latents, torch.tensor([999] * rows), encoder_hidden_states=context)
        return float(counter.get_total_flops())

    plain = count(pages, None)
    out: dict[str, Any] = {"pages": pages, "size": size, "plain": plain, "rates": {}}
    for rate in rates:
        attention_only = count(pages + 1, SharedPlan([None] + [0] * pages, rate)) - count(
            pages + 1, SharedPlan([None] * (pages + 1), rate)
        )
        with_row = count(pages + 1, SharedPlan([None] + [0] * pages, rate))
        out["rates"][str(rate)] = {
            "extra_attention_pct": 100.0 * attention_only / plain,
            "with_reference_row_pct": 100.0 * (with_row - plain) / plain,
        }
    return out


def _timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - started


def run_cast_bench(
    profile_name: str = "tiny",
    *,
    candidates: int = 4,
    log: Callable[[str], None] = lambda s: None,
    count_flops: bool = True,
    stories: int | None = None,
    pages_per_story: int | None = None,
) -> dict:
    from engine.illustrate import chosen, draw_references, illustrate_pages
    from engine.profiles import TINY_PREFIX, get_profile
    from engine.scoring import bootstrap_mean, character_consistency, judge_book

    profile = get_profile(profile_name)
    if not 2 <= candidates <= 8:
        raise InputError("--candidates for the cast bench must be between 2 and 8.")
    random_weights = profile.model("illustrator").startswith(TINY_PREFIX) or profile.name == "tiny"
    books = [(n, c, p[: pages_per_story or None]) for n, c, p in story_pages()[: stories or None]]
    pages_total = sum(len(pages) for _, _, pages in books)
    seconds: dict[str, float] = {}
    all_scores: list[float] = []
    chosen_scores: list[float] = []
    random_scores: list[float] = []
    judge_chosen: list[float] = []
    judge_random: list[float] = []
    consistency: dict[str, dict[str, float | None]] = {"none": {}}
    pick = random.Random(19)

    def add(key: str, value: float) -> None:
        seconds[key] = seconds.get(key, 0.0) + value

    # Warm the cache (loading is not a feature's cost).
    log("Loading the models…")
    illustrate_pages(books[0][2][:1], profile, style="none", score=True)
    for name, characters, pages in books:
        log(f"Story '{name}': plain, scored, best of {candidates}…")
        plain, t = _timed(illustrate_pages, pages, profile, style="watercolor", characters=characters)
        add("plain", t)
        _, t = _timed(illustrate_pages, pages, profile, style="watercolor", characters=characters, score=True)
        add("scored", t)
        drawn, t = _timed(
            illustrate_pages, pages, profile, style="watercolor", characters=characters, candidates=candidates
        )
        add("best_of_n", t)
        best = chosen(drawn)
        randoms = [pick.choice([p for p in drawn if p.key == page.key]) for page in pages]
        all_scores += [p.metadata["clip_score"] for p in drawn]
        chosen_scores += [p.metadata["clip_score"] for p in best]
        random_scores += [p.metadata["clip_score"] for p in randoms]
        texts = [page.text for page in pages]
        judge_chosen += judge_book(profile, [p.image for p in best], texts)["scores"]
        judge_random += judge_book(profile, [p.image for p in randoms], texts)["scores"]
        cast = [p.metadata["characters"] for p in plain]
        for who, value in character_consistency(profile, [p.image for p in plain], cast).items():
            consistency["none"][f"{name}/{who}"] = value
        for method in profile.reference_methods():
            rates = SHARE_RATES if method == "shared_attention" else (None,)
            for rate in rates:
                label = f"{method}@{rate}" if rate is not None else method
                log(f"Story '{name}': references, {label}…")
                refs, _ = draw_references(
                    characters, profile, style="watercolor", base_seed=19, method=method, share_rate=rate or 0.5
                )
                with_refs, t = _timed(
                    illustrate_pages,
                    pages,
                    profile,
                    style="watercolor",
                    characters=characters,
                    references=refs,
                    cast=cast,
                )
                add(f"references:{label}", t)
                values = character_consistency(profile, [p.image for p in with_refs], cast)
                consistency.setdefault(label, {}).update({f"{name}/{who}": v for who, v in values.items()})
    per_page = {key: value / pages_total for key, value in seconds.items()}
    cost = {
        "scoring": per_page["scored"] - per_page["plain"],
        "best_of_n": per_page["best_of_n"] - per_page["plain"],
        **{k: v - per_page["plain"] for k, v in per_page.items() if k.startswith("references:")},
    }

    def mean_of(values: dict[str, float | None]) -> float | None:
        present = [v for v in values.values() if v is not None]
        return sum(present) / len(present) if present else None

    report = {
        "profile": profile.name,
        "illustrator": profile.model("illustrator"),
        "ranker": profile.model("ranker"),
        "judge": profile.model("judge"),
        "candidates": candidates,
        "pages": pages_total,
        "random_weights": random_weights,
        "note": MEANINGLESS if random_weights else "",
        "clip": {
            "all_candidates": bootstrap_mean(all_scores),
            "chosen": bootstrap_mean(chosen_scores),
            "random_pick": bootstrap_mean(random_scores),
            "judge_chosen": bootstrap_mean(judge_chosen),
            "judge_random_pick": bootstrap_mean(judge_random),
        },
        "consistency": {label: {"mean": mean_of(v), "per_character": v} for label, v in consistency.items()},
        "seconds_per_page": per_page,
        "cost_per_page": cost,
    }
    if count_flops:
        from benchmarks.illustrate.models import build_full_model

        log("Counting shared-attention FLOPs on the full-size SD-Turbo UNet (meta device)…")
        report["shared_attention_flops"] = shared_attention_flops(build_full_model("unet", device="meta"))
    return report


def render_cast(report: dict) -> str:
    def ci(s: dict) -> str:
        if s["mean"] is None:
            return "-"
        return f"{s['mean']:.2f} [{s['low']:.2f}, {s['high']:.2f}]"

    lines = [
        f"cast bench: profile {report['profile']} ({report['illustrator']}), {report['pages']} pages, "
        f"best of {report['candidates']}",
    ]
    if report["note"]:
        lines.append("NOTE: " + report["note"])
    clip = report["clip"]
    lines += [
        f"CLIP (ranker {report['ranker']}), mean [95% CI]: all {ci(clip['all_candidates'])}; "
        f"chosen {ci(clip['chosen'])}; random pick {ci(clip['random_pick'])}",
        f"CLIP (judge {report['judge']}): chosen {ci(clip['judge_chosen'])}; "
        f"random pick {ci(clip['judge_random_pick'])}",
    ]
    for label, value in report["consistency"].items():
        mean = "-" if value["mean"] is None else f"{value['mean']:.2f}"
        lines.append(f"consistency ({'no references' if label == 'none' else label}): {mean}")
    lines.append("seconds per page: " + ", ".join(f"{k} {v:.3f}" for k, v in report["seconds_per_page"].items()))
    lines.append(
        "cost per page over plain: " + ", ".join(f"{k} {v:+.3f} s" for k, v in report["cost_per_page"].items())
    )
    flops = report.get("shared_attention_flops")
    if flops:
        lines.append(
            f"shared attention FLOPs, {flops['pages']} pages at {flops['size']} px (SD-Turbo UNet, one step): "
            + "; ".join(
                f"rate {rate}: +{v['extra_attention_pct']:.1f} % attention, +{v['with_reference_row_pct']:.1f} % "
                "with the reference row"
                for rate, v in flops["rates"].items()
            )
        )
    return "\n".join(lines)


def cmd_cast_bench(args) -> int:
    import json
    from pathlib import Path

    log = (lambda s: None) if args.silent else (lambda s: print(s, file=sys.stderr, flush=True))
    report = run_cast_bench(
        args.cast_profile or "tiny",
        candidates=args.cast_candidates,
        log=log,
        stories=1 if args.quick else None,
    )
    print(render_cast(report))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


__all__ = ["STORIES", "cmd_cast_bench", "render_cast", "run_cast_bench", "shared_attention_flops"]
