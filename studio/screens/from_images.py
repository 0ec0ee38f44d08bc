"""From images: upload pictures, put them in order, and get a story told from them, one passage a picture.

The pictures are saved at once in a new project (studio.actions), and one job on the engine's worker
describes them and writes the story into that project; while the job runs, a live fragment draws
each passage as soon as it is saved (ui.live_news). Each passage can then be written again alone,
edited by hand, or its picture drawn anew; the storyboard and the export page work on the project unchanged.
"""

from __future__ import annotations

import streamlit as st

from core.limits import (
    DEFAULT_AGE,
    DEFAULT_TONE,
    DEFAULT_WORDS,
    MAX_AGE,
    MAX_WORDS,
    MIN_AGE,
    MIN_WORDS,
    TONES,
)
from core.requests import check_picture_count
from engine.errors import InputError
from engine.jobs import JobInfo
from storage import PageView, ProjectView, StorageError
from studio import actions, state, ui
from studio.ui import Editing

THUMB_MIN_REM = 12  # the narrowest a picture card gets: its Leave out button reads whole

project = ui.load_current_project()
told_from_pictures = actions.told_from_pictures(project)

st.title(":material/photo_library: From images")
ui.show_flash()


# ------------------------------------------------------------------------------------ new story


def _move(position: int, step: int) -> None:
    order = st.session_state.get(state.IMAGES_ORDER, [])
    other = position + step
    if 0 <= position < len(order) and 0 <= other < len(order):
        order[position], order[other] = order[other], order[position]


def _leave_out(position: int) -> None:
    order = st.session_state.get(state.IMAGES_ORDER, [])
    if 0 <= position < len(order):
        st.session_state.setdefault(state.IMAGES_LEFT_OUT, []).append(order.pop(position))


def _put_back(file_id: str) -> None:
    left = st.session_state.get(state.IMAGES_LEFT_OUT, [])
    if file_id in left:
        left.remove(file_id)
        st.session_state.setdefault(state.IMAGES_ORDER, []).append(file_id)  # it comes back at the end of the story


def _set_new(value: bool) -> None:
    st.session_state[state.IMAGES_NEW] = value


