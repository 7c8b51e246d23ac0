"""Micro-expression spotting: short, low-intensity movements of the brows, eyes and mouth corners.

    from faceprint import Engine
    from faceprint.video.micro import spot_micro_expressions
    result = spot_micro_expressions("clip.mp4", Engine("fast"))
    for e in result.events:
        print(e.region, e.onset, e.apex, e.offset, e.intensity)

Method (after the optical-flow spotting of Shreve et al. 2011 and Li et al.'s MDMD features, in a
simple form): the largest face of each frame is found (YuNet, then dlib's 68 points every
``landmark_every`` frames); dense optical flow (OpenCV DIS, Kroeger et al. 2016) is computed
between consecutive grey frames over the face; the face's own motion is removed by subtracting the
median flow of the nose region (bridge and tip, which no expression moves) from every region's
mean flow. Each region's residual flow is summed over time into a displacement track, measured
in inter-ocular distances (IOD) so that it does not depend on the face's size. A movement is the
displacement's distance from its own running median over ``baseline_s`` seconds; a frame moves
when that distance exceeds ``noise_k`` times the region's median absolute deviation (and at
least ``min_intensity`` IOD). A run of moving frames is an event when it lasts at most
``max_duration_s`` (0.5 s, the usual upper bound of a micro-expression) and its apex stays below
``max_intensity`` IOD (larger is an ordinary, macro expression or a head movement the nose did not
share); onset and offset are the run's first and last frames, apex its largest displacement. A run
that a gap in the face track cuts off (no face, the largest face jumps, a scene cut), or that the
clip's start or end cuts off, has no real onset or offset and is not reported: a gap is not the
end of a movement.

Regions (subject's right and left as in :class:`faceprint.types.Face`): ``right brow``,
``left brow`` (dlib 17-21, 22-26), ``right eye``, ``left eye`` (36-41, 42-47), ``right mouth
corner``, ``left mouth corner`` (around 48 and 54). No labelled micro-expression data set is
available here: the method is tested on sequences made from real photos with a planted subtle warp
at known frames (tests/test_micro_expressions.py); on real talking video the mouth corners and
eyes move with speech and blinks too, and some of those movements are reported (docs/attributes.md).
Only the largest face is followed; when it jumps (another person becomes the largest face) or
the shot changes (the scene-cut test of :mod:`faceprint.video.recognition`), the tracks restart.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..engine import Engine
from ..models import registry
from .recognition import SceneCutDetector, VideoSettings
from .source import Frame, VideoSource

log = logging.getLogger(__name__)

#: Region name -> dlib 68-point indices whose box (grown by ``margin`` IOD) is the region.
REGIONS: dict[str, tuple[tuple[int, ...], float]] = {
    "right brow": (tuple(range(17, 22)), 0.10),
    "left brow": (tuple(range(22, 27)), 0.10),
    "right eye": (tuple(range(36, 42)), 0.06),
    "left eye": (tuple(range(42, 48)), 0.06),
    "right mouth corner": ((48, 49, 59, 60), 0.10),
    "left mouth corner": ((53, 54, 55, 64), 0.10),
}
#: The reference region for the face's own motion: nose bridge and tip.
NOSE = tuple(range(27, 36))


@dataclass(frozen=True)
class SpotSettings:
    """Knobs of :func:`spot_micro_expressions` (see the module docstring for what each does)."""

    max_duration_s: float = 0.5
    min_frames: int = 2
    max_intensity: float = 0.15
    min_intensity: float = 0.008
    noise_k: float = 6.0
    baseline_s: float = 1.0
    landmark_every: int = 5
    max_frames: int | None = None


@dataclass(frozen=True)
class MicroEvent:
    """One spotted movement: ``region``, ``onset``, ``apex`` and ``offset`` frame indices (with times in
    seconds), and ``intensity``, the apex displacement in inter-ocular distances."""

    region: str
    onset: int
    apex: int
    offset: int
    onset_s: float
    apex_s: float
    offset_s: float
    intensity: float

    @property
    def duration_s(self) -> float:
        """Offset time minus onset time, seconds."""
        return self.offset_s - self.onset_s

    def to_dict(self) -> dict:
        """A JSON-ready description."""
        return {"region": self.region, "onset": self.onset, "apex": self.apex, "offset": self.offset,
                "onset_s": round(self.onset_s, 3), "apex_s": round(self.apex_s, 3),
                "offset_s": round(self.offset_s, 3), "duration_s": round(self.duration_s, 3),
                "intensity": round(self.intensity, 4)}


@dataclass
class MicroResult:
    """Every event of one video, by onset, with the per-frame movement of each region (IOD; NaN without a face)."""

    source: str
    fps: float
    frames: int
    events: list[MicroEvent]
    movement: dict[str, np.ndarray] = field(repr=False)
    face_frames: int = 0

    def to_dict(self) -> dict:
        """A JSON-ready description (the movement tracks are left out)."""
        return {"source": self.source, "fps": round(self.fps, 3), "frames": self.frames,
                "frames_with_face": self.face_frames, "events": [e.to_dict() for e in self.events]}


def _boxes(points: np.ndarray, iod: float, shape: tuple[int, int]) -> dict[str, tuple[int, int, int, int]]:
    """Pixel boxes (x0, y0, x1, y1) of every region and of the nose, in a frame of ``shape`` (H, W)."""
    out = {}
    for name, (idx, margin) in {**REGIONS, "nose": (NOSE, 0.05)}.items():
        p = points[list(idx)]
        x0, y0 = p.min(axis=0) - margin * iod
        x1, y1 = p.max(axis=0) + margin * iod
        out[name] = (max(int(x0), 0), max(int(y0), 0), min(int(np.ceil(x1)) + 1, shape[1]),
                     min(int(np.ceil(y1)) + 1, shape[0]))
    return out


def _movement(track: np.ndarray, window: int) -> np.ndarray:
    """Distance (per frame) of a [n, 2] displacement track from its running median over ``window`` frames."""
    n = len(track)
    out = np.full(n, np.nan)
    half = max(window // 2, 1)
    for t in range(n):
        if np.isnan(track[t, 0]):
            continue
        seg = track[max(0, t - half): t + half + 1]
        seg = seg[~np.isnan(seg[:, 0])]
        out[t] = float(np.linalg.norm(track[t] - np.median(seg, axis=0)))
    return out


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index of every run of True in ``mask``."""
    runs, start = [], None
    for i, m in enumerate(mask):
        if m and start is None:
            start = i
        elif not m and start is not None:
            runs.append((start, i - 1))
            start = None
    if start is not None:
        runs.append((start, len(mask) - 1))
    return runs


