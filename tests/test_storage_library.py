"""Library operations: listing and search, story re-splitting, page edits, picture versions."""

from __future__ import annotations

import dataclasses
import io
import time

import pytest
from PIL import Image

from storage.errors import ConflictError, InvalidInput, NotFound
from storage.library import UNSET, Library
from storage.views import PageInput, ProjectView


def _png(n: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (n % 256, 1, 2)).save(buffer, "PNG")
    return buffer.getvalue()


def _inputs(story: str, pages: list[str], **extra) -> list[PageInput]:
    out, at = [], 0
    for page in pages:
        start = story.index(page, at)
        out.append(PageInput(page, start, start + len(page), **extra))
        at = start + len(page)
    return out


def _story(library: Library, pages: list[str], title: str = "Fox") -> ProjectView:
    story = " ".join(pages)
    project = library.create_project(title, story_text=story)
    return library.save_story(project.id, project.version, story, _inputs(story, pages))


def test_views_are_frozen_snapshots(tmp_path):
    library = Library(tmp_path)
    project = _story(library, ["One."])
    with pytest.raises(dataclasses.FrozenInstanceError):
        project.title = "changed"  # type: ignore[misc]
    ill = library.add_picture(project.pages[0].id, _png(1), {"seed": 1})
    ill.settings["seed"] = 99
    assert library.get_project(project.id).pages[0].selected.settings == {"seed": 1}
    assert project.created.tzinfo is not None and project.updated.utcoffset().total_seconds() == 0


def test_list_projects_newest_first_with_search_counts_and_covers(tmp_path):
    library = Library(tmp_path)
    fox = _story(library, ["The fox ran.", "It was FAST."], "Fox story")
    owl = _story(library, ["An owl sat still."], "Owl")
    empty = library.create_project("Empty one")
    cover = library.add_picture(fox.pages[0].id, _png(1), {})
    library.add_picture(fox.pages[1].id, _png(2), {})

    listing = library.list_projects()
    assert [p.id for p in listing] == [fox.id, empty.id, owl.id]  # fox got a picture last
    by_id = {p.id: p for p in listing}
    assert by_id[fox.id].page_count == 2 and by_id[fox.id].cover_image == cover.image_path
    assert by_id[owl.id].cover_image is None and by_id[empty.id].page_count == 0
    time.sleep(0.01)
    library.rename_project(owl.id, "Owl at night", library.get_project(owl.id).version)
    assert library.list_projects()[0].id == owl.id

    assert [p.id for p in library.list_projects("fast")] == [fox.id]  # page text, any case
    assert [p.id for p in library.list_projects("OWL")] == [owl.id]  # title
    assert [p.id for p in library.list_projects("  sat still ")] == [owl.id]
    assert library.list_projects("%") == [] and library.list_projects("_") == []  # no LIKE wildcards
    assert len(library.list_projects("")) == 3
    project = library.get_project(empty.id)
    library.save_story(empty.id, project.version, "Only in the story text, zebra.", [])
    assert [p.id for p in library.list_projects("ZEBRA")] == [empty.id]


