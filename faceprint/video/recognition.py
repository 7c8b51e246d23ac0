"""Who is in a video, and when: detection on a schedule, tracking, identity per track.

    from faceprint import Engine
    from faceprint.video.recognition import VideoRecognizer
    from faceprint.video.source import VideoSource

    engine = Engine("fast")
    with VideoSource("clip.mp4") as source, engine.open_gallery("people.db", create=False) as gallery:
        timeline = VideoRecognizer(engine, gallery).run(source)
    for track in timeline.tracks:
        print(track.track_id, track.person or "unknown", track.first_s, track.last_s)

Per frame: a scene-cut check on a thumbnail; optical flow moves every track's box
(:mod:`faceprint.video.tracker`); the detector runs only when the schedule says so. The schedule is
adaptive: the next detection comes after ``every`` frames when faces are still, sooner when they
move (so that no face moves more than ``motion_budget`` of its size between detections), at once
after a scene cut or when flow loses a face.

Identity is decided per track, never per frame. At detection frames a track's face is embedded
while the track has fewer than ``templates`` templates, and again every ``refresh_s`` seconds (or
when a clearly better-quality view appears). The track's template is the quality-weighted mean of
its unit templates (weight ``quality + weight_floor``), re-normalised; it is searched in the
gallery and the track is named when the best score reaches the engine's threshold (and keeps its
name while the score stays within ``keep_margin`` below it). One blurry frame moves a mean of
several templates only a little, so it cannot flip a name. Faces the
still-image quality gate would reject (small, soft video faces) are still embedded, with low
weight: in a video they are often all there is, and a mean over many frames recovers what one
frame lacks.

Live use: ``run(on_event=...)`` reports each confirmed track's identity when it is first decided,
when it changes and when the track ends (:class:`~faceprint.video.events.TrackEvent`; outputs in
:mod:`faceprint.video.events`), and ``run(stop=event)`` ends the run after the current frame once
the event is set, closing every track, so that a camera watched until Ctrl-C keeps its timeline.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

import cv2
import numpy as np

from ..engine import Engine
from ..errors import UnknownAttributeError
from ..gallery import GalleryStore
from ..models.pad_passive import TrackLiveness
from ..types import Box, Candidate, Face
from .events import EventKind, TrackEvent
from .expressions import TrackExpression
from .source import Frame, VideoSource
from .tracker import FlowPropagator, Tracker, TrackerConfig

log = logging.getLogger(__name__)

#: Face attributes a video run can follow over time (:attr:`VideoSettings.attributes`).
VIDEO_ATTRIBUTES = ("expression",)

VIDEO_PROFILE = "fast"  # SFace alone: about 20 ms per face on one core, the realistic choice for video


@dataclass(frozen=True)
class VideoSettings:
    """Knobs of the video pipeline (defaults suit 25-30 fps video of people talking or performing).

    ``every``: most analysed frames between detections; ``min_every``: fewest. ``motion_budget``: the
    fraction of its size a face may move between detections. ``stride``: analyse every
    ``stride``-th frame only. ``min_face``: shortest box side (pixels) worth embedding.
    ``templates``: templates a track collects before embedding only on refresh. ``refresh_s``:
    seconds between re-embeddings of a track. ``weight_floor``: added to quality to weight a
    template (0.5: a sharp frontal view counts at most three times a poor one, so no single frame,
    however its quality was judged, dominates a track). ``keep_margin``: a named track keeps its
    name while its aggregate score for that person stays within this much below the threshold
    (hysteresis: a name is not dropped and re-given as the score wavers). ``max_age_s``: seconds
    a track survives without a detection. ``cut_threshold``: mean absolute grey difference (0-255)
    of two 64x36 thumbnails that marks a scene cut. ``max_frames``: stop after this many source
    frames. ``prefetch``: frames decoded ahead on a second thread (0: none). ``liveness``: check
    passive liveness of every face at least ``min_face`` wide each time the detector runs, and keep
    the mean live score of each track (:class:`~faceprint.models.pad_passive.TrackLiveness`).
    ``attributes``: face attributes followed over time per track; ``("expression",)`` reads the
    expression of every face at least ``min_face`` wide (and as large as the network needs) each
    time the detector runs and keeps its smoothed series (:mod:`faceprint.video.expressions`).
    """

    every: int = 6
    min_every: int = 1
    motion_budget: float = 0.25
    stride: int = 1
    min_face: float = 20.0
    templates: int = 3
    refresh_s: float = 1.0
    weight_floor: float = 0.5
    keep_margin: float = 0.05
    max_age_s: float = 1.0
    cut_threshold: float = 20.0
    max_frames: int | None = None
    prefetch: int = 8
    liveness: bool = False
    attributes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = [a for a in self.attributes if a not in VIDEO_ATTRIBUTES]
        if unknown:
            raise UnknownAttributeError(f"video attribute(s) {', '.join(map(repr, unknown))} not followed over time: "
                                        f"choose from {','.join(VIDEO_ATTRIBUTES)}")
        if self.every < 1 or self.min_every < 1 or self.min_every > self.every:
            raise ValueError(f"need 1 <= min_every <= every, got {self.min_every} and {self.every}")
        if self.stride < 1:
            raise ValueError(f"stride must be at least 1, got {self.stride}")


@dataclass(frozen=True)
class Observation:
    """Where a track's face was in one analysed frame; ``detected`` when the detector saw it there."""

    frame: int
    time_s: float
    box: Box
    detected: bool

    def to_dict(self) -> dict:
        """A JSON-ready description."""
        return {"frame": self.frame, "t": round(self.time_s, 3), "box": self.box.as_list(), "detected": self.detected}


