"""Pages as spans of one story text: planning them after the text is cut or edited, and page edits.

Torch-free and storage-free: the studio's actions give it texts and spans and get back plans, which
they then save.

The model
---------
Pages are spans of ONE story text: page i is ``text[start_i:end_i]``, stripped of surrounding
whitespace and never empty. Spans are ordered and do not overlap. What lies between two pages (and
after the last) is whitespace only: the separators. What lies before the first page is whitespace,
or, when the book takes its title from the story's first line, that title line and whitespace. So
the story text is always the pages' words with their separators, and every character of the story
that is not whitespace (``str.isspace``) belongs to exactly one page, or to the title line.

Planning (what the storyboard calls when the story is cut again or edited)
---------------------------------------------------------------------------
- `plan_split(text, old_pages, ...)`: "Split into pages". The text is cut afresh (`split_title`,
  then `segment_story` on the rest) and the old pages are matched to the new ones by their words.
- `plan_edit(old_text, old_pages, new_text, ...)`: the story box was edited and saved. The page
  boundaries are kept: every old page's span is carried through the edit (see "Following an edit").

Both return a `PagePlan`: the new pages (`PlannedPage`), each saying which old page it continues
(`keep`: its row, pictures, seed and prompts), which old pages' pictures join it as further versions
(`absorb`), and whether its words differ from the kept page's (`changed`: "words changed since this
picture"); the old pages continued by none and absorbed by none (`loose`: their pictures go to the
loose-pictures tray, never deleted); the title line; and counts for honest messages (`PlanSummary`).
Every old key appears exactly once across keep, absorb and loose.

How words are compared
----------------------
A page's words are its tokens: each run of letters and digits (any script) is one token, each
Chinese or Japanese character is one token (those scripts put no spaces between words), all
case-folded; punctuation and whitespace do not count (a page with no letter or digit falls back to
its other visible characters). Two pages' token lists are aligned (``difflib.SequenceMatcher`` on
the lists, or one alignment of the whole story at once, see "Speed"); for an old page a and a new
page b, M is the number of tokens matched, and R the number matched in runs of at least 3 tokens in
a row (or the whole of a or b): a passage, not common words that happen to line up. The tokens and the
ratio below live in `core.words`, so storage sends a split page's pictures by the same measure.

- ratio = 2M / (|a| + |b|): "the same page": 1 when the words are the same, 0.9 after one word of
  ten changed;
- kept share = R / |a|: how much of the old page went into the new one (a merge);
- made share = R / |b|: how much of the new page came from the old one (a split).

Thresholds, and why:

- An old page and a new page are the same page (the new page may keep the old one) when
  ratio >= 0.5 (`SAME_PAGE`): a one-word change keeps the picture on any page of two words or more
  (a one-word page whose word changes is a different page), while a page rewritten beyond
  recognition shares few words in order and does not; or when kept share >= 0.8 (`CONTAINED`): the
  old page went (almost) whole into a bigger page, as in a merge; or when made share >= 0.8 and at
  least half of the old page's words survive somewhere (`SURVIVED`): the new page is a part of the
  old page, as in a split (the half keeps a page rewritten but for one phrase from being "split"
  into that phrase). Shares count runs only: with single words, "the", "and" and "was" alone would
  make half of a short page "contained" in any long one.
- Which old page each new page keeps is a global assignment that maximises the sum of ratios (ties
  go to the pair closest in position, so two pages with identical words each keep their own row), not
  a greedy left-to-right pass. In a merge the new page keeps the best-matching old page; in a split
  the old page is kept by the part most like its words (the first part, on a tie).
- An old page kept by none is absorbed by the new page holding most of its words when that is at
  least half of them (`ABSORBED`, kept share): its pictures join that page as further versions (when
  that page kept no row, it keeps this one instead). Otherwise it is loose.

Speed: the whole story's tokens are aligned at once: common prefix and suffix first, then a
patience diff (anchored on tokens found once on each side, else on tokens found equally often, at
most 4 times), difflib on small gaps, and, in long gaps where every token repeats (a passage
repeated over and over), a run of 8 tokens found near the same relative place. That gives M and R
for every pair of pages the alignment overlaps, in time about linear in the story's length. Pages
moved elsewhere are found afterwards: among old and new pages that the alignment left mostly
unmatched, identical pages pair in order, and the rest are compared pairwise with candidates that
share at least 30% of their token pairs; those pairs are assigned first. Assignment along the
alignment is exact (a weighted common-subsequence search over the pairs, which never cross there).
`benchmarks/paging.py` prints the figures for a story of 200,000 characters.

Following an edit (plan_edit)
-----------------------------
The edit is found as a diff of the two texts: the unchanged paragraphs at both ends are set aside
first (typical edits are local; the cut is made at the start of a paragraph), then the diff above
runs on the middle's tokens (words, CJK characters, other visible characters). Where a diff could
put an insertion or deletion at several places ("slept[. New line]." or "slept.[ New line.]"), it is
slid to the one with whitespace on both sides, as the writer made it. Each old page's start and end
are carried through the edit: inside unchanged text exactly; inside a replaced stretch in
proportion; text inserted exactly at a page's edge stays outside the page. Then:

- a page whose words were all deleted is loose; a page whose carried words are neither the same page
  as its old words (the rule above) nor hold at least half of them is loose too, and the text where
  it stood (with that of rewritten pages next to it) is cut into new pages at the sizes asked for;
- text that lies between the carried pages is placed: a word glued to a page (no space between; not
  in Chinese or Japanese, which put no spaces between words) joins it; text in the same paragraph as
  the page before it (or, at the start of a paragraph, the page after it) joins that page when it is
  at most a page's worth (it cuts into one page at the sizes asked for); other text, such as a new
  paragraph typed between pages or at the end, is cut into new pages with `segment_story` at those
  sizes; a new page with no letter or digit joins its neighbour, as in the segmenter, and pages the
  edit left touching inside a word (the text between them deleted) become one page;
- paragraph breaks typed inside a page do not split it;
- the title line (``title`` given): the first line of the new text is the title when the old title
  line's words are carried onto it and no page starts on it; an edit of that line changes the title;
  deleting it (or writing other text above it, or joining it to the first page) leaves no title line
  and its words, if any, are placed like any other text;
- finally old pages that ended loose are matched by their words against the pages that can hold
  them (new pages, and pages whose words changed), so a passage cut and pasted elsewhere keeps its
  picture, and absorbed as above.

Page edits (boundaries and words; the storyboard calls these for one page)
--------------------------------------------------------------------------
All take the text and its pages' spans (objects with ``start``/``end``, or (start, end) pairs) and
return the new text and the new spans, as ``Span`` pairs in page order.

- `move_page(text, pages, index, to)`: the page swaps places with its neighbour, step by step.
  Separators stay where they are: only words move. So pages inside one paragraph move as sentences
  ("A1. A2." becomes "A2. A1." with the single space where it was), paragraph breaks stay where the
  author put them, and moving a page down then up gives back the exact text. A page moved across a
  paragraph break trades places with its neighbour, each taking the other's place in the paragraphs.
- `delete_page(text, pages, index)`: the page leaves with the separator that belongs to it: the one
  that joins it to a page of its own paragraph (the one after it if the next page shares its
  paragraph, else the one before it if the previous page does); a page that is a paragraph of its own
  takes the paragraph break after it (the last page, the one before it). So deleting never moves a
  page into another paragraph. It returns what it took out (`RemovedPage`), which `insert_page` puts
  back: deleting a page and inserting it again at the same index gives back the exact text (also for
  pages with no space between them, as Chinese and Japanese pages often are).
- `edit_page(text, pages, index, words)`: the page's words change in the story text at exactly that
  place; the spans after it shift.
- `merge_pages(text, pages, index)`, `split_page(text, pages, index, at)`: boundary changes only (the
  text is unchanged); `split_points(words)` says where a page can be split.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any, NamedTuple

from core.errors import InputError
from core.words import has_words, word_tokens
from engine.segment import (
    CJK_CHARS,
    PARAGRAPH_BREAK,
    check_options,
    check_text,
    has_paragraph_break,
    paragraph_spans,
    segment_story,
    split_title,
)

SAME_PAGE = 0.5  # ratio at or above which two pages are the same page, edited
CONTAINED = 0.8  # share of a page's words that makes it a part of another (split) or a whole inside it (merge)
ABSORBED = 0.5  # share of an unkept old page's words that a new page must hold to take its pictures
SURVIVED = 0.5  # share of an old page's words that must survive for a part of it to keep it
_ORPHAN = 0.5  # pages with less than this share aligned are looked for elsewhere (moved text)
_TIE = 1e-6  # how much a pair's distance in position weighs against its ratio: ties only
_RUN = 3  # matched tokens in a row that count as the same passage rather than common words
_POSITION_RUN = 8  # tokens in a row that anchor a repetitive gap by position
_SMALL_DIFF = 10_000  # largest gap (len(a) * len(b) tokens) handed to difflib when no anchor is left
_CANDIDATES = 16  # pages compared pairwise for each unmatched old page
_SHARED_PAIRS = 0.3  # share of token pairs (of the smaller page) a candidate must have in common
_POSTING_CAP = 64  # a token on more unmatched pages than this does not suggest candidates

_DIFF_TOKEN = re.compile(rf"[{CJK_CHARS}]|[^\W_{CJK_CHARS}]+|\S")
_LINE_END = re.compile(r"[\r\n\u2028\u2029]")
_NOT_SPACE = re.compile(r"\S")
# Characters that glue to a page when typed against it: not spaces, and not Chinese or Japanese
# (letters, punctuation such as 。, full-width forms), which are written without spaces anyway.
_GLUED = re.compile(rf"[^\s{CJK_CHARS}\u3000-\u303f\uff00-\uffef]+")


# ------------------------------------------------------------------------------ what goes in and out


@dataclass(frozen=True)
class PageSpan:
    """An existing page as the planner sees it."""

    key: int  # the page's id
    start: int
    end: int
    text: str  # its words as stored: normally old_text[start:end]; may differ in legacy data


@dataclass(frozen=True)
class PlannedPage:
    """One page of a plan: text[start:end] are its words (stripped, never empty)."""

    start: int
    end: int
    keep: int | None  # key of the existing page this page continues (its row, pictures, seed, prompts); None: new
    absorb: tuple[int, ...] = ()  # keys of other existing pages whose pictures join this page as further versions
    changed: bool = False  # its words differ from the kept page's words (whitespace aside)


@dataclass(frozen=True)
class PlanSummary:
    """Counts for honest messages ("8 pages: 7 kept their pictures, 1 picture is in the loose pictures tray")."""

    pages: int  # pages in the plan
    kept: int  # pages that continue an existing page (its row)
    new: int  # pages that continue none
    merged: int  # existing pages absorbed into another page (their pictures become its versions)
    loose: int  # existing pages continued and absorbed by none (their pictures go to the tray)
    words_changed: int  # kept pages whose words differ from the kept page's


@dataclass(frozen=True)
class PagePlan:
    """How a story text maps onto pages after a split or an edit."""

    text: str  # the story text the spans point into
    pages: tuple[PlannedPage, ...]
    title: str | None  # the title line, when the first line is taken as the title
    body_start: int  # where the story after the title line begins (the first page), else 0
    loose: tuple[int, ...]  # keys of existing pages continued by no page and absorbed by none
    summary: PlanSummary

    def words(self, index: int) -> str:
        page = self.pages[index]
        return self.text[page.start : page.end]


class Span(NamedTuple):
    start: int
    end: int


@dataclass(frozen=True)
class RemovedPage:
    """What `delete_page` took out of the story, for `insert_page` to put back."""

    words: str
    separator: str | None  # the separator that left with it; None when it was the only page
    before: bool  # the separator stood before the words (True) or after them (False)
    at: int  # where in the remaining text the words and separator were taken out


# ------------------------------------------------------------------------------ comparing words


def _same_words(a: str, b: str) -> bool:
    return a == b or a.split() == b.split()


class _Common(NamedTuple):
    """Tokens two pages have in common: all matched ones, and those in runs long enough to count as
    the same passage (3 tokens or more, or a whole page), which alone show a merge or a split."""

    all: int
    runs: int


def _run_counts(run: int, len_old: int, len_new: int) -> bool:
    return run >= _RUN or run == len_old or run == len_new


def _common_tokens(a: list, b: list) -> _Common:
    if a == b:
        return _Common(len(a), len(a))
    blocks = SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks()
    return _Common(
        sum(block.size for block in blocks),
        sum(block.size for block in blocks if block.size and _run_counts(block.size, len(a), len(b))),
    )


def _longest_increasing(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The longest chain of pairs increasing in both members (pairs come sorted by the first)."""
    tails: list[int] = []  # tails[k]: smallest second member ending a chain of length k + 1
    tail_at: list[int] = []
    back = [-1] * len(pairs)
    for n, (_, j) in enumerate(pairs):
        k = bisect.bisect_left(tails, j)
        if k == len(tails):
            tails.append(j)
            tail_at.append(n)
        else:
            tails[k] = j
            tail_at[k] = n
        back[n] = tail_at[k - 1] if k else -1
    chain, n = [], tail_at[-1] if tail_at else -1
    while n >= 0:
        chain.append(pairs[n])
        n = back[n]
    return chain[::-1]


