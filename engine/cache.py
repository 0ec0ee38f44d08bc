"""One process-wide model cache: load once, share across requests and users, evict least recently used.

Entries are pinned while a caller is inside `use(...)`, so a model is never evicted mid-generation.
A model that is loading is waited for, not loaded twice, while lookups of other models carry on.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from core.hardware import memory_bytes


def estimate_bytes(obj: Any) -> int:
    """Bytes held by the tensors of a module, a diffusers pipeline, or a container of them."""
    if isinstance(obj, torch.nn.Module):
        return sum(t.numel() * t.element_size() for t in obj.parameters()) + sum(
            t.numel() * t.element_size() for t in obj.buffers()
        )
    components = getattr(obj, "components", None)
    if isinstance(components, dict):
        return sum(estimate_bytes(c) for c in components.values())
    if isinstance(obj, dict):
        return sum(estimate_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(estimate_bytes(v) for v in obj)
    model = getattr(obj, "model", None)
    return estimate_bytes(model) if model is not None and model is not obj else 0


def default_budget_bytes() -> int:
    """STORYBOOK_CACHE_GB if set; else 85% of GPU memory on CUDA; else half of host memory (core.hardware.memory_bytes:
    a container's limit when lower)."""
    override = os.environ.get("STORYBOOK_CACHE_GB", "").strip()
    if override:
        return int(float(override) * 2**30)
    if torch.cuda.is_available():
        return int(torch.cuda.mem_get_info()[1] * 0.85)
    memory = memory_bytes()
    return int(memory * 0.5) if memory else 8 * 2**30


@dataclass
class _Entry:
    value: Any
    nbytes: int
    pins: int = 0
    loaded_at: float = 0.0
    last_used: float = 0.0
    load_seconds: float = 0.0


class ModelCache:
    def __init__(self, budget_bytes: int | None = None):
        self.budget_bytes = default_budget_bytes() if budget_bytes is None else budget_bytes
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._loading: set[Hashable] = set()
        self._cond = threading.Condition(threading.RLock())
        self.load_count: dict[Hashable, int] = {}
        self.evictions: list[Hashable] = []

    @contextmanager
    def use(
        self, key: Hashable, loader: Callable[[], Any], size: Callable[[Any], int] = estimate_bytes
    ) -> Iterator[Any]:
        """Yield the model for key, loading it with loader() the first time; pinned until the block ends."""
        entry = self._acquire(key, loader, size)
        try:
            yield entry.value
        finally:
            with self._cond:
                entry.pins -= 1
                entry.last_used = time.time()
                self._evict_over_budget()

    def _acquire(self, key, loader, size) -> _Entry:
        with self._cond:
            while key in self._loading:
                self._cond.wait()
            entry = self._entries.get(key)
            if entry is not None:
                entry.pins += 1
                entry.last_used = time.time()
                self._entries.move_to_end(key)
                return entry
            self._loading.add(key)
        try:
            started = time.perf_counter()
            value = loader()
            entry = _Entry(
                value=value,
                nbytes=int(size(value)),
                pins=1,
                loaded_at=time.time(),
                last_used=time.time(),
                load_seconds=time.perf_counter() - started,
            )
        except BaseException:
            with self._cond:
                self._loading.discard(key)
                self._cond.notify_all()
            raise
        # Stored in the same locked step that ends the loading: a waiter woken in between would find
        # neither, and load the model a second time.
        with self._cond:
            self._entries[key] = entry
            self.load_count[key] = self.load_count.get(key, 0) + 1
            self._loading.discard(key)
            self._cond.notify_all()
            self._evict_over_budget()
        return entry

    def _evict_over_budget(self) -> None:
        freed = False
        while self.total_bytes() > self.budget_bytes:
            victim = next((k for k, e in self._entries.items() if e.pins == 0), None)
            if victim is None:
                break
            del self._entries[victim]
            self.evictions.append(victim)
            freed = True
        if freed:
            _release_memory()

    def total_bytes(self) -> int:
        with self._cond:
            return sum(e.nbytes for e in self._entries.values())

    def __contains__(self, key: Hashable) -> bool:
        with self._cond:
            return key in self._entries

    def report(self) -> list[dict]:
        """What is loaded, least recently used first: key, bytes, pins, load time, seconds since use."""
        now = time.time()
        with self._cond:
            return [
                {
                    "key": k,
                    "bytes": e.nbytes,
                    "pinned": e.pins > 0,
                    "load_seconds": round(e.load_seconds, 2),
                    "idle_seconds": round(now - e.last_used, 1),
                }
                for k, e in self._entries.items()
            ]

    def evict(self, key: Hashable) -> bool:
        with self._cond:
            entry = self._entries.get(key)
            if entry is None or entry.pins:
                return False
            del self._entries[key]
        _release_memory()
        return True

    def clear(self) -> None:
        with self._cond:
            for key in [k for k, e in self._entries.items() if e.pins == 0]:
                del self._entries[key]
        _release_memory()


def _release_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


_cache: ModelCache | None = None
_cache_lock = threading.Lock()


def get_cache() -> ModelCache:
    """The process-wide cache shared by every request, job and user."""
    global _cache
    with _cache_lock:
        if _cache is None:
            _cache = ModelCache()
        return _cache


@contextmanager
def use_cache(cache: ModelCache) -> Iterator[ModelCache]:
    """For the block, `get_cache()` hands out `cache` instead of the process-wide one; then the shared one is back.

    For measurements only (a benchmark's own, empty cache: what a process without ours does per request). The
    swap is process-wide, so nothing else may be loading models meanwhile; models already pinned stay pinned in
    the cache they came from.
    """
    global _cache
    with _cache_lock:
        previous, _cache = _cache, cache
    try:
        yield cache
    finally:
        with _cache_lock:
            _cache = previous
