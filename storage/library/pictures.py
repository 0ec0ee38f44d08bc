"""The Library's pictures: keep a new version of a page's picture, choose one, delete one; and the
source pictures a story is told from. A picture's file is in place before the row naming it commits."""

from __future__ import annotations

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
    ) -> PictureView:
        """Keep a new picture version for a page (PNG, JPEG or WebP bytes, checked with Pillow).

        Called by background jobs while the user edits, so it takes no expected_version and leaves
        the project's version alone (it bumps ``updated``). The first picture of a page is always
        selected; later ones only when ``select`` is true.
        """
        origin = validate.origin(origin)
        settings = validate.settings(settings)
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

    def _select(self, session: Session, picture: Picture) -> None:
        session.execute(
            update(Picture)
            .where(Picture.page_id == picture.page_id, Picture.selected.is_(True), Picture.id != picture.id)
            .values(selected=False)
            .execution_options(synchronize_session=False)
        )
        session.flush()
        picture.selected = True

    def select_picture(self, picture_id: int, expected_version: int | None = None) -> PictureView:
        """Make this version the page's picture (the others are kept)."""
        with self._write() as session:
            picture = self._picture(session, picture_id)
            project = self._owner(session, picture.page.project_id, expected_version)
            self._select(session, picture)
            self._touch(project, bump=expected_version is not None)
            session.flush()
            return self._picture_view(picture)

    def delete_picture(self, picture_id: int, expected_version: int | None = None) -> None:
        """Delete one picture version; if it was the chosen one, the newest remaining version is chosen."""
        with self._write("the picture was not deleted") as session:
            picture = self._picture(session, picture_id)
            page = picture.page
            project = self._owner(session, page.project_id, expected_version)
            sha, was_selected = picture.image_sha256, picture.selected
            page.pictures.remove(picture)
            session.flush()
            if was_selected and page.pictures:
                newest = max(page.pictures, key=lambda i: i.version)
                newest.selected = True
            self._touch(project, bump=expected_version is not None)
        self._collect_garbage({sha})

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
