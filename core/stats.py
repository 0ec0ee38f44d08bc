"""Small statistics a screen and the engine both report, torch-free."""

from __future__ import annotations

import random
from collections.abc import Sequence

BOOTSTRAP_RESAMPLES = 2000


def bootstrap_mean(values: Sequence[float], *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> dict:
    """{"mean", "low", "high", "n"}: the mean and its 95 % percentile bootstrap interval (n=0: all None)."""
    values = [float(v) for v in values]
    if not values:
        return {"mean": None, "low": None, "high": None, "n": 0}
    mean = sum(values) / len(values)
    if len(values) == 1:
        return {"mean": mean, "low": mean, "high": mean, "n": 1}
    rng = random.Random(seed)
    n = len(values)
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(resamples))
    return {"mean": mean, "low": means[int(0.025 * resamples)], "high": means[int(0.975 * resamples) - 1], "n": n}
