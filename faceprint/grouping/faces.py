"""Group the unknown faces of a photo folder or a video into people, and enrol a group by name.

    result = group_faces(engine, "photos/", "out/groups", gallery="people.db")   # write the folder
    name_cluster("out/groups", [3], "Ada", "people.db")                          # enrol cluster 3

:func:`group_faces` reads every image under a folder (recursively), one image, or every
``every``-th frame of a video; finds every usable face; drops the faces an optional gallery already
knows (best match at or above the engine's threshold); clusters the rest with
:mod:`faceprint.grouping.clustering`; and writes the output folder:

* ``clusters.json``: the model, the operating point, every face (source, frame and time for video,
  box, detector score, quality, crop file, cluster), the clusters largest first (members and a
  representative face), the faces left alone (``noise``), the known faces, and the faces the
  quality gate skipped (``skipped_faces``: where, box, quality, issues and reason; not clustered);
* ``templates.npy``: one template per face, row ``i`` for face ``i``, so naming needs no model;
* ``cluster_NNN/`` and ``noise/``: an aligned, padded crop of every face (``face_NNNNN.jpg``);
* ``contact_sheet.png``: one row of crops per cluster, to look at before naming.

:func:`name_cluster` enrols one or more clusters' templates as one person in one gallery
transaction, refusing a gallery of another model and a cluster already named.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..engine import Engine, GalleryLike
from ..errors import FaceprintError
from ..gallery import EnrolmentItem, PersonRecord, open_gallery
from ..pipeline.align import ARCFACE_112, align_face
from ..pipeline.image_io import IMAGE_SUFFIXES
from ..types import Face, Template
from .clustering import DEFAULT_ALGORITHM, DEFAULT_LINK_FMR, cluster, medoid

log = logging.getLogger(__name__)

__all__ = [
    "CROP_SIZE",
    "ClusterOutputError",
    "FaceEntry",
    "GroupingResult",
    "group_faces",
    "name_cluster",
]

CROP_SIZE = 160  # aligned crop: the 112-px recognition template with a 24-px margin
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"})
FORMAT_VERSION = 1


class ClusterOutputError(FaceprintError):
    """A cluster output folder that is missing, corrupt or already used, or a cluster id not in it."""

    code = "cluster_output_error"


@dataclass
class FaceEntry:
    """One face found in the input, as listed in ``clusters.json``."""

    index: int
    source: str
    box: list[float]
    score: float
    quality: float
    frame: int | None = None
    time_s: float | None = None
    crop: str | None = None
    cluster: int | None = None
    known: str | None = None
    known_score: float | None = None


@dataclass
class GroupingResult:
    """What :func:`group_faces` found and wrote."""

    out_dir: str
    model: str
    profile: str
    algorithm: str
    threshold: float
    link_fmr: float | None
    gallery: str | None
    gallery_threshold: float | None
    input: str
    inputs_read: int
    faces: list[FaceEntry]
    clusters: list[dict]
    noise: list[int]
    known: list[int]
    skipped: list[dict] = field(default_factory=list)
    skipped_faces: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The ``clusters.json`` content."""
        data = asdict(self)
        data["format_version"] = FORMAT_VERSION
        return data


def _padded_crop(face: Face) -> np.ndarray:
    margin = (CROP_SIZE - 112) / 2.0
    return align_face(face.image, face.landmarks, ARCFACE_112 + margin, (CROP_SIZE, CROP_SIZE))


def _images_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _read_faces(engine: Engine, source: Path, every: int, skipped: list[dict]) -> Iterator[tuple[dict, list[Face]]]:
    """(where, every detected face) for every image of a folder, one image, or sampled video frames."""
    if source.is_dir() or source.suffix.lower() in IMAGE_SUFFIXES:
        images = _images_under(source) if source.is_dir() else [source]
        for path in images:
            try:
                image = engine.load(path)
            except FaceprintError as exc:
                log.warning("skipping %s: %s", path, exc)
                skipped.append({"source": str(path), "reason": str(exc)})
                continue
            yield {"source": str(path)}, engine.finder.find(image)
        return
    from ..video.source import VideoSource

    with VideoSource(source) as video:
        for frame in video.frames(every=every):
            where = {"source": str(source), "frame": frame.index, "time_s": round(frame.time_s, 3)}
            yield where, engine.finder.find(frame.image, any_orientation=False, small_faces=False)  # video frames


