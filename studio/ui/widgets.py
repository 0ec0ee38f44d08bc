"""Widgets more than one screen draws: the profile note, the model download box, the sidebar with the open
story and the running jobs, and the progress panel of a screen's jobs."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import streamlit as st

from core.errors import UserError
from engine.profiles import ROLE_WORDS, fetch_command
from storage import ProjectView, StorageError
from studio import actions, state
from studio.ui.editors import rerun_to_follow
from studio.ui.messages import ERROR_ICON, flash
from studio.ui.resources import library, worker
from studio.ui.session import current_project_id, read_project
from studio.ui.text import plain, plural


def project_profile(project: ProjectView):
    """The profile the project's jobs use (actions.project_profile), with its one-line note when there is one;
    None, after one st.error sentence, when no profile can be used."""
    try:
        choice = actions.project_profile(project)
    except UserError as exc:
        st.error(exc.message, icon=ERROR_ICON)
        return None
    if choice.note:
        st.info(choice.note, icon=":material/info:")
    return choice.profile


DOWNLOAD_POLL_S = 2.0


def _use_tiny(project_id: int | None, version: int | None) -> None:
    try:
        actions.use_tiny_profile(library() if project_id is not None else None, project_id, version)
    except OSError as exc:
        flash("error", f"The tiny profile could not be chosen: the settings file could not be written ({exc}).")
        return
    except StorageError as exc:
        flash("error", exc.message)
        return
    where = "This story and new stories" if project_id is not None else "New stories"
    flash(
        "success",
        f"{where} now use the 'tiny' profile: tiny models built on this computer, no download and no network. "
        "They draw noise and write nonsense, but every button works. Switch back in Settings or Book details.",
    )


def _open_project_using(profile_name: str) -> ProjectView | None:
    """The tab's open story when it is made with `profile_name`: the tiny button switches it too."""
    pid = current_project_id()
    if pid is None:
        return None
    try:
        project = library().get_project(pid)
    except StorageError:
        return None
    return project if project.profile == profile_name else None


def _download_progress(profile_name: str, extras: bool, done: str) -> None:
    """A running download's step and time, redrawn every DOWNLOAD_POLL_S; when it ends, `done` (on success) and
    the whole screen redraws."""

    @st.fragment(run_every=DOWNLOAD_POLL_S)
    def progress() -> None:
        now = actions.download_status(profile_name, extras)
        if now is None or not now.running:
            if now is not None and now.state == "done":
                flash("success", done)
            rerun_to_follow()
        elapsed = int(time.monotonic() - now.started)
        st.info(
            f"Downloading {now.step} ({elapsed // 60} min {elapsed % 60:02d} s so far). You can keep "
            "working; this page updates by itself.",
            icon=":material/downloading:",
        )

    progress()


def extras_download(
    profile, roles: Sequence[str] | None = None, place: str = "settings", *, offline_said: bool = False
) -> None:
    """The profile's optional scoring and reference models (engine.profiles.EXTRA_ROLES) when some are missing:
    what they bring, their size, and a download of their own with its progress (every tab sees it), unless the
    studio was started offline; the terminal command behind an expander. Nothing when all are here.

    roles: drawn only when one of these is missing (beside a note on that model: the story's own profile, which
    Settings' download, for the default profile, may not be). place: where on the page, for the button's key, so
    the box can be drawn more than once on a page. offline_said: the box above already says the studio runs
    offline (model_download), so this one says it in a line instead of again in full."""
    missing = actions.missing_extras(profile)
    if not missing or (roles is not None and not any(role in roles for role, _ in missing)):
        return
    uses = [ROLE_WORDS[role].brings if role in ROLE_WORDS else role for role, _ in missing]
    brings = uses[0] if len(uses) == 1 else f"{', '.join(uses[:-1])} and {uses[-1]}"
    size = actions.extras_download_size(profile)
    sized = f" ({size})" if size else ""
    with st.container(border=True):
        st.markdown(
            f"Optional, not downloaded yet: the scoring and reference models of the **{profile.name}** profile"
            f"{sized}. They bring {brings}; everything else works without them."
        )
        if not actions.downloads_possible() and offline_said:
            st.caption("Like the models above, they can be downloaded here once the studio runs online.")
        elif not actions.downloads_possible():
            st.info(
                "The studio was started in offline mode (the HF_HUB_OFFLINE setting), so it cannot download "
                "them now. To get them, close the studio and start it again without that setting, then download "
                "them here.",
                icon=":material/cloud_off:",
            )
        else:
            download = actions.download_status(profile.name, extras=True)
            if download is not None and download.running:
                _download_progress(
                    profile.name,
                    True,
                    f"Downloaded: the '{profile.name}' profile's scoring and reference models are ready on this "
                    "computer.",
                )
            else:
                if download is not None and download.state == "failed":
                    again = "" if "try again" in download.error.lower() else " Then try again with the button below."
                    st.error(download.error + again, icon=ERROR_ICON)
                if st.button(
                    actions.EXTRAS_BUTTON,  # the name the missing-model sentences give it, after a failure too
                    icon=":material/download:",
                    key=f"download_extras.{place}.{profile.name}",
                ):
                    actions.start_download(profile, extras=True)
                    st.rerun()
        with st.expander("Download them from a terminal instead"):
            st.caption("In a terminal, from the studio's folder:")
            st.code(fetch_command(profile, extras=True), language="bash")


