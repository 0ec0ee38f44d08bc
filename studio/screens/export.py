"""Export: the open story as a printable PDF picture book, and a ZIP of its pictures and text.

Rendering is CPU work on the exports package's pure functions, quick for a picture book, so it runs
here under a spinner (no GPU job). The last result is kept in the session, keyed by what it was made
from, so reruns and downloads never render it again.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import streamlit as st

from exports import LAYOUTS, PAGE_SIZES, PdfOptions
from exports.pdf import MIN_DPI
from storage import StorageError
from studio import actions, state, ui

LAYOUT_LABELS = {
    "picture_above": "Picture above the words",
    "text_band": "Picture fills the page, words on a band",
    "side_by_side": "Picture and words side by side",
    "facing": "Picture and words on facing pages",
}
SIZE_LABELS = {
    "A4": "A4 (210 x 297 mm)",
    "Letter": "US Letter (8.5 x 11 in)",
    "A5": "A5 (148 x 210 mm)",
    "8x8": "Square (8 x 8 in)",
}
ORIENTATION_LABELS = {"auto": "Best for the layout", "portrait": "Portrait", "landscape": "Landscape"}
FONT_LABELS = {"serif": "Serif, like a storybook", "sans": "Sans-serif, clean and simple"}
PREVIEW_PAGES = 3
ALL_PAGES_COLUMNS = 4
WARNINGS_SHOWN = 3

project = ui.load_current_project()

st.title(":material/print: Make the book")
ui.show_flash()


def picker() -> None:
    lib = ui.library()
    try:
        summaries = lib.list_projects()
    except StorageError as exc:
        st.error(exc.message, icon=ui.ERROR_ICON)
        return
    if not summaries:
        st.info(
            "There is no story to print yet. Write one in the storyboard, or tell one from your pictures.",
            icon=":material/menu_book:",
        )
        cols = st.columns(2)
        cols[0].page_link(state.SCREEN_STORYBOARD, label="Go to the storyboard", icon=":material/auto_stories:")
        cols[1].page_link(
            state.SCREEN_FROM_IMAGES, label="From images: a story from your pictures", icon=":material/photo_library:"
        )
        return
    st.markdown("Which story should become a book?")
    titles = {s.id: f"{s.title} ({ui.plural(s.page_count, 'page')}, saved {ui.ago(s.updated)})" for s in summaries}
    counts = Counter(titles.values())
    # The browser sends back the label, so two stories that read alike must not share one.
    titles = {pid: label if counts[label] == 1 else f"{label} · no. {pid}" for pid, label in titles.items()}
    chosen = st.selectbox("Story", options=list(titles), format_func=titles.get, key=state.EXPORT_PICK)
    if st.button("Open this story", icon=":material/menu_book:", type="primary", key="export.open"):
        with ui.guard():
            ui.set_current_project(lib.get_project(chosen))
            st.rerun()


if project is None:
    picker()
    st.stop()

ui.watch_project(project)  # pictures drawn or edits made in another tab: the counts and the PDF's freshness follow
pictures = sum(1 for s in project.pages if s.selected is not None)
st.caption(
    f"{ui.plain(project.title)} · {ui.plural(len(project.pages), 'page')} · "
    f"{ui.plural(pictures, 'picture')} · saved {ui.ago(project.updated)}"
)
if not project.pages:
    st.info("This story has no pages yet: split it into pages in the storyboard first.", icon=":material/content_cut:")
    st.page_link(state.SCREEN_STORYBOARD, label="Go to the storyboard", icon=":material/auto_stories:")
    st.stop()
if pictures < len(project.pages):
    st.caption(
        f"{ui.plural(len(project.pages) - pictures, 'page')} without a picture "
        f"{'prints' if len(project.pages) - pictures == 1 else 'print'} with words only."
    )


def book_score_row(project) -> None:
    """The book's CLIP score, worded as on the storyboard (actions.book_score_line), and "Judge the book": the
    profile's judge (a larger CLIP than the ranker that chose the pictures) scores every picture in use, on the
    worker; the screen follows the story, so the judged score shows when the job is done."""
    summary = actions.book_score(project)
    line, help_text = actions.book_score_line(summary)
    judging = bool(actions.judge_jobs(project.id))
    profile = actions.project_profile(project).profile
    judge_off = actions.judge_note(profile)
    with st.container(horizontal=True, gap="small", vertical_alignment="center"):
        if line:
            st.caption(ui.plain(line), help=help_text)
        if pictures and (summary["role"] != "judge" or summary["unjudged"]):
            if st.button(
                "Judging…" if judging else "Judge the book",
                icon=":material/analytics:",
                type="tertiary",
                key="export.judge",
                disabled=judging or bool(judge_off),
                help=judge_off
                or "Scores every page's picture against its words with the judge, a larger CLIP model than the one "
                "that chose the pictures, so the book is not graded by its chooser.",
            ) and ui.first_click("export.judge"):
                with ui.guard(project.id):
                    actions.judge_book(ui.library(), project.id, profile=profile)
                    ui.flash("toast", "Judging the book: its score shows here when it is done.")
                    st.rerun()
    if pictures and judge_off:  # the judge of this story's profile, not only the default's (Settings)
        ui.extras_download(profile, roles=("judge",), place="export.judge")


book_score_row(project)

# Each option's widget and the PdfOptions field it sets. The widgets get their defaults, the exporter's own
# (PdfOptions()), through value=/index=, never through Session State: a toggle whose True was put in Session State
# before it first showed could show, and later send back, its own default (off) in the browser while the PDF was
# made with it on (the Pages box's "Sentences per page" did so, see the storyboard).
OPTION_FIELDS = {
    state.EXPORT_LAYOUT: "layout",
    state.EXPORT_SIZE: "page_size",
    state.EXPORT_ORIENTATION: "orientation",
    state.EXPORT_BLEED: "bleed",
    state.EXPORT_CROP_MARKS: "crop_marks",
    state.EXPORT_FONT: "font",
    state.EXPORT_COVER: "cover",
    state.EXPORT_CLOSING: "closing_page",
    state.EXPORT_NUMBERS: "page_numbers",
}
DEFAULTS = PdfOptions()


def default(key: str):
    return getattr(DEFAULTS, OPTION_FIELDS[key])


def chosen(key: str):
    """An option as its widget holds it, or its default before the widget is drawn in this session."""
    return st.session_state.get(key, default(key))


def default_index(options: list, key: str) -> int:
    return options.index(default(key))


def _save_closing(project_id: int, key: str) -> None:
    """The closing words are the book's, like its dedication: saved the moment they are changed (one undo step)."""
    with ui.guard(project_id):
        lib = ui.library()
        version = ui.base_version(lib.get_project(project_id))
        view = actions.save_detail(lib, project_id, version, "closing", st.session_state[key])
        ui.set_base_version(view)
        ui.flash("toast", actions.DETAIL_SAVED["closing"])


