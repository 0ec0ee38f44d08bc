"""The Library's bundles and manifests: a project out as a bundle (storage.bundle writes the zip), and a
new project in from a bundle or from the engine's manifest.json (read as untrusted input first)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from storage.agree import agree
from storage.bundle import (
    BUNDLE_FORMAT,
    BUNDLE_VERSION,
    ImportedPage,
    ImportedProject,
    read_bundle,
    read_manifest,
    write_bundle,
)
from storage.errors import StorageError
from storage.library.base import LibraryBase
from storage.models import Character, Page, Picture, Project, SourceImage, utcnow
from storage.views import PageView, ProjectView


class BundleMethods(LibraryBase):
    """Projects in and out as bundles, and in from engine manifests."""

    def export_bundle(self, project_id: int) -> bytes:
        """The project as a zip: project.json and images/<sha256>.<ext> (each file once)."""
        view = self.get_project(project_id)
        every_page = self._every_page(project_id)
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
                "title_from_text": view.title_from_text,
                "created": view.created.isoformat(),
                "updated": view.updated.isoformat(),
                **({"setting": view.setting} if view.setting else {}),
                **({"dedication": view.dedication} if view.dedication else {}),
                **({"closing": view.closing} if view.closing else {}),
                **({"drafts": True} if view.drafts else {}),
                **({"candidates": view.candidates} if view.candidates != 1 else {}),
                **({"story_settings": view.story_settings} if view.story_settings is not None else {}),
            },
            "segments": [  # bundle keys keep their first names (docs/formats.md)
                {
                    "text": page.text,
                    "start": page.start,
                    "end": page.end,
                    "prompt_override": page.prompt_override,
                    "negative_prompt": page.negative_prompt,
                    "seed": page.seed,
                    "locked": page.locked,
                    "state": page.state,
                    "illustrations": [
                        {
                            "version": picture.version,
                            "image": member(picture.image_path),
                            "settings": picture.settings,
                            "origin": picture.origin,
                            "created": picture.created.isoformat(),
                            "selected": picture.selected,
                            "state": picture.state,
                            **({"meta": picture.meta} if picture.meta else {}),
                        }
                        for picture in page.pictures
                    ],
                }
                for page in every_page  # the story's pages, then those in the tray and the bin
            ],
            "characters": [
                {
                    "name": c.name,
                    "description": c.description,
                    **({"reference": member(c.reference_path)} if c.reference_path is not None else {}),
                    **({"reference_settings": c.reference_settings} if c.reference_settings else {}),
                    **(
                        {
                            "proposals": [
                                {"image": member(offer.image_path), "settings": offer.settings, "score": offer.score}
                                for offer in c.proposals
                            ]
                        }
                        if c.proposals
                        else {}
                    ),
                    **({"likeness": c.likeness} if c.likeness else {}),
                }
                for c in view.characters
            ],
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

    def _every_page(self, project_id: int) -> list[PageView]:
        """Every page of the story with every picture: live pages in order, then the others (tray, bin)."""
        with self._read() as session:
            project = self._project(session, project_id)
            ordered = sorted(project.pages, key=lambda p: (p.state != "live", p.position, p.id))
            return [self._page_view(page, binned_too=True) for page in ordered]

    def _insert_imported(self, imported: ImportedProject) -> ProjectView:
        images = imported.images()
        live = [page for page in imported.pages if page.state == "live"]
        story_text, title_from_text = imported.story_text, imported.title_from_text
        placed: list[tuple[ImportedPage | None, str, int, int, ImportedPage | None]] = []
        if live:  # the story text is the live pages' words with separators; older bundles may disagree
            story_text, title_from_text, agreed = agree(
                imported.story_text,
                imported.title,
                [(n, page.text, page.start, page.end) for n, page in enumerate(live)],
            )
            placed = [
                (None if n is None else live[n], words, start, end, None if beside is None else live[beside])
                for n, words, start, end, beside in agreed
            ]
        others = [page for page in imported.pages if page.state != "live"]
        self.images.write_all(images)
        now = utcnow()
        with self._write("the project was not imported") as session:
            self._ensure_files(images)
            project = Project(
                title=imported.title,
                author=imported.author,
                style=imported.style,
                profile=imported.profile,
                story_text=story_text,
                title_from_text=title_from_text,
                setting=imported.setting,
                dedication=imported.dedication,
                closing=imported.closing,
                drafts=imported.drafts,
                candidates=imported.candidates,
                created=min(imported.created, now),
                updated=now,
                version=1,
                story_settings=imported.story_settings,
            )
            session.add(project)
            rows = placed + [(page, page.text, page.start, page.end, None) for page in others]
            for position, (item, words, start, end, beside) in enumerate(rows):
                like = item or beside
                page = Page(
                    position=position,
                    text=words,
                    start=start,
                    end=end,
                    prompt_override=item.prompt_override if item else None,
                    negative_prompt=like.negative_prompt if like else None,
                    seed=item.seed if item else None,
                    locked=item.locked if item else False,
                    state=item.state if item else "live",
                )
                project.pages.append(page)
                if item is None:
                    continue
                pictures = sorted(item.pictures, key=lambda picture: picture.version)
                kept = [picture for picture in pictures if picture.state == "kept"]
                chosen = next((picture for picture in reversed(kept) if picture.selected), kept[-1] if kept else None)
                for picture in pictures:
                    page.pictures.append(
                        Picture(
                            version=picture.version,
                            image_sha256=picture.image.sha256,
                            image_ext=picture.image.ext,
                            settings=picture.settings,
                            origin=picture.origin,
                            created=picture.created,
                            selected=picture is chosen,
                            state=picture.state,
                            meta=picture.meta,
                        )
                    )
            for position, (name, description) in enumerate(imported.characters):
                reference = imported.references.get(position)
                offered = imported.proposals.get(position)
                project.characters.append(
                    Character(
                        position=position,
                        name=name,
                        description=description,
                        reference_sha256=reference.sha256 if reference else None,
                        reference_ext=reference.ext if reference else None,
                        reference_settings=imported.reference_settings.get(position) if reference else None,
                        reference_proposals=[
                            {"sha256": image.sha256, "ext": image.ext, "settings": drawn, "score": score}
                            for image, drawn, score in offered
                        ]
                        if offered
                        else None,
                        likeness=imported.likeness.get(position),
                    )
                )
            for position, (image, caption) in enumerate(imported.source_images):
                project.source_images.append(
                    SourceImage(position=position, image_sha256=image.sha256, image_ext=image.ext, caption=caption)
                )
            session.flush()
            return self._project_view(session, project.id)
