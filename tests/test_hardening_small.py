"""Small holes a hostile tester found (issue 14, item 8): file modes, reserved names, empty and linked pictures,
metadata bombs, and the engine's command line checking its inputs before torch loads."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from core.paths import WINDOWS_RESERVED_NAMES, file_stem
from engine.errors import ImageRejected
from engine.imageio import load_image
from exports.__main__ import main as exports_main
from exports.book import book_from_manifest

REPO = Path(__file__).resolve().parent.parent


def _manifest(folder: Path, images: list[str]) -> Path:
    segments = [{"index": i, "text": f"Page {i}.", "image": name} for i, name in enumerate(images)]
    path = folder / "manifest.json"
    path.write_text(json.dumps({"format": "storybook-manifest", "version": 1, "title": "Pip", "segments": segments}))
    return path


def _png(path: Path) -> None:
    Image.new("RGB", (32, 32), (200, 120, 40)).save(path)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
@pytest.mark.parametrize("kind", ["pdf", "zip"])
def test_exports_get_the_users_umask_like_any_new_file(tmp_path, monkeypatch, kind, mask):
    monkeypatch.setenv("STORYBOOK_HOME", str(tmp_path / "home"))
    _png(tmp_path / "a.png")
    manifest = _manifest(tmp_path, ["a.png"])
    out = tmp_path / f"book.{kind}"
    old = os.umask(mask)
    try:
        assert exports_main([kind, "--manifest", str(manifest), str(out)]) == 0
        (tmp_path / "plain").write_bytes(b"")
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~mask == stat.S_IMODE((tmp_path / "plain").stat().st_mode)


@pytest.mark.parametrize("title", ["CON", "con", "Prn", "AUX", "nul", "COM1", "lpt9", "NUL.txt", "  Aux!  "])
def test_reserved_windows_names_never_become_file_names(title):
    for stem in (file_stem(title), file_stem(title, "story")):
        assert stem.split(".")[0].strip().lower() not in WINDOWS_RESERVED_NAMES, stem
        assert stem  # something is always left
    assert file_stem("The Moon Garden") == "The Moon Garden"
    assert file_stem("Conrad's Boat") == "Conrad's Boat"


def test_the_studio_download_names_avoid_reserved_names(tmp_path):
    from studio.screens.library import _slug

    assert _slug("CON") == "CON (book)" and _slug("Ünïcode story") == "Ünïcode story"


def test_an_empty_picture_in_a_manifest_is_a_warning(tmp_path):
    _png(tmp_path / "a.png")
    (tmp_path / "empty.png").write_bytes(b"")
    book = book_from_manifest(_manifest(tmp_path, ["a.png", "empty.png"]))
    assert book.pages[0].image and book.pages[1].image is None
    assert any("page 2" in w and "empty" in w for w in book.warnings), book.warnings


def test_a_manifest_picture_that_is_a_link_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    _png(outside / "secret.png")
    run = tmp_path / "run"
    run.mkdir()
    (run / "a.png").symlink_to(outside / "secret.png")
    book = book_from_manifest(_manifest(run, ["a.png"]))
    assert book.pages[0].image is None
    assert any("link" in w for w in book.warnings), book.warnings


def test_a_png_with_a_huge_text_chunk_says_metadata_too_large():
    info = PngInfo()
    info.add_text("Comment", "x" * 20_000_000, zip=True)  # a few KB on disk, 20 MB unpacked
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG", pnginfo=info)
    with pytest.raises(ImageRejected) as info_:
        load_image(buffer.getvalue(), name="bomb.png")
    assert "metadata too large" in info_.value.message and "damaged" not in info_.value.message


TORCH_CHECK = """
import sys, runpy
sys.argv = ["engine", *sys.argv[1:]]
try:
    runpy.run_module("engine", run_name="__main__")
except SystemExit as exit_:
    code = exit_.code
print("TORCH" if "torch" in sys.modules else "NO-TORCH", code)
"""


@pytest.mark.parametrize(
    "args",
    [
        ["tell", "{empty}"],
        ["caption", "{empty}"],
        ["tell", "{good}", "--words", "5"],
        ["tell", "{good}", "--hints", "x" * 1200],
    ],
    ids=["tell-empty", "caption-empty", "tell-words", "tell-hints"],
)
def test_engine_refuses_bad_input_before_importing_torch(tmp_path, args):
    (tmp_path / "empty.png").write_bytes(b"")
    _png(tmp_path / "good.png")
    argv = [a.format(empty=tmp_path / "empty.png", good=tmp_path / "good.png") for a in args]
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "STORYBOOK_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-c", TORCH_CHECK, *argv], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.stdout.strip().splitlines()[-1] == "NO-TORCH 1", done.stdout + done.stderr
    assert "Error:" in done.stderr and "Traceback" not in done.stderr


def test_the_export_benchmark_runs_and_prints_its_figures(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.export", "--chars", "6000", "--repeats", "1", "--emoji", "40"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "story, A5, text only" in done.stdout and "40 emoji with no space between" in done.stdout