def new_story_form() -> None:
    st.markdown(
        "Upload 1 to 12 pictures: photos of a day out, drawings, a pet's adventures. The studio "
        "looks at each one and writes a short passage for it, in the order you choose."
    )
    try:
        profile = actions.current_profile()
        missing = actions.missing_models(profile, ("captioner", "storyteller"))
    except InputError as exc:
        profile, missing = None, []
        st.error(exc.message, icon=ui.ERROR_ICON)
    if profile is not None and missing:
        ui.model_download(
            profile,
            "Stories cannot be told from pictures yet: the models that read pictures and "
            f"write stories ({ui.plain(', '.join(ref for _, ref in missing))}) are missing.",
            tip="Or choose the **tiny** profile in Settings to try the studio offline (it writes nonsense).",
        )
    gen = st.session_state.get(state.IMAGES_UPLOAD_GEN, 0)
    files = (
        st.file_uploader(
            "Your pictures (PNG, JPEG or WebP)",
            # No type filter: the browser would refuse other files with a faint note inside their chips; here
            # every file reaches the studio's loader and a refused one is named with its reason below.
            accept_multiple_files=True,
            max_upload_size=actions.MAX_PICTURE_MB,
            key=f"images.upload.{gen}",
        )
        or []
    )

    # Each upload is read once through the hardened loader; its thumbnail, notes or refusal are kept.
    read: dict = st.session_state.setdefault(state.IMAGES_READ, {})
    by_id = {f.file_id: f for f in files}
    for file_id in list(read):
        if file_id not in by_id:
            del read[file_id]
    for f in files:
        if f.file_id not in read:
            read[f.file_id] = actions.read_picture(f.getvalue(), f.name)
    good = [f.file_id for f in files if read[f.file_id].ok]
    refused = [f.file_id for f in files if not read[f.file_id].ok]
    left_out = [fid for fid in st.session_state.get(state.IMAGES_LEFT_OUT, []) if fid in good]
    st.session_state[state.IMAGES_LEFT_OUT] = left_out
    kept = [fid for fid in good if fid not in left_out]
    order = [fid for fid in st.session_state.get(state.IMAGES_ORDER, []) if fid in kept]
    order += [fid for fid in kept if fid not in order]
    st.session_state[state.IMAGES_ORDER] = order

    if refused or left_out:
        # Every file that is not in the story, in one place: refused ones with the reason, left-out ones with
        # a way back. The uploader takes any file, so a refused one (an SVG, a GIF) arrives here to be named.
        with st.container(border=True, key="images.not_used"):
            st.markdown(
                f"**:material/hide_image: Not in the story: {ui.plural(len(refused) + len(left_out), 'file')}**"
            )
            for fid in refused:
                st.error(ui.plain(read[fid].error), icon=":material/block:")
            if left_out:
                with st.container(horizontal=True, gap="small", vertical_alignment="center"):
                    st.caption(f"Left out of the story: {ui.plural(len(left_out), 'picture')}.", width="content")
                    for fid in left_out:
                        st.button(
                            f"Put back {ui.plain(read[fid].name)}",
                            icon=":material/undo:",
                            key=f"images.putback.{fid}",
                            type="tertiary",
                            on_click=_put_back,
                            args=(fid,),
                        )
    if files:
        st.caption(
            f"{ui.plural(len(good), 'picture')} of {ui.plural(len(files), 'file')} can be used"
            + (f"; {len(refused)} cannot (see above)." if refused else ".")
        )
    too_many = None  # too many pictures is said here at once (and Write waits); none at all, when Write is clicked
    if order:
        try:
            check_picture_count(len(order))
        except InputError as exc:
            too_many = exc.message
            st.error(too_many, icon=":material/error:")

    if order:
        st.header(":material/reorder: The pictures, in story order", divider="orange")
        st.caption(
            "The story follows this order: move a picture earlier or later with its arrows, or leave it "
            "out of the story."
        )
        # As many to a row as fit (ui.card_grid): four columns cut the buttons to "E…" and "L…" at 800 px.
        with ui.card_grid("images-order", THUMB_MIN_REM):
            for position in range(len(order)):
                picture = read[order[position]]
                with st.container(border=True):
                    st.image(
                        picture.thumbnail,
                        caption=f"{position + 1}. {picture.name}",
                        width="stretch",
                        alt=f"Picture {position + 1}: {picture.name}",
                    )
                    st.caption(f"{picture.size[0]} x {picture.size[1]} pixels")
                    for note in picture.notes:
                        st.caption(f":material/info: {ui.plain(note)}")
                    with st.container(horizontal=True, gap="small"):
                        st.button(
                            "Earlier",
                            icon=":material/arrow_back:",
                            key=f"images.earlier.{position}",
                            help="Move earlier in the story",
                            disabled=position == 0,
                            on_click=_move,
                            args=(position, -1),
                        )
                        st.button(
                            "Later",
                            icon=":material/arrow_forward:",
                            key=f"images.later.{position}",
                            help="Move later in the story",
                            disabled=position == len(order) - 1,
                            on_click=_move,
                            args=(position, 1),
                        )
                        st.button(
                            "Leave out",
                            icon=":material/close:",
                            key=f"images.leave.{position}",
                            help="Leave this picture out of the story",
                            on_click=_leave_out,
                            args=(position,),
                        )

    st.header(":material/tune: How the story should be", divider="orange")
    # Defaults through value=/index=, never through Session State: a number box whose value was put in Session
    # State before it first showed could show, and later send back, its minimum in the browser while the story
    # was written with the default (the storyboard's "Sentences per page" did so).
    st.text_area(
        "Hints for the storyteller (optional)",
        value="",
        key=state.IMAGES_HINTS,
        height=90,
        max_chars=1000,
        placeholder="Names of the people or pets, the place, what happened: "
        "“Our dog Pip, at Grandma's by the sea, finds a crab.”",
    )
    cols = st.columns([2, 1, 1])  # the tone names its feeling in words: give it room
    cols[0].selectbox(
        "Tone",
        options=list(TONES),
        index=list(TONES).index(DEFAULT_TONE),
        key=state.IMAGES_TONE,
        format_func=lambda k: f"{k.capitalize()}: {TONES[k]}",
    )
    cols[1].number_input(
        "Reader's age",
        min_value=MIN_AGE,
        max_value=MAX_AGE,
        value=DEFAULT_AGE,
        step=1,
        key=state.IMAGES_AGE,
        help="Younger readers get shorter sentences and simpler words.",
    )
    cols[2].number_input(
        "Words per picture",
        min_value=MIN_WORDS,
        max_value=MAX_WORDS,
        value=DEFAULT_WORDS,
        step=5,
        key=state.IMAGES_WORDS,
        help="About how long each picture's passage is.",
    )
    if st.button(
        "Write the story",
        icon=":material/auto_stories:",
        type="primary",
        key="images.write",
        disabled=too_many is not None,
        help=too_many,
    ) and ui.first_click("images.write"):
        with ui.guard():
            # The usable pictures in the chosen order; refused files go along so they are named again.
            if left_out and not order:
                raise InputError("Every picture is left out of the story: put one back to tell a story from it.")
            pictures = [(by_id[fid].getvalue(), by_id[fid].name) for fid in order + refused]
            start = actions.start_story_from_images(
                ui.library(),
                pictures,
                hints=st.session_state[state.IMAGES_HINTS],
                tone=st.session_state[state.IMAGES_TONE],
                age=int(st.session_state[state.IMAGES_AGE]),
                words_per_picture=int(st.session_state[state.IMAGES_WORDS]),
            )
            ui.set_current_project(start.project)
            st.session_state[state.IMAGES_UPLOAD_GEN] = gen + 1
            st.session_state[state.IMAGES_READ] = {}
            st.session_state[state.IMAGES_ORDER] = []
            st.session_state[state.IMAGES_LEFT_OUT] = []
            st.session_state[state.IMAGES_NEW] = False
            count = len(start.project.pages)
            ui.flash(
                "info",
                f"Saved your {ui.plural(count, 'picture')} in a new story. The studio is looking at "
                "them and writing one passage for each; you can leave this page, nothing is lost.",
            )
            for sentence in start.refused:
                ui.flash("warning", f"Left out: {ui.plain(sentence)}")
            st.rerun()


