"""The SQLite file: pragmas, BEGIN IMMEDIATE on every write, migrations with a backup first."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event

from storage import db
from storage.errors import StorageError
from storage.library import Library
from storage.models import Base
from storage.views import PageInput


def _trace(library: Library) -> list[str]:
    """Record every SQL statement SQLite itself runs, including any BEGIN the sqlite3 module adds."""
    statements: list[str] = []
    library._engine.dispose()

    @event.listens_for(library._engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.set_trace_callback(statements.append)

    return statements


def test_pragmas_on_every_connection(tmp_path):
    library = Library(tmp_path)
    with library._engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
    assert library.db_path == tmp_path / "library.sqlite3"


def test_writes_begin_immediate_and_reads_do_not(tmp_path):
    library = Library(tmp_path)
    project = library.create_project("Fox", story_text="One.")
    statements = _trace(library)

    project = library.save_story(project.id, project.version, "One.", [PageInput("One.", 0, 4)])
    writes = list(statements)
    statements.clear()
    library.get_project(project.id)
    library.list_projects()
    reads = list(statements)

    writes = writes[: writes.index("COMMIT") + 1]  # the edit's own transaction (the view is read after it)
    begins = [s for s in writes if s.upper().startswith("BEGIN")]
    print(f"\nwrite transaction statements: {len(writes)}, BEGINs: {begins}")
    assert begins == ["BEGIN IMMEDIATE"]
    first_write = next(i for i, s in enumerate(writes) if s.split()[0].upper() in ("UPDATE", "INSERT", "DELETE"))
    assert writes.index("BEGIN IMMEDIATE") < first_write
    assert writes[-1] == "COMMIT"
    assert all(not s.upper().startswith("BEGIN IMMEDIATE") for s in reads)
    assert all(s.split()[0].upper() not in ("UPDATE", "INSERT", "DELETE") for s in reads)


def test_a_write_waits_for_another_writer_instead_of_failing(tmp_path):
    library = Library(tmp_path)
    project = library.create_project("Fox")
    other = sqlite3.connect(tmp_path / "library.sqlite3", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("UPDATE projects SET author = 'other process'")
    result: dict[str, object] = {}

    def edit() -> None:
        try:
            result["view"] = library.update_project(project.id, project.version, title="Fox 2")
        except Exception as exc:  # noqa: BLE001 - reported below
            result["error"] = exc

    worker = threading.Thread(target=edit)
    started = time.monotonic()
    worker.start()
    time.sleep(0.4)
    assert worker.is_alive(), "the write should wait for the lock, not fail"
    other.execute("COMMIT")
    other.close()
    worker.join(10)
    waited = time.monotonic() - started
    print(f"\nwrite waited {waited:.2f} s for another writer's lock, then saved")
    assert "error" not in result, result.get("error")
    view = result["view"]
    assert view.title == "Fox 2" and view.author == "other process"


def test_fresh_database_is_at_head_without_backup(tmp_path):
    library = Library(tmp_path)
    assert library.last_backup is None
    with library._engine.connect() as conn:
        assert db.current_revision(conn) == db.head_revision()
    assert not (tmp_path / "backups").exists()
    library.close()
    again = Library(tmp_path)
    assert again.last_backup is None
    assert not (tmp_path / "backups").exists()


def test_head_constant_matches_the_migration_scripts():
    assert db.head_revision() == db.HEAD_REVISION


def test_migrations_build_exactly_the_models(tmp_path):
    library = Library(tmp_path)
    with library._engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


BIG_STORY = "'Once.' || hex(randomblob(20000))"  # a backup of many pages: it can fail part-way


def _old_library(home, story_sql: str = "'Once.'"):
    """A library at the first schema version, with one project whose story is `story_sql`."""
    engine = db.make_engine(home / db.DB_FILENAME)
    db.upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO projects (title, author, style, profile, story_text, created, updated, version) "
            f"VALUES ('Old fox', '', 'watercolor', 'fast', {story_sql}, "
            "'2026-01-01 00:00:00', '2026-01-01 00:00:00', 3)"
        )
    engine.dispose()


def test_older_database_is_backed_up_then_migrated(tmp_path):
    _old_library(tmp_path)

    library = Library(tmp_path)
    backup = library.last_backup
    print(f"\nbackup made before migrating 0001 -> {db.head_revision()}: {backup.name if backup else None}")
    assert backup is not None and backup.parent == tmp_path / "backups" and backup.exists()
    copy = sqlite3.connect(backup)
    assert copy.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0001"
    assert copy.execute("SELECT title FROM projects").fetchall() == [("Old fox",)]
    copy.close()
    with library._engine.connect() as conn:
        assert db.current_revision(conn) == db.head_revision()
        indexes = {row[1] for row in conn.exec_driver_sql("PRAGMA index_list('illustrations')").all()}
    assert "ix_illustrations_image_sha256" in indexes
    (summary,) = library.list_projects()
    assert summary.title == "Old fox"
    project = library.get_project(summary.id)
    assert project.version == 3 and project.story_text == "Once."
    assert project.setting == "" and project.dedication == ""  # added by 0004: older stories have none
    library.close()
    assert Library(tmp_path).last_backup is None  # nothing pending: no second backup
    assert len(list((tmp_path / "backups").iterdir())) == 1


def _revision(home) -> str:
    raw = sqlite3.connect(home / db.DB_FILENAME)
    try:
        return raw.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    finally:
        raw.close()


def test_no_upgrade_without_its_backup_disk_full(tmp_path, monkeypatch):
    _old_library(tmp_path, BIG_STORY)
    real_connect = sqlite3.connect

    def connect(database, *args, **kwargs):
        conn = real_connect(database, *args, **kwargs)
        if "backups" in str(database):
            conn.execute("PRAGMA max_page_count = 2")  # the copy runs out of room: SQLITE_FULL
        return conn

    monkeypatch.setattr(db.sqlite3, "connect", connect)
    with pytest.raises(StorageError) as caught:
        Library(tmp_path)
    monkeypatch.undo()
    message = caught.value.message
    print(f"\nbackup fails, disk full: {message}")
    assert "could not be written" in message and "Free some space" in message and "nothing was changed" in message
    assert _revision(tmp_path) == "0001"
    assert list((tmp_path / "backups").iterdir()) == []  # no half-written copy
    library = Library(tmp_path)  # room again: backed up, then upgraded
    assert library.last_backup is not None and library.list_projects()[0].title == "Old fox"


def test_no_upgrade_without_its_backup_folder_unusable(tmp_path):
    _old_library(tmp_path, BIG_STORY)
    (tmp_path / "backups").write_text("a file where the folder should be")
    with pytest.raises(StorageError, match=r"could not be written to .*backups") as caught:
        Library(tmp_path)
    print(f"\nbackup folder unusable: {caught.value.message}")
    assert _revision(tmp_path) == "0001"


def test_database_from_a_newer_app_is_refused(tmp_path):
    Library(tmp_path).close()
    raw = sqlite3.connect(tmp_path / db.DB_FILENAME)
    raw.execute("UPDATE alembic_version SET version_num = 'ffff9999'")
    raw.commit()
    raw.close()
    with pytest.raises(StorageError, match="newer version"):
        Library(tmp_path)


def test_home_follows_storybook_home(tmp_path, monkeypatch):
    monkeypatch.setenv("STORYBOOK_HOME", str(tmp_path / "elsewhere"))
    library = Library()
    assert library.home == tmp_path / "elsewhere"
    assert (tmp_path / "elsewhere" / db.DB_FILENAME).exists()
