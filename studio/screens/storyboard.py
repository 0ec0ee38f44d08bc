"""Storyboard: write the story, cut it into pages, and illustrate every page.

Pictures are drawn by a job on the engine's worker (studio.actions); this page only submits, and a
fragment re-reads the project from storage every second while a job runs, so each picture appears
as soon as it is saved, whatever happens to this browser tab.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from functools import partial
from pathlib import Path

import streamlit as st

from core.errors import UserError
from engine.jobs import JobInfo
from engine.profiles import DEFAULT_PROFILE, PROFILES
from engine.prompts import DEFAULT_STYLE, STYLES
from engine.segment import count_words
from storage import ConflictError, PageView, ProjectView, StorageError
from studio import actions, state, ui
from studio.ui import Editing

MAX_NEW_CHARACTERS = 10  # empty rows the Characters box grows by before one is saved
COLUMNS = 3
BOARD_WINDOW = 24  # a long story's cards are drawn this many at a time (a multiple of COLUMNS)
PROMPT_PREVIEW_CHARS = 140
LIVE_EVERY_S = 0.05  # how soon the live fragment runs again after its wait
LIVE_WAIT_S = 0.3  # the longest it waits for the worker: a click queued behind it waits no longer
ENV_PROFILE = os.environ.get("STORYBOOK_PROFILE", "").strip()

lib = ui.library()
project = ui.load_current_project()

if project is None:
    st.title("Storyboard")
    ui.show_flash()
    with st.container(border=True):
        st.header("No story is open")
        st.markdown("Pick a story in the library, start a new one, or open the sample story to look around.")
        cols = st.columns(3)
        if cols[0].button("Start a new story", icon=":material/add:", type="primary") and ui.first_click("new"):
            with ui.guard():
                ui.start_new()
        if cols[1].button("Open the sample story", icon=":material/pets:") and ui.first_click("sample"):
            with ui.guard():
                ui.start_sample()
        cols[2].page_link(state.SCREEN_LIBRARY, label="Go to the library", icon=":material/local_library:")
    st.stop()

pid = project.id
ui.close_finished_menus()
ui.person_ran()
stale = ui.behind_another_tab(project)
edit = ui.editing(project)  # what every editor below saves against
base, gen = edit.base, edit.gen
style_key = project.style if project.style in STYLES else DEFAULT_STYLE
characters = tuple((c.name, c.description) for c in project.characters)

st.title(ui.plain(project.title))
pictures = sum(1 for s in project.pages if s.selected is not None)
byline = f"by {ui.plain(project.author)} · " if project.author else ""
st.caption(
    f"{byline}{ui.plural(len(project.pages), 'page')} · {ui.plural(pictures, 'picture')} · "
    f"{STYLES[style_key].label} · saved {ui.ago(project.updated)}"
)
ui.show_flash()


def _step(project_id: int, back: bool) -> None:
    """Undo (back) or redo the story's last edit; kept in the library, so it works after a refresh too."""
    with ui.guard(project_id):
        lib_ = ui.library()
        version = ui.base_version(lib_.get_project(project_id))  # after the story box's own save in this run
        view, message = (actions.undo if back else actions.redo)(lib_, project_id, version)
        ui.set_base_version(view)
        ui.flash("success", message)
        # Every box shows the restored words and settings, not what it held before.
        st.session_state[state.RELOAD_GEN] = ui.reload_gen() + 1


with st.container(horizontal=True, gap="small", vertical_alignment="center"):
    st.button(
        "Undo",
        icon=":material/undo:",
        key="history.undo",
        disabled=project.undo is None or stale,
        help=f"Take back: {project.undo}" if project.undo else "Nothing to undo yet",
        on_click=_step,
        args=(pid, True),
    )
    st.button(
        "Redo",
        icon=":material/redo:",
        key="history.redo",
        disabled=project.redo is None or stale,
        help=f"Bring back: {project.redo}" if project.redo else "Nothing to redo",
        on_click=_step,
        args=(pid, False),
    )
    if project.undo:
        st.caption(f"Last change: {ui.plain(project.undo)}")

if stale:
    st.warning(
        "This story was changed in another tab or window since you opened it here. Reload it to see "
        "the latest version; edits made here before reloading will not be saved.",
        icon=":material/refresh:",
    )
    st.button(
        "Reload the latest version",
        key="stale.reload",
        icon=":material/refresh:",
        on_click=ui.reload_project,
        args=(pid,),
    )

profile = ui.project_profile(project)
missing = actions.missing_models(profile, ("illustrator",)) if profile is not None else []
not_ready = actions.illustrate_ready(profile)  # None, or why Illustrate cannot work (in plain words)
if not actions.active_jobs(pid):  # while pictures are drawn for this story, the storyboard follows the job instead
    # Once the page has stood still for a moment, the story's picture model is loaded in the background (from disk
    # only): the first click is then as quick as the next. Not at once: loading takes the processor for a few
    # seconds, and a person typing or clicking should not feel it.
    warm = not_ready is None and bool(project.pages) and not stale
    ui.watch_project(project, on_idle=partial(actions.warm_up, profile) if warm else None)
if profile is not None and missing:
    ui.model_download(
        profile,
        f"Pages cannot be illustrated yet: the picture model ({ui.plain(missing[0][1])}) is missing.",
        tip="Or choose the **tiny** profile in Book details to try the studio offline (it draws noise).",
    )

# ------------------------------------------------------------------------------------------ story

st.header(":material/edit_note: Story", divider="orange")
# The story and, beside it, the Book details at a width their boxes read whole in; in a narrow window (or beside
# the open sidebar) the details go below the story instead of squeezing into a sliver.
story_row = st.container(horizontal=True, gap="large")
left, right = story_row.container(width="stretch"), story_row.container(width=380)


def _keep_story(project_id: int, key: str) -> None:
    """Save the story text each time its box loses focus, so a refresh or a closed tab loses at most what
    was typed since. Nothing is said here: when it cannot be kept (another tab changed the story, too long,
    a full disk) the caption below says why, and Save draft or Split into pages say it in full."""
    st.session_state.pop(state.STORY_NOT_KEPT, None)
    try:
        lib = ui.library()
        stored = lib.get_project(project_id)
        typed = st.session_state.get(key, stored.story_text)
        if not ui.based_on_followed(key, typed):
            # The box was given another tab's words while this browser still held typing on the words before:
            # saving it would replace that change unseen. Kept in the box, refused, said (as any stale edit).
            st.session_state.setdefault(state.BASE_VERSION, {})[project_id] = stored.version - 1
            raise ConflictError("The story was changed in another tab.")
        if typed.strip() != stored.story_text.strip():  # spaces at the ends are not an edit worth a step
            # Fetched before saving: a click that arrives meanwhile stops this run at its next st.* call, and
            # the version the save produced must still be recorded (see studio.ui.ledger).
            versions = st.session_state.setdefault(state.BASE_VERSION, {})
            drafts = st.session_state.setdefault(state.DRAFTS, {})
            saved = actions.save_draft(lib, project_id, ui.base_version(stored), typed)
            versions[project_id] = saved.version
            drafts[key] = typed
    except ConflictError:
        st.session_state[state.STORY_NOT_KEPT] = (project_id, "the story was changed in another tab")
    except UserError as exc:
        st.session_state[state.STORY_NOT_KEPT] = (project_id, exc.message.split(":")[0].rstrip(".").lower())


def _reference_status(character) -> str:
    if character.reference_path is None:
        return "No reference picture: its pages use the description."
    settings = character.reference_settings or {}
    if settings.get("seed") is not None:
        return f"Reference drawn by the app (seed {settings['seed']})."
    return "Reference: your own picture."


def _reference_done(message: str) -> None:
    ui.flash("toast", message)
    st.rerun()


