"""Real-browser checks of the promises a hostile tester tried (issue 14, item 9): a refresh while pictures
are being drawn loses nothing (the job goes on and its pictures show after the reload), and of two tabs
editing one story, the stale one is told so and neither tab's words are lost."""

from __future__ import annotations

import re

import pytest
from browserkit import chromium, running_studio

pytestmark = pytest.mark.browser

STORY = "The Night Ferry\n\n" + "\n\n".join(
    f"At stop number {n} the little ferry waited for the fox. The fox carried a lantern and a map." for n in range(1, 9)
)


def _new_split_story(page, url: str, text: str = STORY) -> int:
    from playwright.sync_api import expect

    page.goto(url)
    page.get_by_role("button", name="Start a new story").click()
    story = page.get_by_role("textbox", name="Your story")
    expect(story).to_be_visible()
    story.fill(text)
    story.press("Control+Enter")
    # As a person would: the box has kept the words (its run is over) before the next click.
    expect(page.get_by_text("Last change: Change the story")).to_be_visible()
    page.get_by_role("button", name="Split into pages").click()
    expect(page.get_by_text(re.compile(r"^\d+ pages[.:]"))).to_be_visible()
    button = page.get_by_role("button", name=re.compile(r"Illustrate all \d+ pages"))
    return int(re.search(r"(\d+) pages", button.inner_text()).group(1))


@pytest.fixture
def studio(tmp_path, tiny_models):
    with running_studio(tmp_path, tiny_models) as running:
        url = running.url
        yield url


def test_a_refresh_while_pictures_are_drawn_loses_nothing(studio):
    from playwright.sync_api import expect

    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        pages = _new_split_story(page, studio)
        assert pages >= 4
        page.get_by_role("button", name=re.compile(r"Illustrate all \d+ pages")).click()
        expect(page.get_by_text(re.compile(r"Drawing \d+ pictures"))).to_be_visible()
        drawn_before = page.get_by_text(re.compile(r"^Version 1 of 1")).count()
        page.reload()  # while the job runs: the page that started it is gone
        expect(page.get_by_role("textbox", name="Your story")).to_be_visible()
        expect(page.get_by_text(re.compile(r"^Version 1 of 1"))).to_have_count(pages, timeout=180_000)
        assert drawn_before < pages  # the reload did come while pictures were still being drawn
        assert page.get_by_text("Something went wrong").count() == 0


def test_two_tabs_on_one_story_the_stale_one_is_told_and_nothing_is_lost(studio):
    from playwright.sync_api import expect

    with chromium() as browser:
        first = browser.new_page(viewport={"width": 1400, "height": 1000})
        first.set_default_timeout(30_000)
        _new_split_story(first, studio)
        second = browser.new_page(viewport={"width": 1400, "height": 1000})
        second.set_default_timeout(30_000)
        second.goto(first.url)
        expect(second.get_by_role("textbox", name="Your story")).to_have_value(STORY)

        # The second tab starts typing; meanwhile the first one changes the story and keeps it.
        mine = STORY + "\n\nThe second tab wrote this ending."
        theirs = STORY + "\n\nThe first tab wrote this ending."
        second_box = second.get_by_role("textbox", name="Your story")
        second_box.fill(mine)
        first_box = first.get_by_role("textbox", name="Your story")
        first_box.fill(theirs)
        first.get_by_role("heading", name="The Night Ferry").click()  # the box loses focus: kept
        expect(first.get_by_text(re.compile(rf"^Saved: {len(theirs):,} characters · "))).to_be_visible()

        # The second tab follows the stored story on its own (its server has seen no typing: a box sends its
        # words when it loses focus), while the browser still holds the typing based on the old words.
        expect(second.get_by_text("Updated with changes made in another tab or window.")).to_be_visible()

        # Now the second tab's words leave its box: refused as based on an old version, and said.
        second.get_by_role("heading", name="The Night Ferry").click()
        expect(second.get_by_text(re.compile(r"not saved yet: the story was changed in another tab"))).to_be_visible()
        expect(second.get_by_text(re.compile(r"^This story was changed in another tab"))).to_be_visible()
        expect(second_box).to_have_value(mine)  # still there to copy: nothing typed is lost

        # The first tab's story is the one kept; a fresh load shows it.
        first.reload()
        expect(first.get_by_role("textbox", name="Your story")).to_have_value(theirs)


def test_stop_while_pictures_are_drawn_keeps_what_was_drawn(studio):
    # The live board sends nothing while nothing changes (it starts its run over without drawing); a click on the
    # panel's Stop button must still be answered in the run it starts, at once.
    from playwright.sync_api import expect

    long_story = "The Long Ferry\n\n" + "\n\n".join(
        f"At stop {n} the ferry waited. The fox carried a lantern." for n in range(1, 41)
    )
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        pages = _new_split_story(page, studio, long_story)
        assert pages >= 24
        page.get_by_role("button", name=re.compile(r"Illustrate all \d+ pages")).click()
        stop = page.get_by_role("button", name="Stop")
        expect(stop).to_be_visible()
        page.wait_for_timeout(300)  # a live run is waiting on the worker now
        stop.click()
        expect(page.get_by_text(re.compile(r"^Stopped\. \d+ pictures? drawn before that"))).to_be_visible()
        kept = int(re.search(r"Stopped\. (\d+)", page.get_by_text(re.compile(r"^Stopped\.")).inner_text()).group(1))
        assert kept < pages  # it stopped before the end
        expect(page.get_by_role("button", name="Stop")).to_have_count(0)
        assert page.get_by_text("Something went wrong").count() == 0