with st.container(border=True):
    st.radio(
        "Layout",
        options=list(LAYOUTS),
        index=default_index(list(LAYOUTS), state.EXPORT_LAYOUT),
        key=state.EXPORT_LAYOUT,
        format_func=LAYOUT_LABELS.get,
        horizontal=True,
    )
    # Each layout as the exporter itself sets a sample page, at the page size and orientation chosen below.
    ui.layout_gallery(
        chosen(state.EXPORT_LAYOUT),
        {k: LAYOUT_LABELS.get(k, k) for k in LAYOUTS},
        chosen(state.EXPORT_SIZE),  # drawn below: its default until then
        chosen(state.EXPORT_ORIENTATION),
        key="export.layouts",
    )
    # Three groups that wrap in a narrow window (three fixed columns cut their labels short at 800 px).
    with ui.card_grid("export.options", min_rem=15):
        left, middle, right = st.container(), st.container(), st.container()
    with left:
        st.radio(
            "Type",
            options=list(FONT_LABELS),
            index=default_index(list(FONT_LABELS), state.EXPORT_FONT),
            key=state.EXPORT_FONT,
            format_func=FONT_LABELS.get,
        )
    with middle:
        st.selectbox(
            "Page size",
            options=list(PAGE_SIZES),
            index=default_index(list(PAGE_SIZES), state.EXPORT_SIZE),
            key=state.EXPORT_SIZE,
            format_func=SIZE_LABELS.get,
        )
        st.selectbox(
            "Orientation",
            options=list(ORIENTATION_LABELS),
            index=default_index(list(ORIENTATION_LABELS), state.EXPORT_ORIENTATION),
            key=state.EXPORT_ORIENTATION,
            format_func=ORIENTATION_LABELS.get,
        )
    with right:
        st.toggle("Cover page", value=default(state.EXPORT_COVER), key=state.EXPORT_COVER)
        closing_page = st.toggle(
            "Closing page (“The End”)", value=default(state.EXPORT_CLOSING), key=state.EXPORT_CLOSING
        )
        # The book's own closing words (Book details in the storyboard shows the same field): saved as typed.
        closing_key = ui.init_widget(
            state.widget_key("export.closing", project.id, stored=project.closing, gen=ui.reload_gen()),
            project.closing,
        )
        st.text_input(
            "Closing words",
            key=closing_key,
            on_change=_save_closing,
            args=(project.id, closing_key),
            placeholder=actions.language_closing_words(project),
            max_chars=actions.MAX_CLOSING_CHARS,
            disabled=not closing_page,
            help="What the last page says, kept with the book (also in the storyboard's Book details). "
            "Left empty, it says “The End” in the story's language.",
        )
        st.toggle("Page numbers", value=default(state.EXPORT_NUMBERS), key=state.EXPORT_NUMBERS)
        bleed = st.toggle(
            "Bleed for a print shop",
            value=default(state.EXPORT_BLEED),
            key=state.EXPORT_BLEED,
            help="Adds 3 mm around every page so pictures run off the edge once the paper is trimmed.",
        )
        st.checkbox(
            "Crop marks",
            value=default(state.EXPORT_CROP_MARKS),
            key=state.EXPORT_CROP_MARKS,
            disabled=not bleed,
            help="Marks where the printer cuts; drawn outside the bleed.",
        )

