"""Every st.session_state key and query parameter the studio uses, named in one place.

The open project lives in two places: ``st.session_state[PROJECT_ID]`` for this browser tab's session,
and ``?project=ID`` in the address, so a refresh or a bookmark reopens it.

Widget keys are built by ``widget_key``: they carry the reload generation (bumped by "Reload"), so a
reload throws away what the user typed and shows what is stored, and a fingerprint of the stored
value, so a widget resets when its stored value changed (after a merge, a split, or an edit saved from
another place) but keeps what the user is typing otherwise.
"""

from __future__ import annotations

import zlib

# --- query parameters -----------------------------------------------------------------------------
QP_PROJECT = "project"

# --- session_state keys ---------------------------------------------------------------------------
PROJECT_ID = "sb.project_id"  # int | None: the open project
BASE_VERSION = "sb.base_version"  # dict[int, int]: project id -> version the page's edits are based on
RELOAD_GEN = "sb.reload_gen"  # int: bumped by "Reload" so every editing widget starts afresh
FLASH = "sb.flash"  # list[(kind, message)]: shown once at the top of the next run
RECENT_ACTIONS = "sb.recent_actions"  # dict[str, float]: action name -> when it last ended (double clicks)
STORY_NOT_KEPT = "sb.story_not_kept"  # (project id, why) when the story text typed last could not be kept
DRAFTS = "sb.drafts"  # dict[str, object]: editor widget key -> the stored value it started from
FOLLOWED = "sb.followed"  # dict[str, (str, str)]: editor key -> (text it showed, text stored elsewhere it now shows)
WATCH_RERUN = "sb.watch_rerun"  # bool: the coming run was asked for by a watcher, not by this tab's person
WATCHER_RUN = "sb.watcher_run"  # bool: the run going on now was asked for by a watcher (see ui.person_ran)
SEEN_JOBS = "sb.seen_jobs"  # set[str]: finished jobs whose outcome the user dismissed
SPLIT_MODE = "sb.split_mode"  # "sentences" | "words"
SPLIT_SENTENCES = "sb.split_sentences"  # int: sentences per page
SPLIT_WORDS = "sb.split_words"  # int: words per page
REDO_ALL = "sb.redo_all"  # bool: "illustrate all" redraws pages that have a picture
LIBRARY_SEARCH = "sb.library.search"  # str
CONFIRM_DELETE = "sb.library.confirm_delete"  # int | None: project awaiting "delete"
CONFIRM_PAGE_DELETE = "sb.confirm_page_delete"  # int | None: the page awaiting "delete the page"
CLOSE_MENUS = "ui.close_menus"  # bool: an action in a popover menu succeeded; close the menus on the next run
REDO_ALL_DONE = "sb.redo_all_done"  # bool: a "Redraw all" job was started; the switch turns off after it
CONFIRM_EMPTY_BIN = "sb.confirm_empty_bin"  # int | None: the story whose bin awaits "empty the bin"
UNDO_DELETE = "sb.library.undo_delete"  # (title, bundle bytes) of the story deleted last, to bring it back
UPLOAD_GEN = "sb.upload_gen"  # int: bumped to clear file uploaders after a successful upload
PROJECT_READ = "sb.project_read"  # (stamp, ProjectView): the open story as read last, reused while its stamp holds
SETTINGS_PROFILE = "sb.settings.profile"  # str: the profile picked on the settings page, before it is saved
# Keyed widgets named after what they belong to (ID: a project, page or picture id):
#   library:    menu.ID (card menu popover), open.ID, rename.title.ID, rename.go.ID, dup.ID, export.ID,
#               delete.ID, delete.yes.ID, delete.no.ID, import.GEN
#   storyboard: story.split, story.draft, details.save, illustrate.all, stop.JOB, seen.JOB, new.ID, same.ID,
#               dl.ID, pop.edit.ID, pop.pictures.ID, pop.more.ID, save.ID, savedraw.ID, use.ID, dlv.ID,
#               delill.ID, upload.ID.GEN, upload.use.ID, splitat.ID, split.ID, merge.ID, and the editors
#               made by widget_key() (w.story…, w.title…, w.author…, w.style…, w.seg.text/prompt/neg/seed/lock…,
#               w.setting…, w.dedication…, w.closing…, w.char.name/desc…), characters.save
#               cast sheet: pop.ref.PROJECT.I (I: the character's place), ref.draw.I, ref.prop.I.K, ref.pick.I,
#               ref.pick.go.I, ref.upload.I.GEN, ref.upload.go.I, ref.remove.I; best of N: w.candidates…,
#               cand.ID (a picture of the last draw)

