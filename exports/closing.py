"""The words on a book's closing page ("The End") in the book's own language.

The language is read from the story's letters: the script first (kana, Han, Hangul, Cyrillic, Greek, Arabic,
Hebrew), then, for the Latin script, a few very common words. Only scripts the PDF's fonts draw are listed
(DejaVu for Latin, Greek, Cyrillic, Arabic and Hebrew; Droid Sans Fallback for Chinese, Japanese and Korean).
A book's own closing words (Book.closing), when given, win.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

DEFAULT = "The End"

# language -> the words picture books in it end with
WORDS = {
    "english": "The End",
    "japanese": "おしまい",
    "chinese": "完",
    "korean": "끝",
    "russian": "Конец",
    "greek": "Τέλος",
    "arabic": "النهاية",
    "hebrew": "הסוף",
    "german": "Ende",
    "french": "Fin",
    "spanish": "Fin",
    "italian": "Fine",
    "portuguese": "Fim",
    "dutch": "Einde",
}

_SCRIPTS = {
    "kana": re.compile(r"[\u3040-\u30ff]"),
    "han": re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]"),
    "korean": re.compile(r"[\uac00-\ud7af\u1100-\u11ff]"),
    "russian": re.compile(r"[\u0400-\u04ff]"),
    "greek": re.compile(r"[\u0370-\u03ff]"),
    "arabic": re.compile(r"[\u0600-\u06ff]"),
    "hebrew": re.compile(r"[\u0590-\u05ff]"),
}
_LETTER = re.compile(r"[^\W\d_]")
_WORD = re.compile(r"[^\W\d_]+")
_STOPWORDS = {
    "english": frozenset("the and of to was he she it with his her they that said in had".split()),
    "german": frozenset("der die und das ist nicht ein eine sie er mit den war auf sich".split()),
    "french": frozenset("le la les et est une dans il elle pas que du des sur était".split()),
    "spanish": frozenset("el la los las y es una en que del por con era su pero".split()),
    "italian": frozenset("il la lo gli e è una che di non per con era della sono".split()),
    "portuguese": frozenset("o a os as e é uma não que do da em com era para".split()),
    "dutch": frozenset("de het een en is niet van dat ze hij was met op zijn".split()),
}
SAMPLE_CHARS = 20_000


def language_of(texts: Iterable[str]) -> str:
    """The language of the story, as a key of WORDS; "english" when nothing says otherwise."""
    sample = ""
    for text in texts:
        sample += text + "\n"
        if len(sample) >= SAMPLE_CHARS:
            break
    sample = sample[:SAMPLE_CHARS]
    letters = max(1, len(_LETTER.findall(sample)))
    counts = {name: len(rx.findall(sample)) for name, rx in _SCRIPTS.items()}
    if counts["kana"] and counts["kana"] + counts["han"] >= 0.3 * letters:
        return "japanese"
    if counts["han"] >= 0.3 * letters:
        return "chinese"
    for name in ("korean", "russian", "greek", "arabic", "hebrew"):
        if counts[name] >= 0.5 * letters:
            return name
    words = [w.lower() for w in _WORD.findall(sample)]
    scores = {lang: sum(1 for w in words if w in stops) for lang, stops in _STOPWORDS.items()}
    best = max(scores, key=lambda lang: (scores[lang], lang == "english"))
    return best if scores[best] > scores["english"] * 1.2 else "english"


def closing_words(book) -> str:
    """What the closing page says: the book's own words, else "The End" in the story's language."""
    own = (getattr(book, "closing", "") or "").strip()
    if own:
        return own
    texts = [page.text for page in book.pages] or [book.title]
    return WORDS.get(language_of(texts), DEFAULT)
