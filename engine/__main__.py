"""python -m engine: segment, illustrate, caption, tell, fetch and bench without a browser."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.errors import UserError
from core.limits import MAX_CANDIDATES
from engine.errors import InputError


def read_story(path: str) -> str:
    file = Path(path)
    if not file.is_file():
        raise InputError(f"There is no story file at '{path}'.")
    from core.limits import MAX_STORY_CHARS

    if file.stat().st_size > MAX_STORY_CHARS * 4:
        raise InputError(f"'{path}' is too long: a story may have at most {MAX_STORY_CHARS:,} characters.")
    try:
        return file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"'{path}' is not UTF-8 text: save it as UTF-8 and try again.") from None


def plan_segments(text: str, args) -> tuple[str | None, list]:
    """The title line (if the story opens with one) and the segments of the story after it."""
    from engine.segment import segment_story, split_title

    title, body_start = split_title(text)
    segments = segment_story(text, sentences_per_segment=args.sentences, words_per_segment=args.words)
    if title is not None:
        segments = [s for s in segments if s.start >= body_start]
        if not segments:
            raise InputError("The story has a title but no text after it: add the story itself.")
    return title, segments


def cmd_segment(args) -> int:
    text = read_story(args.story)
    title, segments = plan_segments(text, args)
    json.dump({"title": title, "segments": [asdict(s) for s in segments]}, sys.stdout, ensure_ascii=False, indent=2)
    print()
    return 0


def _staging_for(out: Path) -> Path:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"'{out}' already exists and is not an empty folder: choose a new folder for the book.")
    out.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))


def _character(item: str) -> tuple[str, str]:
    name, sep, description = item.partition("=")
    name, description = " ".join(name.split()), " ".join(description.split())
    if not sep or not name:
        raise InputError(f'--character takes NAME=DESCRIPTION, as in --character "Pip=a small red fox"; not {item!r}.')
    return name, description


def _reference_image(item: str) -> tuple[str, Any]:
    from engine.imageio import load_image

    name, sep, path = item.partition("=")
    if not sep or not name.strip() or not path.strip():
        raise InputError(f"--reference-image takes NAME=PICTURE, as in --reference-image Pip=pip.png; not {item!r}.")
    return " ".join(name.split()), load_image(Path(path.strip())).image


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-") or "character"


def _segment_record(i: int, segment, present: list[str], records: dict, best, scene=None) -> dict:
    """A page in manifest.json: its chosen picture, the characters on it, its scene (with --scenes), and every
    candidate when there are more."""
    k = best.metadata.get("candidate", 0)
    record = records[(i, k)]
    settings = record["settings"]
    candidates = sorted((key[1], value) for key, value in records.items() if key[0] == i)
    return {
        "index": i,
        "text": segment.text,
        "start": segment.start,
        "end": segment.end,
        "characters": present,
        **({"scene": scene.text, "scene_source": scene.source} if scene is not None else {}),
        "prompt": settings["prompt"],
        "negative_prompt": settings["negative_prompt"],
        "seed": settings["seed"],
        "image": record["image"],
        "settings": settings,
        "clip_score": record["clip_score"],
        **({"judge_score": record["judge_score"]} if "judge_score" in record else {}),
        "reference": settings.get("reference"),
        "candidates": [
            {
                "candidate": n,
                "image": value["image"],
                "seed": value["settings"]["seed"],
                "clip_score": value["clip_score"],
                "chosen": n == k,
            }
            for n, value in candidates
        ]
        if len(candidates) > 1
        else [],
    }


def _write_scenes(pages, profile, characters, cast, style: str, seed: int) -> list:
    """--scenes: the profile's storyteller writes each page's scene (engine.scenes); a page it wrote nothing usable
    for is drawn from its own words, and the terminal says which."""
    from engine.scenes import describe_scenes

    print(f"Writing each page's scene with {profile.model('storyteller')}…", file=sys.stderr)
    scenes = describe_scenes([p.text for p in pages], profile, characters=characters, cast=cast, style=style, seed=seed)
    unusable = [str(i + 1) for i, scene in enumerate(scenes) if scene.source != "storyteller"]
    if unusable:
        print(
            f"The storyteller wrote nothing usable for page{'s' if len(unusable) > 1 else ''} {', '.join(unusable)}: "
            f"{'they are' if len(unusable) > 1 else 'it is'} drawn from the page's own words.",
            file=sys.stderr,
        )
    return scenes


def cmd_illustrate(args) -> int:
    from core.requests import PageSpec
    from core.seeds import new_seed, page_seed
    from engine.characters import page_characters
    from engine.device import pick_device
    from engine.illustrate import SpeedOptions, chosen, draft_by_default, draw_references, illustrate_pages
    from engine.profiles import get_profile
    from engine.prompts import get_style

    _quiet_diffusers()
    text = read_story(args.story)
    title, segments = plan_segments(text, args)
    style = get_style(args.style).key
    profile = get_profile(args.profile)
    changes = {
        k: v
        for k, v in {"steps": args.steps, "guidance": args.guidance, "width": args.width, "height": args.height}.items()
        if v is not None
    }
    profile = replace(profile, **changes)
    characters = [_character(item) for item in args.character or ()]
    setting = " ".join((args.setting or "").split())
    base_seed = new_seed() if args.seed is None else args.seed
    pages = [PageSpec(key=i, text=s.text, seed=page_seed(base_seed, i)) for i, s in enumerate(segments)]
    cast = page_characters([p.text for p in pages], characters) if characters else [[] for _ in pages]
    scenes = _write_scenes(pages, profile, characters, cast, style, base_seed) if args.scenes else None
    if scenes is not None:
        pages = [
            replace(page, prompt_override=scene.text) if scene.source == "storyteller" else page
            for page, scene in zip(pages, scenes)
        ]
    uploaded = dict(_reference_image(item) for item in args.reference_image or ())
    unknown = sorted(set(uploaded) - {name for name, _ in characters})
    if unknown:
        raise InputError(f"--reference-image names {', '.join(unknown)}, who is not among the --character list.")
    out = Path(args.out)
    staging = _staging_for(out)
    records: dict[tuple[int, int], dict] = {}
    latents: dict[str, object] = {}
    choice = pick_device()
    draft = draft_by_default(profile, choice) if args.draft is None else args.draft
    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="png") as pool:
            pending = []

            def on_image(result) -> None:
                k = result.metadata.get("candidate", 0)
                name = f"segment-{result.key:03d}.png" if k == 0 else f"segment-{result.key:03d}-candidate-{k}.png"
                records[(result.key, k)] = {
                    "settings": result.settings,
                    "image": name,
                    "clip_score": result.metadata.get("clip_score"),
                }
                if result.settings.get("draft") and result.latents is not None:
                    latents[name] = result.latents.contiguous()
                # PNG encoding and disk writes happen off the drawing thread.
                pending.append(pool.submit(result.image.save, staging / name, format="PNG"))
                print(f"  page {result.key + 1}/{len(pages)} drawn", file=sys.stderr)

            speed = SpeedOptions(preview=args.preview, **({"runtime": args.runtime} if args.runtime else {}))
            references, reference_records = {}, []
            if (args.reference or uploaded) and characters:
                print("Drawing the characters' reference pictures…", file=sys.stderr)
                references, _drawn = draw_references(
                    characters,
                    profile,
                    style=style,
                    base_seed=base_seed,
                    method=args.reference_method,
                    share_rate=args.share_rate,
                    scale=args.reference_scale,
                    uploaded=uploaded,
                    choice=choice,
                    speed=speed,
                )
                for name, ref in references.items():
                    image_name = f"reference-{_slug(name)}.png"
                    ref.image.save(staging / image_name, format="PNG")
                    reference_records.append({"name": name, "image": image_name, "settings": ref.to_settings()})
            steps = profile.draft_steps if draft else profile.steps
            print(
                f"Drawing {len(pages)} {'draft' if draft else 'final'} page{'s' if len(pages) != 1 else ''} with "
                f"{profile.model('illustrator')} ({steps} step{'s' if steps != 1 else ''}, "
                f"{profile.width}x{profile.height}, {choice.describe()}"
                + (f", {args.candidates} candidates each" if args.candidates > 1 else "")
                + ")…",
                file=sys.stderr,
            )
            pictures = illustrate_pages(
                pages,
                profile,
                style=style,
                characters=characters,
                setting=setting,
                choice=choice,
                speed=speed,
                on_image=on_image,
                candidates=args.candidates,
                score=args.score,
                references=references,
                cast=cast,
                draft=draft,
            )
            for future in pending:
                future.result()
        if latents:
            # Each draft's latent, so `python -m engine finish` decodes it without drawing it again.
            from safetensors.torch import save_file

            save_file(latents, str(staging / LATENTS_FILE))
        best = chosen(pictures)
        book_scores = {}
        if args.score or args.candidates > 1:
            from engine.scoring import CLIP_SCORE_DEFINITION, bootstrap_mean, judge_book

            book_scores = {
                "definition": CLIP_SCORE_DEFINITION,
                "ranker": {
                    "model": profile.model("ranker"),
                    "chosen": bootstrap_mean([p.metadata["clip_score"] for p in best]),
                    "all": bootstrap_mean([p.metadata["clip_score"] for p in pictures]),
                },
            }
            if args.judge:
                judged = judge_book(profile, [p.image for p in best], [p.text for p in pages])
                book_scores["judge"] = {"model": judged["model"], "chosen": judged["summary"]}
                for p, value in zip(best, judged["scores"]):
                    p.metadata["judge_score"] = value
                    records[(p.key, p.metadata["candidate"])]["judge_score"] = value
        consistency = {}
        if args.consistency and characters:
            from engine.scoring import character_consistency

            consistency = character_consistency(profile, [p.image for p in best], cast)
        manifest = {
            "format": "storybook-manifest",
            "version": 1,
            "title": args.title or title or Path(args.story).stem.replace("_", " ").title(),
            "author": args.author or "",
            "style": style,
            "profile": profile.name,
            "source_text": text,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "base_seed": base_seed,
            "characters": [{"name": name, "description": description} for name, description in characters],
            "setting": setting,
            "references": reference_records,
            "scores": book_scores,
            "consistency": consistency,
            "segments": [
                _segment_record(i, s, cast[i], records, best[i], None if scenes is None else scenes[i])
                for i, s in enumerate(segments)
            ],
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
        if out.exists():
            out.rmdir()
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    print(
        f"Wrote {len(pages)} pictures and manifest.json to {out} in {time.perf_counter() - started:.1f} s.",
        file=sys.stderr,
    )
    if draft:
        print(f"These are drafts: 'python -m engine finish {out}' finishes them.", file=sys.stderr)
    return 0


LATENTS_FILE = "draft-latents.safetensors"


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _book_references(book: Path, manifest: dict) -> dict:
    """The characters' reference pictures a book was drawn with (reference-NAME.png), by name."""
    from engine.imageio import load_image

    pictures = {}
    for entry in manifest.get("references") or ():
        try:
            name, image = entry["name"], entry["image"]
        except (KeyError, TypeError):
            raise InputError("This book's manifest lists a reference picture it does not name.") from None
        if Path(image).name != image or not (book / image).is_file():
            continue  # a draft drawn with it then cannot be drawn again; finish_drafts says so if it must
        pictures[name] = load_image(book / image).image
    return pictures