def test_save_story_keeps_pictures_of_pages_whose_text_survives(tmp_path):
    library = Library(tmp_path)
    project = _story(library, ["One fish.", "Two fish.", "Red fish."])
    one, two, red = project.pages
    project = library.update_page(two.id, project.version, seed=42, prompt_override="two fish", locked=True)
    pic = library.add_picture(two.id, _png(1), {"seed": 42})
    library.add_picture(red.id, _png(2), {})
    project = library.get_project(project.id)

    story = "Zero fish. Two  fish. Blue fish. One fish."
    pages = ["Zero fish.", "Two  fish.", "Blue fish.", "One fish."]  # whitespace differs in page two
    project = library.save_story(project.id, project.version, story, _inputs(story, pages))
    texts = [s.text for s in project.pages]
    assert texts == pages and [s.position for s in project.pages] == [0, 1, 2, 3]
    kept_two = project.pages[1]
    assert kept_two.id == two.id and kept_two.seed == 42 and kept_two.locked and kept_two.prompt_override == "two fish"
    assert [i.id for i in kept_two.pictures] == [pic.id] and kept_two.selected.id == pic.id
    assert project.pages[3].id == one.id and project.pages[3].start == story.index("One fish.")
    assert project.pages[0].pictures == [] and project.pages[0].seed is None
    late = library.add_picture(red.id, _png(3), {})  # "Red fish." left the story: a job's late picture is kept
    assert [p.id for p in library.get_project(project.id).loose[0].pictures][-1] == late.id

    with pytest.raises(InvalidInput, match="not the story text"):
        library.save_story(project.id, project.version, story, [PageInput("Zero", 5, 2)])
    with pytest.raises(InvalidInput, match="empty"):
        library.save_story(project.id, project.version, story, [PageInput("  ", 0, 2)])
    with pytest.raises(InvalidInput, match="between"):
        library.save_story(project.id, project.version, story, [PageInput("x", 0, len(story) + 1)])


def test_update_segment_none_clears_and_missing_keeps(tmp_path):
    library = Library(tmp_path)
    project = _story(library, ["One."])
    seg = project.pages[0]
    project = library.update_page(seg.id, project.version, prompt_override="p", negative_prompt="n", seed=7)
    project = library.update_page(seg.id, project.version, prompt_override=None)
    seg_view = project.pages[0]
    assert (seg_view.prompt_override, seg_view.negative_prompt, seg_view.seed) == (None, "n", 7)
    project = library.update_page(seg.id, project.version, seed=None, locked=True, text="Uno.")
    seg_view = project.pages[0]
    assert (seg_view.seed, seg_view.locked, seg_view.text, seg_view.negative_prompt) == (None, True, "Uno.", "n")
    assert repr(UNSET) == "UNSET"
    with pytest.raises(InvalidInput):
        library.update_page(seg.id, project.version, text=None)
    with pytest.raises(InvalidInput):
        library.update_page(seg.id, project.version, seed=-1)
    with pytest.raises(InvalidInput):
        library.update_page(seg.id, project.version, seed=True)
    with pytest.raises(NotFound):
        library.update_page(99999, project.version, seed=1)


def test_merge_and_split(tmp_path):
    library = Library(tmp_path)
    project = _story(library, ["One fish.", "Two fish.", "Red fish."])
    one, two, _red = project.pages
    a1 = library.add_picture(one.id, _png(1), {})
    b1 = library.add_picture(two.id, _png(2), {})
    b2 = library.add_picture(two.id, _png(3), {})
    project = library.get_project(project.id)

    project = library.merge_pages(one.id, project.version)
    merged = project.pages[0]
    assert [s.text for s in project.pages] == ["One fish. Two fish.", "Red fish."]
    assert (merged.id, merged.start, merged.end) == (one.id, 0, len("One fish. Two fish."))
    assert project.pages[1].position == 1
    # The first page's pictures and choice stay; the second page's are kept as further versions.
    assert [i.version for i in merged.pictures] == [1, 2, 3]
    assert merged.selected.id == a1.id
    assert {i.id for i in merged.pictures} == {a1.id, b1.id, b2.id}
    with pytest.raises(InvalidInput, match="last page"):
        library.merge_pages(project.pages[1].id, project.version)

    project = library.split_page(merged.id, len("One fish."), project.version)
    assert [s.text for s in project.pages] == ["One fish.", "Two fish.", "Red fish."]
    first, second, third = project.pages
    # Each picture goes back with the words it was drawn for; the second part chooses its newest.
    assert first.id == one.id and [i.id for i in first.pictures] == [a1.id] and first.selected.id == a1.id
    assert second.id not in (one.id, two.id)
    assert [(i.id, i.version) for i in second.pictures] == [(b1.id, 1), (b2.id, 2)] and second.selected.id == b2.id
    story = project.story_text
    for seg in project.pages:
        assert story[seg.start : seg.end] == seg.text
    assert [s.position for s in project.pages] == [0, 1, 2]
    with pytest.raises(InvalidInput, match="between 1 and 8"):
        library.split_page(third.id, 0, project.version)
    project = library.update_page(third.id, project.version, text="Red   fish.")
    assert project.story_text.endswith("Red   fish.")  # the page's words are the story's words


