"""CLIP score (torchmetrics' definition), its bootstrap summary, and character consistency on tiny models."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from engine.errors import InputError
from engine.profiles import get_profile
from engine.scoring import bootstrap_mean, open_consistency, open_scorer


@pytest.fixture(scope="module")
def profile(tiny_models):
    return get_profile("tiny")


def _picture(color) -> Image.Image:
    return Image.new("RGB", (48, 40), color)


def test_clip_score_is_torchmetrics_definition(profile):
    images = [_picture("red"), _picture("blue")]
    texts = ["a red fox", "a blue boat on the sea"]
    with open_scorer(profile, "ranker") as scorer:
        scores = scorer.score(images, texts)
        # The same computed by hand from the model's own embeddings.
        tokens = scorer.processor.tokenizer(texts, padding=True, truncation=True, max_length=77, return_tensors="pt")
        pixels = scorer.processor.image_processor(images, return_tensors="pt")["pixel_values"]
        with torch.no_grad():
            text = scorer.model.get_text_features(**tokens)
            image = scorer.model.get_image_features(pixel_values=pixels)
        text = text if isinstance(text, torch.Tensor) else text.pooler_output
        image = image if isinstance(image, torch.Tensor) else image.pooler_output
        cos = torch.nn.functional.cosine_similarity(image, text, dim=-1)
    assert scores == pytest.approx([max(100 * float(c), 0.0) for c in cos], abs=1e-4)
    assert all(0.0 <= s <= 100.0 for s in scores)


def test_long_text_is_cut_to_77_tokens_not_refused(profile):
    with open_scorer(profile, "judge") as scorer:
        # The tiny tokenizer spells words letter by letter: 25 "fox" are 75 tokens, plus start and end.
        long = scorer.score([_picture("red")], ["fox " * 25 + "boat " * 50])[0]
        cut = scorer.score([_picture("red")], ["fox " * 25])[0]
        shorter = scorer.score([_picture("red")], ["fox " * 24])[0]
    assert long == pytest.approx(cut, abs=1e-4)
    assert shorter != pytest.approx(cut, abs=1e-4)


def test_ranker_and_judge_are_different_models(profile):
    images, texts = [_picture("green")], ["a green tree"]
    with open_scorer(profile, "ranker") as ranker, open_scorer(profile, "judge") as judge:
        assert ranker.model_id != judge.model_id
        assert ranker.model.config.text_config.hidden_size != judge.model.config.text_config.hidden_size
        ranker.score(images, texts), judge.score(images, texts)


def test_scorer_refuses_what_it_cannot_do(profile):
    with pytest.raises(InputError):
        with open_scorer(profile, "illustrator"):
            pass
    with open_scorer(profile) as scorer, pytest.raises(InputError):
        scorer.score([_picture("red")], [])


def test_bootstrap_interval():
    summary = bootstrap_mean([10.0, 20.0, 30.0, 40.0])
    assert summary["mean"] == 25.0 and summary["n"] == 4
    assert 10.0 <= summary["low"] < 25.0 < summary["high"] <= 40.0
    assert bootstrap_mean([5.0]) == {"mean": 5.0, "low": 5.0, "high": 5.0, "n": 1}
    assert bootstrap_mean([])["mean"] is None
    assert bootstrap_mean([1.0, 9.0, 3.0]) == bootstrap_mean([1.0, 9.0, 3.0])  # fixed seed


def test_consistency_is_higher_for_identical_pictures(profile):
    with open_consistency(profile) as scorer:
        same = scorer.score([_picture("red"), _picture("red")])
        other = scorer.score([_picture("red"), Image.effect_noise((48, 40), 80).convert("RGB")])
        assert scorer.score([_picture("red")]) is None
        per = scorer.per_character([_picture("red"), _picture("red"), _picture("blue")], [["Pip"], ["Pip"], ["Mara"]])
    assert same == pytest.approx(100.0, abs=1e-3)
    assert other < same
    assert per["Pip"] == pytest.approx(100.0, abs=1e-3) and per["Mara"] is None
