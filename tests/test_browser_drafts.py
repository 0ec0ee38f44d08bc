"""Draft or final in a real browser (issue 18): a book set to quick drafts first draws drafts, each card says so,
the export counts them and finishes them before it makes the PDF, and the storyboard then shows final pictures.
Screenshots go to test-artifacts/ (drafts-storyboard.png, drafts-export.png)."""

from __future__ import annotations

import re

import pytest
from browserkit import ROOT, running_studio

pytestmark = pytest.mark.browser

ARTIFACTS = ROOT / "test-artifacts"
DRAFT_BADGE = re.compile(r"^\W*(bolt)?\W*Draft$")  # the badge: its icon (a ligature) and its word
STORY = "The Red Kite\n\nMo found a red kite in the shed. It had a long tail.\n\nThe wind took the kite up high."


@pytest.fixture
def studio(tmp_path, tiny_models):
    with running_studio(tmp_path, tiny_models) as running:
        yield running.url


def test_drafts_first_then_the_export_finishes_them_before_the_pdf(studio):
    from browserkit import chromium
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        page.goto(studio)
        page.get_by_role("button", name="Start a new story").click()
        story = page.get_by_role("textbox", name="Your story")
        story.fill(STORY)
        story.press("Control+Enter")
        expect(page.get_by_text("Last change: Change the story")).to_be_visible()
        page.get_by_role("button", name="Split into pages").click()
        expect(page.get_by_text(re.compile(r"^\d+ pages[.:]"))).to_be_visible()
        illustrate = page.get_by_role("button", name=re.compile(r"Illustrate all \d+ pages"))
        n = int(re.search(r"(\d+) pages", illustrate.inner_text()).group(1))

        # What the browser shows is what the server holds (the radio and the number box drawn from their own
        # defaults): a new book draws final pictures, one picture a page.
        expect(page.get_by_role("radio", name="Final pictures")).to_be_checked()
        expect(page.get_by_role("spinbutton", name="Pictures per page")).to_have_value("1")
        page.get_by_text("Quick drafts first").click()
        expect(page.get_by_text("Last change: Draw drafts first")).to_be_visible()
        expect(page.get_by_role("radio", name="Quick drafts first")).to_be_checked()
        illustrate.click()
        expect(page.get_by_text(re.compile(rf"Drawing {n} quick drafts"))).to_be_visible()
        expect(page.get_by_role("button", name=f"Finish all drafts ({n})")).to_be_visible(timeout=180_000)
        page.screenshot(path=str(ARTIFACTS / "drafts-storyboard.png"), full_page=True)
        expect(page.get_by_text(DRAFT_BADGE).first).to_be_visible()  # on the cards (nested elements match too)
        page.screenshot(path=str(ARTIFACTS / "drafts-storyboard.png"), full_page=True)

        page.get_by_role("link", name="Export").click()
        expect(page.get_by_text(f"{n} pages are drafts", exact=False)).to_be_visible()
        page.get_by_role("button", name="Finish the drafts first").click()
        expect(page.get_by_text(re.compile(r"^Your book is ready"))).to_be_visible(timeout=180_000)
        expect(page.get_by_role("button", name="Download the PDF")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "drafts-export.png"), full_page=True)

        page.get_by_role("link", name="Storyboard").first.click()
        expect(page.get_by_text(re.compile(r"^Version 2 of 2"))).to_have_count(n)
        expect(page.get_by_text(DRAFT_BADGE)).to_have_count(0)
        expect(page.get_by_role("radio", name="Quick drafts first")).to_be_checked()  # the book's stored choice
        assert page.get_by_text("Something went wrong").count() == 0
