"""The page cards: each page's picture, words and prompt, its buttons (New picture, Redraw, Finish this picture)
and its menus (Edit, Pictures with every version and the last draw side by side, Page: split, merge, move,
delete), laid out in a grid."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import streamlit as st

from storage import PageView, ProjectView
from studio import actions, state, ui
from studio.screens.storyboard.common import draw_notes, short_prompt, version_details
from studio.ui import Editing

CARDS_KEY = "board-cards"  # the cards' container; its CSS class is st-key-board-cards
CARD_MIN_REM = 17  # the narrowest a card gets: New picture and Redraw side by side, read whole


def edit_popover(edit: Editing, page: PageView, n: int, auto_prompt: str) -> None:
    pop = ui.menu(
        "Edit", icon=":material/edit:", key=f"pop.edit.{page.id}", help="Change the text, the prompt or the seed"
    )
    if pop is None:
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
        # The lock through value= (a toggle given it in Session State before it first showed could show "off" in
        # the browser); its key changes with the stored lock. The text editors keep init_widget.
        lock_key = state.widget_key("seg.lock", page.id, stored=page.locked, gen=edit.gen)
        st.text_area("Page text", key=text_key, height=140)
        st.text_area(
            "Picture prompt",
            key=prompt_key,
            height=100,
            placeholder=auto_prompt,
            help="Leave empty to draw from the page text. The picture style is added for you.",
        )
        scene_part(edit, page, n)
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
        st.toggle(
            "Lock the seed",
            value=ui.starts_from(lock_key, bool(page.locked)),
            key=lock_key,
            help="“Illustrate all” keeps a locked page's seed.",
        )
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


def _describe_scene(project_id: int, page_id: int, n: int) -> None:
    """Let the storyteller write one page's scene, on the worker (a callback)."""
    if actions.scene_jobs(project_id) or not ui.first_click(f"scene.{page_id}"):
        return
    with ui.guard(project_id):
        actions.describe_scene(ui.library(), project_id, page_id)
        ui.flash("info", f"The storyteller is writing the scene of page {n}…")


def _use_scene(project_id: int, page_id: int, n: int) -> None:
    """Make the storyteller's suggestion the page's prompt (a callback; one undo step)."""
    if not ui.first_click(f"scene.use.{page_id}"):
        return
    with ui.guard(project_id):
        lib_ = ui.library()
        project = ui.read_project(lib_, project_id)
        page = next(p for p in project.pages if p.id == page_id)
        ui.set_base_version(actions.use_scene_suggestion(lib_, page, ui.base_version(project)))
        ui.flash("toast", f"Page {n} is drawn from the storyteller's scene now (Undo takes it back).")


def scene_part(edit: Editing, page: PageView, n: int) -> None:
    """In the Edit menu: who wrote the prompt, the storyteller's scene waiting beside a person's own prompt (Use
    this / Ignore), and "Describe the scene"."""
    if actions.storyteller_wrote(page):
        st.caption(":material/auto_stories: The storyteller wrote this prompt from the page: edit it as you like.")
    offered = actions.scene_suggestion(page)
    if offered is not None:
        st.caption(f"The storyteller's scene (your prompt is kept): {ui.plain(offered.text)}")
        cols = st.columns(2)
        cols[0].button(
            "Use this",
            icon=":material/check:",
            key=f"scene.use.{page.id}",
            width="stretch",
            on_click=_use_scene,
            args=(edit.project_id, page.id, n),
            help="Make the storyteller's scene this page's prompt (Undo takes it back).",
        )
        if cols[1].button("Ignore", icon=":material/close:", key=f"scene.drop.{page.id}", width="stretch"):
            actions.drop_scene_suggestion(page.id)
            st.rerun()
    outcome = actions.scene_outcome(edit.project_id)
    if outcome is not None and n in outcome.unusable and offered is None and not actions.storyteller_wrote(page):
        st.caption("The storyteller wrote nothing usable for this page last time; its prompt is unchanged.")
    writing = bool(actions.scene_jobs(edit.project_id))
    st.button(
        "Writing the scene…" if writing else "Describe the scene",
        icon=":material/auto_stories:",
        type="tertiary",
        key=f"scene.{page.id}",
        disabled=writing,
        on_click=_describe_scene,
        args=(edit.project_id, page.id, n),
        help="The storyteller model writes what the picture shows (who, where, what is happening) in the book's "
        "style. Without your own prompt it becomes the prompt; your own prompt is kept, and the scene is offered "
        "here.",
    )


