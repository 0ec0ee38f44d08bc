"""The "From images" page under AppTest, on the tiny profile: upload, reorder, write the story in one job,
write one passage again, edit one by hand, illustrate one anew, reload; and each error as one sentence."""

from __future__ import annotations

from pathlib import Path

import fixtures_images as fx
import pytest
from apptestkit import HOME, TIMEOUT, click, open_screen
from apptestkit import wait_for_jobs as wait_jobs
from PIL import Image
from streamlit.testing.v1 import AppTest
from widgetkit import shows_what_it_holds

from core.errors import InputError
from engine.jobs import get_worker
from storage import Library
from studio import actions, state, ui

RED, GREEN, BLUE = (220, 30, 30), (30, 200, 60), (40, 60, 220)
BROKEN = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x01" * 20  # a PNG cut short


def upload(name: str, color, fmt: str = "PNG", size=(80, 60)) -> tuple[str, bytes, str]:
    mime = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}[fmt]
    return name, fx.encode(Image.new("RGB", size, color), fmt), mime


@pytest.fixture(scope="module")
def lib(tiny_models) -> Library:
    return Library()


def from_images(project_id: int | None = None) -> AppTest:
    return open_screen("from_images", project_id)


def wait_for_jobs(project_id: int) -> None:
    wait_jobs(project_id, timeout=180, done=True)


def texts(elements) -> list[str]:
    """What each element says, without the backslashes that keep user text from becoming Markdown."""
    return [e.value.replace("\\", "") for e in elements]


def color_of(path: Path) -> tuple[int, int, int]:
    with Image.open(path) as image:
        return image.convert("RGB").getpixel((5, 5))


def near(a, b) -> bool:
    return all(abs(x - y) <= 12 for x, y in zip(a, b))  # JPEG and WebP are lossy


def test_a_fresh_session_shows_the_defaults_the_story_is_asked_with(lib):
    """The story's settings show on their own (from each widget's own default, as a browser draws it) the values
    the server holds, and the story is asked for with exactly those. Defaults put in Session State before the
    widgets showed could leave a number box at its minimum in the browser while the story was asked with more."""
    at = from_images()
    at.file_uploader[0].set_value([upload("red.png", RED)]).run()
    assert not at.exception, at.exception
    widgets = {
        "hints": at.text_area(key=state.IMAGES_HINTS),
        "tone": at.selectbox(key=state.IMAGES_TONE),
        "age": at.number_input(key=state.IMAGES_AGE),
        "words_per_picture": at.number_input(key=state.IMAGES_WORDS),
    }
    shown = {name: widget.value for name, widget in widgets.items()}
    assert shown == {"hints": "", "tone": "gentle", "age": 6, "words_per_picture": 50}
    for name, widget in widgets.items():
        assert shows_what_it_holds(widget), (name, widget.proto)
    assert widgets["age"].proto.default != widgets["age"].proto.min  # a box at its minimum would not tell

    click(at, "images.write")
    project = lib.get_project(at.session_state[state.PROJECT_ID])
    request = project.story_settings["request"]
    assert {name: request[name] for name in shown} == shown
    wait_for_jobs(project.id)


