"""The library page under AppTest: empty state, new, sample, open, rename, duplicate, delete, bundles."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from storage import Library

HOME = str(Path(__file__).resolve().parents[1] / "studio" / "Home.py")
TIMEOUT = 60


@pytest.fixture
def fresh_home(tmp_path, monkeypatch):
    """An empty library of its own (the app keeps one Library per data folder)."""
    home = tmp_path / "home"
    monkeypatch.setenv("STORYBOOK_HOME", str(home))
    return Library(home)


def app() -> AppTest:
    at = AppTest.from_file(HOME, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def test_empty_library_offers_a_new_story_and_the_sample(fresh_home):
    at = app()
    assert at.header[0].value == "No stories yet — start one or open the sample"
    # Each way in is offered once: no second "New story" or sample button above the welcome box.
    labels = [b.label for b in at.button]
    assert labels.count("Open the sample story") == 1 and labels.count("Start a new story") == 1
    assert not any(p.proto.popover.label == "New story" for p in at.get("popover"))
    assert not any(t.label == "Search" for t in at.text_input)  # nothing to search yet
    at.button(key="empty.sample").click().run()
    assert not at.exception
    assert at.title[0].value == "The Lighthouse Fox"
    assert any("sample story, already split into 9 pages" in s for s in texts(at.success))
    project = fresh_home.list_projects()[0]
    assert at.query_params["project"] == str(project.id) and project.page_count == 9


def test_new_story_form_creates_and_opens_it(fresh_home):
    from studio import actions

    actions.open_sample(fresh_home)  # the form with title and author is in the top row once a story exists
    at = app()
    next(t for t in at.text_input if t.label == "Title").input("Nora's <b>Kite</b>")
    next(t for t in at.text_input if t.label == "Author").input("Nora")
    next(b for b in at.button if b.label == "Create and open").click().run()
    assert not at.exception
    project = next(p for p in fresh_home.list_projects() if p.author == "Nora")
    assert (project.title, project.author) == ("Nora's <b>Kite</b>", "Nora")
    assert at.title[0].value == r"Nora's \<b\>Kite\</b\>"  # markup stays text
    assert at.query_params["project"] == str(project.id)


def test_cards_search_rename_duplicate_delete(fresh_home):
    from studio import actions

    fox = actions.open_sample(fresh_home)
    owl = fresh_home.create_project("The Owl Who Could Not Sleep", author="Sam")
    at = app()
    titles = [m.value for m in at.markdown if m.value.startswith("## ") and ":material/" not in m.value]
    assert titles == ["## The Owl Who Could Not Sleep", "## The Lighthouse Fox"]  # newest first
    assert "by Sam · 0 pages · updated just now" in texts(at.caption)

    at.text_input(key="sb.library.search").input("lighthouse").run()
    assert [m.value for m in at.markdown if m.value.startswith("## ") and ":material/" not in m.value] == [
        "## The Lighthouse Fox"
    ]
    at.text_input(key="sb.library.search").input("zebra").run()
    assert any("No stories match" in i for i in texts(at.info))
    at.text_input(key="sb.library.search").input("").run()

    at.session_state[f"pop.menu.{owl.id}"] = True  # open the card's menu
    at.session_state[f"pop.menu.{fox.id}"] = True
    at.run()
    at.text_input(key=f"rename.title.{owl.id}").input("The Owl Who Slept at Last")
    at.button(key=f"rename.go.{owl.id}").click().run()
    assert fresh_home.get_project(owl.id).title == "The Owl Who Slept at Last"
    assert any("Renamed" in s for s in texts(at.success))
    assert at.session_state[f"pop.menu.{owl.id}"] is False  # the menus close once their action is done

    at.session_state[f"pop.menu.{fox.id}"] = True
    at.run()
    at.button(key=f"dup.{fox.id}").click().run()
    copies = [p for p in fresh_home.list_projects() if p.title == "The Lighthouse Fox (copy)"]
    assert len(copies) == 1 and copies[0].page_count == 9
    assert at.session_state[f"pop.menu.{fox.id}"] is False

    at.session_state[f"pop.menu.{owl.id}"] = True
    at.session_state[f"pop.menu.{fox.id}"] = True
    at.run()
    at.button(key=f"delete.{owl.id}").click().run()
    assert any("You can undo it" in w for w in texts(at.warning))
    assert fresh_home.get_project(owl.id)  # nothing deleted before the confirmation
    at.button(key=f"delete.no.{owl.id}").click().run()
    assert not at.warning
    at.button(key=f"delete.{owl.id}").click().run()
    at.button(key=f"delete.yes.{owl.id}").click().run()
    assert owl.id not in [p.id for p in fresh_home.list_projects()]
    assert any("Deleted “The Owl Who Slept at Last”" in s for s in texts(at.success))

    # Undo brings the story back, pages, pictures and all; the offer then goes away.
    import io

    from PIL import Image

    png = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 90, 40)).save(png, "PNG")
    fresh_home.add_picture(fox.pages[0].id, png.getvalue(), {"seed": 5})
    at.run()
    at.button(key=f"delete.{fox.id}").click().run()
    at.button(key=f"delete.yes.{fox.id}").click().run()
    assert fox.id not in [p.id for p in fresh_home.list_projects()]
    at.session_state["sb.recent_actions"] = {}
    at.button(key="undo.delete").click().run()
    assert any("Brought back “The Lighthouse Fox” with its 9 pages" in s for s in texts(at.success)), texts(at.error)
    back = next(p for p in fresh_home.list_projects() if p.title == "The Lighthouse Fox")
    restored, original = fresh_home.get_project(back.id), fox
    assert [s.text for s in restored.pages] == [s.text for s in original.pages]
    assert restored.pages[0].selected.image_path.read_bytes() == png.getvalue()
    assert restored.pages[0].selected.settings == {"seed": 5}
    assert not any(b.key == "undo.delete" for b in at.button)


def test_open_a_card_then_import_a_bundle_and_refuse_a_broken_one(fresh_home, monkeypatch):
    from studio import actions

    given = []  # what the page hands the library: Streamlit's upload itself, never a copy of its bytes
    real_import = Library.import_bundle
    monkeypatch.setattr(Library, "import_bundle", lambda self, data: (given.append(data), real_import(self, data))[1])
    fox = actions.open_sample(fresh_home)
    bundle = fresh_home.export_bundle(fox.id)
    at = app()
    at.session_state[f"pop.menu.{fox.id}"] = True
    at.run()
    assert at.download_button(key=f"export.{fox.id}").label == "Export bundle"

    at.session_state["pop.library.import"] = True  # the Import menu is open
    at.run()
    uploader = at.file_uploader[0]
    uploader.set_value(("broken.zip", b"PK\x03\x04 not really a zip", "application/zip")).run()
    next(b for b in at.button if b.label == "Import this bundle").click().run()
    assert len(at.error) == 1 and not at.exception
    assert len(fresh_home.list_projects()) == 1
    assert at.session_state["pop.library.import"] is True  # refused: the menu stays open, to pick another file

    at.file_uploader[0].set_value(("fox.storybook.zip", bundle, "application/zip")).run()
    next(b for b in at.button if b.label == "Import this bundle").click().run()
    said = [s.replace("\\", "") for s in texts(at.success)]
    said = [s for s in said if "Imported “The Lighthouse Fox (imported)” with 9 pages" in s]
    assert said and "already had a story called “The Lighthouse Fox”" in said[0], texts(at.success)
    titles = sorted(p.title for p in fresh_home.list_projects())
    assert titles == ["The Lighthouse Fox", "The Lighthouse Fox (imported)"]
    assert at.session_state["pop.library.import"] is False  # imported: the menu has done its job and closes
    assert len(given) == 2 and not any(isinstance(data, (bytes, bytearray)) for data in given), given
    # A third import of the same bundle gets a title of its own too.
    assert actions.import_story(fresh_home, bundle).project.title == "The Lighthouse Fox (imported 2)"

    at.button(key=f"open.{fox.id}").click().run()
    assert at.title[0].value == "The Lighthouse Fox"
    assert at.query_params["project"] == str(fox.id)

    # The shared sidebar names the open story. (AppTest keeps the sidebar of a session's first run only.)
    tab = AppTest.from_file(HOME, default_timeout=TIMEOUT)
    tab.query_params["project"] = str(fox.id)
    tab.run()
    sidebar = [m.value for m in tab.sidebar.markdown]
    assert any("The Lighthouse Fox" in m for m in sidebar), sidebar
    assert "9 pages · 0 pictures" in [c.value for c in tab.sidebar.caption]


def test_a_double_click_on_duplicate_makes_one_copy(fresh_home):
    """A double click reaches the app as two runs that both carry the click (runner.fastReruns is off);
    the second one, right after the first copy was made, makes no second copy."""
    from studio import actions

    fox = actions.open_sample(fresh_home)
    at = app()
    at.session_state[f"pop.menu.{fox.id}"] = True  # the card's menu is open
    at.run()
    at.button(key=f"dup.{fox.id}").click().run()
    at.session_state[f"pop.menu.{fox.id}"] = True
    at.run()
    at.button(key=f"dup.{fox.id}").click().run()  # the second click of the double click
    assert not at.exception, at.exception
    assert len(fresh_home.list_projects()) == 2
    assert not at.error


def test_a_message_does_not_move_the_page_under_it(fresh_home):
    """The run after a message lays the page out as the run with it did: an open popover (Import, a
    card's menu) keeps its place, so it is not closed and its file uploader is not emptied."""
    from studio import actions

    fox = actions.open_sample(fresh_home)
    at = app()
    without = len(at.main.children)
    at.session_state[f"pop.menu.{fox.id}"] = True
    at.run()
    at.button(key=f"dup.{fox.id}").click().run()
    assert any(s.startswith("Made a copy") for s in texts(at.success))
    assert len(at.main.children) == without
    at.run()  # the message is gone
    assert not at.success and len(at.main.children) == without


def test_config_listens_locally_and_keeps_reruns_in_order():
    import tomllib

    config = tomllib.loads((Path(HOME).parent / ".streamlit" / "config.toml").read_text())
    assert config["runner"]["fastReruns"] is False
    assert config["server"]["address"] == "127.0.0.1" and config["server"]["enableXsrfProtection"] is True
    # The server takes any bundle the library imports; the picture uploaders ask for what the loader takes.
    from storage.bundle import MAX_BUNDLE_BYTES

    assert config["server"]["maxUploadSize"] * 2**20 >= MAX_BUNDLE_BYTES


def test_uploaders_ask_for_what_the_library_and_the_picture_loader_take(fresh_home):
    from engine.imageio import MAX_UPLOAD_BYTES
    from storage.bundle import MAX_BUNDLE_BYTES
    from studio import actions

    at = AppTest.from_file(HOME, default_timeout=60)
    at.run()
    (bundle,) = at.get("file_uploader")
    assert bundle.proto.max_upload_size_mb == actions.bundle_upload_mb() <= MAX_BUNDLE_BYTES // 2**20
    at.switch_page("screens/from_images.py").run()
    (pictures,) = at.get("file_uploader")
    assert pictures.proto.max_upload_size_mb == MAX_UPLOAD_BYTES // 2**20


def test_the_bundle_upload_limit_is_what_this_computer_can_hold(fresh_home, monkeypatch, tmp_path):
    from studio import actions

    gb = 2**30
    # Streamlit holds an upload in memory: an eighth of the computer's memory, at most what the library imports.
    assert actions.bundle_upload_mb(16 * gb) == actions.bundle_upload_mb(64 * gb) == actions.MAX_BUNDLE_MB == 1024
    assert actions.bundle_upload_mb(4 * gb) == 512 and actions.bundle_upload_mb(gb // 4) == 64
    # A container's memory limit counts when it is below the computer's (cgroup v2 "max" means none).
    from core import hardware

    physical = hardware.memory_bytes(limits=())
    limit = tmp_path / "memory.max"
    limit.write_text(f"{gb}\n")
    assert hardware.memory_bytes(limits=(str(limit),)) == min(gb, physical)
    limit.write_text("max\n")
    assert hardware.memory_bytes(limits=(str(limit), "/no/such/file")) == physical
    limit.write_text(f"{physical * 4}\n")
    assert hardware.memory_bytes(limits=(str(limit),)) == physical
    monkeypatch.setattr(hardware, "memory_bytes", lambda: 2 * gb)  # a 2 GB container
    assert actions.bundle_upload_mb() == 256
    monkeypatch.setattr(actions, "bundle_upload_mb", lambda: 512)  # a computer of 4 GB
    at = app()
    (bundle,) = at.get("file_uploader")
    assert bundle.proto.max_upload_size_mb == 512
    assert any("python -m storage import-bundle" in c for c in texts(at.caption)), texts(at.caption)


def test_a_bundle_of_a_story_not_in_the_library_keeps_its_title(fresh_home, tmp_path):
    from studio import actions

    fox = actions.open_sample(fresh_home)
    bundle = fresh_home.export_bundle(fox.id)
    elsewhere = Library(tmp_path / "elsewhere")
    result = actions.import_story(elsewhere, bundle)
    assert result.same_title_as is None and result.project.title == "The Lighthouse Fox"


def test_the_sidebar_offers_the_storyboard_only_away_from_it(fresh_home):
    from studio import actions

    fox = actions.open_sample(fresh_home)
    links = {}
    for screen in ("screens/storyboard.py", "screens/export.py"):
        tab = AppTest.from_file(HOME, default_timeout=TIMEOUT)
        tab.query_params["project"] = str(fox.id)
        tab.switch_page(screen)  # before the first run: AppTest keeps the sidebar of that run
        tab.run()
        assert not tab.exception, tab.exception
        links[screen] = [link.label for link in tab.sidebar.get("page_link")]
    assert "Go to the storyboard" not in links["screens/storyboard.py"]
    assert "Go to the storyboard" in links["screens/export.py"]
