"""The Library's projects: create, list, read, change, copy and delete whole stories; their characters;
the stamps an open tab compares to notice a change; the integrity report."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import and_, delete, exists, func, or_, select
from sqlalchemy.orm import Session

from storage import validate
from storage.errors import InvalidInput, NotFound
from storage.files import check_image
from storage.library.base import ROW_ID_RANGE, UNSET, LibraryBase
from storage.models import Character, Page, Picture, Project, SourceImage, utcnow
from storage.views import (
    ProjectSummary,
    ProjectView,
)


class ProjectMethods(LibraryBase):
    """A project as a whole, and its characters."""

    def create_project(
        self,
        title: str,
        author: str = "",
        style: str = "watercolor",
        profile: str = "fast",
        story_text: str = "",
        drafts: bool = False,
    ) -> ProjectView:
        """A new story; ``drafts``: its new pictures start as quick drafts (the studio's default on a CPU)."""
        fields = dict(
            title=validate.title(title),
            author=validate.text(author, "The author", validate.MAX_AUTHOR),
            style=validate.text(style, "The style", validate.MAX_STYLE),
            profile=validate.text(profile, "The model profile", validate.MAX_STYLE),
            story_text=validate.text(story_text, "The story", validate.MAX_STORY),
            drafts=validate.flag(drafts, "Whether pages are drawn as drafts first"),
        )
        now = utcnow()
        with self._write("the project was not created") as session:
            project = Project(**fields, created=now, updated=now, version=1)
            session.add(project)
            session.flush()
            return self._project_view(session, project.id)

    def list_projects(self, search: str = "") -> list[ProjectSummary]:
        """Newest (last updated) first; ``search`` matches title, story and page text, ignoring case."""
        query = validate.text(search or "", "The search", validate.MAX_SEARCH).strip()
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
                        exists().where(Page.project_id == Project.id, func.sb_icontains(Page.text, query) == 1),
                    )
                )
            rows = session.execute(stmt).all()
            counts = dict(
                session.execute(
                    select(Page.project_id, func.count()).where(Page.state == "live").group_by(Page.project_id)
                ).all()
            )
            first = (
                select(Page.project_id.label("project_id"), func.min(Page.position).label("position"))
                .where(Page.state == "live")
                .group_by(Page.project_id)
                .subquery()
            )
            covers: dict[int, Path] = {}
            cover_rows = session.execute(
                select(Page.project_id, Picture.image_sha256, Picture.image_ext)
                .join(first, and_(first.c.project_id == Page.project_id, first.c.position == Page.position))
                .join(Picture, and_(Picture.page_id == Page.id, Picture.selected.is_(True), Picture.state == "kept"))
                .where(Page.state == "live")
                .order_by(Page.id)
            ).all()
            for project_id, sha, ext in cover_rows:
                covers.setdefault(project_id, self.images.path_for(sha, ext))
        return [
            ProjectSummary(
                id=pid,
                title=title,
                author=author,
                updated=updated,
                page_count=counts.get(pid, 0),
                cover_image=covers.get(pid),
            )
            for pid, title, author, updated in rows
        ]

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
                if project_id in ROW_ID_RANGE
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
        closing: str | None = None,
        drafts: bool | None = None,
        candidates: int | None = None,
    ) -> ProjectView:
        """Change the given fields (None leaves a field as it is).

        ``setting`` says where and when the story happens (at most MAX_SETTING characters, "" for none);
        ``dedication`` is printed after the cover (its line breaks kept, at most MAX_DEDICATION characters);
        ``closing``: the closing page's words ("" for the default); ``drafts``: draw pages as drafts first;
        ``candidates``: pictures drawn per page, the best scored one chosen (1..MAX_CANDIDATES).

        ``story_text`` keeps a draft of a story that has no pages yet; once it has pages, its words change
        with them (``apply_pages``, ``update_page``), so the story and its pages never disagree.
        ``story_settings`` (plain JSON, at most 64 KB) records how a generated story was written;
        here None clears it and leaving it out leaves it as it is.
        """
        changes: dict[str, Any] = {}
        if title is not None:
            changes["title"] = validate.title(title)
        if author is not None:
            changes["author"] = validate.text(author, "The author", validate.MAX_AUTHOR)
        if style is not None:
            changes["style"] = validate.text(style, "The style", validate.MAX_STYLE)
        if profile is not None:
            changes["profile"] = validate.text(profile, "The model profile", validate.MAX_STYLE)
        if story_text is not None:
            changes["story_text"] = validate.text(story_text, "The story", validate.MAX_STORY)
        if setting is not None:
            changes["setting"] = validate.setting(setting)
        if dedication is not None:
            changes["dedication"] = validate.dedication(dedication)
        if closing is not None:
            changes["closing"] = validate.closing(closing)
        if drafts is not None:
            changes["drafts"] = validate.flag(drafts, "Whether pages are drawn as drafts first")
        if candidates is not None:
            changes["candidates"] = validate.integer(
                candidates, "The number of pictures drawn per page", 1, validate.MAX_CANDIDATES
            )
        if story_settings is not UNSET:
            changes["story_settings"] = (
                None if story_settings is None else validate.settings(story_settings, "The story's settings")
            )
        label = "Change the book's details" if set(changes) - {"story_text"} else "Change the story"
        if set(changes) == {"style"}:
            label = "Change the picture style"
        elif set(changes) == {"profile"}:
            label = "Change the models"
        elif set(changes) == {"drafts"}:
            label = "Draw drafts first" if changes["drafts"] else "Draw final pictures"
        elif set(changes) == {"candidates"}:
            label = "Change the pictures drawn per page"
        with self._edit(project_id, expected_version, label) as (_session, project):
            if "story_text" in changes and any(page.state == "live" for page in project.pages):
                if changes["story_text"] != project.story_text:
                    raise InvalidInput(
                        "The story has pages: save its words with them (Save story), so the pages follow the text."
                    )
            for name, value in changes.items():
                setattr(project, name, value)
        return self.get_project(project_id)

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
            if len(title) + len(suffix) > validate.MAX_TITLE:
                title = title[: validate.MAX_TITLE - len(suffix) - 1].rstrip() + "…"
            clone = Project(
                title=title + suffix,
                author=source.author,
                style=source.style,
                profile=source.profile,
                story_text=source.story_text,
                setting=source.setting,
                dedication=source.dedication,
                closing=source.closing,
                drafts=source.drafts,
                candidates=source.candidates,
                title_from_text=source.title_from_text,
                created=now,
                updated=now,
                version=1,
                story_settings=copy.deepcopy(source.story_settings),
            )
            session.add(clone)
            for page in source.pages:
                new_page = Page(
                    position=page.position,
                    text=page.text,
                    start=page.start,
                    end=page.end,
                    prompt_override=page.prompt_override,
                    negative_prompt=page.negative_prompt,
                    seed=page.seed,
                    locked=page.locked,
                    state=page.state,
                )
                clone.pages.append(new_page)
                for picture in page.pictures:
                    new_page.pictures.append(
                        Picture(
                            version=picture.version,
                            image_sha256=picture.image_sha256,
                            image_ext=picture.image_ext,
                            settings=copy.deepcopy(picture.settings),
                            origin=picture.origin,
                            created=picture.created,
                            selected=picture.selected,
                            state=picture.state,
                            meta=copy.deepcopy(picture.meta or {}),
                        )
                    )
            for char in source.characters:
                clone.characters.append(
                    Character(
                        position=char.position,
                        name=char.name,
                        description=char.description,
                        reference_sha256=char.reference_sha256,
                        reference_ext=char.reference_ext,
                        reference_settings=copy.deepcopy(char.reference_settings),
                        reference_proposals=copy.deepcopy(char.reference_proposals),
                        likeness=copy.deepcopy(char.likeness),
                    )
                )
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

        def remove(session: Session) -> set[str]:
            project = self._owner(session, project_id, expected_version)
            shas = self._project_shas(session, project.id)
            session.execute(delete(Project).where(Project.id == project.id))
            return shas

        self._collect_garbage(self._write_freeing("the project was not deleted", remove))  # works on a full disk

    def _project_shas(self, session: Session, project_id: int) -> set[str]:
        shas = set(session.scalars(select(Picture.image_sha256).join(Page).where(Page.project_id == project_id)))
        shas.update(session.scalars(select(SourceImage.image_sha256).where(SourceImage.project_id == project_id)))
        shas.update(
            sha
            for sha in session.scalars(select(Character.reference_sha256).where(Character.project_id == project_id))
            if sha
        )
        shas.update(self._proposal_shas(session, project_id))
        return shas

    def set_characters(
        self, project_id: int, expected_version: int, characters: Sequence[tuple[str, str]]
    ) -> ProjectView:
        """Replace the project's characters with (name, description) pairs, in order."""
        if not isinstance(characters, (list, tuple)):
            raise InvalidInput("The characters must be given as a list.")
        if len(characters) > validate.MAX_CHARACTERS:
            raise InvalidInput(
                f"That is {len(characters):,} characters; the most a project keeps is {validate.MAX_CHARACTERS:,}."
            )
        rows: list[tuple[str, str]] = []
        for n, item in enumerate(characters, start=1):
            if not isinstance(item, (tuple, list)) or len(item) != 2:
                raise InvalidInput(f"Character {n} must be given as (name, description).")
            name, description = item
            rows.append(
                (
                    validate.text(name, f"Character {n}'s name", validate.MAX_NAME, required=True).strip(),
                    validate.text(
                        description if description is not None else "",
                        f"Character {n}'s description",
                        validate.MAX_DESCRIPTION,
                    ),
                )
            )
        with self._edit(project_id, expected_version, "Change the characters") as (session, project):
            old = sorted(project.characters, key=lambda c: (c.position, c.id))
            # A reference picture follows its character's name; the new names take, in order, those of the
            # characters whose names are gone (renamed).
            names = {name.casefold() for name, _ in rows}
            by_name: dict[str, _Cast] = {c.name.casefold(): _cast_of(c) for c in old}
            renamed = iter([_cast_of(c) for c in old if c.name.casefold() not in names])
            references: list[_Cast] = [
                by_name[name.casefold()] if name.casefold() in by_name else next(renamed, _NO_CAST) for name, _ in rows
            ]
            # Characters keep their rows where they can (undo puts the very same rows back).
            for character in old[len(rows) :]:
                project.characters.remove(character)
            session.flush()
            for position, (name, description) in enumerate(rows):
                if position < len(old):
                    old[position].position, old[position].name = position, name
                    old[position].description = description
                    _give_cast(old[position], references[position])
                else:
                    character = Character(position=position, name=name, description=description)
                    _give_cast(character, references[position])
                    project.characters.append(character)
        return self.get_project(project_id)

    def set_character_reference(
        self,
        project_id: int,
        expected_version: int,
        name: str,
        *,
        image: bytes | None = None,
        picture_id: int | None = None,
        settings: dict[str, Any] | None = None,
    ) -> ProjectView:
        """Give the character ``name`` a reference picture (the cast sheet): a picture's bytes (PNG, JPEG or
        WebP, checked; ``settings`` say how it was drawn, None for an upload) or one of the story's pictures
        (``picture_id``, its settings kept with it); neither takes the reference away (the picture itself
        stays wherever else it is used). One undoable step."""
        if image is not None and picture_id is not None:
            raise InvalidInput("Give the reference as a picture or as one of the story's pictures, not both.")
        checked = check_image(image) if image is not None else None
        drawn = validate.settings(settings, "How the reference picture was drawn") if settings is not None else None
        if checked is not None:
            self.images.write(checked)
        with self._edit(project_id, expected_version, "Change a character's reference picture") as (session, project):
            wanted = validate.text(name, "The character's name", validate.MAX_NAME, required=True).strip().casefold()
            character = next((c for c in project.characters if c.name.casefold() == wanted), None)
            if character is None:
                raise NotFound(f"There is no character called {name.strip()!r} in this story any more.")
            strength = _strength(character.reference_settings)
            if checked is not None:
                self._ensure_files([checked])
                character.reference_sha256, character.reference_ext = checked.sha256, checked.ext
                character.reference_settings = _with_strength(drawn, strength)
            elif picture_id is not None:
                picture = self._picture(session, picture_id)
                if picture.page.project_id != project.id:
                    raise NotFound("That picture is not in this story.")
                character.reference_sha256, character.reference_ext = picture.image_sha256, picture.image_ext
                character.reference_settings = _with_strength(
                    copy.deepcopy(picture.settings) if picture.origin == "generated" and picture.settings else None,
                    strength,
                )
            else:
                character.reference_sha256 = character.reference_ext = character.reference_settings = None
        return self.get_project(project_id)

    def _cast_member(self, project: Project, name: Any) -> Character:
        wanted = validate.text(name, "The character's name", validate.MAX_NAME, required=True).strip().casefold()
        character = next((c for c in project.characters if c.name.casefold() == wanted), None)
        if character is None:
            raise NotFound(f"There is no character called {str(name).strip()!r} in this story any more.")
        return character

    def add_reference_proposals(
        self,
        project_id: int,
        expected_version: int | None,
        name: str,
        proposals: Sequence[tuple[bytes, dict[str, Any] | None, float | None]],
        use: int | None = 0,
    ) -> ProjectView:
        """Keep pictures drawn for the character's reference ((bytes, how it was drawn, CLIP score or None), the
        newest MAX_PROPOSALS kept, older ones first) and make ``proposals[use]`` its reference (None: keep the
        reference). The files are checked and written first. One undoable step."""
        if not isinstance(proposals, (list, tuple)) or not proposals:
            raise InvalidInput("Give at least one picture drawn for the reference.")
        if len(proposals) > validate.MAX_PROPOSALS:
            raise InvalidInput(f"A character keeps at most {validate.MAX_PROPOSALS} pictures drawn for its reference.")
        if use is not None and not 0 <= use < len(proposals):
            raise InvalidInput("The picture to use is not among those drawn.")
        checked, entries = [], []
        for n, item in enumerate(proposals, start=1):
            if not isinstance(item, (tuple, list)) or len(item) != 3:
                raise InvalidInput(f"Drawn picture {n} must be given as (picture, settings, score).")
            data, drawn, score = item
            image = check_image(data)
            checked.append(image)
            entries.append(
                validate.proposal(
                    {"sha256": image.sha256, "ext": image.ext, "settings": drawn, "score": score},
                    f"Drawn picture {n}",
                )
            )
        self.images.write_all(checked)
        with self._edit(project_id, expected_version, "Draw a reference picture") as (_, project):
            character = self._cast_member(project, name)
            self._ensure_files(checked)
            fresh = {entry["sha256"] for entry in entries}
            kept = [item for item in character.reference_proposals or () if item["sha256"] not in fresh]
            character.reference_proposals = (kept + entries)[-validate.MAX_PROPOSALS :]
            if use is not None:
                chosen = entries[use]
                character.reference_settings = _with_strength(
                    copy.deepcopy(chosen["settings"]), _strength(character.reference_settings)
                )
                character.reference_sha256, character.reference_ext = chosen["sha256"], chosen["ext"]
        return self.get_project(project_id)

    def use_reference_proposal(self, project_id: int, expected_version: int, name: str, index: int) -> ProjectView:
        """Make the character's kept proposal number ``index`` its reference, with the settings it was drawn with
        (how closely pages follow it stays as it was). One undoable step."""
        with self._edit(project_id, expected_version, "Change a character's reference picture") as (_, project):
            character = self._cast_member(project, name)
            item = self._proposal(character, index)
            character.reference_settings = _with_strength(
                copy.deepcopy(item.get("settings")), _strength(character.reference_settings)
            )
            character.reference_sha256, character.reference_ext = item["sha256"], item["ext"]
        return self.get_project(project_id)

    def remove_reference_proposal(self, project_id: int, expected_version: int, name: str, index: int) -> ProjectView:
        """Take one picture off the character's offer (the reference in use stays the reference). One undoable
        step: the file stays where it is, for an undo, until a sweep finds that no row names it."""
        with self._edit(project_id, expected_version, "Remove a picture drawn for a reference") as (_, project):
            character = self._cast_member(project, name)
            self._proposal(character, index)
            kept = list(character.reference_proposals or ())
            del kept[index]
            character.reference_proposals = kept or None
        return self.get_project(project_id)

    @staticmethod
    def _proposal(character: Character, index: Any) -> dict[str, Any]:
        kept = character.reference_proposals or []
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(kept):
            raise NotFound("That picture is no longer on offer: it may have been removed in another tab or window.")
        return kept[index]

    def set_reference_strength(
        self,
        project_id: int,
        expected_version: int,
        name: str,
        *,
        share_rate: float | None = None,
        ip_scale: float | None = None,
    ) -> ProjectView:
        """How closely pages follow the character's reference picture, kept in its settings (JSON) beside how it
        was drawn: ``share_rate`` for shared attention (0..1), ``ip_scale`` for the IP-Adapter (0..2); None leaves
        one as it is. One undoable step."""
        changes: dict[str, float] = {}
        if share_rate is not None:
            changes["share_rate"] = validate.number(share_rate, "The share rate", *validate.SHARE_RATE_RANGE)
        if ip_scale is not None:
            changes["ip_scale"] = validate.number(ip_scale, "The reference strength", *validate.IP_SCALE_RANGE)
        with self._edit(project_id, expected_version, "Change how closely pages follow a reference") as (_, project):
            character = self._cast_member(project, name)
            if not character.reference_sha256:
                raise NotFound(f"{character.name} has no reference picture any more.")
            character.reference_settings = {**copy.deepcopy(character.reference_settings or {}), **changes}
        return self.get_project(project_id)

    def set_character_likeness(self, project_id: int, name: str, likeness: dict[str, Any] | None) -> ProjectView:
        """Keep how alike the character looks across its pages (measured by a job). Like a job's picture it takes
        no expected version, leaves the project's version and undo history alone, and a character renamed or
        removed meanwhile simply does not get it (NotFound)."""
        measured = None if likeness is None else validate.settings(likeness, "The likeness measured")
        with self._write("the likeness was not saved") as session:
            project = self._project(session, project_id)
            character = self._cast_member(project, name)
            character.likeness = measured
            self._touch(project, bump=False)
        return self.get_project(project_id)

    def integrity_report(self) -> dict[str, Any]:
        """SQLite's integrity check and the rows whose image file is missing or damaged."""
        with self._read() as session:
            check = [row[0] for row in session.connection().exec_driver_sql("PRAGMA integrity_check").all()]
            refs: list[Any] = list(session.execute(select(Picture.id, Picture.image_sha256, Picture.image_ext)).all())
            refs += session.execute(select(SourceImage.id, SourceImage.image_sha256, SourceImage.image_ext)).all()
            refs += session.execute(
                select(Character.id, Character.reference_sha256, Character.reference_ext).where(
                    Character.reference_sha256.is_not(None)
                )
            ).all()
            for character_id, proposals in session.execute(
                select(Character.id, Character.reference_proposals).where(Character.reference_proposals.is_not(None))
            ).all():
                refs += [(character_id, item["sha256"], item["ext"]) for item in proposals or ()]
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


# What follows a character's name when the characters are saved again: its reference picture, how it was drawn,
# the proposals drawn for it and its measured likeness.
_Cast = tuple[str | None, str | None, dict[str, Any] | None, list[dict[str, Any]] | None, dict[str, Any] | None]
_NO_CAST: _Cast = (None, None, None, None, None)
_STRENGTH_KEYS = ("share_rate", "ip_scale")


def _cast_of(c: Character) -> _Cast:
    return (c.reference_sha256, c.reference_ext, c.reference_settings, c.reference_proposals, c.likeness)


def _give_cast(c: Character, cast: _Cast) -> None:
    c.reference_sha256, c.reference_ext, c.reference_settings, c.reference_proposals, c.likeness = cast


def _strength(settings: dict[str, Any] | None) -> dict[str, Any]:
    """How closely pages follow a reference (the person's choice), kept when the reference picture changes."""
    return {key: settings[key] for key in _STRENGTH_KEYS if settings and key in settings}


def _with_strength(settings: dict[str, Any] | None, strength: dict[str, Any]) -> dict[str, Any] | None:
    if not strength:
        return settings
    return {**(settings or {}), **strength}
