"""The story's characters: the Characters box, each one's reference picture (drawn, picked or uploaded) and the
cast sheet that shows them."""

from __future__ import annotations

import streamlit as st

from storage import ProjectView
from studio import actions, state, ui
from studio.ui import Editing

MAX_NEW_CHARACTERS = 10  # empty rows the Characters box grows by before one is saved


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


def reference_popover(edit: Editing, live: ProjectView, character, i: int, profile, not_ready: str | None) -> None:
    """Draw, pick, upload or remove one character's reference picture."""
    name = character.name
    pop = ui.menu(
        "Reference picture",
        icon=":material/portrait:",
        key=f"pop.ref.{edit.project_id}.{i}",
        help=f"Give {name} a reference picture, so every page with {name} shows the same look",
    )
    if pop is None:
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
        offered = actions.proposals(live, name)  # kept in the library with the character
        if offered:
            st.caption(
                f"Drawn from the description. Pick the one that looks most like {ui.plain(name)}; they are kept "
                "with the story until you remove them."
            )
            for start in range(0, len(offered), 3):
                cols = st.columns(3)
                for col, proposal in zip(cols, offered[start : start + 3]):
                    k = proposal.index
                    with col:
                        st.image(ui.thumbnail(proposal.image_path), width="stretch", alt=f"{name}, picture {k + 1}")
                        score = "" if proposal.score is None else f"CLIP {proposal.score:.1f}"
                        st.caption(" · ".join(x for x in (score, "in use" if proposal.in_use else "") if x) or " ")
                        with st.container(horizontal=True, gap="small"):
                            use = not proposal.in_use and st.button("Use this", key=f"ref.prop.{i}.{k}")
                            drop = st.button(
                                "Remove",
                                icon=":material/close:",
                                type="tertiary",
                                key=f"ref.prop.rm.{i}.{k}",
                                help="Take this picture off the offer (Undo brings it back). The reference in use "
                                "stays.",
                            )
                        if use:
                            with ui.guard(edit.project_id):
                                ui.set_base_version(actions.use_proposal(edit.lib, edit.project_id, edit.base, name, k))
                                _reference_done(f"{name}'s reference picture is the one you picked.")
                        if drop:
                            with ui.guard(edit.project_id):
                                ui.set_base_version(
                                    actions.remove_proposal(edit.lib, edit.project_id, edit.base, name, k)
                                )
                                _reference_done(f"That picture of {name} is no longer on offer (Undo brings it back).")
        follow_slider(edit, character, i, profile)
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


def _save_follow(project_id: int, name: str, method: str, key: str) -> None:
    """How closely pages follow a reference is saved the moment the slider is let go (one undo step)."""
    with ui.guard(project_id):
        lib_ = ui.library()
        version = ui.base_version(lib_.get_project(project_id))
        view = actions.set_reference_follow(lib_, project_id, version, name, method, float(st.session_state[key]))
        ui.set_base_version(view)
        ui.flash("toast", f"{name}'s pages follow the reference picture that closely from their next draw.")


def follow_slider(edit: Editing, character, i: int, profile) -> None:
    """The slider "How closely pages follow this picture", in the words of the method the profile uses."""
    control = actions.follow_control(profile, character) if profile is not None else None
    if control is None:
        return
    # The stored value through value=, never through Session State (a slider given it there before it first showed
    # could show its minimum in the browser); the key changes with the stored value.
    key = state.widget_key("ref.follow", edit.project_id, i, stored=(control.method, control.value), gen=edit.gen)
    st.slider(
        control.label,
        min_value=control.low,
        max_value=control.high,
        value=ui.starts_from(key, control.value),
        step=control.step,
        key=key,
        on_change=_save_follow,
        args=(edit.project_id, character.name, control.method, key),
        help=control.help + f" Pages drawn before keep what they were drawn with. Usual: {control.default:g}.",
    )


def _measure(edit: Editing) -> None:
    with ui.guard(edit.project_id):
        job = actions.measure_likeness(edit.lib, edit.project_id)
        ui.flash(
            "info" if job else "warning",
            "Measuring likeness: the figures show here when they are ready."
            if job
            else "No character is on a page with a picture yet: draw the pages first.",
        )
        st.rerun()


def likeness_line(live: ProjectView, character, measuring: bool) -> None:
    """The character's likeness across its pages, with what it measures."""
    shown = actions.likeness(live, character, ui.story_cast(live))
    text = "Measuring likeness…" if measuring else shown.text
    st.caption(f":material/compare: {ui.plain(text)}", help=actions.LIKENESS_HELP)


def cast_sheet(edit: Editing, live: ProjectView, profile, not_ready: str | None) -> None:
    """The saved characters' reference pictures (the cast sheet), and how this profile uses them."""
    if not live.characters:
        return
    st.markdown("**:material/portrait: Reference pictures**")
    if profile is not None:
        st.caption(actions.profile_reference_note(profile))
    drawing = {job.meta.get("character") for job in actions.reference_jobs(live.id)}
    measuring = bool(actions.likeness_jobs(live.id))
    measure_off = actions.likeness_note(profile) if profile is not None else None
    noted: list[str] = []  # the models whose notes show on the cast sheet: their download goes under them
    if any(page.selected is not None for page in live.pages):
        noted += ["consistency"] if measure_off else []
        if st.button(
            "Measuring likeness…" if measuring else "Measure likeness",
            icon=":material/compare:",
            type="tertiary",
            key="cast.measure",
            disabled=measuring or bool(measure_off),
            help=measure_off or actions.LIKENESS_HELP,
        ) and ui.first_click("cast.measure"):
            _measure(edit)
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
                noted.append("ip_adapter")
            if character.name in drawing:
                st.caption(":material/brush: Drawing a reference picture…")
            likeness_line(live, character, measuring)
            reference_popover(edit, live, character, i, profile, not_ready)
    if noted and profile is not None:  # once, under the notes: this story's profile (Settings: the default's only)
        ui.extras_download(profile, roles=noted, place="cast")


def characters_box(edit: Editing, project: ProjectView, profile, not_ready: str | None) -> None:
    """Who the pictures keep the same: a name and a description a row, saved together, then the cast sheet."""
    characters = tuple((c.name, c.description) for c in project.characters)
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
                state.widget_key("char.name", edit.project_id, len(rows) - 1, stored=characters, gen=edit.gen), ""
            ):
                break
        typed: list[tuple[str, str]] = []
        for i, (name, description) in enumerate(rows):
            name_key = ui.init_widget(
                state.widget_key("char.name", edit.project_id, i, stored=characters, gen=edit.gen), name
            )
            desc_key = ui.init_widget(
                state.widget_key("char.desc", edit.project_id, i, stored=characters, gen=edit.gen), description
            )
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
            with ui.guard(edit.project_id):
                saved = actions.save_characters(edit.lib, edit.project_id, edit.base, typed)
                ui.set_base_version(saved)
                ui.flash(
                    "success",
                    f"Saved {ui.plural(len(saved.characters), 'character')}. Redraw the pages that name them "
                    "to see them in the pictures."
                    if saved.characters
                    else "The story has no characters now.",
                )
                st.rerun()
        cast_sheet(edit, project, profile, not_ready)
