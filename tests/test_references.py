"""Reference pictures: the shared-attention processor and the IP-Adapter through diffusers' loader."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from engine.errors import InputError
from engine.illustrate import PictureRequest, open_illustrator
from engine.profiles import PROFILES, get_profile
from engine.references import Reference, reference_support

PROMPT = "a girl in a yellow raincoat on the rocks"
REF = Reference(name="Mara", prompt="a girl in a yellow raincoat", seed=77, share_rate=1.0)


@pytest.fixture(scope="module")
def profile(tiny_models, one_cpu_thread):
    return get_profile("tiny")


def _px(picture) -> np.ndarray:
    return np.asarray(picture.image.convert("RGB"), dtype=np.int16)


def _draw(profile, requests, **kwargs):
    with open_illustrator(profile) as illustrator:
        return illustrator.illustrate(requests, **kwargs)


def test_shared_attention_changes_the_page_and_redraws_exactly(profile):
    plain, shared, other_page, again_alone = _draw(
        profile,
        [
            PictureRequest(key="plain", prompt=PROMPT, seed=5),
            PictureRequest(key="shared", prompt=PROMPT, seed=5, reference=REF),
            PictureRequest(key="other", prompt="a fox on a boat", seed=6, reference=REF),
        ],
    ) + _draw(profile, [PictureRequest(key="alone", prompt=PROMPT, seed=5, reference=REF)])
    assert not np.array_equal(_px(plain), _px(shared))  # the reference changes the page
    assert np.abs(_px(shared) - _px(again_alone)).max() <= 1  # drawn alone again: the same picture
    assert shared.settings["reference"] == {
        "name": "Mara",
        "method": "shared_attention",
        "reference_id": "",
        "prompt": REF.prompt,
        "negative_prompt": "",
        "seed": 77,
        "share_rate": 1.0,
    }
    assert "reference" not in plain.settings
    assert other_page.settings["reference"]["seed"] == 77


def test_share_rate_zero_is_a_plain_page_and_the_processor_is_removed_after(profile):
    off = replace(REF, share_rate=0.0)
    plain, zero = _draw(
        profile,
        [PictureRequest(key=1, prompt=PROMPT, seed=5), PictureRequest(key=2, prompt=PROMPT, seed=5, reference=off)],
    )
    assert np.abs(_px(plain) - _px(zero)).max() <= 1
    with open_illustrator(profile) as illustrator:
        names = {type(p).__name__ for p in illustrator.pipe.unet.attn_processors.values()}
    assert "SharedSelfAttnProcessor" not in names


def test_the_reference_row_is_the_reference_drawn_alone(profile):
    from engine.references import SharedPlan, shared_attention

    (alone,) = _draw(profile, [PictureRequest(key="r", prompt=REF.prompt, seed=REF.seed)])
    with open_illustrator(profile) as illustrator:
        plan = SharedPlan([None, 0], rate=1.0)
        import torch

        with shared_attention(illustrator.pipe.unet, plan), torch.inference_mode():
            out = illustrator.pipe(
                prompt=[REF.prompt, PROMPT],
                num_inference_steps=2,
                guidance_scale=4.0,
                negative_prompt=["", ""],
                width=64,
                height=64,
                generator=[torch.Generator().manual_seed(REF.seed), torch.Generator().manual_seed(5)],
            )
    assert np.abs(_px(alone) - np.asarray(out.images[0], dtype=np.int16)).max() <= 1


def test_bad_references_are_refused_in_words(profile):
    with pytest.raises(InputError, match="share rate"):
        _draw(profile, [PictureRequest(key=1, prompt=PROMPT, reference=replace(REF, share_rate=1.5))])
    with pytest.raises(InputError, match="missing"):
        _draw(profile, [PictureRequest(key=1, prompt=PROMPT, reference=Reference("Mara", method="ip_adapter"))])


def test_ip_adapter_loads_through_diffusers_and_steers_the_page(profile):
    picture = Image.effect_noise((64, 64), 90).convert("RGB")
    ref = Reference("Mara", method="ip_adapter", image=picture, scale=1.0, reference_id="ref-1")
    plain, steered, again = _draw(
        profile,
        [
            PictureRequest(key=1, prompt=PROMPT, seed=5),
            PictureRequest(key=2, prompt=PROMPT, seed=5, reference=ref),
            PictureRequest(key=3, prompt=PROMPT, seed=5, reference=ref),
        ],
    )
    assert not np.array_equal(_px(plain), _px(steered))
    assert np.abs(_px(steered) - _px(again)).max() <= 1
    assert steered.settings["reference"]["image_sha256"] == ref.image_sha256
    assert steered.settings["reference"]["reference_id"] == "ref-1"
    with open_illustrator(profile) as illustrator:
        illustrator.illustrate([PictureRequest(key=2, prompt=PROMPT, seed=5, reference=ref)])
        assert illustrator.pipe.image_encoder is not None
        (scale_zero,) = illustrator.illustrate([PictureRequest(key=1, prompt=PROMPT, seed=5)])
    assert np.abs(_px(plain) - _px(scale_zero)).max() <= 1  # adapter loaded, no reference: adds nothing
    (fresh,) = _draw(profile, [PictureRequest(key=1, prompt=PROMPT, seed=5)])  # the next session starts clean
    assert np.abs(_px(plain) - _px(fresh)).max() <= 1
    with open_illustrator(profile) as illustrator:
        assert illustrator.pipe.image_encoder is None


def test_each_profile_says_how_it_draws_references():
    assert reference_support(PROFILES["fast"])[0] == "shared_attention"
    assert reference_support(PROFILES["classic"])[0] == "ip_adapter"
    bare = replace(PROFILES["fast"], reference="", models={"illustrator": "x"})
    method, sentence = reference_support(bare)
    assert method == "" and "cannot draw with reference pictures" in sentence


def test_pictures_redraw_exactly_from_their_stored_settings(profile):
    import json

    from engine.illustrate import request_from_settings

    picture = Image.effect_noise((64, 64), 60).convert("RGB")
    ip = Reference("Mara", method="ip_adapter", image=picture, scale=0.8)
    first = _draw(
        profile,
        [
            PictureRequest(key=1, prompt=PROMPT, seed=5, reference=replace(REF, share_rate=0.25)),
            PictureRequest(key=2, prompt=PROMPT, seed=6, reference=ip),
        ],
    )
    stored = [json.loads(json.dumps(p.settings)) for p in first]  # what storage keeps: plain JSON
    again = _draw(
        profile,
        [request_from_settings(1, stored[0]), request_from_settings(2, stored[1], reference_image=picture)],
    )
    for a, b in zip(first, again):
        assert np.abs(_px(a) - _px(b)).max() <= 1 and a.settings == b.settings
    with pytest.raises(InputError, match="needed"):
        request_from_settings(2, stored[1])
    with pytest.raises(InputError, match="changed"):
        request_from_settings(2, stored[1], reference_image=Image.new("RGB", (64, 64), "red"))


def test_an_adapter_that_does_not_fit_the_unet_is_refused_in_words(profile, tiny_models, tmp_path):
    """As the SD 1.5 adapter in an SD 2.1-shaped UNet (768 vs 1024): here a UNet 48 wide instead of 32."""
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel

    from engine.references import load_ip_adapter

    pipe = StableDiffusionPipeline.from_pretrained(tiny_models["illustrator"], local_files_only=True)
    config = dict(UNet2DConditionModel.load_config(tiny_models["illustrator"], subfolder="unet"))
    config["cross_attention_dim"] = 48
    pipe.unet = UNet2DConditionModel.from_config(config)
    with pytest.raises(InputError, match="no IP-Adapter that fits"):
        load_ip_adapter(pipe, str(tiny_models["ip_adapter"]), local_files_only=True)
    assert pipe.image_encoder is None


def test_a_draft_drawn_with_an_ip_adapter_reference_is_finished_with_that_picture(profile):
    import torch

    from engine.illustrate import finish_drafts

    picture = Image.effect_noise((64, 64), 70).convert("RGB")
    ip = Reference("Mara", method="ip_adapter", image=picture, scale=0.8)
    with open_illustrator(profile, draft=True) as illustrator:
        (draft,) = illustrator.illustrate([PictureRequest(key=0, prompt=PROMPT, seed=5, reference=ip, draft=True)])
    (finished,) = finish_drafts([(0, draft.settings)], profile, reference_images={"Mara": picture})
    assert torch.equal(finished.latents, draft.latents)
    assert finished.settings["reference"] == draft.settings["reference"]
    with pytest.raises(InputError, match="needed"):
        finish_drafts([(0, draft.settings)], profile)  # drawing it again needs the reference picture
    (kept,) = finish_drafts([(0, draft.settings)], profile, latents={0: draft.latents})  # a kept latent does not
    assert np.array_equal(_px(kept), _px(finished))
