"""Project bundles (zip: project.json + images/) and engine manifests, read as untrusted input.

Everything is checked before anything is written: member names, declared and actual sizes, the
JSON's shape and types, and every picture (PNG, JPEG or WebP, whole, within the pixel limit, and
named by its own SHA-256). Problems raise BundleError with a sentence naming what is wrong.
"""

from __future__ import annotations

import io
import json
import lzma
import os
import re
import shutil
import stat
import struct
import tempfile
import weakref
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from storage import validate
from storage.errors import BundleError, InvalidInput
from storage.files import MAX_IMAGE_BYTES, CheckedImage, check_image
from storage.models import PAGE_STATES, PICTURE_STATES

BUNDLE_FORMAT = "storybook-bundle"
# 2: pages and pictures carry their state (tray, bin), the title line; 3: closing words, drafts first, what was
# learnt about each picture (meta), the characters' reference pictures; 4: the pictures drawn for each reference
# (proposals) and each character's measured likeness (docs/formats.md)
BUNDLE_VERSION = 4
BUNDLE_VERSIONS_READ = (1, 2, 3, 4)
MANIFEST_FORMAT = "storybook-manifest"
MANIFEST_VERSION = 1
MAX_BUNDLE_BYTES = 1024 * 1024 * 1024
MAX_BUNDLE_UNPACKED = 1024 * 1024 * 1024
MAX_JSON_BYTES = 32 * 1024 * 1024  # the longest story (2M characters of CJK, 3 bytes each) twice over, and more
# Parsed JSON costs several times its text in objects: a project.json of tens of MB of tiny lists or numbers
# would cost gigabytes before its shape could be checked. Every item costs a comma or a bracket, so counting
# those (in C, before parsing) bounds the parse. A real project has a few per page and per picture.
MAX_JSON_ITEMS = 500_000
# A picture is compressed already and JSON text deflates about 5 to 20 times; a member packed tighter than
# this is a zip bomb (a 1 MB bundle unpacking to a GB), refused before it is unpacked.
MAX_COMPRESSION_RATIO = 100
MAX_MEMBERS = 20_000
# What zipfile and its decompressors raise on damaged or odd archives: zlib.error and lzma.LZMAError
# are not OSErrors, and an unknown "zip file version" is a NotImplementedError raised while opening.
_DAMAGED_ZIP = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    NotImplementedError,
    RuntimeError,
    OSError,
    EOFError,
    ValueError,
    struct.error,
    zlib.error,
    lzma.LZMAError,
)
PROJECT_JSON = "project.json"
_IMAGE_MEMBER = re.compile(r"^images/([0-9a-f]{64})\.(png|jpg|webp)$")


@dataclass
class ImportedPicture:
    version: int
    image: CheckedImage
    settings: dict[str, Any]
    origin: str
    created: datetime
    selected: bool
    state: str = "kept"
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class ImportedPage:
    text: str
    start: int
    end: int
    prompt_override: str | None
    negative_prompt: str | None
    seed: int | None
    locked: bool
    pictures: list[ImportedPicture] = field(default_factory=list)
    state: str = "live"


@dataclass
class ImportedProject:
    title: str
    author: str
    style: str
    profile: str
    story_text: str
    created: datetime
    pages: list[ImportedPage] = field(default_factory=list)
    characters: list[tuple[str, str]] = field(default_factory=list)
    source_images: list[tuple[CheckedImage, str]] = field(default_factory=list)
    story_settings: dict[str, Any] | None = None
    setting: str = ""
    dedication: str = ""
    title_from_text: bool = False
    closing: str = ""
    drafts: bool = False
    references: dict[int, CheckedImage] = field(default_factory=dict)  # character position -> reference picture
    reference_settings: dict[int, dict[str, Any]] = field(default_factory=dict)  # ... -> how it was drawn
    candidates: int = 1
    # character position -> the pictures drawn for its reference: (picture, how it was drawn, CLIP score)
    proposals: dict[int, list[tuple[CheckedImage, dict[str, Any] | None, float | None]]] = field(default_factory=dict)
    likeness: dict[int, dict[str, Any]] = field(default_factory=dict)  # character position -> its measured likeness

    def images(self) -> list[CheckedImage]:
        found = [picture.image for page in self.pages for picture in page.pictures]
        offered = [image for kept in self.proposals.values() for image, _, _ in kept]
        return found + [image for image, _ in self.source_images] + list(self.references.values()) + offered


