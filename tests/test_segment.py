"""Story text to segments: exact offsets, whole sentences, paragraphs respected, offline."""

import itertools
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.limits import MAX_STORY_CHARS
from core.words import has_words
from engine import segment as seg_mod
from engine.errors import InputError
from engine.segment import PageText, count_words, has_paragraph_break, segment_story, split_title

SAMPLE = Path(__file__).resolve().parent.parent / "assets" / "sample_story.txt"


def check(original: str, segments: list[PageText]) -> list[str]:
    """Assert the offset contract and that no visible character is lost; return the texts."""
    previous_end = 0
    for segment in segments:
        assert original[segment.start : segment.end] == segment.text
        assert segment.text and segment.text == segment.text.strip()
        assert segment.start >= previous_end
        assert original[previous_end : segment.start].strip() == ""
        previous_end = segment.end
    assert original[previous_end:].strip() == ""
    return [segment.text for segment in segments]


def test_sample_story_title_then_two_sentences_per_segment_never_across_paragraphs():
    text = SAMPLE.read_text(encoding="utf-8")
    texts = check(text, segment_story(text))
    assert texts[0] == "The Lighthouse Fox"
    assert texts[1].startswith("Once upon a time") and texts[1].endswith("every night.")
    for segment in texts:
        assert "\n\n" not in segment
    assert "Pip looked up the long spiral stairs. They were dark and steep, and Pip was afraid of the dark." in texts
    assert "But Pip thought of the little boats tossing on the sea, and began to climb." in texts


def test_abbreviations_do_not_split():
    text = (
        "Dr. Smith met Mr. Brown and Mrs. Green on St. James Street at 5 p.m. yesterday. "
        "They ate cake, e.g. lemon cake. Then they went home."
    )
    assert check(text, segment_story(text, sentences_per_segment=1)) == [
        "Dr. Smith met Mr. Brown and Mrs. Green on St. James Street at 5 p.m. yesterday.",
        "They ate cake, e.g. lemon cake.",
        "Then they went home.",
    ]


def test_dialogue_keeps_quotes_and_attribution_with_their_sentence():
    text = '"Hello," she said. "Come in!" "Why?" he asked. She smiled.'
    assert check(text, segment_story(text, sentences_per_segment=1)) == [
        '"Hello," she said.',
        '"Come in!"',
        '"Why?" he asked.',
        "She smiled.",
    ]
    curly = "“Hello,” she said. “Come in!” He went in."
    assert check(curly, segment_story(curly, sentences_per_segment=1)) == [
        "“Hello,” she said.",
        "“Come in!”",
        "He went in.",
    ]


