"""One real browser run: `streamlit run studio/Home.py` driven by headless Chromium through playwright.

Write a story, split it, illustrate it, wait for the pictures, draw one page again, open the library;
a second window on the same story follows it all without being touched, saves an edit, and shows
the library, whose cover changes when the first window picks another picture for page 1.
Screenshots go to test-artifacts/ (storyboard.png, library.png) at the repository root.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from browserkit import CHROMIUM, CHROMIUM_ARGS, ROOT, running_studio

pytestmark = pytest.mark.browser

ARTIFACTS = ROOT / "test-artifacts"
STORY = """The Moon Garden

Mira planted a silver seed under her window. Every night she whispered to it, and every night it grew a little taller.

One evening the plant opened a flower as bright as the moon. Mira's cat, *Biscuit*, sat beside it and purred.

The neighbours came to look. "It glows!" said old Mr. Finch. <b>Nobody</b> had ever seen such a thing.
"""


def _screenshot(page, path: Path, full: bool = True) -> None:
    """The whole page: Streamlit scrolls inside its main block, so grow the window to fit it first."""
    if not full:
        page.screenshot(path=str(path))
        return
    height = page.evaluate("""() => Math.max(...[...document.querySelectorAll('[data-testid="stMain"], '
        + '[data-testid="stAppViewContainer"], section, div')].map(e => e.scrollHeight))""")
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": min(max(height, size["height"]), 6000)})
    page.wait_for_timeout(700)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)


@pytest.fixture
def studio_url(tmp_path, tiny_models):
    with running_studio(tmp_path, tiny_models) as studio:
        yield studio.url


def test_write_split_illustrate_regenerate_and_open_the_library(studio_url):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        expect.set_options(timeout=30_000)
        try:
            page.goto(studio_url)
            expect(page.get_by_text("No stories yet — start one or open the sample")).to_be_visible()

            page.get_by_role("button", name="Start a new story").click()
            story = page.get_by_role("textbox", name="Your story")
            expect(story).to_be_visible()
            assert "project=" in page.url

            story.fill(STORY)
            story.press("Control+Enter")
            # As a person would: the box has kept the words (its run is over) before the next click.
            expect(page.get_by_text("Last change: Change the story")).to_be_visible()
            page.get_by_role("button", name="Split into pages").click()
            expect(page.get_by_text(re.compile(r"^\d+ pages\. The first line"))).to_be_visible()
            expect(page.get_by_role("heading", name="The Moon Garden")).to_be_visible()
            # Markup in the story is shown as typed, never rendered.
            expect(page.get_by_text("<b>Nobody</b>", exact=False).first).to_be_visible()

            illustrate = page.get_by_role("button", name=re.compile(r"Illustrate all \d+ pages"))
            pages = int(re.search(r"(\d+) pages", illustrate.inner_text()).group(1))
            # A second window on the same story, left alone: it follows what the first one does.
            other = browser.new_page(viewport={"width": 1400, "height": 1000})
            other.goto(page.url)
            expect(other.get_by_role("button", name=re.compile(r"Illustrate all \d+ pages"))).to_be_enabled()
            # A double click, as people do: one job, and the tab's own save is not taken for another tab's edit.
            illustrate.dblclick()
            expect(page.get_by_text(re.compile(r"Done: \d+ pictures drawn and saved"))).to_be_visible(timeout=120_000)
            expect(page.get_by_text(re.compile(r"^Version 1 of 1"))).to_have_count(pages)
            assert page.get_by_text("changed in another tab").count() == 0
            expect(other.get_by_text(re.compile(r"^Version 1 of 1"))).to_have_count(pages)

            page.get_by_role("button", name="New picture").first.click()
            expect(page.get_by_text(re.compile(r"^Version 2 of 2"))).to_have_count(1, timeout=60_000)
            expect(page.get_by_text(re.compile(r"^Version 1 of 1"))).to_have_count(pages - 1)
            expect(other.get_by_text(re.compile(r"^Version 2 of 2"))).to_have_count(1)
            # The first window stored the pages' seeds, a new version of the story; with nothing typed the
            # second one took it quietly, so its own edit is saved, not refused as based on an old version.
            expect(other.get_by_text("changed in another tab")).to_have_count(0)
            author = other.get_by_role("textbox", name="Author")
            author.fill("Mira's mum")
            author.press("Enter")  # saved as it is changed: no Save button to forget
            expect(other.get_by_text("Saved the author.")).to_be_visible()
            expect(other.get_by_text("changed in another tab")).to_have_count(0)
            # The second window goes to the library, where the story's cover is page 1's picture.
            other.get_by_role("link", name="Library").click()
            expect(other.get_by_role("heading", name="The Moon Garden")).to_be_visible()
            cover = other.locator('[data-testid="stImage"] img').first
            drawn_cover = cover.get_attribute("src")
            _screenshot(page, ARTIFACTS / "storyboard.png")

            # Browse the versions of that page and go back to the first picture.
            page.get_by_role("button", name="Pictures", exact=True).first.click()
            page.wait_for_timeout(300)
            _screenshot(page, ARTIFACTS / "pictures-popover.png", full=False)
            # Every control says what it does in words: none is named by its icon alone ("download icon").
            expect(page.get_by_role("button", name=re.compile(r"^\w+ icon$"))).to_have_count(0)
            # One on every card, and one for each of the two versions in the menu.
            expect(page.get_by_role("button", name="Download", exact=True)).to_have_count(pages + 2)
            expect(page.get_by_role("button", name="Discard", exact=True)).to_have_count(1)  # the version not in use
            page.get_by_role("button", name="Use this", exact=True).click()
            expect(page.get_by_text("now uses version 1").first).to_be_visible()
            expect(page.get_by_text(re.compile(r"^Version 1 of 2"))).to_have_count(1)
            page.keyboard.press("Escape")
            # Page 1 went back to its first picture: the library in the other window shows the new cover.
            expect(cover).not_to_have_attribute("src", drawn_cover)
            other.close()

            page.get_by_role("link", name="Library").click()
            expect(page.get_by_role("heading", name="Your library")).to_be_visible()
            expect(page.get_by_role("heading", name="The Moon Garden")).to_be_visible()
            _screenshot(page, ARTIFACTS / "library.png")

            # Every page's address opens that page on a fresh load (a refresh, a bookmark), with no
            # "Page not found" dialog over it, and the open story comes back from the address.
            project = re.search(r"project=(\d+)", page.url)
            assert project, page.url
            for path, heading in [
                ("storyboard", "The Moon Garden"),
                ("from-images", "From images"),
                ("export", "Make the book"),
                ("settings", "Settings"),
                ("", "Your library"),
            ]:
                page.goto(f"{studio_url}/{path}?project={project.group(1)}")
                expect(page.get_by_role("heading", name=heading).first).to_be_visible()
                page.wait_for_timeout(500)
                assert page.get_by_text("Page not found").count() == 0, path
            page.goto(f"{studio_url}/storyboard?project={project.group(1)}")
            page.reload()
            expect(page.get_by_text(re.compile(r"^Version 1 of 2"))).to_have_count(1)

            # Change one word of page 1 in the story box and split again: every picture stays where it was,
            # and page 1 says its words changed since its picture.
            story = page.get_by_role("textbox", name="Your story")
            expect(story).to_have_value(re.compile("silver seed"))
            story.fill(story.input_value().replace("silver seed", "golden seed"))
            story.press("Control+Enter")
            # As a person would: the box has kept the words (its run is over) before the next click.
            expect(page.get_by_text("Last change: Edit the story")).to_be_visible()
            page.get_by_role("button", name="Split into pages").click()
            expect(page.get_by_text(re.compile(r"^(\d+) pages: \1 kept their pictures"))).to_be_visible()
            expect(page.get_by_text(re.compile(r"^Version 1 of 2"))).to_have_count(1)
            pages = page.get_by_text(re.compile(r"^Version \d of \d")).count()
            page.get_by_role("heading", name="Storyboard").scroll_into_view_if_needed()
            _screenshot(page, ARTIFACTS / "storyboard-words-changed.png", full=False)
            expect(page.get_by_text("words changed since this picture").first).to_be_visible()

            # Delete page 2 (after the confirmation), then Undo: it is back, with its picture and its words.
            page.get_by_role("button", name=re.compile(r"Page$")).nth(1).click()
            page.get_by_role("button", name="Delete this page…").click()
            page.get_by_role("button", name="Delete the page").click()
            expect(page.get_by_text(re.compile(r"Bin \(1 item\)"))).to_be_visible()  # the page waits in the bin
            expect(page.get_by_text(re.compile(r"^Version \d of \d"))).to_have_count(pages - 1)
            expect(page.get_by_text("sat beside it and purred.", exact=True)).to_have_count(0)  # not on a card
            page.get_by_role("button", name="Undo").click()
            expect(page.get_by_text("Undone: Delete page 2.")).to_be_visible()
            expect(page.get_by_text(re.compile(r"^Version \d of \d"))).to_have_count(pages)
            expect(page.get_by_text(re.compile(r"^One evening the plant")).first).to_be_visible()
            _screenshot(page, ARTIFACTS / "storyboard-after-undo.png")
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "browser-failure.png"), full_page=True)
            raise
        finally:
            browser.close()