options = replace(DEFAULTS, **{field: chosen(key) for key, field in OPTION_FIELDS.items()})
wanted = actions.export_key(project, options)
last = st.session_state.get(state.EXPORT_RESULT)
outcome = last if last is not None and last.key == wanted else None


def _finishing_outcome(job) -> None:
    if job.status.value == "done":
        st.success(f"Done: {ui.plural(job.results, 'draft')} finished.", icon=":material/check_circle:")
    elif job.status.value == "cancelled":
        kept = f"{ui.plural(job.results, 'draft')} finished before that {'is' if job.results == 1 else 'are'} kept"
        st.info(f"Stopped: {kept}.", icon=":material/stop_circle:")
    else:
        st.error((job.error or "Finishing stopped.") + " Drafts already finished are kept.", icon=ui.ERROR_ICON)


# Drafts: the book offers to finish them first (a job on the worker), then makes the PDF when it is done.
finishing = actions.finishing_jobs(project.id)
make = False
if any(not job.finished for job in finishing):
    st.info(
        "Finishing the drafts: the PDF is made as soon as they are done. You can leave this screen; the finished "
        "pictures are kept either way.",
        icon=":material/auto_fix_high:",
    )

    live_key = f"export.live.{project.id}"

    @st.fragment(run_every=ui.LIVE_EVERY_S)
    def follow_finishing() -> None:
        # Live, like the storyboard (ui.live_news): drawn as the drafts are finished, nothing sent in between.
        since = ui.live_news(live_key)
        jobs = actions.finishing_jobs(project.id)
        if all(job.finished for job in jobs):
            st.session_state.pop(live_key, None)
            ui.rerun_to_follow()  # done: one full run makes the PDF
        shown = ui.jobs_shown(jobs)
        ui.live_unchanged(live_key, since, shown)
        ui.job_panel(jobs, stop_note="Stopping… drafts already finished are kept.", outcome=_finishing_outcome)
        ui.live_drawn(live_key, since, shown)

    st.session_state.pop(live_key, None)  # this run draws the panel: following starts from it
    follow_finishing()
    st.stop()
after = st.session_state.get(state.EXPORT_AFTER_FINISH)
if after is not None and after[0] == project.id:
    del st.session_state[state.EXPORT_AFTER_FINISH]
    job = next((j for j in finishing if j.id == after[1]), None)
    if job is not None and job.status.value == "done" and not job.save_errors:
        # The drafts are finished: the PDF the person asked for, from the story as it is now.
        project = ui.library().get_project(project.id)
        wanted = actions.export_key(project, options)
        outcome = last if last is not None and last.key == wanted else None
        make = outcome is None
    elif job is not None:
        _finishing_outcome(job)
