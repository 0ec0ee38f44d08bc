"""The story and the book: the story box and its caption, Book details, cutting the story into pages, and the row
that illustrates them all (with the book's drafts choice and pictures per page)."""

from __future__ import annotations

import os

import streamlit as st

from core.errors import UserError
from core.limits import MAX_CANDIDATES
from engine.profiles import DEFAULT_PROFILE, PROFILES
from engine.prompts import DEFAULT_STYLE, STYLES
from engine.segment import count_words
from storage import ConflictError, PageView, ProjectView
from studio import actions, state, ui
from studio.screens.storyboard.common import draw_notes
from studio.ui import Editing


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


KEEP_HINT = "click outside the box (or press Ctrl+Enter)"
SENTENCES_PER_PAGE = 2  # the Pages box's defaults (actions.split_story's too)
WORDS_PER_PAGE = 40


def _page_size(mode: str) -> tuple[int | None, int | None]:
    """(sentences, words) per page as the Pages box says, for split_story and save_story_text."""
    if mode == "sentences":
        return int(st.session_state.get(state.SPLIT_SENTENCES, SENTENCES_PER_PAGE)), None
    return None, int(st.session_state.get(state.SPLIT_WORDS, WORDS_PER_PAGE))


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


def story_box(project: ProjectView, gen: int) -> str:
    """The story's text box and what its caption may claim; returns the words the box holds."""
    # No fingerprint in this key: the box keeps its place (and the cursor) while its text is kept as typed.
    story_key = ui.follow_stored(state.widget_key("story", project.id, gen=gen), project.story_text)
    st.text_area(
        "Your story",
        key=story_key,
        height=380,
        placeholder="The Lighthouse Fox\n\nOnce upon a time, on a windy island…",
        help="Write or paste your story. A short first line on its own becomes the book's title. "
        "It is kept as you go, each time you click outside the box.",
        on_change=_keep_story,
        args=(project.id, story_key),
    )
    text = st.session_state[story_key]
    not_kept = st.session_state.get(state.STORY_NOT_KEPT)
    why = not_kept[1] if not_kept and not_kept[0] == project.id else None
    st.caption(_story_caption(text, project.story_text, why))
    return text


def _save_detail(project_id: int, field: str, key: str) -> None:
    """What is shown is what is used: a book detail is saved the moment it is changed (one undo step)."""
    with ui.guard(project_id):
        lib_ = ui.library()
        version = ui.base_version(lib_.get_project(project_id))  # after an earlier change in this same run
        view = actions.save_detail(lib_, project_id, version, field, st.session_state[key])
        ui.set_base_version(view)
        ui.flash("success", actions.DETAIL_SAVED[field])


def book_details(project: ProjectView, profile, gen: int) -> None:
    """Title, author, dedication, closing words, setting, picture style and models: each saved as it changes."""
    style_key = project.style if project.style in STYLES else DEFAULT_STYLE
    with st.container(border=True):
        st.markdown("**:material/book: Book details**")
        title_key = ui.init_widget(state.widget_key("title", project.id, stored=project.title, gen=gen), project.title)
        author_key = ui.init_widget(
            state.widget_key("author", project.id, stored=project.author, gen=gen), project.author
        )
        setting_key = ui.init_widget(
            state.widget_key("setting", project.id, stored=project.setting, gen=gen), project.setting
        )
        dedication_key = ui.init_widget(
            state.widget_key("dedication", project.id, stored=project.dedication, gen=gen), project.dedication
        )
        closing_key = ui.init_widget(
            state.widget_key("closing", project.id, stored=project.closing, gen=gen), project.closing
        )
        # The style and the models through index=, never through Session State: a selectbox given its value there
        # before it first showed could show its first option in the browser while the server held the stored one.
        # Their keys change with the stored value, so a value stored elsewhere comes as a new widget showing it.
        style_widget = state.widget_key("style", project.id, stored=project.style, gen=gen)
        profile_widget = state.widget_key("profile", project.id, stored=project.profile, gen=gen)
        profile_name = ui.starts_from(
            profile_widget,
            project.profile
            if project.profile in PROFILES
            else (profile.name if profile is not None and profile.name in PROFILES else DEFAULT_PROFILE),
        )
        st.text_input("Title", key=title_key, on_change=_save_detail, args=(project.id, "title", title_key))
        st.text_input(
            "Author",
            key=author_key,
            placeholder="Who wrote it (optional)",
            on_change=_save_detail,
            args=(project.id, "author", author_key),
        )
        st.text_area(
            "Dedication",
            key=dedication_key,
            on_change=_save_detail,
            args=(project.id, "dedication", dedication_key),
            height=68,
            max_chars=actions.MAX_DEDICATION_CHARS,
            placeholder="For Mia, who loves the sea (optional)",
            help="Printed on a page of its own after the cover.",
        )
        st.text_input(
            "Closing words",
            key=closing_key,
            on_change=_save_detail,
            args=(project.id, "closing", closing_key),
            max_chars=actions.MAX_CLOSING_CHARS,
            placeholder=actions.language_closing_words(project),
            help="What the book's last page says. Left empty, it says “The End” in the story's language.",
        )
        st.text_input(
            "Where and when",
            key=setting_key,
            on_change=_save_detail,
            args=(project.id, "setting", setting_key),
            max_chars=actions.MAX_SETTING_CHARS,
            placeholder="a windy island, long ago (optional)",
            help="Added to every picture's prompt, so all the pages share one place. Redraw pages to see it.",
        )
        st.selectbox(
            "Picture style",
            options=list(STYLES),
            index=list(STYLES).index(ui.starts_from(style_widget, style_key)),
            key=style_widget,
            on_change=_save_detail,
            args=(project.id, "style", style_widget),
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
            index=list(PROFILES).index(profile_name),
            key=profile_widget,
            on_change=_save_detail,
            args=(project.id, "profile", profile_widget),
            format_func=actions.profile_label,
            help="The models that draw this story's pictures and write its words. New stories start "
            "with the profile chosen in Settings.",
        )
        st.caption(ui.plain(PROFILES[st.session_state[profile_widget]].description))
        env_profile = os.environ.get("STORYBOOK_PROFILE", "").strip()  # read each run, as it may change
        if env_profile:
            st.caption(
                f"This studio was started to use the “{ui.plain(env_profile)}” models for every story (its "
                "STORYBOOK_PROFILE setting), so they draw this one whatever is chosen here."
            )
        st.caption("Saved as you change them (Undo takes a change back).")