def cmd_finish(args) -> int:
    """Finish a book folder's drafts into full-decoder pictures, in place, picture by picture."""
    from engine.illustrate import finish_drafts
    from engine.imageio import to_png_bytes
    from engine.profiles import get_profile

    _quiet_diffusers()
    book = Path(args.book)
    manifest_path = book / "manifest.json"
    if not manifest_path.is_file():
        raise InputError(f"There is no book at '{book}': it must be a folder written by 'python -m engine illustrate'.")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        segments = manifest["segments"]
        drafts = [(s["image"], s["settings"]) for s in segments if s.get("settings", {}).get("draft")]
    except (ValueError, KeyError, TypeError):
        raise InputError(f"'{manifest_path}' is not a book manifest this version can read.") from None
    if not drafts:
        print("Every picture in this book is already final.", file=sys.stderr)
        return 0
    latents = None
    if args.method == "decode" and (book / LATENTS_FILE).is_file():
        from safetensors.torch import load_file

        latents = load_file(str(book / LATENTS_FILE))
    profile = get_profile(args.profile or manifest.get("profile"))
    reference_images = _book_references(book, manifest)
    by_image = {s["image"]: s for s in segments}
    started = time.perf_counter()
    print(f"Finishing {len(drafts)} draft{'s' if len(drafts) != 1 else ''} ({args.method})…", file=sys.stderr)

    def on_image(result) -> None:
        # Each finished picture replaces its draft at once, and the manifest says so: a stop halfway keeps both right.
        _write_atomically(book / result.key, to_png_bytes(result.image))
        by_image[result.key]["settings"] = result.settings
        _write_atomically(manifest_path, json.dumps(manifest, ensure_ascii=False, indent=2).encode("utf-8"))
        print(f"  {result.key} finished", file=sys.stderr)

    finish_drafts(
        drafts, profile, method=args.method, latents=latents, reference_images=reference_images, on_image=on_image
    )
    (book / LATENTS_FILE).unlink(missing_ok=True)
    print(f"Finished {len(drafts)} pictures in {time.perf_counter() - started:.1f} s.", file=sys.stderr)
    return 0


