"""Draft or final in the studio (issue 18): a book that draws drafts first, finishing drafts into new versions,
and the export that counts them. Real jobs on the worker, tiny models, offline."""

from __future__ import annotations

import numpy as np
import pytest
from apptestkit import click, open_screen, wait_for_jobs
from PIL import Image
from widgetkit import shows_what_it_holds

from core.errors import InputError
from engine.jobs import get_worker
from engine.profiles import get_profile
from storage import Library
from studio import actions, state

STORY = "The Kite\n\nMo found a red kite in the shed. It had a long tail.\n\nThe wind took the kite up high.\n"


@pytest.fixture(scope="module")
def lib(tiny_models, one_cpu_thread) -> Library:
    return Library()


def book(lib: Library, drafts: bool):
    project = actions.create_project(lib, story_text=STORY)
    project = actions.split_story(lib, project.id, project.version, STORY).project
    if drafts:
        project = lib.update_project(project.id, project.version, drafts=True)
    return project


def finish(job_id: str):
    info = get_worker().wait(job_id, timeout=180)
    assert info.status.value == "done", info.error
    return info


def pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_a_book_that_says_drafts_first_draws_drafts_and_every_picture_records_which_it_is(lib):
    project = book(lib, drafts=True)
    assert project.drafts and project.undo == "Draw drafts first"
    start = actions.illustrate_all(lib, project.id, project.version)
    finish(start.job_id)
    drawn = lib.get_project(project.id)
    for page in drawn.pages:
        picture = page.selected
        assert picture.meta["draft"] is True and actions.is_draft(picture)
        assert picture.settings["draft"] is True and picture.settings["decoder"] == "preview"
        assert picture.settings["steps"] == get_profile("tiny").draft_steps
    assert actions.draft_pages(drawn) == drawn.pages
    assert actions.drafts_note(drawn) == "2 pages are drafts"

    # A page's "New picture" can ask for a final picture in a drafts-first book.
    again = actions.regenerate(lib, project.id, drawn.pages[1].id, drawn.version, draft=False)
    finish(again.job_id)
    now = lib.get_project(project.id)
    final = now.pages[1].selected
    assert final.meta["draft"] is False and final.settings["decoder"] == "full" and not actions.is_draft(final)
    assert final.settings["steps"] == get_profile("tiny").steps
    assert actions.drafts_note(now) == "1 page is a draft" and actions.draft_pages(now) == [now.pages[0]]


def test_a_book_of_final_pictures_draws_final_pictures(lib):
    project = book(lib, drafts=False)
    assert not project.drafts
    finish(actions.illustrate_all(lib, project.id, project.version).job_id)
    drawn = lib.get_project(project.id)
    assert [p.selected.meta["draft"] for p in drawn.pages] == [False, False]
    assert actions.draft_pages(drawn) == [] and actions.drafts_note(drawn) is None
    nothing = actions.finish_drafts(lib, project.id)
    assert nothing.job_id is None and nothing.drawing == ()
    with pytest.raises(InputError, match="not a draft"):
        actions.finish_drafts(lib, project.id, picture_ids=[drawn.pages[0].selected.id])