def pages_box(edit: Editing, project: ProjectView, text: str) -> None:
    """How the story is cut into pages, Split into pages and Save story (of the words in the story box)."""
    with st.container(border=True):
        st.markdown("**:material/content_cut: Pages**")
        # Defaults through value=, not Session State: a number box whose value was put in Session State before
        # it first showed could show, and split with, its minimum (1 sentence a page) in the browser, and jump
        # back to 2 later, so the next split cut the story differently (seen in test_browser).
        mode = st.radio(
            "Cut the story into pages of",
            ["sentences", "words"],
            index=0,
            key=state.SPLIT_MODE,
            horizontal=True,
            format_func=lambda m: {"sentences": "a few sentences", "words": "about N words"}[m],
        )
        if mode == "sentences":
            st.number_input(
                "Sentences per page",
                min_value=1,
                max_value=20,
                value=SENTENCES_PER_PAGE,
                step=1,
                key=state.SPLIT_SENTENCES,
            )
        else:
            st.number_input(
                "Words per page", min_value=5, max_value=500, value=WORDS_PER_PAGE, step=5, key=state.SPLIT_WORDS
            )
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
            with ui.guard(edit.project_id):
                sentences, words = _page_size(mode)
                outcome = actions.split_story(
                    edit.lib, edit.project_id, edit.base, text, sentences=sentences, words=words
                )
                ui.set_base_version(outcome.project)
                ui.flash("success", outcome.message)
                st.rerun()
        if draft:
            with ui.guard(edit.project_id):
                sentences, words = _page_size(mode)
                outcome = actions.save_story_text(
                    edit.lib, edit.project_id, edit.base, text, sentences=sentences, words=words
                )
                ui.set_base_version(outcome.project)
                ui.flash("success", "Saved your story." + (f" {outcome.message}" if outcome.pages else ""))
                st.rerun()
        if project.title_from_text and project.pages:
            line = project.story_text[: project.pages[0].start].strip()
            if " ".join(line.split()) == " ".join(project.title.split()):
                st.caption(f"The first line, “{ui.plain(line)}”, is the book's title, not a page.")
            else:  # the title was changed since: the line would be printed nowhere
                st.warning(
                    f"The first line, “{ui.plain(line)}”, is not printed in the book: it was taken as the "
                    f"title, and the title is now “{ui.plain(project.title)}”. Make it a page to keep it in "
                    "the book, or delete it from the story.",
                    icon=":material/title:",
                )
            if st.button(
                "Make the title line a page", icon=":material/title:", key="story.titlepage"
            ) and ui.first_click("story.titlepage"):
                with ui.guard(edit.project_id):
                    ui.set_base_version(actions.title_line_to_page(edit.lib, edit.project_id, edit.base))
                    ui.flash("success", f"“{line}” is the first page now; the book keeps its title.")
                    st.rerun()


def _illustrate_all(project_id: int, profile) -> None:
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
                "is ready. You can keep editing, or leave: nothing is lost." + draw_notes(start.project, profile),
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
    steps = ui.plural(book_profile.draft_steps, "drawing step")
    words = f"A quick draft takes {steps} instead of {book_profile.steps}, with a rougher finish."
    if recommended is True:
        return words + " This computer has no graphics card to draw with, so drafts are recommended: here a final "
        "picture takes several times longer."
    if recommended is None and book_profile.draft_on_cpu:
        return words + " Without a graphics card, drafts are recommended with these models."
    return words