def reference_popover(edit: Editing, live: ProjectView, character, i: int) -> None:
    """Draw, pick, upload or remove one character's reference picture."""
    name = character.name
    pop = st.popover(
        "Reference picture",
        icon=":material/portrait:",
        type="tertiary",
        key=f"pop.ref.{edit.project_id}.{i}",
        help=f"Give {name} a reference picture, so every page with {name} shows the same look",
        on_change="rerun",
    )
    if not pop.open:  # popover content is built only while it is open
        return
    with pop:
        busy = bool(actions.reference_jobs(edit.project_id))
        if st.button(
            "Draw one from the description",
            icon=":material/brush:",
            key=f"ref.draw.{i}",
            disabled=busy or bool(not_ready) or not character.description.strip(),
            help=not_ready
            or (
                f"Draws {actions.REFERENCE_CANDIDATES} pictures of {name} from the description, in the book's style; "
                "the best scored one becomes the reference and you can pick another."
                if character.description.strip()
                else f"Describe {name} first."
            ),
        ) and ui.first_click(f"ref.draw.{i}"):
            with ui.guard(edit.project_id):
                actions.draw_reference(edit.lib, edit.project_id, edit.base, name)
                ui.flash("info", f"Drawing {name}: the best picture becomes the reference when it is ready.")
                st.rerun()
        offered = actions.proposals(edit.project_id, name)
        if offered:
            st.caption(f"Drawn from the description. Pick the one that looks most like {ui.plain(name)}.")
            for start in range(0, len(offered), 3):
                cols = st.columns(3)
                for k, (col, proposal) in enumerate(zip(cols, offered[start : start + 3]), start=start):
                    with col:
                        st.image(proposal.png, width="stretch", alt=f"{name}, picture {k + 1}")
                        score = "" if proposal.score is None else f"CLIP {proposal.score:.1f}"
                        st.caption(" · ".join(x for x in (score, "in use" if proposal.chosen else "") if x) or " ")
                        if not proposal.chosen and st.button("Use this", key=f"ref.prop.{i}.{k}"):
                            with ui.guard(edit.project_id):
                                ui.set_base_version(actions.use_proposal(edit.lib, edit.project_id, edit.base, name, k))
                                _reference_done(f"{name}'s reference picture is the one you picked.")
        st.divider()
        choices = actions.story_pictures(live)
        if choices:
            labels = {picture_id: label for picture_id, label, _ in choices}
            picked = st.selectbox(
                "Use a picture from this story",
                options=list(labels),
                format_func=labels.get,
                key=f"ref.pick.{i}",
            )
            if st.button("Use this picture", icon=":material/photo:", key=f"ref.pick.go.{i}"):
                with ui.guard(edit.project_id):
                    ui.set_base_version(
                        actions.reference_from_picture(edit.lib, edit.project_id, edit.base, name, int(picked))
                    )
                    _reference_done(f"{name}'s reference picture is {labels[picked].removesuffix(' (in use)')}.")
        upload_gen = st.session_state.get(state.UPLOAD_GEN, 0)
        file = st.file_uploader(
            "Upload a picture (PNG, JPEG or WebP)",
            type=["png", "jpg", "jpeg", "webp"],
            max_upload_size=actions.MAX_PICTURE_MB,
            key=f"ref.upload.{i}.{upload_gen}",
        )
        if (
            st.button("Use the upload", icon=":material/upload:", key=f"ref.upload.go.{i}", disabled=file is None)
            and file is not None
        ):
            with ui.guard(edit.project_id):
                saved, notes = actions.upload_reference(
                    edit.lib, edit.project_id, edit.base, name, file.getvalue(), file.name
                )
                ui.set_base_version(saved)
                st.session_state[state.UPLOAD_GEN] = upload_gen + 1
                note = actions.character_note(profile, saved.characters[i]) if profile is not None else None
                _reference_done(
                    " ".join([f"{name}'s reference picture is your picture.", *notes, *([note] if note else [])])
                )
        if character.reference_path is not None:
            st.divider()
            if st.button("Remove the reference picture", icon=":material/delete:", key=f"ref.remove.{i}"):
                with ui.guard(edit.project_id):
                    ui.set_base_version(actions.remove_reference(edit.lib, edit.project_id, edit.base, name))
                    _reference_done(f"{name} has no reference picture now (Undo brings it back).")


def cast_sheet(edit: Editing, live: ProjectView) -> None:
    """The saved characters' reference pictures (the cast sheet), and how this profile uses them."""
    if not live.characters:
        return
    st.markdown("**:material/portrait: Reference pictures**")
    if profile is not None:
        st.caption(actions.profile_reference_note(profile))
    drawing = {job.meta.get("character") for job in actions.reference_jobs(live.id)}
    for i, character in enumerate(live.characters):
        cols = st.columns([1, 4], gap="small", vertical_alignment="center")
        with cols[0]:
            if character.reference_path is not None:
                st.image(ui.thumbnail(character.reference_path), width="stretch", alt=f"{character.name}'s reference")
            else:
                st.markdown(":material/person:")
        with cols[1]:
            st.markdown(f"**{ui.plain(character.name)}** · {_reference_status(character)}")
            note = actions.character_note(profile, character) if profile is not None else None
            if note:
                st.caption(ui.plain(note))
            if character.name in drawing:
                st.caption(":material/brush: Drawing a reference picture…")
            reference_popover(edit, live, character, i)


KEEP_HINT = "click outside the box (or press Ctrl+Enter)"


def _story_caption(sent: str, stored: str, why: str | None) -> str:
    """What the caption under the story box may claim. It knows only what the box has sent: a box sends its
    words when it loses focus (or on Ctrl+Enter), so typing or a paste since is not counted here; the caption
    speaks of what is saved, and says how the rest gets kept."""
    if sent.strip() != stored.strip():
        return f"{len(sent):,} characters · {count_words(sent):,} words · not saved yet" + (
            f": {ui.plain(why)}" if why else ""
        )
    if not stored.strip():
        return f"Nothing saved yet: write or paste your story, then {KEEP_HINT} to keep it."
    return (
        f"Saved: {len(stored):,} characters · {count_words(stored):,} words. "
        f"New typing is kept each time you {KEEP_HINT}."
    )


with left:
    # No fingerprint in this key: the box keeps its place (and the cursor) while its text is kept as typed.
    story_key = ui.follow_stored(state.widget_key("story", pid, gen=gen), project.story_text)
    st.text_area(
        "Your story",
        key=story_key,
        height=380,
        placeholder="The Lighthouse Fox\n\nOnce upon a time, on a windy island…",
        help="Write or paste your story. A short first line on its own becomes the book's title. "
        "It is kept as you go, each time you click outside the box.",
        on_change=_keep_story,
        args=(pid, story_key),
    )
    text = st.session_state[story_key]
    not_kept = st.session_state.get(state.STORY_NOT_KEPT)
    why = not_kept[1] if not_kept and not_kept[0] == pid else None
    st.caption(_story_caption(text, project.story_text, why))

    with st.container(border=True):
        st.markdown("**:material/groups: Characters**")
        st.caption(
            "Who the pictures should keep the same. A page that names a character gets its description in "
            "its picture prompt, so Pip is the same fox on every page."
        )
        # The stored characters, then empty rows: one more each time the last one gets a name.
        rows = list(characters)
        while len(rows) < len(characters) + MAX_NEW_CHARACTERS:
            rows.append(("", ""))
            if not st.session_state.get(
                state.widget_key("char.name", pid, len(rows) - 1, stored=characters, gen=gen), ""
            ):
                break
        typed: list[tuple[str, str]] = []
        for i, (name, description) in enumerate(rows):
            name_key = ui.init_widget(state.widget_key("char.name", pid, i, stored=characters, gen=gen), name)
            desc_key = ui.init_widget(state.widget_key("char.desc", pid, i, stored=characters, gen=gen), description)
            cols = st.columns([1, 2], gap="small")
            shown = "visible" if i == 0 else "collapsed"
            example = i == 0  # the first empty row of a story without characters shows an example
            cols[0].text_input(
                "Name", key=name_key, max_chars=200, label_visibility=shown, placeholder="Pip" if example else "Name"
            )
            cols[1].text_input(
                "Looks like",
                key=desc_key,
                max_chars=actions.MAX_DESCRIPTION_CHARS,
                label_visibility=shown,
                placeholder="a small red fox in a blue scarf" if example else "What they look like",
            )
            typed.append((st.session_state[name_key], st.session_state[desc_key]))
        if characters:
            st.caption("Clear a row to take that character out.")
        if st.button("Save characters", icon=":material/save:", key="characters.save"):
            with ui.guard(pid):
                saved = actions.save_characters(lib, pid, base, typed)
                ui.set_base_version(saved)
                ui.flash(
                    "success",
                    f"Saved {ui.plural(len(saved.characters), 'character')}. Redraw the pages that name them "
                    "to see them in the pictures."
                    if saved.characters
                    else "The story has no characters now.",
                )
                st.rerun()
        cast_sheet(edit, project)