def test_huge_single_paragraph_is_fast():
    sentence = "The little fox ran to the river with Dr. Brown, who said hello! "
    text = sentence * (MAX_STORY_CHARS // len(sentence))
    started = time.perf_counter()
    segments = segment_story(text)
    elapsed = time.perf_counter() - started
    print(f"\n{len(text):,} characters in one paragraph -> {len(segments)} segments in {elapsed:.2f} s")
    assert elapsed < 3.0
    assert len(segments) == (text.count("hello!") + 1) // 2
    assert segments[0].text == sentence.strip() + " " + sentence.strip()
    assert text[segments[-1].start : segments[-1].end] == segments[-1].text


def test_text_without_punctuation_is_cut_into_sensible_pieces_on_spaces():
    words = [f"word{i}" for i in range(1000)]
    text = " ".join(words)
    segments = segment_story(text, sentences_per_segment=2)
    texts = check(text, segments)
    assert len(texts) > 10
    assert all(20 <= count_words(t) <= 60 for t in texts[:-1])
    rejoined = " ".join(texts).split()
    assert rejoined == words  # every cut fell between words


def test_punctuation_free_text_prefers_line_breaks_and_follows_word_budget():
    line = "the wind blew over the hills and the grass bent low"  # 11 words a line, no stops
    text = "\n".join([line] * 30)
    texts = check(text, segment_story(text, words_per_segment=20))
    assert all(t.startswith("the wind") and t.endswith("bent low") for t in texts)
    assert all(count_words(t) in (11, 22) for t in texts)


def test_crlf_and_lone_cr_paragraphs():
    text = "First one. Second one.\r\n\r\nThird one.\r\nStill third paragraph.\r\rFourth one."
    assert check(text, segment_story(text, sentences_per_segment=5)) == [
        "First one. Second one.",
        "Third one.\r\nStill third paragraph.",
        "Fourth one.",
    ]
    blank_with_spaces = "One.\n   \t\nTwo."
    assert check(blank_with_spaces, segment_story(blank_with_spaces)) == ["One.", "Two."]


def test_chinese_splits_after_fullwidth_terminators_and_counts_two_characters_a_word():
    text = "这是一支笔。那是一本书！「你好。」你好吗？"
    assert check(text, segment_story(text, sentences_per_segment=1)) == [
        "这是一支笔。",
        "那是一本书！",
        "「你好。」",
        "你好吗？",
    ]
    assert count_words("这是一支笔") == 3  # 5 characters, about 2 a word, rounded up
    assert count_words("你好 world, 你好") == 3


def test_japanese_heading_and_quote_with_to_stay_together():
    text = "桃太郎\n昔々、あるところにおじいさんがいました。「こんにちは！」と言いました。おばあさんは川へ行きました。"
    assert check(text, segment_story(text, sentences_per_segment=1)) == [
        "桃太郎",
        "昔々、あるところにおじいさんがいました。",
        "「こんにちは！」と言いました。",
        "おばあさんは川へ行きました。",
    ]


def test_cjk_without_punctuation_falls_back_to_character_chunks():
    text = "山" * 1000
    texts = check(text, segment_story(text, words_per_segment=30))
    assert "".join(texts) == text
    assert all(40 <= len(t) <= 80 for t in texts[:-1])  # 30 words ~ 60 characters


def test_grouping_by_sentences():
    text = "One. Two. Three. Four. Five."
    assert check(text, segment_story(text, sentences_per_segment=2)) == ["One. Two.", "Three. Four.", "Five."]
    assert check(text, segment_story(text, sentences_per_segment=3)) == ["One. Two. Three.", "Four. Five."]
    both_none = segment_story("A b. C d.\n\nE f.", sentences_per_segment=None)
    assert [s.text for s in both_none] == ["A b. C d.", "E f."]


def test_grouping_by_words_takes_whole_sentences_nearest_the_budget():
    six = "The fox ran to the sea. "  # 6 words
    text = (six * 7).strip()
    texts = check(text, segment_story(text, words_per_segment=12))
    assert [count_words(t) for t in texts] == [12, 12, 12, 6]
    long_sentence = "A " + "very " * 30 + "long sentence. Short one."
    texts = check(long_sentence, segment_story(long_sentence, words_per_segment=10))
    assert texts == [long_sentence[: -len(" Short one.")], "Short one."]  # never split mid-sentence


def test_title_like_lines():
    text = "Chapter One\nThe fox woke up. It was cold.\n\nThe End"
    assert check(text, segment_story(text)) == ["Chapter One", "The fox woke up. It was cold.", "The End"]
    wrapped = "The little fox ran down to the\nriver and swam across. Then he slept."
    assert check(wrapped, segment_story(wrapped)) == [wrapped]
    sentence_line = "The fox woke up.\nIt was cold."
    assert check(sentence_line, segment_story(sentence_line)) == [sentence_line]


def test_markup_is_plain_text():
    text = "<b>Bold</b> fox & <i>hound</i>. <script>alert(1)</script> Next <img src=x>."
    texts = check(text, segment_story(text, sentences_per_segment=1))
    assert texts[0] == "<b>Bold</b> fox & <i>hound</i>."


@pytest.mark.parametrize("text", ["", "   ", "\n\r\n\t  \u3000"])
def test_empty_story(text):
    with pytest.raises(InputError) as caught:
        segment_story(text)
    assert str(caught.value) == "The story is empty: write or paste some text first."


def test_too_long_names_the_limit():
    segment_story("a" * MAX_STORY_CHARS)
    with pytest.raises(InputError, match="200,000 characters"):
        segment_story("a" * (MAX_STORY_CHARS + 1))


@pytest.mark.parametrize("text", ["Hello\x00 world.", "Broken \ud800 surrogate."])
def test_nul_and_lone_surrogates_are_refused(text):
    with pytest.raises(InputError):
        segment_story(text)


def test_bad_options():
    with pytest.raises(InputError, match="klingon"):
        segment_story("Hello.", language="klingon")
    with pytest.raises(InputError):
        segment_story("Hello.", sentences_per_segment=0)
    with pytest.raises(InputError):
        segment_story("Hello.", words_per_segment=-3)


def test_explicit_and_detected_languages():
    german = "Das ist z.B. ein Satz. Und noch einer. Er war mit den Kindern auf der Straße."
    for language in ("auto", "de", "german"):
        assert check(german, segment_story(german, sentences_per_segment=1, language=language)) == [
            "Das ist z.B. ein Satz.",
            "Und noch einer.",
            "Er war mit den Kindern auf der Straße.",
        ]
    assert seg_mod._detect_latin_language(german) == "german"
    assert seg_mod._detect_latin_language("The fox and the hound.") == "english"


def test_determinism():
    text = SAMPLE.read_text(encoding="utf-8") * 3
    assert segment_story(text, words_per_segment=25) == segment_story(text, words_per_segment=25)


def test_offline_without_nltk_download(monkeypatch):
    nltk = pytest.importorskip("nltk")

    def no_download(*args, **kwargs):
        raise AssertionError("segment_story must never download")

    monkeypatch.setattr(nltk, "download", no_download)
    seg_mod._splitter.cache_clear()
    seg_mod._piece_sentences.cache_clear()
    assert [s.text for s in segment_story("Dr. Who came. He left.", sentences_per_segment=1)] == [
        "Dr. Who came.",
        "He left.",
    ]


def test_rule_splitter_fallback_keeps_offsets():
    text = 'It was late. "Go home!" she said? Yes.'
    spans = list(seg_mod._rule_splitter(False)(text))
    assert [text[s:e].strip() for s, e in spans] == ["It was late.", '"Go home!" she said?', "Yes."]
    cjk = "你好。再见！"
    assert [cjk[s:e] for s, e in seg_mod._rule_splitter(True)(cjk) if e > s] == ["你好。", "再见！"]


def test_count_words():
    assert count_words("") == 0
    assert count_words("Hello, world!  — yes") == 3
    assert count_words("こんにちは") == 3


def test_first_line_alone_matches_how_the_story_is_cut():
    for text, alone in [
        ("The Fox\n\nOnce upon a time.", "The Fox"),
        ("The Fox\nOnce upon a time.", "The Fox"),
        ("The Fox\rOnce upon a time.", "The Fox"),
        ("The fox ran home\nand slept.", None),
        ("Only one line.", "Only one line."),
        ("  \n ", None),
    ]:
        span = seg_mod.first_line_alone(text)
        assert (text[span[0] : span[1]] if span else None) == alone
        if span and text.strip():
            assert segment_story(text)[0] == PageText(alone, span[0], span[1])


# ------------------------------------------------------------------------------ better pages


def texts_of(text: str, **sizes) -> list[str]:
    return check(text, segment_story(text, **sizes))


@pytest.mark.parametrize(
    "quoted",
    [
        '"Cumin! Cardamom! Saffron, today only!" called the merchant.',
        "“Cumin! Cardamom! Saffron, today only!” called the merchant.",
        "‘Cumin! Cardamom! Saffron, today only!’ called the merchant.",
        "'Cumin! Cardamom! Saffron, today only!' called the merchant.",
        "«Cumin! Cardamom! Saffron, today only!» called the merchant.",
        "»Cumin! Cardamom! Saffron, today only!« called the merchant.",
        "„Cumin! Cardamom! Saffron, today only!“ called the merchant.",
        "”Cumin! Cardamom! Saffron, today only!” called the merchant.",
    ],
)
def test_a_quotation_is_never_cut_in_half(quoted):
    text = f"The market was loud. {quoted} Everyone came."
    assert texts_of(text, sentences_per_segment=1) == ["The market was loud.", quoted, "Everyone came."]
    assert quoted in texts_of(text, words_per_segment=3)


def test_quotations_in_japanese_and_chinese_stay_whole():
    text = "彼は「はい。わかりました。」と言った。次の日。"
    assert texts_of(text, sentences_per_segment=1) == ["彼は「はい。わかりました。」と言った。", "次の日。"]
    text = "他说：『好。我去。』然后走了。"
    assert texts_of(text, sentences_per_segment=1)[0].startswith("他说：『好。我去。』")


def test_apostrophes_are_not_quotes_and_an_open_quote_protects_nothing():
    text = "The dog's bone was gone. He didn't care. The dogs' day came. It was over."
    assert len(texts_of(text, sentences_per_segment=1)) == 4
    unclosed = '"Wait. Stop. Listen to me. Please.\n\n"Fine," he said. He left.'
    assert texts_of(unclosed, sentences_per_segment=1) == [
        '"Wait.',
        "Stop.",
        "Listen to me.",
        "Please.",
        '"Fine," he said.',
        "He left.",
    ]


def test_a_quotation_longer_than_a_run_on_is_cut_between_its_sentences():
    speech = " ".join(f"Sentence number {n} of the long speech goes on and on here." for n in range(12))
    text = f'"{speech}" he said.'
    texts = texts_of(text, sentences_per_segment=2)
    assert len(texts) == 6 and texts[0].startswith('"Sentence number 0')


def test_a_short_exchange_of_dialogue_stays_on_one_page():
    text = 'The market was busy. "Are you sure?" asked Mara. "Quite sure," she said. Then they left.'
    assert texts_of(text, sentences_per_segment=2) == [
        'The market was busy. "Are you sure?" asked Mara. "Quite sure," she said.',
        "Then they left.",
    ]
    assert texts_of(text, words_per_segment=10)[0].endswith('"Quite sure," she said.')
    # Not when the page would grow past 1.5 times the size asked for.
    assert texts_of(text, sentences_per_segment=1) == [
        "The market was busy.",
        '"Are you sure?" asked Mara.',
        '"Quite sure," she said.',
        "Then they left.",
    ]
    assert texts_of(text, words_per_segment=4)[1:3] == ['"Are you sure?" asked Mara.', '"Quite sure," she said.']


def test_an_exchange_that_does_not_fit_after_the_text_before_it_starts_a_page():
    text = (
        'The old fox walked home slowly. "Are you sure?" asked Mara. "Quite sure, my dear," she said. Then they left.'
    )
    assert texts_of(text, words_per_segment=10) == [
        "The old fox walked home slowly.",
        '"Are you sure?" asked Mara. "Quite sure, my dear," she said.',
        "Then they left.",
    ]


def test_a_run_of_dialogue_pairs_each_line_with_its_answer():
    text = 'Night fell. "Hi!" said Ann. "Hello!" said Bob. "How are you?" said Ann. "Fine!" said Bob.'
    assert texts_of(text, sentences_per_segment=2) == [
        'Night fell. "Hi!" said Ann. "Hello!" said Bob.',
        '"How are you?" said Ann. "Fine!" said Bob.',
    ]


def test_a_page_never_holds_only_emoji_or_punctuation():
    assert texts_of("Hi! 🎉🎉. Bye.", sentences_per_segment=1) == ["Hi! 🎉🎉.", "Bye."]
    assert texts_of("🎉! Hi there. Bye.", sentences_per_segment=1)[0] == "🎉! Hi there."
    # A paragraph of emoji joins the next paragraph's first page, else the last page before it.
    text = "🦊🌙\n\nOnce upon a time. A fox lived.\n\n* * *\n\nThe end.\n\n🎉🎉"
    assert texts_of(text, sentences_per_segment=1) == [
        "🦊🌙\n\nOnce upon a time.",
        "A fox lived.",
        "* * *\n\nThe end.\n\n🎉🎉",
    ]
    assert texts_of("🎉\n\n🎈") == ["🎉\n\n🎈"]  # nothing has words: one page
    heading = "Chapter One\n🎉🎉\n\nIt was night."
    assert texts_of(heading) == ["Chapter One", "🎉🎉\n\nIt was night."]


VANISHING = ["\v", "\f", "\x85", "\u2028", "\u2029", "\x1c", "\x1d", "\x1e", "\x1f", "\r", "\u00a0", "\u3000", "\x07"]
PIECES = [
    "Hello",
    "world.",
    "Dr.",
    "!",
    "?",
    "…",
    "—",
    "🎉",
    "👨‍👩‍👧",
    "这是",
    "。",
    "「",
    "」",
    "“",
    "”",
    "‘",
    "’",
    "«",
    "»",
    "„",
    '"',
    "'",
    "مرحبا",
    "שלום",
    "\u200f",
    "3",
    "x",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pieces=st.lists(
        st.tuples(
            st.sampled_from(PIECES + VANISHING),
            st.sampled_from(["", " ", "\n", "\n\n", *VANISHING]),
        ),
        min_size=1,
        max_size=30,
    ),
    sizes=st.sampled_from([{"sentences_per_segment": 1}, {"sentences_per_segment": 3}, {"words_per_segment": 4}]),
)
def test_property_no_character_vanishes(pieces, sizes):
    text = "".join(a + b for a, b in pieces)
    if not text.strip():
        return
    segments = segment_story(text, **sizes)
    check(text, segments)  # every non-whitespace character is in exactly one page
    if has_words(text):
        assert all(has_words(s.text) for s in segments)
    title, body = split_title(text)
    if title is not None:
        assert text[:body].strip() == title and "\v" not in title and "\f" not in title
        assert all(s.start >= body or s.end <= body for s in segments)  # the title line is a page of its own
        after = segment_story(text, start=body, **sizes)
        assert all(text[p.start : p.end] == p.text and p.start >= body for p in after)
        assert "".join(text[a.end : b.start] for a, b in itertools.pairwise(after)).strip() == ""
        assert text[after[-1].end :].strip() == "" and text[body : after[0].start] == ""


def test_split_title_keeps_text_after_vertical_tab_and_form_feed():
    for text in ("Title\vMore words\n\nThe story.", "Title\fMore words\n\nThe story.", "Title\x85More\nStory."):
        assert split_title(text) == (None, 0)
        assert "More" in " ".join(texts_of(text))
    assert split_title("The Fox\u2028Once upon a time.") == ("The Fox", 8)
    assert split_title("The Fox\n\n🎉") == (None, 0)  # nothing with words after it
    assert split_title("🦊\n\nOnce upon a time.") == (None, 0)  # a title has words
    assert split_title("  The Fox  \r\n\r\nOnce.") == ("The Fox", 15)


def test_segment_story_can_cut_one_part_of_a_text():
    text = "The Fox\n\nOne. Two.\n\nThree."
    parts = segment_story(text, sentences_per_segment=1, start=9, end=18)
    assert [(p.text, p.start) for p in parts] == [("One.", 9), ("Two.", 14)]
    with pytest.raises(InputError, match="empty"):
        segment_story(text, start=7, end=9)
    with pytest.raises(ValueError):
        segment_story(text, start=5, end=2)


def test_has_words_and_paragraph_breaks():
    assert has_words("🎉 a") and has_words("山") and has_words("٣") and not has_words("🎉 … — *")
    assert has_paragraph_break("a\n\nb") and has_paragraph_break("a\u2029b") and has_paragraph_break("a\fb")
    assert not has_paragraph_break("a\nb") and not has_paragraph_break("a\vb")
