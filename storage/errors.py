"""Errors a person can cause or meet in the library, each carrying one sentence that person understands.

Pages show ``error.message`` with ``st.error``; the CLI prints it on stderr and exits with status 1.
"""

from __future__ import annotations

from core.errors import InputError, UserError


class StorageError(UserError):
    """Base of every storage error whose message is meant for the user, not the developer."""

    default_message = "The library could not complete that request."


class NotFound(StorageError):
    """The project, page, picture or image asked for does not exist (any more)."""

    default_message = "That item no longer exists. It may have been deleted in another tab or window."


class ConflictError(StorageError):
    """The project changed since the caller read it; the caller's edit was not saved."""

    default_message = (
        "This project was changed in another tab or window. "
        "Reload it to see the latest version; your edit was not saved."
    )


class InvalidInput(StorageError, InputError):
    """A text, number, picture or option given cannot be stored as it is."""


class BundleError(StorageError):
    """A project bundle or an engine manifest cannot be imported (damaged, hostile, or of another kind)."""


class DiskFullError(StorageError):
    """The disk (or the user's quota) ran out of space while saving; nothing was changed."""

    default_message = "The disk is full: free some space and try again. Nothing was changed."
