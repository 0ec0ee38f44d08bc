"""From images in a real browser: pictures in, a story written live, then the story panel's buttons (issue 16's live
design: while a job runs the panel is a fragment that sends nothing when nothing changed, so its buttons act in
callbacks, and each click must still be answered)."""

from __future__ import annotations

import re

import fixtures_images as fx
import pytest
from browserkit import chromium, running_studio
from PIL import Image

pytestmark = pytest.mark.browser


@pytest.fixture
def studio(tmp_path, tiny_models):
    with running_studio(tmp_path, tiny_models) as running:
        yield running.url


def write_from(browser, studio: str, folder, colors):
    """A page on From images that has been given one plain picture per colour and asked to write their story."""
    from playwright.sync_api import expect

    files = []
    for n, color in enumerate(colors, start=1):
        path = folder / f"picture-{n}.png"
        path.write_bytes(fx.encode(Image.new("RGB", (80, 60), color), "PNG"))
        files.append(str(path))
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(60_000)
    page.goto(f"{studio}/from-images")
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(files)
    write = page.get_by_role("button", name="Write the story")
    expect(write).to_be_enabled()
    write.click()
    return page


def test_a_story_is_written_live_and_each_passage_can_be_written_again_and_edited(studio, tmp_path):
    from playwright.sync_api import expect

    with chromium() as browser:
        page = write_from(browser, studio, tmp_path, [(220, 30, 30), (30, 200, 60), (40, 60, 220)])
        expect(page.get_by_text("Done: the story is written and saved.")).to_be_visible(timeout=120_000)
        expect(page.get_by_text(re.compile(r"^Picture [123]$"))).to_have_count(3)

        # A click in the panel acts (a callback) and the page follows what it started, to its outcome.
        page.get_by_role("button", name="Write again").first.click()
        expect(page.get_by_text("Writing the words for picture 1 again…", exact=True)).to_be_visible()
        expect(page.get_by_text("Done: the passage was written again.")).to_be_visible(timeout=120_000)

        # Words edited by hand are saved from the panel's Edit menu.
        page.get_by_role("button", name="Edit").first.click()
        box = page.get_by_role("textbox", name="The words for picture 1")
        box.fill("Pip found a red crab on the sand.")
        page.get_by_role("button", name="Save", exact=True).click()
        expect(page.get_by_text("Saved the words for picture 1.")).to_be_visible()
        page.keyboard.press("Escape")
        expect(page.get_by_text("Pip found a red crab on the sand.")).to_be_visible()
        assert page.get_by_text("Something went wrong").count() == 0


def test_stop_while_the_story_is_written_keeps_the_pictures(studio, tmp_path):
    # The panel's Stop button is drawn only in a live run that draws: a click on it must be answered at once.
    from playwright.sync_api import expect

    with chromium() as browser:
        page = write_from(browser, studio, tmp_path, [(30 * n, 120, 220 - 25 * n) for n in range(8)])
        stop = page.get_by_role("button", name="Stop")
        expect(stop).to_be_visible()
        page.wait_for_timeout(300)  # a live run is waiting on the worker now
        stop.click()
        expect(page.get_by_text(re.compile(r"^Stopped\. Your pictures are kept"))).to_be_visible()
        expect(page.get_by_role("button", name="Stop")).to_have_count(0)
        expect(page.get_by_text(re.compile(r"^Picture [1-8]$"))).to_have_count(8)  # every picture is still there
        assert page.get_by_text("Something went wrong").count() == 0