def _save_detail(project_id: int, field: str, key: str) -> None:
    """What is shown is what is used: a book detail is saved the moment it is changed (one undo step)."""
    with ui.guard(project_id):
        lib_ = ui.library()
        version = ui.base_version(lib_.get_project(project_id))  # after an earlier change in this same run
        view = actions.save_detail(lib_, project_id, version, field, st.session_state[key])
        ui.set_base_version(view)
        ui.flash("success", actions.DETAIL_SAVED[field])


with right:
    with st.container(border=True):
        st.markdown("**:material/book: Book details**")
        title_key = ui.init_widget(state.widget_key("title", pid, stored=project.title, gen=gen), project.title)
        author_key = ui.init_widget(state.widget_key("author", pid, stored=project.author, gen=gen), project.author)
        setting_key = ui.init_widget(state.widget_key("setting", pid, stored=project.setting, gen=gen), project.setting)
        dedication_key = ui.init_widget(
            state.widget_key("dedication", pid, stored=project.dedication, gen=gen), project.dedication
        )
        closing_key = ui.init_widget(state.widget_key("closing", pid, stored=project.closing, gen=gen), project.closing)
        style_widget = ui.init_widget(state.widget_key("style", pid, stored=project.style, gen=gen), style_key)
        profile_widget = ui.init_widget(
            state.widget_key("profile", pid, stored=project.profile, gen=gen),
            project.profile
            if project.profile in PROFILES
            else (profile.name if profile is not None and profile.name in PROFILES else DEFAULT_PROFILE),
        )
        st.text_input("Title", key=title_key, on_change=_save_detail, args=(pid, "title", title_key))
        st.text_input(
            "Author",
            key=author_key,
            placeholder="Who wrote it (optional)",
            on_change=_save_detail,
            args=(pid, "author", author_key),
        )
        st.text_area(
            "Dedication",
            key=dedication_key,
            on_change=_save_detail,
            args=(pid, "dedication", dedication_key),
            height=68,
            max_chars=actions.MAX_DEDICATION_CHARS,
            placeholder="For Mia, who loves the sea (optional)",
            help="Printed on a page of its own after the cover.",
        )
        st.text_input(
            "Closing words",
            key=closing_key,
            on_change=_save_detail,
            args=(pid, "closing", closing_key),
            max_chars=actions.MAX_CLOSING_CHARS,
            placeholder=actions.language_closing_words(project),
            help="What the book's last page says. Left empty, it says “The End” in the story's language.",
        )
        st.text_input(
            "Where and when",
            key=setting_key,
            on_change=_save_detail,
            args=(pid, "setting", setting_key),
            max_chars=actions.MAX_SETTING_CHARS,
            placeholder="a windy island, long ago (optional)",
            help="Added to every picture's prompt, so all the pages share one place. Redraw pages to see it.",
        )
        st.selectbox(
            "Picture style",
            options=list(STYLES),
            key=style_widget,
            on_change=_save_detail,
            args=(pid, "style", style_widget),
            format_func=lambda k: STYLES[k].label,
            help="Added to every picture's prompt. Redraw pages to see a new style.",
        )
        styles = st.expander(
            "The styles as pictures", icon=":material/palette:", key="details.styles.open", on_change="rerun"
        )
        if styles.open:  # drawn only while open: eight pictures on every run would slow every edit down
            with styles:
                ui.style_gallery(st.session_state[style_widget], key="details.styles", columns=2)
        st.selectbox(
            "Models (profile)",
            options=list(PROFILES),
            key=profile_widget,
            on_change=_save_detail,
            args=(pid, "profile", profile_widget),
            format_func=actions.profile_label,
            help="The models that draw this story's pictures and write its words. New stories start "
            "with the profile chosen in Settings.",
        )
        st.caption(ui.plain(PROFILES[st.session_state[profile_widget]].description))
        if ENV_PROFILE:
            st.caption(
                f"STORYBOOK_PROFILE is set to '{ui.plain(ENV_PROFILE)}' on this computer, and it wins over "
                "the profile chosen here."
            )
        st.caption("Saved as you change them (Undo takes a change back).")

    with st.container(border=True):
        st.markdown("**:material/content_cut: Pages**")
        ui.init_widget(state.SPLIT_MODE, "sentences")
        ui.init_widget(state.SPLIT_SENTENCES, 2)
        ui.init_widget(state.SPLIT_WORDS, 40)
        mode = st.radio(
            "Cut the story into pages of",
            ["sentences", "words"],
            key=state.SPLIT_MODE,
            horizontal=True,
            format_func=lambda m: {"sentences": "a few sentences", "words": "about N words"}[m],
        )
        if mode == "sentences":
            st.number_input("Sentences per page", min_value=1, max_value=20, step=1, key=state.SPLIT_SENTENCES)
        else:
            st.number_input("Words per page", min_value=5, max_value=500, step=5, key=state.SPLIT_WORDS)
        with st.container(horizontal=True, gap="small"):
            split = st.button("Split into pages", icon=":material/content_cut:", type="primary", key="story.split")
            draft = st.button(
                "Save story",
                icon=":material/save:",
                key="story.draft",
                help="Keep the text and carry your edits onto the pages, without cutting the story again.",
            )
        st.caption(
            "Every picture stays with the words it was drawn for. A picture whose page leaves the story waits "
            "in the loose pictures tray below the pages; Undo takes any change back."
        )
        if split and ui.first_click("story.split"):
            with ui.guard(pid):
                sentences = int(st.session_state[state.SPLIT_SENTENCES]) if mode == "sentences" else None
                words = int(st.session_state[state.SPLIT_WORDS]) if mode == "words" else None
                outcome = actions.split_story(lib, pid, base, text, sentences=sentences, words=words)
                ui.set_base_version(outcome.project)
                ui.flash("success", outcome.message)
                st.rerun()
        if draft:
            with ui.guard(pid):
                sentences = int(st.session_state[state.SPLIT_SENTENCES]) if mode == "sentences" else None
                words = int(st.session_state[state.SPLIT_WORDS]) if mode == "words" else None
                outcome = actions.save_story_text(lib, pid, base, text, sentences=sentences, words=words)
                ui.set_base_version(outcome.project)
                ui.flash("success", "Saved your story." + (f" {outcome.message}" if outcome.pages else ""))
                st.rerun()
        if project.title_from_text and project.pages:
            line = project.story_text[: project.pages[0].start].strip()
            st.caption(f"The first line, “{ui.plain(line)}”, is the book's title, not a page.")
            if st.button(
                "Make the title line a page", icon=":material/title:", key="story.titlepage"
            ) and ui.first_click("story.titlepage"):
                with ui.guard(pid):
                    ui.set_base_version(actions.title_line_to_page(lib, pid, base))
                    ui.flash("success", f"“{line}” is the first page now; the book keeps its title.")
                    st.rerun()


# ------------------------------------------------------------------------------------- storyboard

st.header(":material/photo_library: Storyboard", divider="orange")
if not project.pages:
    st.info(
        "No pages yet. Write your story above and press **Split into pages**: every page gets its own picture.",
        icon=":material/content_cut:",
    )
    if project.loose:
        kept = sum(len(page.pictures) for page in project.loose)
        st.caption(
            f"{ui.plural(kept, 'picture')} from earlier pages {'is' if kept == 1 else 'are'} kept: split the story "
            "into pages, then put them on pages from the loose pictures tray (or press Undo)."
        )
    st.stop()

pages = project.pages
with_picture = [s for s in pages if s.pictures]
without = [s for s in pages if not s.pictures]
active_now = actions.active_jobs(pid)