def test_pictures_to_story_retell_edit_illustrate_and_reload(lib):
    at = from_images()
    at.file_uploader[0].set_value(
        [
            upload("red.png", RED),
            ("broken.png", BROKEN, "image/png"),
            upload("green.jpg", GREEN, "JPEG"),
            upload("blue.webp", BLUE, "WEBP"),
        ]
    ).run()
    assert not at.exception, at.exception
    # The broken file is refused with its sentence; the other three are shown in upload order.
    assert texts(at.error) == ["'broken.png' looks like a PNG file but is damaged and cannot be read."]
    assert [i.captions[0] for i in at.image] == ["1. red.png", "2. green.jpg", "3. blue.webp"]

    click(at, "images.later.0")  # red moves after green
    assert [i.captions[0] for i in at.image] == ["1. green.jpg", "2. red.png", "3. blue.webp"]
    click(at, "images.earlier.2")  # blue moves before red
    assert [i.captions[0] for i in at.image] == ["1. green.jpg", "2. blue.webp", "3. red.png"]

    at.text_area(key=state.IMAGES_HINTS).input("Our dog Pip at the seaside")
    at.selectbox(key=state.IMAGES_TONE).set_value("funny")
    at.number_input(key=state.IMAGES_AGE).set_value(5)
    at.number_input(key=state.IMAGES_WORDS).set_value(12)  # short passages keep the tiny model quick
    click(at, "images.write")
    pid = at.session_state[state.PROJECT_ID]
    assert at.query_params["project"] == str(pid)
    assert any("Left out" in w and "broken" in w for w in texts(at.warning)), texts(at.warning)

    # The pictures are saved before a word is written: source pictures and the pages' own pictures, in order.
    project = lib.get_project(pid)
    assert [near(color_of(s.image_path), c) for s, c in zip(project.source_images, (GREEN, BLUE, RED))] == [True] * 3
    assert len(project.pages) == 3
    for seg, color in zip(project.pages, (GREEN, BLUE, RED)):
        assert [i.origin for i in seg.pictures] == ["uploaded"]
        assert near(color_of(seg.selected.image_path), color)
    assert project.story_settings["request"] == {
        "hints": "Our dog Pip at the seaside",
        "tone": "funny",
        "age": 5,
        "words_per_picture": 12,
        "temperature": 0.8,
        "seed": project.story_settings["request"]["seed"],
    }

    wait_for_jobs(pid)
    at.run()
    assert not at.exception, at.exception
    assert any("the story is written" in s for s in texts(at.success)), texts(at.success)
    project = lib.get_project(pid)
    settings = project.story_settings
    passages = [s.text for s in project.pages]
    assert all(p and not p.startswith("(The words for picture") for p in passages)
    assert project.title != "A story from 3 pictures" and project.title == settings["title"]
    story = settings["story"]
    assert story["tone"] == "funny" and story["age"] == 5 and story["hints"] == "Our dog Pip at the seaside"
    assert story["model"] == "tiny:storyteller" and len(story["passage_seeds"]) == 3
    assert settings["seed"] == settings["request"]["seed"] == story["seed"]
    assert story["captions"] == [s.caption for s in project.source_images] and all(story["captions"])
    assert project.story_text == "\n\n".join(passages)
    # Each picture beside its passage, with what the picture reader saw, and the story's numbers.
    shown = [m.value for m in at.markdown]  # exactly as typed: Markdown characters arrive escaped
    assert all(ui.plain(passage) in shown for passage in passages)
    assert sum("The picture reader saw" in c for c in texts(at.caption)) == 3
    assert [m.label for m in at.metric] == ["Pictures covered", "Word variety", "Repeated phrases", "Reading grade"]
    assert any("Flesch-Kincaid" in c for c in texts(at.caption))
    assert len(at.image) == 3

    # Write picture 2's passage again: only that page's words change.
    first, second, third = project.pages
    click(at, f"retell.{second.id}")
    wait_for_jobs(pid)
    at.run()
    after = lib.get_project(pid)
    assert [s.id for s in after.pages] == [first.id, second.id, third.id]
    assert after.pages[0].text == first.text and after.pages[2].text == third.text
    assert after.pages[1].text != second.text
    assert after.story_settings["story"]["retold"] == {"1": 1}
    assert after.story_text == "\n\n".join(s.text for s in after.pages)
    # The job's own writes do not make this tab stale (the tiny model's nonsense may read too hard: that is all).
    assert all("school grade" in w for w in texts(at.warning)), texts(at.warning)

    # Edit picture 3's passage by hand.
    box = next(t for t in at.text_area if t.key.startswith(f"w.passage.{third.id}."))
    box.input("Pip found a crab and ran home to tell Grandma.")
    click(at, f"passage.save.{third.id}")
    assert not at.error, texts(at.error)
    after = lib.get_project(pid)
    assert after.pages[2].text == "Pip found a crab and ran home to tell Grandma."
    assert after.story_text.endswith("Pip found a crab and ran home to tell Grandma.")

    # Illustrate picture 1 anew: the upload stays as version 1.
    click(at, f"illustrate.{first.id}")
    wait_for_jobs(pid)
    at.run()
    drawn = lib.get_project(pid).pages[0]
    assert [i.origin for i in drawn.pictures] == ["uploaded", "generated"]
    assert drawn.selected.origin == "generated"

    # A refresh: a new session finds everything in storage.
    final = lib.get_project(pid)
    again = from_images(pid)
    assert [h.value for h in again.header] == [ui.plain(final.title)]
    assert len(again.image) == 3 and len(again.metric) == 4
    assert any("Pip found a crab" in m for m in texts(again.markdown))
    assert not again.error and all("school grade" in w for w in texts(again.warning))

    # Reproducible: the same seed and captions write the very same story again (edits and retellings undone).
    click(again, "images.again.same")
    wait_for_jobs(pid)
    again.run()
    rewritten = lib.get_project(pid)
    assert [s.text for s in rewritten.pages] == passages
    assert rewritten.story_settings["story"]["passage_seeds"] == story["passage_seeds"]
    assert rewritten.title == project.title

    # Another tab renames the book: this tab's hand edit is refused with one sentence and nothing is lost.
    lib.update_project(pid, rewritten.version, title="Renamed elsewhere")
    last = rewritten.pages[2]
    next(t for t in again.text_area if t.key.startswith(f"w.passage.{last.id}.")).input("Mine.")
    click(again, f"passage.save.{last.id}")
    assert any("changed in another tab" in e for e in texts(again.error)), texts(again.error)
    assert lib.get_project(pid).pages[2].text == last.text


