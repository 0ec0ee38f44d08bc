"""The storyteller on the tiny chat (Qwen2-shaped) and plain (GPT-2-shaped) models: one passage per
picture, reproducible by seed, one passage retold alone, inputs bounded, gibberish cleaned or replaced."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import fixtures_images as fx

from core.seeds import sub_seed
from engine.errors import InputError
from engine.storyteller import (
    Story,
    Storyteller,
    caption_sentence,
    clean_passage,
    clean_title,
    derived_title,
    max_new_tokens_for,
)

pytestmark = pytest.mark.usefixtures("one_cpu_thread")

CAPTIONS = ["a dog running on the beach", "a castle in the forest", "the moon over the sea"]
WORDS = 12  # short passages keep the tiny models quick


@pytest.fixture(scope="module")
def chat(tiny_models):
    return Storyteller(profile="tiny")


@pytest.fixture(scope="module")
def plain(tiny_models):
    return Storyteller(ref=str(tiny_models["storyteller_plain"]), profile="tiny")


@pytest.fixture(scope="module")
def chat_story(chat):
    return chat.tell(CAPTIONS, hints="a brave little dog", tone="adventurous", age=5, words_per_picture=WORDS, seed=7)


def test_chat_model_writes_one_passage_per_picture(chat_story):
    assert len(chat_story.passages) == len(CAPTIONS)
    assert all(isinstance(p, str) and p.strip() == p and p for p in chat_story.passages)
    assert chat_story.title
    settings = chat_story.settings
    assert settings["chat"] is True and settings["model"] == "tiny:storyteller"
    assert {k: settings[k] for k in ("seed", "temperature", "tone", "age", "words_per_picture", "max_new_tokens")} == {
        "seed": 7,
        "temperature": 0.8,
        "tone": "adventurous",
        "age": 5,
        "words_per_picture": WORDS,
        "max_new_tokens": max_new_tokens_for(WORDS),
    }
    assert settings["captions"] == CAPTIONS and settings["hints"] == "a brave little dog"
    assert (
        len(settings["passage_seeds"]) == 3 and settings["passage_seeds"][0] == sub_seed(7, "passage", 0, 0)
    ) or 0 in settings["retried"]
    assert "=== picture 3 ===" in chat_story.raw
    json.dumps(chat_story.to_dict())  # settings are plain JSON


@pytest.mark.parametrize("count", [1, 4])
def test_plain_model_writes_one_passage_per_picture(plain, count):
    captions = (CAPTIONS * 2)[:count]
    story = plain.tell(captions, words_per_picture=WORDS, seed=3)
    assert len(story.passages) == count and all(story.passages)
    assert story.settings["chat"] is False


def test_same_seed_same_story_other_seed_other_story(chat, chat_story):
    again = chat.tell(CAPTIONS, hints="a brave little dog", tone="adventurous", age=5, words_per_picture=WORDS, seed=7)
    assert again.passages == chat_story.passages and again.title == chat_story.title
    other = chat.tell(CAPTIONS, hints="a brave little dog", tone="adventurous", age=5, words_per_picture=WORDS, seed=8)
    assert other.passages != chat_story.passages


def test_plain_model_is_reproducible_too(plain):
    first = plain.tell(CAPTIONS[:2], words_per_picture=WORDS, seed=11)
    assert plain.tell(CAPTIONS[:2], words_per_picture=WORDS, seed=11).passages == first.passages
    assert plain.tell(CAPTIONS[:2], words_per_picture=WORDS, seed=12).passages != first.passages


def test_greedy_is_reproducible_and_still_one_passage_each(chat):
    first = chat.tell(CAPTIONS[:2], words_per_picture=WORDS, temperature=0)
    second = chat.tell(CAPTIONS[:2], words_per_picture=WORDS, temperature=0, seed=99)
    assert first.passages == second.passages, "greedy decoding ignores the seed"
    assert len(first.passages) == 2 and all(first.passages)


def test_retell_changes_only_its_passage(chat, chat_story):
    retold = chat.retell(chat_story, 1)
    assert retold.passages[0] == chat_story.passages[0] and retold.passages[2] == chat_story.passages[2]
    assert retold.passages[1] != chat_story.passages[1] and retold.passages[1]
    assert retold.title == chat_story.title and retold.seed == chat_story.seed
    assert retold.settings["retold"] == {"1": 1}
    assert chat_story.settings["retold"] == {} and chat_story.passages[1] != retold.passages[1], "original untouched"
    # The n-th retelling is reproducible; the next one differs.
    assert chat.retell(chat_story, 1).passages == retold.passages
    assert chat.retell(retold, 1).passages[1] != retold.passages[1]
    assert chat.retell(retold, 1).settings["retold"] == {"1": 2}


def test_retell_refuses_a_passage_that_is_not_there(chat, chat_story):
    with pytest.raises(InputError, match="There is no passage 4"):
        chat.retell(chat_story, 3)
    with pytest.raises(InputError):
        chat.retell(chat_story, -1)


def test_given_title_is_kept(chat):
    story = chat.tell(CAPTIONS[:1], words_per_picture=WORDS, title="  The   Dog Who Flew ")
    assert story.title == "The Dog Who Flew" and story.settings["title_source"] == "given"


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"captions": []}, "Add at least one picture"),
        ({"captions": ["a cat"] * 13}, "at most 12 pictures and there are 13"),
        ({"captions": "a cat"}, "one caption per picture"),
        ({"captions": ["x" * 301]}, "caption of picture 1 is 301 characters"),
        ({"hints": "h" * 1001}, "hints are 1,001 characters long; keep them under 1,000"),
        ({"tone": "grim"}, "Choose one of the tones"),
        ({"age": 2}, "age must be a whole number from 3 to 12"),
        ({"age": 13}, "age must be a whole number from 3 to 12"),
        ({"words_per_picture": 5}, "Words per picture"),
        ({"temperature": -0.1}, "temperature must be between 0"),
        ({"title": "t" * 200}, "title may be at most 120"),
    ],
)
def test_inputs_are_bounded(kwargs, message):
    teller = Storyteller(profile="tiny")  # validation comes before any model is loaded
    args = {"captions": CAPTIONS, **kwargs}
    captions = args.pop("captions")
    with pytest.raises(InputError, match=message):
        teller.tell(captions, **args)


def test_empty_output_is_retried_once_then_replaced_by_the_caption(chat, monkeypatch):
    calls = []

    def silent(self, bundle, prompt, max_new_tokens, temperature, seed):
        calls.append(seed)
        return "<|im_end|> assistant: \x00\ufffd ..."

    monkeypatch.setattr(Storyteller, "_generate", silent)
    story = chat.tell(["a red boat", ""], words_per_picture=WORDS, seed=5)
    assert story.passages == ["In this picture, there is a red boat.", "The story goes on in this picture."]
    assert story.settings["fallbacks"] == [0, 1] and story.settings["retried"] == [0, 1]
    assert story.settings["title_source"] == "derived" and story.title == "The Red Boat"
    assert calls[:4] == [
        sub_seed(5, "passage", 0, 0),
        sub_seed(5, "passage", 0, 1),
        sub_seed(5, "passage", 1, 0),
        sub_seed(5, "passage", 1, 1),
    ]
    assert len(calls) == 5, "two tries per passage, one for the title"


def test_a_retry_that_works_is_used(chat, monkeypatch):
    answers = iter(["", "The boat sailed home. And then", "Boat Day"])
    monkeypatch.setattr(Storyteller, "_generate", lambda *a, **k: next(answers))
    story = chat.tell(["a red boat"], words_per_picture=WORDS, seed=5)
    assert story.passages == ["The boat sailed home."]
    assert story.settings["retried"] == [0] and story.settings["fallbacks"] == []
    assert story.settings["passage_seeds"] == [sub_seed(5, "passage", 0, 1)]
    assert story.title == "Boat Day" and story.settings["title_source"] == "generated"


def test_each_passage_is_handed_over_as_it_is_finished(chat, monkeypatch):
    # Passage 2 comes back empty twice, so the caller gets its fallback sentence, as the Story holds it.
    answers = iter(["Picture 1: The boat sailed.", "", "", "The moon rose. And", "Boat Night"])
    monkeypatch.setattr(Storyteller, "_generate", lambda *a, **k: next(answers))
    events = []
    story = chat.tell(
        ["a red boat", "a castle", "the moon"],
        words_per_picture=WORDS,
        seed=5,
        on_passage=lambda i, text: events.append(("passage", i, text)),
        progress=lambda done, total: events.append(("progress", done, total)),
    )
    assert story.passages == ["The boat sailed.", "In this picture, there is a castle.", "The moon rose."]
    assert events == [
        ("passage", 0, story.passages[0]),
        ("progress", 1, 3),
        ("passage", 1, story.passages[1]),
        ("progress", 2, 3),
        ("passage", 2, story.passages[2]),
        ("progress", 3, 3),
    ]


def test_story_round_trips_through_a_dict(chat_story):
    again = Story.from_dict(json.loads(json.dumps(chat_story.to_dict())))
    assert again == chat_story


@pytest.mark.parametrize(
    "raw,clean",
    [
        ("<|im_start|>assistant\nThe dog ran. It was fun<|im_end|>", "The dog ran."),
        ("Assistant: Picture 2: The fox smiled! She", "The fox smiled!"),
        ("The cat slept.\nPicture 3: A new page.", "The cat slept."),
        ("The owl hooted.\nuser: write more", "The owl hooted."),
        ("  **Once upon a time** a bear \x07 danced  ", "Once upon a time a bear danced"),
        ('"The moon was round."', "The moon was round."),
        ("<|im_end|>", ""),
        ("... 123 !!", ""),
    ],
)
def test_clean_passage(raw, clean):
    assert clean_passage(raw) == clean


def test_clean_passage_plain_keeps_the_first_paragraph():
    assert clean_passage("The boat left.\n\nPicture 2 shows", plain=True) == "The boat left."
    assert clean_passage("one two three four five", max_words=3) == "one two three"


def test_titles_and_fallback_sentences():
    assert clean_title('Title: "The Brave Dog".\nMore text') == "The Brave Dog"
    assert derived_title(["a dog running on the beach"]) == "The Dog Running on the Beach"
    assert derived_title(["there is a castle in the forest"]) == "The Castle in the Forest"
    assert derived_title(["", "  "]) == "A Picture Story"
    assert caption_sentence("a red kite.") == "In this picture, there is a red kite."
    assert sub_seed(1, "passage", 0, 0) == sub_seed(1, "passage", 0, 0) != sub_seed(1, "passage", 1, 0)


def test_cli_tell_prints_story_json_and_metrics(tiny_models, tmp_path, capsys):
    from engine.__main__ import main

    files = []
    for number, color in enumerate([(200, 30, 30), (30, 200, 30)]):
        path = tmp_path / f"page{number}.png"
        path.write_bytes(fx.png((40, 30), color))
        files.append(str(path))
    code = main(
        [
            "tell",
            *files,
            "--profile",
            "tiny",
            "--hints",
            "a dog's day",
            "--tone",
            "funny",
            "--age",
            "7",
            "--seed",
            "4",
            "--words",
            str(WORDS),
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    story = out["story"]
    assert [p["image"] for p in story["passages"]] == files
    assert [p["caption"] for p in story["passages"]] == [c["caption"] for c in out["captions"]]
    assert all(p["text"] for p in story["passages"]) and story["title"]
    assert story["settings"]["seed"] == 4 and story["settings"]["tone"] == "funny"
    assert {"caption_coverage", "type_token_ratio", "repeated_trigram_rate", "flesch_kincaid_grade"} <= set(
        out["metrics"]
    )


def test_cli_tell_refuses_bad_options_in_one_sentence(tiny_models, tmp_path, capsys):
    from engine.__main__ import main

    path = tmp_path / "one.png"
    path.write_bytes(fx.png())
    assert main(["tell", str(path), "--profile", "tiny", "--age", "40"]) == 1
    assert capsys.readouterr().err.strip() == "Error: The reader's age must be a whole number from 3 to 12."
    assert main(["tell", *[str(path)] * 13, "--profile", "tiny"]) == 1
    # one rule, one sentence: the CLI says what the storyteller and the From images screen say
    too_many = "A story can be told from at most 12 pictures and there are 13: leave 1 out."
    assert capsys.readouterr().err.strip() == f"Error: {too_many}"
    with pytest.raises(InputError) as refused:
        Storyteller(profile="tiny").tell(["a cat"] * 13)
    assert refused.value.message == too_many
