"""How every role loads its model: through the shared cache, offline when asked, errors in words."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from engine.cache import _release_memory, get_cache
from engine.device import DeviceChoice
from engine.errors import ModelUnavailable, OutOfMemory
from engine.profiles import is_offline, resolve_model, unavailable_message


def hub_kwargs() -> dict:
    """Keyword arguments every from_pretrained call takes: safetensors only, no remote code."""
    return {"local_files_only": is_offline(), "use_safetensors": True}


@contextmanager
def loaded_model(role: str, ref: str, choice: DeviceChoice, loader: Callable[[str], Any]) -> Iterator[Any]:
    """Yield the cached model of `role` at `ref` for this device, loading it with loader(location) once.

    A model that cannot be found, downloaded or read raises ModelUnavailable with what to do next.
    """
    key = (role, ref, choice.device, str(choice.dtype))

    def load() -> Any:
        location = resolve_model(ref)
        try:
            with oom_guard("loading the " + role):
                return loader(location)
        except (OutOfMemory, ModelUnavailable):
            raise
        except (OSError, ValueError, KeyError, RuntimeError, ImportError) as exc:
            raise ModelUnavailable(unavailable_message(ref, role, exc)) from None

    with get_cache().use(key, load) as model:
        yield model


@contextmanager
def oom_guard(what: str) -> Iterator[None]:
    """Turn a device out-of-memory error into a sentence, after dropping what the failed step held."""
    try:
        yield
    except torch.OutOfMemoryError:
        pass
    else:
        return
    # The exception (and its traceback's frames holding tensors) is gone by here: free, then explain.
    get_cache().clear()
    _release_memory()
    raise OutOfMemory(
        f"The GPU ran out of memory while {what}. Try fewer pictures at once, a smaller "
        f"picture size, or the 'fast' profile; nothing already saved was lost."
    )