if not told_from_pictures or st.session_state.get(state.IMAGES_NEW):
    if told_from_pictures:
        st.button(
            f"Back to “{project.title}”",
            icon=":material/arrow_back:",
            key="images.back",
            on_click=_set_new,
            args=(False,),
        )
    new_story_form()
    st.stop()


# ------------------------------------------------------------------------------------ the story

pid = project.id
stale = ui.behind_another_tab(project)
edit = ui.editing(project)  # what every editor below saves against
polling = bool(actions.active_story_jobs(pid) or actions.active_jobs(pid))
if not polling:
    ui.watch_project(project)  # while a job runs for this story, the story panel below polls instead

settings = project.story_settings or {}
request = settings.get("request") or {}
written = isinstance(settings.get("story"), dict)

st.header(ui.plain(project.title), anchor=False)
facts = [
    ui.plural(len(project.source_images), "picture"),
    str(request.get("tone", DEFAULT_TONE)).capitalize(),
    f"for age {request.get('age', DEFAULT_AGE)}",
    f"about {request.get('words_per_picture', DEFAULT_WORDS)} words a picture",
]
if written:
    facts.append(f"seed {settings.get('seed')}")
st.caption(" · ".join(facts) + f" · saved {ui.ago(project.updated)}")
if request.get("hints"):
    st.caption(f"Hints: {ui.plain(request['hints'])}")

with st.container(horizontal=True, gap="small"):
    if st.button("Open in the storyboard", icon=":material/auto_stories:", key="images.storyboard"):
        ui.open_project(project)
    st.page_link(
        state.SCREEN_EXPORT, label="Make the book", icon=":material/print:", query_params={state.QP_PROJECT: str(pid)}
    )
    st.button(
        "Start another story from pictures",
        icon=":material/add_photo_alternate:",
        key="images.another",
        on_click=_set_new,
        args=(True,),
    )