def cmd_fetch(args) -> int:
    """Download every model a profile names, so the studio can later run offline."""
    from engine.fetch import extra_models, fetch_profile
    from engine.profiles import get_profile

    profile = get_profile(args.profile)
    extras = extra_models(profile)
    if extras:
        print(
            "Scoring and reference models"
            + (
                " (fetched now):"
                if args.extras
                else " (not fetched: add --extras, or download them from the studio's Settings):"
            ),
            file=sys.stderr,
        )
        for role, ref, size, licence in extras:
            print(f"  {role}: {ref}, {size}, licence {licence}", file=sys.stderr)
    fetch_profile(
        profile, args.weights, say=lambda role, what: print(f"{role}: {what}", file=sys.stderr), extras=args.extras
    )
    print(f"Profile '{profile.name}' is ready to use offline.", file=sys.stderr)
    return 0


def cmd_profiles(args) -> int:
    from engine.device import pick_device
    from engine.profiles import ALL_ROLES, MODEL_INFO, PROFILES, get_profile, is_downloaded

    current = get_profile()
    rows = []
    for name, profile in PROFILES.items():
        rows.append(
            {
                "name": name,
                "current": name == current.name,
                "description": profile.description,
                "download_size": profile.download_size,
                "models": {
                    r: {
                        "ref": profile.model(r),
                        "downloaded": is_downloaded(profile.model(r)),
                        **(
                            {"size": MODEL_INFO[profile.model(r)][0], "licence": MODEL_INFO[profile.model(r)][1]}
                            if profile.model(r) in MODEL_INFO
                            else {}
                        ),
                    }
                    for r in ALL_ROLES
                    if profile.model(r)
                },
                "reference": profile.reference or "none",
            }
        )
    json.dump({"device": pick_device().describe(), "profiles": rows}, sys.stdout, indent=2)
    print()
    return 0


