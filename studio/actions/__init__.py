"""The one door through which every change to the library and every job goes. Imports no streamlit, so the CLI
and tests can call it directly (``from studio import actions; actions.split_story(lib, ...)``).

One module per subject (docs/architecture.md lists what each owns):

- ``profiles``: which models a story is made with, what is missing, downloads.
- ``pages``: the story text and its pages: split, move, delete, merge, split one, edit one; characters and
  book details.
- ``pictures``: draw every page, draw one again, upload one's own, choose or delete a version.
- ``told``: stories told from pictures: the source pictures, the story job, a passage again or by hand.
- ``library``: whole stories: create, the sample, rename, duplicate, delete (with the bundle for Undo), import.
- ``export``: the PDF and the ZIP of a saved book.
- ``jobs``: the jobs a screen follows: which run for a project, which pages they work on, stopping one.

Heavy engine modules (torch, diffusers, transformers) are imported inside the job functions, on the worker:
importing torch on the page thread froze the page for 8-9 s after a click.
"""

from studio.actions.export import (
    MAX_PREVIEW_PAGES,
    ExportOutcome,
    emoji_font,
    export_book,
    export_key,
    preview_every_page,
)
from studio.actions.jobs import (
    KIND_ILLUSTRATE,
    KIND_STORY,
    JobStart,
    active_jobs,
    active_story_jobs,
    cancel_job,
    drawing_page_ids,
    project_jobs,
    story_jobs,
    story_page_ids,
    writing_page_ids,
)
from studio.actions.library import MAX_BUNDLE_MB, SAMPLE_STORY, bundle_for_undo, create_project, open_sample
from studio.actions.pages import (
    DEFAULT_TITLE,
    MAX_DEDICATION_CHARS,
    MAX_DESCRIPTION_CHARS,
    MAX_SETTING_CHARS,
    STORY_SOURCE,
    SplitOutcome,
    clean_characters,
    delete_page,
    find_page,
    move_page,
    plan_pages,
    plural_pages,
    prompt_preview,
    save_draft,
    split_points,
    split_story,
    told_from_pictures,
)
from studio.actions.pictures import MAX_PICTURE_MB, illustrate_all, regenerate, upload_picture
from studio.actions.profiles import (
    ProfileChoice,
    current_profile,
    download_status,
    ensure_illustrator,
    ensure_models,
    missing_models,
    project_profile,
    start_download,
)
from studio.actions.told import (
    PLACEHOLDER_PASSAGE,
    PictureRead,
    StoryStart,
    edit_passage,
    read_picture,
    retell_passage,
    start_story_from_images,
    stored_story,
    story_report,
    write_story_again,
)

__all__ = [
    "DEFAULT_TITLE",
    "KIND_ILLUSTRATE",
    "KIND_STORY",
    "MAX_BUNDLE_MB",
    "MAX_DEDICATION_CHARS",
    "MAX_DESCRIPTION_CHARS",
    "MAX_PICTURE_MB",
    "MAX_PREVIEW_PAGES",
    "MAX_SETTING_CHARS",
    "PLACEHOLDER_PASSAGE",
    "SAMPLE_STORY",
    "STORY_SOURCE",
    "ExportOutcome",
    "JobStart",
    "PictureRead",
    "ProfileChoice",
    "SplitOutcome",
    "StoryStart",
    "active_jobs",
    "active_story_jobs",
    "bundle_for_undo",
    "cancel_job",
    "clean_characters",
    "create_project",
    "current_profile",
    "delete_page",
    "download_status",
    "drawing_page_ids",
    "edit_passage",
    "emoji_font",
    "ensure_illustrator",
    "ensure_models",
    "export_book",
    "export_key",
    "find_page",
    "illustrate_all",
    "missing_models",
    "move_page",
    "open_sample",
    "plan_pages",
    "plural_pages",
    "preview_every_page",
    "project_jobs",
    "project_profile",
    "prompt_preview",
    "read_picture",
    "regenerate",
    "retell_passage",
    "save_draft",
    "split_points",
    "split_story",
    "start_download",
    "start_story_from_images",
    "stored_story",
    "story_jobs",
    "story_page_ids",
    "story_report",
    "told_from_pictures",
    "upload_picture",
    "write_story_again",
    "writing_page_ids",
]
