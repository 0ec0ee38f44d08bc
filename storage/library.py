"""Every library operation: projects, pages (segments), pictures, characters, bundles, manifests.

``Library`` is thread-safe and cheap to share (keep one per process, e.g. in ``st.cache_resource``);
each call opens its own short transaction and returns frozen views, never ORM objects or sessions.

Concurrency rules:

* Every user edit names the project ``version`` it was based on. If the project changed since,
  ConflictError is raised and nothing is written; a successful edit bumps ``version`` and ``updated``.
* Background jobs write while the user edits, and what they write is not another person's edit:
  ``add_illustration`` (a picture) and ``save_job_output`` (captions, passages, a title and story
  settings) leave ``version`` alone and bump ``updated`` only, so a tab open on the project stays
  current while two people's edits still conflict. Choosing, reverting and deleting pictures never
  overwrite anyone's text either; they accept an optional ``expected_version``.
* A page's ``start``/``end`` offsets always lie within the story text (they point into the text the
  page was cut from; a shorter draft clamps them).
* Every write transaction begins IMMEDIATE (see storage/db.py).

File rules: a picture's file is written and fsynced before the row naming it commits; files are
removed only while holding the write lock and only when no row names them, and a writer re-checks
its file under the lock, so a removal and an insert of the same picture cannot cross.
"""

from __future__ import annotations

import copy
import hashlib
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine, and_, delete, exists, func, or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from core.paths import data_home
from storage import validate as v
from storage.bundle import BUNDLE_FORMAT, BUNDLE_VERSION, ImportedProject, read_bundle, read_manifest, write_bundle
from storage.db import BACKUP_DIRNAME, DB_FILENAME, make_engine, migrate, write_engine
from storage.errors import ConflictError, InvalidInput, NotFound, StorageError
from storage.files import SWEEP_MIN_AGE_S, CheckedImage, ImageStore, check_image, disk_full
from storage.models import Character, Illustration, Project, Segment, SourceImage, utcnow
from storage.views import (
    CharacterView,
    IllustrationView,
    ProjectSummary,
    ProjectView,
    SegmentInput,
    SegmentView,
    SourceImageView,
)

__all__ = [
    "UNSET",
    "CharacterView",
    "IllustrationView",
    "Library",
    "ProjectSummary",
    "ProjectView",
    "SegmentInput",
    "SegmentView",
    "SourceImageView",
]

# SQLite result codes (primary, low byte of the extended code).
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY, _SQLITE_IOERR = 5, 6, 8, 10
_SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 11, 13, 14, 26
_IN_CHUNK = 500
# SQLite row ids are signed 64-bit; a larger Python int makes sqlite3 raise OverflowError, not "no row".
_ROW_ID_RANGE = range(-(2**63), 2**63)

