"""The layers keep their rules: each package's modules are imported in a fresh interpreter and the modules
that import pulled in are checked against what the layer may use (docs/architecture.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# package -> top-level modules it must never load, directly or through anything it imports
# (no layer loads the measuring tools in benchmarks/; only a command-line program, a __main__, may forward to them)
FORBIDDEN = {
    "core": ("torch", "streamlit", "sqlalchemy", "engine", "storage", "exports", "studio", "benchmarks"),
    "engine": ("streamlit", "storage", "studio", "exports", "benchmarks"),
    "storage": ("engine", "torch", "streamlit", "studio", "exports", "benchmarks"),
    "exports": ("torch", "streamlit", "studio", "engine", "benchmarks"),
    # the one door for changes: used by pages, CLIs and tests alike, and light enough for a page's thread
    "studio.actions": ("streamlit", "torch", "diffusers", "transformers", "benchmarks"),
    # the measuring tools load the models inside the functions that measure: `python -m engine segment`, whose
    # parser names the bench command, never pays for torch
    "benchmarks": ("torch", "diffusers", "transformers", "streamlit"),
}

_PROBE = """
import importlib, json, pkgutil, sys
package = importlib.import_module(sys.argv[1])
names = [sys.argv[1]] + [m.name for m in pkgutil.walk_packages(getattr(package, "__path__", []), sys.argv[1] + ".")
                         if ".migrations" not in m.name and not m.name.endswith(".__main__")]
for name in names:
    importlib.import_module(name)
print(json.dumps({"imported": names, "loaded": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def _load(package: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, package], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_layer_never_loads_what_it_must_not(package):
    found = _load(package)
    if package.count(".") == 0:
        assert len(found["imported"]) > 2, found["imported"]  # the probe really walked the package
    loaded = set(found["loaded"]) - {package.split(".")[0]}
    assert not loaded & set(FORBIDDEN[package]), f"{package} loads {sorted(loaded & set(FORBIDDEN[package]))}"


def test_the_probe_sees_a_forbidden_import():
    # engine's heavy modules load torch: the same probe must notice it, or the tests above prove nothing
    assert "torch" in _load("engine")["loaded"]


# What a screen may call on the Library itself: reads. Every other public method changes the library.
LIBRARY_READS = {
    "get_project",
    "get_pages",
    "list_projects",
    "project_stamp",
    "library_stamp",
    "export_bundle",
    "integrity_report",
}


def _library_writes_outside_actions(path: Path) -> list[str]:
    import ast
    import inspect

    from storage import Library

    writes = {name for name, _ in inspect.getmembers(Library, inspect.isfunction) if not name.startswith("_")}
    writes -= LIBRARY_READS | {"close"}
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in writes:
            receiver = node.func.value
            if not (isinstance(receiver, ast.Name) and receiver.id == "actions"):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(node.func)}")
    return found


def test_screens_change_the_library_only_through_actions():
    # One door: screens and their shared helpers read the library, and every change goes through studio.actions.
    files = sorted((ROOT / "studio" / "screens").rglob("*.py")) + sorted((ROOT / "studio" / "ui").glob("*.py"))
    files.append(ROOT / "studio" / "Home.py")
    assert len(files) > 10
    found = [hit for path in files for hit in _library_writes_outside_actions(path)]
    assert found == []


def _private_names_used(path: Path) -> list[str]:
    """Names with one leading underscore that a file takes from the engine or reads off another object."""
    import ast

    def private(name: str) -> bool:
        return name.startswith("_") and not name.startswith("__")

    where = os.path.relpath(path, ROOT)
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "engine":
            found += [f"{where}:{node.lineno} {a.name}" for a in node.names if private(a.name)]
        elif isinstance(node, ast.Import):
            found += [f"{where}:{node.lineno} {a.name}" for a in node.names if "._" in a.name]
        elif isinstance(node, ast.Attribute) and private(node.attr):
            if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                found.append(f"{where}:{node.lineno} {ast.unparse(node)}")
    return found


def test_benchmarks_use_only_public_names():
    # The measuring tools measure what the app runs, through its public interfaces: a private model cache from
    # engine.cache.use_cache, a copy of the pipeline from engine.loading.loaded_model(copy=...).
    files = sorted((ROOT / "benchmarks").rglob("*.py"))
    assert len(files) > 10
    assert [hit for path in files for hit in _private_names_used(path)] == []


def test_the_private_name_check_sees_a_reach_into_the_engine(tmp_path):
    sample = tmp_path / "reach.py"
    sample.write_text(
        "import engine.cache as c\nfrom engine.illustrate import _load_preview_decoder\nc._cache = None\n",
        encoding="utf-8",
    )
    found = _private_names_used(sample)
    assert [hit.split(" ")[1] for hit in found] == ["_load_preview_decoder", "c._cache"]


def test_every_layers_errors_module_derives_from_the_one_base():
    # One base for "an error whose message a person can read" (the errors a layer raises to people live in its
    # errors module; exports.images.BrokenImage is caught inside exports): the job worker, the screens and the CLIs show
    # `.message` of any layer's error without knowing which layer raised it.
    import inspect

    import engine.errors
    import exports.errors
    import storage.errors
    from core.errors import InputError, UserError

    found = {
        module.__name__: [
            cls
            for _, cls in inspect.getmembers(module, inspect.isclass)
            if issubclass(cls, BaseException) and cls.__module__ == module.__name__
        ]
        for module in (engine.errors, storage.errors, exports.errors)
    }
    assert all(found.values()), found
    assert [cls for classes in found.values() for cls in classes if not issubclass(cls, UserError)] == []
    assert issubclass(storage.errors.InvalidInput, InputError) and issubclass(engine.errors.ImageRejected, InputError)
    assert UserError("A sentence.").message == str(UserError("A sentence.")) == "A sentence."
