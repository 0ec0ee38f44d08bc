"""Where the engine keeps its own files inside the studio's data folder."""

from pathlib import Path

from core.paths import data_home


def tiny_models_home() -> Path:
    return data_home() / "models" / "tiny"