def test_picture_versions_select_delete(tmp_path):
    library = Library(tmp_path)
    project = _story(library, ["One.", "Two."])
    seg = project.pages[0].id
    v1 = library.add_picture(seg, _png(1), {"seed": 1})
    v2 = library.add_picture(seg, _png(2), {"seed": 2})
    v3 = library.add_picture(seg, _png(3), {"seed": 3}, select=False)
    assert (v1.version, v2.version, v3.version) == (1, 2, 3)
    assert library.get_project(project.id).pages[0].selected.id == v2.id

    def selected() -> list[int]:
        return [i.id for i in library.get_project(project.id).pages[0].pictures if i.selected]

    library.select_picture(v1.id)
    assert selected() == [v1.id]  # back to an older version
    version = library.select_picture(v3.id).version
    assert selected() == [v3.id]
    project = library.discard_picture(v3.id, version)  # the chosen one: the newest remaining becomes chosen
    assert selected() == [v2.id] and [p.id for p in project.bin.pictures] == [v3.id]
    project = library.discard_picture(v1.id, project.version)
    assert selected() == [v2.id]
    v4 = library.add_picture(seg, _png(4), {}, select=False)
    assert v4.version == 4 and selected() == [v2.id]  # version numbers are never given twice
    project = library.restore_picture(v1.id, library.get_project(project.id).version)
    assert [p.id for p in project.bin.pictures] == [v3.id] and selected() == [v2.id]
    with pytest.raises(InvalidInput, match="not in the bin"):
        library.restore_picture(v1.id, project.version)
    for picture in (v1, v2, v4):
        library.discard_picture(picture.id, library.get_project(project.id).version)
    assert library.get_project(project.id).pages[0].pictures == []
    first = library.add_picture(seg, _png(5), {}, select=False)
    assert first.selected  # a page's only picture is always the chosen one

    other = library.add_picture(project.pages[1].id, _png(6), {})
    with pytest.raises(NotFound):
        library.select_picture(123456)
    version = library.get_project(project.id).version
    library.select_picture(other.id, expected_version=version)  # optional check, bumps the version
    assert library.get_project(project.id).version == version + 1


def test_characters_and_source_images(tmp_path):
    library = Library(tmp_path)
    project = library.create_project("From pictures", profile="tiny")
    project = library.set_characters(project.id, project.version, [("Fox", "red"), ("Owl", "wise")])
    assert [(c.position, c.name, c.description) for c in project.characters] == [(0, "Fox", "red"), (1, "Owl", "wise")]
    project = library.set_characters(project.id, project.version, [("Hare", "")])
    assert [c.name for c in project.characters] == ["Hare"]
    with pytest.raises(InvalidInput):
        library.set_characters(project.id, project.version, [("", "nameless")])

    project = library.set_source_images(project.id, project.version, [(_png(1), "beach"), (_png(2), "cave")])
    assert [s.caption for s in project.source_images] == ["beach", "cave"]
    first_file = project.source_images[0].image_path
    project = library.update_source_caption(project.source_images[1].id, "a dark cave", project.version)
    assert project.source_images[1].caption == "a dark cave"
    project = library.set_source_images(project.id, project.version, [(_png(2), "cave only")])
    assert not first_file.exists() and project.source_images[0].image_path.exists()
    with pytest.raises(InvalidInput, match="Picture 1"):
        library.set_source_images(project.id, project.version, [(b"nope", "x")])


