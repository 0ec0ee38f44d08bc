"""The engine's errors: each carries one sentence the person using the studio understands."""

from core.errors import InputError, UserError

__all__ = ["Cancelled", "EngineError", "ImageRejected", "InputError", "ModelUnavailable", "OutOfMemory"]


class EngineError(UserError):
    """Base of the engine's own errors (models, memory, jobs); bad input raises core's InputError."""


class ModelUnavailable(EngineError):
    """A model named by the profile is not downloaded, not found, or not loadable."""


class OutOfMemory(EngineError):
    """The device ran out of memory; the message says what to try instead."""


class Cancelled(EngineError):
    """The user stopped the job."""

    default_message = "Stopped at your request."


class ImageRejected(InputError):
    """An uploaded or imported picture is broken, hostile, or of a kind we do not read."""