def draft_choice(edit: Editing, project: ProjectView, book_profile, not_ready: str | None, active_now) -> None:
    """The book's choice between quick drafts first and final pictures, and "Finish all drafts (N)"."""
    # The stored choice through index=, never through Session State (a radio given it there before it first showed
    # could show its first option in the browser); the key changes with the stored choice.
    drafts_key = state.widget_key("drafts", edit.project_id, stored=project.drafts, gen=edit.gen)
    drafts_index = [True, False].index(ui.starts_from(drafts_key, bool(project.drafts)))
    waiting = actions.draft_pages(project)
    # The choice and the button as wide as their words; the caption takes the rest of the row, or goes below them in
    # a narrow window (columns squeezed it to a sliver at 800 px).
    line = st.container(horizontal=True, vertical_alignment="center", gap="medium")
    row = [line.container(width="content"), line.container(width="content"), line.container(width="stretch")]
    row[0].radio(
        "Draw pages as",
        options=[True, False],
        index=drafts_index,
        key=drafts_key,
        horizontal=True,
        on_change=_save_drafts,
        args=(edit.project_id, drafts_key),
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
            disabled=bool(active_now) or bool(not_ready),
            help=not_ready
            or "Each draft finished in full detail: the same picture you see, sharper. The drafts stay among the "
            "versions.",
        )
        and ui.first_click("finish.all")
    ):
        with ui.guard(edit.project_id):
            start = actions.finish_drafts(edit.lib, edit.project_id)
            if start.job_id is not None:
                ui.flash(
                    "info",
                    f"Finishing {ui.plural(len(start.drawing), 'draft')}; each finished picture becomes its page's "
                    "new version, and the draft stays among the versions.",
                )
            st.rerun()
    if book_profile is not None:
        row[2].caption(_drafts_caption(book_profile, actions.drafts_recommended(book_profile)))


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


def illustrate_row(edit: Editing, project: ProjectView, profile, not_ready: str | None, active_now) -> None:
    """Illustrate all (or Redraw all), the book's drafts choice, and a caption on what a click will draw."""
    pages = project.pages
    with_picture = [s for s in pages if s.pictures]
    without = [s for s in pages if not s.pictures]
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
    bar[0].button(
        label,
        icon=":material/brush:",
        type="primary",
        key="illustrate.all",
        width="content",
        disabled=bool(active_now) or (not without and not redo) or bool(not_ready),
        help=not_ready,
        on_click=_illustrate_all,
        args=(edit.project_id, profile),
    )
    draft_choice(edit, project, profile, not_ready, active_now)
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


def best_of_n_row(edit: Editing, live: ProjectView, profile) -> None:
    """The "Pictures per page" setting (best of N) and the book's CLIP score."""
    scoring_off = actions.scoring_note(profile) if profile is not None else None
    with st.container(horizontal=True, gap="medium", vertical_alignment="center"):
        # The stored number through value=, never through Session State (a number box given it there before it
        # first showed could show its minimum in the browser); the key changes with the stored number.
        key = state.widget_key("candidates", edit.project_id, stored=live.candidates, gen=edit.gen)
        st.number_input(
            "Pictures per page",
            min_value=1,
            max_value=MAX_CANDIDATES,
            value=ui.starts_from(key, live.candidates),
            step=1,
            key=key,
            on_change=_save_candidates,
            args=(edit.project_id, key),
            width=160,
            help="Each draw makes this many pictures of a page, with different seeds, and keeps them all as "
            "versions; the one whose CLIP score is best becomes the page's picture (Pictures shows them side by "
            "side). More pictures take longer to draw.",
        )
        line, help_text = actions.book_score_line(actions.book_score(live))  # the Export screen's words too
        if line:
            st.caption(ui.plain(line), help=help_text)
        if scoring_off:
            st.caption(ui.plain(scoring_off))
    if scoring_off:  # beside the note: the scoring model of this story's profile (Settings: the default's only)
        ui.extras_download(profile, roles=("ranker",), place="storyboard.scoring")
    scenes_row(edit, live, profile)


def _describe_scenes(project_id: int) -> None:
    """Let the storyteller write every page's scene, on the worker (a callback)."""
    if actions.scene_jobs(project_id) or not ui.first_click("scenes.all"):
        return
    with ui.guard(project_id):
        if actions.describe_scenes(ui.library(), project_id) is not None:
            ui.flash("info", "The storyteller is writing every page's scene…")


def scenes_row(edit: Editing, live: ProjectView, profile) -> None:
    """ "Describe every page's scene" and what the newest scene job did."""
    if not live.pages:
        return
    writing = bool(actions.scene_jobs(edit.project_id))
    off = actions.scene_note(profile) if profile is not None else None
    with st.container(horizontal=True, gap="medium", vertical_alignment="center"):
        st.button(
            "Writing the scenes…" if writing else "Describe every page's scene",
            icon=":material/auto_stories:",
            key="scenes.all",
            width="content",
            disabled=writing or bool(off),
            on_click=_describe_scenes,
            args=(edit.project_id,),
            help=off
            or "The storyteller model writes what each picture shows (who, where, what is happening) in the book's "
            "style. Pages without their own prompt take it as their prompt (one Undo takes them all back); a page "
            "with your own prompt keeps it, and the scene is offered in its Edit menu.",
        )
        outcome = actions.scene_outcome(edit.project_id)
        if outcome is not None and not writing:
            st.caption(ui.plain(" ".join(outcome.lines())))