def _read_characters(reader: _Reader, doc: dict) -> list[tuple[str, str]]:
    """A bundle's or manifest's "characters": [{"name", "description"}, ...] (absent: none)."""
    out = []
    for n, raw_char in enumerate(reader.lst(doc.get("characters", []), "characters", validate.MAX_CHARACTERS), start=1):
        char = reader.obj(raw_char, f"character {n}")
        out.append(
            (
                reader.check(
                    validate.text, char.get("name"), f"Character {n}'s name", validate.MAX_NAME, required=True
                ),
                reader.check(
                    validate.text, char.get("description", ""), f"Character {n}'s description", validate.MAX_DESCRIPTION
                ),
            )
        )
    return out


# ----------------------------------------------------------------------------- JSON shape helpers


class _Reader:
    """Typed access to untrusted JSON, turning every mismatch into one BundleError sentence."""

    def __init__(self, kind: str):
        self.kind = kind  # "bundle" or "manifest"

    def fail(self, detail: str) -> BundleError:
        return BundleError(f"This {self.kind} cannot be imported: {detail}")

    def obj(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(f"{where} must be a JSON object.")
        return value

    def lst(self, value: Any, where: str, limit: int) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(f"{where} must be a JSON list.")
        if len(value) > limit:
            raise self.fail(f"{where} has {len(value):,} entries; the most we accept is {limit:,}.")
        return value

    def check(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except InvalidInput as exc:
            raise self.fail(_lower_first(exc.message)) from None


def _lower_first(sentence: str) -> str:
    return sentence[:1].lower() + sentence[1:] if sentence[:2] != sentence[:2].upper() else sentence


def _load_json(raw: bytes, reader: _Reader, what: str) -> Any:
    items = raw.count(b",") + raw.count(b"[") + raw.count(b"{")
    if items > MAX_JSON_ITEMS:
        raise reader.fail(
            f"{what} holds about {items:,} items, more than a project of {validate.MAX_PAGES:,} pages "
            f"could (at most {MAX_JSON_ITEMS:,})."
        )
    try:
        decoded = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise reader.fail(f"{what} is not UTF-8 text.") from None

    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not allowed")

    try:
        return json.loads(decoded, parse_constant=no_constants)
    except (ValueError, RecursionError) as exc:
        raise reader.fail(f"{what} is not valid JSON ({str(exc)[:120]}).") from None


# ----------------------------------------------------------------------------- bundles


def _check_member_name(name: str) -> None:
    bad = (
        not name
        or len(name) > 255
        or name.startswith(("/", "\\"))
        or "\\" in name
        or ":" in name
        or any(ord(ch) < 32 or ord(ch) == 127 for ch in name)
        or any(part in ("", ".", "..") for part in name.rstrip("/").split("/"))
    )
    if bad:
        raise BundleError(f"This bundle cannot be imported: it contains a file with an unsafe name ({name[:80]!r}).")


def read_bundle(data: bytes | bytearray | memoryview | IO[bytes]) -> ImportedProject:
    """Parse and check a bundle made by Library.export_bundle; nothing is written to the library.

    `data` is the bundle's bytes or a seekable binary file holding them (an upload, an open file), read as it
    is needed, never copied whole. Pictures are checked one at a time and set aside in a temporary folder
    that goes away with the returned project (or at once when the bundle is refused), so the import holds
    at most one picture in memory whatever the bundle's size.
    """
    reader = _Reader("bundle")
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if isinstance(data, bytes):
        size = len(data)
        stream: IO[bytes] = io.BytesIO(data)  # shares the bytes object: no copy
    elif hasattr(data, "read") and hasattr(data, "seek"):
        stream = data
        try:
            size = stream.seek(0, os.SEEK_END)
            stream.seek(0)
        except (OSError, ValueError):
            raise reader.fail("it could not be read.") from None
    else:
        raise reader.fail("it must be given as the bytes of a .zip file.")
    if size > MAX_BUNDLE_BYTES:
        raise reader.fail(f"it is larger than {MAX_BUNDLE_BYTES // 1024**2:,} MB.")
    try:
        archive = zipfile.ZipFile(stream)
    except _DAMAGED_ZIP:
        raise reader.fail("it is not a zip file, or it is damaged.") from None
    spool = _Spool()
    try:
        with archive:
            return _read_archive(archive, reader, spool)
    except BaseException:
        spool.remove()
        raise


class _Spool:
    """A private temporary folder for checked pictures, removed when the project read from the bundle is
    gone (or at once on failure): the library reads each picture back as it writes it."""

    def __init__(self) -> None:
        self.folder: Path | None = None
        self._finalizer: weakref.finalize | None = None

    def keep(self, data: bytes, image: CheckedImage) -> CheckedImage:
        if self.folder is None:
            self.folder = Path(tempfile.mkdtemp(prefix="storybook-import-"))
            self._finalizer = weakref.finalize(self, shutil.rmtree, str(self.folder), True)
        path = self.folder / image.name
        if not path.exists():
            try:
                path.write_bytes(data)
            except OSError as exc:
                raise BundleError(
                    f"This bundle cannot be imported: there is no room to unpack it ({exc.strerror or exc})."
                ) from None
        return SpooledImage(path, image, self)

    def remove(self) -> None:
        if self._finalizer is not None:
            self._finalizer()


class SpooledImage(CheckedImage):
    """A checked picture kept on disk until the library writes it; `data` reads it back each time."""

    path: Path
    _spool: _Spool

    def __init__(self, path: Path, image: CheckedImage, spool: _Spool):
        # CheckedImage is frozen; its data field is this class's property, read from disk when asked.
        for name, value in (
            ("sha256", image.sha256),
            ("ext", image.ext),
            ("width", image.width),
            ("height", image.height),
            ("path", path),
            ("_spool", spool),  # the folder lives as long as any picture in it
        ):
            object.__setattr__(self, name, value)

    @property
    def data(self) -> bytes:
        try:
            return self.path.read_bytes()
        except OSError as exc:
            raise BundleError(
                f"The unpacked picture {self.name} could not be read back ({exc.strerror or exc}); import again."
            ) from None


def _read_archive(archive: zipfile.ZipFile, reader: _Reader, spool: _Spool) -> ImportedProject:
    members: dict[str, zipfile.ZipInfo] = {}
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise reader.fail(f"it holds {len(infos):,} files; the most we accept is {MAX_MEMBERS:,}.")
    declared_total = 0
    for info in infos:
        name = info.filename
        _check_member_name(name)
        if name in members:
            raise reader.fail(f"it holds two files named {name!r}.")
        if info.flag_bits & 0x1:
            raise reader.fail("it is encrypted.")
        mode = (info.external_attr >> 16) & 0o170000
        if mode and stat.S_ISLNK(mode):
            raise reader.fail(f"{name!r} is a symbolic link.")
        if info.is_dir():
            if name != "images/":
                raise reader.fail(f"it contains an unexpected folder {name!r}.")
            continue
        limit = MAX_JSON_BYTES if name == PROJECT_JSON else MAX_IMAGE_BYTES
        if name != PROJECT_JSON and not _IMAGE_MEMBER.match(name):
            raise reader.fail(f"it contains an unexpected file {name!r}.")
        if info.file_size > limit:
            raise reader.fail(f"{name!r} would unpack to {info.file_size:,} bytes; the most we accept is {limit:,}.")
        if info.file_size > 1024 * 1024 and info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1):
            raise reader.fail(
                f"{name!r} is packed {info.file_size // max(info.compress_size, 1):,} times smaller than it unpacks, "
                f"more than any picture or project (at most {MAX_COMPRESSION_RATIO} times): it looks like a zip bomb."
            )
        declared_total += info.file_size
        if declared_total > MAX_BUNDLE_UNPACKED:
            raise reader.fail(f"it would unpack to more than {MAX_BUNDLE_UNPACKED // 1024**2:,} MB.")
        members[name] = info
    if PROJECT_JSON not in members:
        raise reader.fail("it has no project.json.")

    def read_member(name: str) -> bytes:
        info = members[name]
        limit = MAX_JSON_BYTES if name == PROJECT_JSON else MAX_IMAGE_BYTES
        try:
            with archive.open(info) as handle:
                # The declared size may lie; never read more than the limit allows.
                raw = handle.read(limit + 1)
        except _DAMAGED_ZIP:
            raise reader.fail(f"{name!r} is damaged or packed in a way we do not read.") from None
        if len(raw) > limit or len(raw) != info.file_size:
            raise reader.fail(f"{name!r} is larger than it claims to be.")
        return raw

    doc = reader.obj(_load_json(read_member(PROJECT_JSON), reader, "project.json"), "project.json")
    if doc.get("format") != BUNDLE_FORMAT:
        raise reader.fail("project.json is not a Storybook Studio project bundle.")
    if doc.get("version") not in BUNDLE_VERSIONS_READ:
        raise reader.fail(
            f"it was made in bundle format version {doc.get('version')!r}; this app reads versions "
            f"{BUNDLE_VERSIONS_READ[0]} to {BUNDLE_VERSIONS_READ[-1]}."
        )

    checked: dict[str, CheckedImage] = {}

    def image(ref: Any, where: str) -> CheckedImage:
        if not isinstance(ref, str) or not _IMAGE_MEMBER.match(ref):
            raise reader.fail(f"{where} names its picture file oddly ({str(ref)[:80]!r}).")
        if ref not in checked:
            if ref not in members:
                raise reader.fail(f"{where} names a picture the bundle does not contain ({ref!r}).")
            raw = read_member(ref)
            pic = reader.check(check_image, raw, f"The picture {ref}")
            if f"images/{pic.sha256}.{pic.ext}" != ref:
                raise reader.fail(f"the picture {ref!r} is damaged (its contents do not match its name).")
            checked[ref] = spool.keep(raw, pic)  # on disk until the library writes it: one in memory at a time
            del raw, pic
        return checked[ref]

    proj = reader.obj(doc.get("project"), "project")
    story_text = reader.check(validate.text, proj.get("story_text", ""), "The story text", validate.MAX_STORY)
    result = ImportedProject(
        title=reader.check(validate.title, proj.get("title"), shorten=True),
        author=reader.check(validate.text, proj.get("author", ""), "The author", validate.MAX_AUTHOR),
        style=reader.check(validate.text, proj.get("style", "watercolor"), "The style", validate.MAX_STYLE),
        profile=reader.check(validate.text, proj.get("profile", "fast"), "The model profile", validate.MAX_STYLE),
        story_text=story_text,
        created=reader.check(validate.timestamp, proj.get("created"), "The project's creation time")
        if proj.get("created") is not None
        else datetime.now(UTC),
        story_settings=reader.check(validate.settings, proj["story_settings"], "The story's settings")
        if proj.get("story_settings") is not None
        else None,
        setting=reader.check(validate.setting, proj.get("setting", "")),
        dedication=reader.check(validate.dedication, proj.get("dedication", "")),
        closing=reader.check(validate.closing, proj.get("closing", "")),
        drafts=reader.check(validate.flag, proj.get("drafts", False), "Whether pages are drawn as drafts first"),
        candidates=reader.check(
            validate.integer, proj.get("candidates", 1), "The pictures drawn per page", 1, validate.MAX_CANDIDATES
        ),
        title_from_text=reader.check(
            validate.flag, proj.get("title_from_text", False), "Whether the title is the story's first line"
        ),
    )
    for n, raw_page in enumerate(reader.lst(doc.get("segments", []), "segments", validate.MAX_PAGES), start=1):
        page_doc = reader.obj(raw_page, f"page {n}")
        page = _read_page(reader, page_doc, n, story_text)
        versions: set[int] = set()
        for m, raw_picture in enumerate(
            reader.lst(page_doc.get("illustrations", []), f"page {n}'s pictures", validate.MAX_PICTURES_PER_PAGE),
            start=1,
        ):
            picture_doc = reader.obj(raw_picture, f"page {n}, picture {m}")
            where = f"page {n}, picture {m}"
            number = reader.check(
                validate.integer, picture_doc.get("version"), f"The version number of {where}", 1, 10**9
            )
            if number in versions:
                raise reader.fail(f"page {n} has two pictures numbered {number}.")
            versions.add(number)
            page.pictures.append(
                ImportedPicture(
                    version=number,
                    image=image(picture_doc.get("image"), where),
                    settings=reader.check(
                        validate.settings, picture_doc.get("settings", {}), f"The settings of {where}"
                    ),
                    origin=reader.check(validate.origin, picture_doc.get("origin", "generated")),
                    created=reader.check(
                        validate.timestamp, picture_doc.get("created"), f"The creation time of {where}"
                    )
                    if picture_doc.get("created") is not None
                    else result.created,
                    selected=reader.check(
                        validate.flag, picture_doc.get("selected", False), f"Whether {where} is selected"
                    ),
                    state=reader.check(validate.choice, picture_doc.get("state", "kept"), PICTURE_STATES, where),
                    meta=reader.check(validate.meta, picture_doc.get("meta", {}), f"What was learnt about {where}"),
                )
            )
        result.pages.append(page)
    result.characters = _read_characters(reader, doc)
    for n, raw_char in enumerate(doc.get("characters", []), start=1):  # checked as a list by _read_characters
        if isinstance(raw_char, dict) and raw_char.get("reference") is not None:
            result.references[n - 1] = image(raw_char["reference"], f"character {n}'s reference picture")
            if raw_char.get("reference_settings") is not None:
                result.reference_settings[n - 1] = reader.check(
                    validate.settings, raw_char["reference_settings"], f"How character {n}'s reference was drawn"
                )
        if isinstance(raw_char, dict) and raw_char.get("proposals") is not None:
            kept = []
            for m, raw_offer in enumerate(
                reader.lst(raw_char["proposals"], f"character {n}'s drawn pictures", validate.MAX_PROPOSALS), start=1
            ):
                where = f"character {n}'s drawn picture {m}"
                offer = reader.obj(raw_offer, where)
                picture = image(offer.get("image"), where)
                entry = reader.check(
                    validate.proposal,
                    {"sha256": picture.sha256, "ext": picture.ext, **{k: offer.get(k) for k in ("settings", "score")}},
                    where[0].upper() + where[1:],
                )
                kept.append((picture, entry["settings"], entry["score"]))
            if kept:
                result.proposals[n - 1] = kept
        if isinstance(raw_char, dict) and raw_char.get("likeness") is not None:
            result.likeness[n - 1] = reader.check(
                validate.settings, raw_char["likeness"], f"How alike character {n} looks across its pages"
            )
    for n, raw_src in enumerate(
        reader.lst(doc.get("source_images", []), "source_images", validate.MAX_SOURCE_IMAGES), start=1
    ):
        src = reader.obj(raw_src, f"source picture {n}")
        result.source_images.append(
            (
                image(src.get("image"), f"source picture {n}"),
                reader.check(
                    validate.text, src.get("caption", ""), f"Source picture {n}'s caption", validate.MAX_CAPTION
                ),
            )
        )
    return result


def _read_page(reader: _Reader, page_doc: dict[str, Any], n: int, story_text: str) -> ImportedPage:
    text = reader.check(validate.text, page_doc.get("text"), f"Page {n}'s text", validate.MAX_STORY, required=True)
    start = reader.check(validate.integer, page_doc.get("start", 0), f"Page {n}'s start offset", 0, len(story_text))
    end = reader.check(validate.integer, page_doc.get("end", start), f"Page {n}'s end offset", start, len(story_text))
    return ImportedPage(
        text=text,
        start=start,
        end=end,
        prompt_override=reader.check(
            validate.optional_text, page_doc.get("prompt_override"), f"Page {n}'s prompt", validate.MAX_PROMPT
        ),
        negative_prompt=reader.check(
            validate.optional_text, page_doc.get("negative_prompt"), f"Page {n}'s negative prompt", validate.MAX_PROMPT
        ),
        seed=reader.check(validate.seed, page_doc.get("seed"), f"Page {n}'s seed"),
        locked=reader.check(validate.flag, page_doc.get("locked", False), f"Whether page {n} is locked"),
        state=reader.check(validate.choice, page_doc.get("state", "live"), PAGE_STATES, f"Page {n}"),
    )


def write_bundle(doc: dict[str, Any], files: dict[str, bytes]) -> bytes:
    """The zip: project.json (deflated) and the pictures (stored: they are compressed already)."""
    buffer = io.BytesIO()
    stamp = (2020, 1, 1, 0, 0, 0)
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo(PROJECT_JSON, date_time=stamp)
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, json.dumps(doc, ensure_ascii=False, indent=1).encode("utf-8"))
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_STORED
            archive.writestr(info, files[name])
    return buffer.getvalue()