def _draw_notes(live: ProjectView) -> str:
    """What a draw does beyond one picture a page, and what it could not do (said once, when it starts)."""
    if profile is None:
        return ""
    plan = actions.plan_drawing(live, profile)
    best = (
        f" Each page gets {plan.candidates} pictures; the best scored one becomes its picture."
        if plan.candidates > 1
        else ""
    )
    return best + "".join(f" {note}" for note in plan.notes)


# The button and the switch as wide as their words (never cut off); the caption takes the rest of the row, or
# goes below them in a narrow window.
bar_row = st.container(horizontal=True, vertical_alignment="center", gap="medium")
bar = [bar_row.container(width="content"), bar_row.container(width="content"), bar_row.container(width="stretch")]
ui.init_widget(state.REDO_ALL, False)
if not active_now and st.session_state.pop(state.REDO_ALL_DONE, False):
    st.session_state[state.REDO_ALL] = False  # "Redraw all" was for the job that just ended
redo = bar[1].toggle(
    "Redraw all",
    key=state.REDO_ALL,
    help="Also redraw pages that already have a picture. Unlocked pages get a new seed; locked pages keep theirs.",
)
if redo:
    label = f"Redraw all {ui.plural(len(pages), 'page')}"
elif without and with_picture:
    label = f"Illustrate {ui.plural(len(without), 'page')}"  # the caption beside it says which
else:
    label = f"Illustrate all {ui.plural(len(pages), 'page')}"


def _illustrate_all(project_id: int) -> None:
    """Start drawing the story's pages. A callback: the run it comes before draws the job at once, so a click
    costs one run of the page, not two (issue 16)."""
    if actions.active_jobs(project_id) or not ui.first_click("illustrate.all"):
        return
    redo = bool(st.session_state.get(state.REDO_ALL, False))
    with ui.guard(project_id):
        lib_ = ui.library()
        start = actions.illustrate_all(lib_, project_id, ui.base_version(ui.read_project(lib_, project_id)), redo=redo)
        ui.set_base_version(start.project)
        if redo and start.job_id is not None:
            st.session_state[state.REDO_ALL_DONE] = True
        if start.job_id is not None:
            ui.flash(
                "info",
                f"Drawing {ui.plural(len(start.drawing), 'quick draft' if start.project.drafts else 'picture')}; "
                "each appears here as soon as it "
                "is ready. You can keep editing, or leave: nothing is lost." + _draw_notes(start.project),
            )


bar[0].button(
    label,
    icon=":material/brush:",
    type="primary",
    key="illustrate.all",
    width="content",
    disabled=bool(active_now) or (not without and not redo) or bool(not_ready),
    help=not_ready,
    on_click=_illustrate_all,
    args=(pid,),
)


def _save_drafts(project_id: int, key: str) -> None:
    """The book's draft-or-final choice is saved the moment it is picked (one undo step)."""
    with ui.guard(project_id):
        lib_ = ui.library()
        version = ui.base_version(lib_.get_project(project_id))
        view = actions.set_drafts(lib_, project_id, version, bool(st.session_state[key]))
        ui.set_base_version(view)
        ui.flash(
            "success",
            "New pictures of this book start as quick drafts: finish the ones you like."
            if view.drafts
            else "New pictures of this book are drawn as final pictures.",
        )


def _drafts_caption(book_profile, recommended: bool | None) -> str:
    """What the two modes are with this profile, and what this computer favours."""
    steps = f"{ui.plural(book_profile.draft_steps, 'step')} and a quick decoder instead of {book_profile.steps}"
    words = f"A draft is {steps} steps and the full decoder."
    if recommended is True:
        return words + " This computer has no GPU: drafts are recommended here, where a final picture takes several "
        "times longer."
    if recommended is None and book_profile.draft_on_cpu:
        return words + " Without a GPU, drafts are recommended with these models."
    return words


def draft_choice(project: ProjectView, book_profile) -> None:
    """The book's choice between quick drafts first and final pictures, and "Finish all drafts (N)"."""
    drafts_key = ui.init_widget(state.widget_key("drafts", pid, stored=project.drafts, gen=gen), project.drafts)
    waiting = actions.draft_pages(project)
    row = st.columns([2.6, 1.2, 1.7], vertical_alignment="center")
    row[0].radio(
        "Draw pages as",
        options=[True, False],
        key=drafts_key,
        horizontal=True,
        on_change=_save_drafts,
        args=(pid, drafts_key),
        format_func=lambda d: "Quick drafts first" if d else "Final pictures",
        help="Drafts come quickly, so you can try ideas; finish the ones you keep, all at once or page by page. "
        "A page's Pictures menu draws either kind.",
    )
    if (
        waiting
        and row[1].button(
            f"Finish all drafts ({len(waiting)})",
            icon=":material/auto_fix_high:",
            key="finish.all",
            width="stretch",
            disabled=bool(active_now) or bool(not_ready),
            help=not_ready
            or "Each draft's own picture decoded in full detail: the picture you see, sharper. The drafts stay among "
            "the versions.",
        )
        and ui.first_click("finish.all")
    ):
        with ui.guard(pid):
            start = actions.finish_drafts(lib, pid)
            if start.job_id is not None:
                ui.flash(
                    "info",
                    f"Finishing {ui.plural(len(start.drawing), 'draft')}; each finished picture becomes its page's "
                    "new version, and the draft stays among the versions.",
                )
            st.rerun()
    if book_profile is not None:
        row[2].caption(_drafts_caption(book_profile, actions.drafts_recommended(book_profile)))


draft_choice(project, profile)


def _page_list(pages: list[PageView]) -> str:
    numbers = [str(s.position + 1) for s in pages]
    if len(numbers) > 8:
        return ", ".join(numbers[:8]) + f" and {len(numbers) - 8} more"
    return numbers[0] if len(numbers) == 1 else ", ".join(numbers[:-1]) + " and " + numbers[-1]


def _kept_caption(pages: list[PageView]) -> str:
    one = len(pages) == 1
    return (
        f"Page{'' if one else 's'} {_page_list(pages)} already {'has' if one else 'have'} a picture and "
        f"{'is' if one else 'are'} kept. Turn on “Redraw all” to redo {'it' if one else 'them'}."
    )


def _redo_caption(locked: list[PageView]) -> str:
    if not locked:
        return "Every page is drawn again with a new seed."
    one = len(locked) == 1
    return (
        f"Every page is drawn again with a new seed, except locked page{'' if one else 's'} "
        f"{_page_list(locked)}, which keep{'s' if one else ''} {'its' if one else 'their'} seed."
    )


with bar[2]:
    if active_now:
        st.caption("Pictures are being drawn for this story.")
    elif redo:
        st.caption(_redo_caption([s for s in pages if s.locked]))
    elif not without:
        st.caption(
            "Every page has a picture. Turn on “Redraw all” to draw them all again, or redraw single pages below."
        )
    elif with_picture:
        st.caption(_kept_caption(with_picture))
    else:
        st.caption("Each picture appears below as soon as it is ready.")


def _save_candidates(project_id: int, key: str) -> None:
    """Pictures per page is saved the moment it changes (one undo step)."""
    with ui.guard(project_id):
        lib_ = ui.library()
        version = ui.base_version(lib_.get_project(project_id))
        view = actions.set_pictures_per_page(lib_, project_id, version, int(st.session_state[key]))
        ui.set_base_version(view)
        ui.flash("toast", f"Each page's next draw makes {ui.plural(view.candidates, 'picture')}.")


def best_of_n_row(live: ProjectView) -> None:
    """The "Pictures per page" setting (best of N) and the book's CLIP score."""
    scoring_off = actions.scoring_note(profile) if profile is not None else None
    with st.container(horizontal=True, gap="medium", vertical_alignment="center"):
        key = ui.init_widget(state.widget_key("candidates", pid, stored=live.candidates, gen=gen), live.candidates)
        st.number_input(
            "Pictures per page",
            min_value=1,
            max_value=8,
            step=1,
            key=key,
            on_change=_save_candidates,
            args=(pid, key),
            width=160,
            help="Each draw makes this many pictures of a page, with different seeds, and keeps them all as "
            "versions; the one whose CLIP score is best becomes the page's picture (Pictures shows them side by "
            "side). More pictures take longer to draw.",
        )
        summary = actions.book_score(live)
        if summary["n"]:
            interval = f" (95 % interval {summary['low']:.1f}–{summary['high']:.1f})" if summary["n"] > 1 else ""
            models = f" · scored by {', '.join(summary['models'])}" if summary["models"] else ""
            st.caption(
                f"Book score: CLIP {summary['mean']:.1f}{interval} over {summary['n']} of "
                f"{ui.plural(summary['pages'], 'page')}{models}",
                help=actions.SCORE_HELP + " The interval is a 95 % bootstrap interval of the mean.",
            )
        if scoring_off:
            st.caption(ui.plain(scoring_off))


