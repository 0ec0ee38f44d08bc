"""How quickly the studio answers, in a real browser: `python -m benchmarks.studio` (issue 16).

Starts the real studio (`streamlit run studio/Home.py`, tiny profile, a fresh library in a temporary folder) and
drives it with headless Chromium (Playwright), timing what a person waits for:

- time to the storyboard: from starting the server to the storyboard of a 9-page story on screen;
- the first "New picture", clicked 10 s after the page showed (the picture model warms up meanwhile), from the
  click until the new version is on screen (timed in the page: from the browser's click event to the first frame
  drawn after the new version's caption appeared, so neither Playwright's checks before a click nor its polling
  after it, every half second, are counted);
- the median of ten later "New picture" clicks, the same way, each 0.7 s after the last one's picture showed (a
  person looking at it; a click sooner than studio.ui's REPEAT_CLICK_S after the last is a double click's second);
- "Redraw all" on the 9 pages, from the click until "Done: 9 pictures drawn and saved" is on screen, beside the
  engine's own time for the same nine pictures (drawn in this process with the same profile, warm), and how many
  messages the studio sent the page meanwhile (the browser's work on them takes a core the worker would use);
- a full storyboard run with 120 pages (AppTest, median of 5, after the page was shown twice, with the studio's
  runner settings), the page's own cost, in wall-clock and CPU time (CPU time is steadier on a shared machine).
  The board draws a long story's cards 24 at a time, so this is the run of the first 24 cards plus everything
  else on the page. AppTest compiles the page script on every run,
  which `streamlit run` does once: the figure includes that.

Needs Chromium at /usr/bin/chromium and the playwright package (the test extras). Prints a table; paste it into
docs/benchmarks.md with the date and commit.
"""

from __future__ import annotations

import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STORY = "The Nine Boats\n\n" + "\n\n".join(
    f"Boat number {n} sailed out at dawn. It came back with a song." for n in range(1, 10)
)


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _prepare(home: Path) -> int:
    """A 9-page story in a fresh library, with the tiny models in place; returns its id."""
    from engine import tinykit
    from storage import Library
    from studio import actions

    tinykit.ensure_tiny_models()  # into STORYBOOK_HOME, the studio's own data folder
    lib = Library(home)
    project = actions.create_project(lib, story_text=STORY)
    project = actions.split_story(lib, project.id, project.version, STORY, sentences=2).project
    assert len(project.pages) == 9, len(project.pages)
    lib.close()
    return project.id


CAPTIONS = '[data-testid="stCaptionContainer"]'
MESSAGES = '[data-testid="stMarkdownContainer"]'

# In the page: the time of the next click (in capture, as the browser dispatches it), and of the first frame drawn
# after an element matching `selector` came to hold text matching `pattern` (a MutationObserver sees the change).
_WATCH = """([selector, pattern]) => {
  window.__benchClick = null; window.__benchShown = null;
  const rx = new RegExp(pattern);
  const there = () => [...document.querySelectorAll(selector)].some(e => rx.test(e.textContent.trim()));
  document.addEventListener('click', () => { window.__benchClick = performance.now(); }, {capture: true, once: true});
  const seen = new MutationObserver(() => {
    if (window.__benchClick === null || !there()) return;
    seen.disconnect();
    requestAnimationFrame(() => { window.__benchShown = performance.now(); });
  });
  seen.observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


def _click_until(page, button, selector: str, pattern: str) -> float:
    """Seconds from the click on `button` to the first frame that shows `pattern` in a `selector` element, timed
    by the browser itself: neither Playwright's checks before a click nor its polling afterwards (which comes every
    half second) are counted."""
    page.evaluate(_WATCH, [selector, pattern])
    began = time.perf_counter()
    button.click()
    page.wait_for_function("window.__benchShown !== null", polling=20, timeout=180_000)
    OUTSIDE.append(time.perf_counter() - began)
    return page.evaluate("(window.__benchShown - window.__benchClick) / 1000")


OUTSIDE: list[float] = []  # the same clicks timed from Python: Playwright's click (its checks) to the frame seen
FRAMES: list[float] = []  # when each message from the studio reached the page (one websocket frame each)


def _engine_time(pages: int = 9, repeats: int = 3, score: bool = False) -> float:
    """The engine's own time for the same pictures: tiny profile, warm, in this process. score=True also scores
    each picture against its words, as the studio's job does where the profile can score (actions.plan_drawing)."""
    from core.requests import PageSpec
    from engine.illustrate import illustrate_pages
    from engine.profiles import get_profile
    from engine.segment import segment_story

    texts = segment_story(STORY.split("\n\n", 1)[1], sentences_per_segment=2)[:pages]
    specs = [PageSpec(key=n, text=text.text, seed=1000 + n) for n, text in enumerate(texts)]
    profile = get_profile("tiny")
    illustrate_pages(specs[:1], profile, style="watercolor", score=score)  # load
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        illustrate_pages(specs, profile, style="watercolor", score=score)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def _storyboard_run_ms(pages: int = 120, repeats: int = 5) -> tuple[float, float]:
    from streamlit.testing.v1 import AppTest

    from storage import Library
    from studio import actions

    lib = Library()
    story = "\n\n".join(f"Page {n} tells of a fox. It runs far." for n in range(pages))
    project = actions.create_project(lib, story_text=story)
    project = actions.split_story(lib, project.id, project.version, story, sentences=2).project
    from streamlit import config

    # As `streamlit run` reads it from studio/.streamlit/config.toml (AppTest does not): no gc.collect(2) after each
    # run, which with torch loaded (the engine's pictures above) walks half a million objects.
    config.set_option("runner.postScriptGC", False)
    at = AppTest.from_file(str(ROOT / "studio" / "Home.py"), default_timeout=120)
    at.query_params["project"] = str(project.id)
    at.run()
    at.switch_page("screens/storyboard.py")
    at.run()
    at.run()  # the page as a person has it, shown already: the runs timed are those after a click
    times, cpu = [], []
    for _ in range(repeats):
        began, began_cpu = time.perf_counter(), time.process_time()
        at.run()
        times.append(time.perf_counter() - began)
        cpu.append(time.process_time() - began_cpu)
    return statistics.median(times) * 1000, statistics.median(cpu) * 1000


