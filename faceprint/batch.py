"""Batch enrolment of a folder-per-person tree, using several worker processes.

    from faceprint.batch import enrol_tree
    summary = enrol_tree("photos/", "people.db", profile="fast", workers=4)
    print(summary.to_dict())

``photos/NAME/*.jpg`` enrols person ``NAME``. The work is split in two:

- **Workers** (``ProcessPoolExecutor`` with the ``spawn`` start method, default one per CPU core,
  capped to the number of images) each build their own :class:`~faceprint.engine.Engine` once, in
  the pool initializer, with OpenCV and OpenMP limited to one thread, so N workers use N cores.
  A worker turns one image into a picklable :class:`ImageResult`: a template (vector, model id,
  box, quality) or a skip reason. Workers never touch the gallery.
- **The parent** reads results in job order (people one after another) and writes them to the
  gallery in **chunks**: the faces that arrived since the last write (possibly of several people),
  once there are ``chunk_size`` (64) of them or ``flush_every_s`` (2 s) have passed, written by one
  :meth:`Gallery.enroll_many` call, i.e. one transaction (one fsync per chunk, not per person: a
  tree of many small folders is not slowed down by commits). A crash or kill loses at most the
  chunk being collected, never anything committed; a chunk is never half-written.

**Resumability.** Each face enrolled here stores, in the gallery's ``faces.source`` column, the
canonical source key ``"<absolute path>|<size in bytes>|<mtime_ns>"`` (:func:`source_key`). Before
any work, the keys already in the gallery (:meth:`Gallery.sources`) are read and matching images
are skipped as ``already enrolled``. A file that was replaced or edited (new size or mtime) gets a
new key and is enrolled again (its old template stays). Images skipped for another reason (no
face, low quality, ...) are not recorded, so a re-run examines and reports them again.

**What is looked at.** :func:`scan_tree` takes the files directly inside each person folder whose
suffix is in :data:`~faceprint.pipeline.image_io.IMAGE_SUFFIXES` (JPEG, PNG, HEIC/HEIF, AVIF, WebP, TIFF, ...).
Every other entry is listed as skipped with its reason, never dropped silently: hidden files and
folders (``.DS_Store``, macOS ``._IMG_0001.HEIC``), files with another or no suffix, files directly
in the root, sub-folders of a person folder, and entries that are not regular files.

**Test hook.** With ``FACEPRINT_BATCH_PAUSE_AFTER="N:FD"`` in the environment, the parent commits
its chunk as soon as ``N`` faces have arrived, writes ``"N\n"`` to the inherited file descriptor
``FD`` and then blocks until it is killed. The kill-safety test uses it to SIGKILL a run at a known
point after a known commit, instead of racing the run's speed.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import (
    FaceprintError,
    ImageDecodeError,
    ImageTooLargeError,
    InvalidNameError,
    UnsupportedInputError,
)
from .gallery import stored_digests
from .gallery.names import normalise_name
from .pipeline.image_io import ACCEPTED_FORMATS, IMAGE_SUFFIXES

#: Skip reasons, in report order. The first five come from examining an image.
NO_FACE = "no face"
LOW_QUALITY = "low quality"
SEVERAL_FACES = "several faces"
UNREADABLE = "unreadable"
FAILED = "failed"
#: ... these from scanning the tree (the file is never opened) ...
UNSUPPORTED_EXTENSION = "unsupported extension"
HIDDEN = "hidden"
NOT_IN_PERSON_FOLDER = "not in a person folder"
NESTED_FOLDER = "nested folder"
NOT_A_FILE = "not a regular file"
#: ... and this from the gallery (not listed one by one).
ALREADY_ENROLLED = "already enrolled"
#: ... and these from the names and faces already enrolled (see enrol_tree).
INVALID_NAME = "invalid person name"
MATCHES_OTHER = "matches another person"
SCAN_REASONS = (UNSUPPORTED_EXTENSION, HIDDEN, NOT_IN_PERSON_FOLDER, NESTED_FOLDER, NOT_A_FILE)
SKIP_REASONS = (NO_FACE, LOW_QUALITY, SEVERAL_FACES, UNREADABLE, FAILED, *SCAN_REASONS, INVALID_NAME, MATCHES_OTHER,
                ALREADY_ENROLLED)
PAUSE_ENV = "FACEPRINT_BATCH_PAUSE_AFTER"

DEFAULT_CHUNK_SIZE = 64  # faces per transaction at most
DEFAULT_FLUSH_EVERY_S = 2.0  # ... and a transaction at least this often while results arrive
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def source_key(path: str | os.PathLike) -> str:
    """The canonical source string stored for an image file: ``"abs_path|size|mtime_ns"``."""
    st = os.stat(path)
    return f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}"


@dataclass(frozen=True)
class TreeScan:
    """What :func:`scan_tree` found.

    ``people``: ``[(person, [image paths])]`` for each person folder holding images, sorted by name.
    ``skipped``: one ``{"person", "image", "reason", "detail"}`` dict per entry that will not be
    enrolled, ``reason`` one of :data:`SCAN_REASONS`; ``person`` is None for entries of the root.
    """

    people: list[tuple[str, list[Path]]]
    skipped: list[dict]

    def describe_skipped(self) -> str:
        """``"3 unsupported extension (.txt, .raw), 1 hidden"``, or ``""`` when nothing was skipped."""
        counts = Counter(s["reason"] for s in self.skipped)
        parts = []
        for reason in SCAN_REASONS:
            if counts[reason]:
                suffixes = sorted({Path(s["image"]).suffix.lower() or "no suffix" for s in self.skipped
                                   if s["reason"] == reason})
                parts.append(f"{counts[reason]} {reason}"
                             + (f" ({', '.join(suffixes)})" if reason == UNSUPPORTED_EXTENSION else ""))
        return ", ".join(parts)


def _scan_skip(person: str | None, path: str | os.PathLike, reason: str, detail: str) -> dict:
    return {"person": person, "image": str(path), "reason": reason, "detail": detail}


def _classify(person: str | None, path: Path) -> dict | None:
    """The skip record for an entry that is not a person's image file, or None for one that is."""
    if path.name.startswith("."):
        what = "folder, not searched" if path.is_dir() else "file (system or editor metadata)"
        return _scan_skip(person, path, HIDDEN, f"hidden {what}")
    if path.is_dir():
        return None if person is None else _scan_skip(
            person, path, NESTED_FOLDER, "sub-folders of a person folder are not searched")
    if not path.is_file():
        return _scan_skip(person, path, NOT_A_FILE, "not a regular file (broken link, pipe, device ...)")
    if person is None:
        return _scan_skip(None, path, NOT_IN_PERSON_FOLDER,
                          "files directly in the tree are not enrolled: put them in a folder named after the person")
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        what = f"'{path.suffix}'" if path.suffix else "no suffix"
        return _scan_skip(person, path, UNSUPPORTED_EXTENSION,
                          f"{what} is not an image suffix faceprint reads; accepted formats: {ACCEPTED_FORMATS}")
    return None