best_of_n_row(project)


def _drawing_outcome(last: JobInfo) -> None:
    if last.meta.get("finishing") and last.status.value == "done":
        st.success(
            f"Done: {ui.plural(last.results, 'draft')} finished; each draft stays among its page's versions.",
            icon=":material/celebration:",
        )
    elif last.status.value == "done":
        st.success(f"Done: {ui.plural(last.results, 'picture')} drawn and saved.", icon=":material/celebration:")
    elif last.status.value == "cancelled":
        kept = f"{ui.plural(last.results, 'picture')} drawn before that {'is' if last.results == 1 else 'are'} kept"
        st.info(f"Stopped. {kept}.", icon=":material/stop_circle:")
    else:
        st.error((last.error or "Drawing stopped.") + " Pictures already drawn are kept.", icon=":material/error:")


def job_panel(jobs: list[JobInfo]) -> None:
    ui.job_panel(jobs, stop_note="Stopping… every picture already drawn is kept.", outcome=_drawing_outcome)


def edit_popover(edit: Editing, page: PageView, n: int, auto_prompt: str) -> None:
    pop = st.popover(
        "Edit",
        icon=":material/edit:",
        key=f"pop.edit.{page.id}",
        type="tertiary",
        help="Change the text, the prompt or the seed",
        on_change="rerun",
    )
    if not pop.open:  # popover content is built only while it is open
        return
    with pop:
        text_key = ui.init_widget(state.widget_key("seg.text", page.id, stored=page.text, gen=edit.gen), page.text)
        prompt_key = ui.init_widget(
            state.widget_key("seg.prompt", page.id, stored=page.prompt_override, gen=edit.gen),
            page.prompt_override or "",
        )
        neg_key = ui.init_widget(
            state.widget_key("seg.neg", page.id, stored=page.negative_prompt, gen=edit.gen), page.negative_prompt or ""
        )
        seed_key = ui.init_widget(
            state.widget_key("seg.seed", page.id, stored=page.seed, gen=edit.gen),
            "" if page.seed is None else str(page.seed),
        )
        lock_key = ui.init_widget(state.widget_key("seg.lock", page.id, stored=page.locked, gen=edit.gen), page.locked)
        st.text_area("Page text", key=text_key, height=140)
        st.text_area(
            "Picture prompt",
            key=prompt_key,
            height=100,
            placeholder=auto_prompt,
            help="Leave empty to draw from the page text. The picture style is added for you.",
        )
        st.text_input(
            "Leave out of the picture",
            key=neg_key,
            placeholder="the usual: text, blur, watermarks…",
            help="A negative prompt; empty uses the style's own.",
        )
        st.text_input(
            "Seed",
            key=seed_key,
            placeholder="a new one is picked when drawing",
            help="The same seed and prompt draw the same picture again.",
        )
        st.toggle("Lock the seed", key=lock_key, help="“Illustrate all” keeps a locked page's seed.")
        cols = st.columns(2)
        save = cols[0].button("Save", icon=":material/save:", key=f"save.{page.id}", width="stretch")
        save_draw = cols[1].button(
            "Save and redraw",
            icon=":material/refresh:",
            key=f"savedraw.{page.id}",
            width="stretch",
            help="With the same seed, so only your edits change the picture.",
        )
        if (save or save_draw) and ui.first_click(f"save.{page.id}"):
            with ui.guard(edit.project_id):
                saved = actions.edit_page(
                    edit.lib,
                    page,
                    edit.base,
                    text=st.session_state[text_key],
                    prompt=st.session_state[prompt_key],
                    negative_prompt=st.session_state[neg_key],
                    seed=st.session_state[seed_key],
                    locked=st.session_state[lock_key],
                )
                if saved.project is not None:
                    ui.set_base_version(saved.project)
                if save_draw:
                    start = actions.regenerate(edit.lib, edit.project_id, page.id, saved.version, new_seed=False)
                    ui.set_base_version(start.project)
                    ui.flash("info", f"Saved page {n}; drawing it again with the same seed…")
                else:
                    ui.flash("toast", f"Saved page {n}." if saved.changed else f"Page {n} had no changes to save.")
                st.rerun()


def _download(picture, n: int, key: str, label: str = "") -> None:
    path = Path(picture.image_path)
    st.download_button(
        label,
        data=partial(path.read_bytes),
        icon=":material/download:",
        key=key,
        type="tertiary",
        file_name=f"page-{n:02d}-v{picture.version}{path.suffix}",
        on_click="ignore",
        mime={".png": "image/png", ".jpg": "image/jpeg", ".webp": "image/webp"}.get(path.suffix),
        help=f"Download version {picture.version} of this picture",
    )


def _version_details(picture) -> str:
    """What tells two versions apart: when, seed, prompt (own or automatic), style and models."""
    settings = picture.settings
    parts = [f"v{picture.version}", ui.ago(picture.created)]
    if picture.origin == "uploaded":
        parts.append("your upload")
    else:
        if settings.get("seed") is not None:
            parts.append(f"seed {settings['seed']}")
        for key, label in (("style", "style"), ("profile", "models")):
            if settings.get(key):
                parts.append(f"{label}: {settings[key]}")
    score = actions.clip_score(picture)
    if score is not None:
        parts.append(f"CLIP {score:.1f}")
    if actions.is_draft(picture):
        parts.append("draft")
    elif picture.meta.get("finished_from"):
        parts.append(f"finished from v{picture.meta['finished_from']}")
    line = " · ".join(str(p) for p in parts)
    prompt = settings.get("prompt")
    if prompt:
        line += f"  \n{'Your prompt' if settings.get('own_prompt') else 'Prompt'}: {ui.plain(_short(prompt))}"
    return line


def candidates_view(edit: Editing, page: PageView, n: int) -> None:
    """The pictures of the page's last draw of several, side by side with their scores, the chosen one marked."""
    group = actions.last_draw(page)
    if not group:
        return
    st.markdown(f"**The last draw: {ui.plural(len(group), 'picture')}**")
    st.caption(
        "Drawn together with different seeds; the one with the best CLIP score became the page's picture. "
        "Pick another if you like it better."
    )
    for start in range(0, len(group), 4):
        cols = st.columns(4)
        for col, picture in zip(cols, group[start : start + 4]):
            with col:
                st.image(
                    ui.thumbnail(picture.image_path), width="stretch", alt=f"Candidate {picture.meta['candidate']}"
                )
                score = actions.clip_score(picture)
                parts = [f"#{picture.meta.get('candidate')}"]
                if score is not None:
                    parts.append(f"CLIP {score:.1f}")
                if picture.meta.get("chosen"):
                    parts.append("best score")
                st.caption(" · ".join(parts), help=actions.SCORE_HELP)
                if picture.selected:
                    st.button("In use", key=f"cand.{picture.id}", icon=":material/check:", disabled=True)
                elif st.button("Use this", key=f"cand.{picture.id}", icon=":material/touch_app:"):
                    with ui.guard(edit.project_id):
                        ui.set_base_version(actions.choose_picture(edit.lib, picture.id, edit.base))
                        ui.flash(
                            "toast", f"Page {n} now uses picture #{picture.meta.get('candidate')} of its last draw."
                        )
                        st.rerun()
    st.divider()


NEW_KINDS = ((True, "Quick draft", ":material/bolt:"), (False, "Final picture", ":material/brush:"))


