"""Small PNG previews of a PDF's first pages, drawn by poppler's pdftoppm when it is installed."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from exports.errors import ExportError


def preview_available() -> bool:
    return shutil.which("pdftoppm") is not None


def render_preview(pdf_bytes: bytes, pages: int = 3, dpi: int = 60) -> list[bytes]:
    """PNG bytes of the first `pages` pages; [] when pdftoppm (poppler-utils) is not installed."""
    tool = shutil.which("pdftoppm")
    if tool is None or pages < 1:
        return []
    dpi = max(10, min(int(dpi), 300))
    with tempfile.TemporaryDirectory(prefix="storybook-preview-") as tmp:
        src = Path(tmp) / "book.pdf"
        src.write_bytes(pdf_bytes)
        try:
            subprocess.run(
                [tool, "-png", "-r", str(dpi), "-f", "1", "-l", str(int(pages)), str(src), str(Path(tmp) / "page")],
                check=True,
                capture_output=True,
                timeout=120,
            )
        except subprocess.TimeoutExpired:
            raise ExportError("Drawing the preview took too long; download the PDF to see it.") from None
        except subprocess.CalledProcessError:
            raise ExportError("The preview could not be drawn from this PDF.") from None
        # pdftoppm pads page numbers to the width of the page count: page-1.png or page-01.png
        files = sorted(Path(tmp).glob("page-*.png"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
        return [f.read_bytes() for f in files]