def test_update_project_and_not_found(tmp_path):
    library = Library(tmp_path)
    project = library.create_project("  Spaced title  ", author="A")
    assert project.title == "Spaced title" and project.version == 1
    updated = library.update_project(project.id, 1, style="ink", profile="quality")
    assert (updated.title, updated.author, updated.style, updated.profile, updated.version) == (
        "Spaced title",
        "A",
        "ink",
        "quality",
        2,
    )
    assert updated.updated >= project.updated and updated.created == project.created
    with pytest.raises(NotFound):
        library.get_project(4242)
    with pytest.raises(InvalidInput):
        library.get_project("1")  # type: ignore[arg-type]
    for beyond_sqlite in (2**63, -(2**63) - 1, 10**30):  # sqlite3 would raise OverflowError
        with pytest.raises(NotFound):
            library.get_project(beyond_sqlite)
        with pytest.raises(NotFound):
            library.update_page(beyond_sqlite, 1, seed=1)
        with pytest.raises(NotFound):
            library.select_picture(beyond_sqlite)
        with pytest.raises(NotFound):
            library.update_source_caption(beyond_sqlite, "x", 1)
    with pytest.raises(InvalidInput):
        library.update_project(project.id, "2", title="x")  # type: ignore[arg-type]
    library.delete_project(project.id)
    with pytest.raises(NotFound):
        library.delete_project(project.id)


def test_story_text_changes_only_with_its_pages(tmp_path):
    library = Library(tmp_path)
    project = _story(library, ["The fox ran far away.", "The owl sat."])
    first, _second = project.pages
    library.add_picture(first.id, _png(1), {"seed": 1})
    project = library.update_page(first.id, project.version, prompt_override="a fox", seed=5, locked=True)

    # Once a story has pages, its words change only with them: the story and its pages never disagree.
    with pytest.raises(InvalidInput, match="save its words with them"):
        library.update_project(project.id, project.version, story_text="The fox ran.")
    assert library.get_project(project.id) == project
    draft = library.create_project("Draft")  # a story with no pages yet keeps any draft
    saved = library.update_project(draft.id, draft.version, story_text="Once upon a time")
    assert saved.story_text == "Once upon a time" and saved.pages == []
    assert library.import_bundle(library.export_bundle(draft.id)).story_text == "Once upon a time"

    with pytest.raises(InvalidInput):
        library.update_project(draft.id, saved.version, story_text="\x00")
    from storage.errors import ConflictError

    with pytest.raises(ConflictError):
        library.update_project(draft.id, draft.version, story_text="stale")


def test_job_output_does_not_make_an_open_tab_stale(tmp_path):
    library = Library(tmp_path)
    project = _story(library, ["(words to come 1)", "(words to come 2)"])
    project = library.set_source_images(project.id, project.version, [(_png(1), ""), (_png(2), "")])
    first, second = project.pages
    tab = project.version  # what an open tab's edits are based on

    out = library.save_job_output(project.id, captions={s.id: f"picture {s.position}" for s in project.source_images})
    out = library.save_job_output(project.id, passages={first.id: "A fox ran."})
    out = library.save_job_output(project.id, passages={second.id: "An owl sat."})
    assert out.version == tab and out.updated > project.updated
    assert [s.caption for s in out.source_images] == ["picture 0", "picture 1"]
    assert out.story_text == "A fox ran.\n\nAn owl sat."
    assert [(s.start, s.end) for s in out.pages] == [(0, 10), (12, 23)]
    out = library.save_job_output(project.id, based_on=tab, title="Fox and Owl", story_settings={"seed": 3})
    assert (out.title, out.story_settings, out.version) == ("Fox and Owl", {"seed": 3}, tab)

    # The tab saves an edit; a job's read-change-write based on the old version must read again.
    edited = library.update_project(project.id, tab, author="Ann")
    from storage.errors import ConflictError

    with pytest.raises(ConflictError):
        library.save_job_output(project.id, based_on=tab, story_settings={"seed": 4})
    # Two people still conflict: a second tab based on the same version is refused.
    with pytest.raises(ConflictError):
        library.update_project(project.id, tab, author="Bob")
    assert library.get_project(project.id).author == "Ann"
    with pytest.raises(NotFound):
        library.save_job_output(project.id, passages={second.id + 1000: "Gone."})
    with pytest.raises(InvalidInput):
        library.save_job_output(project.id, passages={first.id: "  "})
    assert library.get_project(project.id).version == edited.version