def scan_tree(root: str | os.PathLike) -> TreeScan:
    """Find each person folder's images under ``root`` and every entry that will be skipped, and why.

    Raises :class:`FaceprintError` when ``root`` is not a folder. Reads names and file types only.
    """
    root = Path(root)
    if not root.is_dir():
        raise FaceprintError(f"{root}: not a folder")
    people, skipped = [], []
    for entry in sorted(root.iterdir()):
        skip = _classify(None, entry)
        if skip is not None:
            skipped.append(skip)
            continue
        images = []
        for path in sorted(entry.iterdir()):
            skip = _classify(entry.name, path)
            if skip is None:
                images.append(path)
            else:
                skipped.append(skip)
        if images:
            people.append((entry.name, images))
    return TreeScan(people, skipped)


def _pause_hook() -> tuple[int, int] | None:
    """``(faces, fd)`` from :data:`PAUSE_ENV` (see the module's test hook), or None when unset."""
    value = os.environ.get(PAUSE_ENV)
    if not value:
        return None
    try:
        faces, fd = (int(part) for part in value.split(":"))
    except ValueError:
        raise FaceprintError(f"{PAUSE_ENV}={value!r}: expected FACES:FD, two integers") from None
    return faces, fd


def _pause_forever(fd: int, faces: int) -> None:
    """Tell the test through ``fd`` that ``faces`` are committed, then block until killed."""
    os.write(fd, f"{faces}\n".encode())
    os.close(fd)
    threading.Event().wait()


@dataclass(frozen=True)
class ImageJob:
    """One image to process."""

    person: str
    path: str
    source: str