# Writers in one process queue on a Python lock per database file before asking SQLite for its
# write lock: SQLite's busy handler polls with sleeps of up to 100 ms, which wastes most of the
# time when many threads (page reruns, job callbacks) write at once. Other processes still wait
# in SQLite's busy handler, and BEGIN IMMEDIATE remains what makes writes safe.
_WRITE_LOCKS: dict[str, threading.RLock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def _write_lock(db_path: Path) -> threading.RLock:
    key = str(db_path.resolve())
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(key, threading.RLock())


class _Unset:
    """'Not given' for keyword arguments where None is a real value (it clears the field)."""

    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Any = _Unset()


@dataclass(frozen=True)
class SweepReport:
    removed_images: int
    removed_temp_files: int


class Library:
    """The user's saved projects: one SQLite file and a content-addressed image folder in ``home``."""

    def __init__(self, home: Path | str | None = None, *, sweep: bool = True):
        try:
            self.home = Path(home).expanduser() if home is not None else data_home()
            self.home.mkdir(parents=True, exist_ok=True)
            self.images = ImageStore(self.home / "images")
        except OSError as exc:
            where = home if home is not None else "the data folder"
            raise StorageError(
                f"The library folder {where} cannot be created or opened ({exc.strerror or exc})."
            ) from None
        self.db_path = self.home / DB_FILENAME
        self._engine: Engine = make_engine(self.db_path)
        self._reader = sessionmaker(self._engine, expire_on_commit=False)
        self._writer = sessionmaker(write_engine(self._engine), expire_on_commit=False)
        self._write_lock = _write_lock(self.db_path)
        with self._db_errors("the library could not be opened"):
            #: The copy of the database made before the last migration, if one ran.
            self.last_backup: Path | None = migrate(self._engine, self.db_path, self.home / BACKUP_DIRNAME)
        if sweep:
            self.sweep()

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ transactions and errors

    @contextmanager
    def _db_errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except StorageError:
            raise
        except DBAPIError as exc:
            raise self._translate(exc, action) from exc

    def _translate(self, exc: DBAPIError, action: str) -> StorageError:
        code = getattr(exc.orig, "sqlite_errorcode", None)
        primary = code & 0xFF if isinstance(code, int) else None
        text = str(exc.orig).lower()
        if primary == _SQLITE_FULL or "disk is full" in text:
            return disk_full(f"{action}")
        if primary in (_SQLITE_BUSY, _SQLITE_LOCKED) or "locked" in text:
            return StorageError(
                f"The library is busy with another save that is taking unusually long, so {action}. "
                "Try again in a moment; nothing was changed."
            )
        if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
            return StorageError(
                f"The library file {self.db_path} is damaged, so {action}. "
                f"Copies made before each upgrade are in {self.home / BACKUP_DIRNAME}."
            )
        if primary == _SQLITE_READONLY:
            return StorageError(f"The library folder {self.home} is read-only, so {action}.")
        if primary == _SQLITE_CANTOPEN:
            return StorageError(f"The library file {self.db_path} cannot be opened, so {action}.")
        if primary == _SQLITE_IOERR:
            return StorageError(f"The disk reported an input/output error, so {action}. Nothing was changed.")
        return StorageError(f"The library reported an error ({exc.orig}), so {action}.")

    @contextmanager
    def _write(self, action: str = "the change was not saved") -> Iterator[Session]:
        """One IMMEDIATE transaction; commits on success, rolls back on any error."""
        with self._write_lock, self._db_errors(action), self._writer() as session, session.begin():
            # Take SQLite's write lock now, not at the first query: the file checks made inside
            # (see _ensure_files) rely on holding it.
            session.connection()
            yield session

    @contextmanager
    def _read(self) -> Iterator[Session]:
        """One consistent snapshot (a deferred transaction) for a read."""
        with self._db_errors("the library could not be read"), self._reader() as session, session.begin():
            yield session

    # ------------------------------------------------------------------ lookups and views

    def _project(self, session: Session, project_id: Any) -> Project:
        if isinstance(project_id, bool) or not isinstance(project_id, int):
            raise InvalidInput("A project is named by its whole-number id.")
        project = session.get(Project, project_id) if project_id in _ROW_ID_RANGE else None
        if project is None:
            raise NotFound("That project no longer exists. It may have been deleted in another tab or window.")
        return project

    def _project_for_edit(self, session: Session, project_id: Any, expected_version: Any) -> Project:
        expected = v.expected_version(expected_version)
        project = self._project(session, project_id)
        if project.version != expected:
            raise ConflictError()
        return project

    @staticmethod
    def _touch(project: Project, *, bump: bool = True) -> None:
        project.updated = utcnow()
        if bump:
            project.version += 1

    def _segment(self, session: Session, segment_id: Any) -> Segment:
        if isinstance(segment_id, bool) or not isinstance(segment_id, int):
            raise InvalidInput("A page is named by its whole-number id.")
        segment = session.get(Segment, segment_id) if segment_id in _ROW_ID_RANGE else None
        if segment is None:
            raise NotFound("That page no longer exists. It may have been removed in another tab or window.")
        return segment

    def _illustration(self, session: Session, illustration_id: Any) -> Illustration:
        if isinstance(illustration_id, bool) or not isinstance(illustration_id, int):
            raise InvalidInput("A picture is named by its whole-number id.")
        illustration = session.get(Illustration, illustration_id) if illustration_id in _ROW_ID_RANGE else None
        if illustration is None:
            raise NotFound("That picture no longer exists. It may have been deleted in another tab or window.")
        return illustration

    def _illustration_view(self, ill: Illustration) -> IllustrationView:
        return IllustrationView(
            id=ill.id,
            segment_id=ill.segment_id,
            version=ill.version,
            image_path=self.images.path_for(ill.image_sha256, ill.image_ext),
            settings=copy.deepcopy(ill.settings or {}),
            origin=ill.origin,
            created=ill.created,
            selected=bool(ill.selected),
        )

    def _segment_view(self, seg: Segment) -> SegmentView:
        ills = [self._illustration_view(ill) for ill in sorted(seg.illustrations, key=lambda i: i.version)]
        return SegmentView(
            id=seg.id,
            position=seg.position,
            text=seg.text,
            start=seg.start,
            end=seg.end,
            prompt_override=seg.prompt_override,
            negative_prompt=seg.negative_prompt,
            seed=seg.seed,
            locked=bool(seg.locked),
            illustrations=ills,
            selected=next((ill for ill in ills if ill.selected), None),
        )

    def _project_view(self, session: Session, project_id: int) -> ProjectView:
        session.flush()
        project = session.execute(
            select(Project)
            .where(Project.id == project_id)
            .options(
                selectinload(Project.segments).selectinload(Segment.illustrations),
                selectinload(Project.characters),
                selectinload(Project.source_images),
            )
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()
        if project is None:
            raise NotFound("That project no longer exists. It may have been deleted in another tab or window.")
        return ProjectView(
            id=project.id,
            title=project.title,
            author=project.author,
            style=project.style,
            profile=project.profile,
            story_text=project.story_text,
            setting=project.setting,
            dedication=project.dedication,
            version=project.version,
            created=project.created,
            updated=project.updated,
            segments=[self._segment_view(seg) for seg in sorted(project.segments, key=lambda s: (s.position, s.id))],
            characters=[
                CharacterView(id=c.id, position=c.position, name=c.name, description=c.description)
                for c in sorted(project.characters, key=lambda c: (c.position, c.id))
            ],
            source_images=[
                SourceImageView(
                    id=s.id,
                    position=s.position,
                    image_path=self.images.path_for(s.image_sha256, s.image_ext),
                    caption=s.caption,
                )
                for s in sorted(project.source_images, key=lambda s: (s.position, s.id))
            ],
            story_settings=copy.deepcopy(project.story_settings) if project.story_settings is not None else None,
        )

    @staticmethod
    def _renumber(segments: Sequence[Segment]) -> None:
        for position, seg in enumerate(segments):
            if seg.position != position:
                seg.position = position

    # ------------------------------------------------------------------ image files

    def _ensure_files(self, images: Iterable[CheckedImage]) -> None:
        """Under the write lock: make sure each file is (still) in place; a sweep may have raced us."""
        for image in images:
            if not self.images.has(image):
                self.images.write(image)

    def _shas_in_use(self, session: Session, shas: set[str]) -> set[str]:
        used: set[str] = set()
        ordered = sorted(shas)
        for i in range(0, len(ordered), _IN_CHUNK):
            chunk = ordered[i : i + _IN_CHUNK]
            used.update(session.scalars(select(Illustration.image_sha256).where(Illustration.image_sha256.in_(chunk))))
            used.update(session.scalars(select(SourceImage.image_sha256).where(SourceImage.image_sha256.in_(chunk))))
        return used

    def _collect_garbage(self, shas: set[str]) -> int:
        """Remove the files of ``shas`` that no row names any more (under the write lock)."""
        if not shas:
            return 0
        removed = 0
        try:
            with self._write("unused picture files were not removed") as session:
                for sha in shas - self._shas_in_use(session, shas):
                    removed += int(self.images.remove(sha))
        except StorageError:
            pass  # harmless: the start-up sweep removes them later
        return removed

    def sweep(self, min_age_s: float = SWEEP_MIN_AGE_S) -> SweepReport:
        """Remove image files no row names and temporary files left by crashed writers.

        Only files older than ``min_age_s`` are touched: a writer in another process may have
        written a file it has not committed yet (it re-checks under the lock, but a young file is
        most likely exactly that).
        """
        named, stray = self.images.sweep_candidates(min_age_s)
        removed_temp = 0
        for path in stray:
            try:
                path.unlink()
                removed_temp += 1
            except OSError:
                pass
        removed = 0
        if named:
            try:
                with self._write("unused picture files were not removed") as session:
                    unused = set(named) - self._shas_in_use(session, set(named))
                    for sha in unused:
                        for path in named[sha]:
                            try:
                                path.unlink()
                                removed += 1
                            except OSError:
                                pass
            except StorageError:
                pass
        return SweepReport(removed_images=removed, removed_temp_files=removed_temp)

    # ------------------------------------------------------------------ projects

    def create_project(
        self, title: str, author: str = "", style: str = "watercolor", profile: str = "fast", story_text: str = ""
    ) -> ProjectView:
        fields = dict(
            title=v.title(title),
            author=v.text(author, "The author", v.MAX_AUTHOR),
            style=v.text(style, "The style", v.MAX_STYLE),
            profile=v.text(profile, "The model profile", v.MAX_STYLE),
            story_text=v.text(story_text, "The story", v.MAX_STORY),
        )
        now = utcnow()
        with self._write("the project was not created") as session:
            project = Project(**fields, created=now, updated=now, version=1)
            session.add(project)
            session.flush()
            return self._project_view(session, project.id)

    def list_projects(self, search: str = "") -> list[ProjectSummary]:
        """Newest (last updated) first; ``search`` matches title, story and page text, ignoring case."""
        query = v.text(search or "", "The search", v.MAX_SEARCH).strip()
        with self._read() as session:
            stmt = select(Project.id, Project.title, Project.author, Project.updated).order_by(
                Project.updated.desc(), Project.id.desc()
            )
            if query:
                stmt = stmt.where(
                    or_(
                        func.sb_icontains(Project.title, query) == 1,
                        func.sb_icontains(Project.author, query) == 1,
                        func.sb_icontains(Project.story_text, query) == 1,
                        exists().where(Segment.project_id == Project.id, func.sb_icontains(Segment.text, query) == 1),
                    )
                )
            rows = session.execute(stmt).all()
            counts = dict(session.execute(select(Segment.project_id, func.count()).group_by(Segment.project_id)).all())
            first = (
                select(Segment.project_id.label("project_id"), func.min(Segment.position).label("position"))
                .group_by(Segment.project_id)
                .subquery()
            )
            covers: dict[int, Path] = {}
            cover_rows = session.execute(
                select(Segment.project_id, Illustration.image_sha256, Illustration.image_ext)
                .join(first, and_(first.c.project_id == Segment.project_id, first.c.position == Segment.position))
                .join(Illustration, and_(Illustration.segment_id == Segment.id, Illustration.selected.is_(True)))
                .order_by(Segment.id)
            ).all()
            for project_id, sha, ext in cover_rows:
                covers.setdefault(project_id, self.images.path_for(sha, ext))
        return [
            ProjectSummary(
                id=pid,
                title=title,
                author=author,
                updated=updated,
                segment_count=counts.get(pid, 0),
                cover_image=covers.get(pid),
            )
            for pid, title, author, updated in rows
        ]

    def get_project(self, project_id: int) -> ProjectView:
        with self._read() as session:
            self._project(session, project_id)
            return self._project_view(session, project_id)

    def library_stamp(self) -> tuple[int, int | None, datetime | None]:
        """(stories, highest id, last update) over the whole library: changes whenever a story is made,
        deleted, edited or gets a picture, so an open library page can tell it is out of date."""
        with self._read() as session:
            row = session.execute(select(func.count(Project.id), func.max(Project.id), func.max(Project.updated))).one()
        return row[0], row[1], row[2]

    def project_stamp(self, project_id: int) -> tuple[int, datetime]:
        """(version, updated) of a project, read without its pages: a cheap way for an open tab to notice
        a change made elsewhere. A person's edit changes both; a job's pictures or words change ``updated``."""
        if isinstance(project_id, bool) or not isinstance(project_id, int):
            raise InvalidInput("A project is named by its whole-number id.")
        with self._read() as session:
            row = (
                session.execute(select(Project.version, Project.updated).where(Project.id == project_id)).first()
                if project_id in _ROW_ID_RANGE
                else None
            )
        if row is None:
            raise NotFound("That project no longer exists. It may have been deleted in another tab or window.")
        return row.version, row.updated

    def update_project(
        self,
        project_id: int,
        expected_version: int,
        *,
        title: str | None = None,
        author: str | None = None,
        style: str | None = None,
        profile: str | None = None,
        story_text: str | None = None,
        story_settings: dict[str, Any] | None = UNSET,
        setting: str | None = None,
        dedication: str | None = None,
    ) -> ProjectView:
        """Change the given fields (None leaves a field as it is).

        ``setting`` says where and when the story happens (at most MAX_SETTING characters, "" for none);
        ``dedication`` is printed after the cover (its line breaks kept, at most MAX_DEDICATION characters).

        ``story_text`` keeps a draft of the story without cutting it into pages again: the pages keep
        their rows, texts and pictures; offsets beyond the end of a shorter text are clamped to it.
        ``story_settings`` (plain JSON, at most 64 KB) records how a generated story was written;
        here None clears it and leaving it out leaves it as it is.
        """
        changes: dict[str, Any] = {}
        if title is not None:
            changes["title"] = v.title(title)
        if author is not None:
            changes["author"] = v.text(author, "The author", v.MAX_AUTHOR)
        if style is not None:
            changes["style"] = v.text(style, "The style", v.MAX_STYLE)
        if profile is not None:
            changes["profile"] = v.text(profile, "The model profile", v.MAX_STYLE)
        if story_text is not None:
            changes["story_text"] = v.text(story_text, "The story", v.MAX_STORY)
        if setting is not None:
            changes["setting"] = v.setting(setting)
        if dedication is not None:
            changes["dedication"] = v.dedication(dedication)
        if story_settings is not UNSET:
            changes["story_settings"] = (
                None if story_settings is None else v.settings(story_settings, "The story's settings")
            )
        with self._write() as session:
            project = self._project_for_edit(session, project_id, expected_version)
            for name, value in changes.items():
                setattr(project, name, value)
            if "story_text" in changes:
                self._clamp_offsets(project)
            self._touch(project)
            return self._project_view(session, project.id)

    @staticmethod
    def _clamp_offsets(project: Project) -> None:
        end_of_text = len(project.story_text)
        for seg in project.segments:
            start = min(seg.start, end_of_text)
            end = max(start, min(seg.end, end_of_text))
            if (seg.start, seg.end) != (start, end):
                seg.start, seg.end = start, end

    def save_job_output(
        self,
        project_id: int,
        *,
        based_on: int | None = None,
        captions: Mapping[int, str] | None = None,
        passages: Mapping[int, str] | None = None,
        title: str | None = None,
        story_settings: dict[str, Any] | None = UNSET,
    ) -> ProjectView:
        """Save what a background job made for the project, in one transaction, without bumping ``version``.

        Only job callbacks call this (a person's edit names its version and bumps it): like
        ``add_illustration`` it bumps ``updated`` only, so a tab open on the project stays current.
        ``captions`` maps source picture ids to captions; ``passages`` maps page ids to their new
        text, and then the story text becomes the pages' texts joined by blank lines, each page's
        offsets pointing into it (a story written page by page has no other text). ``title`` and
        ``story_settings`` are set as in ``update_project``. ``based_on``, when given, makes the write
        conditional: ConflictError if the project changed since that version, so a job that read,
        changed and writes back (its story settings) can read again and redo the change.
        """
        caption_changes = self._id_texts(captions, "caption", v.MAX_CAPTION, required=False)
        passage_changes = self._id_texts(passages, "page's text", v.MAX_STORY, required=True)
        new_title = v.title(title) if title is not None else None
        if story_settings is not UNSET and story_settings is not None:
            story_settings = v.settings(story_settings, "The story's settings")
        with self._write() as session:
            if based_on is None:
                project = self._project(session, project_id)
            else:
                project = self._project_for_edit(session, project_id, based_on)
            if caption_changes:
                sources = {src.id: src for src in project.source_images}
                for source_id, caption in caption_changes.items():
                    if source_id not in sources:
                        raise NotFound(
                            "That picture no longer exists. It may have been removed in another tab or window."
                        )
                    sources[source_id].caption = caption
            if passage_changes:
                pages = {seg.id: seg for seg in project.segments}
                for segment_id, text in passage_changes.items():
                    if segment_id not in pages:
                        raise NotFound("That page no longer exists. It may have been removed in another tab or window.")
                    pages[segment_id].text = text
                story_text = ""
                for seg in sorted(project.segments, key=lambda s: (s.position, s.id)):
                    if story_text:
                        story_text += "\n\n"
                    seg.start = len(story_text)
                    story_text += seg.text
                    seg.end = len(story_text)
                if len(story_text) > v.MAX_STORY:
                    raise InvalidInput(
                        f"The story would be longer than the longest story we keep ({v.MAX_STORY:,} characters)."
                    )
                project.story_text = story_text
            if new_title is not None:
                project.title = new_title
            if story_settings is not UNSET:
                project.story_settings = story_settings
            self._touch(project, bump=False)
            return self._project_view(session, project.id)

    @staticmethod
    def _id_texts(items: Any, what: str, max_len: int, *, required: bool) -> dict[int, str]:
        if items is None:
            return {}
        if not isinstance(items, Mapping):
            raise InvalidInput(f"Each {what} must be given by its id, as a mapping.")
        out: dict[int, str] = {}
        for key, value in items.items():
            if isinstance(key, bool) or not isinstance(key, int):
                raise InvalidInput(f"A {what} is named by its whole-number id.")
            out[key] = v.text(value, f"The {what}", max_len, required=required)
        return out

    def rename_project(self, project_id: int, title: str, expected_version: int) -> ProjectView:
        return self.update_project(project_id, expected_version, title=title)

    def duplicate_project(self, project_id: int) -> ProjectView:
        """A new project with copies of every page, picture version, character and source picture.

        The copies share the original's image files (same content, same name).
        """
        with self._write("the copy was not made") as session:
            source = self._project(session, project_id)
            now = utcnow()
            title = source.title
            suffix = " (copy)"
            if len(title) + len(suffix) > v.MAX_TITLE:
                title = title[: v.MAX_TITLE - len(suffix) - 1].rstrip() + "…"
            clone = Project(
                title=title + suffix,
                author=source.author,
                style=source.style,
                profile=source.profile,
                story_text=source.story_text,
                setting=source.setting,
                dedication=source.dedication,
                created=now,
                updated=now,
                version=1,
                story_settings=copy.deepcopy(source.story_settings),
            )
            session.add(clone)
            for seg in source.segments:
                new_seg = Segment(
                    position=seg.position,
                    text=seg.text,
                    start=seg.start,
                    end=seg.end,
                    prompt_override=seg.prompt_override,
                    negative_prompt=seg.negative_prompt,
                    seed=seg.seed,
                    locked=seg.locked,
                )
                clone.segments.append(new_seg)
                for ill in seg.illustrations:
                    new_seg.illustrations.append(
                        Illustration(
                            version=ill.version,
                            image_sha256=ill.image_sha256,
                            image_ext=ill.image_ext,
                            settings=copy.deepcopy(ill.settings),
                            origin=ill.origin,
                            created=ill.created,
                            selected=ill.selected,
                        )
                    )
            for char in source.characters:
                clone.characters.append(Character(position=char.position, name=char.name, description=char.description))
            for src in source.source_images:
                clone.source_images.append(
                    SourceImage(
                        position=src.position,
                        image_sha256=src.image_sha256,
                        image_ext=src.image_ext,
                        caption=src.caption,
                    )
                )
            session.flush()
            return self._project_view(session, clone.id)

    def delete_project(self, project_id: int, expected_version: int | None = None) -> None:
        """Delete the project, its pages, pictures and characters, and the files nothing else uses."""
        with self._write("the project was not deleted") as session:
            project = (
                self._project(session, project_id)
                if expected_version is None
                else self._project_for_edit(session, project_id, expected_version)
            )
            shas = self._project_shas(session, project.id)
            session.execute(delete(Project).where(Project.id == project.id))
        self._collect_garbage(shas)

    def _project_shas(self, session: Session, project_id: int) -> set[str]:
        shas = set(
            session.scalars(select(Illustration.image_sha256).join(Segment).where(Segment.project_id == project_id))
        )
        shas.update(session.scalars(select(SourceImage.image_sha256).where(SourceImage.project_id == project_id)))
        return shas

    # ------------------------------------------------------------------ story and pages

    @staticmethod
    def _check_segment_input(raw: Any, n: int, story_len: int) -> SegmentInput:
        # SegmentInput, or anything shaped like it (the engine's own segment type, a dict).
        if isinstance(raw, dict):
            fields = raw
        elif all(hasattr(raw, name) for name in ("text", "start", "end")):
            fields = {name: getattr(raw, name) for name in SegmentInput.__dataclass_fields__ if hasattr(raw, name)}
        else:
            raise InvalidInput(f"Page {n} must be given as a SegmentInput (text, start, end).")
        try:
            item = SegmentInput(**{k: fields[k] for k in SegmentInput.__dataclass_fields__ if k in fields})
        except TypeError:
            raise InvalidInput(f"Page {n} needs a text, a start and an end.") from None
        return SegmentInput(
            text=v.text(item.text, f"Page {n}'s text", v.MAX_STORY, required=True),
            start=v.integer(item.start, f"Page {n}'s start offset", 0, story_len),
            end=v.integer(item.end, f"Page {n}'s end offset", 0, story_len),
            prompt_override=v.optional_text(item.prompt_override, f"Page {n}'s prompt", v.MAX_PROMPT),
            negative_prompt=v.optional_text(item.negative_prompt, f"Page {n}'s negative prompt", v.MAX_PROMPT),
            seed=v.seed(item.seed, f"Page {n}'s seed"),
            locked=v.flag(item.locked, f"Whether page {n} is locked"),
        )

    def save_story(
        self, project_id: int, expected_version: int, story_text: str, segments: Sequence[SegmentInput]
    ) -> ProjectView:
        """Replace the story and its list of pages.

        A new page whose text equals an old page's text (ignoring differences in whitespace) keeps
        that page's row: its pictures, and its seed, prompts and lock where the new page gives none.
        Old pages that match nothing are deleted with their pictures.
        """
        story_text = v.text(story_text, "The story", v.MAX_STORY)
        if not isinstance(segments, (list, tuple)):
            raise InvalidInput("The pages must be given as a list.")
        if len(segments) > v.MAX_SEGMENTS:
            raise InvalidInput(
                f"The story is split into {len(segments):,} pages; the most we keep is {v.MAX_SEGMENTS:,}."
            )
        inputs = [self._check_segment_input(item, n, len(story_text)) for n, item in enumerate(segments, start=1)]
        for n, item in enumerate(inputs, start=1):
            if item.end < item.start:
                raise InvalidInput(f"Page {n} ends (at {item.end}) before it starts (at {item.start}).")
        with self._write() as session:
            project = self._project_for_edit(session, project_id, expected_version)
            old_segments = list(project.segments)
            old_by_text: dict[str, list[Segment]] = {}
            for seg in old_segments:
                old_by_text.setdefault(_normalise(seg.text), []).append(seg)
            kept: set[int] = set()
            ordered: list[Segment] = []
            for item in inputs:
                candidates = old_by_text.get(_normalise(item.text))
                if candidates:
                    seg = candidates.pop(0)
                    kept.add(seg.id)
                    seg.text, seg.start, seg.end = item.text, item.start, item.end
                    if item.prompt_override is not None:
                        seg.prompt_override = item.prompt_override
                    if item.negative_prompt is not None:
                        seg.negative_prompt = item.negative_prompt
                    if item.seed is not None:
                        seg.seed = item.seed
                    seg.locked = bool(seg.locked or item.locked)
                else:
                    seg = Segment(
                        text=item.text,
                        start=item.start,
                        end=item.end,
                        prompt_override=item.prompt_override,
                        negative_prompt=item.negative_prompt,
                        seed=item.seed,
                        locked=item.locked,
                        position=0,
                    )
                    project.segments.append(seg)
                ordered.append(seg)
            dropped = [seg for seg in old_segments if seg.id not in kept]
            shas = {ill.image_sha256 for seg in dropped for ill in seg.illustrations}
            for seg in dropped:
                project.segments.remove(seg)
            self._renumber(ordered)
            project.story_text = story_text
            self._touch(project)
            view = self._project_view(session, project.id)
        self._collect_garbage(shas)
        return view

    def update_segment(
        self,
        segment_id: int,
        expected_version: int,
        *,
        text: str = UNSET,
        prompt_override: str | None = UNSET,
        negative_prompt: str | None = UNSET,
        seed: int | None = UNSET,
        locked: bool = UNSET,
    ) -> ProjectView:
        """Change the given fields of one page; None clears the prompt fields and the seed.

        The page's start/end offsets are left as they were (they point into the original story).
        """
        changes: dict[str, Any] = {}
        if text is not UNSET:
            changes["text"] = v.text(text, "The page's text", v.MAX_STORY, required=True)
        if prompt_override is not UNSET:
            changes["prompt_override"] = v.optional_text(prompt_override, "The prompt", v.MAX_PROMPT)
        if negative_prompt is not UNSET:
            changes["negative_prompt"] = v.optional_text(negative_prompt, "The negative prompt", v.MAX_PROMPT)
        if seed is not UNSET:
            changes["seed"] = v.seed(seed)
        if locked is not UNSET:
            changes["locked"] = v.flag(locked, "Whether the page is locked")
        with self._write() as session:
            segment = self._segment(session, segment_id)
            project = self._project_for_edit(session, segment.project_id, expected_version)
            for name, value in changes.items():
                setattr(segment, name, value)
            self._touch(project)
            return self._project_view(session, project.id)

    def merge_segments(self, segment_id: int, expected_version: int) -> ProjectView:
        """Join a page with the next one. The first page keeps its pictures, seed, prompts and lock;
        the second page's pictures are moved over as further (unselected) versions, not thrown away."""
        with self._write() as session:
            first = self._segment(session, segment_id)
            project = self._project_for_edit(session, first.project_id, expected_version)
            pages = list(project.segments)
            index = pages.index(first)
            if index + 1 >= len(pages):
                raise InvalidInput("This is the last page, so there is no next page to merge it with.")
            second = pages[index + 1]
            story = project.story_text
            in_sync = (
                first.end <= second.start
                and story[first.start : first.end] == first.text
                and story[second.start : second.end] == second.text
            )
            merged = story[first.start : second.end] if in_sync else f"{first.text.rstrip()} {second.text.lstrip()}"
            if len(merged) > v.MAX_STORY:
                raise InvalidInput("The merged page would be longer than the longest story we keep.")
            first.text = merged
            first.start, first.end = min(first.start, second.start), max(first.end, second.end)
            next_version = max((ill.version for ill in first.illustrations), default=0) + 1
            has_selected = any(ill.selected for ill in first.illustrations)
            moved = sorted(second.illustrations, key=lambda ill: ill.version)
            for ill in moved:
                ill.version = -ill.version  # (segment, version) is unique: park them where no version lives
            session.flush()
            for offset, ill in enumerate(moved):
                ill.segment_id = first.id
                ill.version = next_version + offset
                if has_selected:
                    ill.selected = False
            session.flush()
            session.expire(first, ["illustrations"])
            session.expire(second, ["illustrations"])
            project.segments.remove(second)
            self._renumber(project.segments)
            self._touch(project)
            return self._project_view(session, project.id)

    def split_segment(self, segment_id: int, at: int, expected_version: int) -> ProjectView:
        """Split a page's text at character index ``at``; the first part keeps the page's pictures,
        seed, prompts and lock, the second becomes a new page right after it."""
        with self._write() as session:
            segment = self._segment(session, segment_id)
            project = self._project_for_edit(session, segment.project_id, expected_version)
            text = segment.text
            at = v.integer(at, "The split position", 1, max(1, len(text) - 1))
            head, tail = text[:at].rstrip(), text[at:].lstrip()
            if not head.strip() or not tail.strip():
                raise InvalidInput("Split the page between words, so that both parts keep some text.")
            in_sync = project.story_text[segment.start : segment.end] == text
            boundary = segment.start + at if in_sync else min(segment.start + at, segment.end)
            tail_start = boundary + (len(text) - at - len(tail)) if in_sync else boundary
            head_end = segment.start + len(head) if in_sync else boundary
            new = Segment(
                text=tail,
                start=tail_start,
                end=segment.end,
                prompt_override=None,
                negative_prompt=segment.negative_prompt,
                seed=None,
                locked=False,
                position=segment.position + 1,
            )
            segment.text, segment.end = head, head_end
            pages = list(project.segments)
            pages.insert(pages.index(segment) + 1, new)
            project.segments.append(new)
            self._renumber(pages)
            self._touch(project)
            return self._project_view(session, project.id)

    # ------------------------------------------------------------------ pictures

    def add_illustration(
        self,
        segment_id: int,
        png_bytes: bytes,
        settings: dict[str, Any],
        origin: str = "generated",
        select: bool = True,
    ) -> IllustrationView:
        """Keep a new picture version for a page (PNG, JPEG or WebP bytes, checked with Pillow).

        Called by background jobs while the user edits, so it takes no expected_version and leaves
        the project's version alone (it bumps ``updated``). The first picture of a page is always
        selected; later ones only when ``select`` is true.
        """
        origin = v.origin(origin)
        settings = v.settings(settings)
        select = v.flag(select, "Whether to select the picture")
        image = check_image(png_bytes)
        self.images.write(image)
        try:
            with self._write("the picture was not saved") as session:
                segment = self._segment(session, segment_id)
                self._ensure_files([image])
                last_version, selected_count = session.execute(
                    sa.select(
                        func.max(Illustration.version),
                        func.count(Illustration.id).filter(Illustration.selected.is_(True)),
                    ).where(Illustration.segment_id == segment.id)
                ).one()
                if (
                    session.scalar(sa.select(func.count(Illustration.id)).where(Illustration.segment_id == segment.id))
                    or 0
                ) >= v.MAX_ILLUSTRATIONS_PER_SEGMENT:
                    raise InvalidInput(
                        f"This page already keeps {v.MAX_ILLUSTRATIONS_PER_SEGMENT:,} pictures; delete some first."
                    )
                make_selected = select or not selected_count
                if make_selected and selected_count:
                    session.execute(
                        update(Illustration)
                        .where(Illustration.segment_id == segment.id, Illustration.selected.is_(True))
                        .values(selected=False)
                        .execution_options(synchronize_session=False)
                    )
                ill = Illustration(
                    segment_id=segment.id,
                    version=(last_version or 0) + 1,
                    image_sha256=image.sha256,
                    image_ext=image.ext,
                    settings=settings,
                    origin=origin,
                    created=utcnow(),
                    selected=make_selected,
                )
                session.add(ill)
                self._touch(segment.project, bump=False)
                session.flush()
                return self._illustration_view(ill)
        except NotFound:
            self._collect_garbage({image.sha256})
            raise NotFound(
                "The page this picture was made for no longer exists, so the picture was not kept."
            ) from None

    def _select(self, session: Session, ill: Illustration) -> None:
        session.execute(
            update(Illustration)
            .where(
                Illustration.segment_id == ill.segment_id, Illustration.selected.is_(True), Illustration.id != ill.id
            )
            .values(selected=False)
            .execution_options(synchronize_session=False)
        )
        session.flush()
        ill.selected = True

    def select_illustration(self, illustration_id: int, expected_version: int | None = None) -> IllustrationView:
        """Make this version the page's picture (the others are kept)."""
        with self._write() as session:
            ill = self._illustration(session, illustration_id)
            project = self._owner(session, ill.segment.project_id, expected_version)
            self._select(session, ill)
            self._touch(project, bump=expected_version is not None)
            session.flush()
            return self._illustration_view(ill)

    def revert_segment(
        self, segment_id: int, illustration_id: int, expected_version: int | None = None
    ) -> IllustrationView:
        """Go back to an older picture version of a page (the same as selecting it)."""
        with self._write() as session:
            segment = self._segment(session, segment_id)
            ill = self._illustration(session, illustration_id)
            if ill.segment_id != segment.id:
                raise InvalidInput("That picture belongs to another page.")
            project = self._owner(session, segment.project_id, expected_version)
            self._select(session, ill)
            self._touch(project, bump=expected_version is not None)
            session.flush()
            return self._illustration_view(ill)

    def delete_illustration(self, illustration_id: int, expected_version: int | None = None) -> None:
        """Delete one picture version; if it was the chosen one, the newest remaining version is chosen."""
        with self._write("the picture was not deleted") as session:
            ill = self._illustration(session, illustration_id)
            segment = ill.segment
            project = self._owner(session, segment.project_id, expected_version)
            sha, was_selected = ill.image_sha256, ill.selected
            segment.illustrations.remove(ill)
            session.flush()
            if was_selected and segment.illustrations:
                newest = max(segment.illustrations, key=lambda i: i.version)
                newest.selected = True
            self._touch(project, bump=expected_version is not None)
        self._collect_garbage({sha})

    def _owner(self, session: Session, project_id: int, expected_version: int | None) -> Project:
        if expected_version is None:
            return self._project(session, project_id)
        return self._project_for_edit(session, project_id, expected_version)

    # ------------------------------------------------------------------ source pictures and characters

    def set_source_images(
        self, project_id: int, expected_version: int, images: Sequence[tuple[bytes, str]]
    ) -> ProjectView:
        """Replace the project's source pictures (images-to-story flow), in order, with their captions."""
        if not isinstance(images, (list, tuple)):
            raise InvalidInput("The pictures must be given as a list.")
        if len(images) > v.MAX_SOURCE_IMAGES:
            raise InvalidInput(
                f"That is {len(images):,} pictures; the most a project keeps is {v.MAX_SOURCE_IMAGES:,}."
            )
        checked: list[tuple[CheckedImage, str]] = []
        for n, item in enumerate(images, start=1):
            if not isinstance(item, (tuple, list)) or len(item) != 2:
                raise InvalidInput(f"Picture {n} must be given as (image bytes, caption).")
            data, caption = item
            checked.append(
                (
                    check_image(data, f"Picture {n}"),
                    v.text(caption if caption is not None else "", f"Picture {n}'s caption", v.MAX_CAPTION),
                )
            )
        self.images.write_all(image for image, _ in checked)
        with self._write("the pictures were not saved") as session:
            project = self._project_for_edit(session, project_id, expected_version)
            old = {src.image_sha256 for src in project.source_images}
            self._ensure_files(image for image, _ in checked)
            project.source_images.clear()
            session.flush()
            for position, (image, caption) in enumerate(checked):
                project.source_images.append(
                    SourceImage(position=position, image_sha256=image.sha256, image_ext=image.ext, caption=caption)
                )
            self._touch(project)
            view = self._project_view(session, project.id)
        self._collect_garbage(old - {image.sha256 for image, _ in checked})
        return view

    def update_source_caption(self, source_image_id: int, caption: str, expected_version: int) -> ProjectView:
        caption = v.text(caption, "The caption", v.MAX_CAPTION)
        if isinstance(source_image_id, bool) or not isinstance(source_image_id, int):
            raise InvalidInput("A source picture is named by its whole-number id.")
        with self._write() as session:
            src = session.get(SourceImage, source_image_id) if source_image_id in _ROW_ID_RANGE else None
            if src is None:
                raise NotFound("That picture no longer exists. It may have been removed in another tab or window.")
            project = self._project_for_edit(session, src.project_id, expected_version)
            src.caption = caption
            self._touch(project)
            return self._project_view(session, project.id)

    def set_characters(
        self, project_id: int, expected_version: int, characters: Sequence[tuple[str, str]]
    ) -> ProjectView:
        """Replace the project's characters with (name, description) pairs, in order."""
        if not isinstance(characters, (list, tuple)):
            raise InvalidInput("The characters must be given as a list.")
        if len(characters) > v.MAX_CHARACTERS:
            raise InvalidInput(
                f"That is {len(characters):,} characters; the most a project keeps is {v.MAX_CHARACTERS:,}."
            )
        rows: list[tuple[str, str]] = []
        for n, item in enumerate(characters, start=1):
            if not isinstance(item, (tuple, list)) or len(item) != 2:
                raise InvalidInput(f"Character {n} must be given as (name, description).")
            name, description = item
            rows.append(
                (
                    v.text(name, f"Character {n}'s name", v.MAX_NAME, required=True).strip(),
                    v.text(
                        description if description is not None else "",
                        f"Character {n}'s description",
                        v.MAX_DESCRIPTION,
                    ),
                )
            )
        with self._write() as session:
            project = self._project_for_edit(session, project_id, expected_version)
            project.characters.clear()
            session.flush()
            for position, (name, description) in enumerate(rows):
                project.characters.append(Character(position=position, name=name, description=description))
            self._touch(project)
            return self._project_view(session, project.id)

    # ------------------------------------------------------------------ bundles and manifests

    def export_bundle(self, project_id: int) -> bytes:
        """The project as a zip: project.json and images/<sha256>.<ext> (each file once)."""
        view = self.get_project(project_id)
        files: dict[str, bytes] = {}

        def member(path: Path) -> str:
            name = f"images/{path.name}"
            if name not in files:
                try:
                    data = path.read_bytes()
                except OSError as exc:
                    raise StorageError(
                        f"The picture file {path.name} is missing from the library ({exc.strerror}), "
                        "so the bundle was not made."
                    ) from None
                if hashlib.sha256(data).hexdigest() != path.name.split(".")[0]:
                    raise StorageError(f"The picture file {path.name} is damaged, so the bundle was not made.")
                files[name] = data
            return name

        doc = {
            "format": BUNDLE_FORMAT,
            "version": BUNDLE_VERSION,
            "project": {
                "title": view.title,
                "author": view.author,
                "style": view.style,
                "profile": view.profile,
                "story_text": view.story_text,
                "created": view.created.isoformat(),
                "updated": view.updated.isoformat(),
                **({"setting": view.setting} if view.setting else {}),
                **({"dedication": view.dedication} if view.dedication else {}),
                **({"story_settings": view.story_settings} if view.story_settings is not None else {}),
            },
            "segments": [
                {
                    "text": seg.text,
                    "start": seg.start,
                    "end": seg.end,
                    "prompt_override": seg.prompt_override,
                    "negative_prompt": seg.negative_prompt,
                    "seed": seg.seed,
                    "locked": seg.locked,
                    "illustrations": [
                        {
                            "version": ill.version,
                            "image": member(ill.image_path),
                            "settings": ill.settings,
                            "origin": ill.origin,
                            "created": ill.created.isoformat(),
                            "selected": ill.selected,
                        }
                        for ill in seg.illustrations
                    ],
                }
                for seg in view.segments
            ],
            "characters": [{"name": c.name, "description": c.description} for c in view.characters],
            "source_images": [{"image": member(s.image_path), "caption": s.caption} for s in view.source_images],
        }
        return write_bundle(doc, files)

    def import_bundle(self, data: bytes) -> ProjectView:
        """A new project from a bundle made by export_bundle (checked as untrusted input first)."""
        return self._insert_imported(read_bundle(data))

    def import_manifest(self, path: Path | str) -> ProjectView:
        """A new project from the engine's DIR/manifest.json: pages with offsets, seeds and prompts
        (the engine's prompt becomes the page's prompt override), and each page's picture as a
        generated version 1 with its settings."""
        return self._insert_imported(read_manifest(Path(path)))

    def _insert_imported(self, imported: ImportedProject) -> ProjectView:
        images = imported.images()
        self.images.write_all(images)
        now = utcnow()
        with self._write("the project was not imported") as session:
            self._ensure_files(images)
            project = Project(
                title=imported.title,
                author=imported.author,
                style=imported.style,
                profile=imported.profile,
                story_text=imported.story_text,
                setting=imported.setting,
                dedication=imported.dedication,
                created=min(imported.created, now),
                updated=now,
                version=1,
                story_settings=imported.story_settings,
            )
            session.add(project)
            for position, item in enumerate(imported.segments):
                seg = Segment(
                    position=position,
                    text=item.text,
                    start=item.start,
                    end=item.end,
                    prompt_override=item.prompt_override,
                    negative_prompt=item.negative_prompt,
                    seed=item.seed,
                    locked=item.locked,
                )
                project.segments.append(seg)
                ills = sorted(item.illustrations, key=lambda ill: ill.version)
                chosen = next((ill for ill in reversed(ills) if ill.selected), ills[-1] if ills else None)
                for ill in ills:
                    seg.illustrations.append(
                        Illustration(
                            version=ill.version,
                            image_sha256=ill.image.sha256,
                            image_ext=ill.image.ext,
                            settings=ill.settings,
                            origin=ill.origin,
                            created=ill.created,
                            selected=ill is chosen,
                        )
                    )
            for position, (name, description) in enumerate(imported.characters):
                project.characters.append(Character(position=position, name=name, description=description))
            for position, (image, caption) in enumerate(imported.source_images):
                project.source_images.append(
                    SourceImage(position=position, image_sha256=image.sha256, image_ext=image.ext, caption=caption)
                )
            session.flush()
            return self._project_view(session, project.id)

    # ------------------------------------------------------------------ maintenance

    def integrity_report(self) -> dict[str, Any]:
        """SQLite's integrity check and the rows whose image file is missing or damaged."""
        with self._read() as session:
            check = [row[0] for row in session.connection().exec_driver_sql("PRAGMA integrity_check").all()]
            refs = list(
                session.execute(select(Illustration.id, Illustration.image_sha256, Illustration.image_ext)).all()
            )
            refs += session.execute(select(SourceImage.id, SourceImage.image_sha256, SourceImage.image_ext)).all()
        bad = []
        for row_id, sha, ext in refs:
            path = self.images.path_for(sha, ext)
            try:
                ok = hashlib.sha256(path.read_bytes()).hexdigest() == sha
            except OSError:
                ok = False
            if not ok:
                bad.append((row_id, path))
        return {"integrity_check": check, "rows_checked": len(refs), "bad_files": bad}


def _normalise(text: str) -> str:
    return " ".join(text.split())
