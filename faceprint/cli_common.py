"""Pieces every ``faceprint`` subcommand module shares: tables, JSON output, the engine.

A subcommand module (``cli_*.py``) exposes ``register(sub, eval_sub, common)``; ``sub`` is the
top-level subparsers object, ``eval_sub`` the subparsers of ``faceprint eval`` and ``common`` the
parent parser carrying the shared options (``--model``, ``--fmr``, ``--threshold``, ``--json`` ...).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

GALLERY_HELP = "a SQLite file, or a postgresql://user:pass@host/db?gallery=NAME URL"


def table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    """A plain fixed-width text table."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def emit(args: argparse.Namespace, payload: object, text: str) -> None:
    """Print ``payload`` as JSON with ``--json``, else the human-readable ``text``."""
    print(json.dumps(payload, indent=2) if args.json else text)


def engine_from_args(args: argparse.Namespace):
    """The :class:`~faceprint.engine.Engine` the shared options describe."""
    from .engine import Engine
    from .profiles import register_model_config

    register_model_config(args.model_config)
    privacy = {}
    if hasattr(args, "key_file"):  # commands with the gallery privacy options (see cli_privacy)
        from .cli_privacy import gallery_privacy_from_args

        privacy = gallery_privacy_from_args(args)
    return Engine(args.model, fmr=args.fmr, threshold=args.threshold, **privacy)
