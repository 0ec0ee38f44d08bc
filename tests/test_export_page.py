"""The Export page under AppTest: make the PDF, download it and the ZIP, see the preview and the DPI
warnings, reuse the last PDF on reruns, pick a story when none is open, and show export errors as a sentence."""

from __future__ import annotations

import io
import shutil
import zipfile
from dataclasses import astuple

import fixtures_images as fx
import pytest
from apptestkit import click, open_screen
from pypdf import PdfReader
from streamlit.testing.v1 import AppTest
from widgetkit import shows_what_it_holds

from exports import PdfOptions
from storage import Library, PageInput
from studio import actions, state

TIMEOUT = 30
PAGES = ["Mira planted a silver seed.", "The seed grew into a moon flower.", "Everyone came to look at it."]


@pytest.fixture(scope="module")
def lib() -> Library:
    return Library()


def book(lib: Library, pictures: int = 2):
    """A three-page story whose first `pictures` pages have a tiny 64 px picture (the rest print text only)."""
    text = " ".join(PAGES)
    project = lib.create_project("The Moon Garden", author="Ada", story_text=text)
    inputs, at = [], 0
    for page in PAGES:
        start = text.index(page, at)
        inputs.append(PageInput(page, start, start + len(page)))
        at = start + len(page)
    project = lib.save_story(project.id, project.version, text, inputs)
    for seg in project.pages[:pictures]:
        lib.add_picture(seg.id, fx.encode(fx.gradient((64, 64))), {"seed": seg.position}, origin="generated")
    return lib.get_project(project.id)


def export_page(project_id: int | None = None) -> AppTest:
    return open_screen("export", project_id, timeout=TIMEOUT)


def texts(elements) -> list[str]:
    return [e.value.replace("\\", "") for e in elements]


def test_make_the_pdf_download_it_and_the_zip(lib):
    project = book(lib)
    at = export_page(project.id)
    assert not at.download_button
    click(at, "export.make")
    outcome = at.session_state[state.EXPORT_RESULT]
    assert [b.label for b in at.download_button] == ["Download the PDF", "Download the pictures and text (ZIP)"]
    assert outcome.pdf.startswith(b"%PDF")
    assert outcome.page_count == len(PdfReader(io.BytesIO(outcome.pdf)).pages) == len(PAGES) + 2  # cover, closing
    assert any(f"{outcome.page_count} pages" in s for s in texts(at.success))
    assert outcome.file_stem == "The Moon Garden"

    # 64 px pictures are far below 150 dpi on A4: one message names them all, not one message per picture.
    assert len(outcome.low_dpi) == 3 and all(dpi < 150 for _, dpi in outcome.low_dpi)  # the cover too
    warnings = texts(at.warning)
    assert len([w for w in warnings if "dpi" in w]) == 1, warnings
    assert any("3 pictures print at" in w and "the cover and pages 1-2 of the story" in w for w in warnings), warnings

    with zipfile.ZipFile(io.BytesIO(outcome.zip)) as archive:
        names = set(archive.namelist())
        assert {"story.md", "page-01.png", "page-02.png"} <= names and "page-03.png" not in names
        assert "Everyone came to look at it." in archive.read("story.md").decode()

    if shutil.which("pdftoppm"):
        assert [i.captions[0] for i in pages_shown(at)] == ["Page 1", "Page 2", "Page 3"]
    else:
        assert any("pdftoppm" in i for i in texts(at.info))

    # A rerun, or pressing the button again, reuses the PDF; new options make a new one.
    at.run()
    click(at, "export.make")
    assert at.session_state[state.EXPORT_RESULT] is outcome
    at.radio(key=state.EXPORT_LAYOUT).set_value("facing").run()
    assert not at.download_button and any("changed since the last PDF" in i for i in texts(at.info))
    at.selectbox(key=state.EXPORT_SIZE).set_value("8x8")
    at.toggle(key=state.EXPORT_BLEED).set_value(True)
    at.radio(key=state.EXPORT_FONT).set_value("sans")
    click(at, "export.make")
    facing = at.session_state[state.EXPORT_RESULT]
    assert facing is not outcome
    assert facing.page_count == 2 * len(PAGES) + 2 == len(PdfReader(io.BytesIO(facing.pdf)).pages)
    first = PdfReader(io.BytesIO(facing.pdf)).pages[0]
    assert float(first.mediabox.width) > 8 * 72  # the bleed and the crop marks' slug around the trim

    # A new picture (which leaves the version alone) makes the cached PDF stale too.
    lib.add_picture(project.pages[2].id, fx.png((64, 64)), {}, origin="uploaded")
    at.run()
    assert any("changed since the last PDF" in i for i in texts(at.info))