@dataclass
class TrackRecord:
    """One face followed through the video, with the identity decided from all its templates.

    ``score``: similarity of the track's aggregate template to ``person`` (or to the nearest
    enrolled person when unknown). ``best_score``: the highest single-template score for that
    person. ``label_changes``: (frame, person) each time the online decision changed, starting
    with the first decision. ``liveness``: the passive liveness of the track over its detected
    frames (None unless :attr:`VideoSettings.liveness`). ``expression``: the smoothed expression
    series (None unless ``"expression"`` is in :attr:`VideoSettings.attributes`).
    """

    track_id: int
    person: str | None = None
    score: float | None = None
    best_score: float | None = None
    nearest: str | None = None
    templates: int = 0
    observations: list[Observation] = field(default_factory=list)
    label_changes: list[tuple[int, str | None]] = field(default_factory=list)
    liveness: TrackLiveness | None = None
    expression: TrackExpression | None = None

    @property
    def first_s(self) -> float:
        """Time of the first observation."""
        return self.observations[0].time_s

    @property
    def last_s(self) -> float:
        """Time of the last observation."""
        return self.observations[-1].time_s

    @property
    def identity_switches(self) -> int:
        """Times the online name changed from one enrolled person to another within the track."""
        names = [p for _, p in self.label_changes if p is not None]
        return sum(a != b for a, b in itertools.pairwise(names))

    def to_dict(self) -> dict:
        """A JSON-ready description (boxes per analysed frame)."""
        return {
            "track_id": self.track_id,
            "person": self.person,
            "first_s": round(self.first_s, 3),
            "last_s": round(self.last_s, 3),
            "first_frame": self.observations[0].frame,
            "last_frame": self.observations[-1].frame,
            "score": None if self.score is None else round(self.score, 4),
            "best_score": None if self.best_score is None else round(self.best_score, 4),
            "nearest": self.nearest,
            "templates": self.templates,
            "identity_switches": self.identity_switches,
            "label_changes": [{"frame": f, "person": p} for f, p in self.label_changes],
            **({"liveness": self.liveness.to_dict()} if self.liveness is not None else {}),
            **({"expression": self.expression.to_dict()} if self.expression is not None else {}),
            "boxes": [o.to_dict() for o in self.observations],
        }


@dataclass
class PersonSummary:
    """One enrolled person's appearances: tracks, seconds on screen, first and last time, best score."""

    person: str
    tracks: list[int]
    seconds: float
    first_s: float
    last_s: float
    best_score: float

    def to_dict(self) -> dict:
        """A JSON-ready description."""
        return {"person": self.person, "tracks": self.tracks, "seconds": round(self.seconds, 2),
                "first_s": round(self.first_s, 3), "last_s": round(self.last_s, 3),
                "best_score": round(self.best_score, 4)}