def _download(picture, n: int, key: str) -> None:
    path = Path(picture.image_path)
    st.download_button(
        "Download",  # words, not only an icon: an icon alone was read out as "download icon"
        data=partial(path.read_bytes),
        icon=":material/download:",
        key=key,
        type="tertiary",
        file_name=f"page-{n:02d}-v{picture.version}{path.suffix}",
        on_click="ignore",
        mime={".png": "image/png", ".jpg": "image/jpeg", ".webp": "image/webp"}.get(path.suffix),
        help=f"Download version {picture.version} of this picture",
    )


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


def new_version(edit: Editing, page: PageView, n: int, not_ready: str | None) -> None:
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


def pictures_popover(edit: Editing, page: PageView, n: int, not_ready: str | None) -> None:
    """Every version of the page's picture: pick one, download or delete it, or bring your own."""
    count = len(page.pictures)
    pop = ui.menu(
        "Pictures",
        icon=":material/photo_library:",
        key=f"pop.pictures.{page.id}",
        help=f"Browse the {ui.plural(count, 'version')} of this picture, pick one, or use your own",
    )
    if pop is None:
        return
    with pop:
        new_version(edit, page, n, not_ready)
        candidates_view(edit, page, n)
        if count:
            st.caption(f"Every picture page {n} has had, newest first. Pick the one the book uses.")
        newest_first = list(reversed(page.pictures))
        for start in range(0, len(newest_first), 2):
            cols = st.columns(2)
            for col, picture in zip(cols, newest_first[start : start + 2]):
                with col:
                    st.image(ui.thumbnail(picture.image_path), width="stretch", alt=f"Version {picture.version}")
                    st.caption(version_details(picture))
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
                            "Discard",
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
    pop = ui.menu(
        "Page", icon=":material/content_cut:", key=f"pop.more.{page.id}", help="Split, merge, move or delete pages"
    )
    if pop is None:
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
                    split = actions.split_page(edit.lib, page.id, points[choice][0], edit.base)
                    ui.set_base_version(split)
                    ui.flash("toast", actions.split_message(split, page.id))
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
        why = actions.TOLD_KEEPS_ORDER if from_pictures else None
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
        # Words, not an icon as a heading (a screen reader read it as "image"): what the empty frame means.
        with st.container(height=160, horizontal_alignment="center", vertical_alignment="center"):
            st.markdown("No picture yet", width="content")


def _score_badge(picture) -> None:
    score = actions.clip_score(picture) if picture is not None else None
    if score is not None:
        st.badge(f"CLIP {score:.1f}", icon=":material/analytics:", color="gray", help=actions.SCORE_HELP)


def _redraw_page(project_id: int, page_id: int, n: int, new_seed: bool, profile) -> None:
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
            + draw_notes(start.project, profile),
        )


def _finish_page(project_id: int, picture_id: int, n: int) -> None:
    """Finish a page's draft (a callback, like _redraw_page)."""
    if not ui.first_click(f"finish.{picture_id}"):
        return
    with ui.guard(project_id):
        actions.finish_drafts(ui.library(), project_id, picture_ids=[picture_id])
        ui.flash("info", f"Finishing the draft of page {n}…")


def _next_differs(settings: dict, drawn_prompt: str, upcoming: str) -> bool:
    """Whether the page's next picture would be drawn from another prompt than the one shown: compared with what the
    card showed as the next prompt when the picture was drawn (the job fits the prompt it draws from to the model's
    tokenizer, which the card only guesses), or for older pictures with the prompt they were drawn from."""
    planned = settings.get("planned_prompt")
    before = planned if isinstance(planned, str) else drawn_prompt
    return " ".join(before.split()) != " ".join(upcoming.split())