def test_project_stamp_tells_an_open_tab_what_changed(tmp_path):
    library = Library(tmp_path)
    project = _story(library, ["A fox ran.", "An owl sat."])
    stamp = library.project_stamp(project.id)
    assert stamp == (project.version, project.updated)

    # A job's picture changes only ``updated``; a person's edit changes both.
    library.add_picture(project.pages[0].id, _png(3), {"seed": 1})
    after_picture = library.project_stamp(project.id)
    assert after_picture[0] == stamp[0] and after_picture[1] > stamp[1]
    edited = library.update_project(project.id, project.version, author="Ann")
    after_edit = library.project_stamp(project.id)
    assert after_edit == (edited.version, edited.updated) and after_edit[0] > stamp[0]

    library.delete_project(project.id)
    with pytest.raises(NotFound):
        library.project_stamp(project.id)
    for bad in ("1", True, 2**80):
        with pytest.raises((InvalidInput, NotFound)):
            library.project_stamp(bad)


def test_library_stamp_changes_when_any_story_is_made_changed_or_deleted(tmp_path):
    library = Library(tmp_path)
    assert library.library_stamp() == (0, None, None)
    fox = _story(library, ["A fox ran."])
    owl = _story(library, ["An owl sat."], title="Owl")
    stamps = [library.library_stamp()]
    assert stamps[0][:2] == (2, owl.id)
    library.add_picture(fox.pages[0].id, _png(4), {"seed": 2})  # a picture for an older story
    stamps.append(library.library_stamp())
    library.update_project(owl.id, owl.version, title="Owl at night")
    stamps.append(library.library_stamp())
    library.delete_project(owl.id)
    stamps.append(library.library_stamp())
    assert stamps[-1][0] == 1
    hare = _story(library, ["A hare hid."], title="Hare")  # one made and one deleted: the same count
    library.delete_project(fox.id)
    stamps.append(library.library_stamp())
    assert stamps[-1][:2] == (1, hare.id)
    assert len(set(stamps)) == len(stamps), stamps


def test_setting_is_saved_trimmed_limited_and_copied(tmp_path):
    from storage.validate import MAX_SETTING

    library = Library(tmp_path)
    project = _story(library, ["A fox ran."])
    assert project.setting == ""
    project = library.update_project(project.id, project.version, setting="  a windy\tisland,\n long ago ")
    assert project.setting == "a windy island, long ago"
    assert library.update_project(project.id, project.version, title="Fox").setting == project.setting  # kept
    with pytest.raises(InvalidInput, match="Where and when"):
        library.update_project(project.id, project.version + 1, setting="x" * (MAX_SETTING + 1))
    copy = library.duplicate_project(project.id)
    assert copy.setting == "a windy island, long ago"
    project = library.update_project(project.id, project.version + 1, setting="")
    assert project.setting == ""


def test_dedication_keeps_its_lines_and_is_limited_and_copied(tmp_path):
    from storage.validate import MAX_DEDICATION

    library = Library(tmp_path)
    project = _story(library, ["A fox ran."])
    project = library.update_project(project.id, project.version, dedication="\n For  Mia,\r\n who loves\tthe sea \n\n")
    assert project.dedication == "For Mia,\nwho loves the sea"
    with pytest.raises(InvalidInput, match="dedication"):
        library.update_project(project.id, project.version, dedication="x" * (MAX_DEDICATION + 1))
    assert library.duplicate_project(project.id).dedication == project.dedication


def test_a_job_never_writes_over_words_a_person_edited_meanwhile(tmp_path):
    library = Library(tmp_path)
    project = _story(library, ["(words to come 1)", "(words to come 2)"])
    first, second = project.pages
    # Another tab (or another process on the same library) edits page one while the storyteller writes.
    other = Library(tmp_path)
    other.update_page(first.id, project.version, text="My own words.")
    with pytest.raises(ConflictError):
        library.save_job_output(project.id, passages={first.id: "A fox ran."}, replacing={first.id: first.text})
    out = library.save_job_output(project.id, passages={second.id: "An owl sat."}, replacing={second.id: second.text})
    assert [p.text for p in out.pages] == ["My own words.", "An owl sat."]
    assert out.story_text == "My own words.\n\nAn owl sat."
    other.close()


