"""studio.actions without a browser: splitting, seeds, jobs that save each picture as it arrives."""

from __future__ import annotations

import threading

import fixtures_images as fx
import pytest

from engine.errors import ImageRejected, InputError
from engine.jobs import get_worker
from storage import ConflictError, Library
from studio import actions

STORY = "The Snow Hare\n\nA hare sat in the snow. It was very cold.\n\nA fox came by. The hare ran home.\n"


@pytest.fixture(scope="module")
def lib(tiny_models) -> Library:
    return Library()


def split(lib: Library, story: str = STORY, **kwargs):
    project = actions.create_project(lib, story_text=story)
    return actions.split_story(lib, project.id, project.version, story, **kwargs)


def finish(job_id: str):
    info = get_worker().wait(job_id, timeout=180)
    assert info.status.value == "done", info.error
    return info


def test_split_takes_the_title_line_and_keeps_pictures_of_unchanged_pages(lib):
    outcome = split(lib)
    project = outcome.project
    assert (outcome.title, outcome.pages, outcome.kept) == ("The Snow Hare", 2, 0)
    assert project.title == "The Snow Hare"
    first = project.pages[0]
    lib.add_picture(first.id, fx.png(), {"seed": 1}, origin="uploaded")
    longer = STORY + "\nThe snow melted in spring.\n"
    again = actions.split_story(lib, project.id, lib.get_project(project.id).version, longer)
    assert again.pages == 3 and again.kept == 1 and again.loose == 0
    assert again.message.startswith("3 pages: 1 kept its picture.")
    assert again.project.pages[0].pictures and again.project.pages[0].id == first.id

    with pytest.raises(InputError, match="empty"):
        actions.split_story(lib, project.id, again.project.version, " \n ")
    with pytest.raises(ConflictError):
        actions.split_story(lib, project.id, again.project.version - 1, STORY)
    words = actions.split_story(lib, project.id, again.project.version, longer, words=200)
    assert words.pages == 3  # never across a paragraph


def test_seeds_are_stored_before_the_job_and_each_picture_is_saved_as_it_arrives(lib):
    project = split(lib).project
    saved_before_finish = []
    gate = threading.Event()
    blocker = get_worker().submit(lambda ctx: gate.wait(30), kind="test", label="hold the worker")
    try:
        start = actions.illustrate_all(lib, project.id, project.version)
        queued = lib.get_project(project.id)
        assert all(s.seed is not None for s in queued.pages)  # stored before any picture exists
        assert start.project.version == queued.version and len(start.drawing) == 2
        assert get_worker().jobs(project_id=project.id, active_only=True)[0].id == start.job_id
        saved_before_finish.append(sum(len(s.pictures) for s in queued.pages))
    finally:
        gate.set()
    finish(blocker)
    info = finish(start.job_id)
    assert info.results == 2 and saved_before_finish == [0]
    done = lib.get_project(project.id)
    for seg in done.pages:
        assert seg.selected.settings["seed"] == seg.seed
        assert seg.selected.settings["style"] == done.style and seg.selected.settings["profile"] == "tiny"

    nothing = actions.illustrate_all(lib, project.id, done.version)
    assert nothing.job_id is None and len(nothing.kept) == 2


def test_a_picture_for_a_page_merged_away_meanwhile_waits_in_the_loose_pictures_tray(lib):
    project = split(lib).project
    gate = threading.Event()
    blocker = get_worker().submit(lambda ctx: gate.wait(30), kind="test", label="hold the worker")
    try:
        start = actions.regenerate(lib, project.id, project.pages[1].id, project.version)
        # The user merges the two pages while the picture waits to be drawn: the page it was for is gone.
        lib.merge_pages(project.pages[0].id, start.project.version)
    finally:
        gate.set()
    finish(blocker)
    info = finish(start.job_id)
    assert info.error is None
    merged = lib.get_project(project.id)
    assert len(merged.pages) == 1 and not merged.pages[0].pictures
    assert [page.id for page in merged.loose] == [project.pages[1].id] and len(merged.loose[0].pictures) == 1
    assert merged.loose[0].pictures[0].settings["page_text"] == project.pages[1].text