def test_finishing_makes_a_new_selected_version_decoded_in_full_and_keeps_the_draft(lib):
    from engine.illustrate import finish_drafts

    project = book(lib, drafts=True)
    finish(actions.illustrate_all(lib, project.id, project.version).job_id)
    drawn = lib.get_project(project.id)
    drafts = {page.id: page.selected for page in drawn.pages}

    start = actions.finish_drafts(lib, project.id)
    assert start.drawing == tuple(page.id for page in drawn.pages)
    job = get_worker().get(start.job_id)
    assert job.meta["finishing"] and actions.finishing_jobs(project.id)[-1].id == start.job_id
    info = finish(start.job_id)
    assert info.results == 2

    done = lib.get_project(project.id)
    assert actions.draft_pages(done) == [] and actions.drafts_note(done) is None
    profile = get_profile("tiny")
    for page in done.pages:
        draft = drafts[page.id]
        assert [p.version for p in page.pictures] == [draft.version, draft.version + 1]  # the draft is kept
        finished = page.selected
        assert finished.version == draft.version + 1 and finished.selected
        assert finished.meta == {"draft": False, "finished_from": draft.version}
        assert page.pictures[0].meta["draft"] is True and not page.pictures[0].selected
        s = finished.settings
        assert s["decoder"] == "full" and s["draft"] is False and s["finish"] == "decode"
        assert s["seed"] == draft.settings["seed"] and s["prompt"] == draft.settings["prompt"]
        assert s["page_text"] == page.text and s["profile"] == "tiny" and s["style"] == draft.settings["style"]
        # The same latent decoded with the full decoder, as the engine finishes it from the same settings.
        (expected,) = finish_drafts([(0, draft.settings)], profile)
        assert np.array_equal(pixels(finished.image_path), np.asarray(expected.image.convert("RGB")))
        assert not np.array_equal(pixels(finished.image_path), pixels(draft.image_path)), "not the preview decoder"


def test_one_draft_version_is_finished_on_its_own_and_a_busy_story_refuses(lib):
    project = book(lib, drafts=True)
    finish(actions.illustrate_all(lib, project.id, project.version).job_id)
    drawn = lib.get_project(project.id)
    first = drawn.pages[0].selected
    start = actions.finish_drafts(lib, project.id, picture_ids=[first.id])
    assert start.drawing == (drawn.pages[0].id,)
    with pytest.raises(InputError, match="being drawn right now"):
        actions.finish_drafts(lib, project.id)
    finish(start.job_id)
    done = lib.get_project(project.id)
    assert done.pages[0].selected.meta["finished_from"] == first.version
    assert actions.draft_pages(done) == [done.pages[1]]  # the other page is still a draft
    with pytest.raises(InputError, match="no longer on a page"):
        actions.finish_drafts(lib, project.id, picture_ids=[10**9])


def test_drafts_are_recommended_only_where_the_profile_and_the_device_favour_them(monkeypatch):
    from dataclasses import replace

    from studio.actions import pictures

    tiny = get_profile("tiny")
    assert actions.drafts_recommended(tiny) is False  # its drafts are not the bench's choice on a CPU
    fast_like = replace(tiny, draft_on_cpu=True)
    monkeypatch.setattr(pictures, "_gpu_here", [False])
    assert actions.drafts_recommended(fast_like) is True
    monkeypatch.setattr(pictures, "_gpu_here", [True])
    assert actions.drafts_recommended(fast_like) is False


def test_a_new_book_starts_with_drafts_where_this_computer_favours_them(lib, monkeypatch):
    from studio.actions import pictures

    monkeypatch.setattr(pictures, "_gpu_here", [False])
    fast = actions.create_project(lib, title="On a CPU", profile="fast")
    assert fast.drafts is True  # SD-Turbo drafts are the bench's choice without a GPU
    assert actions.create_project(lib, title="Tiny", profile="tiny").drafts is False
    monkeypatch.setattr(pictures, "_gpu_here", [True])
    assert actions.create_project(lib, title="On a GPU", profile="fast").drafts is False
    # Before torch is loaded, the guess comes from the drivers' files, without importing torch.
    monkeypatch.setattr(pictures, "_gpu_here", [])
    monkeypatch.setattr(pictures, "drafts_recommended", lambda profile: None)
    monkeypatch.setattr(pictures, "gpu_likely", lambda: False)
    assert actions.create_project(lib, title="Guessed", profile="fast").drafts is True
    monkeypatch.setattr(pictures, "gpu_likely", lambda: True)
    assert actions.create_project(lib, title="Guessed GPU", profile="fast").drafts is False
    # The choice is how the book starts, not an edit: there is nothing to undo yet.
    assert lib.get_project(fast.id).undo is None


