"""The one error type exports raise for problems a person can fix."""

from core.errors import UserError


class ExportError(UserError):
    """The book cannot be printed as asked; the message says why in one sentence."""
