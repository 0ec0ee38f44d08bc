"""python -m exports, run as a subprocess the way scripts and batch jobs use it."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PdfReader

REPO = Path(__file__).resolve().parent.parent


def run(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "STORYBOOK_HOME": str(home), "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "exports", *args], capture_output=True, text=True, cwd=REPO, env=env, timeout=120
    )


@pytest.fixture
def manifest(tmp_path) -> Path:
    folder = tmp_path / "run"
    folder.mkdir()
    segments = []
    for i, text in enumerate(["Pip lived in a lighthouse <b>by</b> the sea.", "The lamp went out & Pip climbed."]):
        Image.new("RGB", (96, 96), (40 * i, 120, 200)).save(folder / f"segment-{i:03d}.png")
        segments.append({"index": i, "text": text, "image": f"segment-{i:03d}.png", "seed": i})
    path = folder / "manifest.json"
    path.write_text(
        json.dumps({"format": "storybook-manifest", "version": 1, "title": "Pip", "author": "", "segments": segments})
    )
    return path


def test_pdf_and_zip_from_a_manifest(tmp_path, manifest):
    out = tmp_path / "book.pdf"
    done = run(
        "pdf",
        "--manifest",
        str(manifest),
        str(out),
        "--layout",
        "facing",
        "--page-size",
        "8x8",
        "--bleed",
        home=tmp_path / "home",
    )
    assert done.returncode == 0, done.stderr
    assert "6 pages" in done.stdout
    reader = PdfReader(out)
    assert len(reader.pages) == 6 and "/TrimBox" in reader.pages[1]
    assert "<b>by</b>" in reader.pages[2].extract_text()
    assert "dpi" in done.stderr  # 96 px pictures on an 8 inch page are reported, not fatal
    assert sum("dpi" in line for line in done.stderr.splitlines()) == 1  # in one note for all of them

    done = run(
        "pdf",
        "--manifest",
        str(manifest),
        str(out),
        "--layout",
        "side_by_side",
        "--page-size",
        "letter",
        home=tmp_path / "home",
    )
    assert done.returncode == 0, done.stderr  # page sizes as people type them
    box = PdfReader(out).pages[1].mediabox
    assert (float(box.width), float(box.height)) == (792, 612)  # US Letter, landscape for side by side

    out_zip = tmp_path / "book.zip"
    done = run("zip", "--manifest", str(manifest.parent), str(out_zip), home=tmp_path / "home")
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(out_zip) as zf:
        assert sorted(zf.namelist()) == ["manifest.json", "page-01.png", "page-02.png", "story.md"]


def test_errors_are_one_sentence_exit_1_and_leave_no_file(tmp_path, manifest):
    out = tmp_path / "book.pdf"
    for args in (
        ["pdf", "--manifest", str(tmp_path / "nowhere.json"), str(out)],
        ["pdf", "--manifest", str(manifest), str(out), "--layout", "zigzag"],
        ["pdf", "--manifest", str(manifest), str(tmp_path / "no-such-folder" / "book.pdf")],
        ["pdf", "not-a-number", str(out)],
        ["zip", str(out)],
    ):
        done = run(*args, home=tmp_path / "home")
        assert done.returncode == 1, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr, done.stderr
    assert list(tmp_path.glob("*.pdf")) == [] and list(tmp_path.glob(".*part")) == []


def test_pdf_of_a_saved_project(tmp_path):
    library_mod = pytest.importorskip("storage.library")
    from storage.views import PageInput

    home = tmp_path / "home"
    story = "Pip lived in a lighthouse. One night the lamp went out."
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 40, 40)).save(buffer, "PNG")
    with library_mod.Library(home=home) as library:
        project = library.create_project("Saved Pip", story_text=story)
        project = library.save_story(
            project.id,
            project.version,
            story,
            [
                PageInput("Pip lived in a lighthouse.", 0, 26),
                PageInput("One night the lamp went out.", 27, len(story)),
            ],
        )
        library.add_picture(project.pages[0].id, buffer.getvalue(), {"seed": 1})
        project = library.update_project(project.id, project.version, closing="Goodnight, Pip")
    out = tmp_path / "saved.pdf"
    done = run("pdf", str(project.id), str(out), "--layout", "text_band", home=home)
    assert done.returncode == 0, done.stderr
    assert len(PdfReader(out).pages) == 4
    assert "One night the lamp went out." in PdfReader(out).pages[2].extract_text()
    # The closing page says the book's own closing words (as the studio's PDF does); --closing-words wins.
    assert "Goodnight, Pip" in PdfReader(out).pages[3].extract_text()
    done = run("pdf", str(project.id), str(out), "--closing-words", "Sleep well", home=home)
    assert done.returncode == 0, done.stderr
    assert "Sleep well" in PdfReader(out).pages[-1].extract_text()
    missing = run("pdf", "9999", str(tmp_path / "missing.pdf"), home=home)
    assert missing.returncode == 1 and len(missing.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "missing.pdf").exists()