# ----------------------------------------------------------------------------- engine manifests


def _check_image_name(reader: _Reader, name: Any, n: int) -> str:
    if not isinstance(name, str) or not name:
        raise reader.fail(f"segment {n}'s image must be a file name.")
    bad = (
        "/" in name
        or "\\" in name
        or os.sep in name
        or (os.altsep and os.altsep in name)
        or name in (".", "..")
        or "\x00" in name
        or ":" in name
        or len(name) > 255
        or any(ord(ch) < 32 for ch in name)
    )
    if bad:
        raise reader.fail(
            f"segment {n}'s image {name[:80]!r} is not a plain file name; "
            "a manifest may only name pictures in its own folder."
        )
    return name


def read_manifest(path: Path) -> ImportedProject:
    """Parse and check the engine's manifest.json (docs/formats.md) and the pictures beside it."""
    reader = _Reader("manifest")
    path = Path(path)
    if path.is_dir():
        path = path / "manifest.json"
    try:
        # Read at most one byte past the limit: a device or a growing file may claim any size.
        with open(path, "rb") as handle:
            raw = handle.read(MAX_JSON_BYTES + 1)
        if len(raw) > MAX_JSON_BYTES:
            raise reader.fail(f"it is larger than {MAX_JSON_BYTES // 1024**2} MB.")
    except FileNotFoundError:
        raise BundleError(f"There is no manifest at {path}.") from None
    except IsADirectoryError:
        raise BundleError(f"{path} is a folder, not a manifest file.") from None
    except OSError as exc:
        raise BundleError(f"The manifest at {path} cannot be read ({exc.strerror or exc}).") from None
    folder = path.parent
    doc = reader.obj(_load_json(raw, reader, "manifest.json"), "manifest.json")
    if doc.get("format") != MANIFEST_FORMAT:
        raise reader.fail('it is not a Storybook Studio engine manifest (its "format" is not "storybook-manifest").')
    if doc.get("version") != MANIFEST_VERSION:
        raise reader.fail(
            f"it is manifest format version {doc.get('version')!r}; this app reads version {MANIFEST_VERSION}."
        )
    story_text = reader.check(validate.text, doc.get("source_text", ""), "The story text", validate.MAX_STORY)
    raw_title = doc.get("title")
    created = (
        reader.check(validate.timestamp, doc.get("created"), "The manifest's creation time")
        if doc.get("created") is not None
        else datetime.now(UTC)
    )
    result = ImportedProject(
        title=reader.check(
            validate.title,
            raw_title if isinstance(raw_title, str) and raw_title.strip() else "Untitled story",
            shorten=True,
        ),
        author=reader.check(validate.text, doc.get("author") or "", "The author", validate.MAX_AUTHOR),
        style=reader.check(validate.text, doc.get("style") or "watercolor", "The style", validate.MAX_STYLE),
        profile=reader.check(validate.text, doc.get("profile") or "fast", "The model profile", validate.MAX_STYLE),
        story_text=story_text,
        created=created,
        characters=_read_characters(reader, doc),
        setting=reader.check(validate.setting, doc.get("setting") or ""),
    )
    raw_pages = reader.lst(doc.get("segments", []), "segments", validate.MAX_PAGES)
    entries = []
    for n, raw_page in enumerate(raw_pages):
        page_doc = reader.obj(raw_page, f"segment {n}")
        index = reader.check(validate.integer, page_doc.get("index", n), f"Segment {n}'s index", 0, 10**9)
        entries.append((index, n, page_doc))
    entries.sort(key=lambda entry: (entry[0], entry[1]))
    for index, _, page_doc in entries:
        page = ImportedPage(
            text=reader.check(
                validate.text, page_doc.get("text"), f"Segment {index}'s text", validate.MAX_STORY, required=True
            ),
            start=reader.check(
                validate.integer, page_doc.get("start", 0), f"Segment {index}'s start offset", 0, len(story_text)
            ),
            end=0,
            prompt_override=reader.check(
                validate.optional_text, page_doc.get("prompt"), f"Segment {index}'s prompt", validate.MAX_PROMPT
            ),
            negative_prompt=reader.check(
                validate.optional_text,
                page_doc.get("negative_prompt"),
                f"Segment {index}'s negative prompt",
                validate.MAX_PROMPT,
            ),
            seed=reader.check(validate.seed, page_doc.get("seed"), f"Segment {index}'s seed"),
            locked=False,
        )
        page.end = reader.check(
            validate.integer,
            page_doc.get("end", page.start),
            f"Segment {index}'s end offset",
            page.start,
            len(story_text),
        )
        if page_doc.get("image") is not None:
            name = _check_image_name(reader, page_doc.get("image"), index)
            image_path = folder / name
            try:
                info = image_path.lstat()
            except FileNotFoundError:
                raise reader.fail(f"segment {index}'s picture {name!r} is not in {folder}.") from None
            if not stat.S_ISREG(info.st_mode):
                raise reader.fail(f"segment {index}'s picture {name!r} is not a regular file.")
            if info.st_size > MAX_IMAGE_BYTES:
                raise reader.fail(f"segment {index}'s picture {name!r} is larger than {MAX_IMAGE_BYTES // 1024**2} MB.")
            try:
                with open(image_path, "rb") as handle:
                    data = handle.read(MAX_IMAGE_BYTES + 1)
            except OSError as exc:
                raise reader.fail(
                    f"segment {index}'s picture {name!r} cannot be read ({exc.strerror or exc})."
                ) from None
            pic = reader.check(check_image, data, f"Segment {index}'s picture {name!r}")
            settings = reader.check(
                validate.settings, page_doc.get("settings") or {}, f"The settings of segment {index}"
            )
            if page.seed is not None:
                settings.setdefault("seed", page.seed)
            if page.prompt_override is not None:
                settings.setdefault("prompt", page.prompt_override)
            if page.negative_prompt is not None:
                settings.setdefault("negative_prompt", page.negative_prompt)
            page.pictures.append(
                ImportedPicture(
                    version=1, image=pic, settings=settings, origin="generated", created=created, selected=True
                )
            )
        result.pages.append(page)
    return result
