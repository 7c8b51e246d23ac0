"""Pieces every ``faceprint`` subcommand module shares: tables, JSON output, the engine.

A subcommand module (``cli_*.py``) exposes ``register(sub, eval_sub, common)``; ``sub`` is the
top-level subparsers object, ``eval_sub`` the subparsers of ``faceprint eval`` and ``common`` the
parent parser carrying the shared options (``--model``, ``--fmr``, ``--threshold``, ``--json`` ...).
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import textwrap
from collections.abc import Sequence

from .errors import GalleryError, ModelMismatchError, PersonNotFoundError, UnknownModelError

GALLERY_HELP = "a SQLite file, or a postgresql://user:pass@host/db?gallery=NAME URL"
WIDTH = 100  # columns every table and block of text printed by the CLI fits in
ELLIPSIS = "\u2026"
MIN_COLUMN = 4  # a column is never truncated below this many characters


def _fit(cell: str, width: int) -> str:
    """``cell`` cut to ``width`` characters, its last one an ellipsis when anything was cut."""
    return cell if len(cell) <= width else cell[: width - 1] + ELLIPSIS


def table(rows: Sequence[Sequence[object]], header: Sequence[str], width: int = WIDTH) -> str:
    """A plain fixed-width text table no wider than ``width`` characters.

    Columns are separated by two spaces. When the natural table is wider than ``width``, the
    widest column is narrowed one character at a time (never below ``MIN_COLUMN``, so a table of
    very many columns can still exceed ``width``) and cells longer than their column end in an
    ellipsis. Use :func:`fields_block` for values that must be read in full.
    """
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    while sum(widths) + 2 * (len(widths) - 1) > width and max(widths, default=0) > MIN_COLUMN:
        widths[widths.index(max(widths))] -= 1
    lines = ["  ".join(_fit(c, w).ljust(w) for c, w in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def fields_block(title: str, fields: Sequence[tuple[str, str]], width: int = WIDTH) -> str:
    """A title line, then one indented ``name  value`` line per field, long values wrapped to ``width``.

    For records whose values are too long for a table column (sources, licences): nothing is cut.
    """
    label = max((len(name) for name, _ in fields), default=0)
    lines = [title]
    for name, value in fields:
        first = f"  {name.ljust(label)}  "
        lines.append(textwrap.fill(str(value), width=width, initial_indent=first,
                                   subsequent_indent=" " * len(first), break_on_hyphens=False))
    return "\n".join(lines)


def emit(args: argparse.Namespace, payload: object, text: str) -> None:
    """Print ``payload`` as JSON with ``--json``, else the human-readable ``text``."""
    print(json.dumps(payload, indent=2) if args.json else text)


def gallery_model(gallery: str | os.PathLike, privacy: dict | None = None) -> str | None:
    """The model id (``faceprint-fast-v1`` ...) of the existing gallery ``gallery``; None when it does not exist yet.

    ``gallery`` is a SQLite file or a ``postgresql://`` URL; ``privacy`` the ``key=`` / ``transform=``
    arguments of :func:`faceprint.gallery.open_gallery`. A SQLite file that is missing or empty, or a
    PostgreSQL gallery that cannot be opened, gives None (the command then reports its own error);
    an encrypted gallery without its key raises :class:`~faceprint.crypto.GalleryKeyRequiredError`.
    """
    from .gallery import is_postgres_url, open_gallery

    if is_postgres_url(gallery):
        try:
            with open_gallery(gallery) as store:
                return store.model
        except GalleryError:
            return None
    if not os.path.isfile(gallery) or os.path.getsize(gallery) == 0:
        return None
    with open_gallery(gallery, **(privacy or {})) as store:
        return store.model


def resolve_profile(args: argparse.Namespace, gallery: str | os.PathLike | None = None,
                    privacy: dict | None = None) -> str:
    """The recognition profile a command runs: ``--model``, else the profile that made ``gallery``, else the default.

    A gallery can only be searched or extended with the profile that made it, so without
    ``--model`` an existing gallery's profile is used. Registers ``--model-config`` first. Raises
    :class:`~faceprint.errors.ModelMismatchError` when ``--model`` names another profile than the
    gallery's (the message says what to pass) and :class:`~faceprint.errors.UnknownModelError` when
    no registered profile makes the gallery's model.
    """
    from .profiles import DEFAULT_PROFILE, get, names, register_model_config

    register_model_config(args.model_config)
    model_id = gallery_model(gallery, privacy) if gallery is not None else None
    if model_id is None:
        return args.model or DEFAULT_PROFILE
    own = next((name for name in names() if get(name).model_id == model_id), None)
    if args.model is None:
        if own is None:
            raise UnknownModelError(f"gallery {gallery} was made with model {model_id!r}, which no profile here "
                                    f"makes; register its embedder with --model-config FILE")
        return own
    wanted = get(args.model).model_id
    if wanted != model_id:
        made = f"profile {own!r} (model {model_id})" if own else f"model {model_id!r}"
        fix = f"drop --model or pass --model {own}" if own else "register its embedder with --model-config FILE"
        raise ModelMismatchError(f"gallery {gallery} was made with {made}, not with profile {args.model!r} "
                                 f"(model {wanted}); {fix}")
    return args.model


def engine_from_args(args: argparse.Namespace, gallery: str | os.PathLike | None = None):
    """The :class:`~faceprint.engine.Engine` the shared options describe.

    ``gallery``: the command's gallery, if it has one; without ``--model`` the engine then runs the
    profile that made it (see :func:`resolve_profile`, whose errors it raises).
    """
    from .engine import Engine

    privacy = {}
    if hasattr(args, "key_file"):  # commands with the gallery privacy options (see cli_privacy)
        from .cli_privacy import gallery_privacy_from_args

        privacy = gallery_privacy_from_args(args)
    profile = resolve_profile(args, gallery, privacy)
    return Engine(profile, fmr=args.fmr, threshold=args.threshold, **privacy)


def did_you_mean(name: str, known: Sequence[str]) -> list[str]:
    """Names of ``known`` that ``name`` was probably meant to be, best first (at most 3; ``[]`` for none).

    Names equal to ``name`` but for case come first, then close spellings
    (:func:`difflib.get_close_matches`, compared case-insensitively).
    """
    folded = {}
    for k in known:
        folded.setdefault(k.casefold(), []).append(k)
    same_case = folded.get(name.casefold(), [])
    close = difflib.get_close_matches(name.casefold(), list(folded), n=3, cutoff=0.6)
    out = list(same_case) + [k for c in close for k in folded[c] if k not in same_case]
    return out[:3]


def person_not_found(name: str, gallery: str | os.PathLike, known: Sequence[str]) -> PersonNotFoundError:
    """The error for a person ``name`` missing from ``gallery``: names the gallery and suggests the ``known`` names it may mean."""
    guesses = did_you_mean(name, known)
    listing = f"'faceprint people --gallery {gallery}' lists who is enrolled"
    case = "names are case-sensitive; " if any(g.casefold() == name.casefold() for g in guesses) else ""
    hint = f"did you mean {' or '.join(repr(g) for g in guesses)}? ({case}{listing})" if guesses else listing
    return PersonNotFoundError(f"no person named {name!r} in gallery {gallery}; {hint}")
