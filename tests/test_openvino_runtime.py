"""The optional OpenVINO runtime for the UNet on a CPU (issue 18): the same tiny hub-layout models, converted from
the loaded torch UNet, kept on disk, recorded in every picture's settings, and redrawn the same."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import InputError
from engine.illustrate import PictureRequest, SpeedOptions, finish_drafts, open_illustrator
from engine.profiles import get_profile

ov = pytest.importorskip("openvino", reason="the optional OpenVINO runtime is not installed")

OPENVINO = SpeedOptions(runtime="openvino")


@pytest.fixture(scope="module")
def profile(tiny_models, one_cpu_thread):
    return get_profile("tiny")


def pixels(image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def draw(profile, speed, requests, **kwargs):
    with open_illustrator(profile, speed=speed, **kwargs) as illustrator:
        return illustrator.illustrate(requests, batch_size=1)


def test_openvino_draws_the_torch_picture_records_its_runtime_and_redraws_it_exactly(profile):
    request = PictureRequest(key=0, prompt="a red fox in a lighthouse", seed=7)
    (by_torch,) = draw(profile, SpeedOptions(runtime="torch"), [request])
    (by_openvino,) = draw(profile, OPENVINO, [request])
    (again,) = draw(profile, OPENVINO, [request])
    assert "runtime" not in by_torch.settings
    assert by_openvino.settings["runtime"] == "openvino"
    assert np.array_equal(pixels(by_openvino.image), pixels(again.image))  # the same picture every time
    # The same network, other kernels: the same picture to within a few levels.
    difference = np.abs(pixels(by_openvino.image) - pixels(by_torch.image))
    assert difference.mean() < 2.0, difference.mean()
    other = draw(profile, OPENVINO, [PictureRequest(key=1, prompt="a red fox in a lighthouse", seed=8)])[0]
    assert not np.array_equal(pixels(other.image), pixels(by_openvino.image))


def test_the_converted_model_is_kept_on_disk_and_not_converted_again(profile, monkeypatch):
    from engine.openvino_unet import _HELD, _cache_folder

    with open_illustrator(profile, speed=OPENVINO) as illustrator:
        folder = _cache_folder(illustrator.pipe.unet)
        assert (folder / "unet.xml").is_file() and (folder / "unet.bin").is_file()
        delattr(illustrator.pipe.unet, _HELD)  # as after a restart: compiled again, from the kept files

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(ov, "convert_model", no_conversion)
    (picture,) = draw(profile, OPENVINO, [PictureRequest(key=0, prompt="a kite", seed=3)])
    assert picture.settings["runtime"] == "openvino"


def test_a_page_with_a_reference_is_drawn_by_torch_and_says_so(profile):
    from engine.references import Reference

    reference = Reference(name="Mara", prompt="a girl in a yellow coat", seed=5)
    request = PictureRequest(key=0, prompt="Mara on the rocks", seed=3, reference=reference)
    (picture,) = draw(profile, OPENVINO, [request])
    assert "runtime" not in picture.settings and picture.settings["reference"]["name"] == "Mara"


def test_a_draft_drawn_by_openvino_is_finished_from_the_same_latent(profile):
    with open_illustrator(profile, speed=OPENVINO, draft=True) as illustrator:
        (draft,) = illustrator.illustrate([PictureRequest(key=0, prompt="a lighthouse", seed=4, draft=True)])
    assert draft.settings["runtime"] == "openvino" and draft.settings["draft"] is True
    (redrawn,) = finish_drafts([(0, draft.settings)], profile)
    (kept,) = finish_drafts([(0, draft.settings)], profile, latents={0: draft.latents})
    assert redrawn.settings["runtime"] == "openvino"
    assert np.array_equal(pixels(redrawn.image), pixels(kept.image))  # the draft's own latent, drawn again exactly


def test_asking_for_openvino_where_it_is_not_installed_says_what_to_do(profile, monkeypatch):
    from engine import openvino_unet

    monkeypatch.setattr(openvino_unet, "openvino_installed", lambda: False)
    with pytest.raises(InputError, match="pip install openvino"):
        with open_illustrator(profile, speed=OPENVINO):
            pass
    with pytest.raises(InputError, match="Unknown runtime"):
        openvino_unet.check_runtime("tensorrt")
    monkeypatch.setenv("STORYBOOK_CPU_RUNTIME", "OpenVINO")
    assert SpeedOptions().runtime == "openvino"
    monkeypatch.setenv("STORYBOOK_CPU_RUNTIME", "something else")
    assert SpeedOptions().runtime == "torch"


def test_a_refined_openvino_draft_is_refined_by_the_runtime_its_settings_name(profile, monkeypatch):
    from diffusers import UNet2DConditionModel

    with open_illustrator(profile, speed=OPENVINO, draft=True) as illustrator:
        (draft,) = illustrator.illustrate([PictureRequest(key=0, prompt="a lighthouse", seed=4, draft=True)])
    torch_steps = []
    original = UNet2DConditionModel.forward

    def counted(self, *args, **kwargs):
        torch_steps.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(UNet2DConditionModel, "forward", counted)
    # The latent is kept: every UNet step below is the refine's own.
    (by_openvino,) = finish_drafts([(0, draft.settings)], profile, method="refine", latents={0: draft.latents})
    assert by_openvino.settings["runtime"] == "openvino"
    assert torch_steps == [], "the settings say OpenVINO refined it, so torch's UNet must not have"
    torch_drawn = {k: v for k, v in draft.settings.items() if k != "runtime"}
    (by_torch,) = finish_drafts([(0, torch_drawn)], profile, method="refine", latents={0: draft.latents})
    assert "runtime" not in by_torch.settings and torch_steps, "a torch draft is refined by torch"


def test_the_compiled_unet_runs_on_the_threads_of_whoever_draws_now(profile, monkeypatch):
    with open_illustrator(profile, speed=OPENVINO) as illustrator:
        first = illustrator._openvino
        assert int(first.get_property("INFERENCE_NUM_THREADS")) == 1  # the tiny model's one thread
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # another user of the same loaded model, on two threads
    with open_illustrator(profile, speed=OPENVINO) as illustrator:
        assert int(illustrator._openvino.get_property("INFERENCE_NUM_THREADS")) == 2
        (picture,) = illustrator.illustrate([PictureRequest(key=0, prompt="a kite", seed=3)])
    assert picture.settings["runtime"] == "openvino"
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    with open_illustrator(profile, speed=OPENVINO) as illustrator:
        assert int(illustrator._openvino.get_property("INFERENCE_NUM_THREADS")) == 1