def test_a_fresh_session_shows_the_defaults_the_pdf_is_made_with(lib):
    """Each option's widget shows on its own (from its own default, as a browser draws it) the value the server
    holds, the exporter's default, and the PDF is made with exactly those options: cover, closing page and page
    numbers on. Defaults put in Session State before the widgets showed could leave a toggle off in the browser
    while the PDF was made with it on."""
    project = book(lib)
    at = export_page(project.id)
    defaults = PdfOptions()
    widgets = {
        "layout": at.radio(key=state.EXPORT_LAYOUT),
        "page_size": at.selectbox(key=state.EXPORT_SIZE),
        "orientation": at.selectbox(key=state.EXPORT_ORIENTATION),
        "font": at.radio(key=state.EXPORT_FONT),
        "bleed": at.toggle(key=state.EXPORT_BLEED),
        "crop_marks": at.checkbox(key=state.EXPORT_CROP_MARKS),
        "cover": at.toggle(key=state.EXPORT_COVER),
        "closing_page": at.toggle(key=state.EXPORT_CLOSING),
        "page_numbers": at.toggle(key=state.EXPORT_NUMBERS),
    }
    for field, widget in widgets.items():
        assert widget.value == getattr(defaults, field), field
        assert shows_what_it_holds(widget), (field, widget.proto)
    assert defaults.cover and defaults.closing_page and defaults.page_numbers  # the toggles that could show off

    click(at, "export.make")
    outcome = at.session_state[state.EXPORT_RESULT]
    assert outcome.key[3] == astuple(defaults)
    pdf = PdfReader(io.BytesIO(outcome.pdf))
    assert len(pdf.pages) == len(PAGES) + 2  # the cover and the closing page
    assert "The Moon Garden" in pdf.pages[0].extract_text() and "The End" in pdf.pages[-1].extract_text()
    # Still one source after a change: the widget keeps what was chosen, and the PDF follows it.
    at.toggle(key=state.EXPORT_COVER).set_value(False)
    click(at, "export.make")
    assert at.toggle(key=state.EXPORT_COVER).value is False
    assert len(PdfReader(io.BytesIO(at.session_state[state.EXPORT_RESULT].pdf)).pages) == len(PAGES) + 1


def test_a_story_without_pictures_prints_text_only_and_no_dpi_warning(lib):
    project = book(lib, pictures=0)
    at = export_page(project.id)
    click(at, "export.make")
    outcome = at.session_state[state.EXPORT_RESULT]
    assert outcome.pdf.startswith(b"%PDF") and not outcome.low_dpi
    assert not at.warning and not at.error


def test_picker_when_no_story_is_open(lib):
    project = book(lib, pictures=1)
    at = export_page()
    picker = at.selectbox(key=state.EXPORT_PICK)
    picker.set_value(project.id)
    click(at, "export.open")
    assert at.session_state[state.PROJECT_ID] == project.id
    assert at.button(key="export.make")


def test_export_errors_are_one_sentence(lib, monkeypatch):
    from exports import ExportError

    project = book(lib, pictures=0)

    def refuse(*_args, **_kwargs):
        raise ExportError("The page size must be one of A4, Letter, A5, 8x8, not 'B5'.")

    monkeypatch.setattr(actions, "export_book", refuse)
    at = export_page(project.id)
    click(at, "export.make")
    assert texts(at.error) == ["The page size must be one of A4, Letter, A5, 8x8, not 'B5'."]
    assert not at.download_button


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils (pdftoppm) is not installed")
def pages_shown(at) -> list:
    """The preview images of the PDF (the layout thumbnails above them are not pages of this book)."""
    return [i for i in at.image if i.captions[0].startswith("Page ")]


def test_every_page_can_be_leafed_through_before_printing(lib):
    project = book(lib)
    at = export_page(project.id)
    click(at, "export.make")
    outcome = at.session_state[state.EXPORT_RESULT]
    assert len(pages_shown(at)) == 3 and outcome.page_count == 5
    click(at, "export.all_pages")
    captions = [i.captions[0] for i in pages_shown(at)]
    assert captions == ["Page 1", "Page 2", "Page 3"] + [f"Page {n}" for n in range(1, 6)]
    assert any("Every page (5 of 5)" in h for h in texts(at.header))
    # Other options make another PDF: the pages shown before are not passed off as its pages.
    at.radio(key=state.EXPORT_LAYOUT).set_value("text_band").run()
    click(at, "export.make")
    assert len(pages_shown(at)) == 3 and any(b.key == "export.all_pages" for b in at.button)


def closing_box(at: AppTest):
    return next(t for t in at.text_input if t.label == "Closing words")


def test_the_closing_page_follows_the_story_language_and_can_be_reworded(lib):
    from pypdf import PdfReader as Reader

    text = "きつねは とうだいに すんでいました。まいばん あかりを つけました。"
    project = lib.create_project("きつねの とうだい", story_text=text)
    project = lib.save_story(project.id, project.version, text, [PageInput(text, 0, len(text))])
    at = export_page(project.id)
    assert closing_box(at).placeholder == "おしまい" and closing_box(at).value == ""
    click(at, "export.make")
    outcome = at.session_state[state.EXPORT_RESULT]
    last = Reader(io.BytesIO(outcome.pdf)).pages[-1].extract_text()
    assert "おしまい" in last.replace(" ", "") and "The End" not in last
    assert outcome.file_stem == "きつねの とうだい"

    # The box shows and saves the book's own closing words: the storyboard's Book details and the CLI use them.
    closing_box(at).input("またね").run()
    assert lib.get_project(project.id).closing == "またね"
    assert any("changed since the last PDF" in i for i in texts(at.info))
    click(at, "export.make")
    last = Reader(io.BytesIO(at.session_state[state.EXPORT_RESULT].pdf)).pages[-1].extract_text()
    assert "またね" in last.replace(" ", "")
    assert closing_box(export_page(project.id)).value == "またね"  # a refresh shows what is kept
    # Saved elsewhere (another tab, Book details): the box follows.
    stored = lib.get_project(project.id)
    lib.update_project(stored.id, stored.version, closing="さようなら")
    at.run()
    assert closing_box(at).value == "さようなら"


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="layout thumbnails need poppler's pdftoppm")
def test_layouts_are_shown_as_thumbnails_with_the_chosen_one_marked(lib):
    at = export_page(book(lib).id)
    captions = [i.captions[0] for i in at.image]
    assert "✓ Picture above the words (chosen)" in captions and "Picture and words on facing pages" in captions
    at.radio(key=state.EXPORT_LAYOUT).set_value("facing").run()
    assert "✓ Picture and words on facing pages (chosen)" in [i.captions[0] for i in at.image]