def test_errors_are_one_sentence_each(lib, monkeypatch):
    at = from_images()
    click(at, "images.write")
    assert texts(at.error) == ["Add at least one picture (PNG, JPEG or WebP) to tell a story from."]

    at.file_uploader[0].set_value([("broken.png", BROKEN, "image/png")]).run()
    click(at, "images.write")
    assert len(at.error) == 2 and "None of the pictures can be used" in texts(at.error)[1]

    at.file_uploader[0].set_value([upload(f"p{n}.png", (n * 18, 90, 90), size=(16, 16)) for n in range(13)]).run()
    assert any("at most 12 pictures" in e for e in texts(at.error))
    too_many = "A story can be told from at most 12 pictures and there are 13: leave 1 out."
    assert at.button(key="images.write").disabled and at.button(key="images.write").help == too_many
    assert [e for e in texts(at.error) if "at most 12 pictures" in e] == [too_many]  # said once, beside the list
    click(at, "images.leave.12")  # leaving one out is enough
    assert not any("at most 12 pictures" in e for e in texts(at.error)) and len(at.image) == 12

    before = {p.id for p in lib.list_projects()}
    from engine.profiles import PROFILES, is_downloaded

    if not is_downloaded(PROFILES["fast"].model("captioner")):
        monkeypatch.setenv("STORYBOOK_PROFILE", "fast")
        at.file_uploader[0].set_value([upload("one.png", RED)]).run()
        click(at, "images.write")
        assert len(at.error) == 1 and "python -m engine fetch --profile fast" in at.error[0].value
    else:
        pytest.skip("the 'fast' models are downloaded on this machine")
    assert {p.id for p in lib.list_projects()} == before  # nothing half-made was kept
    assert state.PROJECT_ID not in at.session_state or at.session_state[state.PROJECT_ID] is None


