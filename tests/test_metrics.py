"""Story metrics against values worked out by hand (see engine/metrics.py for the definitions)."""

import pytest

from engine.metrics import (
    STOP_WORDS,
    caption_coverage,
    content_words,
    flesch_kincaid_grade,
    repeated_trigram_rate,
    sentence_count,
    story_metrics,
    syllables,
    words_of,
)


def test_words_lowercase_and_drop_punctuation():
    assert words_of("The Dog's ball, and—then? Don’t stop!") == ["the", "dog's", "ball", "and", "then", "don't", "stop"]


def test_content_words_drop_stop_words_and_possessives():
    assert content_words("A picture of the dog's red ball on 2 chairs") == ["dog", "red", "ball", "chairs"]
    assert "the" in STOP_WORDS and "dog" not in STOP_WORDS


def test_caption_coverage_is_over_the_set_of_unique_content_words():
    captions = ["a dog running on the beach", "a dog and a red ball"]
    # content set C = {dog, running, beach, red, ball}: 5 words; the story uses dog, beach, ball -> 3/5.
    story = "The dog ran to the beach. The dog's ball was blue."
    coverage, missing = caption_coverage(captions, story)
    assert coverage == pytest.approx(3 / 5)
    assert missing == ["red", "running"]


def test_type_token_ratio_and_repeated_trigrams_by_hand():
    # words: the cat sat the cat sat on the mat -> 9 words, 5 unique (the cat sat on mat).
    # trigrams: (the cat sat) x2, (cat sat the), (sat the cat), (cat sat on), (sat on the), (on the mat)
    # -> 7 occurrences, 2 of them belong to a repeated trigram -> 2/7.
    metrics = story_metrics([], "The cat sat. The cat sat on the mat.")
    assert metrics["words"] == 9
    assert metrics["type_token_ratio"] == pytest.approx(5 / 9)
    assert metrics["repeated_trigram_rate"] == pytest.approx(2 / 7)
    assert repeated_trigram_rate("a b c a b c".split()) == pytest.approx(2 / 4)
    assert repeated_trigram_rate(["a", "b"]) == 0.0


@pytest.mark.parametrize(
    "word,count",
    [
        ("cat", 1),
        ("the", 1),
        ("little", 2),
        ("table", 2),
        ("make", 1),
        ("rabbit", 2),
        ("beautiful", 3),
        ("sky", 1),
        ("queue", 1),
        ("be", 1),
        ("happily", 3),
        ("42", 1),
        ("strength", 1),
        ("hopped", 1),
        ("wanted", 2),
        ("played", 1),
        ("need", 1),
        ("makes", 1),
        ("boxes", 2),
        ("wishes", 2),
        ("horses", 2),
        ("changes", 2),
    ],
)
def test_syllable_heuristic(word, count):
    assert syllables(word) == count


def test_flesch_kincaid_grade_by_hand():
    # 9 one-syllable words in 2 sentences: 0.39 * 4.5 + 11.8 * 1 - 15.59 = -2.035
    assert flesch_kincaid_grade("The cat sat. The cat sat on the mat.") == pytest.approx(-2.035)
    # "The little rabbit hopped happily." 5 words, 1 sentence, syllables 1+2+2+1+3 = 9 ("hopped": -ed rule)
    # 0.39 * 5 + 11.8 * 9 / 5 - 15.59 = 1.95 + 21.24 - 15.59 = 7.6
    assert flesch_kincaid_grade("The little rabbit hopped happily.") == pytest.approx(7.6)


def test_sentences_without_final_stop_and_paragraphs():
    assert sentence_count("One dog ran\n\nTwo cats slept") == 2
    assert sentence_count("Wait... what?! Yes.") == 3
    assert sentence_count("...") == 0


def test_empty_inputs_give_zeros():
    metrics = story_metrics([], "")
    assert metrics == {
        "caption_coverage": 0.0,
        "caption_words_missing": [],
        "type_token_ratio": 0.0,
        "repeated_trigram_rate": 0.0,
        "flesch_kincaid_grade": 0.0,
        "words": 0,
        "sentences": 0,
        "syllables": 0,
    }
    assert story_metrics(["the a of", None], "!!!")["caption_coverage"] == 0.0
    assert story_metrics(["a red kite"], "")["caption_coverage"] == 0.0
    assert story_metrics(["a red kite"], "")["caption_words_missing"] == ["kite", "red"]


def test_full_coverage():
    assert story_metrics(["a red kite"], "Her kite was red.")["caption_coverage"] == 1.0