@dataclass(frozen=True)
class ImageResult:
    """What a worker made of one image: a template, or a skip ``reason`` with ``detail``."""

    person: str
    path: str
    source: str
    vector: np.ndarray | None = None
    model: str | None = None
    box: list[float] | None = None
    quality: float | None = None
    reason: str | None = None
    detail: str | None = None
    sha256: str | None = None  # of the decoded image (faceprint.engine.image_digest)

    @property
    def ok(self) -> bool:
        return self.reason is None


# -- worker side -----------------------------------------------------------------------------

_ENGINE = None
_INIT_ERROR: BaseException | None = None


def _init_worker(profile, model_config: str | None, min_quality: float | None) -> None:
    """Pool initializer: one Engine per process, models loaded once, one thread each."""
    global _ENGINE, _INIT_ERROR
    for var in _THREAD_VARS:
        os.environ[var] = "1"
    try:
        import cv2

        cv2.setNumThreads(1)
        from .engine import Engine
        from .pipeline.quality import QualityGate
        from .profiles import register_model_config

        register_model_config(model_config)
        gate = QualityGate(min_quality=min_quality) if min_quality is not None else None
        engine = Engine(profile, gate=gate)
        engine.finder, engine.recognizer  # load the models now, once
        _ENGINE = engine
    except BaseException as exc:  # reported by the first task, not as an opaque BrokenProcessPool
        _INIT_ERROR = exc


def _process(job: ImageJob, largest: bool = False) -> ImageResult:
    """Worker task: detect, gate and embed the one face of ``job``'s image."""
    if _INIT_ERROR is not None:
        raise _INIT_ERROR
    engine = _ENGINE

    def skip(reason: str, detail: str) -> ImageResult:
        detail = detail.removeprefix(f"{job.path}: ")  # errors name their source; the report does too
        return ImageResult(job.person, job.path, job.source, reason=reason, detail=detail)

    try:
        image = engine.load(job.path)
    except (ImageDecodeError, ImageTooLargeError, UnsupportedInputError) as exc:
        return skip(UNREADABLE, str(exc))
    try:
        faces = engine.finder.find(image, small_faces=False)  # the subject, as Engine.single_face looks for it
        usable = [f for f in faces if engine.gate.passes(f)]
        if not usable:
            if faces:
                why = ", ".join(sorted({r for f in faces for r in f.quality_reasons})) or "low score"
                return skip(LOW_QUALITY, f"{len(faces)} face(s) found, none usable ({why})")
            return skip(NO_FACE, "no face found")
        if len(usable) > 1 and not largest:
            return skip(SEVERAL_FACES, f"{len(usable)} usable faces (use --largest to take the biggest)")
        face = usable[0]
        template = engine.embed_faces([face])[0]
    except FaceprintError as exc:
        return skip(FAILED, str(exc))
    from .engine import image_digest

    return ImageResult(job.person, job.path, job.source, vector=np.asarray(template.vector, np.float32),
                       model=template.model, box=face.box.as_list(), quality=float(face.quality),
                       sha256=image_digest(image))


