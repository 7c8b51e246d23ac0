"""Pieces every ``faceprint`` subcommand module shares: tables, JSON output, the engine, gallery privacy options.

A subcommand module (``faceprint/cli/*.py``) exposes ``register(sub, eval_sub, common)``; ``sub`` is the
top-level subparsers object, ``eval_sub`` the subparsers of ``faceprint eval`` and ``common`` the
parent parser carrying the shared options (``--model``, ``--fmr``, ``--threshold``, ``--json`` ...).
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .._text import ELLIPSIS, WIDTH, fields_block, table  # noqa: F401 (re-exported)
from ..errors import GalleryError, ModelMismatchError, OutputPathError, PersonNotFoundError, UnknownModelError
from ..privacy.cancelable import MODES, CancelableTransform
from ..privacy.crypto import KEY_ENV, load_key, read_key_file

GALLERY_HELP = "a SQLite file, or a postgresql://user:pass@host/db?gallery=NAME URL"

#: What an output option names: a "folder" of results, or one file of a kind (its writers decide the extension).
OUTPUT_KINDS = ("folder", "file", "image", "plot", "video")


def emit(args: argparse.Namespace, payload: object, text: str) -> None:
    """Print ``payload`` as JSON with ``--json``, else the human-readable ``text``."""
    print(json.dumps(payload, indent=2) if args.json else text)


def gallery_model(gallery: str | os.PathLike, privacy: dict | None = None) -> str | None:
    """The model id (``faceprint-fast-v1`` ...) of the existing gallery ``gallery``; None when it does not exist yet.

    ``gallery`` is a SQLite file or a ``postgresql://`` URL; ``privacy`` the ``key=`` / ``transform=``
    arguments of :func:`faceprint.gallery.open_gallery`. A SQLite file that is missing or empty, or a
    PostgreSQL gallery that cannot be opened, gives None (the command then reports its own error);
    an encrypted gallery without its key raises :class:`~faceprint.privacy.crypto.GalleryKeyRequiredError`.
    """
    from ..gallery import is_postgres_url, open_gallery

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
    no registered profile makes the gallery's model, or when the gallery's scores are fair-normalised
    and ``--fair`` is not given, or the reverse (the message says which to use).
    """
    from ..engine import fair_hint
    from ..matching.normalisation import fair_model_id, is_fair_model, plain_model_id
    from ..profiles import DEFAULT_PROFILE, get, names, register_model_config, reenrol_hint

    register_model_config(args.model_config)
    model_id = gallery_model(gallery, privacy) if gallery is not None else None
    if model_id is None:
        return args.model or DEFAULT_PROFILE
    fair = bool(getattr(args, "fair", False))
    if is_fair_model(model_id) != fair:
        wanted = fair_model_id(model_id) if fair else plain_model_id(model_id)
        raise ModelMismatchError(f"gallery {gallery}: {fair_hint(model_id, wanted)}")
    model_id = plain_model_id(model_id)
    own = next((name for name in names() if get(name).model_id == model_id), None)
    hint = reenrol_hint(model_id)  # a gallery of a replaced profile: refused unless --model names that profile
    if own is None and hint and (args.model is None or get(args.model).model_id != model_id):
        raise ModelMismatchError(f"gallery {gallery}: {hint}")
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
    from ..engine import Engine

    privacy = gallery_privacy_from_args(args) if hasattr(args, "key_file") else {}
    profile = resolve_profile(args, gallery, privacy)
    return Engine(profile, fmr=args.fmr, threshold=args.threshold, fair=bool(getattr(args, "fair", False)), **privacy)


def add_fair_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--fair``: compare through the profile's fair score normaliser (``Engine(fair=True)``)."""
    parser.add_argument("--fair", action="store_true",
                        help="fair scores: compare through the profile's shipped fair score normaliser, with its own "
                             "calibrated thresholds (same false-match rate in every region of the template space); "
                             "a gallery enrolled with --fair needs it, one enrolled without refuses it")


def add_gallery_privacy_options(parser: argparse.ArgumentParser, *, audit: bool = True) -> None:
    """Add ``--key-file``, ``--transform-key-file``, ``--transform-mode`` (and ``--audit-log``) to ``parser``."""
    parser.add_argument("--key-file", help=f"gallery encryption key file (default: ${KEY_ENV} if set)")
    parser.add_argument("--transform-key-file",
                        help="key file of the gallery's cancelable template transform, if it has one")
    parser.add_argument("--transform-mode", choices=MODES, default="rotate",
                        help="cancelable transform mode (default rotate)")
    if audit:
        parser.add_argument("--audit-log", help="append a record of this command to this audit log "
                                                "(default: $FACEPRINT_AUDIT_LOG if set)")