def test_a_split_never_leaves_a_page_of_only_emoji_or_punctuation(tmp_path):
    library = Library(tmp_path)
    project = _story(library, ["Mara walked to the sea. 🌊 …", "サラは海へ。🌊"])
    first, second = project.pages
    for page, at in ((first, len("Mara walked to the sea.")), (second, len("サラは海へ。"))):
        with pytest.raises(InvalidInput, match="keep some words"):
            library.split_page(page.id, at, project.version)
    assert library.get_project(project.id) == project  # refused: nothing changed
    split = library.split_page(first.id, len("Mara walked"), project.version)  # words on both sides
    assert [p.text for p in split.pages] == ["Mara walked", "to the sea. 🌊 …", "サラは海へ。🌊"]
    library.close()


def _where(project: ProjectView) -> list[tuple]:
    """Where every picture is (page, version, state, chosen), and each page's words, prompt, seed and lock: what an
    undo gives back."""
    pages = [*project.pages, *project.loose]
    return (
        [(p.id, p.text, p.state, p.prompt_override, p.seed, p.locked) for p in pages]
        + sorted(
            (pic.id, p.id, pic.version, pic.state, pic.selected)
            for p in [*pages, *(project.bin.pages if project.bin else [])]
            for pic in p.pictures
        )
        + sorted((pic.id, pic.page_id, pic.version, pic.state) for pic in (project.bin.pictures if project.bin else []))
    )


@pytest.mark.parametrize("chosen", ["fox", "owl"])
def test_a_split_sends_each_picture_with_the_part_most_like_its_words(tmp_path, chosen):
    library = Library(tmp_path)
    fox, owl = "The fox ran to the river and drank.", "Then the owl flew over the dark hills at night."
    project = _story(library, [f"{fox} {owl}", "The end."])
    page = project.pages[0]

    def add(n: int, words: str | None, select: bool = False):
        settings = {"seed": n} | ({"page_text": words} if words else {})
        return library.add_picture(page.id, _png(n), settings, select=select)

    whole = add(1, page.text)  # drawn for the whole page: the longer part is more like it
    for_fox = add(2, fox, select=chosen == "fox")
    unknown = add(3, None)  # records no words: stays with the first part
    neither = add(4, "Zebras.")  # like neither part (equally): stays with the first part
    for_owl = add(5, "Then the owl flew over the hills at night.", select=chosen == "owl")  # one word since
    binned = add(6, "The owl flew over the dark hills.")
    project = library.discard_picture(binned.id, library.get_project(project.id).version)
    drawn_with = ("a fox by a river", 99, True)  # the page's own prompt, seed and lock
    project = library.update_page(page.id, project.version, prompt_override="a fox by a river", seed=99, locked=True)
    before = library.get_project(project.id)

    project = library.split_page(page.id, len(fox) + 1, before.version)
    first, second = project.pages[:2]
    assert (first.id, first.text, second.text) == (page.id, fox, owl)
    # Those that stay are numbered again from 1 (no "version 3 of 2").
    assert [(pic.id, pic.version) for pic in first.pictures] == [(for_fox.id, 1), (unknown.id, 2), (neither.id, 3)]
    assert [(pic.id, pic.version) for pic in second.pictures] == [(whole.id, 1), (for_owl.id, 2)]
    assert [(pic.id, pic.page_id, pic.version) for pic in project.bin.pictures] == [(binned.id, second.id, 3)]
    if chosen == "fox":  # the first part keeps the chosen picture; the second chooses its newest kept one
        assert first.selected.id == for_fox.id and second.selected.id == for_owl.id
    else:  # the second part takes the chosen picture; the first chooses its newest
        assert first.selected.id == neither.id and second.selected.id == for_owl.id
    assert sum(pic.selected for p in project.pages for pic in p.pictures) == 2
    # The page's prompt, seed and lock go where its chosen picture goes: drawing it again there draws it again.
    with_chosen, other = (first, second) if chosen == "fox" else (second, first)
    assert (with_chosen.prompt_override, with_chosen.seed, with_chosen.locked) == drawn_with
    assert (other.prompt_override, other.seed, other.locked) == (None, None, False)

    after = library.get_project(project.id)
    undone, label = library.undo(project.id, project.version)
    assert label == "Split a page" and _where(undone) == _where(before)
    redone, _ = library.redo(project.id, undone.version)
    assert _where(redone) == _where(after)
    library.close()


