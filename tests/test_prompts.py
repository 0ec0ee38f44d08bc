"""Segment text to prompts: styles, negatives, characters, overrides, and fitting the CLIP window."""

import re
import time

import pytest

from engine.errors import InputError
from engine.prompts import (
    DEFAULT_NEGATIVE,
    DEFAULT_STYLE,
    STYLES,
    PromptPair,
    build_prompt,
    count_tokens,
    fit_to_tokens,
    get_style,
)

SEGMENT = (
    "Once upon a time, on a windy island at the edge of the sea, there lived a small red fox named Pip. "
    "Pip lived in the old lighthouse with Mrs. Gull, who kept the lamp burning every night."
)
DIALOGUE = '"The lamp has gone out!" cried Mrs. Gull. "The fishing boats will never find their way home."'
CHARACTERS = [("Pip", "a small red fox with a green scarf"), ("Mrs. Gull", "an old seagull in a blue apron")]


@pytest.fixture(scope="module")
def clip_tokenizer(tiny_models):
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(tiny_models["illustrator"] / "tokenizer")


def test_style_presets():
    assert DEFAULT_STYLE in STYLES
    for key in ("watercolor", "pencil", "comic", "oil", "photo", "flat_vector", "crayon"):
        style = get_style(key)
        assert style.key == key and style.label and style.prefix and style.suffix


@pytest.mark.parametrize("key", list(STYLES))
def test_every_style_leads_with_its_prefix_and_guards_against_text(key):
    pair = build_prompt(SEGMENT, key)
    assert isinstance(pair, PromptPair)
    assert pair.prompt.startswith(STYLES[key].prefix)
    assert "fox" in pair.prompt and "lighthouse" in pair.prompt
    assert "text" in pair.negative_prompt and "watermark" in pair.negative_prompt
    for extra in filter(None, (item.strip() for item in STYLES[key].negative_extra.split(","))):
        assert extra in pair.negative_prompt


def test_default_negative():
    for word in ("text", "letters", "words", "caption", "watermark", "signature", "logo", "blurry", "deformed"):
        assert word in DEFAULT_NEGATIVE


def test_narrative_becomes_a_description():
    prompt = build_prompt(SEGMENT, "watercolor").prompt
    for phrase in ("windy island", "small red fox", "Pip", "old lighthouse", "Mrs Gull", "lamp"):
        assert phrase in prompt
    words = set(re.findall(r"[\w']+", prompt.lower()))
    assert not words & {"once", "upon", "time", "the", "a", "there", "who", "every"}


def test_speech_verbs_go_and_speech_ranks_after_narration():
    prompt = build_prompt(DIALOGUE, "pencil").prompt
    assert "cried" not in prompt
    assert prompt.index("Gull") < prompt.index("lamp") < prompt.index("fishing boats")


def test_characters_are_described_when_named():
    prompt = build_prompt("Pip ran to the beach.", characters=CHARACTERS).prompt
    assert "a small red fox with a green scarf named Pip" in prompt
    assert "seagull" not in prompt
    both = build_prompt("pip's friend mrs. gull waved.", characters=CHARACTERS).prompt  # any case, possessive
    assert "green scarf" in both and "blue apron" in both
    assert "named" not in build_prompt("Pipers played.", characters=CHARACTERS).prompt  # whole words only


def test_setting_is_added():
    assert "a windy island lighthouse" in build_prompt("Pip ran.", setting="a windy island lighthouse").prompt


def test_override_gets_the_style_or_is_used_verbatim():
    styled = build_prompt(SEGMENT, "comic", override="a fox on a boat at night", characters=CHARACTERS)
    assert styled.prompt.startswith("comic book panel, a fox on a boat at night")
    assert "halftone" in styled.prompt and "Pip" not in styled.prompt
    verbatim = "Comic book panel of a fox, moonlight"
    assert build_prompt(SEGMENT, "comic", override=verbatim).prompt == verbatim
    assert build_prompt(SEGMENT, "none", override="a fox").prompt == "a fox"
    assert build_prompt("", "photo", override="a fox").prompt.startswith("photograph, a fox")
    assert "text" in styled.negative_prompt


def test_unknown_style_lists_valid_ones():
    with pytest.raises(InputError) as caught:
        build_prompt(SEGMENT, "cubist")
    message = str(caught.value)
    assert "cubist" in message and all(key in message for key in STYLES)


def test_blank_segment_without_override():
    with pytest.raises(InputError):
        build_prompt("   ", "watercolor")


def test_fit_with_the_tiny_clip_tokenizer_keeps_prefix_and_nouns(clip_tokenizer):
    assert count_tokens("fox", clip_tokenizer) == 5  # BOS, f, o, x</w>, EOS: one token a letter
    pair = build_prompt(
        SEGMENT, "watercolor", characters=CHARACTERS, setting="a windy island lighthouse", tokenizer=clip_tokenizer
    )
    print("\nfitted:", pair.prompt)
    assert len(clip_tokenizer(pair.prompt).input_ids) <= 77
    assert len(clip_tokenizer(pair.negative_prompt).input_ids) <= 77
    assert pair.prompt.startswith("watercolor children's book illustration, ")
    assert "island" in pair.prompt and "fox" in pair.prompt
    assert "pastel" not in pair.prompt  # the style suffix went before any content did
    assert "text" in pair.negative_prompt and "watermark" in pair.negative_prompt