def test_a_gpu_is_guessed_from_the_setting_and_the_drivers_files(monkeypatch, tmp_path):
    from core.hardware import gpu_likely

    monkeypatch.setenv("STORYBOOK_DEVICE", "cpu")
    assert gpu_likely() is False
    monkeypatch.setenv("STORYBOOK_DEVICE", "cuda")
    assert gpu_likely() is True
    monkeypatch.delenv("STORYBOOK_DEVICE")
    monkeypatch.setattr("platform.system", lambda: "Linux")
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi
    assert gpu_likely(marks=(str(tmp_path / "no-driver"),)) is False
    (tmp_path / "nvidiactl").write_text("")
    assert gpu_likely(marks=(str(tmp_path / "nvidiactl"),)) is True
    monkeypatch.setattr("platform.system", lambda: "Darwin")
    monkeypatch.setattr("platform.machine", lambda: "arm64")
    assert gpu_likely(marks=()) is True


# --- the storyboard page (AppTest) -----------------------------------------------------------------------------


def storyboard(project_id: int):
    return open_screen("storyboard", project_id)


def page_text(at) -> str:
    return " ".join(str(e.value) for e in [*at.markdown, *at.caption, *at.success, *at.info])


def test_the_draw_pages_as_radio_shows_on_its_own_the_stored_choice(lib):
    """A book of final pictures: "Draw pages as" shows "Final pictures" (its second option) from its own default,
    as a browser draws it; the choice saved another way comes as a new radio showing it on its own."""
    project = book(lib, drafts=False)
    at = storyboard(project.id)

    def choice():
        return next(r for r in at.radio if r.label == "Draw pages as")

    assert choice().value is False and choice().index == 1 and shows_what_it_holds(choice()), choice().proto
    actions.set_drafts(lib, project.id, project.version, True)  # as another tab would
    at.run()
    assert not at.exception, at.exception
    assert choice().value is True and shows_what_it_holds(choice()), choice().proto
    choice().set_value(False).run()  # chosen here: saved, and shown on its own
    assert not lib.get_project(project.id).drafts
    assert choice().value is False and shows_what_it_holds(choice()), choice().proto


def test_the_storyboard_draws_drafts_when_the_book_says_so_and_finishes_them_all_or_one(lib):
    project = book(lib, drafts=False)
    at = storyboard(project.id)
    choice = next(r for r in at.radio if r.label == "Draw pages as")
    assert choice.value is False and "Finish all drafts" not in " ".join(b.label for b in at.button)
    choice.set_value(True).run()
    assert not at.exception, at.exception
    project = lib.get_project(project.id)
    assert project.drafts and project.undo == "Draw drafts first"

    click(at, "illustrate.all")
    wait_for_jobs(project.id)
    at.run()
    drawn = lib.get_project(project.id)
    assert all(actions.is_draft(page.selected) for page in drawn.pages)
    badges = [m.value for m in at.markdown if m.value == ":gray-badge[:material/bolt: Draft]"]
    assert len(badges) == 2  # each card says its picture is a draft
    assert at.button(key="finish.all").label == "Finish all drafts (2)"

    first = drawn.pages[0]
    click(at, f"finish.{first.id}")  # one card's draft
    wait_for_jobs(project.id)
    at.run()
    assert any(s.startswith("Done: 1 draft finished") for s in (e.value for e in at.success)), page_text(at)
    now = lib.get_project(project.id)
    assert now.pages[0].selected.meta == {"draft": False, "finished_from": first.selected.version}
    assert at.button(key="finish.all").label == "Finish all drafts (1)"

    click(at, "finish.all")
    wait_for_jobs(project.id)
    at.run()
    done = lib.get_project(project.id)
    assert actions.draft_pages(done) == [] and [len(p.pictures) for p in done.pages] == [2, 2]
    assert not [b for b in at.button if b.key == "finish.all"]
    assert not [m for m in at.markdown if "Draft]" in m.value]

    # The Pictures menu draws a final picture in a drafts-first book, and its versions say which is which.
    at.session_state[f"pop.pictures.{first.id}"] = True
    at.run()
    assert "finished from v1" in page_text(at) and "draft" in page_text(at)
    click(at, f"new.final.{first.id}")
    wait_for_jobs(project.id)
    newest = lib.get_project(project.id).pages[0].selected
    assert newest.version == 3 and newest.meta["draft"] is False and newest.settings["decoder"] == "full"