def new_version(edit: Editing, page: PageView, n: int) -> None:
    """A new picture for the page, as a quick draft or a final picture, whatever the book draws by default."""
    busy = page.id in actions.drawing_page_ids(edit.project_id)
    why = not_ready or ("Unlock the seed to draw with a new one." if page.locked else None)
    st.caption("A new picture with a new seed:")
    with st.container(horizontal=True, gap="small"):
        for kind, label, icon in NEW_KINDS:
            key = f"new.{'draft' if kind else 'final'}.{page.id}"
            if st.button(label, icon=icon, key=key, disabled=busy or bool(why), help=why) and ui.first_click(
                f"new.{page.id}"
            ):
                with ui.guard(edit.project_id):
                    start = actions.regenerate(edit.lib, edit.project_id, page.id, edit.base, draft=kind)
                    ui.set_base_version(start.project)
                    ui.flash("info", f"Drawing a {'quick draft' if kind else 'final picture'} for page {n}…")
                    st.rerun()


def pictures_popover(edit: Editing, page: PageView, n: int) -> None:
    """Every version of the page's picture: pick one, download or delete it, or bring your own."""
    count = len(page.pictures)
    pop = st.popover(
        "Pictures",
        icon=":material/photo_library:",
        type="tertiary",
        key=f"pop.pictures.{page.id}",
        help=f"Browse the {ui.plural(count, 'version')} of this picture, pick one, or use your own",
        on_change="rerun",
    )
    if not pop.open:  # popover content is built only while it is open
        return
    with pop:
        new_version(edit, page, n)
        candidates_view(edit, page, n)
        if count:
            st.caption(f"Every picture page {n} has had, newest first. Pick the one the book uses.")
        newest_first = list(reversed(page.pictures))
        for start in range(0, len(newest_first), 2):
            cols = st.columns(2)
            for col, picture in zip(cols, newest_first[start : start + 2]):
                with col:
                    st.image(ui.thumbnail(picture.image_path), width="stretch", alt=f"Version {picture.version}")
                    st.caption(_version_details(picture))
                    with st.container(horizontal=True, gap="xsmall", vertical_alignment="center"):
                        if picture.selected:
                            st.button("In use", key=f"use.{picture.id}", icon=":material/check:", disabled=True)
                        elif st.button("Use this", key=f"use.{picture.id}", icon=":material/touch_app:"):
                            with ui.guard(edit.project_id):
                                ui.set_base_version(actions.choose_picture(edit.lib, picture.id, edit.base))
                                ui.flash("toast", f"Page {n} now uses version {picture.version}.")
                                st.rerun()
                        _download(picture, n, key=f"dlv.{picture.id}")
                        if not picture.selected and st.button(
                            "",
                            key=f"delill.{picture.id}",
                            icon=":material/delete:",
                            type="tertiary",
                            help=f"Put version {picture.version} in the bin (Undo, or bring it back from the bin)",
                        ):
                            with ui.guard(edit.project_id):
                                ui.set_base_version(actions.discard_picture(edit.lib, picture.id, edit.base))
                                ui.flash("toast", f"Version {picture.version} of page {n} is in the bin.")
                                st.rerun()
        if count:
            st.divider()
        upload_gen = st.session_state.get(state.UPLOAD_GEN, 0)
        file = st.file_uploader(
            "Use your own picture (PNG, JPEG or WebP)",
            type=["png", "jpg", "jpeg", "webp"],
            max_upload_size=actions.MAX_PICTURE_MB,
            key=f"upload.{page.id}.{upload_gen}",
        )
        if (
            st.button("Use this picture", icon=":material/upload:", key=f"upload.use.{page.id}", disabled=file is None)
            and file is not None
            and ui.first_click(f"upload.use.{page.id}")
        ):
            with ui.guard(edit.project_id):
                _, notes = actions.upload_picture(edit.lib, page.id, file.getvalue(), file.name)
                st.session_state[state.UPLOAD_GEN] = upload_gen + 1
                ui.flash("toast", " ".join([f"Page {n} now uses your picture.", *notes]))
                st.rerun()


def more_popover(edit: Editing, live: ProjectView, page: PageView, n: int, is_last: bool) -> None:
    pop = st.popover(
        "Page",
        icon=":material/content_cut:",
        key=f"pop.more.{page.id}",
        help="Split, merge, move or delete pages",
        type="tertiary",
        on_change="rerun",
    )
    if not pop.open:  # popover content is built only while it is open
        return
    with pop:
        points = actions.split_points(page.text)
        if points:
            choice = st.selectbox(
                "Start a new page at",
                options=list(range(len(points))),
                key=f"splitat.{page.id}",
                format_func=lambda i: f"“{points[i][1]}”",
            )
            if st.button(
                "Split this page in two", icon=":material/content_cut:", key=f"split.{page.id}"
            ) and ui.first_click(f"split.{page.id}"):
                with ui.guard(edit.project_id):
                    ui.set_base_version(actions.split_page(edit.lib, page.id, points[choice][0], edit.base))
                    ui.flash("toast", f"Split page {n} in two; the first part keeps its pictures.")
                    st.rerun()
        else:
            st.caption("This page is too short to split.")
        if not is_last:
            if st.button(
                "Merge with the next page", icon=":material/merge:", key=f"merge.{page.id}"
            ) and ui.first_click(f"merge.{page.id}"):
                with ui.guard(edit.project_id):
                    ui.set_base_version(actions.merge_pages(edit.lib, page.id, edit.base))
                    ui.flash("toast", f"Merged pages {n} and {n + 1}; the pictures of both are kept as versions.")
                    st.rerun()
        from_pictures = actions.told_from_pictures(live)
        why = "A story told from pictures follows their order." if from_pictures else None
        with st.container(horizontal=True, gap="small"):
            for step, label, icon in (
                (-1, "Move earlier", ":material/arrow_back:"),
                (1, "Move later", ":material/arrow_forward:"),
            ):
                if st.button(
                    label,
                    icon=icon,
                    key=f"move.{step}.{page.id}",
                    help=why,
                    disabled=from_pictures or (n == 1 if step < 0 else is_last),
                ) and ui.first_click(f"move.{page.id}"):
                    with ui.guard(edit.project_id):
                        ui.set_base_version(actions.move_page(edit.lib, edit.project_id, page.id, edit.base, step))
                        ui.flash(
                            "toast",
                            f"Moved page {n} {'earlier' if step < 0 else 'later'}: it is page "
                            f"{n + step} now, with its pictures.",
                        )
                        st.rerun()
        if st.session_state.get(state.CONFIRM_PAGE_DELETE) == page.id:
            pictures = ui.plural(len(page.pictures), "picture")
            with_pictures = f", with its {pictures}" if page.pictures else ""
            st.warning(
                f"Take page {n} out of the story{with_pictures}? Its words leave the story text too; "
                "the page waits in the bin (Undo, or bring it back from there).",
                icon=":material/warning:",
            )
            with st.container(horizontal=True, gap="small"):
                if st.button(
                    "Delete the page", icon=":material/delete:", type="primary", key=f"pagedel.yes.{page.id}"
                ) and ui.first_click(f"pagedel.{page.id}"):
                    with ui.guard(edit.project_id):
                        ui.set_base_version(actions.delete_page(edit.lib, edit.project_id, page.id, edit.base))
                        st.session_state[state.CONFIRM_PAGE_DELETE] = None
                        ui.flash("toast", f"Page {n} is in the bin{with_pictures}. Undo brings it back.")
                        st.rerun()
                if st.button("Keep it", key=f"pagedel.no.{page.id}"):
                    st.session_state[state.CONFIRM_PAGE_DELETE] = None
                    st.rerun()
        elif st.button(
            "Delete this page…",
            icon=":material/delete:",
            key=f"pagedel.{page.id}",
            help=why,
            disabled=from_pictures or len(live.pages) == 1,
        ):
            st.session_state[state.CONFIRM_PAGE_DELETE] = page.id
            st.rerun()


def _short(prompt: str) -> str:
    if len(prompt) <= PROMPT_PREVIEW_CHARS:
        return prompt
    return prompt[:PROMPT_PREVIEW_CHARS].rsplit(" ", 1)[0] + " …"


