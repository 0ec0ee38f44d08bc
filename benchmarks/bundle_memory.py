"""Peak memory of importing hostile and large bundles (storage.bundle.read_bundle through Library.import_bundle).

    python -m benchmarks.bundle_memory [--case NAME]

Each case runs in a fresh process: the bundle is written to a file first, then imported from the open file
as `python -m storage import-bundle` does; the figure is the growth of the process's peak resident memory
(VmHWM, reset just before) over what it held just before the import, and tracemalloc's peak of Python allocations.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path


def _noise_png(seed: int, width: int, height: int) -> bytes:
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG", compress_level=0)
    return out.getvalue()


def _flat_png(seed: int, side: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (side, side), (seed, 100, 200)).save(out, "PNG", compress_level=0)
    return out.getvalue()


def _doc(names: list[str], extra: str = "") -> str:
    doc = {
        "format": "storybook-bundle",
        "version": 1,
        "project": {"title": "Big", "story_text": "x"},
        "segments": [{"text": "x", "illustrations": [{"version": 1, "image": n}]} for n in names],
    }
    text = json.dumps(doc)
    return text[:-1] + f', "padding": {extra}}}' if extra else text


def build(case: str, path: Path) -> str:
    with zipfile.ZipFile(path, "w") as archive:
        if case in ("bomb-pictures", "large-pictures"):
            if case == "bomb-pictures":  # 19 flat 4000 px pictures: 1 GB unpacked from about 1 MB
                images = [_flat_png(n, 4000) for n in range(19)]
                kind = zipfile.ZIP_DEFLATED
            else:  # 8 pictures of noise, 10 MP each (30 MB): what a real 240 MB bundle holds
                images = [_noise_png(n, 4000, 2500) for n in range(8)]
                kind = zipfile.ZIP_STORED
            names = [f"images/{hashlib.sha256(d).hexdigest()}.png" for d in images]
            archive.writestr("project.json", _doc(names), zipfile.ZIP_DEFLATED)
            for name, data in zip(names, images):
                archive.writestr(name, data, kind)
            return f"{len(images)} pictures, {sum(map(len, images)) / 2**20:.0f} MB unpacked"
        if case == "json-items":  # 249,000 small objects with a float each: about the most items parsed
            extra = "[" + ",".join(['{"a_key_of_some_length_to_fill_the_file":1.5}'] * 249_000) + "]"
        elif case == "json-string":  # one 31 MB string
            extra = json.dumps("a" * (31 * 2**20))
        else:
            raise SystemExit(f"unknown case {case}")
        archive.writestr("project.json", _doc([], extra), zipfile.ZIP_STORED)  # stored: not a zip bomb
        return f"project.json of {len(extra) / 2**20:.0f} MB"


def _rss_kb(field: str) -> int:
    """A memory figure of this process from /proc/self/status, in kB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise SystemExit("this measurement needs Linux's /proc/self/status")


def run_one(case: str, folder: str, what: str) -> None:
    import tracemalloc

    from storage.errors import StorageError
    from storage.library import Library

    bundle = Path(folder) / "b.zip"
    size = bundle.stat().st_size
    library = Library(Path(folder) / "home")
    import gc

    gc.collect()
    before = _rss_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to what is resident now
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with bundle.open("rb") as handle:
            outcome = f"imported project {library.import_bundle(handle).id}"
    except StorageError as exc:
        outcome = f"refused: {exc.message[:110]}"
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    after = _rss_kb("VmHWM")
    library.close()
    print(
        f"{case:<15} {what:<34} bundle {size / 2**20:7.1f} MB  {seconds:5.1f} s  "
        f"peak RSS growth {(after - before) / 1024:6.0f} MB  tracemalloc peak {peak / 2**20:6.0f} MB  {outcome}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--case")
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--what", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.folder:
        run_one(args.case, args.folder, args.what)
        return
    for case in [args.case] if args.case else ["bomb-pictures", "large-pictures", "json-items", "json-string"]:
        with tempfile.TemporaryDirectory() as folder:
            what = build(case, Path(folder) / "b.zip")
            command = [sys.executable, __file__, "--case", case, "--folder", folder, "--what", what]
            subprocess.run(command, check=False)


if __name__ == "__main__":
    main()
