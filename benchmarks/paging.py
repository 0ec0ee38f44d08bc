"""How fast pages are planned for a story of the longest length we keep (engine.paging).

    python benchmarks/paging.py [--chars 199000] [--repeats 5]

Prints, for each case, the best and the median of the repeats, in wall time and in CPU time of this
process (CPU time is steadier on a busy machine). The story is seeded prose: sentences of 4 to 18
words drawn from a vocabulary of 3,000 made-up words with a Zipf-like frequency, 1 to 8 sentences a
paragraph, so word frequencies and paragraph lengths are those of real text and runs are repeatable.
"The sample story repeated" is the opposite: every sentence occurs hundreds of times.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable
from functools import partial
from pathlib import Path

from benchmarks import timing
from engine.paging import PageSpan, delete_page, move_page, plan_edit, plan_split

SAMPLE = Path(__file__).resolve().parent.parent / "assets" / "sample_story.txt"


def prose(chars: int, seed: int = 1) -> str:
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocabulary = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 9))) for _ in range(3000)]
    weights = [1 / (rank + 1) for rank in range(len(vocabulary))]

    def sentence() -> str:
        words = rng.choices(vocabulary, weights, k=rng.randint(4, 18))
        return words[0].capitalize() + " " + " ".join(words[1:]) + rng.choice(".!?.")

    paragraphs, total = ["A Title Line"], 0
    while total < chars:
        paragraph = " ".join(sentence() for _ in range(rng.randint(1, 8)))
        paragraphs.append(paragraph)
        total += len(paragraph) + 2
    return "\n\n".join(paragraphs)[:chars].rstrip()


def scattered(text: str, seed: int = 2) -> str:
    """300 words replaced and 100 three-word stretches deleted, all over the story."""
    rng = random.Random(seed)
    words = text.split(" ")
    for _ in range(300):
        words[rng.randrange(len(words))] = "zebra"
    for _ in range(100):
        at = rng.randrange(len(words))
        del words[at : at + 3]
    return " ".join(words)


def shuffled(text: str, seed: int = 3) -> str:
    rng = random.Random(seed)
    title, *paragraphs = text.split("\n\n")
    rng.shuffle(paragraphs)
    return "\n\n".join([title, *paragraphs])


def rotated(text: str, shift: int) -> str:
    """The text with every letter moved `shift` places on in the alphabet: the same shape, other words."""
    lower = "abcdefghijklmnopqrstuvwxyz"
    upper = lower.upper()
    table = str.maketrans(lower + upper, lower[shift:] + lower[:shift] + upper[shift:] + upper[:shift])
    return text.translate(table)


def _summary(plan: object) -> str:
    summary = getattr(plan, "summary", None)
    if not summary:
        return ""
    return (
        f"  pages {summary.pages}: kept {summary.kept}, new {summary.new}, merged {summary.merged}, "
        f"loose {summary.loose}, words changed {summary.words_changed}"
    )


def measure(label: str, run: Callable[[], object], repeats: int) -> None:
    timing.measure(label, run, repeats, width=44, digits=3, detail=_summary)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=199_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    for name, text in [
        ("seeded prose", prose(args.chars)),
        ("the sample story repeated", ((SAMPLE.read_text(encoding="utf-8") + "\n\n") * 400)[: args.chars].rstrip()),
    ]:
        first = plan_split(text, [])
        old = [PageSpan(n, p.start, p.end, first.words(n)) for n, p in enumerate(first.pages)]
        spans = [(p.start, p.end) for p in first.pages]
        print(f"\n{name}: {len(text):,} characters, {len(old)} pages of 2 sentences, title {first.title!r}")
        for label, run in cases(text, old, spans, first.title, args.chars, args.repeats):
            measure(label, run, args.repeats)


def cases(
    text: str, old: list[PageSpan], spans: list[tuple[int, int]], title: str | None, chars: int, repeats: int
) -> list:
    middle = len(text) // 2
    edited = {
        "one word typed": text[:middle] + "zebra " + text[middle:],
        "400 scattered edits": scattered(text),
        "reformatted paste (a line a sentence)": text.replace(". ", ".\n"),
        "paragraphs shuffled": shuffled(text),
        "a different story pasted": prose(chars, seed=9),
    }
    unseen = iter([rotated(text, n + 1) for n in range(repeats)])  # no paragraph of them cut before
    return [
        ("plan_split, first cut of a story never seen", lambda: plan_split(next(unseen), [])),
        ("plan_split, first cut again (sentences known)", partial(plan_split, text, [])),
        ("plan_split, cut again at 3 sentences", partial(plan_split, text, old, sentences=3)),
        ("plan_split, cut again at 25 words", partial(plan_split, text, old, words=25)),
        ("plan_split, paragraphs shuffled", partial(plan_split, edited["paragraphs shuffled"], old)),
        *[(f"plan_edit, {what}", partial(plan_edit, text, old, new, title=title)) for what, new in edited.items()],
        ("move_page, first page to the last", partial(move_page, text, spans, 0, len(spans) - 1)),
        ("delete_page, the middle page", partial(delete_page, text, spans, len(spans) // 2)),
    ]


if __name__ == "__main__":
    main()