def main() -> None:
    from playwright.sync_api import expect, sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        env = {
            **os.environ,
            "STORYBOOK_HOME": str(home),
            "STORYBOOK_PROFILE": "tiny",
            "HF_HUB_OFFLINE": "1",
            "PYTHONPATH": str(ROOT),
        }
        os.environ.update({k: env[k] for k in ("STORYBOOK_HOME", "STORYBOOK_PROFILE", "HF_HUB_OFFLINE")})
        project_id = _prepare(home)
        port = _port()
        started = time.perf_counter()
        server = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "studio/Home.py", "--server.port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            while True:
                try:
                    urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
                    break
                except OSError:
                    time.sleep(0.05)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.on("websocket", lambda ws: ws.on("framereceived", lambda _: FRAMES.append(time.perf_counter())))
                expect.set_options(timeout=180_000)
                page.goto(f"{url}/storyboard?project={project_id}")
                expect(page.get_by_role("button", name=re.compile(r"Illustrate all 9 pages"))).to_be_visible()
                to_storyboard = time.perf_counter() - started
                # First picture of every page, so "New picture" makes version 2 (not timed: no model yet).
                page.get_by_role("button", name=re.compile(r"Illustrate all 9 pages")).click()
                expect(page.get_by_text(re.compile(r"^Version 1 of 1"))).to_have_count(9)

                def new_picture(version: int) -> float:
                    return _click_until(
                        page,
                        page.get_by_role("button", name="New picture").first,
                        CAPTIONS,
                        rf"^Version {version} of {version}",
                    )

                page.reload()
                expect(page.get_by_text(re.compile(r"^Version 1 of 1"))).to_have_count(9)
                page.wait_for_timeout(10_000)
                first = new_picture(2)
                later = []
                for version in range(3, 13):
                    expect(page.get_by_role("button", name="New picture").first).to_be_enabled()
                    # A person looks at the picture before trying another seed (and a click within
                    # studio.ui.REPEAT_CLICK_S of the last one's end is taken for a double click).
                    page.wait_for_timeout(700)
                    later.append(new_picture(version))
                page.get_by_text("Redraw all", exact=True).click()
                expect(page.get_by_role("button", name=re.compile(r"Redraw all 9 pages"))).to_be_enabled()
                page.wait_for_timeout(500)  # the switch's own run is over
                began = len(FRAMES)
                redraw_all = _click_until(
                    page,
                    page.get_by_role("button", name=re.compile(r"Redraw all 9 pages")),
                    MESSAGES,
                    r"^Done: 9 pictures drawn and saved",
                )
                redraw_messages = len(FRAMES) - began
                browser.close()
        finally:
            server.terminate()
            server.wait(10)
        engine = _engine_time()
        engine_scored = _engine_time(score=True)
        run_ms, run_cpu_ms = _storyboard_run_ms()

    print("| measure | seconds |")
    print("|---|---|")
    print(f"| time to the storyboard (server start to page) | {to_storyboard:.2f} |")
    print(f"| first New picture, 10 s after the page showed | {first:.2f} |")
    spread = f"{min(later):.2f}-{max(later):.2f}"
    print(f"| later New picture, median of 10 [min-max] | {statistics.median(later):.2f} [{spread}] |")
    outside = statistics.median(OUTSIDE[1:11])
    print(f"| the same, timed from Python (Playwright's click and checks included) | {outside:.2f} |")
    print(f"| Redraw all 9 pages, click to all on screen | {redraw_all:.2f} |")
    print(f"| messages the page received from that click to the outcome on screen (count) | {redraw_messages} |")
    print(f"| the engine's own time for those 9 pictures | {engine:.2f} |")
    print(f"| the same, each picture also scored as the studio's job does (ranker CLIP) | {engine_scored:.2f} |")
    print(f"| a storyboard run with 120 pages (AppTest, median of 5) | {run_ms / 1000:.3f} |")
    print(f"| the same run's CPU time (this process, median of 5) | {run_cpu_ms / 1000:.3f} |")


if __name__ == "__main__":
    main()