def model_download(profile, what: str, tip: str = "", project: ProjectView | None = None) -> None:
    """What to do about a profile's missing models, offering only what can work now: a button that downloads
    them while the studio runs (then the screen redraws by itself), unless the studio was started offline;
    the one-click 'tiny' profile (for `project` too: by default the open story, when it uses `profile`); the
    terminal command behind an expander.
    `what` says what cannot run without them, `tip` what else the person can do."""
    with st.container(border=True):
        st.warning(
            f"{what} The models of the **{profile.name}** profile are not downloaded yet.",
            icon=":material/download:",
        )
        size = actions.download_size_here(profile)
        if not actions.downloads_possible():
            st.info(
                "The studio was started in offline mode (the HF_HUB_OFFLINE setting), so it cannot download "
                f"them now. To get them ({size}), close the studio and start it again without that setting, "
                "then download them here.",
                icon=":material/cloud_off:",
            )
        else:
            download = actions.download_status(profile.name)
            if download is not None and download.running:
                _download_progress(
                    profile.name,
                    False,
                    f"Downloaded: the '{profile.name}' profile's models are ready on this computer.",
                )
            else:
                if download is not None and download.state == "failed":
                    st.error(download.error, icon=ERROR_ICON)
                st.markdown(f"Download them once ({size}); after that the studio works without the internet.")
                if st.button(
                    "Try the download again" if download is not None else "Download them now",
                    icon=":material/download:",
                    type="primary",
                    key=f"download.{profile.name}",
                ):
                    actions.start_download(profile)
                    st.rerun()
        if project is None:
            project = _open_project_using(profile.name)
        if profile.name != "tiny" and actions.tiny_possible():
            st.button(
                "Try the studio now with the tiny profile (no download)",
                icon=":material/bolt:",
                key=f"tiny.{profile.name}",
                help="Tiny models built on this computer in seconds: they draw noise and write nonsense, "
                "but let you try every step offline.",
                on_click=_use_tiny,
                args=(project.id, project.version) if project is not None else (None, None),
            )
        with st.expander("Download from a terminal instead"):
            st.caption("In a terminal, from the studio's folder:")
            st.code(fetch_command(profile), language="bash")
        if tip:
            st.caption(tip)


def sidebar(on_storyboard: bool = False) -> None:
    """The open story (with a link to its storyboard, unless that is the screen shown) and the running jobs."""
    with st.sidebar:
        project = None
        pid = current_project_id()
        if pid is not None:
            try:
                project = read_project(library(), pid)
            except StorageError:
                project = None
        st.caption("Open story")
        if project is None:
            st.markdown("*None yet — pick one in the library.*")
        else:
            st.markdown(f":material/menu_book: **{plain(project.title)}**")
            pictures = sum(1 for s in project.pages if s.selected is not None)
            st.caption(f"{plural(len(project.pages), 'page')} · {plural(pictures, 'picture')}")
            if not on_storyboard:
                st.page_link(
                    state.SCREEN_STORYBOARD,
                    label="Go to the storyboard",
                    icon=":material/auto_stories:",
                    query_params={state.QP_PROJECT: str(project.id)},
                )
        active = worker().jobs(active_only=True)
        st.fragment(_sidebar_jobs, run_every=2 if active else None)()


_JOB_KINDS = {
    actions.KIND_ILLUSTRATE: ":material/brush: Drawing",
    actions.KIND_STORY: ":material/edit_note: Writing",
    actions.KIND_WARM: ":material/hourglass_top: Warming up",
}


def _sidebar_jobs() -> None:
    active = worker().jobs(active_only=True)  # every kind of job: pictures and stories, oldest first
    st.caption("Running now")
    if not active:
        st.markdown("*Nothing is being drawn or written.*")
        return
    for job in active:
        waiting = job.status.value == "queued"
        text = f"{job.label} — {job.message or ('Waiting…' if waiting else 'Working…')}"
        kind = _JOB_KINDS.get(job.kind)
        st.progress(job.fraction, text=f"{kind} · {plain(text)}" if kind else plain(text))


def _mark_seen(job_id: str) -> None:
    st.session_state.setdefault(state.SEEN_JOBS, set()).add(job_id)


def job_panel(jobs: list, *, stop_note: str, outcome: Callable, outcome_kind: str | None = None) -> None:
    """A progress bar and a Stop button for each unfinished job; once none is left, the outcome of the
    last finished one (of `outcome_kind`, if given), drawn by outcome(job), until the user dismisses it."""
    active = [j for j in jobs if not j.finished]
    for job in active:
        with st.container(border=True):
            cols = st.columns([5, 1], vertical_alignment="center")
            waiting = job.status.value == "queued"
            doing = stop_note if job.stopping else job.message or ("Waiting…" if waiting else "Working…")
            cols[0].progress(job.fraction, text=f"**{plain(job.label)}** — {plain(doing)}")
            # A callback: it acts before the run its click starts, so a live panel that draws nothing in that run
            # (ui.live_news) loses no click; the job says it is stopping, and the panel follows that.
            cols[1].button(
                "Stop",
                icon=":material/stop_circle:",
                key=f"stop.{job.id}",
                width="stretch",
                disabled=job.stopping,
                on_click=actions.cancel_job,
                args=(job.id,),
            )
    finished = [j for j in jobs if j.finished and (outcome_kind is None or j.kind == outcome_kind)]
    if active or not finished:
        return
    last = finished[-1]
    if last.id in st.session_state.get(state.SEEN_JOBS, set()):
        return
    cols = st.columns([6, 1], vertical_alignment="center")
    with cols[0]:
        outcome(last)
    cols[1].button("OK", key=f"seen.{last.id}", on_click=_mark_seen, args=(last.id,))