def picture_area(page: PageView, drawing: str | None) -> None:
    """A card's picture, its version line and, while a job draws it, whether it is being drawn or waits."""
    if page.selected is not None:
        st.image(
            ui.thumbnail(page.selected.image_path),
            width="stretch",
            alt=f"Picture for page {page.position + 1}: {page.text[:120]}",
        )
        seed = page.selected.settings.get("seed")
        who = "your upload" if page.selected.origin == "uploaded" else f"seed {seed}"
        st.caption(f"Version {page.selected.version} of {len(page.pictures)} · {who}")
    if drawing == "drawing":
        st.info("Drawing a new picture…", icon=":material/brush:")
    elif drawing == "waiting":
        st.info("Waiting for its turn…", icon=":material/hourglass_top:")
    elif page.selected is None:
        with st.container(height=160, horizontal_alignment="center", vertical_alignment="center"):
            st.markdown("### :material/image:")
            st.caption("No picture yet")


def _score_badge(picture) -> None:
    score = actions.clip_score(picture) if picture is not None else None
    if score is not None:
        st.badge(f"CLIP {score:.1f}", icon=":material/analytics:", color="gray", help=actions.SCORE_HELP)


def _redraw_page(project_id: int, page_id: int, n: int, new_seed: bool) -> None:
    """Draw one page again (New picture, Redraw). A callback, like _illustrate_all: the run after it already shows
    the page being drawn."""
    action = f"{'new' if new_seed else 'same'}.{page_id}"
    if page_id in actions.drawing_page_ids(project_id) or not ui.first_click(action):
        return
    with ui.guard(project_id):
        lib_ = ui.library()
        version = ui.base_version(ui.read_project(lib_, project_id))
        start = actions.regenerate(lib_, project_id, page_id, version, new_seed=new_seed)
        ui.set_base_version(start.project)
        ui.flash(
            "info",
            f"Drawing page {n} again {'with a new seed' if new_seed else 'with the same seed'}…"
            + _draw_notes(start.project),
        )


def _finish_page(project_id: int, picture_id: int, n: int) -> None:
    """Finish a page's draft (a callback, like _redraw_page)."""
    if not ui.first_click(f"finish.{picture_id}"):
        return
    with ui.guard(project_id):
        actions.finish_drafts(ui.library(), project_id, picture_ids=[picture_id])
        ui.flash("info", f"Finishing the draft of page {n}…")


def card(edit: Editing, live: ProjectView, page: PageView, drawing: set[int], slots: dict[int, object]) -> None:
    n = page.position + 1
    busy = page.id in drawing
    characters = tuple((c.name, c.description) for c in live.characters)
    auto_prompt = ui.prompt_preview(page.text, live.style, characters, live.setting)
    with st.container(border=True, height="stretch"):
        # The body grows to the row's tallest card, so every card's buttons line up at the bottom.
        with st.container(height="stretch"):
            with st.container(horizontal=True, vertical_alignment="center", gap="small"):
                st.markdown(f"**Page {n}**", width="content")
                if page.locked:
                    st.badge("seed locked", icon=":material/lock:", color="orange")
                _score_badge(page.selected)
                shown = page.selected
                drawn_prompt = shown.settings.get("prompt") if shown is not None else None
                # The badge and the prompt describe the version shown (its own settings), not the page's next one.
                own = bool(shown.settings.get("own_prompt")) if drawn_prompt else bool(page.prompt_override)
                if own:
                    st.badge("own prompt", icon=":material/edit:", color="blue")
                if page.selected is not None and page.selected.origin == "uploaded":
                    st.badge("your picture", icon=":material/upload:", color="green")
                if actions.is_draft(page.selected):
                    st.badge(
                        "Draft",
                        icon=":material/bolt:",
                        color="gray",
                        help="A quick draft: Finish this picture decodes it in full detail.",
                    )
                if page.selected is not None and page.selected.words_changed:
                    st.badge(
                        "words changed since this picture",
                        icon=":material/edit_note:",
                        color="violet",
                        help="Redraw the page to match its new words, or keep the picture as it is.",
                    )
            if busy:
                # While a job draws it, the live fragment below redraws this part alone, as pictures arrive.
                slots[page.id] = st.empty()  # filled by follow_jobs, in this same run and as pictures arrive
            else:
                picture_area(page, None)
            st.markdown(ui.plain(page.text))
            upcoming = page.prompt_override or auto_prompt
            st.caption(f"{'Your prompt' if own else 'Prompt'}: {ui.plain(_short(drawn_prompt or upcoming))}")
            if drawn_prompt and " ".join(drawn_prompt.split()) != " ".join(upcoming.split()):
                st.caption(f"Next picture: {ui.plain(_short(upcoming))}")
        with st.container(horizontal=True, gap="small", vertical_alignment="center"):
            st.button(
                "New picture",
                icon=":material/casino:",
                key=f"new.{page.id}",
                disabled=busy or page.locked or bool(not_ready),
                help=not_ready
                or (
                    "Unlock the seed to draw with a new one."
                    if page.locked
                    else f"Draw again with a new seed, as a {'quick draft' if live.drafts else 'final picture'} "
                    "(the book's choice; the Pictures menu draws either)."
                ),
                on_click=_redraw_page,
                args=(edit.project_id, page.id, n, True),
            )
            st.button(
                "Redraw",
                icon=":material/refresh:",
                key=f"same.{page.id}",
                disabled=busy or page.selected is None or bool(not_ready),
                help=not_ready
                or (
                    "Draw again with the same seed (and your edited prompt)."
                    if page.selected is not None
                    else "This page has no picture yet: use New picture."
                ),
                on_click=_redraw_page,
                args=(edit.project_id, page.id, n, False),
            )
            if actions.is_draft(page.selected):
                st.button(
                    "Finish this picture",
                    icon=":material/auto_fix_high:",
                    key=f"finish.{page.id}",
                    disabled=busy or bool(not_ready),
                    help=not_ready
                    or "This draft's own picture decoded in full detail: the picture you see, sharper. The draft "
                    "stays among the versions.",
                    on_click=_finish_page,
                    args=(edit.project_id, page.selected.id, n),
                )
        with st.container(horizontal=True, gap="small", vertical_alignment="center"):
            edit_popover(edit, page, n, auto_prompt)
            pictures_popover(edit, page, n)
            more_popover(edit, live, page, n, is_last=page.position == len(live.pages) - 1)
            if page.selected is not None:
                _download(page.selected, n, key=f"dl.{page.id}")


def tray(edit: Editing, live: ProjectView) -> None:
    """The loose-pictures tray: pictures whose page left the story, with its words; put one on a page, bring the
    page back, or discard it."""
    if not live.loose:
        return
    count = sum(len(page.pictures) for page in live.loose)
    st.header(f":material/inventory_2: Loose pictures ({count})", divider="orange")
    st.caption(
        "Their pages left the story when its words changed. Nothing here is lost: put a picture on a page, "
        "bring its page back, or discard it."
    )
    numbers = {page.id: page.position + 1 for page in live.pages}
    for page in live.loose:
        with st.container(border=True):
            st.markdown(f"*“{ui.plain(page.text[:300])}”*")
            if st.button(
                "Bring these words back as a page",
                icon=":material/undo:",
                key=f"tray.back.{page.id}",
                disabled=actions.told_from_pictures(live),
            ) and ui.first_click(f"tray.back.{page.id}"):
                with ui.guard(edit.project_id):
                    ui.set_base_version(actions.bring_back_page(edit.lib, edit.project_id, page.id, edit.base))
                    ui.flash("success", "The page is back in the story, with its pictures.")
                    st.rerun()
            cols = st.columns(4)
            for col, picture in zip(itertools.cycle(cols), page.pictures):
                with col:
                    st.image(ui.thumbnail(picture.image_path), width="stretch", alt=f"Version {picture.version}")
                    target = st.selectbox(
                        "Put it on page",
                        options=list(numbers),
                        format_func=lambda i: f"Page {numbers[i]}",
                        key=f"tray.to.{picture.id}",
                    )
                    with st.container(horizontal=True, gap="xsmall"):
                        if st.button("Put it there", key=f"tray.put.{picture.id}", icon=":material/move_down:"):
                            with ui.guard(edit.project_id):
                                view = actions.place_picture(edit.lib, picture.id, target, edit.base)
                                ui.set_base_version(view)
                                ui.flash("success", f"Page {numbers[target]} now has this picture.")
                                st.rerun()
                        if st.button("", key=f"tray.bin.{picture.id}", icon=":material/delete:", help="Discard"):
                            with ui.guard(edit.project_id):
                                ui.set_base_version(actions.discard_picture(edit.lib, picture.id, edit.base))
                                ui.flash("success", "The picture is in the bin.")
                                st.rerun()


