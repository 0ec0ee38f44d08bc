"""How alike two passages' words are: the one measure pages are matched by, in every layer.

`engine.paging` matches old pages to new ones by it (re-split, story edits; its module notes document the
thresholds), and `storage` sends each picture of a split page to the part most like the words it was drawn
for. Torch-free and dependency-free, so both may import it.

A passage's words are its tokens: each run of letters and digits (any script) is one token, each Chinese or
Japanese character is one token (those scripts put no spaces between words), all case-folded; punctuation and
whitespace do not count (a passage with no letter or digit falls back to its other visible characters). For
two passages a and b, with M the tokens matched when their token lists are aligned (difflib's
``SequenceMatcher``, no junk heuristic), ``words_ratio`` is 2M / (|a| + |b|): 1 when the words are the same,
0.9 after one word of ten changed, 0 when they share none.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher

# Han ideographs, kana and their extensions: scripts written without spaces between words.
CJK_CHARS = "\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\U00020000-\U0002fa1f"
WORD_TOKEN = re.compile(rf"[{CJK_CHARS}]|[^\W_{CJK_CHARS}]+")


_HAS_ALNUM = re.compile(r"[^\W_]")


def has_words(text: str, start: int = 0, end: int | None = None) -> bool:
    """Whether text[start:end] holds a letter or a digit (in any script), not only emoji, punctuation or symbols:
    a page needs words to be drawn from (engine.segment never makes a page without; storage never splits one off)."""
    return _HAS_ALNUM.search(text, start, len(text) if end is None else end) is not None


def word_tokens(text: str) -> list[str]:
    """The tokens passages are compared by (see the module notes)."""
    return WORD_TOKEN.findall(text.casefold()) or [ch for ch in text if not ch.isspace()]


def words_ratio(a: str, b: str) -> float:
    """2M / (|a| + |b|) over the two passages' tokens (see the module notes); 1.0 for two empty passages."""
    return SequenceMatcher(None, word_tokens(a), word_tokens(b), autojunk=False).ratio()