def _anchors(
    a: Sequence[Hashable], alo: int, ahi: int, b: Sequence[Hashable], blo: int, bhi: int
) -> list[tuple[int, int]]:
    """Pairs (i, j) with a[i] == b[j] to split a gap at: tokens found once on each side (patience
    diff), else tokens found equally often (at most 4 times) on each side, paired in order."""
    count_a = Counter(a[alo:ahi])
    count_b = Counter(b[blo:bhi])
    once = {token for token, n in count_b.items() if n == 1 and count_a.get(token) == 1}
    if once:
        where_b = {b[j]: j for j in range(blo, bhi) if b[j] in once}
        return _longest_increasing([(i, where_b[a[i]]) for i in range(alo, ahi) if a[i] in where_b])
    even = {token for token, n in count_b.items() if n <= 4 and count_a.get(token) == n}
    if not even:
        return []
    seen: dict[Hashable, list[int]] = defaultdict(list)
    for j in range(blo, bhi):
        if b[j] in even:
            seen[b[j]].append(j)
    taken: Counter = Counter()
    pairs = []
    for i in range(alo, ahi):
        token = a[i]
        if token in even:
            pairs.append((i, seen[token][taken[token]]))
            taken[token] += 1
    return _longest_increasing(pairs)


def _anchor_by_position(
    a: Sequence[Hashable], alo: int, ahi: int, b: Sequence[Hashable], blo: int, bhi: int
) -> tuple[int, int, int] | None:
    """A run of _POSITION_RUN tokens of a found in b near the same relative place, for long gaps in
    which every token repeats (a story made of a repeated passage): there only position tells the
    copies apart. Tries a few places around the middle of the gap; None when none is found nearby."""
    len_a, len_b = ahi - alo, bhi - blo
    n = _POSITION_RUN
    if len_a < n or len_b < n:
        return None
    window = max(64, len_b // 8)
    for step in (0, 1, -1, 2, -2, 3, -3):
        i = alo + len_a // 2 + step * (len_a // 16) - n // 2
        if not alo <= i <= ahi - n:
            continue
        run = list(a[i : i + n])
        guess = blo + (i - alo) * len_b // len_a
        best = None
        for j in range(max(blo, guess - window), min(bhi - n, guess + window) + 1):
            if b[j] == run[0] and list(b[j : j + n]) == run and (best is None or abs(j - guess) < abs(best - guess)):
                best = j
        if best is not None:
            return i, best, n
    return None


def matching_blocks(a: Sequence[Hashable], b: Sequence[Hashable]) -> list[tuple[int, int, int]]:
    """Runs (i, j, n) with a[i:i + n] == b[j:j + n], increasing in i and j: an alignment of a and b.

    Fast on long, similar sequences (a story and its edited version), unlike difflib alone.
    """
    blocks: list[tuple[int, int, int]] = []
    stack = [(0, len(a), 0, len(b))]
    while stack:
        alo, ahi, blo, bhi = stack.pop()
        n = 0
        while alo + n < ahi and blo + n < bhi and a[alo + n] == b[blo + n]:
            n += 1
        if n:
            blocks.append((alo, blo, n))
            alo, blo = alo + n, blo + n
        n = 0
        while ahi - n > alo and bhi - n > blo and a[ahi - n - 1] == b[bhi - n - 1]:
            n += 1
        if n:
            blocks.append((ahi - n, bhi - n, n))
            ahi, bhi = ahi - n, bhi - n
        if alo == ahi or blo == bhi:
            continue
        anchors = _anchors(a, alo, ahi, b, blo, bhi)
        if anchors:
            i0, j0 = alo, blo
            for i, j in anchors:
                stack.append((i0, i, j0, j))
                blocks.append((i, j, 1))
                i0, j0 = i + 1, j + 1
            stack.append((i0, ahi, j0, bhi))
        elif (ahi - alo) * (bhi - blo) <= _SMALL_DIFF:
            matcher = SequenceMatcher(None, a[alo:ahi], b[blo:bhi], autojunk=False)
            blocks.extend((alo + i, blo + j, size) for i, j, size in matcher.get_matching_blocks() if size)
        else:
            found = _anchor_by_position(a, alo, ahi, b, blo, bhi)
            if found is not None:  # else a long stretch with nothing to anchor on stays one replaced stretch
                i, j, n = found
                blocks.append(found)
                stack.extend([(alo, i, blo, j), (i + n, ahi, j + n, bhi)])
    blocks.sort()
    merged: list[tuple[int, int, int]] = []
    for i, j, n in blocks:
        if merged and merged[-1][0] + merged[-1][2] == i and merged[-1][1] + merged[-1][2] == j:
            merged[-1] = (merged[-1][0], merged[-1][1], merged[-1][2] + n)
        else:
            merged.append((i, j, n))
    return merged


# ------------------------------------------------------------------------------ matching old pages to new


@dataclass
class _Match:
    keep: dict[int, int]  # new index -> old index
    absorb: dict[int, list[int]]  # new index -> old indices
    loose: list[int]  # old indices


def _bigrams(tokens: list[str]) -> set[tuple[str, str]]:
    return set(itertools.pairwise(tokens)) if len(tokens) > 1 else {(tokens[0], "")}


def _overlaps(old: list[list[str]], new: list[list[str]]) -> tuple[dict[tuple[int, int], _Common], set]:
    """Tokens in common for pairs of pages: from one alignment of all old tokens with all new tokens,
    then pairwise for pages that alignment left mostly unmatched (moved text), with candidates that
    share token pairs. Returns the counts and the pairs found pairwise."""
    a = [token for tokens in old for token in tokens]
    b = [token for tokens in new for token in tokens]
    owner_a = [i for i, tokens in enumerate(old) for _ in tokens]
    owner_b = [j for j, tokens in enumerate(new) for _ in tokens]
    ends_a = list(itertools.accumulate(len(tokens) for tokens in old))
    ends_b = list(itertools.accumulate(len(tokens) for tokens in new))
    matched: dict[tuple[int, int], int] = defaultdict(int)
    in_runs: dict[tuple[int, int], int] = defaultdict(int)
    for i, j, n in matching_blocks(a, b):
        while n:
            oi, nj = owner_a[i], owner_b[j]
            run = min(n, ends_a[oi] - i, ends_b[nj] - j)
            matched[oi, nj] += run
            if _run_counts(run, len(old[oi]), len(new[nj])):
                in_runs[oi, nj] += run
            i, j, n = i + run, j + run, n - run
    common = {pair: _Common(m, in_runs.get(pair, 0)) for pair, m in matched.items()}
    aligned_old: Counter = Counter()
    aligned_new: Counter = Counter()
    for (i, j), c in common.items():
        aligned_old[i] += c.runs
        aligned_new[j] += c.runs
    lost_old = [i for i, tokens in enumerate(old) if tokens and aligned_old[i] < _ORPHAN * len(tokens)]
    lost_new = [j for j, tokens in enumerate(new) if tokens and aligned_new[j] < _ORPHAN * len(tokens)]
    pairwise: set[tuple[int, int]] = set()
    # Identical pages first, in order (the first unmatched copy with the first): in repetitive text
    # their words are too common for the candidates below.
    same: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for j in lost_new:
        same[tuple(new[j])].append(j)
    paired_new: set[int] = set()
    unpaired_old = []
    for i in lost_old:
        copies = same.get(tuple(old[i]))
        if copies:
            j = copies.pop(0)
            common[i, j] = _Common(len(old[i]), len(old[i]))
            pairwise.add((i, j))
            paired_new.add(j)
        else:
            unpaired_old.append(i)
    lost_old, lost_new = unpaired_old, [j for j in lost_new if j not in paired_new]
    if lost_old and lost_new:
        postings: dict[tuple[str, str], list[int]] = defaultdict(list)
        sizes: dict[int, int] = {}
        for j in lost_new:
            pairs = _bigrams(new[j])
            sizes[j] = len(pairs)
            for pair in pairs:
                postings[pair].append(j)
        for i in lost_old:
            pairs = _bigrams(old[i])
            shared: Counter = Counter()
            for pair in pairs:
                pages = postings.get(pair, ())
                if len(pages) <= _POSTING_CAP:
                    shared.update(pages)
            for j, n in shared.most_common(_CANDIDATES):
                if n < _SHARED_PAIRS * min(len(pairs), sizes[j]):
                    break  # a few common word pairs ("of the") are no sign of the same passage
                found = _common_tokens(old[i], new[j])
                before = common.get((i, j))
                if before is None or found.runs > before.runs:
                    common[i, j] = found
                    pairwise.add((i, j))
    return common, pairwise


def _eligible(c: _Common, len_old: int, len_new: int, survived: float) -> bool:
    """Whether an old and a new page are the same page (see the module notes)."""
    return c.all > 0 and (
        2 * c.all >= SAME_PAGE * (len_old + len_new)
        or c.runs >= CONTAINED * len_old
        or (c.runs >= CONTAINED * len_new and survived >= SURVIVED)
    )


def _best_monotone(edges: list[tuple[int, int, float]], size: int) -> list[tuple[int, int]]:
    """The heaviest set of pairs (i, j) increasing in both i and j: a weighted common subsequence."""
    edges = sorted(edges, key=lambda e: (e[0], -e[1]))
    tree_value = [0.0] * (size + 1)  # Fenwick tree over j: best chain ending at a j' <= j
    tree_edge = [-1] * (size + 1)
    back = [-1] * len(edges)
    value = [0.0] * len(edges)
    for n, (_, j, w) in enumerate(edges):
        best, best_edge, k = 0.0, -1, j  # chains ending at j' < j, that is j' <= j - 1 (tree is 1-based)
        while k > 0:
            if tree_value[k] > best:
                best, best_edge = tree_value[k], tree_edge[k]
            k -= k & -k
        value[n], back[n] = best + w, best_edge
        k = j + 1
        while k <= size:
            if value[n] > tree_value[k]:
                tree_value[k], tree_edge[k] = value[n], n
            k += k & -k
    if not edges:
        return []
    n = max(range(len(edges)), key=lambda x: value[x])
    chain = []
    while n >= 0:
        chain.append((edges[n][0], edges[n][1]))
        n = back[n]
    return chain[::-1]


def _match(old: list[list[str]], new: list[list[str]], *, fixed: frozenset[int] = frozenset()) -> _Match:
    """Which new page keeps which old page, which absorbs which, which old pages are loose.

    New pages in `fixed` keep no old page here (their row is settled) but may absorb.
    """
    common, pairwise = _overlaps(old, new)
    starts_old = [0, *itertools.accumulate(len(t) for t in old)]
    starts_new = [0, *itertools.accumulate(len(t) for t in new)]
    total_old, total_new = max(1, starts_old[-1]), max(1, starts_new[-1])
    survived: Counter = Counter()
    for (i, _), c in common.items():
        survived[i] += c.runs
    weight: dict[tuple[int, int], float] = {}
    for (i, j), c in common.items():
        distance = abs(starts_old[i] / total_old - starts_new[j] / total_new)
        weight[i, j] = 2 * c.all / (len(old[i]) + len(new[j])) - _TIE * distance
    eligible = {
        (i, j)
        for (i, j), c in common.items()
        if j not in fixed and _eligible(c, len(old[i]), len(new[j]), min(1.0, survived[i] / len(old[i])))
    }
    keep: dict[int, int] = {}
    kept: set[int] = set()
    best_aligned: dict[int, float] = defaultdict(float)  # per old page (i) and new page (~j)
    for i, j in eligible - pairwise:
        best_aligned[i] = max(best_aligned[i], weight[i, j])
        best_aligned[~j] = max(best_aligned[~j], weight[i, j])
    # Moved text first: pairs found pairwise cross the alignment, so they are settled on their own.
    for i, j in sorted(eligible & pairwise, key=lambda pair: (-weight[pair], pair)):
        if i in kept or j in keep or weight[i, j] < best_aligned[i] or weight[i, j] < best_aligned[~j]:
            continue
        keep[j] = i
        kept.add(i)
    rest = [(i, j, weight[i, j]) for i, j in eligible - pairwise if i not in kept and j not in keep]
    for i, j in _best_monotone(rest, len(new)):
        keep[j] = i
        kept.add(i)
    # Old pages kept by none: the page holding at least half of their words takes their pictures.
    holders: dict[int, list[int]] = defaultdict(list)
    for (i, j), c in common.items():
        if i not in kept and c.runs >= ABSORBED * len(old[i]):
            holders[i].append(j)
    absorb: dict[int, list[int]] = defaultdict(list)
    loose: list[int] = []
    for i in range(len(old)):
        if i in kept:
            continue
        if not holders.get(i):
            loose.append(i)
            continue
        j = max(holders[i], key=lambda j: (common[i, j].runs, weight[i, j], -j))
        if j not in keep and j not in fixed:
            keep[j] = i
            kept.add(i)
        else:
            absorb[j].append(i)
    return _Match(keep, dict(absorb), loose)


# ------------------------------------------------------------------------------ plans


def _sizes(sentences: int | None, words: int | None, language: str) -> tuple[int | None, int | None]:
    """The segment sizes as segment_story takes them (words win, as on the storyboard); refuses bad ones."""
    sizes = (None if words else sentences), words
    check_options(*sizes, language)
    return sizes


def _has_any(text: str, start: int, end: int) -> bool:
    return _NOT_SPACE.search(text, start, end) is not None


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _check_old(old_pages: Sequence[PageSpan]) -> list[PageSpan]:
    pages = list(old_pages)
    keys = [p.key for p in pages]
    if len(set(keys)) != len(keys):
        raise ValueError("the old pages must have distinct keys")
    return pages


def _summary(pages: Sequence[PlannedPage], loose: Sequence[int]) -> PlanSummary:
    kept = sum(1 for p in pages if p.keep is not None)
    return PlanSummary(
        pages=len(pages),
        kept=kept,
        new=len(pages) - kept,
        merged=sum(len(p.absorb) for p in pages),
        loose=len(loose),
        words_changed=sum(1 for p in pages if p.keep is not None and p.changed),
    )


def _finish(
    text: str,
    spans: Sequence[tuple[int, int]],
    keep: dict[int, int],
    absorb: dict[int, list[int]],
    loose: Sequence[int],
    old: Sequence[PageSpan],
    title: str | None,
    body_start: int,
) -> PagePlan:
    pages = []
    for n, (s, e) in enumerate(spans):
        i = keep.get(n)
        pages.append(
            PlannedPage(
                start=s,
                end=e,
                keep=old[i].key if i is not None else None,
                absorb=tuple(old[k].key for k in sorted(absorb.get(n, ()))),
                changed=i is not None and not _same_words(old[i].text, text[s:e]),
            )
        )
    loose_keys = tuple(old[i].key for i in sorted(loose))
    return PagePlan(text, tuple(pages), title, body_start, loose_keys, _summary(pages, loose_keys))


def plan_split(
    text: str,
    old_pages: Sequence[PageSpan],
    *,
    sentences: int | None = 2,
    words: int | None = None,
    take_title: bool = True,
    language: str = "auto",
) -> PagePlan:
    """ "Split into pages": cut `text` afresh and match the old pages to the new ones by their words.

    The old pages' spans are not used (they may be stale): only their words, and their order to
    break ties. Raises InputError for a story segment_story refuses (empty, too long, bad sizes).
    """
    old = _check_old(old_pages)
    check_text(text)
    per, budget = _sizes(sentences, words, language)
    title, body_start = split_title(text) if take_title else (None, 0)
    cut = segment_story(text, sentences_per_segment=per, words_per_segment=budget, language=language, start=body_start)
    spans = [(p.start, p.end) for p in cut]
    match = _match([word_tokens(p.text) for p in old], [word_tokens(p.text) for p in cut])
    return _finish(text, spans, match.keep, match.absorb, match.loose, old, title, body_start)


# ------------------------------------------------------------------------------ following an edit


def _edge_weight(ch: str) -> int:
    if ch in "\n\r\u2028\u2029\f\v\x85":
        return 2
    return 1 if ch.isspace() else 0


def _edges(text: str, spans: list[tuple[int, int]], x: int, y: int) -> int:
    """How well tokens x..y-1 of text stand apart: whitespace (better, a line break) before and after."""
    start, end = spans[x][0], spans[y - 1][1]
    return _edge_weight(text[start - 1] if start > 0 else "\n") + _edge_weight(text[end] if end < len(text) else "\n")


def _slide(
    blocks: list[tuple[int, int, int]],
    sides: tuple[Sequence[Hashable], Sequence[Hashable]],
    texts: tuple[str, str],
    spans: tuple[list[tuple[int, int]], list[tuple[int, int]]],
) -> list[tuple[int, int, int]]:
    """Slide each pure insertion or deletion along equal tokens to where it stands apart best.

    A diff may put an insertion at several places: "slept[. A new line]." and "slept.[ A new line.]"
    are the same edit. The one with whitespace on both sides is the one the writer made, and the one
    that keeps a page's closing full stop on the page.
    """
    len_a, len_b = len(sides[0]), len(sides[1])
    out = [(0, 0, 0), *blocks, (len_a, len_b, 0)]
    for n in range(len(out) - 1):
        (i1, j1, n1), (i2, j2, n2) = out[n], out[n + 1]
        gap_a, gap_b = (i1 + n1, i2), (j1 + n1, j2)
        if gap_a[0] == gap_a[1] and gap_b[0] < gap_b[1]:
            side, text, token_spans, (x, y) = sides[1], texts[1], spans[1], gap_b
        elif gap_b[0] == gap_b[1] and gap_a[0] < gap_a[1]:
            side, text, token_spans, (x, y) = sides[0], texts[0], spans[0], gap_a
        else:
            continue
        left = 0
        while left < n1 and side[x - 1 - left] == side[y - 1 - left]:
            left += 1
        right = 0
        while right < n2 and side[x + right] == side[y + right]:
            right += 1
        if not left and not right:
            continue
        best = max(range(-left, right + 1), key=lambda t: (_edges(text, token_spans, x + t, y + t), t == 0, t))
        if best:
            out[n] = (i1, j1, n1 + best)
            out[n + 1] = (i2 + best, j2 + best, n2 - best)
    return [block for block in out if block[2]]


def _common_prefix(a: str, b: str, limit: int) -> int:
    low, high = 0, limit  # a binary search on slices: each comparison runs in C
    while low < high:
        mid = (low + high + 1) // 2
        if a[:mid] == b[:mid]:
            low = mid
        else:
            high = mid - 1
    return low


def _common_suffix(a: str, b: str, limit: int) -> int:
    low, high = 0, limit
    while low < high:
        mid = (low + high + 1) // 2
        if a[len(a) - mid :] == b[len(b) - mid :]:
            low = mid
        else:
            high = mid - 1
    return low


class _Carry:
    """Carries page edges from the old text to the new one, through the edit between them.

    The unchanged paragraphs at both ends are left out of the diff: most edits are local. The cut is
    made at the start of a paragraph, so a diff of the middle never has to slide an insertion across it.
    """

    def __init__(self, old: str, new: str) -> None:
        limit = min(len(old), len(new))
        prefix = _common_prefix(old, new, limit)
        breaks = [m.end() for m in PARAGRAPH_BREAK.finditer(old, 0, prefix)]
        self.head = breaks[-1] if breaks else 0  # old[:head] == new[:head], up to a paragraph break
        suffix = _common_suffix(old, new, limit - self.head)
        first = PARAGRAPH_BREAK.search(old, len(old) - suffix)
        suffix = len(old) - first.end() if first else 0  # the same paragraphs end both texts
        self.old_stop, self.new_stop, self.shift = len(old) - suffix, len(new) - suffix, len(new) - len(old)
        self.a = [m.span() for m in _DIFF_TOKEN.finditer(old, self.head, self.old_stop)]
        self.b = [m.span() for m in _DIFF_TOKEN.finditer(new, self.head, self.new_stop)]
        a_tokens = _DIFF_TOKEN.findall(old, self.head, self.old_stop)
        b_tokens = _DIFF_TOKEN.findall(new, self.head, self.new_stop)
        self.a_starts = [s for s, _ in self.a]
        self.a_ends = [e for _, e in self.a]
        blocks = _slide(matching_blocks(a_tokens, b_tokens), (a_tokens, b_tokens), (old, new), (self.a, self.b))
        self._boundaries(blocks, len(self.a), len(self.b))

    def _boundaries(self, blocks: list[tuple[int, int, int]], len_a: int, len_b: int) -> None:
        """Map every token boundary k of the old middle (before token k) to one of the new middle: for
        a page's start (text inserted exactly there stays before the page) and for a page's end (it
        stays after the page). Inside a replaced stretch, boundaries map in proportion."""
        starts = [0] * (len_a + 1)
        ends = [0] * (len_a + 1)
        i0 = j0 = 0  # where the previous unchanged run ended
        for i, j, n in [*blocks, (len_a, len_b, 0)]:
            if i > i0:  # a[i0:i] was deleted or replaced by b[j0:j]
                for k in range(i0 + 1, i):
                    starts[k] = ends[k] = j0 + round((k - i0) * (j - j0) / (i - i0))
                starts[i0] = ends[i0] = j0
                first = i
            else:  # b[j0:j] was inserted at boundary i (nothing, when j == j0)
                starts[i], ends[i] = j, j0
                first = i + 1
            for k in range(first, i + n + 1):
                starts[k] = ends[k] = j + (k - i)
            i0, j0 = i + n, j + n
        self.starts, self.ends = starts, ends

    def start(self, at: int) -> int:
        """Where a page that began at `at` begins now (it may need stripping)."""
        if at < self.head:
            return at
        if at >= self.old_stop:
            return at + self.shift
        j = self.starts[bisect.bisect_left(self.a_starts, at)]
        return self.b[j][0] if j < len(self.b) else self.new_stop

    def end(self, at: int) -> int:
        """Where a page that ended at `at` ends now (it may need stripping)."""
        if at <= self.head:
            return at
        if at > self.old_stop:
            return at + self.shift
        j = self.ends[bisect.bisect_right(self.a_ends, at)]
        return self.b[j - 1][1] if j > 0 else self.head


class _Slot:
    """A page of an edit plan while it is being built: its span, the old page it continues, and the
    old pages whose pictures join it."""

    __slots__ = ("absorbed", "end", "keep", "start")

    def __init__(self, start: int, end: int, keep: int | None) -> None:
        self.start, self.end, self.keep = start, end, keep
        self.absorbed: list[int] = []


def _tiles(text: str, pages: Sequence[PageSpan]) -> bool:
    """Whether the pages are valid spans of `text`: ordered, stripped, whitespace between them and
    after the last (anything may stand before the first: a title line), words as stored."""
    previous = None
    for page in pages:
        s, e = page.start, page.end
        if not (isinstance(s, int) and isinstance(e, int) and 0 <= s < e <= len(text)):
            return False
        if previous is not None and (s < previous or _has_any(text, previous, s)):
            return False
        if text[s].isspace() or text[e - 1].isspace() or not _same_words(text[s:e], page.text):
            return False
        previous = e
    return previous is None or not _has_any(text, previous, len(text))


def plan_edit(
    old_text: str,
    old_pages: Sequence[PageSpan],
    new_text: str,
    *,
    sentences: int | None = 2,
    words: int | None = None,
    title: str | None = None,
    language: str = "auto",
) -> PagePlan:
    """The story box was edited and saved: carry the pages through the edit (see the module notes).

    `title` is the current title line, which stands before the first page in `old_text`, or None
    (also when the text's first line is not that title: then there is no title line in the text).
    Sizes cut new paragraphs. An empty new text gives a plan with no pages (every old page loose).
    Old pages that are not valid spans of `old_text` (legacy data) are matched by their words, as
    plan_split does (with take_title when a title is given).
    """
    old = _check_old(old_pages)
    check_text(new_text)
    sizes = _sizes(sentences, words, language)
    if not isinstance(old_text, str) or not _tiles(old_text, old):
        if not new_text.strip():
            return _finish(new_text, [], {}, {}, range(len(old)), old, None, 0)
        return plan_split(
            new_text, old, sentences=sentences, words=words, take_title=title is not None, language=language
        )
    carry = _Carry(old_text, new_text)

    # Carry every page; one deleted, or rewritten beyond recognition, goes loose, and the text that
    # stands where rewritten pages stood (one run of them at a time) is cut into new pages.
    slots: list[_Slot] = []
    loose: list[int] = []
    rewritten: tuple[int, int] | None = None
    for i, page in enumerate(old):
        s, e = _strip(new_text, carry.start(page.start), carry.end(page.end))
        if s >= e:
            loose.append(i)
            continue
        if not _same_words(page.text, new_text[s:e]):
            before, after = word_tokens(page.text), word_tokens(new_text[s:e])
            c = _common_tokens(before, after)
            if not (_eligible(c, len(before), len(after), c.runs / len(before)) or c.runs >= ABSORBED * len(before)):
                loose.append(i)
                rewritten = (rewritten[0] if rewritten else s, e)
                continue
        if rewritten:
            slots.extend(_cut(new_text, *rewritten, sizes, language))
            rewritten = None
        slots.append(_Slot(s, e, i))
    if rewritten:
        slots.extend(_cut(new_text, *rewritten, sizes, language))

    # The title line: the old one, carried, when it is still the first line and no page starts on it.
    new_title = None
    cursor = 0  # where the text still to place begins: after the title line, then after each carried page
    old_line = _title_line(old_text, old[0].start if old else len(old_text)) if title is not None else None
    if old_line is not None and _same_words(old_text[old_line[0] : old_line[1]], title):
        ts, te = old_line
        if ts < te:
            ts, te = _strip(new_text, carry.start(ts), carry.end(te))
            first = _NOT_SPACE.search(new_text)
            if ts < te and first is not None and first.start() == ts:
                line_break = _LINE_END.search(new_text, ts)
                line_end = _strip(new_text, ts, line_break.start() if line_break else len(new_text))[1]
                if not slots or slots[0].start >= line_end:
                    new_title, cursor = new_text[ts:line_end], line_end
    title_end = cursor

    # Place the text between the carried pages.
    placed: list[_Slot] = []
    for n in range(len(slots) + 1):
        previous = slots[n - 1] if n > 0 else None
        following = slots[n] if n < len(slots) else None
        gap_end = following.start if following is not None else len(new_text)
        placed.extend(_place_gap(new_text, cursor, gap_end, previous, following, sizes, language))
        if following is not None:
            placed.append(following)
            cursor = following.end
    placed = _join_wordless_slots(new_text, _join_glued_slots(new_text, placed))

    body_start = 0
    if new_title is not None:
        after = _NOT_SPACE.search(new_text, title_end)
        body_start = placed[0].start if placed else (after.start() if after else len(new_text))

    keep = {n: slot.keep for n, slot in enumerate(placed) if slot.keep is not None}
    absorb = {n: list(slot.absorbed) for n, slot in enumerate(placed) if slot.absorbed}
    # Pages that went loose may live on elsewhere (text cut and pasted): match them by their words
    # against the pages that can hold them, the new ones and those whose words changed.
    candidates = [
        n
        for n, slot in enumerate(placed)
        if slot.keep is None or slot.absorbed or not _same_words(old[slot.keep].text, new_text[slot.start : slot.end])
    ]
    if loose and candidates:
        lost = sorted(loose)
        again = _match(
            [word_tokens(old[i].text) for i in lost],
            [word_tokens(new_text[placed[n].start : placed[n].end]) for n in candidates],
            fixed=frozenset(x for x, n in enumerate(candidates) if n in keep),
        )
        loose = [lost[x] for x in again.loose]
        for x, i in again.keep.items():
            keep[candidates[x]] = lost[i]
        for x, found in again.absorb.items():
            absorb.setdefault(candidates[x], []).extend(lost[i] for i in found)
    spans = [(slot.start, slot.end) for slot in placed]
    return _finish(new_text, spans, keep, absorb, loose, old, new_title, body_start)


def _title_line(text: str, stop: int) -> tuple[int, int] | None:
    """The first line of text[:stop], stripped: where a title line stands before the first page."""
    first = _NOT_SPACE.search(text, 0, stop)
    if first is None:
        return None
    line_break = _LINE_END.search(text, first.start(), stop)
    return _strip(text, first.start(), line_break.start() if line_break else stop)


def _cut(text: str, start: int, end: int, sizes: tuple[int | None, int | None], language: str) -> list[_Slot]:
    """New pages for text[start:end], cut at the sizes asked for."""
    pages = segment_story(
        text, sentences_per_segment=sizes[0], words_per_segment=sizes[1], language=language, start=start, end=end
    )
    return [_Slot(p.start, p.end, None) for p in pages]


def _place_gap(
    text: str,
    start: int,
    end: int,
    previous: _Slot | None,
    following: _Slot | None,
    sizes: tuple[int | None, int | None],
    language: str,
) -> list[_Slot]:
    """Place the text between two carried pages (either may be missing): extend them, or cut new pages.

    Returns the new pages, in order; the carried pages are extended in place.
    """
    if not _has_any(text, start, end):
        return []
    # A word glued to a page (no space between) is part of it. Chinese and Japanese put no spaces
    # between words or sentences, so there only the rules below apply.
    glued = _GLUED.match(text, start, end) if previous is not None else None
    if glued:
        previous.end = start = glued.end()
    if following is not None:
        k = end
        while k > start and _GLUED.match(text[k - 1]):
            k -= 1
        following.start = end = k
    pieces = paragraph_spans(text, start, end)
    new: list[_Slot] = []
    for n, (s, e) in enumerate(pieces):
        with_previous = previous is not None and n == 0 and not has_paragraph_break(text, start, s)
        with_following = following is not None and n == len(pieces) - 1 and not has_paragraph_break(text, e, end)
        cut = _cut(text, s, e, sizes, language)
        if len(cut) == 1 and with_previous:
            previous.end = e
        elif len(cut) == 1 and with_following:
            following.start = s
        else:
            new.extend(cut)
    return new


def _join_glued_slots(text: str, slots: list[_Slot]) -> list[_Slot]:
    """Pages an edit left touching inside a word ("ran h" + "late", after the text between them was
    deleted) become one page: a page never starts or ends in the middle of a word."""
    out: list[_Slot] = []
    for slot in slots:
        before = out[-1] if out else None
        if (
            before is not None
            and before.end == slot.start
            and _GLUED.match(text[before.end - 1])
            and _GLUED.match(text[slot.start])
        ):
            before.end = slot.end
            _take_over(before, slot)
            continue
        out.append(slot)
    return out


def _join_wordless_slots(text: str, slots: list[_Slot]) -> list[_Slot]:
    """A page with no letter or digit joins the page before it in its paragraph, else the next page,
    else the page before it: the segmenter's rule, for pages an edit left that way."""
    if len(slots) < 2 or all(has_words(text, slot.start, slot.end) for slot in slots):
        return slots
    out = list(slots)
    n = 0
    while n < len(out) and len(out) > 1:
        slot = out[n]
        if has_words(text, slot.start, slot.end):
            n += 1
            continue
        before = out[n - 1] if n > 0 else None
        after = out[n + 1] if n + 1 < len(out) else None
        if before is not None and (after is None or not has_paragraph_break(text, before.end, slot.start)):
            before.end = slot.end
            _take_over(before, slot)
        elif after is not None:
            after.start = slot.start
            _take_over(after, slot)
        del out[n]
        n = max(0, n - 1)
    return out


def _take_over(target: _Slot, gone: _Slot) -> None:
    """`target` swallowed `gone`: gone's row continues in target, or joins it as versions."""
    target.absorbed.extend(gone.absorbed)
    if gone.keep is not None:
        if target.keep is None:
            target.keep = gone.keep
        else:
            target.absorbed.append(gone.keep)


# ------------------------------------------------------------------------------ page edits


def _page_spans(text: str, pages: Sequence[Any]) -> list[Span]:
    """The pages as spans, checked: ordered, stripped, not empty, whitespace between them and after the last."""
    if not isinstance(text, str):
        raise TypeError(f"story text must be str, not {type(text).__name__}")
    spans = [Span(*page) if isinstance(page, tuple) else Span(page.start, page.end) for page in pages]
    previous = None
    for n, (s, e) in enumerate(spans):
        if not (isinstance(s, int) and isinstance(e, int) and 0 <= s < e <= len(text)):
            raise ValueError(f"page {n + 1} ({s}, {e}) is not a part of a text of {len(text)} characters")
        if text[s].isspace() or text[e - 1].isspace():
            raise ValueError(f"page {n + 1} ({s}, {e}) is not stripped of whitespace")
        if previous is not None and (s < previous or _has_any(text, previous, s)):
            raise ValueError(f"page {n + 1} ({s}, {e}) overlaps the page before it or is not separated by whitespace")
        previous = e
    if previous is not None and _has_any(text, previous, len(text)):
        raise ValueError("there are words after the last page")
    return spans


def _pieces(text: str, spans: list[Span]) -> tuple[str, list[str], list[str], str]:
    """The text as head (before the first page), words, separators (between pages), tail."""
    words = [text[s:e] for s, e in spans]
    separators = [text[a.end : b.start] for a, b in itertools.pairwise(spans)]
    return text[: spans[0].start], words, separators, text[spans[-1].end :]


def _join(head: str, words: list[str], separators: list[str], tail: str) -> tuple[str, list[Span]]:
    out, spans, at = [head], [], len(head)
    for n, w in enumerate(words):
        if n:
            out.append(separators[n - 1])
            at += len(separators[n - 1])
        out.append(w)
        spans.append(Span(at, at + len(w)))
        at += len(w)
    out.append(tail)
    return "".join(out), spans


def _index(spans: Sequence[Span], index: int, what: str = "index") -> int:
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(spans):
        raise ValueError(f"page {what} {index!r} is not one of the {len(spans)} pages")
    return index


def move_page(text: str, pages: Sequence[Any], index: int, to: int) -> tuple[str, list[Span]]:
    """Move page `index` to place `to`, one swap with its neighbour at a time (see the module notes).

    Separators stay where they are; only words move. The spans come back in the new page order:
    the moved page is at `to`, the pages it passed shift by one towards `index`.
    """
    spans = _page_spans(text, pages)
    _index(spans, index)
    _index(spans, to, "place")
    head, words, separators, tail = _pieces(text, spans)
    words.insert(to, words.pop(index))
    return _join(head, words, separators, tail)


def _owned_separator(separators: list[str], index: int) -> tuple[int | None, bool]:
    """Which separator belongs to page `index`, and whether it stands before the page."""
    count = len(separators) + 1
    if count == 1:
        return None, False
    if index < count - 1 and not has_paragraph_break(separators[index]):
        return index, False  # it shares its paragraph with the next page
    if index > 0 and not has_paragraph_break(separators[index - 1]):
        return index - 1, True  # it shares its paragraph with the page before
    if index < count - 1:
        return index, False  # a paragraph of its own: the break after it
    return index - 1, True  # the last page, a paragraph of its own: the break before it


def delete_page(text: str, pages: Sequence[Any], index: int) -> tuple[str, list[Span], RemovedPage]:
    """Take page `index` out of the story with the separator that belongs to it (see the module notes).

    Returns the new text, the spans of the pages left, and what was taken out, for `insert_page`.
    """
    spans = _page_spans(text, pages)
    _index(spans, index)
    head, words, separators, tail = _pieces(text, spans)
    gone = words.pop(index)
    owned, before = _owned_separator(separators, index)
    separator = separators.pop(owned) if owned is not None else None
    new_text, new_spans = _join(head, words, separators, tail)
    if owned is None:
        at = len(head)
    elif before:
        at = new_spans[index - 1].end
    else:
        at = new_spans[index].start
    return new_text, new_spans, RemovedPage(gone, separator, before, at)


def insert_page(text: str, pages: Sequence[Any], index: int, page: RemovedPage) -> tuple[str, list[Span]]:
    """Put a page taken out by `delete_page` back at place `index` (0 .. number of pages), with its
    separator on the side it stood. Deleting a page and inserting it at the same index gives back the
    exact text. A page with no separator of its own (it was the only page) gets a paragraph break."""
    spans = _page_spans(text, pages)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= len(spans):
        raise ValueError(f"place {index!r} is not between 0 and {len(spans)}")
    words = page.words.strip()
    if not words or (page.separator is not None and page.separator.strip()):
        raise ValueError("a page needs words, and its separator must be whitespace")
    if not spans:
        at = min(max(page.at, 0), len(text))
        new_text = text[:at] + words + text[at:]
        return new_text, [Span(at, at + len(words))]
    separator = "\n\n" if page.separator is None else page.separator
    if (page.before and index > 0) or index == len(spans):
        at = spans[index - 1].end
        piece, offset = separator + words, len(separator)
    else:
        at = spans[index].start
        piece, offset = words + separator, 0
    new_text = text[:at] + piece + text[at:]
    shift = len(piece)
    new_spans = [Span(s, e) if e <= at else Span(s + shift, e + shift) for s, e in spans]
    new_spans.insert(index, Span(at + offset, at + offset + len(words)))
    return new_text, new_spans


def edit_page(text: str, pages: Sequence[Any], index: int, words: str) -> tuple[str, list[Span]]:
    """Page `index`'s words become `words` (stripped), at exactly that place in the story text.

    Raises InputError for words that are empty, have no letter or digit (a picture needs words to be
    drawn from, and the next cut would join such a page to its neighbour), or make the story too long.
    """
    spans = _page_spans(text, pages)
    _index(spans, index)
    if not isinstance(words, str):
        raise TypeError(f"words must be str, not {type(words).__name__}")
    words = words.strip()
    if not words:
        raise InputError("A page needs some words: write some, or delete the page instead.")
    if not has_words(words):
        raise InputError(
            "A page needs some words, not only emoji or punctuation: add a few words, or merge the page with another."
        )
    s, e = spans[index]
    new_text = text[:s] + words + text[e:]
    check_text(new_text)
    shift = len(words) - (e - s)
    new_spans = [span if n < index else Span(span.start + shift, span.end + shift) for n, span in enumerate(spans)]
    new_spans[index] = Span(s, s + len(words))
    return new_text, new_spans


def merge_pages(text: str, pages: Sequence[Any], index: int) -> list[Span]:
    """Page `index` and the next one become one page (the text is unchanged)."""
    spans = _page_spans(text, pages)
    _index(spans, index)
    if index + 1 >= len(spans):
        raise InputError("This is the last page, so there is no next page to merge it with.")
    return [*spans[:index], Span(spans[index].start, spans[index + 1].end), *spans[index + 2 :]]


def split_page(text: str, pages: Sequence[Any], index: int, at: int) -> list[Span]:
    """Page `index` becomes two pages at character `at` of its words (the text is unchanged).

    Raises InputError unless both parts keep some words (a letter or digit).
    """
    spans = _page_spans(text, pages)
    _index(spans, index)
    s, e = spans[index]
    if isinstance(at, bool) or not isinstance(at, int) or not 0 < at < e - s:
        raise InputError("Split the page between words, so that both parts keep some text.")
    head, tail = _strip(text, s, s + at), _strip(text, s + at, e)
    if not (has_words(text, *head) and has_words(text, *tail)):
        raise InputError("Split the page between words, so that both parts keep some words.")
    return [*spans[:index], Span(*head), Span(*tail), *spans[index + 1 :]]


def split_points(words: str) -> list[tuple[int, str]]:
    """Where a page can be split: (character index in `words`, the words the second part starts with).

    Between its sentences (as segment_story cuts them one a page, so never inside a quotation), else
    at the gap between words nearest the middle; always leaving words (a letter or digit) on both sides.
    """
    if not isinstance(words, str) or not words.strip():
        return []
    try:
        points = [p.start for p in segment_story(words, sentences_per_segment=1)[1:]]
    except InputError:
        points = []
    if not points:
        gaps = [i + 1 for i, ch in enumerate(words) if ch.isspace() and 0 < i < len(words) - 1]
        gaps = [i for i in gaps if has_words(words, 0, i) and has_words(words, i)]
        if gaps:
            points = [min(gaps, key=lambda i: abs(i - len(words) // 2))]
    out = []
    for at in points:
        tail = words[at:].split()
        preview = " ".join(tail[:6]) + (" …" if len(tail) > 6 else "")
        out.append((at, preview))
    return out
