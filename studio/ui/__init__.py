"""What the screens share, one module per job (the screens call them as ``ui.flash(...)``, ``ui.guard(...)``):

- ``resources``: the process-wide Library and job worker; card pictures and prompts, made once.
- ``messages``: flash messages, shown once at the top of the next run.
- ``clicks``: a double click does its action once; guard() shows a person's error as one sentence.
- ``ledger``: the bookkeeping inside guard() that a second click cannot cut short.
- ``session``: the tab's open story, the version its edits are based on, opening and reloading it.
- ``editors``: widgets drawn from stored values, and typing that is not saved yet.
- ``watch``: polling fragments that redraw a screen when another tab or a job changed what it shows.
- ``widgets``: the sidebar, the model download box, the job progress panel, the profile note.
- ``choices``: choices shown as pictures: style samples, layout thumbnails.
- ``layout``: cards that wrap at a width they read whole in (card_grid).
- ``text``: user text and numbers as shown: escaped markdown, "3 pages", "5 minutes ago".

Screens only draw and dispatch: every change to the library goes through studio.actions.
"""

from studio.ui.choices import layout_gallery, picture_choices, style_gallery
from studio.ui.clicks import DOUBLE_CLICK_S, first_click, guard
from studio.ui.editors import (
    based_on_followed,
    follow_stored,
    init_widget,
    kept,
    person_ran,
    rerun_to_follow,
    starts_from,
    typed_here,
)
from studio.ui.layout import card_grid
from studio.ui.messages import ERROR_ICON, close_finished_menus, flash, menu, menu_done, show_flash
from studio.ui.resources import library, story_cast, thumbnail, worker
from studio.ui.session import (
    Editing,
    base_version,
    behind_another_tab,
    current_project_id,
    editing,
    load_current_project,
    open_project,
    read_project,
    reload_gen,
    reload_project,
    set_base_version,
    set_current_project,
    stale_notice,
    start_new,
    start_sample,
    sync_project_from_url,
)
from studio.ui.text import ago, plain, plural, reading_grade
from studio.ui.watch import (
    LIVE_EVERY_S,
    WATCH_EVERY_S,
    jobs_shown,
    let_quick_jobs_finish,
    live_drawn,
    live_news,
    live_unchanged,
    watch,
    watch_library,
    watch_project,
)
from studio.ui.widgets import extras_download, job_panel, model_download, project_profile, sidebar

__all__ = [
    "DOUBLE_CLICK_S",
    "ERROR_ICON",
    "LIVE_EVERY_S",
    "WATCH_EVERY_S",
    "Editing",
    "ago",
    "base_version",
    "based_on_followed",
    "behind_another_tab",
    "card_grid",
    "close_finished_menus",
    "current_project_id",
    "editing",
    "extras_download",
    "first_click",
    "flash",
    "follow_stored",
    "guard",
    "init_widget",
    "job_panel",
    "jobs_shown",
    "kept",
    "layout_gallery",
    "let_quick_jobs_finish",
    "library",
    "live_drawn",
    "live_news",
    "live_unchanged",
    "load_current_project",
    "menu",
    "menu_done",
    "model_download",
    "open_project",
    "person_ran",
    "picture_choices",
    "plain",
    "plural",
    "project_profile",
    "read_project",
    "reading_grade",
    "reload_gen",
    "reload_project",
    "rerun_to_follow",
    "set_base_version",
    "set_current_project",
    "show_flash",
    "sidebar",
    "stale_notice",
    "start_new",
    "start_sample",
    "starts_from",
    "story_cast",
    "style_gallery",
    "sync_project_from_url",
    "thumbnail",
    "typed_here",
    "watch",
    "watch_library",
    "watch_project",
    "worker",
]