def card(
    edit: Editing,
    live: ProjectView,
    page: PageView,
    drawing: set[int],
    slots: dict[int, object],
    profile,
    not_ready: str | None,
) -> None:
    n = page.position + 1
    busy = page.id in drawing
    characters = tuple((c.name, c.description) for c in live.characters)
    present = tuple(ui.story_cast(live).get(page.id, ())) if characters else None
    auto_prompt = actions.prompt_preview(page.text, live.style, characters, setting=live.setting, present=present)
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
                if actions.storyteller_wrote(page):
                    st.badge(
                        "storyteller's prompt",
                        icon=":material/auto_stories:",
                        color="violet",
                        help="The storyteller wrote this page's prompt from its words: edit it in the Edit menu.",
                    )
                if page.selected is not None and page.selected.origin == "uploaded":
                    st.badge("your picture", icon=":material/upload:", color="green")
                if actions.is_draft(page.selected):
                    st.badge(
                        "Draft",
                        icon=":material/bolt:",
                        color="gray",
                        help="A quick draft: Finish this picture draws it in full detail.",
                    )
                if page.selected is not None and page.selected.words_changed:
                    st.badge(
                        "words changed since this picture",
                        icon=":material/edit_note:",
                        color="violet",
                        help="Redraw the page to match its new words, or keep the picture as it is.",
                    )
                    if st.button(
                        "Keep this picture for these words",
                        icon=":material/check:",
                        type="tertiary",
                        key=f"keepwords.{page.id}",
                        help="The picture stays as it is; the note comes back if the words change again.",
                    ) and ui.first_click(f"keepwords.{page.id}"):
                        with ui.guard(edit.project_id):
                            ui.set_base_version(actions.keep_picture_for_words(edit.lib, page.selected.id, edit.base))
                            ui.flash("toast", f"Page {n} keeps its picture for its new words.")
                            st.rerun()
            if busy:
                # While a job draws it, the live fragment below redraws this part alone, as pictures arrive.
                slots[page.id] = st.empty()  # filled by follow_jobs, in this same run and as pictures arrive
            else:
                picture_area(page, None)
            st.markdown(ui.plain(page.text))
            upcoming = page.prompt_override or auto_prompt
            st.caption(f"{'Your prompt' if own else 'Prompt'}: {ui.plain(short_prompt(drawn_prompt or upcoming))}")
            if shown is not None and drawn_prompt and _next_differs(shown.settings, drawn_prompt, upcoming):
                st.caption(f"Next picture: {ui.plain(short_prompt(upcoming))}")
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
                args=(edit.project_id, page.id, n, True, profile),
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
                args=(edit.project_id, page.id, n, False, profile),
            )
            if actions.is_draft(page.selected):
                st.button(
                    "Finish this picture",
                    icon=":material/auto_fix_high:",
                    key=f"finish.{page.id}",
                    disabled=busy or bool(not_ready),
                    help=not_ready
                    or "This draft finished in full detail: the same picture you see, sharper. The draft stays "
                    "among the versions.",
                    on_click=_finish_page,
                    args=(edit.project_id, page.selected.id, n),
                )
        with st.container(horizontal=True, gap="small", vertical_alignment="center"):
            edit_popover(edit, page, n, auto_prompt)
            pictures_popover(edit, page, n, not_ready)
            more_popover(edit, live, page, n, is_last=page.position == len(live.pages) - 1)
            if page.selected is not None:
                _download(page.selected, n, key=f"dl.{page.id}")


def grid(
    edit: Editing,
    live: ProjectView,
    pages: list[PageView],
    drawing: set[int],
    slots: dict[int, object],
    profile,
    not_ready: str | None,
) -> None:
    """The cards of these pages in reading order, as many to a row as fit at CARD_MIN_REM or wider (ui.card_grid):
    three or four in a wide window, one or two in a narrow one, never so narrow that a button's words are cut off."""
    with ui.card_grid(CARDS_KEY, CARD_MIN_REM):
        for page in pages:
            card(edit, live, page, drawing, slots, profile, not_ready)
