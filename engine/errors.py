"""Errors a person can cause or meet, each carrying one sentence that person understands."""


class StudioError(Exception):
    """Base of every error whose message is meant for the user, not the developer."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InputError(StudioError):
    """The story, image, setting or option given cannot be used as it is."""


class ModelUnavailable(StudioError):
    """A model named by the profile is not downloaded, not found, or not loadable."""


class OutOfMemory(StudioError):
    """The device ran out of memory; the message says what to try instead."""


class Cancelled(StudioError):
    """The user stopped the job."""

    def __init__(self, message: str = "Stopped at your request."):
        super().__init__(message)


class ImageRejected(InputError):
    """An uploaded or imported picture is broken, hostile, or of a kind we do not read."""
