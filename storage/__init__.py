"""Saved projects: SQLite through SQLAlchemy, image files by content hash. Imports neither engine nor streamlit.

from storage import Library
library = Library()                  # STORYBOOK_HOME, else the platform's user data folder
project = library.create_project("The Lighthouse Fox", story_text=text)
"""

from storage.errors import BundleError, ConflictError, DiskFullError, InvalidInput, NotFound, StorageError
from storage.library import UNSET, Library, SweepReport
from storage.views import (
    CharacterView,
    PageInput,
    PageView,
    PictureView,
    ProjectSummary,
    ProjectView,
    ProposalView,
    SourceImageView,
)

__all__ = [
    "UNSET",
    "BundleError",
    "CharacterView",
    "ConflictError",
    "DiskFullError",
    "InvalidInput",
    "Library",
    "NotFound",
    "PageInput",
    "PageView",
    "PictureView",
    "ProjectSummary",
    "ProjectView",
    "ProposalView",
    "SourceImageView",
    "StorageError",
    "SweepReport",
]
