"""``python -m storage``: list, show, export-bundle, import-bundle, import-manifest; errors in one sentence."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from storage.library import Library
from storage.views import PageInput


def _png(n: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (n, 3, 3)).save(buffer, "PNG")
    return buffer.getvalue()


def _cli(home: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STORYBOOK_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "storage", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )


def test_cli_commands(tmp_path):
    home = tmp_path / "home"
    library = Library(home)
    story = "Der Fuchs 🦊."
    project = library.create_project("CLI 狐", story_text=story)
    project = library.save_story(project.id, project.version, story, [PageInput("Der Fuchs 🦊.", 0, 12)])
    library.add_picture(project.pages[0].id, _png(1), {"seed": 5})
    library.create_project("Other")

    listed = _cli(home, "list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "CLI 狐" in listed.stdout and "Other" in listed.stdout
    searched = _cli(home, "list", "--search", "FUCHS", "--json")
    assert [p["title"] for p in json.loads(searched.stdout)] == ["CLI 狐"]

    shown = _cli(home, "show", str(project.id))
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert doc["title"] == "CLI 狐" and doc["pages"][0]["selected"]["settings"] == {"seed": 5}
    assert Path(doc["pages"][0]["selected"]["image_path"]).is_file()

    bundle = tmp_path / "fox.zip"
    exported = _cli(home, "export-bundle", str(project.id), str(bundle))
    assert exported.returncode == 0 and bundle.is_file(), exported.stderr
    other_home = tmp_path / "other"
    imported = _cli(other_home, "--home", str(other_home), "import-bundle", str(bundle))
    assert imported.returncode == 0, imported.stderr
    new_id = int(imported.stdout.strip())
    assert Library(other_home).get_project(new_id).story_text == story

    manifest_dir = tmp_path / "out"
    manifest_dir.mkdir()
    (manifest_dir / "segment-000.png").write_bytes(_png(9))
    (manifest_dir / "manifest.json").write_text(
        json.dumps(
            {
                "format": "storybook-manifest",
                "version": 1,
                "title": "From the engine",
                "source_text": "Hello fox.",
                "segments": [
                    {
                        "index": 0,
                        "text": "Hello fox.",
                        "start": 0,
                        "end": 10,
                        "seed": 1,
                        "image": "segment-000.png",
                        "settings": {"seed": 1, "steps": 1},
                    }
                ],
            }
        )
    )
    from_manifest = _cli(home, "import-manifest", str(manifest_dir / "manifest.json"))
    assert from_manifest.returncode == 0, from_manifest.stderr
    assert library.get_project(int(from_manifest.stdout)).title == "From the engine"


def test_cli_errors_are_one_sentence_and_exit_1(tmp_path):
    home = tmp_path / "home"
    Library(home)
    junk = tmp_path / "junk.zip"
    junk.write_text("not a zip")
    empty = tmp_path / "empty.zip"
    empty.write_bytes(b"")
    cases = [
        (("show", "999"), 1, "That project no longer exists"),
        (("show", str(2**64)), 1, "That project no longer exists"),  # beyond SQLite's integers
        (("import-bundle", str(junk)), 1, "not a zip file"),
        (("import-bundle", str(empty)), 1, "not a zip file"),
        (("import-bundle", str(tmp_path / "missing.zip")), 1, "cannot be read (No such file or directory)"),
        (("import-bundle", str(tmp_path)), 1, "cannot be read (Is a directory)"),
        (("import-manifest", str(tmp_path / "out" / "manifest.json")), 1, "There is no manifest at"),
        (("import-manifest", str(junk)), 1, "not valid JSON"),
        (("export-bundle", "999", str(tmp_path / "x.zip")), 1, "no longer exists"),
        (("export-bundle", str(2**63), str(tmp_path / "x.zip")), 1, "no longer exists"),
        (("show",), 2, "The following arguments are required: id; see python -m storage show --help."),
        (("show", "abc"), 2, "a project id is a whole number, not 'abc'"),
        (("export-bundle", "1"), 2, "required: file"),
        (("frobnicate",), 2, "invalid choice: 'frobnicate'"),
    ]
    for args, status, words in cases:
        result = _cli(home, *args)
        print(f"\npython -m storage {' '.join(args[:1])} ...: exit {result.returncode}: {result.stderr.strip()}")
        assert result.returncode == status, result.stderr
        assert words in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
        assert result.stdout == ""
    assert not (tmp_path / "x.zip").exists()


def test_cli_output_cut_short_by_its_reader_is_not_a_traceback(tmp_path):
    """``python -m storage show ID | head``: the reader leaves early; no traceback, no hang."""
    home = tmp_path / "home"
    story = "The fox ran to the sea. " * 20_000  # far more JSON than a pipe buffers
    project = Library(home).create_project("Long", story_text=story)
    env = {**os.environ, "STORYBOOK_HOME": str(home)}
    child = subprocess.Popen(
        [sys.executable, "-m", "storage", "show", str(project.id)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert child.stdout.read(10) == b'{\n "id": 1'[:10]
    child.stdout.close()
    stderr = child.stderr.read().decode()
    child.stderr.close()
    status = child.wait(timeout=120)
    print(f"\nshow | head: exit {status}, stderr {stderr!r}")
    assert status == 1 and stderr == ""
