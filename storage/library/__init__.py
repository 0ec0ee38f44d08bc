"""Every library operation: projects, pages, pictures, characters, bundles, manifests.

``Library`` is thread-safe and cheap to share (keep one per process, e.g. in ``st.cache_resource``);
each call opens its own short transaction and returns frozen views, never ORM objects or sessions.

Concurrency rules:

* Every user edit names the project ``version`` it was based on. If the project changed since,
  ConflictError is raised and nothing is written; a successful edit bumps ``version`` and ``updated``.
* Background jobs write while the user edits, and what they write is not another person's edit:
  ``add_picture`` (a picture) and ``save_job_output`` (captions, passages, a title and story
  settings) leave ``version`` alone and bump ``updated`` only, so a tab open on the project stays
  current while two people's edits still conflict. Choosing and deleting pictures never
  overwrite anyone's text either; they accept an optional ``expected_version``.
* A page's ``start``/``end`` offsets always lie within the story text (they point into the text the
  page was cut from; a shorter draft clamps them).
* Every write transaction begins IMMEDIATE (see storage/db.py).

File rules: a picture's file is written and fsynced before the row naming it commits; files are
removed only while holding the write lock and only when no row names them, and a writer re-checks
its file under the lock, so a removal and an insert of the same picture cannot cross.
"""

from storage.library.base import UNSET, SweepReport
from storage.library.bundles import BundleMethods
from storage.library.pages import PageMethods
from storage.library.pictures import PictureMethods
from storage.library.projects import ProjectMethods
from storage.views import (
    CharacterView,
    PageInput,
    PageView,
    PictureView,
    ProjectSummary,
    ProjectView,
    SourceImageView,
)

__all__ = [
    "UNSET",
    "CharacterView",
    "Library",
    "PageInput",
    "PageView",
    "PictureView",
    "ProjectSummary",
    "ProjectView",
    "SourceImageView",
    "SweepReport",
]


class Library(ProjectMethods, PageMethods, PictureMethods, BundleMethods):
    """The user's saved projects: one SQLite file and a content-addressed image folder in ``home``.

    One class for callers, written in parts by subject: projects, pages, pictures, bundles (storage/library/).
    """
