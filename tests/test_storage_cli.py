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
from storage.views import SegmentInput


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
    story = "Der Fuchs 🦊. The owl."
    project = library.create_project("CLI 狐", story_text=story)
    project = library.save_story(project.id, project.version, story, [SegmentInput("Der Fuchs 🦊.", 0, 12)])
    library.add_illustration(project.segments[0].id, _png(1), {"seed": 5})
    library.create_project("Other")

    listed = _cli(home, "list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "CLI 狐" in listed.stdout and "Other" in listed.stdout
    searched = _cli(home, "list", "--search", "OWL", "--json")
    assert [p["title"] for p in json.loads(searched.stdout)] == ["CLI 狐"]

    shown = _cli(home, "show", str(project.id))
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert doc["title"] == "CLI 狐" and doc["segments"][0]["selected"]["settings"] == {"seed": 5}
    assert Path(doc["segments"][0]["selected"]["image_path"]).is_file()

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
    (manifest_dir / "manifest.json").write_text(json.dumps({
        "format": "storybook-manifest", "version": 1, "title": "From the engine", "source_text": "Hello fox.",
        "segments": [{"index": 0, "text": "Hello fox.", "start": 0, "end": 10, "seed": 1, "image": "segment-000.png",
                      "settings": {"seed": 1, "steps": 1}}],
    }))
    from_manifest = _cli(home, "import-manifest", str(manifest_dir / "manifest.json"))
    assert from_manifest.returncode == 0, from_manifest.stderr
    assert library.get_project(int(from_manifest.stdout)).title == "From the engine"


def test_cli_errors_are_one_sentence_and_exit_1(tmp_path):
    home = tmp_path / "home"
    Library(home)
    junk = tmp_path / "junk.zip"
    junk.write_text("not a zip")
    cases = [
        (("show", "999"), "That project no longer exists"),
        (("import-bundle", str(junk)), "not a zip file"),
        (("export-bundle", "999", str(tmp_path / "x.zip")), "no longer exists"),
    ]
    for args, words in cases:
        result = _cli(home, *args)
        print(f"\npython -m storage {' '.join(args[:1])} ...: exit {result.returncode}: {result.stderr.strip()}")
        assert result.returncode == 1
        assert words in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "x.zip").exists()