def test_retell_and_rewrite_explain_what_they_cannot_do(lib):
    # A story typed in the storyboard has no pictures to tell from.
    typed = actions.create_project(lib, story_text="One. Two.")
    typed = actions.split_story(lib, typed.id, typed.version, "One. Two.").project
    from engine.errors import InputError

    with pytest.raises(InputError, match="not been written from pictures"):
        actions.retell_passage(lib, typed.id, typed.pages[0].id, typed.version)
    with pytest.raises(InputError, match="not told from pictures"):
        actions.write_story_again(lib, typed.id, typed.version)
    with pytest.raises(InputError, match="cannot be empty"):
        actions.edit_passage(lib, typed.id, typed.pages[0].id, typed.version, "   ")


def test_a_story_job_saves_each_passage_as_it_comes_and_leaves_open_tabs_current(lib, monkeypatch):
    import threading

    from storage import UNSET

    saves: list[dict] = []
    real_save = Library.save_job_output

    def spy(self, project_id, **kwargs):
        # On the saver thread: note what each save carries and what storage held just before it.
        before = self.get_project(project_id)
        saves.append(
            {
                "what": sorted(k for k, v in kwargs.items() if v is not None and v is not UNSET),
                "passages": dict(kwargs.get("passages") or {}),
                "texts_before": [s.text for s in before.pages],
                "writing": actions.writing_page_ids(project_id),
            }
        )
        return real_save(self, project_id, **kwargs)

    monkeypatch.setattr(Library, "save_job_output", spy)
    gate = threading.Event()
    blocker = get_worker().submit(lambda ctx: gate.wait(30), kind="test", label="hold the worker")
    try:
        start = actions.start_story_from_images(
            lib,
            [(fx.encode(Image.new("RGB", (40, 30), c), "PNG"), f"{n}.png") for n, c in enumerate((RED, GREEN, BLUE))],
            words_per_picture=12,
        )
        pid = start.project.id
        # A tab opens the storyboard before a word is written.
        tab = AppTest.from_file(HOME, default_timeout=TIMEOUT)
        tab.query_params["project"] = str(pid)
        tab.run()
        tab.switch_page("screens/storyboard.py").run()
        assert not tab.exception and not tab.warning, [w.value for w in tab.warning]
    finally:
        gate.set()
    get_worker().wait(blocker, timeout=30)
    wait_for_jobs(pid)

    project = lib.get_project(pid)
    ids = [s.id for s in project.pages]
    passages = [s.text for s in project.pages]
    assert project.version == start.project.version  # the job's writes left the version alone
    assert project.story_text == "\n\n".join(passages) and project.story_settings["story"]
    # Captions first, then one save per passage, in order, each landing while the next is still to come.
    assert [s["what"] for s in saves] == [
        ["captions"],
        ["passages", "replacing"],  # each passage names the words it replaces: a person's edit meanwhile wins
        ["passages", "replacing"],
        ["passages", "replacing"],
        ["based_on", "story_settings", "title"],
    ]
    assert [s["passages"] for s in saves[1:4]] == [{i: p} for i, p in zip(ids, passages)]
    placeholder = [actions.PLACEHOLDER_PASSAGE.format(n=n) for n in (1, 2, 3)]
    assert saves[1]["texts_before"] == placeholder
    assert saves[2]["texts_before"] == [passages[0], *placeholder[1:]]
    assert saves[3]["texts_before"] == [*passages[:2], placeholder[2]]
    assert [s["writing"] for s in saves[1:4]] == [set(ids), set(ids[1:]), set(ids[2:])]

    # The tab that opened before the story was written is not stale: it saves an edit.
    tab.run()
    assert not any("another tab" in w for w in texts(tab.warning)), texts(tab.warning)
    next(t for t in tab.text_input if t.label == "Author").input("Pip's family")
    tab.run()
    assert any("Saved the author" in s for s in texts(tab.success)), texts(tab.error)
    assert lib.get_project(pid).author == "Pip's family"
    # Another person's edit still makes it stale.
    lib.update_project(pid, lib.get_project(pid).version, author="Someone else")
    next(t for t in tab.text_input if t.label == "Author").input("Mine")
    tab.run()
    assert any("changed in another tab" in e for e in texts(tab.error)), texts(tab.error)
    assert lib.get_project(pid).author == "Someone else"