def spot_in_tracks(movement: dict[str, np.ndarray], fps: float, settings: SpotSettings,
                   times: np.ndarray | None = None) -> list[MicroEvent]:
    """Events in per-region movement tracks (IOD per frame, NaN where there is no face), by onset."""
    events = []
    for region, m in movement.items():
        valid = m[~np.isnan(m)]
        if len(valid) < 3:
            continue
        spread = float(np.median(np.abs(valid - np.median(valid)))) * 1.4826
        limit = max(settings.noise_k * spread, settings.min_intensity)
        for first, last in _runs(np.nan_to_num(m, nan=0.0) > limit):
            # The movement rises from and falls back to half the limit: that is its onset and offset.
            while first > 0 and np.nan_to_num(m[first - 1]) > limit / 2:
                first -= 1
            while last + 1 < len(m) and np.nan_to_num(m[last + 1]) > limit / 2:
                last += 1
            before = m[first - 1] if first > 0 else np.nan
            after = m[last + 1] if last + 1 < len(m) else np.nan
            if np.isnan(before) or np.isnan(after):
                continue  # cut off by a gap in the face track (or the clip's end): no real onset or offset
            apex = first + int(np.nanargmax(m[first:last + 1]))
            frames = last - first + 1
            if frames < settings.min_frames or frames / fps > settings.max_duration_s:
                continue
            if m[apex] >= settings.max_intensity:
                continue
            t = times if times is not None else np.arange(len(m)) / fps
            events.append(MicroEvent(region, first, apex, last, float(t[first]), float(t[apex]), float(t[last]),
                                     float(m[apex])))
    events = sorted(set(events), key=lambda e: (e.onset, e.region))
    return events


