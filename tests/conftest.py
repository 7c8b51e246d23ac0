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


@pytest.fixture(scope="session")
def pg_url() -> str:
    """A connection URL to a throwaway PostgreSQL server with pgvector.

    Its data folder is made with ``tempfile``, not ``tmp_path_factory``: pytest prunes old
    ``pytest-of-<user>`` folders (a concurrent pytest run would delete a live server's data), and
    pgserver, when run as root, runs PostgreSQL as its own ``pgserver`` user, which needs to
    traverse the folder's parents.
    """
    import os
    import shutil
    import tempfile

    import numpy as np

    try:
        import pgserver
        import psycopg
    except ImportError as exc:
        pytest.skip(f"PostgreSQL tests need pgserver and psycopg (pip install pgserver==0.1.4 'psycopg[binary]'): {exc}")
    try:
        root = tempfile.mkdtemp(prefix="faceprint-pg-")
        server = pgserver.get_server(os.path.join(root, "data"), cleanup_mode="stop")
        url = server.get_uri()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except Exception as exc:  # any failure to start: say why and skip
        pytest.skip(f"could not start a PostgreSQL server with pgvector via pgserver: {exc!r}")
    try:  # pgserver's bundled pgvector may be built for CPU instructions this machine lacks (SIGILL)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TEMP TABLE probe (e vector(128))")
            conn.execute("CREATE INDEX ON probe USING hnsw (e vector_ip_ops)")
            vecs = [str(np.eye(128)[i].tolist()) for i in range(3)]
            conn.cursor().executemany("INSERT INTO probe VALUES (%s::vector)", [(v,) for v in vecs])
            conn.execute("SELECT e <#> %s::vector FROM probe", (vecs[0],)).fetchall()
    except psycopg.OperationalError as exc:
        server.get_postmaster_info().process.kill()  # a clean stop waits a minute after the crash
        pytest.skip(f"pgserver's PostgreSQL started, but its bundled pgvector crashed the server on a distance "
                    f"computation (likely built for CPU instructions this machine lacks; see {root}/data/log): {exc}")
    yield url
    server.cleanup()
    shutil.rmtree(root, ignore_errors=True)
