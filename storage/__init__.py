"""Saved projects: SQLite through SQLAlchemy, image files by content hash. Imports neither engine nor streamlit.

    from storage import Library
    library = Library()                  # STORYBOOK_HOME, else the platform's user data folder
    project = library.create_project("The Lighthouse Fox", story_text=text)
"""
from .errors import BundleError, ConflictError, DiskFullError, InvalidInput, NotFound, StorageError
from .library import UNSET, Library, SweepReport
from .views import (
    CharacterView,
    IllustrationView,
    ProjectSummary,
    ProjectView,
    SegmentInput,
    SegmentView,
    SourceImageView,
)

__all__ = [
    "Library",
    "UNSET",
    "SweepReport",
    "ProjectView",
    "ProjectSummary",
    "SegmentView",
    "IllustrationView",
    "CharacterView",
    "SourceImageView",
    "SegmentInput",
    "StorageError",
    "NotFound",
    "ConflictError",
    "InvalidInput",
    "BundleError",
    "DiskFullError",
]
