"""Issue 16, a studio that answers at once: the settings and helpers that keep a click's answer quick.

The end-to-end figures come from `python -m benchmarks.studio` (docs/benchmarks.md), not from timed tests."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_no_full_garbage_collection_after_every_run():
    # Streamlit's default gc.collect(2) after each run walks every object torch and diffusers made: a quarter of a
    # second or more of held GIL per run, fragment ticks included (profiled in issue 16).
    config = tomllib.loads((ROOT / "studio" / ".streamlit" / "config.toml").read_text())
    assert config["runner"]["postScriptGC"] is False
