from dataclasses import replace

import numpy as np
import pytest
import torch

from core.requests import PageSpec
from engine.cache import get_cache
from engine.device import pick_device
from engine.errors import Cancelled, InputError, ModelUnavailable
from engine.illustrate import PictureRequest, SpeedOptions, illustrate_pages, open_illustrator
from engine.profiles import get_profile


@pytest.fixture(scope="module")
def profile(tiny_models):
    return get_profile("tiny")


def _pixels(image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def _draw(profile, requests, **kwargs):
    with open_illustrator(profile) as illustrator:
        return illustrator.illustrate(requests, **kwargs)


def test_same_seed_same_pixels_and_other_seed_other_pixels(profile):
    a, b, c = _draw(
        profile,
        [
            PictureRequest(key=k, prompt="a red fox in a lighthouse", seed=s)
            for k, s in (("a", 11), ("b", 11), ("c", 12))
        ],
        batch_size=1,  # exact to the bit at one batch size; across batch sizes see the next test
    )
    assert a.image.size == (64, 64)
    assert np.array_equal(_pixels(a.image), _pixels(b.image))
    assert not np.array_equal(_pixels(a.image), _pixels(c.image))


def test_a_seed_draws_the_same_picture_alone_or_in_a_batch(profile):
    prompts = ["a red fox", "a blue boat", "a stormy sea", "a golden lamp", "a basket of bread"]
    batch = _draw(profile, [PictureRequest(key=i, prompt=p, seed=100 + i) for i, p in enumerate(prompts)], batch_size=3)
    alone = _draw(profile, [PictureRequest(key=3, prompt=prompts[3], seed=103)])
    assert [r.key for r in batch] == [0, 1, 2, 3, 4]
    assert np.abs(_pixels(batch[3].image) - _pixels(alone[0].image)).max() <= 1


def test_settings_name_everything_needed_to_draw_it_again(profile):
    request = PictureRequest(
        key="p1", prompt="a fox", negative_prompt="text, watermark", seed=5, steps=3, guidance=2.5, width=72, height=64
    )
    (first,) = _draw(profile, [request])
    s = first.settings
    assert s["seed"] == 5 and s["steps"] == 3 and s["guidance"] == 2.5
    assert (s["width"], s["height"]) == (72, 64) and first.image.size == (72, 64)
    assert s["prompt"] == "a fox" and s["negative_prompt"] == "text, watermark"
    assert s["model_id"] == "tiny:illustrator" and s["scheduler"] == "EulerDiscreteScheduler"
    again = PictureRequest(
        key="again",
        prompt=s["prompt"],
        negative_prompt=s["negative_prompt"],
        seed=s["seed"],
        steps=s["steps"],
        guidance=s["guidance"],
        width=s["width"],
        height=s["height"],
    )
    (second,) = _draw(profile, [again])
    assert np.array_equal(_pixels(first.image), _pixels(second.image))


def test_progress_is_reported_per_step_and_cancel_stops_within_a_step(profile):
    seen = []
    requests = [PictureRequest(key=i, prompt="a fox", seed=i, steps=3) for i in range(4)]
    _draw(profile, requests, batch_size=2, on_progress=lambda done, total: seen.append((done, total)))
    assert seen == [(i, 6) for i in range(1, 7)]

    finished = []
    calls = {"n": 0}

    def cancel_after_four_checks():
        calls["n"] += 1
        return calls["n"] > 4

    with pytest.raises(Cancelled):
        _draw(profile, requests, batch_size=2, on_image=finished.append, should_cancel=cancel_after_four_checks)
    assert len(finished) == 2  # the first batch finished and was handed over; the second never was


def test_images_are_handed_over_as_each_batch_finishes(profile):
    order = []
    requests = [PictureRequest(key=i, prompt="a fox", seed=i) for i in range(5)]
    _draw(
        profile,
        requests,
        batch_size=2,
        on_image=lambda r: order.append(("image", r.key)),
        on_progress=lambda done, total: order.append(("step", done)),
    )
    assert [e for e in order if e[0] == "image"] == [("image", i) for i in range(5)]
    assert order.index(("image", 0)) < order.index(("step", 3))  # page 0 arrived before batch 2 started


def test_bad_settings_are_refused_with_a_sentence(profile):
    for bad in (dict(width=65), dict(height=4096), dict(steps=0), dict(guidance=-1.0), dict(seed=-3)):
        with pytest.raises(InputError) as info:
            _draw(profile, [PictureRequest(key=0, prompt="a fox", **bad)])
        assert info.value.message.endswith(".")
    with pytest.raises(InputError):
        _draw(profile, [PictureRequest(key=0, prompt="   ")])


def test_the_pipeline_is_loaded_once_and_reused(profile):
    _draw(profile, [PictureRequest(key=0, prompt="a fox", seed=1)])
    _draw(profile, [PictureRequest(key=0, prompt="a fox", seed=2)])
    choice = pick_device()
    key = ("illustrator", "tiny:illustrator", choice.device, str(choice.dtype))
    assert get_cache().load_count[key] == 1


def test_preview_decoder_draws_drafts_of_the_same_size(profile):
    with open_illustrator(profile, speed=SpeedOptions(preview=True)) as illustrator:
        (draft,) = illustrator.illustrate([PictureRequest(key=0, prompt="a fox", seed=3)])
    assert draft.image.size == (64, 64) and draft.settings["decoder"] == "preview"
    assert _pixels(draft.image).std() > 0


def test_missing_model_says_how_to_get_it(profile, tmp_path):
    missing = get_profile("tiny", overrides={"illustrator": "someone/no-such-model-anywhere"})
    with pytest.raises(ModelUnavailable) as info:
        _draw(missing, [PictureRequest(key=0, prompt="a fox")])
    assert "no-such-model-anywhere" in info.value.message and "tiny" in info.value.message
    folder = get_profile("tiny", overrides={"illustrator": str(tmp_path / "nowhere")})
    with pytest.raises(ModelUnavailable):
        _draw(folder, [PictureRequest(key=0, prompt="a fox")])


def test_regenerating_one_page_changes_only_that_page(profile):
    pages = [
        PageSpec(key=i, text=t, seed=40 + i)
        for i, t in enumerate(
            ["Pip the fox lived in a lighthouse.", "A storm rolled in from the west.", "The lamp glowed gold."]
        )
    ]
    book = {r.key: r for r in illustrate_pages(pages, profile, style="watercolor")}
    redo = illustrate_pages([replace(pages[1], seed=99)], profile, style="watercolor")
    assert [r.key for r in redo] == [1]
    assert not np.array_equal(_pixels(redo[0].image), _pixels(book[1].image))
    again = {r.key: r for r in illustrate_pages(pages, profile, style="watercolor")}
    for key in (0, 2):
        assert np.array_equal(_pixels(again[key].image), _pixels(book[key].image))
    assert book[0].settings["prompt"] != book[1].settings["prompt"]
    edited = illustrate_pages(
        [replace(pages[1], prompt_override="a tiny red boat on a grey sea")], profile, style="watercolor"
    )
    assert "boat" in edited[0].settings["prompt"] and edited[0].settings["seed"] == 41


def test_mixed_sizes_are_drawn_in_groups_and_returned_in_the_order_asked(profile):
    sizes = [(64, 64), (72, 64), (64, 64), (72, 64)]
    requests = [
        PictureRequest(key=f"p{i}", prompt="a fox", seed=i, width=w, height=h) for i, (w, h) in enumerate(sizes)
    ]
    drawn = []
    results = _draw(profile, requests, batch_size=4, on_image=lambda r: drawn.append(r.key))
    assert [r.key for r in results] == ["p0", "p1", "p2", "p3"]
    assert [r.image.size for r in results] == sizes
    assert drawn == ["p0", "p2", "p1", "p3"], "one batch per size"


# --- draft then final (issue 18) ---------------------------------------------------------------------


def test_a_draft_is_the_draft_steps_and_the_tiny_decoder_and_says_so(profile):
    with open_illustrator(profile, draft=True) as illustrator:
        draft, final = illustrator.illustrate(
            [
                PictureRequest(key="d", prompt="a fox", seed=3, draft=True),
                PictureRequest(key="f", prompt="a fox", seed=3),
            ]
        )
    assert draft.settings["draft"] is True and final.settings["draft"] is False
    assert draft.settings["steps"] == profile.draft_steps == 1 and final.settings["steps"] == profile.steps
    assert draft.settings["decoder"] == "preview" and final.settings["decoder"] == "full"
    assert draft.settings["dtype"] == "float32"
    assert draft.image.size == final.image.size == (64, 64)
    assert draft.latents is not None and draft.latents.shape[:2] == (1, 4)


def test_pages_start_as_drafts_on_a_cpu_only_where_the_profile_says_so():
    from engine.device import DeviceChoice
    from engine.illustrate import draft_by_default

    cpu, gpu = DeviceChoice("cpu", torch.float32), DeviceChoice("cuda", torch.bfloat16)
    assert draft_by_default(get_profile("fast"), cpu) is True
    assert draft_by_default(get_profile("fast"), gpu) is False
    assert draft_by_default(get_profile("tiny"), cpu) is False


def test_illustrate_pages_draws_a_whole_book_as_drafts_when_asked(profile):
    pages = [PageSpec(key=i, text=t, seed=7 + i) for i, t in enumerate(["A fox ran.", "A boat sailed."])]
    drafts = illustrate_pages(pages, profile, style="watercolor", draft=True)
    finals = illustrate_pages(pages, profile, style="watercolor", draft=False)
    assert [d.settings["draft"] for d in drafts] == [True, True]
    assert [f.settings["draft"] for f in finals] == [False, False]
    assert [d.settings["seed"] for d in drafts] == [f.settings["seed"] for f in finals]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_finishing_a_draft_decodes_its_own_latent_exactly_from_its_settings(profile, dtype):
    from engine.device import DeviceChoice
    from engine.illustrate import finish_drafts

    choice = DeviceChoice("cpu", dtype)
    with open_illustrator(profile, choice, draft=True) as illustrator:
        (draft,) = illustrator.illustrate([PictureRequest(key=0, prompt="a red fox", seed=21, draft=True)])
        # What the draft's latent looks like through the full decoder, drawn the ordinary way.
        (full,) = illustrator.illustrate([PictureRequest(key=0, prompt="a red fox", seed=21, steps=1)])
    assert draft.settings["dtype"] == str(dtype).removeprefix("torch.")
    # No choice given: finish_drafts reads the number format from the settings.
    (finished,) = finish_drafts([(0, draft.settings)], profile)
    assert torch.equal(finished.latents, draft.latents), "the latent is drawn again to the last bit"
    assert np.array_equal(_pixels(finished.image), _pixels(full.image))
    assert not np.array_equal(_pixels(finished.image), _pixels(draft.image)), "the full decoder, not the preview"
    s = finished.settings
    assert s["draft"] is False and s["decoder"] == "full" and s["finish"] == "decode" and s["finished_from"] == "draft"
    assert s["seed"] == 21 and s["steps"] == 1 and s["dtype"] == draft.settings["dtype"]
    # A kept latent skips the drawing and gives the same picture.
    (kept,) = finish_drafts([(0, draft.settings)], profile, latents={0: draft.latents}, choice=choice)
    assert np.array_equal(_pixels(kept.image), _pixels(finished.image))


def test_refining_a_draft_keeps_its_seed_and_size_and_is_repeatable(profile):
    from engine.illustrate import REFINE_STRENGTH, finish_drafts

    with open_illustrator(profile, draft=True) as illustrator:
        (draft,) = illustrator.illustrate([PictureRequest(key=0, prompt="a red fox", seed=5, draft=True)])
    (decoded,) = finish_drafts([(0, draft.settings)], profile)
    (refined,) = finish_drafts([(0, draft.settings)], profile, method="refine")
    (again,) = finish_drafts([(0, draft.settings)], profile, method="refine", latents={0: draft.latents})
    assert refined.image.size == (64, 64)
    assert np.array_equal(_pixels(refined.image), _pixels(again.image))
    assert not np.array_equal(_pixels(refined.image), _pixels(decoded.image))
    s = refined.settings
    assert s["finish"] == "refine" and s["refine_strength"] == REFINE_STRENGTH and s["steps"] == profile.steps
    assert s["draft_steps"] == 1 and s["seed"] == 5 and s["draft"] is False


def test_finishing_refuses_unknown_methods_and_settings_that_say_too_little(profile):
    from engine.illustrate import finish_drafts

    with pytest.raises(InputError) as info:
        finish_drafts(
            [(0, {"prompt": "a fox", "seed": 1, "steps": 1, "guidance": 0, "width": 64, "height": 64})],
            profile,
            method="sharpen",
        )
    assert "refine" in info.value.message
    with pytest.raises(InputError) as info:
        finish_drafts([(0, {"prompt": "a fox"})], profile)
    assert "draw the page again" in info.value.message
    assert finish_drafts([], profile) == []


def test_on_a_cpu_the_first_picture_comes_alone_and_the_rest_in_full_batches(profile):
    from engine.device import DeviceChoice

    sizes = []
    with open_illustrator(profile, DeviceChoice("cpu", torch.float32)) as illustrator:
        assert illustrator.defaults.first_alone and illustrator.defaults.batch_size == profile.batch_size == 4
        original = illustrator._draw

        def counting(batch, *args, **kwargs):
            sizes.append(len(batch))
            return original(batch, *args, **kwargs)

        illustrator._draw = counting
        illustrator.illustrate([PictureRequest(key=i, prompt="a fox", seed=i) for i in range(6)])
        assert sizes == [1, 4, 1]
        sizes.clear()
        illustrator.illustrate([PictureRequest(key=i, prompt="a fox", seed=i) for i in range(3)], batch_size=1)
        assert sizes == [1, 1, 1]


def test_finishing_openvino_drafts_where_openvino_is_missing_says_what_to_do(profile, monkeypatch):
    from engine import openvino_unet
    from engine.illustrate import finish_drafts

    monkeypatch.setattr(openvino_unet, "openvino_installed", lambda: False)
    monkeypatch.delenv("STORYBOOK_CPU_RUNTIME", raising=False)
    settings = {"prompt": "a fox", "seed": 1, "steps": 1, "guidance": 0.0, "width": 64, "height": 64}
    settings.update(draft=True, dtype="float32", runtime="openvino")
    with pytest.raises(InputError) as info:
        finish_drafts([(0, settings)], profile)
    # Not the runtime setting's own advice (unset STORYBOOK_CPU_RUNTIME): it is unset, and the draft says openvino.
    assert "drawn with the OpenVINO runtime" in info.value.message and "pip install openvino" in info.value.message
    assert "STORYBOOK_CPU_RUNTIME" not in info.value.message


def test_a_bf16_illustrator_is_read_straight_into_bf16_and_keeps_no_fp32_copy(profile, monkeypatch):
    """Peak host memory (issue 18): no fp32 model is built and then converted, and none is kept beside the bf16 one."""
    from diffusers import AutoencoderTiny, AutoPipelineForText2Image

    from engine.cache import ModelCache, use_cache
    from engine.device import DeviceChoice

    asked: list = []
    for cls in (AutoPipelineForText2Image, AutoencoderTiny):
        original = cls.from_pretrained.__func__

        def spy(klass, *args, _original=original, **kwargs):
            asked.append(kwargs.get("dtype"))
            return _original(klass, *args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", classmethod(spy))
    with (
        use_cache(ModelCache()) as cache,
        open_illustrator(profile, DeviceChoice("cpu", torch.bfloat16), draft=True) as il,
    ):
        (draft,) = il.illustrate([PictureRequest(key=0, prompt="a red fox", seed=2, draft=True)])
        modules = [m for m in il.pipe.components.values() if isinstance(m, torch.nn.Module)] + [il.preview_decoder]
        formats = {t.dtype for m in modules for t in [*m.parameters(), *m.buffers()] if t.is_floating_point()}
        held = [row["key"] for row in cache.report()]
    assert asked == [torch.bfloat16, torch.bfloat16], "both models are read from disk straight into bf16"
    assert formats == {torch.bfloat16}
    assert sorted(key[0] for key in held) == ["illustrator", "preview_decoder"]
    assert {key[3] for key in held} == {"torch.bfloat16"}
    assert draft.settings["dtype"] == "bfloat16"


def test_on_a_cpu_too_the_unet_and_both_decoders_run_channels_last_unless_switched_off(profile):
    """Issue 18: channels-last on every device (oneDNN's CPU convolutions are fastest in it), not only on a GPU."""

    def layouts(illustrator) -> set[bool]:
        modules = [illustrator.pipe.unet, illustrator.pipe.vae, illustrator.preview_decoder]
        weights = [m.weight for module in modules for m in module.modules() if isinstance(m, torch.nn.Conv2d)]
        return {w.is_contiguous(memory_format=torch.channels_last) for w in weights if w.shape[-1] > 1}

    cpu = pick_device("cpu")
    with open_illustrator(profile, cpu, draft=True) as illustrator:
        assert layouts(illustrator) == {True}
    with open_illustrator(profile, cpu, speed=SpeedOptions(channels_last=False), draft=True) as illustrator:
        assert layouts(illustrator) == {False}
    with open_illustrator(profile, cpu, draft=True) as illustrator:  # the cached pipeline comes back channels-last
        assert layouts(illustrator) == {True}