def build_parser() -> argparse.ArgumentParser:
    from engine import cli_story

    parser = argparse.ArgumentParser(prog="python -m engine", description="Storybook Studio's engine.")
    sub = parser.add_subparsers(dest="command", required=True)

    def segment_options(p):
        p.add_argument("--sentences", type=int, default=2, help="sentences per page (default 2)")
        p.add_argument("--words", type=int, default=None, help="about this many words per page instead")

    p = sub.add_parser("segment", help="print a story's pages as JSON")
    p.add_argument("story")
    segment_options(p)
    p.set_defaults(func=cmd_segment)

    p = sub.add_parser("illustrate", help="draw every page of a story into a folder with manifest.json")
    p.add_argument("story")
    p.add_argument("--out", required=True)
    p.add_argument("--profile")
    p.add_argument("--style", default="watercolor")
    p.add_argument("--seed", type=int)
    p.add_argument("--title")
    p.add_argument("--author")
    p.add_argument("--steps", type=int)
    p.add_argument("--guidance", type=float)
    p.add_argument("--width", type=int)
    p.add_argument("--height", type=int)
    p.add_argument("--preview", action="store_true", help="decode with the tiny autoencoder (the profile's steps)")
    p.add_argument(
        "--runtime",
        choices=("torch", "openvino"),
        help="who runs the UNet on a CPU: torch (the default) or OpenVINO, optional: pip install openvino "
        "(default: STORYBOOK_CPU_RUNTIME, else torch)",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--draft",
        dest="draft",
        action="store_const",
        const=True,
        default=None,
        help="quick drafts: the profile's draft steps and the tiny decoder (the default on a CPU for 'fast')",
    )
    mode.add_argument(
        "--final", dest="draft", action="store_const", const=False, help="final pictures: all steps, full decoder"
    )
    p.add_argument(
        "--character",
        action="append",
        metavar="NAME=DESCRIPTION",
        help="a character and what they look like, described on the pages that name them (repeatable)",
    )
    p.add_argument("--setting", metavar="TEXT", help="where and when the story happens, on every page's prompt")
    p.add_argument(
        "--candidates",
        type=int,
        default=1,
        help=f"draw N pictures per page (1-{MAX_CANDIDATES}) and keep the best CLIP score",
    )
    p.add_argument(
        "--scenes",
        action="store_true",
        help="the profile's storyteller writes each page's scene (who, where, what happens) and it is drawn from that",
    )
    p.add_argument("--score", action="store_true", help="score every picture against its page (CLIP, the ranker)")
    p.add_argument("--judge", action="store_true", help="also score the chosen pictures with the larger judge CLIP")
    p.add_argument(
        "--consistency", action="store_true", help="how alike each character looks across its pages (DINOv2)"
    )
    p.add_argument(
        "--reference",
        action="store_true",
        help="draw a reference picture of each character and draw its pages with it",
    )
    p.add_argument(
        "--reference-image",
        action="append",
        metavar="NAME=PICTURE",
        help="a character's own reference picture (IP-Adapter profiles only; repeatable)",
    )
    p.add_argument(
        "--reference-method",
        choices=("shared_attention", "ip_adapter"),
        help="how pages use a reference (default: the profile's own)",
    )
    p.add_argument("--share-rate", type=float, default=0.5, help="shared attention: share of reference tokens (0-1)")
    p.add_argument("--reference-scale", type=float, default=0.6, help="IP-Adapter: how strongly the reference counts")
    segment_options(p)
    p.set_defaults(func=cmd_illustrate)

    p = sub.add_parser("finish", help="turn a book folder's drafts into final pictures, in place")
    p.add_argument("book", help="a folder written by 'python -m engine illustrate --draft'")
    p.add_argument(
        "--method",
        choices=("decode", "refine"),
        default="decode",
        help="decode: each draft's own latent through the full decoder, the same picture (default); "
        "refine: image-to-image from the draft with the profile's steps, more detail, a changed picture",
    )
    p.add_argument("--profile", help="the profile to finish with (default: the one the book was drawn with)")
    p.set_defaults(func=cmd_finish)

    p = sub.add_parser("fetch", help="download a profile's models for offline use")
    p.add_argument("--profile")
    p.add_argument(
        "--weights",
        choices=("auto", "fp16", "full"),
        default="auto",
        help="the picture model's weights: fp16 (half the download; what a GPU loads), full (what a "
        "CPU loads), or auto: those this machine will load (default)",
    )
    p.add_argument(
        "--extras",
        action="store_true",
        help="also the scoring (CLIP ranker and judge, DINOv2) and reference (IP-Adapter) models",
    )
    p.set_defaults(func=cmd_fetch)

    p = sub.add_parser("profiles", help="list profiles, their models and whether they are downloaded")
    p.set_defaults(func=cmd_profiles)

    cli_story.add_parsers(sub)
    # The benchmark lives in benchmarks/ (the engine never imports it); this command-line program only
    # forwards `python -m engine bench ...` to it, as people have always typed it.
    from benchmarks.illustrate import cli as bench_cli

    bench_cli.add_parsers(sub)
    return parser