# From images (screens/from_images.py)
IMAGES_UPLOAD_GEN = "sb.images.upload_gen"  # int: bumped to empty the picture uploader once a story is started
IMAGES_READ = "sb.images.read"  # dict[str, actions.PictureRead]: each upload read once, by file id
IMAGES_ORDER = "sb.images.order"  # list[str]: the uploads' file ids in the order the user chose
IMAGES_LEFT_OUT = "sb.images.left_out"  # list[str]: uploads the user left out of the story (still uploaded)
IMAGES_HINTS = "sb.images.hints"  # str: names of people or pets, the place, what happened
IMAGES_TONE = "sb.images.tone"  # str: a key of engine.storyteller.TONES
IMAGES_AGE = "sb.images.age"  # int: the reader's age
IMAGES_WORDS = "sb.images.words"  # int: words per picture
IMAGES_CLICKED = "sb.images.clicked"  # bool: a story panel button acted; the page runs in full next
IMAGES_NEW = "sb.images.new"  # bool: show the uploader although a story from pictures is open

# Export (screens/export.py)
EXPORT_ALL_PAGES = "sb.export.all_pages"  # (export key, PNGs of every page) once asked for
EXPORT_RESULT = "sb.export.result"  # actions.ExportOutcome: the last PDF made (reruns reuse it)
EXPORT_LAYOUT = "sb.export.layout"  # str: a key of exports.LAYOUTS
EXPORT_SIZE = "sb.export.size"  # str: a key of exports.PAGE_SIZES
EXPORT_ORIENTATION = "sb.export.orientation"  # "auto" | "portrait" | "landscape"
EXPORT_BLEED = "sb.export.bleed"  # bool
EXPORT_CROP_MARKS = "sb.export.crop_marks"  # bool
EXPORT_FONT = "sb.export.font"  # "serif" | "sans"
EXPORT_COVER = "sb.export.cover"  # bool
EXPORT_CLOSING = "sb.export.closing"  # bool
EXPORT_NUMBERS = "sb.export.numbers"  # bool
EXPORT_PICK = "sb.export.pick"  # int | None: the project picked when none is open
# and the editor made by widget_key("export.closing", …): the book's closing words, saved as typed
EXPORT_AFTER_FINISH = "sb.export.after_finish"  # (project id, job id): make the PDF once that finishing job is done

# --- screens (paths relative to studio/Home.py, as st.switch_page takes them) -----------------------
SCREEN_LIBRARY = "screens/library.py"
SCREEN_STORYBOARD = "screens/storyboard.py"
SCREEN_FROM_IMAGES = "screens/from_images.py"
SCREEN_EXPORT = "screens/export.py"
SCREEN_SETTINGS = "screens/settings.py"


def fingerprint(value: object) -> str:
    return format(zlib.crc32(repr(value).encode("utf-8", "surrogatepass")), "08x")


def widget_key(name: str, *parts: object, stored: object = None, gen: int = 0) -> str:
    """A widget key: NAME.PART….gGEN[.FINGERPRINT of the stored value]."""
    key = ".".join(["w", name, *(str(p) for p in parts), f"g{gen}"])
    return key if stored is None else f"{key}.{fingerprint(stored)}"