if stale:
    ui.stale_notice(pid, "images.stale.reload")
ui.project_profile(project)  # one line when the story's own profile no longer exists

METRICS = (
    (
        "caption_coverage",
        "Pictures covered",
        "{:.0%}".format,
        "Of the words the picture reader used for the pictures (dog, beach…), the share the story uses too.",
    ),
    (
        "type_token_ratio",
        "Word variety",
        "{:.2f}".format,
        "Different words divided by all words: higher means the story repeats itself less.",
    ),
    (
        "repeated_trigram_rate",
        "Repeated phrases",
        "{:.0%}".format,
        "Share of three-word phrases that occur more than once: lower is better.",
    ),
    (
        "flesch_kincaid_grade",
        "Reading grade",
        ui.reading_grade,
        "Flesch-Kincaid school grade: about 1 to 3 suits children learning to read.",
    ),
)


def _story_outcome(last: JobInfo) -> None:
    retold = last.meta.get("action") == "retell"
    if last.status.value == "done":
        st.success(
            "Done: the passage was written again." if retold else "Done: the story is written and saved.",
            icon=":material/celebration:",
        )
    elif last.status.value == "cancelled":
        st.info(
            "Stopped. Your pictures are kept; write the story again whenever you like.", icon=":material/stop_circle:"
        )
    else:
        st.error((last.error or "Writing stopped.") + " Your pictures are kept.", icon=":material/error:")


def job_panel(jobs: list[JobInfo]) -> None:
    ui.job_panel(
        jobs,
        stop_note="Stopping… your pictures and every word already saved are kept.",
        outcome=_story_outcome,
        outcome_kind=actions.KIND_STORY,
    )


# The story panel's buttons act in callbacks: a callback runs before the run its click starts, so a live run that
# draws nothing (story_panel, while a job runs) never loses a click. Each asks for a full run after it (CLICKED):
# the page around the panel (whether it follows a job) changes with what the click started; not after an error, which
# ui.guard shows in this run.


def _clicked() -> None:
    st.session_state[state.IMAGES_CLICKED] = True


def _act(project_id: int, write, kind: str, message: str | None) -> None:
    """`write(lib, version)` on the story as this tab last saw it; keep the project it returns, say `message`."""
    with ui.guard(project_id):
        lib = ui.library()
        ui.set_base_version(write(lib, ui.base_version(ui.read_project(lib, project_id))))
        if message:
            ui.flash(kind, message)
        _clicked()


def _write_again(project_id: int, action: str, note: str | None, *, new_seed: bool = False, simpler: bool = False):
    if ui.first_click(action):
        _act(
            project_id,
            lambda lib, base: (
                actions.write_story_again(lib, project_id, base, new_seed=new_seed, simpler=simpler).project
            ),
            "info",
            note,
        )


def _save_passage(project_id: int, page_id: int, key: str, n: int) -> None:
    words = st.session_state[key]
    _act(
        project_id,
        lambda lib, base: actions.edit_passage(lib, project_id, page_id, base, words),
        "success",
        f"Saved the words for picture {n}.",
    )


def _retell(project_id: int, page_id: int, n: int) -> None:
    if ui.first_click(f"retell.{page_id}"):
        _act(
            project_id,
            lambda lib, base: actions.retell_passage(lib, project_id, page_id, base).project,
            "info",
            f"Writing the words for picture {n} again…",
        )


def _illustrate_anew(project_id: int, page_id: int, n: int) -> None:
    if page_id in actions.drawing_page_ids(project_id) or not ui.first_click(f"illustrate.{page_id}"):
        return
    _act(
        project_id,
        lambda lib, base: actions.regenerate(lib, project_id, page_id, base, new_seed=True).project,
        "info",
        f"Drawing a new picture for picture {n}; yours is kept as version 1.",
    )


