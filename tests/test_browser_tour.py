"""A newcomer's walk through every page in a real browser (headless Chromium through playwright, as in
test_browser.py, which walks the storyboard's pictures): the empty library, importing a bundle of a story already
there, the story box's caption and the Book details (closing words, the models dropdown), From images with a
refused file, the layouts as pictures and the PDF named from the title, Settings, the missing models of a studio
started offline, and the page after the studio stops.

Every page is photographed in the light and the dark theme at 1400 and 800 px (test-artifacts/tour/), and
axe-core (tests/vendor/axe.min.js, MPL-2.0) checks it: serious and critical findings (and skipped heading levels)
fail the test, and every finding is written to test-artifacts/tour/axe.json.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from browserkit import CHROMIUM, CHROMIUM_ARGS, ROOT, running_studio, serve, stop
from test_browser import _screenshot

pytestmark = pytest.mark.browser

TOUR = ROOT / "test-artifacts" / "tour"
AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
WIDTHS = (1400, 800)
BLOCKING = {"serious", "critical"}
ALSO_BLOCKING = {"heading-order"}  # moderate in axe, but a skipped heading level is a pattern the studio controls
# Findings inside Streamlit's own widgets that the studio cannot change from Python, each with why.
STREAMLIT_OWN: dict[str, str] = {}


@pytest.fixture
def studio(tmp_path, tiny_models):
    # Opened as localhost, as a person's browser opens it (the "connection lost" box words it for that name).
    with running_studio(tmp_path, tiny_models, host="localhost") as running:
        yield running.url, running.home, running.server


class Tour:
    """Screenshots and accessibility findings of each page visited."""

    def __init__(self, page):
        self.page = page
        self.findings: dict[str, list[dict]] = {}

    def theme(self, dark: bool) -> None:
        """The browser's own light or dark preference, which the studio's two themes follow."""
        self.page.emulate_media(color_scheme="dark" if dark else "light")

    def _axe_run(self) -> list[dict]:
        # Streamlit fades the elements of a run in progress (data-stale) while a fragment reruns, as the sidebar's
        # running jobs do every second: faded text fails the contrast check for a moment. Checked between runs.
        self.page.wait_for_function("() => !document.querySelector('[data-stale=\"true\"]')", timeout=10_000)
        return self.page.evaluate(
            """async () => (await axe.run(document, {resultTypes: ['violations']})).violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 6).map(n => n.target.join(' ') + ' :: ' + n.html.slice(0, 160))}))"""
        )

    def axe(self, name: str) -> list[dict]:
        self.page.add_script_tag(path=str(AXE))
        found = self._axe_run()
        if any(f["id"] == "color-contrast" for f in found):  # a run may have started during the check: once more
            self.page.wait_for_timeout(1000)
            found = self._axe_run()
        self.findings[name] = found
        return found

    def visit(self, name: str, ready) -> None:
        """Photograph the page as it is now, in both widths, in the light theme and then (reloaded) the dark one,
        checking it in each; the page is left in the dark theme, which the next visit's goto turns back."""
        page = self.page
        # Every control says what it does in words: none is named by its icon alone ("delete icon").
        assert page.get_by_role("button", name=re.compile(r"^\w+ icon$")).count() == 0, name
        for dark in (False, True):
            if dark:
                self.theme(True)
                page.reload()
                ready()
            for width in WIDTHS:
                page.set_viewport_size({"width": width, "height": 900})
                page.wait_for_timeout(300)
                _screenshot(page, TOUR / f"{name}-{'dark' if dark else 'light'}-{width}.png")
            page.set_viewport_size({"width": 1400, "height": 900})
            self.axe(f"{name} ({'dark' if dark else 'light'})")
        self.theme(False)

    def blocking(self) -> dict[str, list[dict]]:
        def blocks(finding: dict) -> bool:
            return (finding["impact"] in BLOCKING or finding["id"] in ALSO_BLOCKING) and finding[
                "id"
            ] not in STREAMLIT_OWN

        return {
            name: [f for f in found if blocks(f)] for name, found in self.findings.items() if any(map(blocks, found))
        }


def cut_off(control) -> list[str]:
    """The parts of a control (itself included) whose words are wider than their box: cut off or ellipsed."""
    return control.evaluate(
        """el => [el, ...el.querySelectorAll('*')]
            .filter(e => e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1)
            .map(e => `${e.tagName}: ${e.scrollWidth} px of words in ${e.clientWidth} px`)"""
    )