@contextmanager
def _single_threaded_env() -> Iterator[None]:
    """Spawned workers inherit this environment: one OpenMP/BLAS thread each."""
    saved = {k: os.environ.get(k) for k in _THREAD_VARS}
    os.environ.update({k: "1" for k in _THREAD_VARS})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def process_images(
    jobs: Sequence[ImageJob],
    *,
    profile="accurate",
    workers: int | None = None,
    largest: bool = False,
    min_quality: float | None = None,
    model_config: str | None = None,
) -> Iterator[ImageResult]:
    """Process ``jobs`` in ``workers`` processes; yield one result per job, in job order."""
    if not jobs:
        return
    from concurrent.futures import ProcessPoolExecutor

    n = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    chunksize = max(1, min(8, len(jobs) // (n * 8)))
    with _single_threaded_env():
        pool = ProcessPoolExecutor(
            max_workers=n, mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker, initargs=(profile, model_config, min_quality))
    try:
        with _single_threaded_env():  # workers are spawned as the jobs are submitted
            results = pool.map(functools.partial(_process, largest=largest), jobs, chunksize=chunksize)
        yield from results
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# -- parent side -----------------------------------------------------------------------------


def _duplicate(res: ImageResult, store, pending: list, digests: dict[str, set[str]], engine,
               allow_duplicate: bool) -> str | None:
    """Why the face of ``res`` must not be enrolled: :data:`ALREADY_ENROLLED`, or the detail of a match
    with another person (in ``store`` or the ``pending`` chunk) at or above ``engine``'s duplicate
    threshold, scored as ``engine`` scores (fair-normalised or plain); None when new.

    ``digests`` caches each person's image digests (read from ``store`` on first use); the digest
    of ``res`` is added to it when ``res`` is to be enrolled.
    """
    person = res.person
    if person not in digests:
        digests[person] = stored_digests(store, person) if store is not None else set()
    if res.sha256 is not None and res.sha256 in digests[person]:
        return ALREADY_ENROLLED
    if not allow_duplicate:
        threshold = engine.duplicate_threshold
        found = engine.search(store, res.vector[None, :], k=2)[0] if store is not None else []
        scores = [(c.score, c.person) for c in found if c.person != person]
        scores += [(float(np.max(engine.scores(np.stack([i.template.vector for i in items]), res.vector))), other)
                   for other, items in pending if other != person]
        best = max(scores, default=None)
        if best is not None and best[0] >= threshold:
            return (f"the face already matches {best[1]!r} (similarity {best[0]:.4f} >= duplicate threshold "
                    f"{threshold:.4f}); "
                    f"the same person under two names? Re-run with --allow-duplicate if they are different people")
    if res.sha256 is not None:
        digests[person].add(res.sha256)
    return None


@dataclass
class BatchSummary:
    """The outcome of :func:`enrol_tree`."""

    gallery: str
    model: str
    workers: int
    images: int = 0
    faces_added: dict[str, int] = field(default_factory=dict)
    faces_total: dict[str, int] = field(default_factory=dict)
    skip_counts: Counter = field(default_factory=Counter)
    skipped: list[dict] = field(default_factory=list)  # every skip except "already enrolled"
    processed: int = 0
    elapsed_s: float = 0.0

    def skip(self, person: str | None, image: str | os.PathLike, reason: str, detail: str) -> None:
        """Count and list one skipped image (or folder entry) with its reason."""
        self.skip_counts[reason] += 1
        self.skipped.append(_scan_skip(person, image, reason, detail))

    @property
    def enrolled_faces(self) -> int:
        return sum(self.faces_added.values())

    @property
    def images_per_s(self) -> float:
        return self.processed / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def to_dict(self) -> dict:
        return {
            "gallery": self.gallery,
            "model": self.model,
            "workers": self.workers,
            "images": self.images,
            "enrolled_people": len(self.faces_added),
            "enrolled_faces": self.enrolled_faces,
            "enrolled": [{"person": p, "faces_added": n, "faces_total": self.faces_total.get(p, n)}
                         for p, n in self.faces_added.items()],
            "skipped_counts": {r: self.skip_counts[r] for r in SKIP_REASONS if self.skip_counts[r]},
            "skipped": self.skipped,
            "processed": self.processed,
            "elapsed_s": round(self.elapsed_s, 3),
            "images_per_s": round(self.images_per_s, 2),
        }


def enrol_tree(
    root: str | os.PathLike,
    gallery: str | os.PathLike,
    *,
    profile="accurate",
    workers: int | None = None,
    largest: bool = False,
    min_quality: float | None = None,
    model_config: str | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    flush_every_s: float = DEFAULT_FLUSH_EVERY_S,
    progress: bool = False,
    key=None,
    transform=None,
    allow_duplicate: bool = False,
    fair: bool = False,
) -> BatchSummary:
    """Enrol every person folder of ``root`` into the SQLite gallery at ``gallery`` (created if missing).

    Bad images, and every entry of the tree that is not a person's image file (see
    :func:`scan_tree`), are always skipped and reported; images whose :func:`source_key` is already in the
    gallery are skipped as ``already enrolled``. Writes one transaction per chunk: the faces that
    arrived since the last write, once there are ``chunk_size`` of them or ``flush_every_s`` seconds
    have passed (and at the end). ``key`` (a :class:`~faceprint.privacy.crypto.GalleryKey`) and
    ``transform`` (a :class:`~faceprint.privacy.cancelable.CancelableTransform`) go to the gallery.

    Folder names are person names in canonical form (:func:`faceprint.gallery.names.normalise_name`); a
    folder whose name cannot be one is skipped (``invalid person name``). A face whose image (same
    decoded pixels) is already enrolled for the person, or earlier in this run, counts as ``already
    enrolled``; unless ``allow_duplicate``, a face scoring at or above the profile's duplicate
    threshold (:attr:`faceprint.engine.Engine.duplicate_threshold`) against another person, in the
    gallery or earlier in this run, is skipped as ``matches another person``, naming them and the score.
    ``fair``: the gallery holds fair-normalised templates (``Engine(fair=True)``), and duplicates are
    scored that way.
    """
    from .engine import Engine
    from .gallery import EnrolmentItem, Gallery
    from .types import Template

    profile_engine = Engine(profile, fair=fair)  # resolves the profile name; loads no model
    model_id = profile_engine.model_id
    scan = scan_tree(root)
    people = scan.people
    if not people:
        skipped = scan.describe_skipped()
        raise FaceprintError(
            f"{root}: no person folders with images found"
            + (f"; skipped {len(scan.skipped)} entries: {skipped}" if skipped else "")
            + f". Put each person's photos ({ACCEPTED_FORMATS}) in a folder named after the person")
    pause = _pause_hook()
    gallery_path = os.fspath(gallery)
    exists = os.path.exists(gallery_path) and os.path.getsize(gallery_path) > 0
    store: Gallery | None = Gallery(gallery_path, model=model_id, key=key, transform=transform) if exists else None
    try:
        done = store.sources() if store is not None else set()
        summary = BatchSummary(gallery=gallery_path, model=model_id, workers=0)
        for skip in scan.skipped:
            summary.skip(**skip)
        jobs = []
        for folder, images in people:
            try:
                person = normalise_name(folder)
            except InvalidNameError as exc:
                summary.images += len(images)
                for path in images:
                    summary.skip(folder, path, INVALID_NAME, str(exc))
                continue
            for path in images:
                summary.images += 1
                try:
                    source = source_key(path)
                except OSError as exc:
                    summary.skip(person, path, UNREADABLE, f"cannot stat file ({exc.strerror or exc})")
                    continue
                if source in done:
                    summary.skip_counts[ALREADY_ENROLLED] += 1
                else:
                    jobs.append(ImageJob(person, str(path), source))
        summary.workers = max(1, min(workers or os.cpu_count() or 1, len(jobs))) if jobs else 0

        pending: list[tuple[str, list[EnrolmentItem]]] = []  # the chunk: (person, faces) in job order
        pending_faces = 0
        digests: dict[str, set[str]] = {}  # person -> image digests in the gallery or this run (read lazily)
        last_flush = time.monotonic()

        def flush() -> None:
            nonlocal store, pending, pending_faces, last_flush
            last_flush = time.monotonic()
            if not pending:
                return
            if store is None:
                store = Gallery(gallery_path, model=model_id, dim=pending[0][1][0].template.dim, key=key,
                                    transform=transform)
            records = store.enroll_many(pending)  # one transaction: the whole chunk or nothing
            for (person, items), record in zip(pending, records, strict=True):
                summary.faces_added[person] = summary.faces_added.get(person, 0) + len(items)
                summary.faces_total[person] = record.face_count
            pending, pending_faces = [], 0

        from tqdm import tqdm

        start = time.perf_counter()
        with tqdm(total=len(jobs), desc="enrolling", unit="img", file=sys.stderr, disable=not progress,
                  dynamic_ncols=True) as bar:
            results = process_images(jobs, profile=profile, workers=workers, largest=largest,
                                     min_quality=min_quality, model_config=model_config)
            try:
                for res in results:
                    duplicate = (_duplicate(res, store, pending, digests, profile_engine, allow_duplicate)
                                 if res.ok else None)
                    if duplicate == ALREADY_ENROLLED:
                        summary.skip_counts[ALREADY_ENROLLED] += 1
                    elif duplicate is not None:
                        summary.skip(res.person, res.path, MATCHES_OTHER, duplicate)
                    elif res.ok:
                        if not pending or pending[-1][0] != res.person:
                            pending.append((res.person, []))
                        pending[-1][1].append(EnrolmentItem(template=Template(res.vector, model_id),
                                                            source=res.source, box=res.box, quality=res.quality,
                                                            sha256=res.sha256))
                        pending_faces += 1
                    else:
                        summary.skip(res.person, res.path, res.reason, res.detail)
                    summary.processed += 1
                    if pause is not None and summary.enrolled_faces + pending_faces >= pause[0]:
                        flush()
                        _pause_forever(pause[1], summary.enrolled_faces)
                    if pending_faces >= chunk_size or time.monotonic() - last_flush >= flush_every_s:
                        flush()
                    bar.update(1)
                    if summary.skip_counts:
                        bar.set_postfix(skipped=sum(summary.skip_counts.values()), refresh=False)
                flush()
            finally:
                results.close()
        summary.elapsed_s = time.perf_counter() - start
        return summary
    finally:
        if store is not None:
            store.close()