def test_the_sidebar_shows_story_jobs_beside_picture_jobs():
    import threading

    gate = threading.Event()

    def hold(ctx):
        ctx.progress(1, 4, message="Writing the story… 1 of 4 passages written")
        gate.wait(30)

    story = get_worker().submit(
        hold, kind=actions.KIND_STORY, label="Story for 4 pictures (“Sidebar test”)", total=4, meta={"project_id": -1}
    )
    picture = get_worker().submit(
        lambda ctx: None,
        kind=actions.KIND_ILLUSTRATE,
        label="2 pictures for “Sidebar test”",
        total=2,
        meta={"project_id": -1},
    )
    try:
        at = AppTest.from_file(HOME, default_timeout=TIMEOUT).run()
        assert not at.exception, at.exception
        bars = [p.proto.text.replace("\\", "") for p in at.sidebar.get("progress")]
        assert any("Writing" in b and "Story for 4 pictures" in b and "1 of 4 passages" in b for b in bars), bars
        assert any("Drawing" in b and "2 pictures for" in b and "Waiting" in b for b in bars), bars
    finally:
        gate.set()
        get_worker().wait(story, timeout=30)
        get_worker().wait(picture, timeout=30)


def test_a_reading_grade_below_one_is_shown_as_words():
    from engine.metrics import flesch_kincaid_grade

    very_simple = flesch_kincaid_grade("The cat sat. The cat sat on the mat.")
    assert very_simple < 0 and ui.reading_grade(very_simple) == "below 1"
    assert ui.reading_grade(1.0) == "1.0" and ui.reading_grade(7.64) == "7.6"


def test_a_picture_can_be_left_out_of_the_story_and_put_back(lib, monkeypatch):
    started = []

    def start(_lib, pictures, **_settings):  # what the page hands over; no story is started
        started.append(pictures)
        raise InputError("Not this time.")

    monkeypatch.setattr(actions, "start_story_from_images", start)
    at = from_images()
    at.file_uploader[0].set_value([upload("red.png", RED), upload("green.png", GREEN), upload("blue.png", BLUE)]).run()
    click(at, "images.leave.1")  # green is left out: still uploaded, not in the story
    assert [i.captions[0] for i in at.image] == ["1. red.png", "2. blue.png"]
    assert any("Left out of the story: 1 picture" in c for c in texts(at.caption))
    click(at, "images.write")
    assert [name for _, name in started[-1]] == ["red.png", "blue.png"]

    click(at, "images.putback." + at.session_state[state.IMAGES_LEFT_OUT][0])  # back, at the end of the story
    assert [i.captions[0] for i in at.image] == ["1. red.png", "2. blue.png", "3. green.png"]
    assert not any("Left out" in c for c in texts(at.caption))

    for _ in range(3):
        click(at, "images.leave.0")
    assert not at.image and any("3 pictures" in c for c in texts(at.caption))
    click(at, "images.write")
    assert texts(at.error) == ["Every picture is left out of the story: put one back to tell a story from it."]
    assert len(started) == 1


def test_every_refused_file_is_listed_with_its_reason_in_one_place(lib):
    at = from_images()
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'
    at.file_uploader[0].set_value(
        [upload("red.png", RED), ("drawing.svg", svg, "image/svg+xml"), ("notes.txt", b"hello", "text/plain")]
    ).run()
    assert not at.exception, at.exception
    errors = texts(at.error)
    assert len(errors) == 2 and "'drawing.svg' is an SVG file" in errors[0] and "'notes.txt' holds text" in errors[1]
    assert any("Not in the story: 2 files" in m for m in texts(at.markdown)), texts(at.markdown)
    assert any("1 picture of 3 files can be used; 2 cannot" in c for c in texts(at.caption)), texts(at.caption)
    click(at, "images.leave.0")  # a picture left out by hand joins the same list
    assert any("Not in the story: 3 files" in m for m in texts(at.markdown)), texts(at.markdown)


