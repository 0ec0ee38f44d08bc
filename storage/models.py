"""The library's tables, as SQLAlchemy 2.x typed mappings.

The migration scripts in ``storage/migrations/versions`` build exactly this schema; a test compares
them. Change a table here only together with a new migration.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import (
    text as sql_text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stored as naive UTC text (SQLite has no time zones), always handed back as an aware UTC datetime."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


PAGE_STATES = ("live", "gone", "deleted")
PICTURE_STATES = ("kept", "binned")


class Project(Base):
    __tablename__ = "projects"
    # Every table: AUTOINCREMENT, so the id of a deleted row is never given to a new one (a stale tab's write
    # aimed at a deleted story or page must fail, not land in another).
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    author: Mapped[str] = mapped_column(String(200), default="")
    style: Mapped[str] = mapped_column(String(100))
    profile: Mapped[str] = mapped_column(String(100))
    story_text: Mapped[str] = mapped_column(Text, default="")
    # Where and when the story happens, added to every picture's prompt ("" for none).
    setting: Mapped[str] = mapped_column(Text, default="", server_default="")
    # A line or two printed on its own page after the cover ("For Mia, who loves the sea"); "" for none.
    dedication: Mapped[str] = mapped_column(Text, default="", server_default="")
    # The words on the book's closing page ("" for the default: "The End" in the story's language).
    closing: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Pages are drawn as quick drafts first (finished later, all at once or one by one); False: final pictures.
    drafts: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sql_text("0"))
    # Pictures drawn per page (best of N, 1..8); the best scored one becomes the page's picture.
    candidates: Mapped[int] = mapped_column(Integer, default=1, server_default=sql_text("1"))
    created: Mapped[datetime] = mapped_column(UTCDateTime())
    updated: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    # Optimistic concurrency: every user edit states the version it was based on.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default=sql_text("1"))
    # How a generated story was written (seed, tone, age, hints, models, per-passage seeds), so it can be
    # written again exactly; None for a story typed by hand.
    story_settings: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # The book's title is the story text's first line, which then is not a page (it stands before the first).
    title_from_text: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sql_text("0"))
    # The undo history's current step (storage/library/history.py).
    history_pos: Mapped[int] = mapped_column(Integer, default=0, server_default=sql_text("0"))

    pages: Mapped[list[Page]] = relationship(
        back_populates="project",
        order_by="Page.position",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )
    characters: Mapped[list[Character]] = relationship(
        back_populates="project",
        order_by="Character.position",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )
    source_images: Mapped[list[SourceImage]] = relationship(
        back_populates="project",
        order_by="SourceImage.position",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class Page(Base):
    """One page of a story with its pictures (the table keeps its first name, ``segments``).

    ``state``: 'live' (in the story), 'gone' (its words left the story without the user deleting the page: its
    pictures wait in the loose-pictures tray) or 'deleted' (deleted by the user: in the story's bin, with its
    pictures, until the bin is emptied). Every row of a project is in ``Project.pages``, whatever its state.
    """

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    start: Mapped[int] = mapped_column(Integer)
    end: Mapped[int] = mapped_column(Integer)
    prompt_override: Mapped[str | None] = mapped_column(Text)
    negative_prompt: Mapped[str | None] = mapped_column(Text)
    seed: Mapped[int | None] = mapped_column(Integer)
    locked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sql_text("0"))
    state: Mapped[str] = mapped_column(String(8), default="live", server_default="live")

    project: Mapped[Project] = relationship(back_populates="pages")
    pictures: Mapped[list[Picture]] = relationship(
        back_populates="page",
        order_by="Picture.version",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )

    __table_args__ = (
        Index("ix_segments_project_id_position", "project_id", "position"),
        CheckConstraint("state IN ('live', 'gone', 'deleted')", name="state"),
        {"sqlite_autoincrement": True},
    )


class Picture(Base):
    """One version of a page's picture, drawn or uploaded (the table keeps its first name, ``illustrations``)."""

    __tablename__ = "illustrations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    page_id: Mapped[int] = mapped_column("segment_id", ForeignKey("segments.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    # The file is images/<sha256[:2]>/<sha256>.<ext>; titles and user text never become paths.
    image_sha256: Mapped[str] = mapped_column(String(64), index=True)
    image_ext: Mapped[str] = mapped_column(String(8))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    origin: Mapped[str] = mapped_column(String(16))
    created: Mapped[datetime] = mapped_column(UTCDateTime())
    selected: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sql_text("0"))
    # 'kept', or 'binned': discarded by the user, restorable until the story's bin is emptied.
    state: Mapped[str] = mapped_column(String(8), default="kept", server_default="kept")
    # What was learnt about the picture after drawing (plain JSON): its scores, its place among the candidates
    # drawn with it, whether it is a draft. Settings say how to draw it again; this is not needed for that.
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default=sql_text("'{}'"))

    page: Mapped[Page] = relationship(back_populates="pictures")

    __table_args__ = (
        UniqueConstraint("segment_id", "version"),
        CheckConstraint("origin IN ('generated', 'uploaded')", name="origin"),
        # At most one selected version per page; the library keeps "at least one" itself.
        Index("uq_illustrations_selected", "segment_id", unique=True, sqlite_where=sql_text("selected = 1")),
        CheckConstraint("state IN ('kept', 'binned')", name="state"),
        {"sqlite_autoincrement": True},
    )


class SourceImage(Base):
    __tablename__ = "source_images"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    image_sha256: Mapped[str] = mapped_column(String(64), index=True)
    image_ext: Mapped[str] = mapped_column(String(8))
    caption: Mapped[str] = mapped_column(Text, default="")

    project: Mapped[Project] = relationship(back_populates="source_images")

    __table_args__ = (
        Index("ix_source_images_project_id_position", "project_id", "position"),
        {"sqlite_autoincrement": True},
    )


class Character(Base):
    __tablename__ = "characters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # The character's reference picture (the cast sheet): a file in the picture store, like a picture's.
    reference_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reference_ext: Mapped[str | None] = mapped_column(String(8), nullable=True)
    # How the reference was drawn (its picture's settings: prompt, seed...), for shared attention to draw it
    # again beside each page; None for an uploaded picture.
    reference_settings: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # The pictures drawn for the reference, kept so the person can take another one later: a list of
    # {"sha256", "ext", "settings", "score"} naming files in the picture store (docs/formats.md); None for none.
    reference_proposals: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    # How alike the character looks across its pages, as measured on the job worker (studio.actions.cast):
    # {"score", "model", "pictures", "measured", ...}; None until measured. A measure, not an edit: undo keeps it.
    likeness: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    project: Mapped[Project] = relationship(back_populates="characters")

    __table_args__ = (
        Index("ix_characters_project_id_position", "project_id", "position"),
        {"sqlite_autoincrement": True},
    )


class History(Base):
    """One step of a story's undo history: its editable state after a user edit (storage/library/history.py)."""

    __tablename__ = "history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(200))
    snapshot: Mapped[bytes] = mapped_column(LargeBinary)  # zlib-compressed JSON
    created: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("project_id", "seq"), {"sqlite_autoincrement": True})
