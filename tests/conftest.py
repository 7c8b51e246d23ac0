"""Shared fixtures for the tests that run the real models on real face photos.

The photos live outside the repository in ``../shared/data`` (see its README.md: research-use and
MIT-licensed sets that must not be copied into the project). Tests that need them skip with a clear
message when that folder is absent. Models take a while to load and the "accurate" profile is slow
on a small CPU, so there is one engine per profile for the whole session.
"""

from __future__ import annotations

from pathlib import Path

import pytest

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared real-face data folder (``/work/shared/data`` next to the repository)."""
    if not DATA_DIR.is_dir():
        pytest.skip(f"shared face data not found at {DATA_DIR}: folder does not exist")
    readme = DATA_DIR / "README.md"
    if not readme.is_file():
        pytest.skip(f"shared face data not found at {DATA_DIR}: no README.md there")
    return DATA_DIR


@pytest.fixture(scope="session")
def engine_fast(data_dir):
    """The "fast" profile (YuNet + SFace, no flip), shared by the session."""
    from faceprint import Engine

    return Engine("fast")


@pytest.fixture(scope="session")
def engine(data_dir):
    """The default "accurate" profile (SFace and int8 dlib ResNet, fused, with flip), shared by the session."""
    from faceprint import Engine

    return Engine("accurate")


@pytest.fixture(scope="session")
def clip(data_dir) -> Path:
    """The Hamilton clip (275 frames, 640x360, two people) the video tests run on."""
    path = data_dir / "video" / "short_hamilton_clip.mp4"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path
