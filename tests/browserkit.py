"""Shared set-up for the real-browser tests: a `streamlit run` of the studio on a free port, offline, with
the tiny models, and headless Chromium through playwright (FACTS.md's recipe)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def require_browser() -> None:
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed at /usr/bin/chromium (apt-get install -y chromium)")
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")


@dataclass(frozen=True)
class Studio:
    url: str
    home: Path
    server: subprocess.Popen


@contextmanager
def serve(home: Path, log_path: Path, *, host: str = "127.0.0.1", **env_extra: str) -> Iterator[Studio]:
    """A real `streamlit run` of the studio on a free port, with `home` as its data folder, until the block ends.

    `env_extra` sets (or, with "", removes) environment variables; `host` is the name the browser uses (the
    server listens on 127.0.0.1 either way)."""
    port = free_port()
    env = {
        **os.environ,
        "STORYBOOK_HOME": str(home),
        "STORYBOOK_PROFILE": "tiny",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        **env_extra,
    }
    for name, value in env_extra.items():
        if value == "":
            env.pop(name)
    with log_path.open("w") as log:
        command = [sys.executable, "-m", "streamlit", "run", "studio/Home.py", "--server.port", str(port)]
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 40
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail("streamlit did not start:\n" + log_path.read_text()[-3000:])
                time.sleep(0.2)
            yield Studio(f"http://{host}:{port}", home, server)
        finally:
            stop(server)


def stop(server: subprocess.Popen) -> None:
    if server.poll() is not None:
        return
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def tiny_home(tmp_path: Path, tiny_models: dict[str, Path]) -> Path:
    """A fresh data folder holding the tiny models (built once per test session; copying them is quicker)."""
    require_browser()
    home = tmp_path / "home"
    shutil.copytree(next(iter(tiny_models.values())).parent, home / "models" / "tiny")
    return home


@contextmanager
def running_studio(tmp_path: Path, tiny_models: dict[str, Path], **options: str) -> Iterator[Studio]:
    """The studio running on a fresh data folder with the tiny models (see serve for the options)."""
    with serve(tiny_home(tmp_path, tiny_models), tmp_path / "streamlit.log", **options) as studio:
        yield studio


@contextmanager
def chromium() -> Iterator:
    """A headless Chromium browser (playwright's sync API)."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        expect.set_options(timeout=30_000)
        try:
            yield browser
        finally:
            browser.close()