def quiet_libraries() -> None:
    """Keep the model libraries' progress bars, advice and deprecation notes off a person's terminal.

    Errors still come out as our one sentence; a variable the user set themselves is left alone.
    """
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if os.environ["DIFFUSERS_VERBOSITY"] == "error":
        for module in ("diffusers", "transformers", "huggingface_hub", "torch"):
            warnings.filterwarnings("ignore", category=UserWarning, module=module)
            warnings.filterwarnings("ignore", category=FutureWarning, module=module)


def _quiet_diffusers() -> None:
    # diffusers draws its loading bar whatever HF_HUB_DISABLE_PROGRESS_BARS says.
    if os.environ.get("DIFFUSERS_VERBOSITY") == "error":
        from diffusers.utils import logging as diffusers_logging

        diffusers_logging.disable_progress_bar()


def file_error_message(exc: OSError) -> str:
    """A sentence for a file or folder the CLI could not read or write (full disk, no permission...)."""
    where = f" '{exc.filename}'" if exc.filename else ""
    reason = exc.strerror or type(exc).__name__
    return f"Could not read or write{where}: {reason[:1].lower() + reason[1:]}."


def main(argv: list[str] | None = None) -> int:
    quiet_libraries()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`python -m engine segment story.txt | head`): nothing more to tell it.
        # stdout now points at devnull, so the interpreter's own flush at exit cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 1
    except OSError as exc:
        print(f"Error: {file_error_message(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Stopped; nothing half-written was left behind.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
