"""How every role loads its model: through the shared cache, offline when asked, errors in words."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from engine.cache import _release_memory, get_cache
from engine.device import DeviceChoice, count_params, cpu_threads_while_held
from engine.errors import ModelUnavailable, OutOfMemory
from engine.profiles import is_offline, resolve_model, unavailable_message


def hub_kwargs() -> dict:
    """Keyword arguments every from_pretrained call takes: safetensors only, no remote code."""
    return {"local_files_only": is_offline(), "use_safetensors": True}


def _model_key(role: str, ref: str, choice: DeviceChoice, copy: str | None = None) -> tuple:
    key: tuple = (role, ref, choice.device, str(choice.dtype))
    return key if copy is None else (*key, "copy", copy)


def is_loaded(role: str, ref: str, choice: DeviceChoice) -> bool:
    """Whether loaded_model would find this model in memory (False: it is read from disk first, a cold start)."""
    return _model_key(role, ref, choice) in get_cache()


@contextmanager
def loaded_model(
    role: str, ref: str, choice: DeviceChoice, loader: Callable[[str], Any], *, copy: str | None = None
) -> Iterator[Any]:
    """Yield the cached model of `role` at `ref` for this device, loading it with loader(location) once.

    copy: a separate copy of the model, cached under this name beside the shared one, for a caller that
    changes the model (its memory layout, a compiled graph) in ways that must not reach everyone else's.
    A model that cannot be found, downloaded or read raises ModelUnavailable with what to do next.
    """
    key = _model_key(role, ref, choice, copy)

    def load() -> Any:
        location = resolve_model(ref)
        if Path(location).is_dir():
            check_model_folder(role, location)
        try:
            with oom_guard("loading the " + role):
                return loader(location)
        except (OutOfMemory, ModelUnavailable):
            raise
        except (OSError, ValueError, KeyError, RuntimeError, ImportError) as exc:
            raise ModelUnavailable(unavailable_message(ref, role, exc)) from None
        except Exception as exc:
            # safetensors raises its own SafetensorError (an Exception) for a file it cannot parse, e.g. one
            # in the hub's cache that the folder check above could not see.
            if type(exc).__name__ == "SafetensorError":
                raise ModelUnavailable(damaged_message(role, ref, "a weights file cannot be read")) from None
            raise

    with get_cache().use(key, load) as model:
        if choice.is_gpu:
            yield model
        else:
            # On the CPU, torch's threads fit the model: one for a small one, every core for a full-size one.
            with cpu_threads_while_held(count_params(model)):
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


# A git-lfs pointer left where the weights should be (a clone without `git lfs pull`) starts with this.
_LFS_POINTER = b"version https://git-lfs"
# No honest safetensors header is this large: a bigger length field means the file is not safetensors.
_MAX_HEADER_BYTES = 100 * 2**20


def damaged_message(role: str, folder: str, detail: str) -> str:
    return (
        f"The {role} model folder '{folder}' is damaged or incomplete ({detail}): download it again "
        f"(python -m engine fetch), or choose another model in Settings."
    )


def check_model_folder(role: str, folder: str) -> None:
    """Refuse a local model folder whose safetensors weights are truncated, empty, git-lfs pointers or missing.

    Reads only each file's header (never its tensors), so it costs a few milliseconds before a load that would
    otherwise fail deep inside safetensors with an error no person can act on.
    """
    problem = _damage(Path(folder))
    if problem:
        raise ModelUnavailable(damaged_message(role, folder, problem))


def _damage(root: Path) -> str | None:
    for index in sorted(root.rglob("*.safetensors.index.json")):
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map", {})
            shards = sorted(set(weight_map.values()))
        except (OSError, ValueError, AttributeError):
            return f"{index.relative_to(root)} cannot be read"
        for shard in shards:
            if not (index.parent / shard).is_file():
                return f"{(index.parent / shard).relative_to(root)} is missing"
    for weights in sorted(root.rglob("*.safetensors")):
        problem = _safetensors_damage(weights)
        if problem:
            return f"{weights.relative_to(root)} {problem}"
    return None


def _safetensors_damage(path: Path) -> str | None:
    try:
        size = path.stat().st_size
        with path.open("rb") as file:
            head = file.read(8)
            if size == 0:
                return "is empty"
            if head.startswith(_LFS_POINTER[:8]) and file.read(64).startswith(_LFS_POINTER[8:]):
                return "is a git-lfs pointer, not the weights"
            if len(head) < 8:
                return "is cut short"
            header_bytes = int.from_bytes(head, "little")
            if header_bytes > min(size - 8, _MAX_HEADER_BYTES):
                return "is cut short" if header_bytes <= _MAX_HEADER_BYTES else "is not a safetensors file"
            header = json.loads(file.read(header_bytes))
    except OSError:
        return "cannot be read"
    except ValueError:
        return "is not a safetensors file"
    if not isinstance(header, dict):
        return "is not a safetensors file"
    try:
        end = max((int(entry["data_offsets"][1]) for key, entry in header.items() if key != "__metadata__"), default=0)
    except (TypeError, KeyError, IndexError, ValueError):
        return "is not a safetensors file"
    if 8 + header_bytes + end > size:
        return "is cut short"
    return None
