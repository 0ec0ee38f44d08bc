"""`python -m engine caption ...` and `python -m engine tell ...`: pictures to captions to a story, no browser.

engine/__main__.py calls add_parsers(subparsers) and then args.func(args); each func returns an exit
code and lets UserError subclasses through for __main__ to print as one sentence.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.limits import (
    DEFAULT_AGE,
    DEFAULT_TEMPERATURE,
    DEFAULT_TONE,
    DEFAULT_WORDS,
    MAX_AGE,
    MIN_AGE,
    TONES,
)
from core.requests import check_story_request
from engine.imageio import LoadedImage, load_image


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    caption = subparsers.add_parser(
        "caption",
        help="describe pictures in a sentence each (JSON on stdout)",
        description="Describe each picture with the profile's captioning model.",
    )
    caption.add_argument("images", nargs="+", metavar="IMG", help="PNG, JPEG or WebP files")
    _common(caption)
    caption.add_argument("--prefix", default=None, help="start every caption with this text (e.g. 'a picture of')")
    caption.add_argument("--batch-size", type=int, default=8, help="pictures per model call (default 8)")
    caption.set_defaults(func=run_caption)

    tell = subparsers.add_parser(
        "tell",
        help="write a story from pictures, one passage per picture (JSON)",
        description="Caption each picture, then write one passage per picture, in order.",
    )
    tell.add_argument("images", nargs="+", metavar="IMG", help="1 to 12 PNG, JPEG or WebP files, in story order")
    _common(tell)
    tell.add_argument("--prefix", default=None, help="caption prefix (e.g. 'a picture of')")
    tell.add_argument("--hints", default="", help="what the story should be about (at most 1000 characters)")
    tell.add_argument("--tone", default=DEFAULT_TONE, choices=list(TONES), help=f"default: {DEFAULT_TONE}")
    tell.add_argument(
        "--age", type=int, default=DEFAULT_AGE, help=f"reader's age, {MIN_AGE} to {MAX_AGE} (default {DEFAULT_AGE})"
    )
    tell.add_argument(
        "--words", type=int, default=DEFAULT_WORDS, help=f"about this many words per picture (default {DEFAULT_WORDS})"
    )
    tell.add_argument("--seed", type=int, default=0, help="same seed, same story (default 0)")
    tell.add_argument(
        "--temperature",
        type=float,
        default=DEFAULT_TEMPERATURE,
        help=f"0 for always the same words, higher for more variety (default {DEFAULT_TEMPERATURE})",
    )
    tell.add_argument("--title", default=None, help="use this title instead of writing one")
    tell.set_defaults(func=run_tell)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default=None, help="model profile (default: settings or 'fast')")
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: detected)")


def _load_all(paths: list[str]) -> list[LoadedImage]:
    return [load_image(Path(p), name=Path(p).name) for p in paths]


def _print_json(data) -> None:
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    sys.stdout.flush()


def run_caption(args: argparse.Namespace) -> int:
    # Every input is checked before the models' libraries load (torch alone is hundreds of MB and seconds).
    loaded = _load_all(args.images)
    from engine.caption import Captioner
    from engine.profiles import get_profile

    captioner = Captioner(profile=get_profile(args.profile), device=args.device)
    captions = captioner.caption([item.image for item in loaded], prefix=args.prefix, batch_size=args.batch_size)
    _print_json(
        [
            {"file": path, "caption": text, "notes": item.notes}
            for path, item, text in zip(args.images, loaded, captions)
        ]
    )
    return 0


def run_tell(args: argparse.Namespace) -> int:
    # Every input is checked before the models' libraries load (torch alone is hundreds of MB and seconds).
    check_story_request(
        len(args.images),
        hints=args.hints,
        tone=args.tone,
        age=args.age,
        words_per_picture=args.words,
        temperature=args.temperature,
    )
    loaded = _load_all(args.images)
    from engine.caption import Captioner
    from engine.metrics import story_metrics
    from engine.profiles import get_profile
    from engine.storyteller import Storyteller

    profile = get_profile(args.profile)
    captions = Captioner(profile=profile, device=args.device).caption(
        [item.image for item in loaded], prefix=args.prefix
    )
    story = Storyteller(profile=profile, device=args.device).tell(
        captions,
        hints=args.hints,
        tone=args.tone,
        age=args.age,
        words_per_picture=args.words,
        temperature=args.temperature,
        seed=args.seed,
        title=args.title,
    )
    _print_json(
        {
            "captions": [
                {"file": path, "caption": text, "notes": item.notes}
                for path, item, text in zip(args.images, loaded, captions)
            ],
            "story": {
                "title": story.title,
                "passages": [
                    {"image": path, "caption": caption, "text": text}
                    for path, caption, text in zip(args.images, captions, story.passages)
                ],
                "settings": story.settings,
            },
            "metrics": story_metrics(captions, story.text),
        }
    )
    return 0
