"""Issue 19, what the studio keeps of the cast (tiny profile, real engine, offline): the pictures drawn for a
reference kept in the library, how closely pages follow a reference (stored, undoable, passed to the engine,
recorded, redrawn exactly), each character's likeness measured on the worker, the book judged by the judge, and
a best-of-N draw stopped part-way keeping its candidates with the best so far chosen."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
from PIL import Image

from core.errors import InputError
from core.limits import DEFAULT_IP_SCALE, DEFAULT_SHARE_RATE
from engine.jobs import get_worker
from engine.profiles import REFERENCE_IP_ADAPTER, REFERENCE_SHARED_ATTENTION, get_profile
from storage import Library
from studio import actions
from studio.actions import cast

STORY = (
    "Mara by the Sea\n\nMara lived by the sea with her dog Bo.\n\nShe walked on the rocks.\n\n"
    "A gull flew over the water.\n\nBo barked at the waves and Mara laughed.\n"
)
CAST = [("Mara", "a young girl with a yellow raincoat"), ("Bo", "a small brown dog")]


@pytest.fixture(scope="module")
def lib(tiny_models, one_cpu_thread) -> Library:
    return Library()


def story(lib: Library, *, candidates: int = 1):
    project = actions.create_project(lib, story_text=STORY)
    project = actions.split_story(lib, project.id, project.version, STORY).project
    project = actions.save_characters(lib, project.id, project.version, CAST)
    if candidates != 1:
        project = lib.update_project(project.id, project.version, candidates=candidates)
    return lib.set_seeds(project.id, project.version, {page.id: 7 + i for i, page in enumerate(project.pages)})


def finish(job_id: str, status: str = "done"):
    info = get_worker().wait(job_id, timeout=300)
    assert info.status.value == status, (info.error, info.save_errors)
    return info


def pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_drawn_reference_pictures_are_kept_in_the_library_and_one_removed_is_undoable(lib, tmp_path):
    project = story(lib)
    finish(actions.draw_reference(lib, project.id, project.version, "Mara", count=3))
    # A studio restarted on the same library (a new Library, nothing in memory) still offers all three.
    again = Library(lib.home)
    project = again.get_project(project.id)
    offered = actions.proposals(project, "mara")
    assert len(offered) == 3 and [p.in_use for p in offered].count(True) == 1
    assert all(p.image_path.exists() and p.score is not None and 0 <= p.score <= 100 for p in offered)
    best = max(offered, key=lambda p: (p.score, -p.index))
    assert best.in_use and project.characters[0].reference_path == best.image_path
    assert {p.settings["reference_of"] for p in offered} == {"Mara"}
    assert project.undo == "Draw a reference picture"

    other = next(p for p in offered if not p.in_use)
    project = actions.use_proposal(again, project.id, project.version, "Mara", other.index)
    assert project.characters[0].reference_path == other.image_path
    assert project.characters[0].reference_settings["seed"] == other.settings["seed"]
    project = actions.remove_proposal(again, project.id, project.version, "Mara", best.index)
    assert best.image_path not in [p.image_path for p in actions.proposals(project, "Mara")]
    project, message = actions.undo(again, project.id, project.version)
    assert message == "Undone: Remove a picture drawn for a reference."
    assert len(actions.proposals(project, "Mara")) == 3  # its file waits for a sweep: the undo finds it


def test_how_closely_pages_follow_a_reference_is_stored_undoable_passed_and_redrawn_exactly(lib):
    from engine.illustrate import open_illustrator, request_from_settings

    tiny = get_profile("tiny")
    project = story(lib)
    finish(actions.draw_reference(lib, project.id, project.version, "Mara", count=1))
    project = lib.get_project(project.id)
    mara = project.characters[0]
    control = actions.follow_control(tiny, mara)
    assert control.method == REFERENCE_SHARED_ATTENTION and control.value == DEFAULT_SHARE_RATE == 0.5
    assert (control.low, control.high) == (0.0, 1.0) and "shared attention" in control.help
    assert cast.plan_drawing(project, tiny).references[0].share_rate == 0.5  # the engine's default
    from engine.references import Reference

    assert (Reference("Mara").share_rate, Reference("Mara").scale) == (DEFAULT_SHARE_RATE, DEFAULT_IP_SCALE)

    project = actions.set_reference_follow(lib, project.id, project.version, "Mara", control.method, 0.25)
    mara = project.characters[0]
    assert mara.reference_settings["share_rate"] == 0.25 and actions.follow_control(tiny, mara).value == 0.25
    (plan,) = cast.plan_drawing(project, tiny).references
    assert plan.share_rate == 0.25 and cast.engine_references([plan])["Mara"].share_rate == 0.25
    with pytest.raises(InputError):
        actions.set_reference_follow(lib, project.id, project.version, "Mara", "telepathy", 0.3)
    with pytest.raises(InputError):
        actions.set_reference_follow(lib, project.id, project.version, "Mara", control.method, 1.5)

    page = project.pages[0]
    finish(actions.regenerate(lib, project.id, page.id, project.version, new_seed=False).job_id)
    project = lib.get_project(project.id)
    followed = project.pages[0].selected
    assert followed.settings["reference"]["share_rate"] == 0.25
    # Drawn again from its stored settings alone: the same picture, pixel for pixel.
    with open_illustrator(tiny) as illustrator:
        (again,) = illustrator.illustrate([request_from_settings("again", followed.settings)])
    assert np.array_equal(np.asarray(again.image.convert("RGB")), pixels(followed.image_path))

    # The share rate reaches the pictures: the same page and seed at the engine's default comes out different.
    project, message = actions.undo(lib, project.id, project.version)
    assert message == "Undone: Change how closely pages follow a reference."
    assert project.characters[0].reference_settings.get("share_rate") is None
    finish(actions.regenerate(lib, project.id, page.id, project.version, new_seed=False).job_id)
    default = lib.get_project(project.id).pages[0].selected
    assert default.settings["reference"]["share_rate"] == 0.5 and default.settings["seed"] == followed.settings["seed"]
    assert not np.array_equal(pixels(default.image_path), pixels(followed.image_path))

    # With the IP-Adapter (an uploaded picture), the same slider is the adapter's scale, 0..2.
    uploaded, _ = actions.upload_reference(lib, project.id, project.version, "Bo", fx_png(), "bo.png")
    bo = uploaded.characters[1]
    control = actions.follow_control(tiny, bo)
    assert control.method == REFERENCE_IP_ADAPTER and control.value == 0.6 and control.high == 2.0
    uploaded = actions.set_reference_follow(lib, uploaded.id, uploaded.version, "Bo", control.method, 1.2)
    plans = {r.name: r for r in cast.plan_drawing(uploaded, tiny).references}
    assert plans["Bo"].scale == 1.2 and plans["Mara"].share_rate == 0.5
    no_way = dataclasses.replace(tiny, reference="", models={k: v for k, v in tiny.models.items() if k != "ip_adapter"})
    assert actions.follow_control(no_way, bo) is None


def fx_png() -> bytes:
    import fixtures_images as fx

    return fx.encode(fx.gradient((64, 64)))


def test_likeness_is_measured_on_the_worker_kept_and_told_stale(lib):
    from engine.scoring import open_consistency

    tiny = get_profile("tiny")
    project = story(lib)
    assert actions.character_pages(project) == {"Mara": [0, 1, 3], "Bo": [0, 3]}
    assert actions.likeness(project, project.characters[0]).text == "Likeness not measured yet."
    assert actions.measure_likeness(lib, project.id) is None  # no pictures yet: nothing to measure
    finish(actions.illustrate_all(lib, project.id, project.version).job_id)
    project = lib.get_project(project.id)
    finish(actions.measure_likeness(lib, project.id))
    measured = lib.get_project(project.id)
    assert measured.version == project.version and measured.undo == project.undo  # a measure, not an edit
    mara, bo = measured.characters
    # The figure is the consistency scorer's own on those pages' pictures.
    with open_consistency(tiny) as scorer:
        expected = scorer.score([Image.open(measured.pages[i].selected.image_path) for i in (0, 1, 3)])
    assert mara.likeness["score"] == pytest.approx(expected, abs=1e-3)
    assert mara.likeness["pictures"] == 3 and mara.likeness["pages"] == [1, 2, 4]
    assert mara.likeness["model"] == "tiny:consistency" and bo.likeness["pictures"] == 2
    shown = actions.likeness(measured, mara)
    assert shown.current and shown.text == f"Likeness {mara.likeness['score']:.1f} across 3 pages"
    assert "meaningless" in actions.LIKENESS_HELP and "DINOv2" in actions.LIKENESS_HELP

    # Once measured, a likeness follows its pages: a page drawn again, and its characters are measured again
    # behind the draw (Mara is on page 2, Bo is not).
    finish(actions.regenerate(lib, measured.id, measured.pages[1].id, measured.version).job_id)
    for _ in range(200):  # the draw's on_finish queues it just after the draw is marked done
        jobs = actions.likeness_jobs(project.id, active_only=False)
        if len(jobs) == 2:
            break
        time.sleep(0.05)
    for job in jobs:
        finish(job.id)
    assert len(jobs) == 2
    later = lib.get_project(project.id)
    assert later.characters[0].likeness["shas"] != mara.likeness["shas"]
    assert later.characters[0].likeness["shas"][1] == later.pages[1].selected.image_path.stem
    assert later.characters[1].likeness == bo.likeness
    assert actions.likeness(later, later.characters[0]).current and actions.likeness(later, later.characters[1]).current

    # A picture that is not a draw (an upload) leaves the figures as they were, said to be out of date.
    actions.upload_picture(lib, later.pages[0].id, fx_png(), "mine.png")
    later = lib.get_project(project.id)
    for character in later.characters:
        assert not actions.likeness(later, character).current
        assert "measure again" in actions.likeness(later, character).text

    missing = dataclasses.replace(tiny, models={**tiny.models, "consistency": "nobody/none"})
    with pytest.raises(InputError, match="not on this computer"):
        actions.measure_likeness(lib, project.id, profile=missing)


def test_the_book_is_judged_by_the_judge_and_its_score_says_so(lib):
    from engine.scoring import judge_book

    project = story(lib)
    finish(actions.illustrate_all(lib, project.id, project.version).job_id)
    project = lib.get_project(project.id)
    ranked = actions.book_score(project)
    line, help_text = actions.book_score_line(ranked)
    assert ranked["role"] == "ranker" and "scored by tiny:ranker, the model that chose the pictures" in line
    assert "Judge the book" in help_text
    finish(actions.judge_book(lib, project.id))
    judged = lib.get_project(project.id)
    assert judged.version == project.version
    summary = actions.book_score(judged)
    images = [Image.open(page.selected.image_path) for page in judged.pages]
    engine = judge_book(get_profile("tiny"), images, [page.text for page in judged.pages])
    assert summary["role"] == "judge" and summary["models"] == [engine["model"]] == ["tiny:judge"]
    assert summary["mean"] == pytest.approx(engine["summary"]["mean"], abs=1e-3) and summary["unjudged"] == 0
    line, _ = actions.book_score_line(summary)
    assert line.startswith(f"Book score: CLIP {summary['mean']:.1f} (95 % interval ")
    assert line.endswith("over 4 of 4 pages · judged by tiny:judge")
    # A page drawn again after judging is not judged yet, and the line says so.
    finish(actions.regenerate(lib, judged.id, judged.pages[0].id, judged.version).job_id)
    line, _ = actions.book_score_line(actions.book_score(lib.get_project(project.id)))
    assert "over 3 of 4 pages · judged by tiny:judge (1 not judged yet)" in line


def test_a_best_of_n_draw_stopped_part_way_keeps_its_candidates_and_chooses_the_best_so_far(lib, monkeypatch):
    """Stop is pressed once the first two of a page's 6 candidates are drawn and scored (the engine draws the very
    first picture alone, then batches of 4): every candidate drawn by then is kept as a version, the best scored
    one selected; the pages not reached get nothing."""
    from engine import scoring

    project = story(lib, candidates=6)
    scored: list[float] = []
    real = scoring.ClipScorer.score

    def score_then_stop(self, images, texts):
        out = real(self, images, texts)
        scored.extend(out)
        if len(scored) == 2:  # Stop, while the rest of the batch being scored is still to come
            for job in actions.active_jobs(project.id):
                get_worker().cancel(job.id)
        return out

    monkeypatch.setattr(scoring.ClipScorer, "score", score_then_stop)
    start = actions.illustrate_all(lib, project.id, project.version)
    info = finish(start.job_id, "cancelled")
    assert 2 <= len(scored) < 6 and info.results == len(scored)
    done = lib.get_project(project.id)
    first = done.pages[0]
    assert len(first.pictures) == len(scored) and all(not page.pictures for page in done.pages[1:])
    assert sorted(actions.clip_score(p) for p in first.pictures) == sorted(round(v, 4) for v in scored)
    best = max(first.pictures, key=lambda p: (actions.clip_score(p), -p.meta["candidate"]))
    assert first.selected.id == best.id and best.meta["chosen"] is True
    assert [p.meta["chosen"] for p in first.pictures].count(True) == 1
    assert sorted(p.meta["candidate"] for p in first.pictures) == list(range(1, len(scored) + 1))
    assert {p.meta["candidates"] for p in first.pictures} == {6}
    assert [p.id for p in actions.last_draw(first)] == [
        p.id for p in sorted(first.pictures, key=lambda p: p.meta["candidate"])
    ]


def test_a_wild_strength_from_a_hand_edited_bundle_is_kept_in_range():
    from pathlib import Path

    from storage import CharacterView

    def mara(settings):
        return CharacterView(1, 0, "Mara", "", reference_path=Path("x.png"), reference_settings=settings)

    assert cast.follow_value(mara({"share_rate": 5}), REFERENCE_SHARED_ATTENTION) == 1.0
    assert cast.follow_value(mara({"ip_scale": -3}), REFERENCE_IP_ADAPTER) == 0.0
    assert cast.follow_value(mara({"share_rate": "lots"}), REFERENCE_SHARED_ATTENTION) == 0.5
    assert cast.follow_value(mara({"ip_scale": True}), REFERENCE_IP_ADAPTER) == 0.6
    assert cast.follow_value(mara(None), REFERENCE_IP_ADAPTER) == DEFAULT_IP_SCALE


@pytest.mark.parametrize(
    ("role", "note", "unset", "named"),
    [
        ("judge", actions.judge_note, "no judge model", "The judge model of the 'tiny' profile"),
        ("consistency", actions.likeness_note, "no model to measure", "The likeness model of the 'tiny' profile"),
        ("ranker", actions.scoring_note, "no scoring model", "The scoring model of the 'tiny' profile"),
    ],
)
def test_a_score_whose_model_is_unset_or_not_downloaded_says_which_and_what_to_do(
    role, note, unset, named, monkeypatch
):
    """The advice works: Settings' own download of the scoring models, or the fetch command with --extras (the
    command without it never fetches them); offline, what must change first. No tiny profile to switch to."""
    tiny = get_profile("tiny")
    assert note(tiny) is None
    without = dataclasses.replace(tiny, models={k: v for k, v in tiny.models.items() if k != role})
    assert unset in note(without)
    missing = dataclasses.replace(tiny, models={**tiny.models, role: "nobody/none"})
    monkeypatch.delenv("HF_HUB_OFFLINE")
    sentence = note(missing)
    assert sentence.startswith(f"{named} is not on this computer yet"), sentence
    assert "'python -m engine fetch --profile tiny --extras'" in sentence, sentence
    # The button beside the note, and Settings' own (tiny is the default profile here: STORYBOOK_PROFILE).
    assert f'with the "{actions.EXTRAS_BUTTON}" button (here or in Settings)' in sentence
    assert "offline mode" not in sentence
    assert "switch to the 'tiny' profile" not in sentence
    if role == "ranker":  # scoring keeps its own word on what happens meanwhile
        assert ", so pictures are drawn one per page, without scores:" in sentence
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline = note(missing)
    assert "started in offline mode" in offline and "--extras" in offline


def test_a_reference_picture_whose_ip_adapter_is_missing_says_what_to_do():
    from pathlib import Path

    from storage import CharacterView

    classic = get_profile("classic")
    missing = dataclasses.replace(classic, models={**classic.models, "ip_adapter": "nobody/none"})
    mara = CharacterView(1, 0, "Mara", "", reference_path=Path("x.png"), reference_settings={})
    sentence = cast.character_note(missing, mara)
    assert sentence.startswith("The reference-picture adapter (IP-Adapter) of the 'classic' profile is not on this")
    assert "so Mara's pages use the description" in sentence and "--profile classic --extras" in sentence
    # Settings download the default profile's models ('tiny' here), so the sentence says where this one's is.
    assert f"the \"{actions.EXTRAS_BUTTON}\" button (here, or in Settings when 'classic' is the default profile)" in (
        sentence
    )
