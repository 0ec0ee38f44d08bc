"""Many writers on one file: no acknowledged save lost, no silent overwrite between tabs."""

from __future__ import annotations

import io
import threading
import time

import pytest
from PIL import Image
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from storage.errors import ConflictError
from storage.library import Library
from storage.models import Project
from storage.views import PageInput

THREADS = 16
SAVES_PER_THREAD = 50


def _png(n: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (n % 256, (n // 256) % 256, 99)).save(buffer, "PNG")
    return buffer.getvalue()


def _project_with_pages(library: Library, pages: int):
    words = [f"Page{n}." for n in range(pages)]
    story = " ".join(words)
    project = library.create_project("Busy", story_text=story)
    inputs, offset = [], 0
    for word in words:
        inputs.append(PageInput(word, offset, offset + len(word)))
        offset += len(word) + 1
    return library.save_story(project.id, project.version, story, inputs)


def _run_threads(count: int, target) -> float:
    barrier = threading.Barrier(count)

    def run(t: int) -> None:
        barrier.wait()
        target(t)

    started = time.monotonic()
    threads = [threading.Thread(target=run, args=(t,)) for t in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - started


class _NoQueue:
    """Stands in for the library's in-process writer queue, so only SQLite's own lock orders the writers."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _begins(library: Library) -> list[str]:
    """Every BEGIN SQLite itself runs on the library's connections from now on."""
    seen: list[str] = []
    library._engine.dispose()

    @event.listens_for(library._engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.set_trace_callback(lambda sql: seen.append(sql) if sql.upper().startswith("BEGIN") else None)

    return seen


@pytest.mark.parametrize("queue", ["library", "sqlite-lock-only"])
def test_16_threads_x_50_read_then_write_saves_all_land(tmp_path, queue):
    """The lost-update test: read a counter, write counter + 1, in the library's write transaction.

    "library" is the app as it runs (an in-process queue, then BEGIN IMMEDIATE); "sqlite-lock-only"
    takes the queue away, so the 16 threads meet only in SQLite, as writers in separate processes do.
    That run is the one that fails if write transactions do not begin IMMEDIATE.
    """
    # Two Library objects (two engines, two pools) on one file.
    libraries = [Library(tmp_path), Library(tmp_path)]
    project = libraries[0].create_project("Counter")
    begins = [_begins(library) for library in libraries]
    if queue == "sqlite-lock-only":
        for library in libraries:
            library._write_lock = _NoQueue()
    acknowledged = [0] * THREADS
    failures: list[BaseException] = []

    def increment(t: int) -> None:
        library = libraries[t % 2]
        for _ in range(SAVES_PER_THREAD):
            try:
                with library._write() as session:  # the transaction every library write uses
                    row = session.get(Project, project.id)
                    seen = row.version
                    time.sleep(0)  # let another thread run between the read and the write
                    row.version = seen + 1
            except BaseException as exc:  # noqa: BLE001 - counted and reported
                failures.append(exc)
            else:
                acknowledged[t] += 1

    elapsed = _run_threads(THREADS, increment)
    writes = begins[0] + begins[1]  # taken before the read below adds its BEGIN DEFERRED
    final = libraries[1].get_project(project.id).version - project.version
    modes = sorted(set(writes))
    print(
        f"\n{THREADS} threads x {SAVES_PER_THREAD} read-then-write saves ({queue}, {' / '.join(modes)}): "
        f"acknowledged {sum(acknowledged)}, failed {len(failures)}, found in the file {final}, {elapsed:.1f} s"
    )
    assert failures == [], failures[:3]
    assert sum(acknowledged) == THREADS * SAVES_PER_THREAD == final
    assert set(writes) == {"BEGIN IMMEDIATE"} and len(writes) == THREADS * SAVES_PER_THREAD


def test_without_begin_immediate_the_same_workload_fails(tmp_path):
    """The control: a deferred transaction that reads then writes is refused at once under contention."""
    library = Library(tmp_path)
    project = library.create_project("Counter")
    acknowledged = [0] * THREADS
    locked = [0] * THREADS

    def increment(t: int) -> None:
        for _ in range(10):
            try:
                with library._reader() as session, session.begin():  # BEGIN DEFERRED, no Python lock
                    row = session.get(Project, project.id)
                    seen = row.version
                    time.sleep(0.001)
                    row.version = seen + 1
            except OperationalError as exc:
                assert "locked" in str(exc)
                locked[t] += 1
            else:
                acknowledged[t] += 1

    _run_threads(THREADS, increment)
    final = library.get_project(project.id).version - project.version
    print(
        f"\ncontrol, {THREADS} threads x 10 with BEGIN DEFERRED: acknowledged {sum(acknowledged)}, "
        f"'database is locked' {sum(locked)}, found {final}"
    )
    assert final == sum(acknowledged)  # SQLite still loses nothing it acknowledged
    # The workload really contends: without IMMEDIATE, read-then-write saves are refused.
    assert sum(locked) > 0


def test_16_threads_adding_pictures_to_one_page_every_acknowledged_picture_lands(tmp_path):
    libraries = [Library(tmp_path), Library(tmp_path)]
    project = _project_with_pages(libraries[0], 1)
    page_id = project.pages[0].id
    per_thread = 15
    images = [_png(n) for n in range(THREADS * per_thread)]
    acknowledged: list[list[int]] = [[] for _ in range(THREADS)]
    failures: list[BaseException] = []

    def add(t: int) -> None:
        library = libraries[t % 2]
        for i in range(per_thread):
            try:
                # add_picture reads the page's highest version and writes version + 1.
                view = library.add_picture(page_id, images[t * per_thread + i], {"thread": t, "i": i})
            except BaseException as exc:  # noqa: BLE001 - counted and reported
                failures.append(exc)
            else:
                acknowledged[t].append(view.id)

    elapsed = _run_threads(THREADS, add)
    acked = {ill for per in acknowledged for ill in per}
    final = libraries[1].get_project(project.id).pages[0]
    stored = {ill.id for ill in final.pictures}
    versions = sorted(ill.version for ill in final.pictures)
    print(
        f"\n{THREADS} threads x {per_thread} add_picture on one page: acknowledged {len(acked)}, "
        f"failed {len(failures)}, stored {len(stored)}, versions 1..{versions[-1]} without gaps: "
        f"{versions == list(range(1, len(versions) + 1))}, {elapsed:.1f} s"
    )
    assert failures == []
    assert acked == stored and len(acked) == THREADS * per_thread
    assert versions == list(range(1, THREADS * per_thread + 1))
    assert sum(ill.selected for ill in final.pictures) == 1
    assert libraries[0].integrity_report()["bad_files"] == []


def test_optimistic_edits_from_many_threads_conflict_but_never_lose_an_acknowledged_save(tmp_path):
    library = Library(tmp_path)
    threads_n, edits_each = 6, 8
    project = _project_with_pages(library, threads_n)
    page_ids = [seg.id for seg in project.pages]
    conflicts = [0] * threads_n
    acknowledged = [0] * threads_n

    def worker(t: int) -> None:
        for i in range(edits_each):
            while True:
                current = library.get_project(project.id)
                text = current.pages[t].text
                try:
                    library.update_page(page_ids[t], current.version, text=f"{text} t{t}e{i}")
                except ConflictError:
                    conflicts[t] += 1
                    continue
                acknowledged[t] += 1
                break

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    final = library.get_project(project.id)
    print(
        f"\n{threads_n} threads x {edits_each} optimistic edits: acknowledged {sum(acknowledged)}, "
        f"conflicts raised (and retried) {sum(conflicts)}, final version {final.version}"
    )
    assert sum(acknowledged) == threads_n * edits_each
    for t, seg in enumerate(final.pages):
        assert seg.text.split()[1:] == [f"t{t}e{i}" for i in range(edits_each)]
    assert final.version == project.version + threads_n * edits_each


def test_two_tabs_second_save_conflicts_and_first_save_stays(tmp_path):
    library = Library(tmp_path)
    project = _project_with_pages(library, 2)
    tab_a = library.get_project(project.id)
    tab_b = library.get_project(project.id)
    assert tab_a.version == tab_b.version

    saved = library.update_page(tab_a.pages[0].id, tab_a.version, text="Tab A wrote this.")
    assert saved.version == tab_a.version + 1 and saved.updated >= tab_a.updated
    with pytest.raises(ConflictError) as caught:
        library.update_page(tab_b.pages[0].id, tab_b.version, text="Tab B wrote this.")
    assert caught.value.message == (
        "This project was changed in another tab or window. "
        "Reload it to see the latest version; your edit was not saved."
    )
    for stale_write in (
        lambda: library.update_project(project.id, tab_b.version, title="B"),
        lambda: library.save_story(project.id, tab_b.version, "B", [PageInput("B", 0, 1)]),
        lambda: library.set_characters(project.id, tab_b.version, [("B", "")]),
        lambda: library.merge_pages(tab_b.pages[0].id, tab_b.version),
        lambda: library.split_page(tab_b.pages[0].id, 2, tab_b.version),
        lambda: library.delete_project(project.id, tab_b.version),
    ):
        with pytest.raises(ConflictError):
            stale_write()
    final = library.get_project(project.id)
    assert final.pages[0].text == "Tab A wrote this."
    assert final.title == "Busy" and final.characters == [] and len(final.pages) == 2
    assert final.version == saved.version


def test_background_pictures_do_not_make_the_users_tab_stale(tmp_path):
    library = Library(tmp_path)
    project = _project_with_pages(library, 1)
    tab = library.get_project(project.id)
    library.add_picture(tab.pages[0].id, _png(1), {"seed": 1})
    after = library.get_project(project.id)
    assert after.version == tab.version and after.updated > tab.updated
    library.update_project(project.id, tab.version, title="Still mine")  # no ConflictError
