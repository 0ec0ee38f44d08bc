"""Nothing a user made is lost: ids are never reused, pages and pictures have states, every edit can be undone.

- Every table is rebuilt with AUTOINCREMENT, so the id of a deleted story, page or picture is never given
  to a new one (a tab still holding the old id must get a conflict, not write into someone else's story).
  SQLite adds AUTOINCREMENT only by rebuilding a table; with foreign keys on, dropping the old ``projects``
  table would cascade into every page and picture row, so storage.db runs migrations with foreign keys off
  and checks them (PRAGMA foreign_key_check) before committing: SQLite's own procedure for table rebuilds.
- ``segments.state``: 'live' (in the story), 'gone' (its words left the story without the user deleting the
  page; its pictures wait in the loose-pictures tray) or 'deleted' (deleted by the user; in the story's bin
  with its pictures until the bin is emptied).
- ``illustrations.state``: 'kept', or 'binned' (discarded by the user; restorable until the bin is emptied).
- ``projects.title_from_text``: the book's title is the story's first line (which then is not a page).
- ``history``: snapshots of a story's editable state after each user edit, for undo and redo
  (``projects.history_pos`` is the step the story is at).
- Story text and pages are made to agree: the story text is the pages' words with their separators. Older
  versions let them drift apart (a page edited through its menu never reached the story text; a draft typed
  in the story box never reached the pages). Where they disagree nothing is dropped: each page keeps its own
  words, and story text that no page holds becomes pages of its own, in place.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.agree import agree

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TABLES = {
    "projects": """
        id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
        title VARCHAR(200) NOT NULL,
        author VARCHAR(200) NOT NULL,
        style VARCHAR(100) NOT NULL,
        profile VARCHAR(100) NOT NULL,
        story_text TEXT NOT NULL,
        created DATETIME NOT NULL,
        updated DATETIME NOT NULL,
        version INTEGER DEFAULT 1 NOT NULL,
        story_settings JSON,
        setting TEXT DEFAULT '' NOT NULL,
        dedication TEXT DEFAULT '' NOT NULL,
        title_from_text BOOLEAN DEFAULT 0 NOT NULL,
        history_pos INTEGER DEFAULT 0 NOT NULL""",
    "segments": """
        id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
        project_id INTEGER NOT NULL,
        position INTEGER NOT NULL,
        text TEXT NOT NULL,
        start INTEGER NOT NULL,
        "end" INTEGER NOT NULL,
        prompt_override TEXT,
        negative_prompt TEXT,
        seed INTEGER,
        locked BOOLEAN DEFAULT 0 NOT NULL,
        state VARCHAR(8) DEFAULT 'live' NOT NULL,
        CONSTRAINT ck_segments_state CHECK (state IN ('live', 'gone', 'deleted')),
        CONSTRAINT fk_segments_project_id_projects FOREIGN KEY(project_id) REFERENCES projects (id) ON DELETE CASCADE""",
    "illustrations": """
        id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
        segment_id INTEGER NOT NULL,
        version INTEGER NOT NULL,
        image_sha256 VARCHAR(64) NOT NULL,
        image_ext VARCHAR(8) NOT NULL,
        settings JSON NOT NULL,
        origin VARCHAR(16) NOT NULL,
        created DATETIME NOT NULL,
        selected BOOLEAN DEFAULT 0 NOT NULL,
        state VARCHAR(8) DEFAULT 'kept' NOT NULL,
        CONSTRAINT ck_illustrations_ck_illustrations_origin CHECK (origin IN ('generated', 'uploaded')),
        CONSTRAINT ck_illustrations_state CHECK (state IN ('kept', 'binned')),
        CONSTRAINT fk_illustrations_segment_id_segments FOREIGN KEY(segment_id) REFERENCES segments (id) ON DELETE CASCADE,
        CONSTRAINT uq_illustrations_segment_id_version UNIQUE (segment_id, version)""",
    "source_images": """
        id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
        project_id INTEGER NOT NULL,
        position INTEGER NOT NULL,
        image_sha256 VARCHAR(64) NOT NULL,
        image_ext VARCHAR(8) NOT NULL,
        caption TEXT NOT NULL,
        CONSTRAINT fk_source_images_project_id_projects FOREIGN KEY(project_id) REFERENCES projects (id) ON DELETE CASCADE""",
    "characters": """
        id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
        project_id INTEGER NOT NULL,
        position INTEGER NOT NULL,
        name VARCHAR(200) NOT NULL,
        description TEXT NOT NULL,
        CONSTRAINT fk_characters_project_id_projects FOREIGN KEY(project_id) REFERENCES projects (id) ON DELETE CASCADE""",
}

_INDEXES = (
    "CREATE INDEX ix_projects_updated ON projects (updated)",
    "CREATE INDEX ix_segments_project_id_position ON segments (project_id, position)",
    "CREATE UNIQUE INDEX uq_illustrations_selected ON illustrations (segment_id) WHERE selected = 1",
    "CREATE INDEX ix_illustrations_image_sha256 ON illustrations (image_sha256)",
    "CREATE INDEX ix_source_images_project_id_position ON source_images (project_id, position)",
    "CREATE INDEX ix_source_images_image_sha256 ON source_images (image_sha256)",
    "CREATE INDEX ix_characters_project_id_position ON characters (project_id, position)",
)


def upgrade() -> None:
    conn = op.get_bind()
    if conn.exec_driver_sql("PRAGMA foreign_keys").scalar():
        # Dropping the old tables would cascade into every page and picture row.
        raise RuntimeError("migration 0005 rebuilds tables and must run with foreign keys off (storage.db does)")
    for name, columns in _TABLES.items():
        old = [row[1] for row in conn.exec_driver_sql(f"PRAGMA table_info('{name}')").all()]
        conn.exec_driver_sql(f"CREATE TABLE new_{name} ({columns})")
        copied = ", ".join(f'"{column}"' for column in old)
        conn.exec_driver_sql(f"INSERT INTO new_{name} ({copied}) SELECT {copied} FROM {name}")
        conn.exec_driver_sql(f"DROP TABLE {name}")
        conn.exec_driver_sql(f"ALTER TABLE new_{name} RENAME TO {name}")
    for statement in _INDEXES:
        conn.exec_driver_sql(statement)
    op.create_table(
        "history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("snapshot", sa.LargeBinary(), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name="fk_history_project_id_projects", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_history"),
        sa.UniqueConstraint("project_id", "seq", name="uq_history_project_id_seq"),
        sqlite_autoincrement=True,
    )
    _make_story_and_pages_agree(conn)


def downgrade() -> None:
    raise NotImplementedError("0005 cannot be undone; the library's backup from before the upgrade can be restored")


# ---------------------------------------------------------------------------------------- data


def _make_story_and_pages_agree(conn: sa.Connection) -> None:
    projects = conn.exec_driver_sql("SELECT id, title, story_text FROM projects").all()
    for project_id, title, story in projects:
        rows = conn.exec_driver_sql(
            'SELECT id, position, text, start, "end", negative_prompt FROM segments '
            "WHERE project_id = ? ORDER BY position, id",
            (project_id,),
        ).all()
        if not rows:
            continue
        story_text, title_from_text, pages = agree(story, title, [(r[0], r[2], r[3], r[4]) for r in rows])
        conn.exec_driver_sql(
            "UPDATE projects SET story_text = ?, title_from_text = ? WHERE id = ?",
            (story_text, int(title_from_text), project_id),
        )
        negative = {r[0]: r[5] for r in rows}
        for position, (page_id, text, start, end, made_from) in enumerate(pages):
            if page_id is not None:
                conn.exec_driver_sql(
                    'UPDATE segments SET position = ?, text = ?, start = ?, "end" = ? WHERE id = ?',
                    (position, text, start, end, page_id),
                )
            else:
                conn.exec_driver_sql(
                    'INSERT INTO segments (project_id, position, text, start, "end", negative_prompt, locked, state) '
                    "VALUES (?, ?, ?, ?, ?, ?, 0, 'live')",
                    (project_id, position, text, start, end, negative.get(made_from)),
                )
