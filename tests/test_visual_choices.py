"""Picture styles and PDF layouts as pictures: a schematic sample per style (Pillow, no model), a thumbnail per
layout set by the exporter itself, and the galleries that show them."""

from __future__ import annotations

import io
import shutil

import pytest
from PIL import Image, ImageChops, ImageStat
from streamlit.testing.v1 import AppTest

from engine.prompts import STYLES
from exports import LAYOUTS
from studio.actions.samples import SAMPLE_SIDE, layout_thumbnail, style_sample


def test_every_style_has_its_own_sample_made_once():
    samples = {key: style_sample(key) for key in STYLES}
    images = {key: Image.open(io.BytesIO(png)).convert("RGB") for key, png in samples.items()}
    assert all(im.size == (SAMPLE_SIDE, SAMPLE_SIDE) for im in images.values())
    keys = list(images)
    for i, a in enumerate(keys):  # no two styles look alike: every pair differs clearly
        for b in keys[i + 1 :]:
            diff = ImageStat.Stat(ImageChops.difference(images[a], images[b])).mean
            assert sum(diff) / 3 > 8, (a, b, diff)
    pencil = ImageStat.Stat(images["pencil"].convert("HSV")).mean[1]
    assert pencil < 10  # the pencil sketch has no colour
    assert style_sample("comic") is samples["comic"]  # cached: drawn once a process


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="layout thumbnails need poppler's pdftoppm")
def test_layout_thumbnails_are_the_exporters_own_pages():
    sizes = {layout: Image.open(io.BytesIO(layout_thumbnail(layout))).size for layout in LAYOUTS}
    assert sizes["picture_above"][1] > sizes["picture_above"][0]  # A4 portrait
    assert sizes["side_by_side"][0] > sizes["side_by_side"][1]  # landscape, as the exporter turns it
    assert sizes["facing"][0] > 1.8 * sizes["picture_above"][0]  # both facing pages
    square = Image.open(io.BytesIO(layout_thumbnail("picture_above", "8x8"))).size
    assert abs(square[0] - square[1]) <= 2


def _gallery_app():
    import streamlit as st

    from studio import ui

    ui.style_gallery(st.session_state.get("chosen", "comic"))


def test_the_style_gallery_marks_the_chosen_style():
    at = AppTest.from_function(_gallery_app, default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    captions = [i.captions[0] for i in at.image]
    assert len(captions) == len(STYLES)
    assert [c for c in captions if "chosen" in c] == [f"✓ {STYLES['comic'].label} (chosen)"]