@pytest.mark.parametrize("key", list(STYLES))
def test_every_style_fits_the_window(clip_tokenizer, key):
    for text in (SEGMENT, DIALOGUE, "word " * 300):
        pair = build_prompt(text, key, characters=CHARACTERS, tokenizer=clip_tokenizer)
        assert len(clip_tokenizer(pair.prompt).input_ids) <= 77
        assert pair.prompt.startswith(STYLES[key].prefix)


def test_fit_to_tokens_on_a_prompt_string(clip_tokenizer):
    short = "a fox"
    assert fit_to_tokens(short, clip_tokenizer) == short
    long = (
        "watercolor children's book illustration, a big fox and a small fox on a boat, "
        "the moon and many stars, soft pastel colors, gentle light, paper texture, whimsical"
    )
    fitted = fit_to_tokens(long, clip_tokenizer)
    assert len(clip_tokenizer(fitted).input_ids) <= 77
    assert fitted.startswith("watercolor children's book illustration, ")
    assert "fox" in fitted and "boat" in fitted
    assert "pastel" not in fitted and "whimsical" not in fitted
    tiny = fit_to_tokens(long, clip_tokenizer, max_tokens=12)
    assert tiny and len(clip_tokenizer(tiny).input_ids) <= 12
    with pytest.raises(ValueError):
        fit_to_tokens(long, clip_tokenizer, max_tokens=2)


def test_fit_without_tokenizer_uses_a_generous_word_guess(clip_tokenizer):
    long_story = " ".join(["The brave little dog found a red ball near the old castle gate."] * 20)
    prompt = build_prompt(long_story, "photo").prompt
    assert count_tokens(prompt) <= 77
    assert prompt.startswith("photograph, ") and "dog" in prompt
    fitted = fit_to_tokens("photograph, " + "dog cat " * 60)
    assert count_tokens(fitted) <= 77 and fitted.startswith("photograph, dog")


def test_a_pasted_novel_is_fitted_quickly(clip_tokenizer):
    novel = "The brave little dog found a red ball near the old castle gate. " * 3000
    started = time.perf_counter()
    pair = build_prompt(novel, "oil", characters=CHARACTERS, tokenizer=clip_tokenizer)
    fitted = fit_to_tokens("photograph, " + novel, clip_tokenizer)
    elapsed = time.perf_counter() - started
    print(f"\n{len(novel):,} characters fitted twice in {elapsed:.2f} s")
    assert elapsed < 5
    assert len(clip_tokenizer(pair.prompt).input_ids) <= 77 and "dog" in pair.prompt
    assert len(clip_tokenizer(fitted).input_ids) <= 77 and fitted.startswith("photograph, ")


def test_deterministic():
    assert build_prompt(SEGMENT, characters=CHARACTERS) == build_prompt(SEGMENT, characters=CHARACTERS)


def test_markup_in_the_story_is_not_drawn():
    pair = build_prompt('<b>Nobody</b> had ever seen <img src="/etc/passwd"> such a thing.', "watercolor")
    assert "Nobody" in pair.prompt
    for leak in ("<", ">", " b ", "img", "passwd"):
        assert leak not in pair.prompt


def test_code_inside_script_and_style_is_not_drawn():
    pair = build_prompt('<style>.a{color:red}</style><SCRIPT type="x">alert(1)</script > The brave dog ran.', "none")
    assert pair.prompt == "brave dog ran"


def test_initialisms_keep_their_clause_together():
    prompt = build_prompt("At 5 p.m. the fox, e.g. a red one, reached the U.S.A. coast.", "none").prompt
    assert prompt == "5 pm fox, red, reached USA coast"


def test_a_capitalised_stopword_inside_a_line_is_a_name():
    assert build_prompt("Dr. Who opened the blue box.", "none").prompt == "Dr Who opened blue box"
    assert build_prompt("“Run!” said Will, and the dragon slept.", "none").prompt == "Will, dragon slept, Run"
    # Capitals at the start of a clause or of a line of verse are no names.
    verse = "The cat sat on the mat\nAnd then it ran away\nWho could catch it?"
    assert build_prompt(verse, "none").prompt == "cat sat on mat ran away catch"


def test_a_name_made_of_stopwords_survives_fitting_once(clip_tokenizer):
    story = "Dr. Who met Dr. Who by the long blue box. " + "The old tall red tower stood on green hills. " * 12
    prompt = build_prompt(story, "watercolor", tokenizer=clip_tokenizer).prompt
    assert len(clip_tokenizer(prompt).input_ids) <= 77
    assert prompt.count("Who") == 1 and "Dr Who" in prompt