def _contact_sheet(out: Path, entries: list[FaceEntry], rows: list[tuple[str, list[int]]],
                   per_row: int = 10) -> np.ndarray:
    """One labelled row of thumbnails (read back from the crops) per (label, face indices)."""
    thumb, label_w = 64, 150
    sheet = np.full((max(1, len(rows)) * (thumb + 4) + 4, label_w + per_row * (thumb + 4) + 4, 3), 255, np.uint8)
    for r, (label, members) in enumerate(rows):
        y = 4 + r * (thumb + 4)
        cv2.putText(sheet, label, (4, y + thumb // 2 + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        for c, index in enumerate(members[:per_row]):
            x = label_w + c * (thumb + 4)
            crop = cv2.imread(str(out / entries[index].crop))
            if crop is not None:
                rgb = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)
                sheet[y:y + thumb, x:x + thumb] = cv2.resize(rgb, (thumb, thumb), interpolation=cv2.INTER_AREA)
    return sheet


def _write_image(path: Path, rgb: np.ndarray) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise ClusterOutputError(f"could not write {path}")


def _collect(engine: Engine, source: Path, every: int, pending: Path, progress: bool
             ) -> tuple[list[FaceEntry], np.ndarray, int, list[dict], list[dict]]:
    """Every usable face of ``source``: entries, templates, inputs read, inputs skipped, faces skipped
    by the quality gate; crops to ``pending``."""
    from tqdm import tqdm

    entries: list[FaceEntry] = []
    vectors: list[np.ndarray] = []
    skipped: list[dict] = []
    skipped_faces: list[dict] = []
    inputs = 0
    for where, found in tqdm(_read_faces(engine, source, every, skipped), desc="reading", unit="input",
                             disable=not progress):
        inputs += 1
        faces = []
        for face in found:
            reason = engine.skip_reason(face)
            if reason is None:
                faces.append(face)
            else:
                skipped_faces.append({**where, "box": face.box.as_list(), "quality": round(float(face.quality), 4),
                                      "issues": list(face.quality_reasons), "reason": reason})
        for face, template in zip(faces, engine.embed_faces(faces), strict=True):
            index = len(entries)
            entries.append(FaceEntry(index=index, box=face.box.as_list(), score=round(float(face.score), 4),
                                     quality=round(float(face.quality), 4), **where))
            _write_image(pending / f"face_{index:05d}.jpg", _padded_crop(face))
            vectors.append(template.vector)
    x = np.stack(vectors) if vectors else np.zeros((0, engine.recognizer.dim), np.float32)
    log.info("%d faces in %d inputs (%d skipped by the quality gate)", len(entries), inputs, len(skipped_faces))
    return entries, x, inputs, skipped, skipped_faces


def _mark_known(engine: Engine, gallery: GalleryLike, entries: list[FaceEntry], x: np.ndarray) -> tuple[list[int], str]:
    """Mark the faces whose best gallery match reaches the engine's threshold; (their indices, gallery label)."""
    store = engine.open_gallery(gallery, create=False)
    label = str(getattr(store, "path", gallery))  # a PostgreSQL URL comes back with its password masked
    try:
        best = [c[0] if c else None for c in engine.search(store, x, k=1)] if len(store) and len(x) else []
    finally:
        if store is not gallery:
            store.close()
    known = []
    for entry, cand in zip(entries, best):
        if cand is not None and cand.score >= engine.threshold:
            entry.known, entry.known_score = cand.person, round(float(cand.score), 4)
            known.append(entry.index)
    return known, label


def _group(x: np.ndarray, unknown: list[int], threshold: float, algorithm: str, min_size: int
           ) -> tuple[list[dict], list[int]]:
    """Clusters (largest first, each with a representative) and the faces left alone."""
    labels = cluster(x[unknown], threshold, algorithm) if unknown else np.empty(0, np.int64)
    clusters, noise = [], [unknown[i] for i in np.flatnonzero(labels < 0)]
    for label in range(int(labels.max(initial=-1)) + 1):
        members = [unknown[i] for i in np.flatnonzero(labels == label)]
        if len(members) < min_size:
            noise.extend(members)
            continue
        clusters.append({"id": len(clusters), "size": len(members), "representative": members[medoid(x[members])],
                         "members": members, "named": None})
    return clusters, sorted(noise)


def _place_crops(out: Path, pending: Path, entries: list[FaceEntry], clusters: list[dict], noise: list[int],
                 known: list[int]) -> None:
    """Move every crop into its cluster's folder (or ``noise``/``known``); write the contact sheet."""
    folders = {m: f"cluster_{c['id']:03d}" for c in clusters for m in c["members"]}
    folders.update({m: "noise" for m in noise})
    folders.update({m: "known" for m in known})
    for index, folder in sorted(folders.items()):
        (out / folder).mkdir(exist_ok=True)
        entries[index].crop = f"{folder}/face_{index:05d}.jpg"
        (pending / f"face_{index:05d}.jpg").replace(out / entries[index].crop)
    pending.rmdir()
    rows = [(f"cluster {c['id']} ({c['size']})",
             [c["representative"]] + [m for m in c["members"] if m != c["representative"]]) for c in clusters[:40]]
    if noise:
        rows.append((f"noise ({len(noise)})", noise))
    _write_image(out / "contact_sheet.png", _contact_sheet(out, entries, rows))


def group_faces(
    engine: Engine,
    source: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    gallery: GalleryLike | None = None,
    algorithm: str = DEFAULT_ALGORITHM,
    link_fmr: float | None = DEFAULT_LINK_FMR,
    threshold: float | None = None,
    min_size: int = 2,
    every: int = 10,
    progress: bool = False,
) -> GroupingResult:
    """Find, filter, cluster and write the faces of ``source`` (folder, image or video) to ``out_dir``.

    Two faces are linked at ``threshold`` when given, else at the profile's threshold calibrated for
    ``link_fmr``. A gallery face is known when its best match reaches the engine's own threshold.
    Clusters smaller than ``min_size`` are listed as noise. ``out_dir`` must not hold a previous
    ``clusters.json``.
    """
    source, out = Path(source), Path(out_dir)
    if not source.exists():
        raise ClusterOutputError(f"{source}: no such file or folder")
    if (out / "clusters.json").exists():
        raise ClusterOutputError(f"{out} already holds a clustering (clusters.json); choose a new folder")
    if threshold is None and link_fmr is None:
        raise ValueError("give threshold or link_fmr")
    if min_size < 1 or every < 1:
        raise ValueError(f"min_size and every must be at least 1, got {min_size} and {every}")
    link = float(threshold if threshold is not None else engine.profile.threshold(link_fmr))

    pending = out / ".pending"  # crops are written as faces are found, moved to their folder at the end
    pending.mkdir(parents=True, exist_ok=True)
    entries, x, inputs, skipped, skipped_faces = _collect(engine, source, every, pending, progress)
    known, gallery_label = _mark_known(engine, gallery, entries, x) if gallery is not None else ([], None)
    clusters, noise = _group(x, [e.index for e in entries if e.known is None], link, algorithm, min_size)
    for c in clusters:
        for m in c["members"]:
            entries[m].cluster = c["id"]
    _place_crops(out, pending, entries, clusters, noise, known)
    np.save(out / "templates.npy", x.astype(np.float32))

    result = GroupingResult(
        out_dir=str(out), model=engine.model_id, profile=engine.profile.name, algorithm=algorithm,
        threshold=round(link, 5), link_fmr=link_fmr if threshold is None else None,
        gallery=gallery_label, gallery_threshold=round(engine.threshold, 5) if gallery is not None else None,
        input=str(source), inputs_read=inputs, faces=entries, clusters=clusters, noise=noise, known=known,
        skipped=skipped, skipped_faces=skipped_faces,
    )
    _write_json(out / "clusters.json", result.to_dict())
    return result


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)