def metrics_block(whole: dict, edit: Editing, age: int, busy: bool) -> None:
    with st.container(border=True):
        st.markdown("**:material/query_stats: How the story reads**")
        columns = st.columns(len(METRICS))
        for column, (name, label, fmt, explanation) in zip(columns, METRICS):
            with column:
                st.metric(label, fmt(whole[name]), help=explanation)
                st.caption(explanation)
        missing = whole.get("caption_words_missing") or []
        if missing:
            shown = ", ".join(missing[:12]) + (" …" if len(missing) > 12 else "")
            st.caption(f"Words from the pictures the story does not use: {ui.plain(shown)}")
        grade = whole.get("flesch_kincaid_grade")
        if actions.grade_too_hard(grade, age):
            st.warning(
                f"This story reads at school grade {ui.reading_grade(grade)}, hard for a {age}-year-old reader "
                f"(about grade {actions.expected_grade(age):.0f} suits them): long sentences or long words.",
                icon=":material/school:",
            )
            st.button(
                "Write it again in simpler words",
                icon=":material/child_care:",
                key="images.simpler",
                type="primary",
                disabled=busy,
                help="Every passage is written again, asking for short sentences and simple words; "
                "words you edited by hand are replaced.",
                on_click=_write_again,
                args=(edit.project_id, "images.simpler", "Writing the whole story again in simpler words…"),
                kwargs={"simpler": True},
            )


def edit_popover(edit: Editing, page: PageView, n: int, busy: bool) -> None:
    with st.popover("Edit", icon=":material/edit:", key=f"pop.passage.{page.id}", disabled=busy):
        key = ui.init_widget(state.widget_key("passage", page.id, stored=page.text, gen=edit.gen), page.text)
        st.text_area(f"The words for picture {n}", key=key, height=160)
        st.button(
            "Save",
            icon=":material/save:",
            key=f"passage.save.{page.id}",
            on_click=_save_passage,
            args=(edit.project_id, page.id, key, n),
        )


def passage_row(
    edit: Editing,
    live: ProjectView,
    page: PageView,
    metrics: dict | None,
    writing: set[int],
    busy: set[int],
    drawing: set[int],
    done: bool,
) -> None:
    """`writing`: pages still waiting for their words; `busy`: every page of a story job still running."""
    n = page.position + 1
    source = live.source_images[page.position] if page.position < len(live.source_images) else None
    busy_words, busy_picture = page.id in busy, page.id in drawing
    with st.container(border=True):
        left, right = st.columns([2, 3], gap="medium")
        with left:
            picture = page.selected.image_path if page.selected is not None else (source.image_path if source else None)
            if picture is not None:
                st.image(str(picture), width="stretch", alt=f"Picture {n}")
            if page.selected is not None:
                seed = page.selected.settings.get("seed")
                who = "your picture" if page.selected.origin == "uploaded" else f"drawn, seed {seed}"
                st.caption(f"Version {page.selected.version} of {len(page.pictures)} · {who}")
            if busy_picture:
                st.info("Drawing a new picture…", icon=":material/brush:")
        with right:
            st.markdown(f"**Picture {n}**")
            if page.id in writing:
                # Each passage is saved as soon as it is written; until then the old words are not shown.
                st.info("Writing these words…", icon=":material/edit_note:")
                st.caption("The words appear here as soon as they are written.")
            else:
                st.markdown(ui.plain(page.text))
            if source is not None:
                seen = source.caption or "not described yet"
                st.caption(f":material/visibility: The picture reader saw: “{ui.plain(seen)}”")
            if metrics is not None:
                st.caption(
                    f"Uses {metrics['caption_coverage']:.0%} of its picture's words · "
                    f"word variety {metrics['type_token_ratio']:.2f} · reading grade "
                    f"{ui.reading_grade(metrics['flesch_kincaid_grade'])}"
                )
            with st.container(horizontal=True, gap="small"):
                st.button(
                    "Write again",
                    icon=":material/refresh:",
                    key=f"retell.{page.id}",
                    disabled=busy_words or not done or bool(busy),
                    help="Write the words for this picture again; the others stay as they are.",
                    on_click=_retell,
                    args=(edit.project_id, page.id, n),
                )
                edit_popover(edit, page, n, busy_words)
                st.button(
                    "Illustrate anew",
                    icon=":material/brush:",
                    key=f"illustrate.{page.id}",
                    disabled=busy_picture,
                    help="Draw a new picture for these words with the picture model; your "
                    "picture stays as an older version.",
                    on_click=_illustrate_anew,
                    args=(edit.project_id, page.id, n),
                )


