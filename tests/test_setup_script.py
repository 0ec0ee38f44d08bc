"""Two commands from a fresh clone (issue 12, item 6): `./storybook run` and `./storybook test` set up what is
missing (the CUDA build of torch where an NVIDIA GPU answers, the CPU build elsewhere), only once, and then start
the studio or the tests; `.ci/run` runs the same test command.

The script runs for real against a stand-in environment: its `python` records every pip call (nothing is
downloaded), hands anything else to this interpreter, and `nvidia-smi` is a stand-in that does or does not list
a GPU."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "storybook"
CPU_INDEX = "--index-url https://download.pytorch.org/whl/cpu"

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the set-up script's Linux choices")

_PYTHON = """#!/usr/bin/env bash
printf '%s\\n' "python $*" >> "$STUB_LOG"
if [ "$1" = "-c" ] && [ "$2" = "import torch" ]; then
  grep -v -- --dry-run "$STUB_LOG" | grep -q "pip install torch=="   # importable once installed
  exit $?
fi
if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then
  case " $* " in *" --dry-run "*) printf '%s' "$STUB_PIP_REPORT" ;; esac
  exit 0
fi
if [ "$1" = "-m" ] && [ "$2" = "pytest" ]; then
  printf '%s\\n' "HF_HUB_OFFLINE=$HF_HUB_OFFLINE" >> "$STUB_LOG"
  exit 0
fi
exec REAL_PYTHON "$@"
"""
_STREAMLIT = """#!/usr/bin/env bash
printf '%s\\n' "streamlit $*" >> "$STUB_LOG"
"""


def _executable(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)


@pytest.fixture
def stand_in(tmp_path):
    venv, tools = tmp_path / "venv", tmp_path / "tools"
    (venv / "bin").mkdir(parents=True)
    tools.mkdir()
    _executable(venv / "bin" / "python", _PYTHON.replace("REAL_PYTHON", shlex.quote(sys.executable)))
    _executable(venv / "bin" / "streamlit", _STREAMLIT)
    log = tmp_path / "calls.log"
    log.touch()

    def storybook(*args: str, gpu: bool = False, pip_picks: str = "2.13.0") -> list[str]:
        nvidia = "echo 'GPU 0: NVIDIA H200 (UUID: GPU-0)'" if gpu else "echo 'No devices were found'; exit 6"
        _executable(tools / "nvidia-smi", f"#!/usr/bin/env bash\n{nvidia}\n")
        report = json.dumps({"install": [{"metadata": {"name": "torch", "version": pip_picks}}]})
        env = {
            **os.environ,
            "PATH": f"{tools}{os.pathsep}{os.environ.get('PATH', '')}",
            "STORYBOOK_VENV": str(venv),
            "STUB_LOG": str(log),
            "STUB_PIP_REPORT": report,
        }
        env.pop("HF_HUB_OFFLINE", None)
        before = len(log.read_text(encoding="utf-8").splitlines())
        out = subprocess.run([str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60, check=False)
        assert out.returncode == 0, out.stderr
        return log.read_text(encoding="utf-8").splitlines()[before:]

    storybook.venv = venv
    return storybook


def _pip(calls: list[str]) -> list[str]:
    return [
        c.removeprefix("python -m pip ")
        for c in calls
        if c.startswith("python -m pip install") and "--dry-run" not in c
    ]


def test_without_a_gpu_the_cpu_build_of_torch_is_installed_then_the_studio(stand_in):
    calls = stand_in("setup")
    assert _pip(calls) == [f"install torch==2.13.0 {CPU_INDEX}", "install -e ."]


def test_a_cpu_build_pip_already_knows_is_used_without_the_cpu_index(stand_in):
    calls = stand_in("setup", pip_picks="2.13.0+cpu")  # a local wheel or a configured index
    assert _pip(calls) == ["install torch==2.13.0", "install -e ."]


def test_with_an_nvidia_gpu_the_cuda_build_of_torch_is_installed(stand_in):
    calls = stand_in("setup", gpu=True)
    assert _pip(calls) == ["install torch==2.13.0", "install -e ."]
    assert not any("--dry-run" in c for c in calls)  # PyPI's Linux wheel is the CUDA build: nothing to choose


def test_set_up_runs_once_then_run_and_test_start_at_once(stand_in):
    assert _pip(stand_in("setup"))
    run = stand_in("run", "--server.port", "8599")
    assert _pip(run) == []
    assert run[-1] == "streamlit run studio/Home.py --server.port 8599"  # the README's manual command, set up

    test = stand_in("test", "-k", "pdf", "-x")
    assert _pip(test) == ["install -e .[test]"]  # the test tools once, torch not again
    assert test[-2:] == ["python -m pytest -k pdf -x", "HF_HUB_OFFLINE=1"]
    assert _pip(stand_in("test")) == []


def test_a_changed_pyproject_sets_up_again(stand_in):
    stand_in("setup")
    stamp = stand_in.venv / ".storybook-setup"
    # what a change of pyproject.toml or requirements.txt does: the recorded checksum no longer matches
    stamp.write_text(stamp.read_text(encoding="utf-8").replace("torch 2.13.0, ", "torch 2.13.0, 1"), "utf-8")
    assert _pip(stand_in("setup")) == ["install -e ."]  # torch is there already


def test_a_fresh_clone_gets_its_virtual_environment_from_a_python_that_is_new_enough(stand_in, tmp_path):
    template = stand_in.venv / "bin"
    fresh = tmp_path / "fresh-venv"
    old, new = tmp_path / "python-old", tmp_path / "python-new"
    _executable(old, '#!/usr/bin/env bash\n[ "$1" = -c ] && exit 1\necho "old python used: $*" >&2; exit 3\n')
    _executable(
        new,
        f"""#!/usr/bin/env bash
if [ "$1" = -m ] && [ "$2" = venv ]; then mkdir -p "$3" && cp -r {shlex.quote(str(template))} "$3/bin"; exit 0; fi
exec {shlex.quote(sys.executable)} "$@"
""",
    )
    env = {**os.environ, "STORYBOOK_VENV": str(fresh), "STUB_LOG": str(tmp_path / "fresh.log"), "STUB_PIP_REPORT": ""}
    bare = tmp_path / "bare"  # a PATH with bash and dirname, and no python at all
    bare.mkdir()
    for tool in ("bash", "dirname"):
        (bare / tool).symlink_to(shutil.which(tool))
    without = {**env, "PATH": str(bare), "PYTHON": str(old)}
    refused = subprocess.run(
        [str(SCRIPT), "setup"], env=without, capture_output=True, text=True, timeout=60, check=False
    )
    assert refused.returncode == 1 and "needs Python 3.11 or newer" in refused.stderr
    assert not fresh.exists()
    made = subprocess.run(
        [str(SCRIPT), "setup"], env={**env, "PYTHON": str(new)}, capture_output=True, text=True, timeout=60, check=False
    )
    assert made.returncode == 0, made.stderr
    assert "Creating the virtual environment" in made.stderr and (fresh / "bin" / "python").is_file()
    assert _pip((tmp_path / "fresh.log").read_text(encoding="utf-8").splitlines())[-1] == "install -e ."


def test_the_readme_gives_the_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "./storybook run" in readme and "./storybook test" in readme
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    assert "./storybook test" in [line for line in ci if not line.startswith("#")]