def _read_output(out: Path) -> tuple[dict, np.ndarray]:
    try:
        data = json.loads((out / "clusters.json").read_text())
        templates = np.load(out / "templates.npy", allow_pickle=False)
    except FileNotFoundError as exc:
        raise ClusterOutputError(f"{out} is not a cluster output folder: {exc.filename} is missing") from exc
    except (ValueError, OSError) as exc:
        raise ClusterOutputError(f"{out}: unreadable clusters.json or templates.npy ({exc})") from exc
    if data.get("format_version") != FORMAT_VERSION or templates.ndim != 2 or len(templates) != len(data["faces"]):
        raise ClusterOutputError(f"{out}: clusters.json and templates.npy do not match (or unknown format)")
    return data, templates


def name_cluster(
    out_dir: str | os.PathLike, cluster_ids: Sequence[int], person: str, gallery: str | os.PathLike,
    *, metadata: dict | None = None,
) -> PersonRecord:
    """Enrol every face of the given clusters of ``out_dir`` as ``person`` in ``gallery``, in one transaction.

    Uses the stored templates (no model is run). The gallery is created for the clusters' model when
    missing; a gallery of another model raises :class:`~faceprint.errors.ModelMismatchError`. A
    cluster already named, or an id not in the output, raises :class:`ClusterOutputError`. The
    clusters are marked as named in ``clusters.json``.
    """
    out = Path(out_dir)
    data, templates = _read_output(out)
    by_id = {c["id"]: c for c in data["clusters"]}
    ids = list(dict.fromkeys(int(i) for i in cluster_ids))
    if not ids:
        raise ClusterOutputError("no cluster id given")
    for cid in ids:
        if cid not in by_id:
            raise ClusterOutputError(f"{out}: no cluster {cid} (clusters 0..{len(by_id) - 1})")
        named = by_id[cid]["named"]
        if named:
            raise ClusterOutputError(f"cluster {cid} was already enrolled as {named['person']!r} in {named['gallery']}")
    items = []
    for cid in ids:
        for index in by_id[cid]["members"]:
            face = data["faces"][index]
            where = face["source"] + (f"#frame={face['frame']}" if face.get("frame") is not None else "")
            items.append(EnrolmentItem(template=Template(templates[index], data["model"]), source=where,
                                       box=face["box"], quality=face["quality"]))
    store = open_gallery(gallery, model=data["model"], dim=int(templates.shape[1]))
    try:
        record = store.enroll(person, items, metadata=metadata)
        location = store.path  # a PostgreSQL URL comes back with its password masked
    finally:
        store.close()
    for cid in ids:
        by_id[cid]["named"] = {"person": person, "gallery": str(location)}
    _write_json(out / "clusters.json", data)
    log.info("enrolled clusters %s (%d faces) as %s", ids, len(items), person)
    return record
