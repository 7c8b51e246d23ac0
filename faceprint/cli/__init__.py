"""The ``faceprint`` command line.

Every documented error prints one line (``faceprint: error: ...``) and exits with status 2;
``--json`` prints machine-readable results on standard output instead of tables.

One module per command group: :mod:`~faceprint.cli.core` (detect, verify, enroll, identify,
people, delete, models, eval lfw / identify) and the modules in :data:`SUBCOMMAND_MODULES`, each
with ``register(sub, eval_sub, common)``; :mod:`~faceprint.cli.common` holds what they share.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from .._version import __version__
from ..errors import FaceprintError
from . import common, core

log = logging.getLogger("faceprint")

#: Exit status when standard output is closed by its reader: 128 + SIGPIPE, as a shell reports it.
EXIT_PIPE_CLOSED = 141

# Modules that add their own subcommands: each has register(sub, eval_sub, common).
SUBCOMMAND_MODULES = ("serve", "pad", "liveness", "video", "cluster", "privacy", "trust", "folder", "doctor",
                      "analyze", "micro", "eval_attributes")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    from ..profiles import DEFAULT_FMR, DEFAULT_PROFILE

    def shared_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
        # Accepted before or after the subcommand; after it, only what is given overrides.
        def default(value: object) -> object:
            return argparse.SUPPRESS if suppress else value

        parser.add_argument("--model", default=default(None),
                            help=f"recognition profile (default: the gallery's own profile, else {DEFAULT_PROFILE}; "
                                 f"see 'faceprint models')")
        parser.add_argument("--model-config", default=default(None),
                            help="JSON file registering your own ONNX embedder(s)")
        parser.add_argument("--fmr", type=float, default=default(DEFAULT_FMR),
                            help="target false-match rate (default 1e-3)")
        parser.add_argument("--threshold", type=float, default=default(None),
                            help="explicit cosine threshold (overrides --fmr)")
        parser.add_argument("--json", action="store_true", default=default(False),
                            help="print JSON instead of tables")
        parser.add_argument("-v", "--verbose", action="store_true", default=default(False),
                            help="log progress details")

    common = argparse.ArgumentParser(add_help=False)
    shared_options(common, suppress=True)
    parser = argparse.ArgumentParser(prog="faceprint", description="Offline face recognition.")
    parser.add_argument("--version", action="version", version=f"faceprint {__version__}")
    shared_options(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", required=True)

    esub = core.register(sub, common)
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub, esub, common)
    _mark_command_parsers(parser)
    return parser


def _mark_command_parsers(parser: argparse.ArgumentParser) -> None:
    """Give each subcommand's namespace its own parser (``command_parser``), for errors with the right usage."""
    for action in parser._subparsers._group_actions if parser._subparsers else ():
        for child in action.choices.values():
            child.set_defaults(command_parser=child)
            _mark_command_parsers(child)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``faceprint`` command."""
    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # no dnn backend chatter on stderr
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # the subcommand's usage, not the top-level one (argparse leaves these to the top parser)
        command = getattr(args, "command_parser", parser)
        known = [flag for action in command._actions for flag in action.option_strings if flag.startswith("--")]
        guesses = [g for flag in unknown if flag.startswith("--")
                   for g in common.did_you_mean(flag.split("=")[0], known)[:1]]
        command.error(f"unrecognized arguments: {' '.join(unknown)}"
                      + (f" (did you mean {' or '.join(guesses)}?)" if guesses else ""))
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        common.check_outputs(args)  # an output that cannot be written fails now, not after the work
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not as an ignored exception at exit
        return code
    except FaceprintError as exc:
        print(f"faceprint: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("faceprint: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of standard output stopped reading (``faceprint ... | head``)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python exits
        return EXIT_PIPE_CLOSED