def bin_section(edit: Editing, live: ProjectView) -> None:
    """The story's bin: deleted pages and discarded pictures, until the bin is emptied."""
    if live.bin is None or live.bin.empty:
        return
    items = len(live.bin.pages) + len(live.bin.pictures)
    with st.expander(f":material/delete: Bin ({items} item{'s' if items != 1 else ''})"):
        for page in live.bin.pages:
            cols = st.columns([4, 1], vertical_alignment="center")
            cols[0].markdown(f"Page: *“{ui.plain(page.text[:200])}”* · {ui.plural(len(page.pictures), 'picture')}")
            if cols[1].button("Bring back", key=f"bin.page.{page.id}", icon=":material/restore_from_trash:"):
                with ui.guard(edit.project_id):
                    ui.set_base_version(actions.bring_back_page(edit.lib, edit.project_id, page.id, edit.base))
                    ui.flash("success", "The page is back in the story, with its pictures.")
                    st.rerun()
        for picture in live.bin.pictures:
            cols = st.columns([1, 3, 1], vertical_alignment="center")
            cols[0].image(ui.thumbnail(picture.image_path), width=96, alt=f"Discarded version {picture.version}")
            cols[1].caption(f"Version {picture.version} · seed {picture.settings.get('seed', '—')}")
            if cols[2].button("Bring back", key=f"bin.pic.{picture.id}", icon=":material/restore_from_trash:"):
                with ui.guard(edit.project_id):
                    ui.set_base_version(actions.restore_picture(edit.lib, picture.id, edit.base))
                    ui.flash("success", "The picture is back.")
                    st.rerun()
        megabytes = live.bin.files_bytes / 2**20
        if st.session_state.get(state.CONFIRM_EMPTY_BIN) == edit.project_id:
            st.warning(
                f"Remove everything in the bin for good (about {megabytes:.1f} MB)? This cannot be undone.",
                icon=":material/warning:",
            )
            with st.container(horizontal=True, gap="small"):
                if st.button("Empty the bin", type="primary", key="bin.empty.yes") and ui.first_click("bin.empty"):
                    with ui.guard(edit.project_id):
                        view, message = actions.empty_bin(edit.lib, edit.project_id, edit.base)
                        ui.set_base_version(view)
                        st.session_state[state.CONFIRM_EMPTY_BIN] = None
                        ui.flash("success", message)
                        st.rerun()
                if st.button("Keep it", key="bin.empty.no"):
                    st.session_state[state.CONFIRM_EMPTY_BIN] = None
                    st.rerun()
        elif st.button(
            f"Empty the bin… (frees about {megabytes:.1f} MB)", key="bin.empty", icon=":material/delete_forever:"
        ):
            st.session_state[state.CONFIRM_EMPTY_BIN] = edit.project_id
            st.rerun()


def _window_label(windows: list[tuple[int, int]], i: int) -> str:
    first, end = windows[i]
    return f"Pages {first + 1}–{end}" if end - first > 1 else f"Page {first + 1}"


def shown_pages(project_id: int, pages: list[PageView]) -> list[PageView]:
    """The pages whose cards this run draws: all of them, or for a long story BOARD_WINDOW at a time, picked above
    the cards. A card costs a few dozen elements; a 120-page story drawn whole took a third of a second a run, and
    every click and picture waited for it (issue 16)."""
    if len(pages) <= BOARD_WINDOW:
        return pages
    windows = [(start, min(start + BOARD_WINDOW, len(pages))) for start in range(0, len(pages), BOARD_WINDOW)]
    key = f"sb.window.{project_id}"
    if st.session_state.get(key, 0) >= len(windows):  # the story got shorter
        st.session_state[key] = len(windows) - 1
    i = st.selectbox(
        "Show pages",
        options=list(range(len(windows))),
        key=key,
        format_func=partial(_window_label, windows),
        help=f"A long story's cards are shown {BOARD_WINDOW} pages at a time.",
    )
    first, end = windows[i]
    st.caption(f"Showing pages {first + 1}–{end} of {len(pages)}.")
    return pages[first:end]


def board(edit: Editing) -> tuple[object, dict[int, object]] | None:
    """The page cards, as stored now. While a job draws, returns the job panel's place and the places of the cards
    it draws, which follow_jobs (a fragment) then redraws alone as their pictures arrive."""
    try:
        live = ui.read_project(edit.lib, edit.project_id)  # the view read at the top, unless a picture came since
    except StorageError as exc:
        st.error(exc.message, icon=":material/error:")
        return None
    edit = dataclasses.replace(edit, base=ui.base_version(live))  # as behind_another_tab() left it above
    jobs = actions.project_jobs(edit.project_id)
    panel = st.empty()
    drawing = actions.drawing_page_ids(edit.project_id)
    slots: dict[int, object] = {}
    pages = shown_pages(edit.project_id, live.pages)
    for start in range(0, len(pages), COLUMNS):
        columns = st.columns(COLUMNS)
        for column, page in zip(columns, pages[start : start + COLUMNS]):
            with column:
                card(edit, live, page, drawing, slots)
    tray(edit, live)
    bin_section(edit, live)
    if any(not j.finished for j in jobs):
        return panel, slots
    with panel.container():
        job_panel(jobs)
    return None


def _live_key(project_id: int) -> str:
    return f"sb.live_revision.{project_id}"


def _ended_key(project_id: int) -> str:
    return f"sb.live_ended.{project_id}"


def follow_jobs(edit: Editing, panel, slots: dict[int, object]) -> None:
    """While this story's pictures are drawn: wait (briefly) for the worker to report a change, then redraw the
    progress and the cards being drawn, and nothing else. When the last job ends, its last pictures and its outcome
    are drawn here first, and the full run that redraws the rest of the page (its buttons) comes on the next tick:
    the person sees the picture one full run sooner (issue 16).

    Each wait is short (LIVE_WAIT_S), so a click is never held up for long behind it."""
    if st.session_state.pop(_ended_key(edit.project_id), False):
        ui.rerun_to_follow()  # the job ended and its pictures are on screen: one full run redraws the page once
    worker = ui.worker()
    key = _live_key(edit.project_id)
    since = st.session_state.get(key)
    revision = worker.wait_for_change(since, LIVE_WAIT_S) if since is not None else worker.revision
    st.session_state[key] = revision
    jobs = actions.project_jobs(edit.project_id)
    if not any(not j.finished for j in jobs):
        st.session_state.pop(key, None)
        st.session_state[_ended_key(edit.project_id)] = True
    with panel.container():
        job_panel(jobs)
    drawing = actions.drawing_page_ids(edit.project_id)
    try:
        pages = {page.id: page for page in edit.lib.get_pages(edit.project_id, list(slots))}
    except StorageError:
        return
    first_waiting = next((page_id for page_id in _drawing_order(jobs) if page_id in drawing), None)
    for page_id, slot in slots.items():
        page = pages.get(page_id)
        if page is None:
            continue
        state_now = None if page_id not in drawing else ("drawing" if page_id == first_waiting else "waiting")
        with slot.container():
            picture_area(page, state_now)


def _drawing_order(jobs: list[JobInfo]) -> list[int]:
    """The pages of the unfinished jobs, in the order the worker draws them."""
    order: list[int] = []
    for job in jobs:
        if not job.finished:
            done = job.results // max(1, int(job.meta.get("candidates", 1)))  # every candidate is a result
            ids = list(job.meta.get("page_ids", ()))
            order.extend(ids[done:])
    return order


following = board(edit)
if following is not None:  # pictures are being drawn: follow them as they arrive
    st.session_state.pop(_live_key(pid), None)  # this run drew everything: the live part starts from here
    st.session_state.pop(_ended_key(pid), None)
    st.fragment(follow_jobs, run_every=LIVE_EVERY_S)(edit, *following)
