"""Undo and redo for a story: a snapshot of its editable state after each user edit, kept in the library.

A snapshot holds what a person edits on the storyboard: the book's details, the story text, the characters,
every page (its words, place, state, prompts, seed and lock) and where each picture is (its page, version,
state, whether it is the page's picture, and the words it was kept for, meta["kept_for_words"]). Undo applies
the snapshot before the current step, redo the one after; a new edit cuts the steps after the current one.
Snapshots name rows by id (ids are never reused), so a restore puts the very same pages and pictures back.
What a job added after a snapshot (a picture, a passage) is not taken away by an undo: its picture stays on its
page as another version, or in the loose-pictures tray when the page leaves the story. Pictures removed for
good (an emptied bin) cannot come back; their pages do.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from storage.models import Character, History, Page, Picture, Project, utcnow

HISTORY_STEPS = 100  # steps kept per story (the oldest are dropped); undo reaches back at least 50
_PROJECT_FIELDS = (
    "title",
    "author",
    "style",
    "profile",
    "story_text",
    "setting",
    "dedication",
    "closing",
    "drafts",
    "candidates",
    "title_from_text",
)
_PAGE_FIELDS = (
    "position",
    "state",
    "text",
    "start",
    "end",
    "prompt_override",
    "negative_prompt",
    "seed",
    "locked",
)


def take(project: Project) -> dict[str, Any]:
    """The project's editable state, as plain JSON-able data."""
    return {
        "project": {name: getattr(project, name) for name in _PROJECT_FIELDS},
        "characters": [
            [
                c.id,
                c.position,
                c.name,
                c.description,
                c.reference_sha256,
                c.reference_ext,
                c.reference_settings,
                c.reference_proposals,
            ]
            for c in project.characters
        ],
        "pages": [{"id": p.id, **{name: getattr(p, name) for name in _PAGE_FIELDS}} for p in project.pages],
        "pictures": [
            [pic.id, pic.page_id, pic.version, pic.state, bool(pic.selected), _kept_for(pic)]
            for page in project.pages
            for pic in page.pictures
        ],
    }


def _kept_for(picture: Picture) -> str | None:
    """The words a person kept the picture for (meta["kept_for_words"]): an edit of theirs, unlike the rest of
    meta (scores and the like, measures a job wrote), so it is part of a step."""
    words = (picture.meta or {}).get("kept_for_words")
    return words if isinstance(words, str) else None


def _pack(state: dict[str, Any]) -> bytes:
    return zlib.compress(json.dumps(state, ensure_ascii=False, separators=(",", ":")).encode("utf-8"), 6)


def _unpack(blob: bytes) -> dict[str, Any]:
    return json.loads(zlib.decompress(blob).decode("utf-8"))


def ensure_baseline(session: Session, project: Project) -> None:
    """Before an edit: keep how the story is now as its current step, so the edit can be undone exactly.

    The first edit makes step 0. Later, the current step is taken again: jobs change a story between edits
    (a picture drawn, seeds stored), and an undo must give back the story as it was just before the edit.
    """
    current = session.scalar(
        select(History).where(History.project_id == project.id, History.seq == project.history_pos)
    )
    if current is not None:
        current.snapshot = _pack(take(project))
    elif session.scalar(select(History.id).where(History.project_id == project.id).limit(1)) is None:
        session.add(History(project_id=project.id, seq=0, label="", snapshot=_pack(take(project)), created=utcnow()))
        project.history_pos = 0


def record(session: Session, project: Project, label: str) -> None:
    """After an edit: it becomes the current step; steps that could be redone are dropped."""
    session.flush()
    position = project.history_pos
    session.execute(delete(History).where(History.project_id == project.id, History.seq > position))
    snapshot = _pack(take(project))
    session.add(
        History(project_id=project.id, seq=position + 1, label=label[:200], snapshot=snapshot, created=utcnow())
    )
    project.history_pos = position + 1
    session.execute(
        delete(History).where(History.project_id == project.id, History.seq <= position + 1 - HISTORY_STEPS)
    )


def steps(session: Session, project: Project) -> tuple[str | None, str | None]:
    """(what undo would take back, what redo would bring back), None where there is nothing."""
    position = project.history_pos
    rows = dict(
        session.execute(
            select(History.seq, History.label).where(
                History.project_id == project.id, History.seq.in_((position - 1, position, position + 1))
            )
        ).all()
    )
    undo = rows.get(position) if position - 1 in rows else None
    redo = rows.get(position + 1)
    return (undo or ("your last change" if position - 1 in rows else None)), redo