@dataclass
class VideoStats:
    """Work done and time spent (seconds) by one run."""

    frames: int = 0
    detections: int = 0
    embeddings: int = 0
    scene_cuts: int = 0
    elapsed_s: float = 0.0
    stage_s: dict[str, float] = field(default_factory=lambda: {"read": 0.0, "track": 0.0, "detect": 0.0,
                                                               "embed": 0.0, "output": 0.0})

    @property
    def fps(self) -> float:
        """Analysed frames per second of wall time."""
        return self.frames / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def to_dict(self) -> dict:
        """A JSON-ready description."""
        return {"frames": self.frames, "detections": self.detections, "embeddings": self.embeddings,
                "scene_cuts": self.scene_cuts, "elapsed_s": round(self.elapsed_s, 3), "fps": round(self.fps, 2),
                "ms_per_frame": {k: round(1000 * v / max(self.frames, 1), 2) for k, v in self.stage_s.items()}}


@dataclass
class VideoTimeline:
    """Everything one run found: tracks (named or unknown), per-person summary and run statistics.

    ``ended``: why the run ended: ``end`` (end of the file, or ``max_frames``), ``stopped`` (a stop
    was requested: the timeline holds what was seen until then) or ``lost`` (a live source dropped
    and did not come back).
    """

    source: str
    fps: float
    size: tuple[int, int]
    frame_count: int | None
    model: str
    threshold: float
    settings: VideoSettings
    tracks: list[TrackRecord]
    stats: VideoStats
    ended: str = "end"

    def people(self) -> list[PersonSummary]:
        """Every named person, most screen time first."""
        by_person: dict[str, list[TrackRecord]] = {}
        for track in self.tracks:
            if track.person is not None:
                by_person.setdefault(track.person, []).append(track)
        step = self.settings.stride / self.fps
        out = [
            PersonSummary(
                person=name,
                tracks=[t.track_id for t in tracks],
                seconds=len({o.frame for t in tracks for o in t.observations}) * step,
                first_s=min(t.first_s for t in tracks),
                last_s=max(t.last_s for t in tracks),
                best_score=max(t.best_score or 0.0 for t in tracks),
            )
            for name, tracks in by_person.items()
        ]
        return sorted(out, key=lambda p: (-p.seconds, p.person))

    def frame_labels(self) -> dict[int, list[tuple[str | None, Box, int]]]:
        """Frame index -> (person or None, box, track id) for every track seen in that frame."""
        out: dict[int, list[tuple[str | None, Box, int]]] = {}
        for track in self.tracks:
            for obs in track.observations:
                out.setdefault(obs.frame, []).append((track.person, obs.box, track.track_id))
        return out

    def to_dict(self) -> dict:
        """The JSON timeline."""
        return {
            "source": self.source,
            "fps": round(self.fps, 3),
            "size": list(self.size),
            "frame_count": self.frame_count,
            "model": self.model,
            "threshold": round(self.threshold, 4),
            "settings": {k: getattr(self.settings, k) for k in self.settings.__dataclass_fields__},
            "people": [p.to_dict() for p in self.people()],
            "tracks": [t.to_dict() for t in self.tracks],
            "stats": self.stats.to_dict(),
            "ended": self.ended,
        }


class SceneCutDetector:
    """Flags a frame that differs from the previous one as a whole: an edit, not motion."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self._prev: np.ndarray | None = None

    def is_cut(self, grey: np.ndarray) -> bool:
        """True when ``grey`` starts a new shot."""
        thumb = cv2.resize(grey, (64, 36), interpolation=cv2.INTER_AREA).astype(np.float32)
        prev, self._prev = self._prev, thumb
        return prev is not None and float(np.mean(np.abs(thumb - prev))) > self.threshold


@dataclass
class _Identity:
    """A track's templates so far (weighted sum) and its current decision."""

    weighted: np.ndarray | None = None
    templates: int = 0
    last_embed: int = -(10**9)
    best_quality: float = -1.0
    person: str | None = None
    score: float | None = None
    nearest: str | None = None
    best_by_person: dict[str, float] = field(default_factory=dict)
    announced: bool = False  # a "seen" event was reported
    announced_person: str | None = None
    liveness: TrackLiveness | None = None
    expression: TrackExpression | None = None


