"""The storyboard page under AppTest, on the tiny profile: split, illustrate, redraw, versions, errors."""

from __future__ import annotations

from pathlib import Path

import fixtures_images as fx
import pytest
from apptestkit import HOME, TIMEOUT, click, open_screen, wait_for_jobs
from streamlit.testing.v1 import AppTest
from widgetkit import shows_what_it_holds

from core.errors import InputError
from engine.jobs import get_worker
from storage import Library
from studio import ui

STORY = """The Paper Boat

Ada folded a boat from an old map. She set it on the puddle by the gate.

The wind pushed the boat past a leaf and a sleepy snail. Ada ran beside it, laughing.

At the drain the boat stopped. Ada picked it up and dried it by the fire.
"""


@pytest.fixture(scope="module")
def lib(tiny_models) -> Library:
    return Library()


def storyboard(project_id: int) -> AppTest:
    return open_screen("storyboard", project_id)


def story_area(at: AppTest):
    return next(t for t in at.text_area if t.label == "Your story")


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def open_popover(at: AppTest, key: str) -> AppTest:
    """Open a card's popover (its content is built only while it is open), as a click on it does."""
    at.session_state[key] = True
    at.run()
    assert not at.exception, at.exception
    return at


def new_project(lib: Library, story: str = STORY, split: bool = True):
    from studio import actions

    project = actions.create_project(lib, story_text=story)
    if split:
        project = actions.split_story(lib, project.id, project.version, story).project
    return project


def test_write_split_illustrate_redraw_pick_a_version_and_reload(lib):
    project = lib.create_project("Untitled story")
    at = storyboard(project.id)
    assert "No pages yet" in " ".join(texts(at.info))

    story_area(at).input(STORY)
    click(at, "story.split")
    assert any(s.startswith("3 pages.") and "The Paper Boat" in s for s in texts(at.success)), texts(at.success)
    project = lib.get_project(project.id)
    assert project.title == "The Paper Boat"  # the title line names the book and is not a page
    assert [s.text.split()[0] for s in project.pages] == ["Ada", "The", "At"]

    click(at, "illustrate.all")
    assert get_worker().jobs(project_id=project.id, active_only=True) or get_worker().jobs(project_id=project.id)
    wait_for_jobs(project.id)
    at.run()
    assert any(s.startswith("Done: 3 pictures") for s in texts(at.success)), texts(at.success)
    project = lib.get_project(project.id)
    for seg in project.pages:
        assert len(seg.pictures) == 1 and seg.selected is not None
        assert seg.seed is not None and seg.selected.settings["seed"] == seg.seed  # the book can be drawn again
        assert Path(seg.selected.image_path).is_file()
    assert len(at.image) >= 3

    first, second, third = project.pages
    old_seed = second.seed
    click(at, f"new.{second.id}")
    wait_for_jobs(project.id)
    at.run()
    project = lib.get_project(project.id)
    first2, second2, third2 = project.pages
    assert [len(s.pictures) for s in project.pages] == [1, 2, 1]  # only that page got a new version
    assert second2.seed != old_seed and second2.selected.version == 2
    assert second2.selected.settings["seed"] == second2.seed
    assert (first2.seed, third2.seed) == (first.seed, third.seed)

    click(at, "same." + str(second.id))  # same seed: drawn exactly again
    wait_for_jobs(project.id)
    at.run()
    second3 = lib.get_project(project.id).pages[1]
    assert len(second3.pictures) == 3 and second3.selected.settings["seed"] == second2.seed
    assert Path(second3.selected.image_path).read_bytes() == Path(second2.selected.image_path).read_bytes()

    older = second3.pictures[0]
    open_popover(at, f"pop.pictures.{second.id}")
    assert at.button(key=f"use.{second3.selected.id}").disabled  # the version in use
    click(at, f"use.{older.id}")
    assert any("now uses version 1" in t.value for t in at.toast)
    assert at.session_state[f"pop.pictures.{second.id}"] is False  # the menu closed: it has done its job
    assert lib.get_project(project.id).pages[1].selected.id == older.id

    reloaded = storyboard(project.id)  # a refresh: a new session, the project comes from ?project=
    assert reloaded.title[0].value == "The Paper Boat"
    assert story_area(reloaded).value == STORY
    captions = texts(reloaded.caption)
    assert f"Version 1 of 3 · seed {older.settings['seed']}" in captions
    assert sum(c.startswith("Version 1 of 1") for c in captions) == 2