def assert_read_whole(page, controls) -> None:
    """Each control's words read whole in a wide and a narrow window (the page is left at 1400 px)."""
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(300)
        for control in controls:
            assert not cut_off(control), f"cut off at {width} px: {cut_off(control)}"
    page.set_viewport_size({"width": 1400, "height": 900})


def test_a_newcomer_tours_every_page_but_the_storyboard(studio, tmp_path):
    from PIL import Image
    from playwright.sync_api import expect, sync_playwright
    from pypdf import PdfReader

    from storage import Library
    from studio import actions

    url, home, server = studio
    TOUR.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900}, accept_downloads=True)
        page.set_default_timeout(30_000)
        expect.set_options(timeout=30_000)
        tour = Tour(page)
        try:
            # The empty library offers each way in once.
            page.goto(url)
            welcome = page.get_by_text("No stories yet — start one or open the sample")
            tour.visit("library-empty", lambda: expect(welcome).to_be_visible())
            expect(page.get_by_role("button", name="Open the sample story")).to_have_count(1)
            expect(page.get_by_role("button", name="Start a new story")).to_have_count(1)
            expect(page.get_by_role("button", name="New story", exact=True)).to_have_count(0)

            # A bundle of a story that is already in the library comes in as "… (imported)".
            fox = actions.open_sample(Library(home))
            bundle = tmp_path / "fox.storybook.zip"
            bundle.write_bytes(Library(home).export_bundle(fox.id))
            page.goto(url)
            expect(page.get_by_role("heading", name="The Lighthouse Fox")).to_be_visible()
            page.get_by_role("button", name="Import").click()
            page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(bundle))
            page.get_by_role("button", name="Import this bundle").click()
            expect(page.get_by_text(re.compile(r"already had a story called “The Lighthouse Fox”"))).to_be_visible()
            expect(page.get_by_role("heading", name="The Lighthouse Fox (imported)")).to_be_visible()
            expect(page.get_by_role("button", name="Import this bundle")).to_be_hidden()  # the menu did its job
            # The top row and the story cards wrap rather than cut their buttons short ("Open …", "I…" at 800 px).
            top_row = [page.get_by_role("button", name=name, exact=True) for name in ("New story", "Import")]
            top_row.append(page.get_by_role("button", name="Open the sample story"))
            assert_read_whole(page, (*top_row, page.get_by_role("button", name="Open", exact=True).first))
            tour.visit("library", lambda: expect(page.get_by_role("heading", name="Your library")).to_be_visible())

            # A new story's box: words pasted but not yet sent are not called saved; leaving the box keeps them.
            fresh = actions.create_project(Library(home))
            page.goto(f"{url}/storyboard?project={fresh.id}")
            story = page.get_by_role("textbox", name="Your story")
            nothing = page.get_by_text(re.compile(r"^Nothing saved yet: write or paste your story, then click outside"))
            expect(nothing).to_be_visible()
            story.fill("Pip found a shell.\n\nPip kept it.")  # in the browser only: the box has not lost focus
            page.wait_for_timeout(1000)
            expect(nothing).to_be_visible()
            expect(page.get_by_text(re.compile(r"^Saved: |· saved$"))).to_have_count(0)
            page.get_by_role("heading", level=1).click()  # a click outside the box sends its words
            expect(page.get_by_text(re.compile(r"^Saved: 32 characters · 7 words\."))).to_be_visible()
            assert Library(home).get_project(fresh.id).story_text == "Pip found a shell.\n\nPip kept it."

            # Book details: the closing words are the book's own (saved as typed, printed by the PDF below), and
            # the models dropdown reads whole (name and a few words; the description below it).
            page.goto(f"{url}/storyboard?project={fox.id}")
            closing = page.get_by_role("textbox", name="Closing words")
            expect(closing).to_have_attribute("placeholder", "The End")
            expect(page.get_by_text("No picture yet").first).to_be_visible()  # the page is drawn to its last card
            page.wait_for_timeout(1000)
            closing.fill("Goodnight, little fox")
            closing.press("Enter")
            expect(page.get_by_text("Saved the closing words.")).to_be_visible()
            assert Library(home).get_project(fox.id).closing == "Goodnight, little fox"
            models = page.get_by_role("combobox", name="Models (profile)")
            expect(models).to_have_value("tiny: try it offline, draws noise")
            illustrate = page.get_by_role("button", name=re.compile(r"^Illustrate all \d+ pages$"))
            # The first card's New picture button: the cards wrap at a width their buttons read whole in, rather
            # than three to a row whatever the window (at 800 px they were 63 px for 81 px of words, "New pi…").
            new_picture = page.get_by_role("button", name="New picture").first
            assert_read_whole(page, (models, illustrate, new_picture))
            tour.visit("storyboard", lambda: expect(page.get_by_role("textbox", name="Closing words")).to_be_visible())

            # From images: a refused file is named with its reason in the one "Not in the story" box.
            page.goto(f"{url}/from-images")
            expect(page.get_by_role("heading", name="From images")).to_be_visible()
            good = tmp_path / "red.png"
            Image.new("RGB", (80, 60), (220, 30, 30)).save(good)
            svg = tmp_path / "drawing.svg"
            svg.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>')
            page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files([str(good), str(svg)])
            expect(page.get_by_text("Not in the story: 1 file")).to_be_visible()
            expect(page.get_by_text(re.compile(r"'drawing.svg' is an SVG file"))).to_be_visible()
            # The pictures' own buttons read whole (four columns cut them to "E…" and "L…" at 800 px).
            assert_read_whole(page, [page.get_by_role("button", name=n, exact=True) for n in ("Earlier", "Leave out")])
            tour.visit("from-images", lambda: expect(page.get_by_role("heading", name="From images")).to_be_visible())

            # Export: the layouts as the exporter draws them, and a PDF named from the book's title.
            page.goto(f"{url}/export?project={fox.id}")
            expect(page.get_by_role("heading", name="Make the book")).to_be_visible()
            expect(page.get_by_text("✓ Picture above the words (chosen)")).to_be_visible()
            page.get_by_role("button", name="Make the PDF").click()
            download_button = page.get_by_role("button", name="Download the PDF")
            expect(download_button).to_be_visible(timeout=60_000)
            with page.expect_download() as pdf:
                download_button.click()
            assert pdf.value.suggested_filename == "The Lighthouse Fox.pdf"
            # The closing words typed in Book details, shown (and editable) here and printed on the last page.
            expect(page.get_by_role("textbox", name="Closing words")).to_have_value("Goodnight, little fox")
            last = PdfReader(pdf.value.path()).pages[-1].extract_text()
            assert "Goodnight, little fox" in last and "The End" not in last, last
            # The options read whole in a narrow window too (three fixed columns cut them to "Cover …", "A4 (210 …").
            assert_read_whole(
                page,
                [
                    *(
                        page.get_by_test_id("stCheckbox")
                        .filter(has_text=name)
                        .first.get_by_test_id("stMarkdownContainer")
                        for name in ("Cover page", "Page numbers", "Bleed for a print shop")
                    ),
                ],
            )
            tour.visit("export", lambda: expect(page.get_by_role("heading", name="Make the book")).to_be_visible())

            # Settings in words.
            page.goto(f"{url}/settings")
            expect(page.get_by_text("Pictures are drawn on", exact=True)).to_be_visible()
            # No jargon in sight: the technical rows stay in the closed expander.
            expect(page.get_by_text(re.compile(r"MiB|float32|\('illustrator'")).filter(visible=True)).to_have_count(0)
            drawn_on = page.get_by_text("Pictures are drawn on", exact=True)
            assert_read_whole(page, [page.get_by_test_id("stMetric").nth(i) for i in range(2)])  # memory, free
            tour.visit("settings", lambda: expect(drawn_on).to_be_visible())

            # A studio started offline with models missing: no download button that cannot work, plain words.
            with serve(home, tmp_path / "streamlit-offline.log", host="localhost", STORYBOOK_PROFILE="fast") as offline:
                offline_url = offline.url
                page.goto(f"{offline_url}/settings")
                # Said once, for the profile's own models; the scoring and reference models' box points to it.
                expect(page.get_by_text(re.compile(r"started in offline mode"))).to_have_count(1)
                expect(page.get_by_text("Like the models above, they can be downloaded here once")).to_be_visible()
                expect(page.get_by_role("button", name=re.compile("Download them now|Try the download"))).to_have_count(
                    0
                )
                tour.visit(
                    "settings-models-missing",
                    lambda: expect(page.get_by_text(re.compile(r"started in offline mode"))).to_be_visible(),
                )

            # The studio stops: the page, opened as localhost, does not ask about the internet.
            page.goto(url)
            expect(page.get_by_role("heading", name="Your library")).to_be_visible()
            stop(server)
            expect(page.get_by_text(re.compile("Is Streamlit still running"))).to_be_visible(timeout=60_000)
            assert page.get_by_text("connected to the internet").count() == 0
            _screenshot(page, TOUR / "stopped.png", full=False)
        finally:
            (TOUR / "axe.json").write_text(json.dumps(tour.findings, indent=1, ensure_ascii=False))
            browser.close()
    assert not tour.blocking(), json.dumps(tour.blocking(), indent=1, ensure_ascii=False)