def spot_frames(frames: Iterable[Frame], fps: float, engine: Engine, settings: SpotSettings | None = None,
                source: str = "frames") -> MicroResult:
    """Spot micro-expressions in RGB ``frames`` (in order) of a video at ``fps`` frames per second."""
    settings = settings or SpotSettings()
    landmarker = registry.load_landmarker()
    flow_engine = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    names = list(REGIONS)
    steps: list[np.ndarray] = []  # per frame: [regions, 2] residual flow, IOD; NaN rows where nothing to compare
    times: list[float] = []
    previous, points, centre, face_frames = None, None, None, 0
    cuts = SceneCutDetector(VideoSettings().cut_threshold)
    for n, frame in enumerate(frames):
        if settings.max_frames is not None and n >= settings.max_frames:
            break
        times.append(frame.time_s)
        grey = cv2.cvtColor(frame.image, cv2.COLOR_RGB2GRAY)
        step = np.full((len(names), 2), np.nan)
        if cuts.is_cut(grey):  # a new shot: nothing to compare with, and the face must be found again
            previous, points, centre = None, None, None
        if points is None or n % settings.landmark_every == 0:
            faces = engine.finder.find(frame.image, any_orientation=False, small_faces=False)
            face = faces[0] if faces else None
            new_centre = np.array(face.box.center) if face else None
            jumped = face is None or (centre is not None and
                                      np.linalg.norm(new_centre - centre) > 0.5 * face.box.width)
            points = landmarker.landmarks(frame.image, face.box) if face else None
            if jumped:
                previous = None  # a new face (or none): the tracks restart
            centre = new_centre
        if points is not None:
            face_frames += 1
            iod = float(np.linalg.norm(points[36:42].mean(axis=0) - points[42:48].mean(axis=0)))
            boxes = _boxes(points, iod, grey.shape)
            if previous is not None and iod > 4:
                x0 = min(b[0] for b in boxes.values())
                y0 = min(b[1] for b in boxes.values())
                x1 = max(b[2] for b in boxes.values())
                y1 = max(b[3] for b in boxes.values())
                flow = flow_engine.calc(np.ascontiguousarray(previous[y0:y1, x0:x1]),
                                        np.ascontiguousarray(grey[y0:y1, x0:x1]), None)
                nose = boxes["nose"]
                rigid = np.median(flow[nose[1] - y0:nose[3] - y0, nose[0] - x0:nose[2] - x0].reshape(-1, 2), axis=0)
                for r, name in enumerate(names):
                    bx0, by0, bx1, by1 = boxes[name]
                    region = flow[by0 - y0:by1 - y0, bx0 - x0:bx1 - x0].reshape(-1, 2)
                    if len(region):
                        step[r] = (region.mean(axis=0) - rigid) / iod
            previous = grey
        else:
            previous = None
        steps.append(step)
    if not steps:
        return MicroResult(source, fps, 0, [], {name: np.zeros(0) for name in names}, 0)
    step_array = np.stack(steps)  # [frames, regions, 2]
    window = max(3, round(settings.baseline_s * fps))
    movement = {}
    for r, name in enumerate(names):
        d = step_array[:, r]
        track = np.full_like(d, np.nan)
        total = np.zeros(2)
        for t in range(len(d)):  # displacement summed within each stretch of valid steps
            if np.isnan(d[t, 0]):
                total = np.zeros(2)
                continue
            total = total + d[t]
            track[t] = total
        movement[name] = _movement(track, window)
    events = spot_in_tracks(movement, fps, settings, np.array(times))
    return MicroResult(source, fps, len(steps), events, movement, face_frames)


def spot_micro_expressions(source: str | int | os.PathLike, engine: Engine, settings: SpotSettings | None = None
                           ) -> MicroResult:
    """Spot micro-expressions of the largest face in a video file, camera or stream (see the module docstring).

    Raises :class:`~faceprint.video.source.VideoOpenError` when the source cannot be opened.
    """
    with VideoSource(source) as video:
        return spot_frames(video.frames(), video.fps, engine, settings, source=str(source))


def plot_movement(result: MicroResult, path: str | os.PathLike) -> None:
    """Write a plot of each region's movement over time, with the spotted events shaded, to ``path`` (PNG, SVG...)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result.movement)
    fig, axes = plt.subplots(len(names), 1, figsize=(10, 1.4 * len(names) + 1), sharex=True)
    t = np.arange(result.frames)
    for ax, name in zip(np.atleast_1d(axes), names):
        ax.plot(t, result.movement[name], lw=0.9, color="#1f6fb2")
        for e in result.events:
            if e.region == name:
                ax.axvspan(e.onset, e.offset, color="#c25400", alpha=0.3)
                ax.axvline(e.apex, color="#c25400", lw=0.8)
        ax.set_ylabel(name.replace(" ", "\n"), fontsize=8)
    np.atleast_1d(axes)[-1].set_xlabel(f"frame ({result.fps:.0f} frames/s)")
    fig.suptitle(f"movement relative to the nose (inter-ocular distances); {len(result.events)} event(s) shaded")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
