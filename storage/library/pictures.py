"""The Library's pictures: keep a new version of a page's picture, choose one, delete one; and the
source pictures a story is told from. A picture's file is in place before the row naming it commits."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import func, update
from sqlalchemy.orm import Session

from storage import validate
from storage.errors import InvalidInput, NotFound
from storage.files import CheckedImage, check_image
from storage.library.base import ROW_ID_RANGE, LibraryBase
from storage.models import Picture, SourceImage, utcnow
from storage.views import (
    PictureView,
    ProjectView,
)


class PictureMethods(LibraryBase):
    """Pictures of pages and the source pictures of a story."""

    def add_picture(
        self,
        page_id: int,
        png_bytes: bytes,
        settings: dict[str, Any],
        origin: str = "generated",
        select: bool = True,
        meta: dict[str, Any] | None = None,
    ) -> PictureView:
        """Keep a new picture version for a page (PNG, JPEG or WebP bytes, checked with Pillow).

        Called by background jobs while the user edits, so it takes no expected_version and leaves
        the project's version alone (it bumps ``updated``). The first picture of a page is always
        selected; later ones only when ``select`` is true. ``meta``: what was learnt about the picture after
        drawing (scores, its place among candidates, whether it is a draft; PictureView.meta).
        """
        origin = validate.origin(origin)
        settings = validate.settings(settings)
        meta = validate.meta(meta if meta is not None else {})
        select = validate.flag(select, "Whether to select the picture")
        image = check_image(png_bytes)
        self.images.write(image)
        try:
            with self._write("the picture was not saved") as session:
                page = self._page(session, page_id)
                self._ensure_files([image])
                last_version, selected_count = session.execute(
                    sa.select(
                        func.max(Picture.version),
                        func.count(Picture.id).filter(Picture.selected.is_(True)),
                    ).where(Picture.page_id == page.id)
                ).one()
                if (
                    session.scalar(sa.select(func.count(Picture.id)).where(Picture.page_id == page.id)) or 0
                ) >= validate.MAX_PICTURES_PER_PAGE:
                    raise InvalidInput(
                        f"This page already keeps {validate.MAX_PICTURES_PER_PAGE:,} pictures; delete some first."
                    )
                make_selected = select or not selected_count
                if make_selected and selected_count:
                    session.execute(
                        update(Picture)
                        .where(Picture.page_id == page.id, Picture.selected.is_(True))
                        .values(selected=False)
                        .execution_options(synchronize_session=False)
                    )
                picture = Picture(
                    page_id=page.id,
                    version=(last_version or 0) + 1,
                    image_sha256=image.sha256,
                    image_ext=image.ext,
                    settings=settings,
                    origin=origin,
                    created=utcnow(),
                    selected=make_selected,
                    meta=meta,
                )
                session.add(picture)
                self._touch(page.project, bump=False)
                session.flush()
                return self._picture_view(picture)
        except NotFound:
            self._collect_garbage({image.sha256})
            raise NotFound(
                "The page this picture was made for no longer exists, so the picture was not kept."
            ) from None

    def add_picture_scores(self, picture_id: int, scores: dict[str, Any], **meta: Any) -> PictureView:
        """Add what a later job learnt about a picture (a judge's score: ``scores`` joins ``meta["scores"]``,
        other keywords join ``meta``). A job's write: no expected version, the project's version and undo
        history left alone."""
        scores = validate.meta(scores, "The picture's scores")
        extra = validate.meta(meta)
        with self._write("the picture's score was not saved") as session:
            picture = self._picture(session, picture_id)
            merged = copy.deepcopy(picture.meta or {})
            merged["scores"] = {**(merged.get("scores") or {}), **scores}
            merged.update(extra)
            picture.meta = validate.meta(merged)
            self._touch(picture.page.project, bump=False)
            session.flush()
            return self._picture_view(picture)

    def _select(self, session: Session, picture: Picture) -> None:
        session.execute(
            update(Picture)
            .where(Picture.page_id == picture.page_id, Picture.selected.is_(True), Picture.id != picture.id)
            .values(selected=False)
            .execution_options(synchronize_session=False)
        )
        session.flush()
        picture.selected = True

    def _story_picture(self, session: Session, picture_id: Any, project_id: int) -> Picture:
        picture = self._picture(session, picture_id)
        if picture.page.project_id != project_id:
            raise NotFound("That picture no longer exists. It may have been deleted in another tab or window.")
        return picture

    def _project_of_picture(self, picture_id: Any) -> int:
        with self._read() as session:
            return self._picture(session, picture_id).page.project_id

    def select_picture(self, picture_id: int, expected_version: int | None = None) -> ProjectView:
        """Make this version the page's picture (the others are kept), as one undoable step."""
        project_id = self._project_of_picture(picture_id)
        with self._edit(project_id, expected_version, "Choose a picture") as (session, _project):
            picture = self._story_picture(session, picture_id, project_id)
            if picture.state != "kept":
                raise InvalidInput("That picture is in the bin: bring it back first.")
            self._select(session, picture)
        return self.get_project(project_id)

    def keep_picture_for_words(self, picture_id: int, expected_version: int) -> ProjectView:
        """Keep a picture for its page's words as they are now, although they changed since it was drawn, as one
        undoable step: ``meta["kept_for_words"]`` records those words (``settings`` stay the recipe that draws it
        again), and "words changed since this picture" compares with them, so it comes back when they change
        again. InvalidInput when the page's words are what the picture is for already."""
        project_id = self._project_of_picture(picture_id)
        with self._edit(project_id, expected_version, "Keep a picture for new words") as (session, _project):
            picture = self._story_picture(session, picture_id, project_id)
            if picture.state != "kept":
                raise InvalidInput("That picture is in the bin: bring it back first.")
            if picture.page.state != "live":
                raise InvalidInput("That page is no longer in the story. It may have been changed in another tab.")
            if not self._picture_view(picture, picture.page.text).words_changed:
                raise InvalidInput("This page's words have not changed since that picture; there is nothing to keep.")
            meta = copy.deepcopy(picture.meta or {})
            meta["kept_for_words"] = picture.page.text
            picture.meta = validate.meta(meta)
        return self.get_project(project_id)

    def discard_picture(self, picture_id: int, expected_version: int | None = None) -> ProjectView:
        """Put one picture version in the story's bin, as one undoable step (it stays there, with its file,
        until the bin is emptied). If it was the page's picture, the newest other version becomes it.
        Works on a full disk (the first step to freeing space)."""
        return self._on_full_disk_use_reserve(
            "the picture was not put in the bin", lambda: self._discard(picture_id, expected_version)
        )

    def _discard(self, picture_id: int, expected_version: int | None) -> ProjectView:
        project_id = self._project_of_picture(picture_id)
        with self._edit(project_id, expected_version, "Discard a picture") as (session, _project):
            picture = self._story_picture(session, picture_id, project_id)
            if picture.state == "binned":
                raise InvalidInput("That picture is already in the bin.")
            picture.state, was_selected, picture.selected = "binned", picture.selected, False
            session.flush()
            if was_selected:
                kept = [p for p in picture.page.pictures if p.state == "kept" and p.id != picture.id]
                if kept:
                    self._select(session, max(kept, key=lambda p: p.version))
        return self.get_project(project_id)

    def restore_picture(self, picture_id: int, expected_version: int) -> ProjectView:
        """Bring a discarded picture back from the bin to its page (or to the loose-pictures tray, when its
        page has left the story), as one undoable step. A page with no picture makes it its picture."""
        project_id = self._project_of_picture(picture_id)
        with self._edit(project_id, expected_version, "Bring back a picture") as (session, _project):
            picture = self._story_picture(session, picture_id, project_id)
            if picture.state != "binned":
                raise InvalidInput("That picture is not in the bin.")
            if picture.page.state == "deleted":
                raise InvalidInput("Its page is in the bin: bring the page back, and its pictures come with it.")
            picture.state = "kept"
            if not any(p.selected and p.state == "kept" for p in picture.page.pictures if p.id != picture.id):
                self._select(session, picture)
        return self.get_project(project_id)

    def place_picture(self, picture_id: int, page_id: int, expected_version: int) -> ProjectView:
        """Put a picture (from the loose-pictures tray, or another page) on a page of the story as its newest
        version, as one undoable step; it becomes the page's picture when the page has none."""
        project_id = self._project_of_picture(picture_id)
        with self._edit(project_id, expected_version, "Put a picture on a page") as (session, _project):
            picture = self._story_picture(session, picture_id, project_id)
            target = self._page(session, page_id)
            if target.project_id != project_id or target.state != "live":
                raise InvalidInput("That page is no longer in the story. It may have been changed in another tab.")
            if picture.state != "kept":
                raise InvalidInput("That picture is in the bin: bring it back first.")
            if picture.page_id == target.id:
                raise InvalidInput("That picture is already on that page.")
            source = picture.page
            settings = dict(picture.settings or {})
            settings.setdefault("page_text", source.text)
            picture.settings = settings
            was_selected = bool(picture.selected)
            next_version = max((p.version for p in target.pictures), default=0) + 1
            picture.version, picture.selected = -picture.id, False
            session.flush()
            picture.page_id, picture.version = target.id, next_version
            session.flush()
            session.expire(source, ["pictures"])
            session.expire(target, ["pictures"])
            if not any(p.selected and p.state == "kept" for p in target.pictures):
                self._select(session, picture)
            if was_selected:
                kept = [p for p in source.pictures if p.state == "kept"]
                if kept:
                    self._select(session, max(kept, key=lambda p: p.version))
        return self.get_project(project_id)

    def empty_bin(self, project_id: int, expected_version: int | None = None) -> tuple[ProjectView, int]:
        """Remove for good what is in the story's bin: its deleted pages with their pictures, its discarded
        pictures, and pages that left the story holding no picture any more. Frees their files' disk space
        (files another story shares stay). Works on a full disk. Returns the project and the files removed.

        This is the one removal that cannot be undone: undo steps from before it bring back the pages' words
        and places, never the removed pictures.
        """

        def remove(session: Session) -> set[str]:
            project = self._owner(session, project_id, expected_version)
            shas: set[str] = set()
            for page in list(project.pages):
                if page.state == "deleted":
                    shas.update(p.image_sha256 for p in page.pictures)
                    session.delete(page)
                    continue
                for picture in list(page.pictures):
                    if picture.state == "binned":
                        shas.add(picture.image_sha256)
                        session.delete(picture)
                if page.state == "gone" and all(p.state == "binned" for p in page.pictures):
                    session.delete(page)
            self._touch(project)
            return shas

        shas = self._write_freeing("the bin was not emptied", remove)
        removed = self._collect_garbage(shas)
        return self.get_project(project_id), removed

    def set_source_images(
        self, project_id: int, expected_version: int, images: Sequence[tuple[bytes, str]]
    ) -> ProjectView:
        """Replace the project's source pictures (images-to-story flow), in order, with their captions."""
        if not isinstance(images, (list, tuple)):
            raise InvalidInput("The pictures must be given as a list.")
        if len(images) > validate.MAX_SOURCE_IMAGES:
            raise InvalidInput(
                f"That is {len(images):,} pictures; the most a project keeps is {validate.MAX_SOURCE_IMAGES:,}."
            )
        checked: list[tuple[CheckedImage, str]] = []
        for n, item in enumerate(images, start=1):
            if not isinstance(item, (tuple, list)) or len(item) != 2:
                raise InvalidInput(f"Picture {n} must be given as (image bytes, caption).")
            data, caption = item
            checked.append(
                (
                    check_image(data, f"Picture {n}"),
                    validate.text(
                        caption if caption is not None else "", f"Picture {n}'s caption", validate.MAX_CAPTION
                    ),
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
        caption = validate.text(caption, "The caption", validate.MAX_CAPTION)
        if isinstance(source_image_id, bool) or not isinstance(source_image_id, int):
            raise InvalidInput("A source picture is named by its whole-number id.")
        with self._write() as session:
            src = session.get(SourceImage, source_image_id) if source_image_id in ROW_ID_RANGE else None
            if src is None:
                raise NotFound("That picture no longer exists. It may have been removed in another tab or window.")
            project = self._project_for_edit(session, src.project_id, expected_version)
            src.caption = caption
            self._touch(project)
            return self._project_view(session, project.id)
