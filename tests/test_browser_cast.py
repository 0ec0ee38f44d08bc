"""The cast sheet, the score badges and the last draw side by side in a real browser (streamlit run + Chromium).

The story is prepared through studio.actions in the served data folder (two pictures per page, a reference
picture for Mara); the browser checks what a person sees. Screenshots go to test-artifacts/ (cast.png,
reference.png); AppTest covers the last draw side by side (tests/test_studio_cast_page.py).
"""

from __future__ import annotations

import pytest
from browserkit import ROOT, chromium, running_studio

from engine.jobs import get_worker
from storage import Library
from studio import actions

pytestmark = pytest.mark.browser

ARTIFACTS = ROOT / "test-artifacts"
STORY = "Mara by the Sea\n\nMara lived by the sea.\n\nShe walked on the rocks. A gull flew over the water.\n"


def tall(page) -> None:
    """Grow the window to the page's height: Streamlit scrolls inside its main block, not the document."""
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('[data-testid=\"stMain\"], section, div')]"
        ".map(e => e.scrollHeight))"
    )
    page.set_viewport_size({"width": 1400, "height": min(max(height, 1000), 6000)})
    page.wait_for_timeout(700)


def prepare(lib: Library) -> int:
    project = actions.create_project(lib, story_text=STORY)
    project = actions.split_story(lib, project.id, project.version, STORY).project
    project = actions.save_characters(lib, project.id, project.version, [("Mara", "a girl in a yellow raincoat")])
    project = lib.update_project(project.id, project.version, candidates=2)
    get_worker().wait(actions.draw_reference(lib, project.id, project.version, "Mara", count=2), timeout=300)
    project = lib.get_project(project.id)
    start = actions.illustrate_all(lib, project.id, project.version)
    assert get_worker().wait(start.job_id, timeout=300).status.value == "done"
    return project.id


def test_cast_sheet_and_scores_in_the_browser(tmp_path, tiny_models, one_cpu_thread):
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    with running_studio(tmp_path, tiny_models) as studio:
        project_id = prepare(Library(studio.home))
        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{studio.url}/storyboard?project={project_id}")
            expect(page.get_by_text("Reference pictures")).to_be_visible()
            expect(page.get_by_text("Reference drawn by the app", exact=False)).to_be_visible()
            expect(page.get_by_text("Pages with a character share attention", exact=False)).to_be_visible()
            expect(page.get_by_text("Book score: CLIP", exact=False)).to_be_visible()
            expect(page.get_by_text("Likeness not measured yet.").first).to_be_visible()
            expect(page.get_by_role("button", name="Measure likeness")).to_be_visible()
            expect(page.get_by_text("CLIP", exact=False).first).to_be_visible()
            tall(page)
            page.screenshot(path=str(ARTIFACTS / "cast.png"), full_page=True)
            page.set_viewport_size({"width": 1400, "height": 1000})

            page.get_by_role("button", name="Reference picture").first.click()
            expect(page.get_by_role("button", name="Draw one from the description").first).to_be_visible()
            expect(page.get_by_text("Use a picture from this story").first).to_be_visible()
            # The pictures drawn for the reference, kept in the library, and how closely pages follow it.
            expect(page.get_by_text("kept with the story until you remove them", exact=False)).to_be_visible()
            expect(page.get_by_text("How closely pages follow this picture").first).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "reference.png"))
