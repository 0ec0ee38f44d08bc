"""The one error base: an error whose message is a sentence a person can read.

Each layer derives its own errors from ``UserError`` (engine.errors, storage.errors, exports.errors).
Pages show ``error.message`` with ``st.error``; command lines print it on stderr and exit with status 1.
"""

from __future__ import annotations


class UserError(Exception):
    """Base of every error whose message is meant for the person using the studio, not the developer."""

    default_message = "That could not be done."

    def __init__(self, message: str | None = None):
        message = message or self.default_message
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InputError(UserError):
    """The story, picture, setting or option given cannot be used as it is."""