# --- the export screen (AppTest) -------------------------------------------------------------------------------


def export_screen(project_id: int):
    from test_export_page import export_page

    return export_page(project_id)


def drafted_book(lib: Library):
    project = book(lib, drafts=True)
    finish(actions.illustrate_all(lib, project.id, project.version).job_id)
    return lib.get_project(project.id)


def test_the_export_says_how_many_pages_are_drafts_and_finishes_them_before_making_the_pdf(lib):
    project = drafted_book(lib)
    at = export_screen(project.id)
    assert [w.value for w in at.warning if w.value.startswith("2 pages are drafts")], [w.value for w in at.warning]
    assert not [b for b in at.button if b.key == "export.make"]  # the two choices stand in its place
    at.session_state[state.RECENT_ACTIONS] = {}
    at.button(key="export.finish").click().run()
    assert not at.exception, at.exception
    assert actions.finishing_jobs(project.id) and "Finishing the drafts" in " ".join(i.value for i in at.info)
    wait_for_jobs(project.id)
    at.run()
    assert not at.exception, at.exception
    done = lib.get_project(project.id)
    assert actions.draft_pages(done) == []
    assert [s.value for s in at.success if s.value.startswith("Your book is ready")], [s.value for s in at.success]
    outcome = at.session_state[state.EXPORT_RESULT]
    assert outcome.key[:3] == (done.id, done.version, done.updated.isoformat())  # made from the finished book
    assert not [w for w in at.warning if "drafts" in w.value]


def test_the_export_can_print_the_drafts_as_they_are(lib):
    project = drafted_book(lib)
    at = export_screen(project.id)
    at.button(key="export.with_drafts").click().run()
    assert not at.exception, at.exception
    assert [s.value for s in at.success if s.value.startswith("Your book is ready")]
    assert not actions.finishing_jobs(project.id)
    assert len(actions.draft_pages(lib.get_project(project.id))) == 2  # nothing was finished


def test_drafts_that_cannot_be_finished_the_same_are_refused_with_a_sentence(lib):
    import fixtures_images as fx

    project = book(lib, drafts=True)
    page = project.pages[0]
    settings = {"prompt": "a kite", "seed": 1, "steps": 1, "guidance": 4.0, "width": 64, "height": 64, "draft": True}
    other = lib.add_picture(page.id, fx.png(), {**settings, "model_id": "someone/else"}, meta={"draft": True})
    with pytest.raises(InputError, match="drawn with other models"):
        actions.finish_drafts(lib, project.id, picture_ids=[other.id])
    reference = {"method": "ip_adapter", "name": "Mo", "scale": 0.6}
    with_ref = lib.add_picture(page.id, fx.png(), {**settings, "reference": reference}, meta={"draft": True})
    with pytest.raises(InputError, match="Mo's reference picture, which this story no longer has"):
        actions.finish_drafts(lib, project.id, picture_ids=[with_ref.id])
    assert not actions.finishing_jobs(project.id)  # nothing was started


