"""Reading the official LFW pair lists and scoring pairs from face templates.

Two file layouts are supported (fields separated by tabs or spaces):

* **View 1** (``pairsDevTrain.txt`` / ``pairsDevTest.txt``): the first line is a single count
  ``N``, followed by ``N`` same-person lines ``name i j`` and then ``N`` different-person lines
  ``name1 i name2 j``.
* **View 2** (``pairs.txt``): the first line is ``F M`` (``10 300`` officially: folds x pairs per
  class per fold), followed, for each fold, by ``M`` same-person lines then ``M``
  different-person lines.

View 1 has no folds. So that the 10-fold protocol still runs on it, the same pairs and the
different pairs are each split into 10 contiguous chunks of (nearly, if ``N`` is not a multiple of
10) equal size, in file order, and fold ``k`` is chunk ``k`` of each.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["Pair", "VIEW1_FOLDS", "image_path", "missing_images", "pair_scores", "read_pairs"]

VIEW1_FOLDS = 10


@dataclass(frozen=True)
class Pair:
    """One LFW verification pair; ``a``/``b`` are relative paths like ``Name/Name_0001.jpg``."""

    a: str
    b: str
    same: bool
    fold: int


def image_relpath(name: str, index: int) -> str:
    """Relative LFW image path ``Name/Name_0001.jpg`` (always with ``/``)."""
    return f"{name}/{name}_{index:04d}.jpg"


def image_path(root: str | Path, name: str, index: int) -> Path:
    """Absolute-ish path ``root/name/name_{index:04d}.jpg`` of one LFW image."""
    return Path(root) / name / f"{name}_{index:04d}.jpg"


def _parse_index(token: str, lineno: int, path: Path) -> int:
    try:
        value = int(token)
    except ValueError:
        raise ValueError(f"{path}:{lineno}: image index {token!r} is not an integer") from None
    if value < 1:
        raise ValueError(f"{path}:{lineno}: image index {value} must be >= 1")
    return value


def _parse_pair(fields: list[str], same: bool, fold: int, lineno: int, path: Path) -> Pair:
    """Parse one pair line that must be of the given kind."""
    if same:
        if len(fields) != 3:
            raise ValueError(
                f"{path}:{lineno}: expected a same-person line 'name i j' (3 fields), "
                f"got {len(fields)} fields"
            )
        name, i, j = fields
        return Pair(
            image_relpath(name, _parse_index(i, lineno, path)),
            image_relpath(name, _parse_index(j, lineno, path)),
            True,
            fold,
        )
    if len(fields) != 4:
        raise ValueError(
            f"{path}:{lineno}: expected a different-person line 'name1 i name2 j' (4 fields), "
            f"got {len(fields)} fields"
        )
    n1, i, n2, j = fields
    return Pair(
        image_relpath(n1, _parse_index(i, lineno, path)),
        image_relpath(n2, _parse_index(j, lineno, path)),
        False,
        fold,
    )


def _parse_header(fields: list[str], lineno: int, path: Path) -> tuple[int, int]:
    """Return ``(n_folds, per_class)``; ``n_folds == 0`` marks a View 1 file."""
    try:
        values = [int(x) for x in fields]
    except ValueError:
        raise ValueError(
            f"{path}:{lineno}: header must be 'N' (View 1) or 'FOLDS N' (View 2), "
            f"got {' '.join(fields)!r}"
        ) from None
    if len(values) == 1 and values[0] > 0:
        return 0, values[0]
    if len(values) == 2 and values[0] > 0 and values[1] > 0:
        return values[0], values[1]
    raise ValueError(
        f"{path}:{lineno}: header must be 'N' (View 1) or 'FOLDS N' (View 2) with positive "
        f"integers, got {' '.join(fields)!r}"
    )


def _view1_folds(n: int) -> np.ndarray:
    """Fold index for each of ``n`` pairs: 10 contiguous nearly equal chunks."""
    folds = np.empty(n, dtype=int)
    for k, chunk in enumerate(np.array_split(np.arange(n), VIEW1_FOLDS)):
        folds[chunk] = k
    return folds


def read_pairs(path: str | Path) -> list[Pair]:
    """Read an official LFW pair list (View 1 or View 2, detected from the header).

    Blank lines are ignored. View 1 files get folds 0-9 as described in the module docstring;
    View 2 files get the fold of the block they are in (0-based).

    Raises:
        ValueError: malformed header, a line with the wrong number of fields for its position,
            a non-integer image index, or a pair count that does not match the header. The
            message carries the file name and 1-based line number.
    """
    path = Path(path)
    lines = [
        (lineno, line.split())
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if line.strip()
    ]
    if not lines:
        raise ValueError(f"{path}:1: empty pair file")
    header_lineno, header = lines[0]
    n_folds, per_class = _parse_header(header, header_lineno, path)
    body = lines[1:]
    blocks = 1 if n_folds == 0 else n_folds
    expected = blocks * 2 * per_class
    if len(body) != expected:
        if len(body) > expected:
            where = body[expected][0]
        else:
            where = body[-1][0] if body else header_lineno
        raise ValueError(
            f"{path}:{where}: header line {header_lineno} promises {expected} pairs "
            f"({blocks} x ({per_class} same + {per_class} different)), file has {len(body)}"
        )
    pairs: list[Pair] = []
    view1_folds = _view1_folds(per_class) if n_folds == 0 else None
    for idx, (lineno, fields) in enumerate(body):
        block, pos = divmod(idx, 2 * per_class)
        same = pos < per_class
        within = pos if same else pos - per_class
        fold = block if view1_folds is None else int(view1_folds[within])
        pairs.append(_parse_pair(fields, same, fold, lineno, path))
    view = "View 1" if n_folds == 0 else "View 2"
    logger.debug("read %d pairs (%s) from %s", len(pairs), view, path)
    return pairs


def missing_images(root: str | Path, pairs: list[Pair]) -> list[str]:
    """Sorted unique relative paths referenced by ``pairs`` that do not exist under ``root``."""
    root = Path(root)
    referenced = {p.a for p in pairs} | {p.b for p in pairs}
    return sorted(rel for rel in referenced if not (root / rel).is_file())


def pair_scores(pairs: list[Pair], templates: dict[str, np.ndarray]) -> np.ndarray:
    """Cosine similarity per pair (dot product of the L2-normalised templates).

    ``templates`` maps the relative image paths used in :class:`Pair` (``a``/``b``) to embedding
    vectors; they need not be normalised already.

    Raises:
        KeyError: a pair references an image with no template.
        ValueError: a template has zero norm or is not finite.
    """
    unit: dict[str, np.ndarray] = {}

    def get(key: str) -> np.ndarray:
        if key not in unit:
            if key not in templates:
                raise KeyError(f"no template for image {key!r}")
            v = np.asarray(templates[key], dtype=np.float64).ravel()
            norm = float(np.linalg.norm(v))
            if not np.isfinite(norm) or norm == 0.0:
                raise ValueError(f"template for {key!r} has zero or non-finite norm")
            unit[key] = v / norm
        return unit[key]

    return np.array([float(np.dot(get(p.a), get(p.b))) for p in pairs], dtype=np.float64)
