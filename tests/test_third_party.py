"""THIRD_PARTY.md stays complete (issue 12, item 7): every font shipped in assets/, every model a profile names,
every library pyproject.toml installs and every vendored file is listed with its licence, and whatever is marked
non-commercial or copyleft is in the table that says how the studio keeps it optional."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from engine.profiles import ALL_ROLES, PROFILES, TINY_PREFIX

ROOT = Path(__file__).resolve().parents[1]
NOTICE = (ROOT / "THIRD_PARTY.md").read_text(encoding="utf-8")
OPTIONAL_HEADING = "## Non-commercial or copyleft, and how the app keeps them optional"
# Words in a licence cell that make an item one to mark: copyleft or not free for every use.
MARKED = re.compile(r"GPL|MPL|non-commercial|Non-Commercial|OpenRAIL|⚠|proprietary", re.IGNORECASE)


def _section(heading: str) -> str:
    start = NOTICE.index(heading)
    end = NOTICE.find("\n## ", start + len(heading))
    return NOTICE[start : end if end != -1 else len(NOTICE)]


def _rows(text: str) -> list[list[str]]:
    """The cells of every table row of a markdown text, header and rule rows left out."""
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and not set(line) <= set("|- "):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return [row for row in rows if row[0] not in ("File", "Package", "Model id", "What", "Item", "Candidate")]


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_shipped_font_and_vendored_file_is_listed_with_its_licence_file():
    fonts = sorted(p.name for p in (ROOT / "assets").rglob("*") if p.suffix.lower() in {".ttf", ".otf", ".ttc"})
    assert len(fonts) >= 5
    assert [name for name in fonts if f"`{name}`" not in NOTICE] == []
    for licence in re.findall(r"`(assets/fonts/LICENSE[^`]*)`", NOTICE):
        assert (ROOT / licence).is_file(), licence
    vendored = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "tests" / "vendor").rglob("*") if p.is_file())
    assert [path for path in vendored if f"`{path}`" not in NOTICE] == []


def test_every_model_a_profile_names_is_listed():
    models = sorted(
        {
            ref
            for profile in PROFILES.values()
            for role in ALL_ROLES
            if (ref := profile.model(role)) and not ref.startswith(TINY_PREFIX)
        }
    )
    assert len(models) >= 8
    listed = {row[0].split(" ")[0].strip("`") for row in _rows(_section("## Models"))}
    assert [ref for ref in models if ref not in listed] == []


def test_every_library_pyproject_installs_is_listed():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted += extra
    names = sorted({_normal(re.split(r"[<>=!~\[; ]", spec, maxsplit=1)[0]) for spec in wanted})
    listed = {_normal(row[0].split(" ")[0]) for row in _rows(_section("## Python libraries"))}
    assert [name for name in names if name not in listed] == []


def test_whatever_is_non_commercial_or_copyleft_says_how_it_stays_optional():
    optional = _section(OPTIONAL_HEADING)
    explained = {row[0].split(" ")[0].strip("`,") for row in _rows(optional)}
    marked = []
    for heading in ("## Shipped in this repository", "## Python libraries", "## System tools", "## Models"):
        for row in _rows(_section(heading)):
            if any(MARKED.search(cell) for cell in row[1:]):
                marked.append(row[0].split(" ")[0].strip("`,"))
    assert len(marked) >= 4  # sd-turbo, SD 1.5, poppler, axe-core at least: the check really reads the tables
    assert [name for name in marked if name not in explained] == []


def test_the_project_has_a_licence_and_says_which():
    assert "Apache License" in (ROOT / "LICENSE").read_text(encoding="utf-8")[:200]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    assert "Apache License 2.0" in NOTICE