def test_locked_pages_refuse_a_new_seed_and_uploads_go_through_the_hardened_loader(lib):
    project = split(lib).project
    seg = project.pages[0]
    project = lib.update_page(seg.id, project.version, seed=42, locked=True)
    with pytest.raises(InputError, match="locked"):
        actions.regenerate(lib, project.id, seg.id, project.version, new_seed=True)
    with pytest.raises(ImageRejected):
        actions.upload_picture(lib, seg.id, b"GIF89a" + b"\0" * 32, "cat.png")
    with pytest.raises(ImageRejected):
        actions.upload_picture(lib, seg.id, fx.bomb_png(), "huge.png")
    view, notes = actions.upload_picture(lib, seg.id, fx.exif_rotated_jpeg(), "photo.jpg")
    assert view.origin == "uploaded" and view.selected and view.settings["format"] == "JPEG"
    assert notes  # the rotation is reported
    assert lib.get_project(project.id).pages[0].seed == 42


def test_split_points_offer_sentence_starts_or_the_middle():
    points = actions.split_points("One fish swam. Two fish swam. Red fish!")
    assert [p[1] for p in points] == ["Two fish swam. Red fish!", "Red fish!"]
    ((at, preview),) = actions.split_points("a single long sentence without any stop at all")
    assert 0 < at < 47 and preview
    assert actions.split_points("word") == []


def test_saving_the_story_text_carries_the_edit_onto_the_pages(lib):
    from core.limits import MAX_STORY_CHARS

    project = split(lib).project
    first, second = project.pages
    lib.add_picture(first.id, fx.png(), {"seed": 1}, origin="uploaded")
    project = lib.update_page(first.id, project.version, prompt_override="a white hare", seed=9)
    edited = project.story_text.replace("very cold", "very, very cold")
    saved = actions.save_draft(lib, project.id, project.version, edited)
    assert saved.story_text == edited and saved.version == project.version + 1
    assert [p.id for p in saved.pages] == [first.id, second.id]  # no page was cut again or lost its picture
    page = saved.pages[0]
    assert page.text == "A hare sat in the snow. It was very, very cold."
    assert (page.prompt_override, page.seed, len(page.pictures)) == ("a white hare", 9, 1)
    assert page.selected.words_changed and not saved.pages[1].pictures
    for page in saved.pages:
        assert saved.story_text[page.start : page.end] == page.text

    # Deleting a page's words in the story box: the page leaves, its pictures wait in the tray; undo brings it back.
    shorter = edited[: edited.index("A fox")].rstrip() + "\n"
    outcome = actions.save_story_text(lib, project.id, saved.version, shorter)
    assert outcome.pages == 1 and outcome.project.story_text == shorter
    with pytest.raises(ConflictError):
        actions.save_draft(lib, project.id, project.version, "stale")
    with pytest.raises(InputError, match="too long"):
        actions.save_draft(lib, project.id, outcome.project.version, "x" * (MAX_STORY_CHARS + 1))
    back, message = actions.undo(lib, project.id, outcome.project.version)
    assert message == "Undone: Edit the story." and back.story_text == edited
    assert [p.id for p in back.pages] == [first.id, second.id]


def test_submitting_pictures_leaves_torch_to_the_worker(tmp_path, tiny_models):
    """The page thread only submits: engine.illustrate (torch, diffusers: seconds the first time) is
    imported by the job on the worker, so a click shows the job at once instead of freezing the page."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = """
import sys
from engine.jobs import get_worker
from storage import Library
from studio import actions
submitted = []
worker = get_worker()
worker.submit = lambda fn, **kw: submitted.append(kw) or "job-1"
lib = Library()
project = actions.open_sample(lib)
start = actions.illustrate_all(lib, project.id, project.version)
again = actions.regenerate(lib, project.id, project.pages[0].id, start.project.version)
assert start.job_id == "job-1" and again.job_id == "job-1" and len(submitted) == 2, submitted
heavy = sorted(m for m in ("torch", "diffusers", "engine.illustrate") if m in sys.modules)
print("heavy:", heavy)
"""
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    os.symlink(next(iter(tiny_models.values())).parent, home / "models" / "tiny")
    env = {**os.environ, "STORYBOOK_HOME": str(home), "STORYBOOK_PROFILE": "tiny"}
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "heavy: []" in out.stdout, out.stdout


def test_clean_characters_trims_drops_blank_rows_and_refuses_what_a_prompt_cannot_use():
    from studio.actions import MAX_DESCRIPTION_CHARS, clean_characters

    rows = [(" Pip ", " a red\n  fox "), ("", "  "), ("Mrs.  Gull", ""), ("猫", "黒い猫")]
    assert clean_characters(rows) == [("Pip", "a red fox"), ("Mrs. Gull", ""), ("猫", "黒い猫")]
    assert clean_characters([]) == []
    with pytest.raises(InputError, match="Character 2 has a description but no name"):
        clean_characters([("Pip", "fox"), ("  ", "an owl")])
    with pytest.raises(InputError, match="Two characters are called “PIP”"):
        clean_characters([("Pip", "fox"), ("PIP", "another fox")])
    with pytest.raises(InputError, match=f"keep it under {MAX_DESCRIPTION_CHARS}"):
        clean_characters([("Pip", "x" * (MAX_DESCRIPTION_CHARS + 1))])


def test_moving_pages_keeps_a_story_told_from_pictures_in_their_order_and_edited_pages_their_text(lib):
    project = split(lib).project
    first, second = project.pages[:2]
    # A page edited by hand keeps its own text; the story text moves the passage it was cut from.
    project = lib.update_page(first.id, project.version, text="An edited first page.")
    moved = actions.move_page(lib, project.id, first.id, project.version, 1)
    assert [s.text for s in moved.pages[:2]] == [second.text, "An edited first page."]
    assert moved.story_text.index(second.text) < moved.story_text.index("An edited first page.")
    with pytest.raises(ConflictError):
        actions.move_page(lib, project.id, first.id, project.version, -1)  # based on an old version

    told = lib.update_project(moved.id, moved.version, story_settings={"source": actions.STORY_SOURCE})
    with pytest.raises(InputError, match="told from pictures"):
        actions.move_page(lib, told.id, first.id, told.version, -1)


def test_moving_and_deleting_pages_keeps_the_authors_paragraphs(lib):
    story = "A1. A2.\n\nB1. B2.\n\nC1. C2."
    project = lib.create_project("Paragraphs", story_text=story)
    project = actions.split_story(lib, project.id, project.version, story, sentences=1).project
    ids = {page.text: page.id for page in project.pages}
    lib.add_picture(ids["B2."], fx.png(), {"seed": 3}, origin="uploaded")
    moved = actions.move_page(lib, project.id, ids["A2."], project.version, 1)
    assert moved.story_text == "A1. B1.\n\nA2. B2.\n\nC1. C2."  # only words move; the breaks stay put
    moved = actions.move_page(lib, project.id, ids["A2."], moved.version, -1)
    assert moved.story_text == story  # and moving back gives the exact text
    gone = actions.delete_page(lib, project.id, ids["B2."], moved.version)
    assert gone.story_text == "A1. A2.\n\nB1.\n\nC1. C2."
    assert [p.id for p in gone.bin.pages] == [ids["B2."]] and len(gone.bin.pages[0].pictures) == 1
    back, _ = actions.undo(lib, project.id, gone.version)
    assert back.story_text == story and back.pages[3].id == ids["B2."] and back.pages[3].pictures
    again, _ = actions.redo(lib, project.id, back.version)
    restored = actions.bring_back_page(lib, project.id, ids["B2."], again.version)
    assert [p.id for p in restored.pages][3] == ids["B2."] and restored.pages[3].pictures
    assert restored.bin.empty


def test_edit_page_saves_only_what_was_changed_in_the_editor(lib):
    project = split(lib).project
    page = project.pages[0]
    typed = dict(text=page.text, prompt="", negative_prompt="", seed="", locked=False)

    untouched = actions.edit_page(lib, page, project.version, **typed)
    assert (untouched.changed, untouched.version, untouched.project) == ((), project.version, None)
    assert lib.get_project(project.id).version == project.version  # nothing was written

    edited = actions.edit_page(lib, page, project.version, **{**typed, "prompt": "  a hare  ", "seed": "12,345"})
    assert set(edited.changed) == {"prompt_override", "seed"} and edited.version == project.version + 1
    stored = lib.get_project(project.id).pages[0]
    assert (stored.prompt_override, stored.seed, stored.text) == ("a hare", 12345, page.text)

    with pytest.raises(InputError, match="A seed is a whole number"):
        actions.edit_page(lib, stored, edited.version, **{**typed, "seed": "twelve"})
    with pytest.raises(ConflictError):
        actions.edit_page(lib, stored, project.version, **{**typed, "text": "Changed in a stale tab."})

    # A story job writes a page's words without changing the version: an editor drawn before, where nothing
    # was typed, must not put the old words back.
    lib.save_job_output(project.id, passages={page.id: "Words a job wrote meanwhile."})
    kept = actions.edit_page(lib, stored, edited.version, **{**typed, "prompt": "a hare", "seed": "12345"})
    assert kept.changed == () and lib.get_project(project.id).pages[0].text == "Words a job wrote meanwhile."


def test_deleting_a_story_hands_back_the_bundle_that_brings_it_back(lib):
    project = split(lib).project
    lib.add_picture(project.pages[0].id, fx.png(), {"seed": 3}, origin="uploaded")
    kept = actions.delete_project(lib, project.id)
    assert kept is not None
    assert project.id not in {p.id for p in lib.list_projects()}
    back = actions.import_bundle(lib, kept)
    assert [p.text for p in back.pages] == [p.text for p in project.pages]
    assert back.pages[0].selected is not None and back.pages[0].selected.settings == {"seed": 3}


def test_opening_a_story_warms_its_picture_model_once_from_disk_only(lib, monkeypatch):
    from engine.cache import get_cache
    from engine.profiles import get_profile
    from studio.actions import jobs as jobs_module

    monkeypatch.setattr(jobs_module, "_warmed", set())
    tiny = get_profile("tiny")
    job_id = actions.warm_up(tiny)
    assert job_id is not None and actions.warm_up(tiny) is None  # once per profile per process
    info = finish(job_id)
    assert info.kind == actions.KIND_WARM and info.message == "Finished."
    held = [str(row["key"]) for row in get_cache().report()]
    assert any("illustrator" in key for key in held)  # loaded, kept for the first click
    assert any("preview_decoder" in key for key in held)  # and the quick decoder, so a first draft is quick too
    fast = get_profile("fast")  # not on this computer: warming never downloads
    from engine.profiles import is_downloaded

    if not is_downloaded(fast.model("illustrator")):
        assert actions.warm_up(fast) is None


def test_a_cold_start_shows_as_the_job_loading_the_picture_model_from_disk(lib, monkeypatch):
    """Issue 18: the app shows the cold start (the picture model read from disk into an empty cache) as the job's
    progress, while it loads; a job that finds the model in memory does not say so."""
    import time

    from engine import illustrate
    from engine.cache import ModelCache, use_cache
    from engine.jobs import JobContext
    from engine.profiles import get_profile

    said: dict[str, list] = {}
    real_progress = JobContext.progress

    def heard(self, done, total=None, message=None):
        said.setdefault(self.job_id, []).append(message)
        return real_progress(self, done, total, message)

    monkeypatch.setattr(JobContext, "progress", heard)
    loading, gate = threading.Event(), threading.Event()
    real_load = illustrate.load_pipeline

    def slow_load(location, choice):
        loading.set()
        gate.wait(30)
        return real_load(location, choice)

    monkeypatch.setattr(illustrate, "load_pipeline", slow_load)
    tiny = get_profile("tiny")
    project = split(lib).project
    with use_cache(ModelCache()):  # an empty cache: this process has not loaded the picture model yet
        assert not illustrate.illustrator_loaded(tiny)
        cold = actions.illustrate_all(lib, project.id, project.version)
        try:
            assert loading.wait(60)
            time.sleep(0.2)
            info = get_worker().get(cold.job_id)
            assert info.status.value == "running" and info.fraction == 0
            assert info.message == actions.PICTURE_MODEL_FROM_DISK  # what the progress bar says while it loads
        finally:
            gate.set()
        assert finish(cold.job_id).results == 2
        assert illustrate.illustrator_loaded(tiny)
        warm = actions.illustrate_all(lib, project.id, lib.get_project(project.id).version, redo=True)
        finish(warm.job_id)
    assert actions.PICTURE_MODEL_FROM_DISK not in said[warm.job_id]
    assert said[warm.job_id][0] == actions.PICTURE_MODEL_READY


def test_finishing_drafts_asks_for_the_picture_model_in_the_format_the_drafts_were_drawn_in(monkeypatch):
    from engine import illustrate
    from engine.cache import ModelCache, use_cache
    from engine.device import pick_device
    from engine.profiles import get_profile
    from studio.actions.jobs import picture_model_progress

    class Heard:
        def __init__(self):
            self.said = []

        def progress(self, done, total=None, message=None):
            self.said.append(message)

    tiny = get_profile("tiny")
    default = str(pick_device("cpu").dtype).removeprefix("torch.")
    other = "float32" if default == "bfloat16" else "bfloat16"
    with use_cache(ModelCache()):
        with illustrate.open_illustrator(tiny, pick_device("cpu")):
            pass  # loaded in the default format only
        same, drawn_other = Heard(), Heard()
        picture_model_progress(same, tiny, 1, [(1, {"dtype": default})])
        picture_model_progress(drawn_other, tiny, 1, [(1, {"dtype": other})])
    assert same.said == [actions.PICTURE_MODEL_READY]
    assert drawn_other.said == [actions.PICTURE_MODEL_READY, actions.PICTURE_MODEL_FROM_DISK]
