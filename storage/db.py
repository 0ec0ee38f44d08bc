"""The SQLite file: where it lives, how connections are set up, and migrations at start-up.

Every connection runs in WAL mode with foreign keys on, a busy timeout and ``synchronous=FULL``.
Transactions are begun by us, not by the sqlite3 module: Python 3.11's sqlite3 has no
``autocommit`` attribute, so we switch its own BEGIN off (``isolation_level = None``) and emit
``BEGIN DEFERRED`` for reads and ``BEGIN IMMEDIATE`` for writes from the engine's ``begin`` event.
In WAL mode a deferred transaction that reads and then writes fails at once with "database is
locked" when another writer got in between, whatever the busy timeout; IMMEDIATE takes the write
lock up front and waits for it instead.
"""

from __future__ import annotations

import errno
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event

from storage.errors import StorageError

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

DB_FILENAME = "library.sqlite3"
BACKUP_DIRNAME = "backups"
BUSY_TIMEOUT_S = 30.0
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Execution option naming the BEGIN mode; see write_engine().
BEGIN_OPTION = "storybook_begin"
# The newest migration in migrations/versions (a test checks). Knowing it without alembic lets a
# start-up with nothing to migrate skip importing alembic (about a third of the CLI's start time).
HEAD_REVISION = "0007"
_NO_SPACE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def _icontains(haystack: str | None, needle: str | None) -> int:
    # SQLite's LIKE and lower() fold ASCII only; searching "ÉTÉ" must find "été".
    if haystack is None or needle is None:
        return 0
    return int(needle.casefold() in haystack.casefold())


def make_engine(db_path: Path) -> Engine:
    """An engine for one SQLite file; reads begin DEFERRED, ``write_engine(engine)`` begins IMMEDIATE."""
    engine = create_engine(
        f"sqlite:///{db_path}",
        connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_S},
        pool_size=8,
        max_overflow=24,
        pool_timeout=60,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        # Python 3.11: no Connection.autocommit; isolation_level=None stops sqlite3 from emitting
        # its own (deferred, and only-before-DML) BEGIN, so the begin event below is in charge.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()
        dbapi_connection.create_function("sb_icontains", 2, _icontains, deterministic=True)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(BEGIN_OPTION, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def write_engine(engine: Engine) -> Engine:
    """The same engine and pool, but every transaction begins IMMEDIATE (takes the write lock first)."""
    return engine.execution_options(**{BEGIN_OPTION: "IMMEDIATE"})


# --------------------------------------------------------------------------- migrations


def _alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _script() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config())


def head_revision() -> str:
    """The newest revision, read from the migration scripts themselves."""
    head = _script().get_current_head()
    assert head is not None
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at (None for a new, empty file)."""
    has_table = connection.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
    ).first()
    if not has_table:
        return None
    rows = connection.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    if len(rows) > 1:
        raise StorageError("The library file records more than one schema version; it may be damaged.")
    return rows[0][0] if rows else None


def _has_tables(connection: Connection) -> bool:
    row = connection.exec_driver_sql(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ).scalar()
    return bool(row)


def backup_database(db_path: Path, backup_dir: Path, label: str) -> Path:
    """A consistent copy of the database file (SQLite's online backup, so WAL content is included).

    Raises OSError or sqlite3.Error if the copy cannot be made whole; no partial copy is left.
    """
    backup_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = backup_dir / f"{db_path.stem}-{stamp}-before-{label}.sqlite3"
    source = sqlite3.connect(str(db_path), timeout=BUSY_TIMEOUT_S)
    try:
        dest = sqlite3.connect(str(target))
        try:
            source.backup(dest)
        finally:
            dest.close()
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    finally:
        source.close()
    return target


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run migrations up to ``revision`` inside one IMMEDIATE transaction (no backup; see migrate()).

    Foreign keys are off while they run (SQLite's procedure for rebuilding a table: with them on, dropping
    the old ``projects`` table would cascade into every page and picture) and checked before the commit.
    """
    from alembic import command

    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        # Only takes effect outside a transaction, so before the BEGIN below.
        raw.execute("PRAGMA foreign_keys = OFF")
        try:
            with conn.execution_options(**{BEGIN_OPTION: "IMMEDIATE"}).begin():
                command.upgrade(_alembic_config(conn), revision)
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    raise StorageError(
                        f"The library upgrade found {len(broken)} rows that point at nothing (first: {broken[0]}); "
                        "nothing was changed."
                    )
        finally:
            raw.execute("PRAGMA foreign_keys = ON")


def migrate(engine: Engine, db_path: Path, backup_dir: Path) -> Path | None:
    """Bring the database to the newest schema; returns the backup made first, if any.

    A backup is made only when a migration is pending on a database that already holds tables.
    Two processes starting together are safe: the upgrade runs under the write lock and alembic
    re-reads the revision inside it, so the second finds nothing left to do.
    """
    with engine.connect() as conn:
        current = current_revision(conn)
        has_tables = _has_tables(conn)
        conn.rollback()
    if current == HEAD_REVISION:
        return None
    head = head_revision()
    if current == head:
        return None
    if current is not None and not _known(_script(), current):
        raise StorageError(
            "This library was saved by a newer version of Storybook Studio; "
            "update the app to open it (nothing was changed)."
        )
    backup = None
    if has_tables:
        try:
            backup = backup_database(db_path, backup_dir, f"{current or 'unversioned'}-to-{head}")
        except (OSError, sqlite3.Error) as exc:
            # No upgrade without its safety copy; the library stays as it was, readable by the old app.
            reason = getattr(exc, "strerror", None) or str(exc)
            full = "disk is full" in reason.lower() or getattr(exc, "errno", None) in _NO_SPACE
            hint = "Free some space and start again" if full else "Make that folder writable and start again"
            raise StorageError(
                f"The library must be upgraded for this version of Storybook Studio, but the copy kept before "
                f"an upgrade could not be written to {backup_dir} ({reason}). {hint}; nothing was changed."
            ) from None
    try:
        upgrade(engine, "head")
    except Exception as exc:
        kept = f" A copy of it from before the attempt is at {backup}." if backup else ""
        raise StorageError(
            f"The library could not be upgraded to this version of Storybook Studio ({exc.__class__.__name__}).{kept}"
        ) from exc
    return backup


def _known(script: ScriptDirectory, revision: str) -> bool:
    try:
        return script.get_revision(revision) is not None
    except Exception:  # noqa: BLE001 - an unknown or malformed revision id is "not ours" either way
        return False
