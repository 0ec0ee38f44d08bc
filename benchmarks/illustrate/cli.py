"""The command: `python -m benchmarks.illustrate ...`, also reached as `python -m engine bench ...`."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path


def cmd_bench(args) -> int:
    if args.cast:
        from benchmarks.illustrate.cast import cmd_cast_bench

        return cmd_cast_bench(args)
    from benchmarks.illustrate.report import render_table
    from benchmarks.illustrate.runner import run_bench

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        report = run_bench(args)
    print(render_table(report))
    for key, what in (("speedups", "end to end"), ("speedups_pictures", "pictures only")):
        if report.get(key):
            print(f"speed-up over naive, {what}: " + ", ".join(f"{k} {v:.2f}x" for k, v in report[key].items()))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2), encoding="utf-8")
        print(f"wrote {path}", file=sys.stderr)
    return 0


HELP = "time a fixed storybook job: naive versus our engine, stage by stage"
DESCRIPTION = (
    "Time a fixed storybook job (pictures for two stories, captions, a story) the seed "
    "project's way and our engine's way, in one process, interleaved after a warm-up."
)


def add_parsers(subparsers) -> None:
    """`bench` as a subcommand of another CLI (`python -m engine bench`)."""
    add_arguments(subparsers.add_parser("bench", help=HELP, description=DESCRIPTION))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--arch",
        choices=("tiny", "full"),
        default="tiny",
        help="tiny: the tinykit's models (CPU, CI). full: the fast profile's architectures at full "
        "size with random weights (built once, about 8 GB)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="CI smoke run: 1 repeat, 2 pictures at 2 steps, 1 caption, a 1-passage story",
    )
    p.add_argument("--repeats", type=int, default=None, help="timed rounds (default 5; --quick 1)")
    p.add_argument("--warmup", type=int, default=None, help="untimed rounds first (default 1)")
    p.add_argument("--images", type=int, default=None, help="pictures in all (default 12: two stories of six)")
    p.add_argument("--stories", type=int, default=None, help="stories the pictures are split into (default 2)")
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="naive and engine-same-steps steps (default 50 full, 20 tiny, 2 with --quick)",
    )
    p.add_argument("--guidance", type=float, default=None, help="naive and engine-same-steps guidance (default 7.5)")
    p.add_argument("--size", type=int, default=None, help="picture side in pixels (default 512 full, 64 tiny)")
    p.add_argument("--captions", type=int, default=None, help="pictures captioned and story passages (default 4)")
    p.add_argument(
        "--story-words",
        type=int,
        default=None,
        dest="story_words",
        help="words per story passage (default 35: about 300 tokens for 4 passages)",
    )
    p.add_argument(
        "--variants",
        default=None,
        help="comma-separated variants (default: all but engine-default:compile; GPU-only ones on GPU)",
    )
    p.add_argument("--device", default=None, help="cuda, mps or cpu (default: detected)")
    p.add_argument(
        "--dtype",
        default=None,
        help="the engine's number format (default: bf16 on CUDA; on a CPU bf16 where it races ahead of fp32)",
    )
    p.add_argument(
        "--models-dir",
        default=None,
        dest="models_dir",
        help="where the benchmark models are built and kept (default: the data folder)",
    )
    p.add_argument(
        "--equivalence",
        type=int,
        default=None,
        help="pictures drawn in fp32 and in the engine's reduced precision to compare (default 2; 0: skip)",
    )
    p.add_argument("--json", default=None, help="also write the full report as JSON here")
    p.add_argument("--silent", action="store_true", help="no progress lines on stderr")
    p.add_argument(
        "--cast",
        action="store_true",
        help="instead: the cast features on fixed stories (CLIP scores all/chosen/random, consistency with and "
        "without references, seconds per page of scoring, best of N and references; benchmarks/illustrate/cast.py)",
    )
    p.add_argument("--cast-profile", default=None, dest="cast_profile", help="profile for --cast (default tiny)")
    p.add_argument(
        "--cast-candidates", type=int, default=4, dest="cast_candidates", help="best of N for --cast (default 4)"
    )
    p.set_defaults(func=cmd_bench)


def main(argv: list[str] | None = None) -> int:
    """`python -m benchmarks.illustrate ...`, the same as `python -m engine bench ...`."""
    from core.errors import UserError

    parser = argparse.ArgumentParser(prog="python -m benchmarks.illustrate", description=DESCRIPTION)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