def _live_key(project_id: int) -> str:
    return f"images.live.{project_id}"


def _jobs(project_id: int) -> list[JobInfo]:
    return sorted(actions.story_jobs(project_id) + actions.project_jobs(project_id), key=lambda j: j.created)


def story_panel(edit: Editing, polling: bool) -> None:
    """The passages, read fresh from storage. While `polling` (a job runs for this story) it is a live fragment
    (ui.live_news): each run waits on the worker and draws when a passage or a picture is saved or the progress
    moves, and sends nothing when nothing changed; its buttons act in callbacks, so no click is lost then."""
    pid = edit.project_id
    if st.session_state.pop(state.IMAGES_CLICKED, False):
        # A button here started or saved something, and only this fragment ran: the whole page follows it.
        st.rerun()
    key, since, shown = _live_key(pid), 0, ()
    if polling:
        since = ui.live_news(key)
        jobs = _jobs(pid)
        if not any(not j.finished for j in jobs):
            ui.rerun_to_follow()  # the jobs ended: a full run redraws the page and stops following
        try:
            stamp: object = edit.lib.project_stamp(pid)
        except StorageError:
            stamp = None  # the read below says what is wrong
        states, bars = ui.jobs_shown(jobs)
        shown = ((stamp, states), bars)
        ui.live_unchanged(key, since, shown)
    try:
        live = edit.lib.get_project(pid)
    except StorageError as exc:
        st.error(exc.message, icon=":material/error:")
        return
    jobs = _jobs(pid)
    job_panel(jobs)
    busy = actions.story_page_ids(pid)
    writing = actions.writing_page_ids(pid) & busy
    drawing = actions.drawing_page_ids(pid)
    live_written = isinstance((live.story_settings or {}).get("story"), dict)
    if not live_written and not busy:
        with st.container(border=True):
            st.warning(
                "The story has not been written yet: writing it stopped, or the studio was restarted "
                "while it ran. Your pictures are saved.",
                icon=":material/edit_off:",
            )
            st.button(
                "Write the story",
                icon=":material/auto_stories:",
                type="primary",
                key="images.rewrite",
                on_click=_write_again,
                args=(pid, "images.rewrite", None),
            )
    whole, each = actions.story_report(live)
    if live_written:
        age = int(((live.story_settings or {}).get("request") or {}).get("age", DEFAULT_AGE))
        metrics_block(whole, edit, age, bool(busy))
    for page, metrics in zip(live.pages, each):
        passage_row(edit, live, page, metrics if live_written else None, writing, busy, drawing, live_written)
    if live_written:
        with st.expander("Write the whole story again"):
            st.caption(
                "Every passage is written again from the same pictures and captions; words you edited "
                "by hand are replaced."
            )
            cols = st.columns(2)
            cols[0].button(
                "Same seed",
                icon=":material/replay:",
                key="images.again.same",
                disabled=bool(busy),
                help="The same settings and seed write the same story again.",
                on_click=_write_again,
                args=(pid, "images.again", "Writing the whole story again…"),
            )
            cols[1].button(
                "New seed",
                icon=":material/casino:",
                key="images.again.new",
                disabled=bool(busy),
                on_click=_write_again,
                args=(pid, "images.again", "Writing the whole story again…"),
                kwargs={"new_seed": True},
            )
    if polling:
        ui.live_drawn(key, since, shown)


# This run draws the panel whole: following starts from it, and a click's callback needs no further full run.
st.session_state.pop(_live_key(pid), None)
st.session_state.pop(state.IMAGES_CLICKED, None)
st.fragment(story_panel, run_every=ui.LIVE_EVERY_S if polling else None)(edit, polling)