def gallery_privacy_from_args(args: argparse.Namespace) -> dict:
    """``{"key": GalleryKey | None, "transform": CancelableTransform | None}`` from the options above."""
    key = load_key(getattr(args, "key_file", None))
    transform_file = getattr(args, "transform_key_file", None)
    transform = (CancelableTransform(read_key_file(transform_file), getattr(args, "transform_mode", "rotate"))
                 if transform_file else None)
    return {"key": key, "transform": transform}


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


def _writable_folder(folder: Path, option: str, shown: str) -> None:
    """Create ``folder`` (and its parents) if needed and check that a file can be made in it."""
    if folder.exists() and not folder.is_dir():
        raise OutputPathError(f"{option} {shown}: {folder} is a file, not a folder; give a path in a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise OutputPathError(f"{option} {shown}: cannot write in folder {folder} ({exc.strerror or exc}); "
                              f"give a path in a folder you can write to") from None


def _file_types(kind: str) -> tuple[list[str], object]:
    """The extensions a file ``kind`` accepts (for the message) and a test ``path -> bool`` (None: any)."""
    if kind == "image":
        import cv2

        return [".png", ".jpg", ".webp", ".bmp", ".tif"], lambda path: bool(cv2.haveImageWriter(path))
    if kind == "plot":
        from matplotlib.backend_bases import FigureCanvasBase

        types = sorted(FigureCanvasBase.get_supported_filetypes())
        return [f".{t}" for t in ("png", "svg", "pdf")], lambda path: Path(path).suffix.lower()[1:] in types
    if kind == "video":
        from ..video.draw import FOURCC

        return list(FOURCC), lambda path: Path(path).suffix.lower() in FOURCC
    return [], None


def check_output(path: str | os.PathLike, option: str, kind: str = "file") -> Path:
    """Check, before any work, that ``option`` (e.g. ``"--out"``) can write ``path``; returns it as a Path.

    ``kind`` is one of :data:`OUTPUT_KINDS`: ``"folder"`` (created if missing, with its parents),
    else a file whose parent folder exists or is created here, that is not a folder, and whose
    extension has a writer (``"image"``: OpenCV's image writers, ``"plot"``: matplotlib's,
    ``"video"``: the annotated-video codecs; ``"file"``: any). Raises
    :class:`~faceprint.errors.OutputPathError` naming the option, the path and what to give instead.
    """
    if kind not in OUTPUT_KINDS:
        raise ValueError(f"unknown output kind {kind!r}; one of {OUTPUT_KINDS}")
    target = Path(path).expanduser()
    shown = str(path)
    if kind == "folder":
        _writable_folder(target, option, shown)
        return target
    if target.is_dir() or shown.endswith(("/", os.sep)):
        raise OutputPathError(f"{option} {shown} is a folder; give a file name in it"
                              + (f", e.g. {target / ('out' + _file_types(kind)[0][0])}" if kind != "file" else ""))
    examples, accepts = _file_types(kind)
    if accepts is not None and not accepts(str(target)):
        what = f"no {kind} writer for extension {target.suffix!r}" if target.suffix else "the name has no extension"
        raise OutputPathError(f"{option} {shown}: {what}; end the name with one of {', '.join(examples)}")
    _writable_folder(target.parent, option, shown)
    if target.exists() and not os.access(target, os.W_OK):
        raise OutputPathError(f"{option} {shown}: the file is read-only; give another name or make it writable")
    return target


def add_output_option(parser: argparse.ArgumentParser, *flags: str, kind: str, **kwargs) -> argparse.Action:
    """Add an output option (``--out`` ...) that :func:`check_outputs` checks before the command runs.

    ``kind`` as in :func:`check_output`; ``kwargs`` go to :meth:`argparse.ArgumentParser.add_argument`.
    """
    action = parser.add_argument(*flags, **kwargs)
    outputs = parser.get_default("output_options") or ()
    parser.set_defaults(output_options=(*outputs, (action.dest, action.option_strings[0], kind)))
    return action


def check_outputs(args: argparse.Namespace) -> None:
    """Run :func:`check_output` on every output option the command was given (the dispatcher calls it first)."""
    for dest, option, kind in getattr(args, "output_options", ()):
        value = getattr(args, dest, None)
        if value is not None:
            check_output(value, option, kind)


def parent_without(parent: argparse.ArgumentParser, *flags: str) -> argparse.ArgumentParser:
    """A copy of the shared-options ``parent`` parser without the options ``flags`` (a command that ignores them).

    ``faceprint analyze`` computes no template, so ``--model``, ``--fmr`` and ``--threshold`` are not offered.
    """
    copy = argparse.ArgumentParser(add_help=False)
    for action in parent._actions:
        if not set(action.option_strings) & set(flags):
            copy._add_action(action)
    return copy
