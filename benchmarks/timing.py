"""The one way the small benchmarks time a case: best and median of the repeats, in wall time and in CPU time
of this process (CPU time is steadier on a busy machine), printed as one line."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Timings:
    walls: list[float]
    cpus: list[float]
    result: Any  # what the last run returned

    def line(self, label: str, *, width: int, digits: int) -> str:
        wall, cpu = self.walls, self.cpus
        return (
            f"{label:<{width}} wall {min(wall):6.{digits}f} s (median {statistics.median(wall):.{digits}f})   "
            f"cpu {min(cpu):6.{digits}f} s (median {statistics.median(cpu):.{digits}f})"
        )


def time_runs(run: Callable[[], object], repeats: int) -> Timings:
    walls, cpus = [], []
    result = None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = run()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return Timings(walls, cpus, result)


def measure(
    label: str,
    run: Callable[[], object],
    repeats: int,
    *,
    width: int = 44,
    digits: int = 3,
    detail: Callable[[Any], str] = lambda result: "",
) -> Timings:
    """Run `run` `repeats` times and print the label's line, then detail(what the last run returned)."""
    timings = time_runs(run, repeats)
    print(timings.line(label, width=width, digits=digits) + detail(timings.result), flush=True)
    return timings