def test_openvino_drafts_where_openvino_is_missing_are_refused_before_a_job_with_the_engines_sentence(lib, monkeypatch):
    """Drafts drawn with OpenVINO on a processor cannot be finished the same without it: the studio says so up
    front, in the engine's own words, and starts no job; with OpenVINO installed (or a GPU) the check passes."""
    import importlib.util

    import fixtures_images as fx

    from core.hardware import OPENVINO_DRAFTS_NOT_INSTALLED
    from studio.actions import pictures

    real_find_spec = importlib.util.find_spec
    installed = {"openvino": False}

    def find_spec(name, *args, **kwargs):
        if name == "openvino":
            return real_find_spec("json") if installed["openvino"] else None
        return real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)

    def torch_asked():
        raise AssertionError("asking torch loads it on the screen's thread")

    monkeypatch.setattr(pictures, "has_gpu", torch_asked)
    monkeypatch.setattr(pictures, "_gpu_here", [])  # torch not asked yet: the drivers' files tell
    monkeypatch.setattr(pictures, "gpu_likely", lambda: False)
    project = book(lib, drafts=True)
    page = project.pages[0]
    settings = {"prompt": "a kite", "seed": 1, "steps": 1, "guidance": 4.0, "width": 64, "height": 64, "draft": True}
    drawn = lib.add_picture(page.id, fx.png(), {**settings, "runtime": "openvino"}, meta={"draft": True})
    with pytest.raises(InputError) as refused:
        actions.finish_drafts(lib, project.id, picture_ids=[drawn.id])
    assert refused.value.message == OPENVINO_DRAFTS_NOT_INSTALLED and "pip install openvino" in refused.value.message
    assert not actions.finishing_jobs(project.id)  # nothing was started

    # The same draft where a GPU finishes it with torch, or where OpenVINO is installed, is not refused up front.
    monkeypatch.setattr(pictures, "ensure_illustrator", lambda profile: (_ for _ in ()).throw(InputError("later")))
    monkeypatch.setattr(pictures, "gpu_likely", lambda: True)
    with pytest.raises(InputError, match="later"):
        actions.finish_drafts(lib, project.id, picture_ids=[drawn.id])
    monkeypatch.setattr(pictures, "gpu_likely", lambda: False)
    monkeypatch.setattr(pictures, "_gpu_here", [True])  # torch's own answer, once the worker has it loaded
    with pytest.raises(InputError, match="later"):
        actions.finish_drafts(lib, project.id, picture_ids=[drawn.id])
    monkeypatch.setattr(pictures, "_gpu_here", [False])
    installed["openvino"] = True
    with pytest.raises(InputError, match="later"):
        actions.finish_drafts(lib, project.id, picture_ids=[drawn.id])


def test_a_draft_drawn_with_an_uploaded_reference_is_finished_with_that_picture(lib):
    import fixtures_images as fx

    from engine.illustrate import finish_drafts
    from engine.profiles import REFERENCE_IP_ADAPTER

    project = book(lib, drafts=True)
    project = actions.save_characters(lib, project.id, project.version, [("Mo", "a small boy in a green coat")])
    project, _ = actions.upload_reference(lib, project.id, project.version, "Mo", fx.png(), "mo.png")
    finish(actions.illustrate_all(lib, project.id, project.version).job_id)
    drawn = lib.get_project(project.id)
    draft = drawn.pages[0].selected  # "Mo found a red kite": drawn with Mo's reference picture
    assert draft.meta["draft"] is True and draft.settings["reference"]["method"] == REFERENCE_IP_ADAPTER

    finish(actions.finish_drafts(lib, project.id, picture_ids=[draft.id]).job_id)
    finished = lib.get_project(project.id).pages[0].selected
    assert finished.meta == {"draft": False, "finished_from": draft.version}
    assert finished.settings["reference"] == draft.settings["reference"]  # still recorded: it redraws exactly
    with Image.open(drawn.characters[0].reference_path) as image:
        picture = image.convert("RGB")
    (expected,) = finish_drafts([(0, draft.settings)], get_profile("tiny"), reference_images={"Mo": picture})
    assert np.array_equal(pixels(finished.image_path), np.asarray(expected.image.convert("RGB")))

    # Another reference picture since: the draft would not come out the same, so it is refused up front.
    project, _ = actions.upload_reference(lib, project.id, drawn.version, "Mo", fx.png(color=(9, 99, 199)), "b.png")
    second = lib.get_project(project.id).pages[0].pictures[0]
    assert second.id == draft.id
    with pytest.raises(InputError, match="it has another one now"):
        actions.finish_drafts(lib, project.id, picture_ids=[draft.id])