def test_a_story_too_hard_for_its_reader_is_flagged_with_a_simpler_rewrite(lib, monkeypatch):
    from studio.actions import told

    assert told.grade_too_hard(9.1, 6) and not told.grade_too_hard(2.5, 6) and not told.grade_too_hard(None, 6)
    assert told.expected_grade(6) == 1 and told.expected_grade(4) == 0

    start = actions.start_story_from_images(
        lib,
        [(fx.encode(Image.new("RGB", (40, 30), c), "PNG"), f"{n}.png") for n, c in enumerate((RED, GREEN))],
        words_per_picture=12,
        age=6,
    )
    pid = start.project.id
    wait_for_jobs(pid)
    project = lib.get_project(pid)
    hard = (
        "Notwithstanding considerable meteorological unpredictability, the extraordinarily adventurous "
        "photographer systematically investigated innumerable geological formations."
    )
    for page in project.pages:
        project = actions.edit_passage(lib, pid, page.id, project.version, hard)
    seed_before = project.story_settings["request"]["seed"]
    at = from_images(pid)
    warned = [w for w in texts(at.warning) if "hard for a 6-year-old reader" in w]
    assert warned and "school grade" in warned[0], texts(at.warning)
    click(at, "images.simpler")
    assert any("simpler words" in i for i in texts(at.info)), texts(at.info)
    request = lib.get_project(pid).story_settings["request"]
    assert told.SIMPLER_HINT in request["hints"] and request["seed"] != seed_before
    wait_for_jobs(pid)
    assert all(p.text != hard for p in lib.get_project(pid).pages)  # written again, through the usual job


def _edit_in_another_process(page_id: int, version: int, text: str) -> None:
    """Another process on the same library (a second studio, the command line) saves a page's words."""
    import os
    import subprocess
    import sys

    code = (
        "import sys; from storage import Library; "
        "Library().update_page(int(sys.argv[1]), int(sys.argv[2]), text=sys.argv[3])"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(HOME).resolve().parents[1])}
    args = [sys.executable, "-c", code, str(page_id), str(version), text]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def _start_then_edit(lib: Library, start, edit) -> int:
    """start() a job while the worker is busy, edit(project) in another process, then let the job run to its end."""
    import threading

    gate = threading.Event()
    blocker = get_worker().submit(lambda ctx: gate.wait(60), kind="test", label="hold the worker")
    try:
        pid = start().project.id
        edit(lib.get_project(pid))
    finally:
        gate.set()
        get_worker().wait(blocker, timeout=60)
    wait_for_jobs(pid)
    return pid


def test_words_edited_in_another_process_while_a_job_writes_are_kept(lib):
    """The story job and 'write this passage again' write a page's words only over the words they replace: a
    person's edit saved meanwhile, in another process, is kept (issue 14 item 8)."""
    pictures = [(fx.encode(Image.new("RGB", (40, 30), c), "PNG"), f"{n}.png") for n, c in enumerate((RED, GREEN, BLUE))]
    pid = _start_then_edit(
        lib,
        lambda: actions.start_story_from_images(lib, pictures, words_per_picture=12),
        lambda p: _edit_in_another_process(p.pages[1].id, p.version, "Pip's own words."),
    )
    project = lib.get_project(pid)
    told = [s.text for s in project.pages]
    assert told[1] == "Pip's own words."
    assert all(t and not t.startswith("(The words for picture") for t in told), told
    assert project.story_text == "\n\n".join(told)

    # Write picture 3's passage again while another process edits it: the edit stays.
    third = project.pages[2]
    _start_then_edit(
        lib,
        lambda: actions.retell_passage(lib, pid, third.id, project.version),
        lambda p: _edit_in_another_process(third.id, p.version, "Pip went home."),
    )
    after = lib.get_project(pid)
    assert [s.text for s in after.pages] == [told[0], "Pip's own words.", "Pip went home."]
    assert after.story_text == "\n\n".join(s.text for s in after.pages)
