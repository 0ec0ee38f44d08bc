"""The Library's foundation: the database and image folder it opens, one transaction per call, errors a
person can read, the frozen views it hands out, and removing picture files that no row names any more.

The rules every write keeps are in storage/library/__init__.py.
"""

from __future__ import annotations

import copy
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TypeVar

from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from core.paths import data_home
from storage import history, validate
from storage.db import BACKUP_DIRNAME, DB_FILENAME, make_engine, migrate, write_engine
from storage.errors import ConflictError, DiskFullError, InvalidInput, NotFound, StorageError
from storage.files import SWEEP_MIN_AGE_S, CheckedImage, ImageStore, disk_full
from storage.models import Character, Page, Picture, Project, SourceImage, utcnow
from storage.views import (
    BinView,
    CharacterView,
    PageView,
    PictureView,
    ProjectView,
    ProposalView,
    SourceImageView,
)

# SQLite result codes (primary, low byte of the extended code).
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY, _SQLITE_IOERR = 5, 6, 8, 10
_SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 11, 13, 14, 26
_IN_CHUNK = 500
_T = TypeVar("_T")
# A file of this size kept in the library folder and given up when the disk is full, so that freeing space
# (emptying a story's bin, deleting a story) can still write its few database pages.
RESERVE_NAME = ".space-reserve"
RESERVE_BYTES = 2 * 1024 * 1024
# SQLite row ids are signed 64-bit; a larger Python int makes sqlite3 raise OverflowError, not "no row".
ROW_ID_RANGE = range(-(2**63), 2**63)
MAX_ROW_ID = ROW_ID_RANGE[-1]  # the largest row id a caller may name

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


def words_for(picture: Picture) -> str | None:
    """The words a picture is for: those the person kept it for (meta["kept_for_words"]), else those it was
    drawn for (settings["page_text"]); None when it does not say."""
    kept_for = (picture.meta or {}).get("kept_for_words")
    if isinstance(kept_for, str):
        return kept_for
    drawn_for = (picture.settings or {}).get("page_text")
    return drawn_for if isinstance(drawn_for, str) else None


