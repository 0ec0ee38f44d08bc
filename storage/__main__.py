"""``python -m storage``: the library without a browser.

    python -m storage list [--search Q]
    python -m storage show ID                      (the project as JSON)
    python -m storage export-bundle ID FILE
    python -m storage import-bundle FILE           (prints the new project's id)
    python -m storage import-manifest DIR/manifest.json   (prints the new project's id)

``--home DIR`` picks the data folder (default: STORYBOOK_HOME, else the platform's user data folder).
Errors print one sentence on stderr and exit with status 1 (status 2 for a mistyped command line).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

from storage.bundle import MAX_BUNDLE_BYTES
from storage.errors import StorageError
from storage.library import Library


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _project_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a project id is a whole number, not {text!r}") from None
    return value


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistyped command line gets one sentence (not a usage block) and status 2."""

    def error(self, message: str) -> NoReturn:
        sentence = message[:1].upper() + message[1:]
        self.exit(2, f"{sentence.rstrip('.')}; see {self.prog} --help.\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m storage", description="Storybook Studio's saved projects.")
    parser.add_argument(
        "--home", type=Path, default=None, help="data folder (default: STORYBOOK_HOME or the user data folder)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="list projects, newest first")
    listing.add_argument("--search", default="", help="only projects whose title, story or pages contain this")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    show = commands.add_parser("show", help="print one project as JSON")
    show.add_argument("id", type=_project_id)
    export = commands.add_parser("export-bundle", help="write a project bundle (.zip)")
    export.add_argument("id", type=_project_id)
    export.add_argument("file", type=Path)
    imp = commands.add_parser("import-bundle", help="import a project bundle as a new project; prints its id")
    imp.add_argument("file", type=Path)
    manifest = commands.add_parser(
        "import-manifest", help="import the engine's manifest.json as a new project; prints its id"
    )
    manifest.add_argument("manifest", type=Path)
    return parser


def _run(args: argparse.Namespace) -> int:
    library = Library(args.home)
    try:
        if args.command == "list":
            projects = library.list_projects(args.search)
            if args.json:
                print(
                    json.dumps(
                        [dataclasses.asdict(p) for p in projects], default=_jsonable, ensure_ascii=False, indent=1
                    )
                )
            else:
                for p in projects:
                    print(f"{p.id}\t{p.updated:%Y-%m-%d %H:%M}\t{p.page_count} pages\t{p.title}")
        elif args.command == "show":
            view = library.get_project(args.id)
            print(json.dumps(dataclasses.asdict(view), default=_jsonable, ensure_ascii=False, indent=1))
        elif args.command == "export-bundle":
            data = library.export_bundle(args.id)
            tmp = args.file.with_name(f".{args.file.name}.partial")
            try:
                with open(tmp, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, args.file)
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                raise StorageError(f"The bundle could not be written to {args.file} ({exc.strerror or exc}).") from None
            print(f"Wrote {args.file} ({len(data):,} bytes).")
        elif args.command == "import-bundle":
            try:
                if args.file.stat().st_size > MAX_BUNDLE_BYTES:
                    raise StorageError(
                        f"{args.file} is larger than {MAX_BUNDLE_BYTES // 1024**2:,} MB, the largest bundle we import."
                    )
                # Read as the import needs it, never whole into memory.
                bundle = open(args.file, "rb")  # closed by the with below
            except OSError as exc:
                raise StorageError(f"The bundle {args.file} cannot be read ({exc.strerror or exc}).") from None
            with bundle:
                # Library.import_bundle hands its argument to read_bundle, which takes an open file too.
                print(library.import_bundle(bundle).id)  # type: ignore[arg-type]
        elif args.command == "import-manifest":
            print(library.import_manifest(args.manifest).id)
    finally:
        library.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except StorageError as exc:
        print(exc.message, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Stopped.", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (``python -m storage show 1 | head``): nothing left to tell it. Point
        # stdout at devnull so the interpreter's own flush at exit does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 1


if __name__ == "__main__":
    sys.exit(main())
