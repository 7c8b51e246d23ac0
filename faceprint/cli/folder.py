"""Folders in, answers out: ``faceprint identify --gallery G DIR`` and ``faceprint find IMAGE DIR``.

``identify DIR`` names every face of every image under ``DIR`` (sub-folders included; files whose
suffix is in :data:`faceprint.pipeline.image_io.IMAGE_SUFFIXES`) against a gallery: a table, ``--format
csv`` (one row per face) or JSON lines (``--json``: one object per image, printed as each image is
done). ``find IMAGE DIR`` lists the photos under ``DIR`` that show the person of ``IMAGE``, best
score first. A file that cannot be read is reported with its reason and the rest go on; a progress
bar is shown on a terminal only.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import FaceprintError, ImageDecodeError, ImageTooLargeError, UnsupportedInputError
from ..pipeline.image_io import IMAGE_SUFFIXES
from ..privacy.audit import audit_cli
from ..types import Identification
from .common import emit, engine_from_args, table

#: The errors one unreadable file raises: reported for that file, the others are still processed.
FILE_ERRORS = (ImageDecodeError, ImageTooLargeError, UnsupportedInputError)

CSV_COLUMNS = ("image", "face", "x", "y", "width", "height", "status", "person", "score", "nearest", "threshold",
               "note")


@dataclass(frozen=True)
class FolderImages:
    """The image files under a folder (sorted, recursive) and how many other files were passed over."""

    root: Path
    images: list[Path]
    other_files: int

    def label(self, path: Path) -> str:
        """``path`` relative to the folder, for tables (``path`` itself when it is not under it)."""
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)


def folder_images(root: Path) -> FolderImages:
    """Every file under ``root`` (recursively, sorted) whose suffix, any case, is in :data:`IMAGE_SUFFIXES`.

    Raises :class:`~faceprint.errors.FaceprintError` when there is none, naming the folder and the suffixes.
    """
    files = sorted(p for p in root.rglob("*") if p.is_file())
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    if not images:
        raise FaceprintError(f"{root}: no image file in this folder or its sub-folders (looked for "
                             f"{', '.join(sorted(IMAGE_SUFFIXES))}); give a folder of photos")
    return FolderImages(root, images, len(files) - len(images))


def _progress(items: list[Path], desc: str) -> Iterator[Path]:
    """``items`` with a tqdm progress bar on standard error when it is a terminal."""
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="img", disable=not sys.stderr.isatty())


def _out(line: str) -> None:
    """Print one line of streamed output (above the progress bar, if any) and flush it."""
    from tqdm import tqdm

    tqdm.write(line, file=sys.stdout)
    sys.stdout.flush()


def _status(r: Identification) -> tuple[str, str]:
    """(status, note) of one face: known, tie, unknown, skipped or rejected, and why."""
    if r.skipped:
        return "skipped", r.skipped
    if r.rejected:
        return "rejected", r.rejected
    if r.tied:
        return "tie", " = ".join(r.tied)
    return ("known", "") if r.person else ("unknown", "")


def _identity(r: Identification) -> str:
    """The identity column of the table: the name, ``a = b (tie)``, ``unknown``, ``skipped: why`` ..."""
    status, note = _status(r)
    if status == "known":
        return r.person or ""
    if status == "tie":
        return f"{note} (tie)"
    return f"{status}: {note}" if note else status


def identify_folder(args: argparse.Namespace) -> int:
    """``faceprint identify --gallery G PATH`` for a folder (every image under it) or with ``--format csv``.

    Prints a table, CSV rows or JSON lines (see the module docstring); files that cannot be read
    are listed with their reason. Returns exit status 0 (unreadable files included); raises the
    gallery's errors (:class:`~faceprint.errors.GalleryError`, model mismatch) and
    :class:`~faceprint.errors.FaceprintError` for a folder without images or ``--out`` with a folder.
    A reader that stops reading (``| head``) is handled by :func:`faceprint.cli.main`.
    """
    root = Path(args.image)
    if args.out:
        raise FaceprintError(f"--out writes the annotated copy of one image, in table or JSON form: for {root} "
                             f"{'(a folder)' if root.is_dir() else 'with --format csv'} drop --out")
    if root.is_dir():
        found = folder_images(root)
    else:
        found = FolderImages(root.parent, [root], 0)
    fmt = "json" if args.json else args.format
    engine = engine_from_args(args, args.gallery)
    writer = csv.writer(sys.stdout, lineterminator="\n") if fmt == "csv" else None
    if writer:
        writer.writerow(CSV_COLUMNS)
    rows, unreadable, matched = [], [], {}
    faces = known = unknown = skipped = 0
    with engine.open_gallery(args.gallery, create=False) as store:
        for path in _progress(found.images, "identifying"):
            try:
                results = engine.identify(path, store, k=args.top, require_live=args.require_live)
            except FILE_ERRORS as exc:
                unreadable.append((path, exc))
                if fmt == "json":
                    _out(json.dumps({"image": str(path), "error": {"code": exc.code, "message": str(exc)}}))
                elif writer:
                    writer.writerow([path, "", "", "", "", "", "unreadable", "", "", "", "", str(exc)])
                continue
            faces += len(results)
            for r in results:
                if r.person:
                    matched.setdefault(r.person, set()).add(path)
            known += sum(r.is_known for r in results)
            skipped += sum(bool(r.skipped or r.rejected) for r in results)
            unknown += sum(not r.is_known and not r.skipped and not r.rejected for r in results)
            if fmt == "json":
                _out(json.dumps({"image": str(path), "results": [r.to_dict() for r in results]}))
            elif writer:
                for i, r in enumerate(results):
                    status, note = _status(r)
                    best = r.best
                    writer.writerow([path, i, *r.face.box.as_list(), status, r.person or "",
                                     f"{best.score:.4f}" if best else "", best.person if best else "",
                                     f"{r.threshold:.4f}", note])
                if not results:
                    writer.writerow([path, "", "", "", "", "", "no face", "", "", "", f"{engine.threshold:.4f}", ""])
                sys.stdout.flush()
            else:
                for i, r in enumerate(results):
                    best = r.best
                    rows.append((found.label(path), i, [round(v) for v in r.face.box.as_list()], _identity(r),
                                 f"{best.score:.3f}" if best else "-", best.person if best else "-"))
                if not results:
                    rows.append((found.label(path), "-", "-", "no face", "-", "-"))
    audit_cli(args, "identify", details={"folder": str(root), "images": len(found.images), "faces": faces,
                                         "matched": sorted(matched)})
    if fmt == "table":
        text = table(rows, ["image", "#", "box [x, y, w, h]", "identity", "score", "nearest"])
        text += (f"\n{len(found.images)} image(s) in {root}, {faces} face(s): {known} known, {unknown} unknown, "
                 f"{skipped} skipped; a face is known when its score reaches the threshold {engine.threshold:.4f} "
                 f"(FMR {engine.fmr:g}, model {engine.model_id})")
        if matched:
            text += "\npeople: " + ", ".join(f"{name} ({len(paths)} image(s))" for name, paths in sorted(matched.items()))
        if found.other_files:
            text += f"\n{found.other_files} other file(s) passed over (not an image file name)"
        if unreadable:
            text += f"\n{len(unreadable)} file(s) could not be read:\n" + "\n".join(
                f"  {found.label(p)}: {exc}" for p, exc in unreadable)
        print(text)
    return 0


@dataclass(frozen=True)
class FoundFace:
    """A face in a searched photo that scores at or above the threshold against the probe."""

    photo: str
    box: list[float]
    score: float

    def to_dict(self) -> dict:
        """A JSON-ready description."""
        return {"photo": self.photo, "box": self.box, "score": round(self.score, 4)}


def cmd_find(args: argparse.Namespace) -> int:
    """``faceprint find IMAGE DIR``: the photos under DIR that show the person in IMAGE, best score first.

    Every usable face of every image under DIR is compared with the single face of IMAGE (or its
    largest with ``--largest``). Returns 0 when at least one face matches, 1 when none does.
    """
    probe_path, root = Path(args.image), Path(args.folder)
    if probe_path.is_dir():
        raise UnsupportedInputError(f"{probe_path} is a folder: give first one photo of the person to find, "
                                    f"then the folder to search (faceprint find PHOTO FOLDER)")
    if not root.is_dir():
        raise UnsupportedInputError(f"{root} is not a folder: give the folder of photos to search as the second "
                                    f"argument; to compare two photos use 'faceprint verify {probe_path} {root}'")
    found = folder_images(root)
    engine = engine_from_args(args)
    probe = engine.embed(probe_path, largest=args.largest)
    matches, unreadable = [], []
    faces = low_quality = 0
    best_miss: FoundFace | None = None
    for path in _progress(found.images, "searching"):
        try:
            detected = engine.detect(path)
        except FILE_ERRORS as exc:
            unreadable.append({"photo": str(path), "error": exc.code, "reason": str(exc)})
            continue
        usable = [f for f in detected if engine.gate.passes(f)]
        faces += len(usable)
        low_quality += len(detected) - len(usable)
        for face, template in zip(usable, engine.embed_faces(usable) if usable else [], strict=True):
            hit = FoundFace(str(path), face.box.as_list(), engine.compare(probe, template))
            if hit.score >= engine.threshold:
                matches.append(hit)
            elif best_miss is None or hit.score > best_miss.score:
                best_miss = hit
    matches.sort(key=lambda m: -m.score)
    payload = {"probe": str(probe_path), "folder": str(root), "threshold": round(engine.threshold, 4),
               "fmr": engine.fmr, "model": engine.model_id, "images": len(found.images), "faces": faces,
               "faces_skipped_low_quality": low_quality, "matches": [m.to_dict() for m in matches],
               "unreadable": unreadable}
    rows = [(found.label(Path(m.photo)), [round(v) for v in m.box], f"{m.score:.3f}", f"{engine.threshold:.3f}")
            for m in matches]
    text = table(rows, ["photo", "box [x, y, w, h]", "score", "threshold"]) + "\n" if matches else ""
    text += (f"{len({m.photo for m in matches})} photo(s) of {len(found.images)} show the person in {probe_path} "
             f"({len(matches)} of {faces} face(s) at or above the threshold {engine.threshold:.4f}, "
             f"FMR {engine.fmr:g}, model {engine.model_id})")
    if not matches and best_miss is not None:
        text += (f"\nclosest: {found.label(Path(best_miss.photo))} {[round(v) for v in best_miss.box]} at "
                 f"{best_miss.score:.3f}; "
                 f"a higher --fmr (e.g. 1e-2) lowers the threshold")
    if low_quality:
        text += f"\n{low_quality} face(s) too poor to compare (quality gate)"
    if unreadable:
        text += f"\n{len(unreadable)} file(s) could not be read:\n" + "\n".join(
            f"  {found.label(Path(u['photo']))}: {u['reason']}" for u in unreadable)
    emit(args, payload, text)
    return 0 if matches else 1


def register(sub, eval_sub, common) -> None:
    """Add ``faceprint find`` (``identify DIR`` is routed here by :func:`faceprint.cli.cmd_identify`)."""
    p = sub.add_parser("find", parents=[common], help="which photos in a folder show the person in this photo? "
                                                      "(exit 0 found, 1 none)")
    p.add_argument("image", help="a photo of the person to find (one face, or --largest)")
    p.add_argument("folder", help="folder of photos to search, sub-folders included")
    p.add_argument("--largest", action="store_true", help="use the largest face of IMAGE when there are several")
    p.set_defaults(func=cmd_find)
