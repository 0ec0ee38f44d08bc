"""Issue 19 item 1, the studio side: the storyteller writes each page's scene on the worker; a page without its
own prompt takes it as its prompt (one undo step for the whole job), a page with its own prompt keeps it and is
offered the scene, and a model that wrote nothing usable changes nothing and says so (tiny profile, offline)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import InputError
from engine.characters import page_characters
from engine.jobs import get_worker
from engine.profiles import get_profile
from engine.scenes import SceneDescription
from engine.scenes import describe_scenes as engine_describe
from storage import Library
from studio import actions

STORY = (
    "Mara lived by the sea.\n\n'Quite sure,' she said, and stepped onto the rocks.\n\n"
    "Tobin lit the lamp at the top of the tower.\n"
)
HOME = str(Path(__file__).resolve().parents[1] / "studio" / "Home.py")
CAST = [("Mara", "a young girl with a yellow raincoat"), ("Tobin", "an old lighthouse keeper")]


@pytest.fixture(scope="module")
def lib(tiny_models, one_cpu_thread) -> Library:
    return Library()


@pytest.fixture(scope="module")
def writer(tiny_models):
    """The tiny plain storyteller: it writes words (random ones) for every page, so its scenes are usable."""
    return get_profile("tiny").with_overrides({"storyteller": "tiny:storyteller_plain"})


def story(lib: Library):
    project = actions.create_project(lib, story_text=STORY)
    project = actions.split_story(lib, project.id, project.version, STORY).project
    project = actions.save_characters(lib, project.id, project.version, CAST)
    assert len(project.pages) == 3
    return project


def finish(job_id: str):
    info = get_worker().wait(job_id, timeout=300)
    assert info.status.value == "done", (info.error, info.save_errors)
    return info


def expected_scenes(project, profile) -> list[SceneDescription]:
    texts = [p.text for p in project.pages]
    return engine_describe(
        texts, profile, characters=CAST, cast=page_characters(texts, CAST), style=project.style, seed=project.id
    )


def test_scenes_become_the_prompts_of_pages_without_one_in_one_undo_step(lib, writer):
    project = story(lib)
    own = project.pages[1]
    edited = actions.edit_page(
        lib, own, project.version, text=own.text, prompt="my own words", negative_prompt="", seed="", locked=False
    )
    project = edited.project
    words = [p.text for p in project.pages]
    expected = expected_scenes(project, writer)
    assert [s.source for s in expected] == ["storyteller"] * 3  # the plain tiny storyteller writes something

    finish(actions.describe_scenes(lib, project.id, profile=writer))
    done = lib.get_project(project.id)
    first, second, third = done.pages
    assert [p.text for p in done.pages] == words  # the page's words are untouched
    assert first.prompt_override == expected[0].text and third.prompt_override == expected[2].text
    assert actions.storyteller_wrote(first) and actions.storyteller_wrote(third)
    # A person's prompt is never overwritten: the scene waits as a suggestion.
    assert second.prompt_override == "my own words" and not actions.storyteller_wrote(second)
    offered = actions.scene_suggestion(second)
    assert offered is not None and offered.text == expected[1].text
    assert actions.scene_suggestion(first) is None
    outcome = actions.scene_outcome(project.id)
    assert outcome.set_pages == (1, 3) and outcome.suggested == (2,) and outcome.unusable == ()
    assert "pages 1 and 3" in outcome.lines()[0] and "Page 2 keeps its own prompt" in outcome.lines()[1]
    assert done.version == project.version + 1  # one step for the whole job

    # One undo takes every written prompt back; the person's prompt stays.
    undone, _label = actions.undo(lib, done.id, done.version)
    assert [p.prompt_override for p in undone.pages] == [None, "my own words", None]
    redone, _label = actions.redo(lib, undone.id, undone.version)
    assert [p.prompt_override for p in redone.pages] == [expected[0].text, "my own words", expected[2].text]

    # "Use this" makes the suggestion the page's prompt (one undoable step) and it is offered no more.
    used = actions.use_scene_suggestion(lib, redone.pages[1], redone.version)
    assert used.pages[1].prompt_override == expected[1].text and actions.storyteller_wrote(used.pages[1])
    assert actions.scene_suggestion(used.pages[1]) is None
    back, _label = actions.undo(lib, used.id, used.version)
    assert back.pages[1].prompt_override == "my own words"


def test_one_page_s_scene_is_the_one_the_book_run_writes_and_draws_from_it(lib, writer):
    project = story(lib)
    expected = expected_scenes(project, writer)
    target = project.pages[1]
    finish(actions.describe_scene(lib, project.id, target.id, profile=writer))
    done = lib.get_project(project.id)
    assert [p.prompt_override for p in done.pages] == [None, expected[1].text, None]
    assert actions.scene_outcome(project.id).set_pages == (2,)
    # The page is drawn from the written scene, and the picture records it (redraws stay exact).
    start = actions.regenerate(lib, project.id, target.id, done.version, new_seed=False)
    finish(start.job_id)
    drawn = lib.get_project(project.id).pages[1].selected
    assert drawn.settings["own_prompt"] is True
    assert expected[1].text.split()[0] in drawn.settings["prompt"]


def test_nothing_usable_changes_nothing_and_says_so(lib, writer, monkeypatch):
    # The one case forced: a storyteller that writes nothing usable gives the page's own words back.
    import engine.scenes

    def nothing(pages, profile, **kwargs):
        return [SceneDescription(pages[i], "page text") for i in kwargs["only"]]

    monkeypatch.setattr(engine.scenes, "describe_scenes", nothing)
    project = story(lib)
    finish(actions.describe_scenes(lib, project.id, profile=writer))
    done = lib.get_project(project.id)
    assert [p.prompt_override for p in done.pages] == [None, None, None]
    assert done.version == project.version  # no step recorded
    outcome = actions.scene_outcome(project.id)
    assert outcome.set_pages == () and outcome.unusable == (1, 2, 3)
    said = "The storyteller wrote nothing usable for pages 1, 2 and 3; their prompts are unchanged."
    assert outcome.lines() == [said]


def test_a_storyteller_not_on_this_computer_is_said_in_words_before_any_job(lib):
    project = story(lib)
    away = get_profile("tiny").with_overrides({"storyteller": "someone/not-downloaded-storyteller"})
    before = len(actions.scene_jobs(project.id, active_only=False))
    with pytest.raises(InputError, match="model that writes stories of the 'tiny' profile is not on this computer"):
        actions.describe_scenes(lib, project.id, profile=away)
    assert len(actions.scene_jobs(project.id, active_only=False)) == before


def test_the_edit_menu_and_the_book_row_describe_scenes_and_offer_one_beside_a_persons_prompt(lib, writer, monkeypatch):
    from types import SimpleNamespace

    from streamlit.testing.v1 import AppTest

    from studio import state
    from studio.actions import scenes

    # The story's profile, with the storyteller that writes words (the app reads the profile per story).
    monkeypatch.setattr(scenes, "project_profile", lambda project: SimpleNamespace(profile=writer))
    project = story(lib)
    first, second, _ = project.pages
    project = lib.update_page(second.id, project.version, prompt_override="my own words")
    expected = expected_scenes(project, writer)

    at = AppTest.from_file(HOME, default_timeout=60)
    at.query_params["project"] = str(project.id)
    at.run()
    at.switch_page("screens/storyboard.py")
    at.run()
    assert not at.exception, at.exception

    def click(key: str) -> None:
        at.session_state[state.RECENT_ACTIONS] = {}
        at.button(key=key).click().run()
        assert not at.exception, at.exception

    def open_edit(page_id: int) -> None:
        at.session_state[f"pop.edit.{page_id}"] = True
        at.run()
        assert not at.exception, at.exception

    open_edit(first.id)
    click(f"scene.{first.id}")
    for job in actions.scene_jobs(project.id, active_only=False):
        finish(job.id)
    open_edit(first.id)
    assert lib.get_project(project.id).pages[0].prompt_override == expected[0].text
    prompt_box = next(t for t in at.text_area if t.key.startswith(f"w.seg.prompt.{first.id}."))
    assert prompt_box.value == expected[0].text
    assert any("storyteller wrote this prompt" in c.value for c in at.caption)

    click("scenes.all")
    for job in actions.scene_jobs(project.id, active_only=False):
        finish(job.id)
    at.run()
    said = actions.scene_outcome(project.id).lines()
    assert said[0].startswith("The storyteller wrote the scene of page 3 as its prompt")
    assert "Page 2 keeps its own prompt" in said[1] and said[2] == "Page 1 already has this scene as prompt."
    assert any("Page 2 keeps its own prompt" in c.value for c in at.caption)
    open_edit(second.id)
    assert any(expected[1].text in c.value for c in at.caption)
    click(f"scene.use.{second.id}")
    assert lib.get_project(project.id).pages[1].prompt_override == expected[1].text


def test_set_page_prompts_is_one_step_and_never_overwrites_a_prompt(lib):
    project = story(lib)
    first, second, third = project.pages
    project = lib.update_page(second.id, project.version, prompt_override="typed meanwhile")
    done, set_ids = lib.set_page_prompts(
        project.id, project.version, {first.id: " a fox ", second.id: "a gull", 999_999: "gone"}
    )
    assert set_ids == (first.id,) and done.version == project.version + 1
    assert [p.prompt_override for p in done.pages] == ["a fox", "typed meanwhile", None]
    same, none_set = lib.set_page_prompts(done.id, done.version, {second.id: "again"})
    assert none_set == () and same.version == done.version  # nothing set: no step
    with pytest.raises(InputError):
        lib.set_page_prompts(done.id, done.version, {third.id: "   "})


def test_a_prompt_typed_while_the_scenes_are_written_is_kept(lib, writer, monkeypatch):
    import engine.scenes

    real = engine.scenes.describe_scenes
    project = story(lib)
    first = project.pages[0]

    def typing_meanwhile(pages, profile, **kwargs):
        written = real(pages, profile, **kwargs)  # the real storyteller; a person saves a prompt meanwhile
        now = lib.get_project(project.id)
        lib.update_page(first.id, now.version, prompt_override="typed while it wrote")
        return written

    monkeypatch.setattr(engine.scenes, "describe_scenes", typing_meanwhile)
    finish(actions.describe_scenes(lib, project.id, profile=writer))
    done = lib.get_project(project.id)
    expected = expected_scenes(project, writer)
    assert done.pages[0].prompt_override == "typed while it wrote"
    assert actions.scene_suggestion(done.pages[0]).text == expected[0].text
    assert [p.prompt_override for p in done.pages[1:]] == [expected[1].text, expected[2].text]
    assert actions.scene_outcome(project.id).suggested == (1,)
