"""Plain numbers about a story told from pictures: does it talk about the pictures, and how does it read?

Definitions (all deterministic, no downloads; empty input gives 0.0, never a division by zero):

* words: the text is lower-cased, curly apostrophes made straight, and split into runs of letters and
  digits, keeping inner apostrophes ("don't" is one word). Everything else is punctuation and dropped.
* content words: words not in STOP_WORDS, with a possessive "'s" removed ("dog's" -> "dog"), and with
  at least one letter (bare numbers are not content).
* caption_coverage: C = the SET of unique content words over all captions; S = the set of all words of
  the story, possessive "'s" removed the same way. coverage = |C ∩ S| / |C|. No stemming: "dogs" does not
  cover "dog". 0.0 when C is empty.
* type_token_ratio: unique words / words in the story.
* repeated_trigram_rate: the story's word trigrams are the consecutive triples (w[i], w[i+1], w[i+2]),
  across sentence boundaries. The rate is the share of trigram occurrences whose trigram occurs more
  than once: "a b c a b c" has trigrams abc, bca, cab, abc; abc occurs twice, so 2 of 4 -> 0.5.
  0.0 with fewer than 3 words.
* flesch_kincaid_grade: 0.39 * (words / sentences) + 11.8 * (syllables / words) - 15.59. Sentences are
  the pieces between runs of . ! ? … (and line breaks between paragraphs) that hold at least one word.
  Syllables per word (the heuristic): count groups of consecutive vowels (a e i o u y); then, while
  more than one is counted, take one off for a final silent "e" (not "le" after a consonant: "little"
  keeps 2), for a final "ed" not after t or d ("hopped" 1, "wanted" 2), and for a final "es" not after
  s, x, z, c, g, ch or sh ("makes" 1, "boxes" 2); never fewer than one. Words without letters count one
  syllable. The grade may be negative for very simple text.
"""

from __future__ import annotations

import re
from collections import Counter

STOP_WORDS = frozenset(
    """
a about above after again against all also am an and any are aren't as at be because been before being
below between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down
during each few for from further had hadn't has hasn't have haven't having he he'd he'll he's her here
here's hers herself him himself his how how's i i'd i'll i'm i've if in into is isn't it it's its itself
just let's me more most mustn't my myself no nor not now of off on once only or other ought our ours
ourselves out over own same shan't she she'd she'll she's should shouldn't so some such than that that's
the their theirs them themselves then there there's these they they'd they'll they're they've this those
through to too under until up very was wasn't we we'd we'll we're we've were weren't what what's when
when's where where's which while who who's whom why why's will with won't would wouldn't you you'd you'll
you're you've your yours yourself yourselves
one two three next near front top side behind background picture photo image view close shot
""".split()
)
# The last line: words a captioner writes about the picture itself, not about what is in it.

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
_SENTENCE_BREAK = re.compile(r"[.!?…]+|\n\s*\n")
_VOWEL_GROUP = re.compile(r"[aeiouy]+")
_LETTER = re.compile(r"[^\W\d_]")


def words_of(text: str) -> list[str]:
    text = (text or "").lower().replace("\u2019", "'").replace("\u2018", "'")
    return _WORD.findall(text)


def _base(word: str) -> str:
    return word[:-2] if word.endswith("'s") and len(word) > 2 else word


def content_words(text: str) -> list[str]:
    out = []
    for word in words_of(text):
        if word in STOP_WORDS:
            continue
        word = _base(word)
        if word in STOP_WORDS or not _LETTER.search(word):
            continue
        out.append(word)
    return out


def syllables(word: str) -> int:
    """Syllables in one word by the heuristic in the module docstring."""
    letters = re.sub(r"[^a-z]", "", word.lower())
    if not letters:
        return 1
    count = len(_VOWEL_GROUP.findall(letters))
    if count > 1:
        if letters.endswith("e") and not (letters.endswith("le") and len(letters) > 2 and letters[-3] not in "aeiouy"):
            count -= 1
        elif letters.endswith("ed") and len(letters) > 2 and letters[-3] not in "td":
            count -= 1
        elif (
            letters.endswith("es")
            and len(letters) > 2
            and letters[-3] not in "sxzcg"
            and not letters.endswith(("ches", "shes"))
        ):
            count -= 1
    return max(1, count)


def sentence_count(text: str) -> int:
    return sum(1 for piece in _SENTENCE_BREAK.split(text or "") if words_of(piece))


def caption_coverage(captions: list[str], story_text: str) -> tuple[float, list[str]]:
    """(coverage, the caption content words the story never uses, sorted)."""
    wanted = set()
    for caption in captions:
        wanted.update(content_words(caption))
    if not wanted:
        return 0.0, []
    present = {_base(w) for w in words_of(story_text)}
    missing = sorted(wanted - present)
    return (len(wanted) - len(missing)) / len(wanted), missing


def repeated_trigram_rate(words: list[str]) -> float:
    trigrams = [tuple(words[i : i + 3]) for i in range(len(words) - 2)]
    if not trigrams:
        return 0.0
    counts = Counter(trigrams)
    return sum(1 for t in trigrams if counts[t] > 1) / len(trigrams)


def flesch_kincaid_grade(text: str) -> float:
    words = words_of(text)
    if not words:
        return 0.0
    sentences = max(1, sentence_count(text))
    total_syllables = sum(syllables(w) for w in words)
    return 0.39 * (len(words) / sentences) + 11.8 * (total_syllables / len(words)) - 15.59


def story_metrics(captions: list[str], story_text: str) -> dict:
    """Coverage of the captions, variety and readability of the story; see the module docstring."""
    captions = [c or "" for c in (captions or [])]
    story_text = story_text or ""
    words = words_of(story_text)
    coverage, missing = caption_coverage(captions, story_text)
    return {
        "caption_coverage": coverage,
        "caption_words_missing": missing,
        "type_token_ratio": (len(set(words)) / len(words)) if words else 0.0,
        "repeated_trigram_rate": repeated_trigram_rate(words),
        "flesch_kincaid_grade": flesch_kincaid_grade(story_text),
        "words": len(words),
        "sentences": sentence_count(story_text),
        "syllables": sum(syllables(w) for w in words),
    }