drafts = actions.drafts_note(project) if outcome is None and not make else None
if drafts:
    st.warning(
        f"{drafts}: quick pictures not finished yet. Finishing decodes each draft's own picture in full detail "
        "(the same picture, sharper; the drafts stay among each page's versions).",
        icon=":material/bolt:",
    )
    with st.container(horizontal=True, gap="small"):
        finish = st.button(
            "Finish the drafts first", icon=":material/auto_fix_high:", type="primary", key="export.finish"
        )
        make = st.button("Export with the drafts", icon=":material/picture_as_pdf:", key="export.with_drafts")
    if finish and ui.first_click("export.finish"):
        with ui.guard(project.id):
            start = actions.finish_drafts(ui.library(), project.id)
            if start.job_id is not None:
                st.session_state[state.EXPORT_AFTER_FINISH] = (project.id, start.job_id)
            st.rerun()
elif st.button("Make the PDF", icon=":material/picture_as_pdf:", type="primary", key="export.make"):
    make = True

if make and outcome is None:
    with ui.guard(project.id), st.spinner("Setting the pages of your book…"):
        outcome = actions.export_book(project, options, preview_pages=PREVIEW_PAGES)
        st.session_state[state.EXPORT_RESULT] = outcome

if outcome is None:
    if last is not None and last.key[0] == project.id:
        st.info(
            "The story or the options changed since the last PDF: press “Make the PDF” for a new one.",
            icon=":material/info:",
        )
    st.stop()

st.success(f"Your book is ready: {ui.plural(outcome.page_count, 'page')}.", icon=":material/check_circle:")
with st.container(horizontal=True, gap="small"):
    st.download_button(
        "Download the PDF",
        data=outcome.pdf,
        file_name=f"{outcome.file_stem}.pdf",
        mime="application/pdf",
        icon=":material/download:",
        type="primary",
        key="export.pdf",
        on_click="ignore",
    )
    st.download_button(
        "Download the pictures and text (ZIP)",
        data=outcome.zip,
        file_name=f"{outcome.file_stem}.zip",
        mime="application/zip",
        icon=":material/folder_zip:",
        key="export.zip",
        on_click="ignore",
        help="Every picture as a file, and the story as story.md.",
    )

if outcome.low_dpi:
    st.caption(
        f"Pictures below {MIN_DPI} dpi at this size may print soft: a smaller page size, or a larger "
        "picture, makes them sharper."
    )
for sentence in outcome.warnings[:WARNINGS_SHOWN]:
    st.warning(ui.plain(sentence), icon=":material/warning:")
if len(outcome.warnings) > WARNINGS_SHOWN:
    with st.expander(f"{ui.plural(len(outcome.warnings) - WARNINGS_SHOWN, 'more note')} on this PDF"):
        for sentence in outcome.warnings[WARNINGS_SHOWN:]:
            st.markdown(f"- {ui.plain(sentence)}")

st.header(":material/preview: The first pages", divider="orange")
if outcome.previews:
    columns = st.columns(len(outcome.previews))
    for number, (column, png) in enumerate(zip(columns, outcome.previews), start=1):
        column.image(png, caption=f"Page {number}", width="stretch", alt=f"Page {number} of the PDF")
elif outcome.preview_note:
    st.info(outcome.preview_note, icon=":material/visibility_off:")

if outcome.previews and outcome.page_count > len(outcome.previews):
    every = st.session_state.get(state.EXPORT_ALL_PAGES)
    if every is None or every[0] != outcome.key:
        shown = min(outcome.page_count, actions.MAX_PREVIEW_PAGES)
        if st.button(
            f"Leaf through all {ui.plural(shown, 'page')}", icon=":material/auto_stories:", key="export.all_pages"
        ):
            with ui.guard(project.id), st.spinner("Drawing every page…"):
                st.session_state[state.EXPORT_ALL_PAGES] = (outcome.key, actions.preview_every_page(outcome))
                st.rerun()
    else:
        pngs = every[1]
        st.header(f":material/auto_stories: Every page ({len(pngs)} of {outcome.page_count})", divider="orange")
        for start in range(0, len(pngs), ALL_PAGES_COLUMNS):
            columns = st.columns(ALL_PAGES_COLUMNS)
            for number, (column, png) in enumerate(
                zip(columns, pngs[start : start + ALL_PAGES_COLUMNS]), start=start + 1
            ):
                column.image(png, caption=f"Page {number}", width="stretch", alt=f"Page {number} of the PDF")