class LibraryBase:
    """What every part of the Library stands on: ``home`` with its SQLite file and content-addressed images."""

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
        self._keep_reserve()

    def _keep_reserve(self) -> None:
        """Make sure the space reserve is in place, when the disk has room for it (best effort)."""
        path = self.home / RESERVE_NAME
        try:
            if path.exists() and path.stat().st_size >= RESERVE_BYTES:
                return
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                if hasattr(os, "posix_fallocate"):
                    os.posix_fallocate(fd, 0, RESERVE_BYTES)  # real blocks, not a sparse file
                else:  # pragma: no cover - macOS, Windows
                    os.pwrite(fd, b"\0" * RESERVE_BYTES, 0)
            finally:
                os.close(fd)
        except OSError:
            try:
                path.unlink(missing_ok=True)  # a part-written reserve is worth nothing; try again later
            except OSError:
                pass

    def _write_freeing(self, action: str, work: Callable[[Session], _T]) -> _T:
        """A write that frees space: on a full disk, give up the space reserve and try once more."""
        return self._on_full_disk_use_reserve(action, lambda: self._in_write(action, work))

    def _in_write(self, action: str, work: Callable[[Session], _T]) -> _T:
        with self._write(action) as session:
            return work(session)

    def _on_full_disk_use_reserve(self, action: str, attempt: Callable[[], _T]) -> _T:
        """Run ``attempt``; on a full disk give up the space reserve and run it once more. For the writes that
        lead to freeing space (putting things in the bin, emptying it, deleting a story), so they work even then."""
        try:
            return attempt()
        except DiskFullError:
            try:
                (self.home / RESERVE_NAME).unlink()
            except OSError:
                raise DiskFullError(
                    f"The disk is full, so {action}: free some space on it (outside the library) and try again."
                ) from None
        return attempt()

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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

    def _project(self, session: Session, project_id: Any) -> Project:
        if isinstance(project_id, bool) or not isinstance(project_id, int):
            raise InvalidInput("A project is named by its whole-number id.")
        project = session.get(Project, project_id) if project_id in ROW_ID_RANGE else None
        if project is None:
            raise NotFound("That project no longer exists. It may have been deleted in another tab or window.")
        return project

    def _project_for_edit(self, session: Session, project_id: Any, expected_version: Any) -> Project:
        expected = validate.expected_version(expected_version)
        try:
            project = self._project(session, project_id)
        except NotFound:
            # A stale tab writing to a story deleted elsewhere: the same refusal as any other stale write.
            raise ConflictError() from None
        if project.version != expected:
            raise ConflictError()
        return project

    @contextmanager
    def _edit(self, project_id: Any, expected_version: Any | None, label: str) -> Iterator[tuple[Session, Project]]:
        """One person's edit of a story, as one undoable step: checked against the version it was based on,
        recorded in the story's history, and the version bumped. ``expected_version`` None: no check (scripts)."""
        with self._write() as session:
            project = self._owner(session, project_id, expected_version)
            history.ensure_baseline(session, project)
            yield session, project
            history.record(session, project, label)
            self._touch(project)

    @staticmethod
    def _touch(project: Project, *, bump: bool = True) -> None:
        project.updated = utcnow()
        if bump:
            project.version += 1

    def _owner(self, session: Session, project_id: int, expected_version: int | None) -> Project:
        if expected_version is None:
            return self._project(session, project_id)
        return self._project_for_edit(session, project_id, expected_version)

    def _page(self, session: Session, page_id: Any) -> Page:
        if isinstance(page_id, bool) or not isinstance(page_id, int):
            raise InvalidInput("A page is named by its whole-number id.")
        page = session.get(Page, page_id) if page_id in ROW_ID_RANGE else None
        if page is None:
            raise NotFound("That page no longer exists. It may have been removed in another tab or window.")
        return page

    def _picture(self, session: Session, picture_id: Any) -> Picture:
        if isinstance(picture_id, bool) or not isinstance(picture_id, int):
            raise InvalidInput("A picture is named by its whole-number id.")
        picture = session.get(Picture, picture_id) if picture_id in ROW_ID_RANGE else None
        if picture is None:
            raise NotFound("That picture no longer exists. It may have been deleted in another tab or window.")
        return picture

    def _picture_view(self, picture: Picture, words: str | None = None) -> PictureView:
        drawn_for = words_for(picture)
        return PictureView(
            id=picture.id,
            page_id=picture.page_id,
            version=picture.version,
            image_path=self.images.path_for(picture.image_sha256, picture.image_ext),
            settings=copy.deepcopy(picture.settings or {}),
            origin=picture.origin,
            created=picture.created,
            selected=bool(picture.selected),
            state=picture.state,
            meta=copy.deepcopy(picture.meta or {}),
            words_changed=isinstance(drawn_for, str)
            and words is not None
            and " ".join(drawn_for.split()) != " ".join(words.split()),
        )

    def _page_view(self, page: Page, *, binned_too: bool = False) -> PageView:
        pictures = [
            self._picture_view(picture, page.text)
            for picture in sorted(page.pictures, key=lambda i: i.version)
            if binned_too or picture.state == "kept"
        ]
        return PageView(
            id=page.id,
            position=page.position,
            text=page.text,
            start=page.start,
            end=page.end,
            prompt_override=page.prompt_override,
            negative_prompt=page.negative_prompt,
            seed=page.seed,
            locked=bool(page.locked),
            pictures=pictures,
            selected=next((picture for picture in pictures if picture.selected), None),
            state=page.state,
        )

    def _bin_view(self, pages: Sequence[Page]) -> BinView:
        deleted = [self._page_view(page, binned_too=True) for page in pages if page.state == "deleted"]
        binned = [
            self._picture_view(picture, page.text)
            for page in pages
            if page.state != "deleted"
            for picture in page.pictures
            if picture.state == "binned"
        ]
        size = 0
        for picture in [p for page in deleted for p in page.pictures] + binned:
            try:
                size += picture.image_path.stat().st_size
            except OSError:
                pass
        return BinView(pages=deleted, pictures=binned, files_bytes=size)

    def _character_view(self, c: Character) -> CharacterView:
        """A character with its reference picture; none when its file is gone (a reference taken away with its
        character and swept before an undo brought the character back)."""
        path = None
        if c.reference_sha256 and c.reference_ext:
            path = self.images.path_for(c.reference_sha256, c.reference_ext)
            path = path if path.exists() else None
        proposals = []
        for index, item in enumerate(c.reference_proposals or ()):
            proposal = self.images.path_for(item["sha256"], item["ext"])
            if proposal.exists():  # a proposal removed, swept, then brought back by an undo is gone for good
                proposals.append(
                    ProposalView(
                        index=index,
                        image_path=proposal,
                        settings=copy.deepcopy(item.get("settings")),
                        score=item.get("score"),
                        in_use=path is not None and item["sha256"] == c.reference_sha256,
                    )
                )
        return CharacterView(
            id=c.id,
            position=c.position,
            name=c.name,
            description=c.description,
            reference_path=path,
            reference_settings=copy.deepcopy(c.reference_settings) if path is not None else None,
            proposals=tuple(proposals),
            likeness=copy.deepcopy(c.likeness) if c.likeness else None,
        )

    def _project_view(self, session: Session, project_id: int) -> ProjectView:
        session.flush()
        project = session.execute(
            select(Project)
            .where(Project.id == project_id)
            .options(
                selectinload(Project.pages).selectinload(Page.pictures),
                selectinload(Project.characters),
                selectinload(Project.source_images),
            )
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()
        if project is None:
            raise NotFound("That project no longer exists. It may have been deleted in another tab or window.")
        ordered = sorted(project.pages, key=lambda s: (s.position, s.id))
        undo, redo = history.steps(session, project)
        return ProjectView(
            id=project.id,
            title=project.title,
            author=project.author,
            style=project.style,
            profile=project.profile,
            story_text=project.story_text,
            setting=project.setting,
            dedication=project.dedication,
            closing=project.closing,
            drafts=bool(project.drafts),
            candidates=project.candidates,
            version=project.version,
            created=project.created,
            updated=project.updated,
            pages=[self._page_view(page) for page in ordered if page.state == "live"],
            loose=[
                self._page_view(page)
                for page in ordered
                if page.state == "gone" and any(p.state == "kept" for p in page.pictures)
            ],
            bin=self._bin_view(ordered),
            undo=undo,
            redo=redo,
            title_from_text=bool(project.title_from_text),
            characters=[self._character_view(c) for c in sorted(project.characters, key=lambda c: (c.position, c.id))],
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

    def get_project(self, project_id: int) -> ProjectView:
        with self._read() as session:
            self._project(session, project_id)
            return self._project_view(session, project_id)

    @staticmethod
    def _renumber(pages: Sequence[Page]) -> None:
        for position, page in enumerate(pages):
            if page.position != position:
                page.position = position

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
            used.update(session.scalars(select(Picture.image_sha256).where(Picture.image_sha256.in_(chunk))))
            used.update(session.scalars(select(SourceImage.image_sha256).where(SourceImage.image_sha256.in_(chunk))))
            used.update(
                session.scalars(select(Character.reference_sha256).where(Character.reference_sha256.in_(chunk)))
            )
        # A character's proposals live in a JSON list; characters are few, so they are read whole, once.
        used.update(self._proposal_shas(session) & shas)
        return used

    @staticmethod
    def _proposal_shas(session: Session, project_id: int | None = None) -> set[str]:
        """The files named by the characters' reference proposals (of one project, or of every project)."""
        query = select(Character.reference_proposals).where(Character.reference_proposals.is_not(None))
        if project_id is not None:
            query = query.where(Character.project_id == project_id)
        return {item["sha256"] for proposals in session.scalars(query) for item in proposals or ()}

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
        if removed:
            self._keep_reserve()
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