def test_a_picture_is_kept_for_its_pages_new_words_until_they_change_again(tmp_path):
    library = Library(tmp_path)
    project = _story(library, ["The fox ran to the river.", "The owl slept."])
    page = project.pages[0]
    drawn = {"seed": 4, "prompt": "a fox", "page_text": page.text}
    picture = library.add_picture(page.id, _png(1), drawn, meta={"scores": {"clip": 30.0}})
    project = library.update_page(page.id, library.get_project(project.id).version, text="The fox ran to the sea.")
    assert project.pages[0].selected.words_changed
    other = library.add_picture(page.id, _png(2), {"page_text": "x"}, select=False)
    project = library.discard_picture(other.id, project.version)
    with pytest.raises(InvalidInput, match="bin"):
        library.keep_picture_for_words(other.id, project.version)

    kept = library.keep_picture_for_words(picture.id, project.version)
    shown = kept.pages[0].selected
    assert not shown.words_changed and kept.undo == "Keep a picture for new words"
    assert shown.settings == drawn  # the recipe that draws it again is left alone
    assert shown.meta == {"scores": {"clip": 30.0}, "kept_for_words": "The fox ran to the sea."}
    with pytest.raises(InvalidInput, match="not changed"):
        library.keep_picture_for_words(picture.id, kept.version)
    with pytest.raises(ConflictError):
        library.keep_picture_for_words(picture.id, project.version)  # a stale tab

    undone, label = library.undo(project.id, kept.version)  # one step, and undone exactly
    assert label == "Keep a picture for new words"
    assert undone.pages[0].selected.words_changed and "kept_for_words" not in undone.pages[0].selected.meta
    redone, _ = library.redo(project.id, undone.version)
    assert not redone.pages[0].selected.words_changed
    assert redone.pages[0].selected.meta["kept_for_words"] == "The fox ran to the sea."

    # It travels with the story (a reload, a bundle), and the note comes back when the words change again.
    library.close()
    library = Library(tmp_path)
    assert not library.get_project(project.id).pages[0].selected.words_changed
    elsewhere = Library(tmp_path / "other")
    imported = elsewhere.import_bundle(library.export_bundle(project.id))
    assert not imported.pages[0].selected.words_changed
    assert imported.pages[0].selected.meta["kept_for_words"] == "The fox ran to the sea."
    elsewhere.close()
    again = library.update_page(page.id, redone.version, text="The fox ran to the sea at dawn.")
    assert again.pages[0].selected.words_changed
    library.close()


def test_a_split_sends_a_kept_picture_by_the_words_it_was_kept_for(tmp_path):
    library = Library(tmp_path)
    fox, owl = "The fox ran to the river.", "The owl slept in the old oak tree."
    project = _story(library, [fox])
    page = project.pages[0]
    picture = library.add_picture(page.id, _png(1), {"seed": 1, "page_text": fox})
    project = library.update_page(page.id, library.get_project(project.id).version, text=f"{fox} {owl}")
    project = library.keep_picture_for_words(picture.id, project.version)  # kept for both sentences now
    split = library.split_page(page.id, len(fox) + 1, project.version)
    assert [p.text for p in split.pages] == [fox, owl]
    assert split.pages[0].pictures == [] and [p.id for p in split.pages[1].pictures] == [picture.id]
    library.close()