def prefetched(frames: Iterable[Frame], depth: int) -> Iterator[Frame]:
    """``frames`` decoded ahead on a background thread (OpenCV releases the GIL while decoding).

    With ``depth`` 0 the frames are read in the caller's thread. Errors raised by the reader are
    raised here, in order.
    """
    if depth <= 0:
        yield from frames
        return
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def read() -> None:
        try:
            for frame in frames:
                while not stop.is_set():
                    try:
                        slots.put(frame, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(done)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer and raised there
            slots.put(exc)

    reader = threading.Thread(target=read, name="faceprint-video-reader", daemon=True)
    reader.start()
    try:
        while True:
            item = slots.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join(timeout=2.0)


FrameCallback = Callable[[Frame, list[tuple[int, Box, str | None]]], None]
EventCallback = Callable[[TrackEvent], None]


class VideoRecognizer:
    """Runs the video pipeline with one engine and one gallery (see the module docstring)."""

    def __init__(self, engine: Engine, gallery: GalleryStore, settings: VideoSettings | None = None) -> None:
        self.engine = engine
        self.gallery = gallery
        self.settings = settings or VideoSettings()

    def run(self, source: VideoSource, *, on_frame: FrameCallback | None = None,
            progress: Callable[[int], None] | None = None, on_event: EventCallback | None = None,
            stop: threading.Event | None = None) -> VideoTimeline:
        """Analyse ``source`` to the end (or ``max_frames``, or a stop) and return the timeline.

        ``on_frame(frame, [(track id, box, person or None), ...])`` is called for every analysed
        frame with the confirmed tracks and their names as known at that moment (for drawing);
        ``progress(n)`` after every ``n`` analysed frames. ``on_event(event)`` gets a
        :class:`~faceprint.video.events.TrackEvent` when a confirmed track's identity is first
        decided (``seen``: its first template has been searched), when its name changes
        (``changed``) and when a track that was ``seen`` ends (``ended``, with its final decision),
        in that order for each track. Once ``stop`` is set the run finishes the current frame,
        ends every track (``ended`` events included) and returns with ``ended == "stopped"``.
        """
        s = self.settings
        tracker = Tracker(TrackerConfig(max_age=max(1, round(s.max_age_s * source.fps)),
                                        min_hits=2))
        flow = FlowPropagator()
        cuts = SceneCutDetector(s.cut_threshold)
        records: dict[int, TrackRecord] = {}
        identities: dict[int, _Identity] = {}
        finished: list[TrackRecord] = []
        stats = VideoStats()
        stage = stats.stage_s
        refresh = max(1, round(s.refresh_s * source.fps))
        next_detect = last_detect = 0
        recheck = s.stride * max(s.min_every, s.every // 3)  # soonest re-detection when flow loses a face
        threshold = self.engine.threshold
        perf = time.perf_counter
        start = perf()

        def announce(kind: EventKind, record: TrackRecord, identity: _Identity, frame: Frame) -> None:
            identity.announced, identity.announced_person = True, identity.person
            on_event(TrackEvent(kind=kind, track_id=record.track_id, person=identity.person, score=identity.score,
                                threshold=threshold, nearest=identity.nearest, frame=frame.index,
                                time_s=frame.time_s, first_s=record.first_s, last_s=record.last_s,
                                wall=datetime.now().astimezone().isoformat(timespec="milliseconds"),
                                source=source.label,
                                live=identity.liveness.is_live if identity.liveness is not None else None,
                                expression=identity.expression.current if identity.expression is not None else None))

        def close(track_id: int, last_detected: int, trim: bool, frame: Frame) -> None:
            record = records.pop(track_id, None)
            identity = identities.pop(track_id, None)
            if record is None or identity is None:
                return
            if trim:  # boxes after the last detection of a track that aged out: guesses about a face that left
                record.observations = [o for o in record.observations if o.frame <= last_detected]
            if record.observations:
                finished.append(self._finish(record, identity))
                if on_event is not None and identity.announced:
                    announce("ended", record, identity, frame)

        frames = prefetched(source.frames(every=s.stride, limit=s.max_frames, stop=stop), s.prefetch)
        frame: Frame | None = None
        t_read = perf()
        for frame in frames:
            stage["read"] += perf() - t_read
            t0 = perf()
            grey = FlowPropagator.grey(frame.image)
            detect_now = frame.index >= next_detect
            if cuts.is_cut(grey):
                stats.scene_cuts += 1
                tracker.end_all()
                for track in tracker.pop_ended():
                    close(track.track_id, track.last_detected, trim=False, frame=frame)
                flow.reset()
                detect_now = True
            moved = flow.step(grey, {t.track_id: t.box for t in tracker.tracks})
            if frame.index - last_detect >= recheck and any(t.track_id not in moved for t in tracker.active):
                detect_now = True  # flow lost a face: look again soon
            tracker.apply_flow(frame.index, moved)
            stage["track"] += perf() - t0

            detected_ids: set[int] = set()
            if detect_now:
                detected_ids = self._detect(frame, tracker, records, identities, stats, refresh)
                last_detect = frame.index
                motion = max((t.filter.speed for t in tracker.active), default=0.0)  # sizes per source frame
                steps = s.every if motion <= 0 else int(s.motion_budget / (motion * s.stride))
                next_detect = frame.index + s.stride * max(s.min_every, min(s.every, steps))
            for track in tracker.pop_ended():
                close(track.track_id, track.last_detected, trim=True, frame=frame)
            live = {t.track_id for t in tracker.tracks}
            for track_id in [i for i in records if i not in live]:  # tentative tracks never confirmed
                records.pop(track_id)
                identities.pop(track_id, None)

            t0 = perf()
            drawn = []
            for track in tracker.tracks:  # tentative ones too: kept if they are confirmed later
                record = records.setdefault(track.track_id, TrackRecord(track.track_id))
                identity = identities.setdefault(track.track_id, _Identity())
                record.observations.append(
                    Observation(frame.index, frame.time_s, track.box, track.track_id in detected_ids))
                if track.confirmed:
                    drawn.append((track.track_id, track.box, identity.person))
                    if on_event is not None and identity.templates and (
                            not identity.announced or identity.person != identity.announced_person):
                        announce("changed" if identity.announced else "seen", record, identity, frame)
            if on_frame is not None:
                on_frame(frame, drawn)
            stage["output"] += perf() - t0
            stats.frames += 1
            if progress is not None:
                progress(1)
            if stop is not None and stop.is_set():
                break
            t_read = perf()
        for track in tracker.tracks:
            if track.confirmed and frame is not None:
                close(track.track_id, track.last_detected, trim=False, frame=frame)
        stats.elapsed_s = perf() - start
        log.info("video %s: %d frames at %.1f fps, %d detections, %d embeddings, %d scene cuts",
                 source.label, stats.frames, stats.fps, stats.detections, stats.embeddings, stats.scene_cuts)
        finished.sort(key=lambda r: (r.observations[0].frame, r.track_id))
        ended = "stopped" if stop is not None and stop.is_set() else "lost" if source.lost else "end"
        return VideoTimeline(source=source.label, fps=source.fps, size=source.size,
                             frame_count=source.frame_count, model=self.engine.model_id,
                             threshold=threshold, settings=s, tracks=finished, stats=stats, ended=ended)

    def _detect(self, frame: Frame, tracker: Tracker, records: dict[int, TrackRecord],
                identities: dict[int, _Identity], stats: VideoStats, refresh: int) -> set[int]:
        """Detect, associate, embed the faces whose track needs a template; the ids detected."""
        perf = time.perf_counter
        t0 = perf()
        faces = self.engine.finder.find(frame.image, any_orientation=False, small_faces=False)
        ids = tracker.update(frame.index, [f.box for f in faces])
        stats.detections += 1
        stats.stage_s["detect"] += perf() - t0

        s = self.settings
        if s.liveness:
            t0 = perf()
            for face, track_id in zip(faces, ids, strict=True):
                if track_id is None or min(face.box.width, face.box.height) < s.min_face:
                    continue
                identity = identities.setdefault(track_id, _Identity())
                if identity.liveness is None:
                    identity.liveness = TrackLiveness(threshold=self.engine.liveness_model.threshold)
                identity.liveness.add(self.engine.check_live(face))
            stats.stage_s["liveness"] = stats.stage_s.get("liveness", 0.0) + perf() - t0

        if "expression" in s.attributes:
            t0 = perf()
            tracked = [(face, track_id) for face, track_id in zip(faces, ids, strict=True)
                       if track_id is not None and min(face.box.width, face.box.height) >= s.min_face]
            read = self.engine.analyzer.analyze([f for f, _ in tracked], {"expression"})
            for (_, track_id), result in zip(tracked, read, strict=True):
                if result.expression is None:  # too small, blurred or turned for the network
                    continue
                identity = identities.setdefault(track_id, _Identity())
                if identity.expression is None:
                    identity.expression = TrackExpression()
                probabilities = [result.expression.probabilities[k] for k in result.expression.probabilities]
                identity.expression.add(frame.index, frame.time_s, probabilities)
            stats.stage_s["expression"] = stats.stage_s.get("expression", 0.0) + perf() - t0

        t0 = perf()
        wanted: list[tuple[int, Face]] = []
        for face, track_id in zip(faces, ids, strict=True):
            if track_id is None or min(face.box.width, face.box.height) < s.min_face:
                continue
            identity = identities.setdefault(track_id, _Identity())
            if (identity.templates < s.templates or frame.index - identity.last_embed >= refresh
                    or face.quality > identity.best_quality + 0.2):
                wanted.append((track_id, face))
        if wanted:
            templates = self.engine.embed_faces([f for _, f in wanted])
            stats.embeddings += len(templates)
            vectors = np.stack([t.vector for t in templates])
            singles = self.engine.search(self.gallery, vectors, k=3)
            for (track_id, face), vector, cands in zip(wanted, vectors, singles, strict=True):
                identity = identities[track_id]
                weight = face.quality + s.weight_floor
                previous = identity.weighted if identity.weighted is not None else 0.0
                identity.weighted = previous + weight * vector
                identity.templates += 1
                identity.last_embed = frame.index
                identity.best_quality = max(identity.best_quality, face.quality)
                for c in cands:
                    identity.best_by_person[c.person] = max(identity.best_by_person.get(c.person, -1.0), c.score)
                self._decide(identity, records.setdefault(track_id, TrackRecord(track_id)), frame.index)
        stats.stage_s["embed"] += perf() - t0
        return {i for i in ids if i is not None}

    def _decide(self, identity: _Identity, record: TrackRecord, frame: int) -> None:
        """Search the track's aggregate template and update its name."""
        if identity.weighted is None:
            return
        aggregate = identity.weighted / max(float(np.linalg.norm(identity.weighted)), 1e-12)
        cands: list[Candidate] = self.engine.search(self.gallery, aggregate[None, :].astype(np.float32), k=2)[0]
        best = cands[0] if cands else None
        threshold = self.engine.threshold
        if best is not None and best.person == identity.person:
            threshold -= self.settings.keep_margin
        person = best.person if best is not None and best.score >= threshold else None
        identity.score = best.score if best is not None else None
        identity.nearest = best.person if best is not None else None
        if person != identity.person or not record.label_changes:
            record.label_changes.append((frame, person))
        identity.person = person

    @staticmethod
    def _finish(record: TrackRecord, identity: _Identity) -> TrackRecord:
        record.person = identity.person
        record.score = identity.score
        record.nearest = identity.nearest
        record.templates = identity.templates
        record.liveness = identity.liveness
        record.expression = identity.expression
        if identity.nearest is not None:
            record.best_score = identity.best_by_person.get(identity.nearest)
        return record


FrameLabels = dict[int, list[tuple[str | None, Box, None]]]


def identify_every_frame(engine: Engine, gallery: GalleryStore, source: VideoSource, *,
                         max_frames: int | None = None) -> tuple[FrameLabels, VideoStats]:
    """The naive baseline: ``engine.identify`` on every frame (detect, gate, embed, search).

    Returns frame index -> (person or None, box, None) for each usable face, and run statistics.
    """
    stats = VideoStats()
    labels: FrameLabels = {}
    perf = time.perf_counter
    start = perf()
    t_read = perf()
    for frame in source.frames(limit=max_frames):
        stats.stage_s["read"] += perf() - t_read
        t0 = perf()
        faces = engine.finder.find(frame.image, usable_only=True, any_orientation=False, small_faces=False)
        stats.stage_s["detect"] += perf() - t0
        stats.detections += 1
        t0 = perf()
        row: list[tuple[str | None, Box, None]] = []
        if faces:
            templates = engine.embed_faces(faces)
            stats.embeddings += len(templates)
            ranked = engine.search(gallery, np.stack([t.vector for t in templates]), k=1)
            for face, cands in zip(faces, ranked, strict=True):
                known = bool(cands) and cands[0].score >= engine.threshold
                row.append((cands[0].person if known else None, face.box, None))
        labels[frame.index] = row
        stats.stage_s["embed"] += perf() - t0
        stats.frames += 1
        t_read = perf()
    stats.elapsed_s = perf() - start
    return labels, stats