def move(session: Session, project: Project, step: int) -> str:
    """Undo (step -1) or redo (step +1): restore that snapshot; returns the label of the step undone or redone.

    Raises LookupError when there is no such step.
    """
    ensure_baseline(session, project)  # what jobs added since the last edit comes back with a redo
    session.flush()
    position = project.history_pos
    target = position + step
    wanted = {target, position if step < 0 else target}
    rows = {
        seq: (label, blob)
        for seq, label, blob in session.execute(
            select(History.seq, History.label, History.snapshot).where(
                History.project_id == project.id, History.seq.in_(wanted)
            )
        ).all()
    }
    if target not in rows:
        raise LookupError(target)
    label = rows[position if step < 0 else target][0]
    restore(session, project, _unpack(rows[target][1]))
    project.history_pos = target
    return label or "your last change"


def restore(session: Session, project: Project, state: dict[str, Any]) -> None:
    """Make the project's editable state what ``state`` says, by id (see the module notes)."""
    for name, value in state["project"].items():
        setattr(project, name, value)

    # Characters, by id.
    wanted_characters = {row[0]: row for row in state["characters"]}
    character: Character | None
    for character in list(project.characters):
        if character.id not in wanted_characters:
            project.characters.remove(character)
    session.flush()
    present = {c.id: c for c in project.characters}
    for row in state["characters"]:
        character_id, position, name, description = row[:4]
        sha, ext, drawn = row[4:7] if len(row) >= 7 else (None, None, None)  # steps from before the cast sheet
        character = present.get(character_id)
        if character is None:
            character = Character(id=character_id, position=position, name=name, description=description)
            project.characters.append(character)
        else:
            character.position, character.name, character.description = position, name, description
        character.reference_sha256, character.reference_ext, character.reference_settings = sha, ext, drawn
        # The proposals drawn for the reference (steps from before revision 0007 have none). The measured likeness
        # is not part of a step: it is a measure, like a picture's scores, and stays as it is.
        character.reference_proposals = row[7] if len(row) >= 8 else None

    # Pages, by id: the snapshot's pages as they were; later pages leave the story (their pictures stay).
    pages = {page.id: page for page in project.pages}
    listed = set()
    for fields in state["pages"]:
        page = pages.get(fields["id"])
        if page is None:  # removed for good with an emptied bin: its words come back, its pictures cannot
            page = Page(id=fields["id"], project_id=project.id, **{k: fields[k] for k in _PAGE_FIELDS})
            session.add(page)
            pages[page.id] = page
        else:
            for name in _PAGE_FIELDS:
                setattr(page, name, fields[name])
        listed.add(page.id)
    for page_id, page in pages.items():
        if page_id not in listed and page.state == "live":
            page.state = "gone"
    session.flush()

    # Pictures: park every version number, then give each its place; unlisted pictures follow as later versions.
    pictures: dict[int, Picture] = {pic.id: pic for page in pages.values() for pic in page.pictures}
    for pic in pictures.values():
        pic.version = -pic.id
        pic.selected = False
    session.flush()
    placed: dict[int, list[int]] = {}
    for row in state["pictures"]:
        picture_id, page_id, version, picture_state, selected = row[:5]
        if picture_id not in pictures or page_id not in pages:
            continue  # removed for good with an emptied bin
        pic = pictures.pop(picture_id)
        pic.page_id, pic.version, pic.state, pic.selected = page_id, version, picture_state, selected
        # Steps from before "Keep this picture for these words" have no sixth field: nothing was kept then.
        kept_for = row[5] if len(row) >= 6 else None
        if kept_for != _kept_for(pic):
            meta = dict(pic.meta or {})
            if kept_for is None:
                meta.pop("kept_for_words", None)
            else:
                meta["kept_for_words"] = kept_for
            pic.meta = meta
        placed.setdefault(page_id, []).append(version)
    session.flush()
    for pic in sorted(pictures.values(), key=lambda p: p.id):  # added after the snapshot (a job's picture)
        taken = placed.setdefault(pic.page_id, [])
        pic.version = max(taken, default=0) + 1
        taken.append(pic.version)
    session.flush()
    for page in pages.values():
        session.expire(page, ["pictures"])
    for page in pages.values():
        kept = [pic for pic in page.pictures if pic.state == "kept"]
        if kept and not any(pic.selected for pic in kept):
            for pic in page.pictures:
                pic.selected = False
            session.flush()
            max(kept, key=lambda p: p.version).selected = True
