"""Writer processes killed with SIGKILL at random moments: the database and the image files stay whole."""

from __future__ import annotations

import io
import os
import random
import select
import signal
import sys
import time

import pytest
from PIL import Image

from storage.library import Library
from storage.views import PageInput

ROUNDS = 40
PARALLEL = 3  # writers alive at once, all on the same file
# One save takes ~35 ms alone here (two fsyncs for the file, one for the commit) and ~100 ms with three
# writers queuing for the lock: early kills land in a writer's first save, late ones after a few commits.
KILL_AFTER_S = (0.020, 0.500)

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="needs fork()")


def _noise_png(rng: random.Random) -> bytes:
    buffer = io.BytesIO()
    Image.frombytes("RGB", (48, 48), rng.randbytes(48 * 48 * 3)).save(buffer, "PNG")
    return buffer.getvalue()


def _writer(library: Library, project_id: int, page_ids: list[int], out: int, seed: int) -> None:
    """Runs in the forked child until killed: add pictures, sometimes delete or choose one."""
    try:
        rng = random.Random(seed)
        # The parent closed its connections before forking; drop the (empty) pool without touching them.
        library._engine.dispose(close=False)
        os.write(out, b"R\n")
        mine: list[int] = []
        while True:
            roll = rng.random()
            if roll < 0.75 or not mine:
                view = library.add_picture(rng.choice(page_ids), _noise_png(rng), {"seed": rng.randrange(2**31)})
                mine.append(view.id)
                os.write(out, f"A {view.id}\n".encode())
            elif roll < 0.9:
                victim = mine.pop(rng.randrange(len(mine)))
                os.write(out, f"D {victim}\n".encode())  # said before doing: the kill may land mid-delete
                library.discard_picture(victim)
                library.empty_bin(project_id)
            else:
                library.select_picture(rng.choice(mine))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        os.write(out, f"E {exc!r}\n".encode())
    finally:
        os._exit(0)


def test_writers_killed_at_random_leave_no_damage(tmp_path):
    home = tmp_path / "home"
    setup = Library(home)
    story = "One. Two. Three. Four."
    project = setup.create_project("Crash", story_text=story)
    project = setup.save_story(
        project.id,
        project.version,
        story,
        [PageInput(w, story.index(w), story.index(w) + len(w)) for w in story.split()],
    )
    page_ids = [seg.id for seg in project.pages]
    # Warm SQLAlchemy's statement caches once, so each forked writer starts writing at once and the
    # random kill lands in real work (a cold child spends its first ~20 ms compiling SQL).
    warm = setup.add_picture(page_ids[0], _noise_png(random.Random(1)), {})
    setup.select_picture(warm.id)
    setup.discard_picture(warm.id, setup.get_project(project.id).version)
    setup.close()  # no SQLite connection may cross a fork

    rng = random.Random(20261123)
    added: set[int] = set()
    deleting: set[int] = set()
    errors: list[str] = []
    kills = 0
    acked_ops = 0
    started = time.monotonic()
    for round_no in range(ROUNDS):
        children = []
        for k in range(PARALLEL):
            read_end, write_end = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(read_end)
                _writer(setup, project.id, page_ids, write_end, seed=round_no * 100 + k)
            os.close(write_end)
            children.append((pid, read_end))
        buffers = {pid: b"" for pid, _ in children}
        for pid, read_end in children:
            while b"R\n" not in buffers[pid]:
                ready, _, _ = select.select([read_end], [], [], 20)
                assert ready, "a writer did not start"
                chunk = os.read(read_end, 65536)
                assert chunk, "a writer died before it was ready"
                buffers[pid] += chunk
        deadlines = sorted((time.monotonic() + rng.uniform(*KILL_AFTER_S), pid) for pid, _ in children)
        for deadline, pid in deadlines:
            time.sleep(max(0.0, deadline - time.monotonic()))
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            kills += 1
        for pid, read_end in children:
            while chunk := os.read(read_end, 65536):
                buffers[pid] += chunk
            os.close(read_end)
            for line in buffers[pid].decode().splitlines():
                kind, _, value = line.partition(" ")
                if kind == "A":
                    added.add(int(value))
                    acked_ops += 1
                elif kind == "D":
                    deleting.add(int(value))
                    acked_ops += 1
                elif kind == "E":
                    errors.append(value)
    elapsed = time.monotonic() - started

    library = Library(home, sweep=False)
    report = library.integrity_report()
    stored = {ill.id for seg in library.get_project(project.id).pages for ill in seg.pictures}
    must_exist = added - deleting
    missing = must_exist - stored
    pages = library.get_project(project.id).pages
    selected_ok = all(sum(i.selected for i in seg.pictures) == (1 if seg.pictures else 0) for seg in pages)
    files = list(library.images.files())
    named = {sha for _, sha, _ in files if sha}
    temp_files = sum(1 for _, sha, _ in files if sha is None)
    # Every picture a row names, the bin's too (a writer killed between discarding and emptying the bin).
    referenced = {ill.image_path.name.split(".")[0] for seg in library._every_page(project.id) for ill in seg.pictures}
    orphans = len(named - referenced)
    print(
        f"\nSIGKILL test: {kills} kills of {PARALLEL} concurrent writers in {elapsed:.1f} s; "
        f"{acked_ops} acknowledged operations ({len(added)} pictures added, {len(deleting)} deletions begun); "
        f"rows now {len(stored)}; acknowledged-but-missing {len(missing)}; "
        f"integrity_check {report['integrity_check']}; "
        f"rows checked {report['rows_checked']}, "
        f"rows naming a missing/damaged file {len(report['bad_files'])}; "
        f"unreferenced files left for the sweep {orphans}, temp files {temp_files}; "
        f"one selected per page: {selected_ok}"
    )
    assert errors == []
    assert kills >= 100
    # The writers did real work between kills (a writer stuck on a lock would pass everything below).
    assert len(added) >= ROUNDS and len(stored) > 0
    assert report["integrity_check"] == ["ok"]
    assert report["bad_files"] == []
    assert missing == set()
    assert selected_ok
    # The young leftovers are the sweep's: with the age limit lifted it removes every one of them.
    swept = library.sweep(min_age_s=0)
    assert swept.removed_images == orphans and swept.removed_temp_files == temp_files
    assert library.integrity_report()["bad_files"] == []
