"""The one error type exports raise for problems a person can fix."""

from engine.errors import StudioError


class ExportError(StudioError):
    """The book cannot be printed as asked; the message says why in one sentence."""