def test_empty_huge_and_stale_edits_are_one_sentence_each(lib):
    from core.limits import MAX_STORY_CHARS

    project = lib.create_project("Untitled story")
    at = storyboard(project.id)
    story_area(at).input("   \n  ")
    click(at, "story.split")
    assert texts(at.error) == ["The story is empty: write or paste your story first, then split it into pages."]

    story_area(at).input("word " * (MAX_STORY_CHARS // 5 + 10))
    click(at, "story.split")
    assert len(at.error) == 1 and "too long" in at.error[0].value
    assert not at.exception

    # Another tab renames the book: this tab's next edit is refused, and Reload shows the new state.
    current = lib.get_project(project.id)
    lib.update_project(project.id, current.version, title="Renamed elsewhere")
    title_box = next(t for t in at.text_input if t.label == "Title")
    title_box.input("My title")
    at.run()
    assert any("changed in another tab" in e for e in texts(at.error)), texts(at.error)
    assert lib.get_project(project.id).title == "Renamed elsewhere"
    reload_buttons = [b for b in at.button if b.label == "Reload the latest version"]
    assert reload_buttons
    reload_buttons[0].click().run()
    assert not at.error
    assert next(t for t in at.text_input if t.label == "Title").value == "Renamed elsewhere"
    assert any("Reloaded" in i for i in texts(at.info))
    next(t for t in at.text_input if t.label == "Title").input("Mine after all")
    at.run()
    assert lib.get_project(project.id).title == "Mine after all"


def test_markup_and_any_language_are_shown_as_text(lib):
    story = (
        "<script>alert('x')</script> **Bold** [a link](http://example.com) :red[red] $x^2$.\n\n"
        "猫が窓のそばで眠っていました。月が静かに昇りました。\n\n"
        "القطة نامت قرب النافذة. ثم طلع القمر.\n"
    )
    project = lib.create_project("Untitled story")
    at = storyboard(project.id)
    story_area(at).input(story)
    click(at, "story.split")
    assert not at.error
    project = lib.get_project(project.id)
    assert len(project.pages) >= 3
    page_texts = [m for m in at.markdown if "script" in m.value]
    assert page_texts and all(not m.proto.allow_html for m in at.markdown)
    assert r"\<script\>" in page_texts[0].value and r"\*\*Bold\*\*" in page_texts[0].value
    assert any("猫が窓のそばで" in m.value for m in at.markdown)


def test_illustrate_all_keeps_pages_with_pictures_and_locked_seeds(lib):
    project = new_project(lib)
    first, second, _third = project.pages
    at = storyboard(project.id)

    # Page 1 gets the user's own picture; a GIF dressed up as a PNG is refused with a sentence.
    open_popover(at, f"pop.pictures.{first.id}")
    uploader = next(u for u in at.file_uploader if u.key.startswith(f"upload.{first.id}."))
    uploader.set_value(("cat.png", b"GIF89a" + b"\0" * 64, "image/png")).run()
    click(at, f"upload.use.{first.id}")
    assert len(at.error) == 1 and "GIF" in at.error[0].value
    uploader = next(u for u in at.file_uploader if u.key.startswith(f"upload.{first.id}."))
    uploader.set_value(("mine.png", fx.png((40, 30)), "image/png")).run()
    click(at, f"upload.use.{first.id}")
    assert any("now uses your picture" in t.value for t in at.toast)
    assert lib.get_project(project.id).pages[0].selected.origin == "uploaded"
    assert any("Page 1 already has a picture and is kept" in c for c in texts(at.caption))
    assert at.button(key="illustrate.all").label == "Illustrate 2 pages"

    click(at, "illustrate.all")
    wait_for_jobs(project.id)
    at.run()
    project = lib.get_project(project.id)
    assert [len(s.pictures) for s in project.pages] == [1, 1, 1]
    assert project.pages[0].selected.origin == "uploaded"

    # Lock page 2's seed in its editor, then redraw everything.
    second = project.pages[1]
    open_popover(at, f"pop.edit.{second.id}")
    lock = next(t for t in at.toggle if t.key.startswith(f"w.seg.lock.{second.id}."))
    lock.set_value(True)
    click(at, f"save.{second.id}")
    assert lib.get_project(project.id).pages[1].locked
    assert at.button(key=f"new.{second.id}").disabled  # a locked page keeps its seed
    at.toggle(key="sb.redo_all").set_value(True).run()
    assert at.button(key="illustrate.all").label == "Redraw all 3 pages"
    click(at, "illustrate.all")
    wait_for_jobs(project.id)
    at.run()
    after = lib.get_project(project.id)
    assert [len(s.pictures) for s in after.pages] == [2, 2, 2]
    assert after.pages[1].seed == second.seed
    assert after.pages[1].selected.settings["seed"] == second.seed
    assert after.pages[2].seed != project.pages[2].seed


def test_edit_a_page_prompt_and_redraw_with_the_same_seed_then_split_and_merge(lib):
    project = new_project(lib)
    first = project.pages[0]
    at = storyboard(project.id)
    open_popover(at, f"pop.edit.{first.id}")
    prompt_box = next(t for t in at.text_area if t.key.startswith(f"w.seg.prompt.{first.id}."))
    prompt_box.input("a paper boat on a puddle, bright morning")
    seed_box = next(t for t in at.text_input if t.key.startswith(f"w.seg.seed.{first.id}."))
    seed_box.input("not a number")
    click(at, f"savedraw.{first.id}")
    assert len(at.error) == 1 and "seed is a whole number" in at.error[0].value

    next(t for t in at.text_input if t.key.startswith(f"w.seg.seed.{first.id}.")).input("1234")
    click(at, f"savedraw.{first.id}")
    wait_for_jobs(project.id)
    at.run()
    first = lib.get_project(project.id).pages[0]
    assert first.prompt_override == "a paper boat on a puddle, bright morning" and first.seed == 1234
    assert first.selected.settings["seed"] == 1234
    assert "bright morning" in first.selected.settings["prompt"]

    open_popover(at, f"pop.more.{first.id}")
    click(at, f"split.{first.id}")
    project = lib.get_project(project.id)
    assert len(project.pages) == 4
    assert project.pages[0].text == "Ada folded a boat from an old map."
    # Drawn for the whole page, the picture goes with the part more like those words (the longer one), and the
    # prompt and seed it was drawn with go with it.
    assert not project.pages[0].pictures and project.pages[1].pictures
    assert (project.pages[0].prompt_override, project.pages[0].seed) == (None, None)
    assert project.pages[1].prompt_override == "a paper boat on a puddle, bright morning"
    assert project.pages[1].seed == 1234 == project.pages[1].selected.settings["seed"]
    assert any(t.value == "Split page 1 in two: its picture went with the second part." for t in at.toast)
    open_popover(at, f"pop.more.{project.pages[0].id}")
    click(at, f"merge.{project.pages[0].id}")
    project = lib.get_project(project.id)
    assert len(project.pages) == 3
    assert project.pages[0].text.startswith("Ada folded a boat from an old map. She set it")
    # Merged back, the page has its prompt and seed again (the first part had none: it takes the second's).
    assert (project.pages[0].prompt_override, project.pages[0].seed) == (
        "a paper boat on a puddle, bright morning",
        1234,
    )


def test_a_refreshed_page_finds_the_running_job_and_can_stop_it(lib):
    import threading
    import time

    project = new_project(lib)
    started = threading.Event()

    def slow(ctx):
        started.set()
        ctx.progress(1, 10, message="Drawing… 0 of 3 pictures ready")
        while not ctx.cancelled:
            time.sleep(0.05)
        ctx.check_cancel()

    job_id = get_worker().submit(
        slow,
        kind="illustrate",
        label="3 pictures for “The Paper Boat”",
        total=10,
        meta={"project_id": project.id, "page_ids": tuple(s.id for s in project.pages)},
    )
    try:
        assert started.wait(30)
        at = storyboard(project.id)  # a new tab / a refresh while the job runs
        bars = list(at.get("progress"))
        assert bars and "The Paper Boat" in bars[0].proto.text
        # The page being drawn says so; the others wait for their turn.
        assert [i.value for i in at.info if i.value in ("Drawing a new picture…", "Waiting for its turn…")] == [
            "Drawing a new picture…",
            "Waiting for its turn…",
            "Waiting for its turn…",
        ]
        assert at.button(key="illustrate.all").disabled
        click(at, "story.split")
        assert any("being drawn" in e for e in texts(at.error))
        click(at, f"stop.{job_id}")
        assert get_worker().wait(job_id, timeout=30).status.value == "cancelled"
        at.run()
        assert any(i.startswith("Stopped.") for i in texts(at.info))
    finally:
        get_worker().cancel(job_id)


def test_missing_models_are_explained_with_the_fetch_command(lib, monkeypatch):
    from engine.profiles import PROFILES, is_downloaded

    if is_downloaded(PROFILES["fast"].model("illustrator")):
        pytest.skip("the 'fast' models are downloaded on this machine")
    project = new_project(lib)
    monkeypatch.setenv("STORYBOOK_PROFILE", "fast")
    at = storyboard(project.id)
    assert any("not downloaded yet" in w for w in texts(at.warning))
    assert "python -m engine fetch --profile fast" in texts(at.code)
    button = at.button(key="illustrate.all")
    assert button.disabled and "'tiny' profile" in button.help  # not a button that can only fail
    from core.errors import UserError
    from studio import actions

    with pytest.raises(UserError, match="python -m engine fetch --profile fast"):
        actions.illustrate_all(lib, project.id, project.version)  # and the action itself says why
    assert not get_worker().jobs(project_id=project.id)


def test_no_open_project_offers_a_way_in():
    at = AppTest.from_file(HOME, default_timeout=TIMEOUT)
    at.switch_page("screens/storyboard.py")
    at.run()
    assert not at.exception
    assert at.header[0].value == "No story is open"
    gone = AppTest.from_file(HOME, default_timeout=TIMEOUT)
    gone.query_params["project"] = "999999"
    gone.run()
    gone.switch_page("screens/storyboard.py").run()
    assert any("no longer exists" in w for w in texts(gone.warning))
    assert gone.header[0].value == "No story is open"


def test_a_story_keeps_its_own_profile_chosen_in_book_details(lib, monkeypatch):
    import engine.profiles
    from engine.errors import ModelUnavailable
    from studio import actions

    # New projects record the default profile: STORYBOOK_PROFILE, else the one saved in Settings.
    assert new_project(lib, split=False).profile == "tiny"
    monkeypatch.delenv("STORYBOOK_PROFILE")
    monkeypatch.setattr(engine.profiles, "load_settings", lambda: {"profile": "classic"})
    classic = new_project(lib)
    assert classic.profile == "classic" and actions.project_profile(classic).profile.name == "classic"
    if not engine.profiles.is_downloaded(engine.profiles.PROFILES["classic"].model("illustrator")):
        with pytest.raises(ModelUnavailable, match="'classic' profile"):
            actions.illustrate_all(lib, classic.id, classic.version)

    # Without STORYBOOK_PROFILE a 'tiny' project is drawn with tiny models although Settings say 'classic'.
    tiny = lib.update_project(classic.id, classic.version, profile="tiny")
    actions.regenerate(lib, tiny.id, tiny.pages[0].id, tiny.version)
    wait_for_jobs(tiny.id)
    assert lib.get_project(tiny.id).pages[0].selected.settings["profile"] == "tiny"

    # Book details: a selectbox over the profiles, saved with the other details.
    at = storyboard(tiny.id)
    box = next(s for s in at.selectbox if s.label == "Models (profile)")
    # Each choice short enough for the dropdown (a name and a few words); the whole description beside it.
    assert box.value == "tiny" and box.options == [actions.profile_label(n) for n in engine.profiles.PROFILES]
    assert all(o.split(":")[0] in engine.profiles.PROFILES and len(o) <= 40 for o in box.options), box.options
    assert ui.plain(engine.profiles.PROFILES["tiny"].description) in texts(at.caption)
    box.set_value("quality")
    at.run()
    assert lib.get_project(tiny.id).profile == "quality"
    assert not any("STORYBOOK_PROFILE" in c for c in texts(at.caption))

    # A profile that no longer exists: the default is used, with one line saying so.
    gone = lib.get_project(tiny.id)
    lib.update_project(gone.id, gone.version, profile="retired")
    at = storyboard(gone.id)
    notes = [i for i in texts(at.info) if "no longer exists" in i]
    assert notes == [
        "This story was made with the 'retired' profile, which no longer exists, so the default "
        "'classic' profile is used."
    ]
    assert next(s for s in at.selectbox if s.label == "Models (profile)").value == "classic"

    # STORYBOOK_PROFILE, when set, wins over every project's own profile (and the page says so).
    monkeypatch.setenv("STORYBOOK_PROFILE", "tiny")
    assert actions.project_profile(lib.get_project(gone.id)).profile.name == "tiny"
    at = storyboard(gone.id)
    assert not any("no longer exists" in i for i in texts(at.info))
    assert any("started to use the “tiny” models for every story" in c for c in texts(at.caption))


def _cut_short_after_saving():
    """A page action whose run is cut short right after it saved, as when a second click arrives."""
    from types import SimpleNamespace

    import streamlit as st
    from streamlit.runtime.scriptrunner_utils.script_requests import RerunData
    from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

    from studio import ui

    st.session_state["runs"] = st.session_state.get("runs", 0) + 1
    if st.button("Save", key="save") and ui.first_click("save"):
        with ui.guard(7):
            saved = SimpleNamespace(id=7, version=3)  # what the action stored
            get_script_run_ctx().script_requests.request_rerun(RerunData())  # the second click arrives
            ui.set_base_version(saved)
            ui.flash("success", "Saved.")
            st.session_state["finished"] = True  # the next yield point: the run stops here


def test_a_run_cut_short_after_saving_still_records_the_version_and_message():
    """Otherwise the next run takes the tab's own save for another tab's edit ("changed in another tab")."""
    at = AppTest.from_function(_cut_short_after_saving, default_timeout=30)
    at.run()
    at.button(key="save").click().run()
    assert not at.exception, at.exception
    assert "finished" not in at.session_state and at.session_state["runs"] == 3  # it was cut short, then rerun
    assert at.session_state["sb.base_version"] == {7: 3}
    assert at.session_state["sb.flash"] == [("success", "Saved.")]
    # The rerun carried the same click (a double click): it is not done twice.
    at.button(key="save").click().run()
    assert at.session_state["sb.flash"] == [("success", "Saved.")]  # not saved (and announced) twice


def test_a_tab_with_nothing_typed_follows_another_tabs_edit_and_one_with_typing_is_warned(lib):
    project = new_project(lib)
    tab = storyboard(project.id)
    lib.update_project(project.id, project.version, title="Renamed elsewhere")  # another tab's edit

    tab.run()  # the watcher's rerun: nothing was typed here, so the tab follows
    assert not any("changed in another tab" in w for w in texts(tab.warning)), texts(tab.warning)
    assert next(t for t in tab.text_input if t.label == "Title").value == "Renamed elsewhere"
    assert any("another tab" in t.value for t in tab.toast)
    next(t for t in tab.text_input if t.label == "Author").input("Ann")
    tab.run()
    assert any("Saved the author" in s for s in texts(tab.success)), texts(tab.error)
    assert (lib.get_project(project.id).title, lib.get_project(project.id).author) == ("Renamed elsewhere", "Ann")

    # Typing not saved yet: the tab is told, and keeps the typing, rather than saving over the other edit.
    story_area(tab).input(project.story_text + " The end.")
    lib.update_project(project.id, lib.get_project(project.id).version, author="Bob")
    tab.run()
    assert any("changed in another tab" in w for w in texts(tab.warning)), texts(tab.warning)
    assert story_area(tab).value.endswith(" The end.")
    click(tab, "story.draft")
    assert any("changed in another tab" in e for e in texts(tab.error)), texts(tab.error)
    assert lib.get_project(project.id).story_text == project.story_text


def char_rows(at: AppTest) -> list:
    names = [t for t in at.text_input if t.key.startswith("w.char.name.")]
    descriptions = [t for t in at.text_input if t.key.startswith("w.char.desc.")]
    return list(zip(names, descriptions))


def prompts(at: AppTest) -> list[str]:
    return [c for c in texts(at.caption) if c.startswith(("Prompt:", "Your prompt:"))]


def test_characters_are_typed_saved_and_described_in_the_prompts_of_pages_that_name_them(lib):
    project = new_project(lib)
    at = storyboard(project.id)
    assert len(char_rows(at)) == 1  # no characters yet: one empty row
    assert not any("small girl" in p for p in prompts(at))

    name, _description = char_rows(at)[0]
    name.input("Ada").run()
    assert len(char_rows(at)) == 2  # a name in the last row opens another one
    char_rows(at)[0][1].input("a small girl in a yellow raincoat").run()
    char_rows(at)[1][0].input("Snail").run()
    char_rows(at)[1][1].input("a sleepy  garden   snail").run()
    click(at, "characters.save")
    assert any("Saved 2 characters" in s for s in texts(at.success)), texts(at.error)
    stored = lib.get_project(project.id)
    assert [(c.name, c.description) for c in stored.characters] == [
        ("Ada", "a small girl in a yellow raincoat"),
        ("Snail", "a sleepy garden snail"),
    ]
    # Every page names Ada; only the second names the snail ("snail", any case, a whole word). The cards
    # show the start of each prompt; the pictures are drawn from the whole of it.
    assert all("yellow raincoat" in p for p in prompts(at)), prompts(at)
    from studio import actions

    whole = [
        actions.prompt_preview(s.text, stored.style, [(c.name, c.description) for c in stored.characters])
        for s in stored.pages
    ]
    assert ["sleepy garden snail named Snail" in p for p in whole] == [False, True, False], whole
    assert [(n.value, d.value) for n, d in char_rows(at)] == [
        ("Ada", "a small girl in a yellow raincoat"),
        ("Snail", "a sleepy garden snail"),
        ("", ""),
    ]

    # A description without a name, and a name given twice, are refused with a sentence; nothing is saved.
    char_rows(at)[2][1].input("a grey cat").run()
    click(at, "characters.save")
    assert texts(at.error) == ["Character 3 has a description but no name: give it the name the story calls it by."]
    char_rows(at)[2][0].input("ada").run()
    click(at, "characters.save")
    assert len(at.error) == 1 and "Two characters are called “ada”" in at.error[0].value
    assert len(lib.get_project(project.id).characters) == 2

    # Clearing a row takes that character out.
    for widget in (*char_rows(at)[0], *char_rows(at)[2]):
        widget.input("")
    at.run()
    click(at, "characters.save")
    assert [c.name for c in lib.get_project(project.id).characters] == ["Snail"]
    assert not any("yellow raincoat" in p for p in prompts(at))


def test_where_and_when_and_the_dedication_are_saved_with_the_book_details(lib):
    from studio import actions

    project = new_project(lib, "Ada ran. Ada sat. Ada slept.")  # short: the tiny tokenizer spends a token a letter
    at = storyboard(project.id)
    next(t for t in at.text_input if t.label == "Where and when").input("rainy   village")
    next(t for t in at.text_area if t.label == "Dedication").input("For Mo,\n  who loves rain")
    at.run()
    assert any("Saved the dedication" in s for s in texts(at.success)), texts(at.error)
    stored = lib.get_project(project.id)
    assert stored.setting == "rainy village" and stored.dedication == "For Mo,\nwho loves rain"
    assert next(t for t in at.text_input if t.label == "Where and when").value == "rainy village"
    whole = [actions.prompt_preview(s.text, stored.style, setting=stored.setting) for s in stored.pages]
    assert all("rainy village" in p for p in whole), whole
    assert not any("rainy village" in actions.prompt_preview(s.text, stored.style) for s in stored.pages)
    # The pictures are drawn from those prompts: each keeps the prompt it was drawn from.
    click(at, "illustrate.all")
    wait_for_jobs(project.id)
    drawn = [s.selected.settings["prompt"] for s in lib.get_project(project.id).pages]
    assert all("rainy village" in p for p in drawn), drawn


def test_the_closing_words_are_a_book_detail_saved_undone_and_printed(lib):
    import io

    from pypdf import PdfReader

    from exports import PdfOptions
    from studio import actions

    project = new_project(lib, "Ada ran. Ada sat. Ada slept.")
    at = storyboard(project.id)
    closing = next(t for t in at.text_input if t.label == "Closing words")
    assert closing.value == "" and closing.placeholder == "The End"  # the default, in the story's language
    closing.input("  Goodnight,   little boat  ").run()
    assert any("Saved the closing words." in s for s in texts(at.success)), texts(at.error)
    stored = lib.get_project(project.id)
    assert stored.closing == "Goodnight, little boat"
    assert next(t for t in at.text_input if t.label == "Closing words").value == "Goodnight, little boat"

    def last_page(view) -> str:
        pdf = actions.export_book(view, PdfOptions(page_size="A5"), preview_pages=0).pdf
        return PdfReader(io.BytesIO(pdf)).pages[-1].extract_text()

    assert "Goodnight, little boat" in last_page(stored) and "The End" not in last_page(stored)

    click(at, "history.undo")  # one undo step takes the words back
    assert any("Undone" in s for s in texts(at.success)), texts(at.error)
    undone = lib.get_project(project.id)
    assert undone.closing == "" and next(t for t in at.text_input if t.label == "Closing words").value == ""
    assert "The End" in last_page(undone)


def test_book_details_show_the_picture_styles_as_pictures_with_the_chosen_one_marked(lib):
    project = new_project(lib, "Ada ran. Ada sat.")
    at = storyboard(project.id)
    assert not at.image  # closed: nothing drawn
    open_popover(at, "details.styles.open")  # opened as a click on it does
    captions = [i.captions[0] for i in at.image if i.captions]
    assert "✓ Watercolor picture book (chosen)" in captions and "Pencil sketch" in captions, captions
    next(s for s in at.selectbox if s.label == "Picture style").set_value("comic").run()
    assert lib.get_project(project.id).style == "comic"
    captions = [i.captions[0] for i in at.image if i.captions]
    assert "✓ Comic (chosen)" in captions and "Watercolor picture book" in captions, captions


def test_book_details_show_on_their_own_the_stored_style_and_models_and_follow_a_new_one(lib):
    """The style and models selectboxes show, from their own default as a browser draws them, what the server
    holds (not their first option); a value saved another way comes as a new widget showing it on its own."""
    from studio import actions

    project = new_project(lib, "Ada ran. Ada sat.")
    project = actions.save_detail(lib, project.id, project.version, "style", "comic")
    at = storyboard(project.id)

    def boxes():
        return [next(s for s in at.selectbox if s.label == label) for label in ("Picture style", "Models (profile)")]

    style, models = boxes()
    assert (style.value, models.value) == ("comic", project.profile) and 0 not in (style.index, models.index)
    assert shows_what_it_holds(style) and shows_what_it_holds(models), (style.proto, models.proto)
    project = actions.save_detail(lib, project.id, project.version, "style", "oil")  # as another tab would
    actions.save_detail(lib, project.id, project.version, "profile", "quality")
    at.run()
    assert not at.exception, at.exception
    style, models = boxes()
    assert (style.value, models.value) == ("oil", "quality")
    assert shows_what_it_holds(style) and shows_what_it_holds(models), (style.proto, models.proto)
    style.set_value("pencil").run()  # chosen here: saved, and the new widget shows it on its own
    assert lib.get_project(project.id).style == "pencil"
    assert boxes()[0].value == "pencil" and shows_what_it_holds(boxes()[0])


def test_the_lock_toggle_shows_on_its_own_the_stored_lock(lib):
    """A locked page's "Lock the seed" shows on, from its own default (a toggle's own default is off)."""
    from studio import actions

    project = new_project(lib)
    page = project.pages[1]
    fields = dict(text=page.text, prompt="", negative_prompt="", seed="7")
    project = actions.edit_page(lib, page, project.version, **fields, locked=True).project
    at = storyboard(project.id)
    open_popover(at, f"pop.edit.{page.id}")

    def lock():
        return next(t for t in at.toggle if t.key.startswith(f"w.seg.lock.{page.id}."))

    assert lock().value is True and shows_what_it_holds(lock()), lock().proto
    page = project.pages[1]
    actions.edit_page(lib, page, project.version, **fields, locked=False)  # unlocked in another tab
    at.run()
    assert not at.exception, at.exception
    assert lock().value is False and shows_what_it_holds(lock()), lock().proto
    assert not lib.get_project(project.id).pages[1].locked
    # Switched on here and not saved yet: unsaved like typing, so a change from another tab is not followed quietly.
    lock().set_value(True).run()
    stored = lib.get_project(project.id)
    actions.save_detail(lib, stored.id, stored.version, "title", "Another tab's title")
    at.run()
    assert any("changed in another tab or window" in w for w in texts(at.warning)), texts(at.warning)
    assert lock().value is True


def test_the_story_text_is_kept_as_it_is_typed_and_a_refresh_brings_it_back(lib):
    from core.limits import MAX_STORY_CHARS

    project = lib.create_project("Untitled story")
    at = storyboard(project.id)
    # Nothing sent yet: the caption claims nothing saved, and says how words get kept.
    hint = "click outside the box (or press Ctrl+Enter)"
    assert f"Nothing saved yet: write or paste your story, then {hint} to keep it." in texts(at.caption)
    story_area(at).input("Mo found a shell.\n\nMo kept it.").run()  # the box loses focus
    assert lib.get_project(project.id).story_text == "Mo found a shell.\n\nMo kept it."
    saved = f"Saved: 30 characters · 7 words. New typing is kept each time you {hint}."
    assert saved in texts(at.caption), texts(at.caption)
    assert not at.error and not at.warning  # kept quietly: nothing to read, nothing changed in another tab
    assert story_area(storyboard(project.id)).value == "Mo found a shell.\n\nMo kept it."  # a refresh
    # Another tab changes the story: this box, with nothing typed since, shows the new text.
    lib.update_project(project.id, lib.get_project(project.id).version, story_text="Mo lost the shell.")
    at.run()
    assert story_area(at).value == "Mo lost the shell." and not at.warning

    # What cannot be kept stays in the box, and the caption says why.
    # (typed on top of the words the box shows now: typing that drops another tab's change is refused for that)
    story_area(at).input("Mo lost the shell. " + "word " * (MAX_STORY_CHARS // 5 + 10)).run()
    assert any("not saved yet: the story is too long" in c for c in texts(at.caption)), texts(at.caption)
    assert lib.get_project(project.id).story_text == "Mo lost the shell."
    assert len(story_area(at).value) > MAX_STORY_CHARS


def test_a_page_moves_earlier_or_later_with_its_pictures_and_the_story_text_follows(lib):
    from studio import actions

    project = new_project(lib)
    first, second, third = project.pages
    lib.add_picture(first.id, fx.png((24, 24)), {"seed": 11})
    at = storyboard(project.id)
    open_popover(at, f"pop.more.{first.id}")
    assert at.button(key=f"move.-1.{first.id}").disabled and not at.button(key=f"move.1.{first.id}").disabled
    click(at, f"move.1.{first.id}")
    assert any("Moved page 1 later: it is page 2 now" in t.value for t in at.toast), texts(at.error)
    moved = lib.get_project(project.id)
    assert [s.id for s in moved.pages] == [second.id, first.id, third.id]
    assert moved.pages[1].selected.settings == {"seed": 11}
    assert moved.story_text.startswith("The Paper Boat\n\n")  # the title stays first
    assert moved.story_text.index(second.text) < moved.story_text.index(first.text) < moved.story_text.index(third.text)
    for seg in moved.pages:
        assert moved.story_text[seg.start : seg.end] == seg.text
    assert story_area(at).value == moved.story_text  # the story box shows the new order

    # And back: the story is as it was.
    back = actions.move_page(lib, project.id, first.id, moved.version, -1)
    assert back.story_text == project.story_text and [s.id for s in back.pages] == [first.id, second.id, third.id]
    with pytest.raises(InputError, match="already the last page"):
        actions.move_page(lib, project.id, third.id, back.version, 1)


def test_splitting_a_page_says_where_its_pictures_went_and_undo_puts_them_back(lib):
    project = new_project(lib)
    first = project.pages[0]
    head, tail = "Ada folded a boat from an old map.", "She set it on the puddle by the gate."
    for n, words in enumerate([head, tail, "Ada folded a boat from a map."]):
        lib.add_picture(first.id, fx.png((21 + n, 17)), {"seed": n, "page_text": words})
    before = lib.get_project(project.id).pages[0]
    at = storyboard(project.id)
    open_popover(at, f"pop.more.{first.id}")
    click(at, f"split.{first.id}")
    message = "Split page 1 in two: 2 pictures stayed on the first part, 1 went with the second."
    assert any(t.value == message for t in at.toast), (texts(at.toast), texts(at.error))
    split = lib.get_project(project.id)
    assert [p.settings["page_text"] for p in split.pages[0].pictures] == [head, "Ada folded a boat from a map."]
    assert [p.settings["page_text"] for p in split.pages[1].pictures] == [tail]
    assert [p.version for p in split.pages[0].pictures] == [1, 2]  # numbered again: no "version 3 of 2"
    assert split.pages[0].selected.version == 2 and split.pages[1].selected.settings["page_text"] == tail

    click(at, "history.undo")  # one step: the page and its three pictures, as they were
    again = lib.get_project(project.id).pages[0]
    assert again.text == before.text
    assert [(p.id, p.version, p.selected) for p in again.pictures] == [
        (p.id, p.version, p.selected) for p in before.pictures
    ]


def test_a_picture_is_kept_for_its_pages_new_words_from_the_badge(lib):
    project = new_project(lib)
    second = project.pages[1]
    drawn = {"seed": 5, "page_text": "The wind pushed the boat past a leaf."}  # the page's words then
    picture = lib.add_picture(second.id, fx.png((19, 23)), drawn)
    at = storyboard(project.id)
    badge = ":violet-badge[:material/edit_note: words changed since this picture]"

    def badges() -> int:
        return sum(m.value == badge for m in at.markdown)

    assert badges() == 1 and at.button(key=f"keepwords.{second.id}")
    click(at, f"keepwords.{second.id}")
    assert any(t.value == "Page 2 keeps its picture for its new words." for t in at.toast), texts(at.error)
    assert badges() == 0 and not [b for b in at.button if b.key == f"keepwords.{second.id}"]
    kept = lib.get_project(project.id).pages[1].selected
    assert kept.id == picture.id and kept.settings == drawn and kept.meta["kept_for_words"] == second.text

    click(at, "history.undo")  # one step
    assert badges() == 1 and "kept_for_words" not in lib.get_project(project.id).pages[1].selected.meta


def test_a_page_is_deleted_to_the_bin_after_a_confirmation_and_undo_brings_it_back(lib):
    from studio import actions

    project = new_project(lib)
    first, second, third = project.pages
    lib.add_picture(second.id, fx.png((23, 29)), {"seed": 3})  # a picture no other test uses
    picture = lib.get_project(project.id).pages[1].selected.image_path
    at = storyboard(project.id)
    open_popover(at, f"pop.more.{second.id}")
    click(at, f"pagedel.{second.id}")
    assert any("Take page 2 out of the story, with its 1 picture?" in w for w in texts(at.warning))
    click(at, f"pagedel.no.{second.id}")
    assert len(lib.get_project(project.id).pages) == 3  # kept
    click(at, f"pagedel.{second.id}")
    click(at, f"pagedel.yes.{second.id}")
    assert any("Page 2 is in the bin, with its 1 picture" in t.value for t in at.toast), texts(at.error)
    after = lib.get_project(project.id)
    assert [s.id for s in after.pages] == [first.id, third.id]
    assert second.text not in after.story_text and after.story_text.startswith("The Paper Boat\n\n")
    assert [after.story_text[s.start : s.end] for s in after.pages] == [first.text, third.text]
    assert picture.exists() and [p.id for p in after.bin.pages] == [second.id]
    click(at, "history.undo")
    assert any("Undone: Delete page 2." in s for s in texts(at.success)), texts(at.error)
    back = lib.get_project(project.id)
    assert [s.id for s in back.pages] == [first.id, second.id, third.id] and back.pages[1].pictures
    assert back.story_text == project.story_text
    click(at, "history.redo")
    after = lib.get_project(project.id)
    click(at, "bin.empty")
    click(at, "bin.empty.yes")
    assert any("The bin is empty: 1 picture file removed" in s for s in texts(at.success)), texts(at.error)
    assert not picture.exists()  # nothing else used that picture file
    after = lib.get_project(project.id)

    with pytest.raises(InputError, match="only page"):
        two = actions.delete_page(lib, project.id, first.id, after.version)
        actions.delete_page(lib, project.id, third.id, two.version)


def test_the_loose_pictures_tray_shows_words_and_settings_and_puts_a_picture_on_a_page(lib):
    from studio import actions

    project = new_project(lib)
    first, _second, third = project.pages
    settings = {"seed": 77, "style": "ink", "profile": "tiny", "prompt": "a boat on a puddle", "page_text": third.text}
    lib.add_picture(third.id, fx.png((21, 27)), settings)
    project = lib.get_project(project.id)
    # The last page's words are rewritten beyond recognition: the page leaves, its picture waits in the tray.
    rewritten = project.story_text.replace(third.text, "Zebras dance under purple moons tonight.")
    outcome = actions.split_story(lib, project.id, project.version, rewritten)
    assert outcome.loose == 1 and [p.id for p in outcome.project.loose] == [third.id]
    picture = outcome.project.loose[0].pictures[0]

    at = storyboard(project.id)
    assert "Loose pictures (1)" in " ".join(h.value for h in at.header), texts(at.header)
    assert any(ui.plain(third.text) in m.value for m in at.markdown), texts(at.markdown)  # its words
    details = next(c for c in texts(at.caption) if "seed 77" in c)  # and what it was drawn with
    assert "style: ink" in details and "models: tiny" in details and "a boat on a puddle" in details, details
    back = at.button(key=f"tray.back.{third.id}")
    assert not back.disabled and not back.help
    at.selectbox(key=f"tray.to.{picture.id}").set_value(first.id)
    click(at, f"tray.put.{picture.id}")
    assert any("Page 1 now has this picture." in s for s in texts(at.success)), texts(at.error)
    placed = lib.get_project(project.id)
    assert placed.loose == [] and placed.pages[0].selected.id == picture.id
    assert not any("Loose pictures" in h.value for h in at.header)

    # A story told from pictures keeps their order: the buttons that would change it are off and say why.
    placed, _ = actions.undo(lib, project.id, placed.version)  # the picture is back in the tray
    placed = actions.delete_page(lib, project.id, _second.id, placed.version)  # and a page is in the bin
    told = lib.update_project(placed.id, placed.version, story_settings={"source": actions.STORY_SOURCE})
    at = storyboard(told.id)
    for key in (f"tray.back.{third.id}", f"bin.page.{_second.id}"):
        assert at.button(key=key).disabled and at.button(key=key).help == actions.TOLD_KEEPS_ORDER
    open_popover(at, f"pop.more.{first.id}")
    for key in (f"move.1.{first.id}", f"pagedel.{first.id}"):
        assert at.button(key=key).disabled and at.button(key=key).help == actions.TOLD_KEEPS_ORDER
    with pytest.raises(InputError, match="told from pictures follows their order"):
        actions.bring_back_page(lib, told.id, third.id, told.version)
    assert [p.id for p in lib.get_project(told.id).loose] == [third.id]  # refused: nothing changed


def test_the_title_line_is_shown_as_the_title_and_said_unprinted_once_the_title_changes(lib):
    from studio import actions

    project = new_project(lib)
    assert project.title_from_text and project.title == "The Paper Boat"
    at = storyboard(project.id)
    assert "The first line, “The Paper Boat”, is the book's title, not a page." in texts(at.caption)
    assert not at.warning
    # Renamed in Book details: the line is no longer the title, so it would be printed nowhere; the page says so.
    project = actions.save_detail(lib, project.id, project.version, "title", "Ada's Boat")
    at.run()
    warning = next(w for w in texts(at.warning) if "is not printed in the book" in w)
    assert "“The Paper Boat”" in warning and "the title is now “Ada" in warning, warning
    click(at, "story.titlepage")
    assert any("“The Paper Boat” is the first page now" in s for s in texts(at.success)), texts(at.error)
    after = lib.get_project(project.id)
    assert after.pages[0].text == "The Paper Boat" and after.title == "Ada's Boat" and not after.title_from_text
    assert after.story_text == project.story_text and not at.warning
    assert not any("is the book's title" in c for c in texts(at.caption))


def test_words_edited_in_a_pages_menu_reach_the_story_box_and_survive_a_split(lib):
    """Issue 13: a page's words edited through its Edit menu never reached the story box, and the next split put
    the old words back and took the page's picture away."""
    project = new_project(lib)
    second = project.pages[1]
    lib.add_picture(second.id, fx.png((25, 23)), {"seed": 5, "page_text": second.text})
    at = storyboard(project.id)
    open_popover(at, f"pop.edit.{second.id}")
    words = "The wind pushed the boat past a leaf and a sleepy green snail. Ada ran beside it, laughing."
    next(t for t in at.text_area if t.key.startswith(f"w.seg.text.{second.id}.")).input(words)
    click(at, f"save.{second.id}")
    assert any("Saved page 2." in t.value for t in at.toast), texts(at.error)
    saved = lib.get_project(project.id)
    assert saved.pages[1].text == words and words in saved.story_text
    assert story_area(at).value == saved.story_text  # the story box shows the page's new words
    assert story_area(storyboard(project.id)).value == saved.story_text  # and after a refresh
    click(at, "story.split")  # the next split keeps them, and the picture stays on its page
    assert any(s.startswith("3 pages: 1 kept its picture") for s in texts(at.success)), texts(at.success)
    split = lib.get_project(project.id)
    assert split.story_text == saved.story_text and split.pages[1].id == second.id
    assert split.pages[1].text == words and split.pages[1].selected.words_changed and not split.loose
