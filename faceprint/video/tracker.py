"""Face tracking between detections: a Kalman filter per face, IoU association, optical flow.

The video pipeline detects faces only every few frames. In between, each track is carried by

- :class:`FlowPropagator`: pyramidal Lucas-Kanade optical flow of corner points inside the box,
  checked forward and backward, gives the box's shift and scale change from one frame to the next;
- :class:`KalmanBox`: a constant-velocity Kalman filter on (centre x, centre y, width, height)
  that smooths those measurements and predicts through frames where flow fails.

When the detector runs, :meth:`Tracker.update` matches detections to the tracks' predicted boxes
by intersection over union (greedy, best pair first; with a handful of faces per frame this gives
the same answer as the Hungarian method in practice). Because association uses each track's
predicted position and velocity, two faces that cross keep their ids.

Lifecycle: a new detection starts a *tentative* track; it becomes *confirmed* after ``min_hits``
detections (so a one-off false detection never becomes a track); a track not matched by any
detection for ``max_age`` frames *ends*, as does every track at a scene cut (:meth:`end_all`).
Ended tracks are handed over once by :meth:`Tracker.pop_ended`.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ..types import Box

log = logging.getLogger(__name__)

#: Intersection over union of two boxes (:meth:`faceprint.types.Box.iou`), under its long-standing name here.
iou = Box.iou


class KalmanBox:
    """Constant-velocity Kalman filter on a box: state (cx, cy, w, h) and their rates per frame.

    Noise is proportional to the box size, so a 30-pixel face and a 300-pixel face are smoothed
    alike. ``measure_std`` is the measurement's standard deviation as a fraction of box size.
    """

    def __init__(self, box: Box, frame: int, *, process_std: float = 0.05) -> None:
        cx, cy = box.center
        self.x = np.array([cx, cy, box.width, box.height, 0.0, 0.0, 0.0, 0.0])
        size = max(box.width, box.height, 1.0)
        self.P = np.diag(np.square([0.1 * size] * 4 + [0.2 * size] * 4))
        self.process_std = process_std
        self.frame = frame

    @property
    def size(self) -> float:
        """The larger side of the current box, at least one pixel."""
        return max(float(self.x[2]), float(self.x[3]), 1.0)

    @property
    def box(self) -> Box:
        """The filter's current box."""
        cx, cy, w, h = self.x[:4]
        w, h = max(w, 1.0), max(h, 1.0)
        return Box(float(cx - w / 2), float(cy - h / 2), float(w), float(h))

    @property
    def speed(self) -> float:
        """Centre speed in box sizes per frame (how fast the face moves relative to its size)."""
        return float(np.hypot(self.x[4], self.x[5])) / self.size

    def predict(self, frame: int) -> Box:
        """Advance the state to ``frame`` (no-op for the current or an earlier frame)."""
        dt = frame - self.frame
        if dt <= 0:
            return self.box
        F = np.eye(8)
        F[:4, 4:] = np.eye(4) * dt
        q = (self.process_std * self.size) ** 2
        Q = np.diag([q * dt] * 4 + [q * dt] * 4)
        self.x = F @ self.x
        self.P = F @ self.P @ F.T + Q
        self.frame = frame
        return self.box

    def update(self, box: Box, frame: int, measure_std: float = 0.05) -> Box:
        """Fold in a measured box at ``frame`` (predicting up to it first)."""
        self.predict(frame)
        cx, cy = box.center
        z = np.array([cx, cy, box.width, box.height])
        H = np.zeros((4, 8))
        H[:, :4] = np.eye(4)
        R = np.eye(4) * (measure_std * max(box.width, box.height, 1.0)) ** 2
        S = H @ self.P @ H.T + R
        K = self.P @ H.T @ np.linalg.inv(S)
        self.x = self.x + K @ (z - H @ self.x)
        self.P = (np.eye(8) - K @ H) @ self.P
        return self.box


class TrackState(enum.Enum):
    """Where a track is in its life."""

    TENTATIVE = "tentative"
    CONFIRMED = "confirmed"
    ENDED = "ended"


@dataclass
class Track:
    """One face followed through the video."""

    track_id: int
    filter: KalmanBox
    first_frame: int
    last_detected: int
    hits: int = 1
    state: TrackState = TrackState.TENTATIVE

    @property
    def box(self) -> Box:
        """The current (filtered) box."""
        return self.filter.box

    @property
    def confirmed(self) -> bool:
        """True once the track has been detected ``min_hits`` times and has not ended."""
        return self.state is TrackState.CONFIRMED


@dataclass(frozen=True)
class TrackerConfig:
    """How detections become tracks and when tracks end.

    ``iou_match``: least IoU between a detection and a track's predicted box to match them.
    ``min_hits``: detections that confirm a track. ``max_age``: frames a track lives on without a
    matching detection. ``detect_std`` and ``flow_std``: measurement noise of a detection and of an
    optical-flow step, as a fraction of box size (flow drifts, so it is trusted less).
    """

    iou_match: float = 0.2
    min_hits: int = 2
    max_age: int = 30
    detect_std: float = 0.05
    flow_std: float = 0.15


class Tracker:
    """Multi-face tracker: feed it detections when the detector runs, flow boxes in between."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self.tracks: list[Track] = []
        self._ended: list[Track] = []
        self._next_id = 1

    @property
    def active(self) -> list[Track]:
        """Confirmed tracks that have not ended."""
        return [t for t in self.tracks if t.confirmed]

    def predict(self, frame: int) -> None:
        """Move every track to ``frame`` by its motion model."""
        for track in self.tracks:
            track.filter.predict(frame)

    def apply_flow(self, frame: int, boxes: dict[int, Box]) -> None:
        """Fold optical-flow boxes (track id -> box) measured at ``frame`` into their tracks."""
        for track in self.tracks:
            box = boxes.get(track.track_id)
            if box is not None:
                track.filter.update(box, frame, self.config.flow_std)
            else:
                track.filter.predict(frame)

    def update(self, frame: int, detections: Sequence[Box]) -> list[int | None]:
        """Match the detections made at ``frame`` to tracks; return each detection's track id.

        Unmatched detections start tentative tracks (their id is returned too); tentative tracks
        missed by this detection round are dropped; confirmed tracks missed for more than
        ``max_age`` frames end.
        """
        self.predict(frame)
        cfg = self.config
        pairs = sorted(
            ((iou(track.box, det), ti, di)
             for ti, track in enumerate(self.tracks) for di, det in enumerate(detections)),
            reverse=True,
        )
        track_of: list[int | None] = [None] * len(detections)
        used_tracks: set[int] = set()
        for overlap, ti, di in pairs:
            if overlap < cfg.iou_match:
                break
            if ti in used_tracks or track_of[di] is not None:
                continue
            track = self.tracks[ti]
            track.filter.update(detections[di], frame, cfg.detect_std)
            track.hits += 1
            track.last_detected = frame
            if track.state is TrackState.TENTATIVE and track.hits >= cfg.min_hits:
                track.state = TrackState.CONFIRMED
            used_tracks.add(ti)
            track_of[di] = track.track_id
        kept = []
        for ti, track in enumerate(self.tracks):
            if ti in used_tracks:
                kept.append(track)
            elif track.state is TrackState.TENTATIVE and track.last_detected < frame:
                continue  # a one-off detection: never becomes a track
            elif frame - track.last_detected > cfg.max_age:
                self._end(track)
            else:
                kept.append(track)
        for di, det in enumerate(detections):
            if track_of[di] is None:
                track = Track(self._next_id, KalmanBox(det, frame), first_frame=frame, last_detected=frame)
                if cfg.min_hits <= 1:
                    track.state = TrackState.CONFIRMED
                self._next_id += 1
                kept.append(track)
                track_of[di] = track.track_id
        self.tracks = kept
        return track_of

    def end_all(self) -> None:
        """End every track (a scene cut: nothing on screen continues into the next shot)."""
        for track in self.tracks:
            self._end(track)
        self.tracks = []

    def _end(self, track: Track) -> None:
        if track.state is TrackState.CONFIRMED:
            track.state = TrackState.ENDED
            self._ended.append(track)

    def pop_ended(self) -> list[Track]:
        """Confirmed tracks that ended since the last call."""
        ended, self._ended = self._ended, []
        return ended


class FlowPropagator:
    """Moves boxes from one frame to the next with pyramidal Lucas-Kanade optical flow.

    For each box, up to ``max_points`` corners inside it are tracked forward and back; points whose
    round trip misses by more than ``max_fb_error`` pixels are dropped. The box moves by the
    median shift and scales by the median ratio of point spreads. Fewer than ``min_points`` good
    points means no measurement for that box (the Kalman filter then predicts alone).
    """

    def __init__(self, max_points: int = 15, min_points: int = 5, max_fb_error: float = 1.0) -> None:
        self.max_points = max_points
        self.min_points = min_points
        self.max_fb_error = max_fb_error
        self._prev: np.ndarray | None = None
        self._lk = {"winSize": (11, 11), "maxLevel": 3,
                    "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 10, 0.03)}

    @staticmethod
    def grey(image: np.ndarray) -> np.ndarray:
        """The grey version of an RGB frame that flow runs on."""
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)

    def reset(self) -> None:
        """Forget the previous frame (after a scene cut)."""
        self._prev = None

    def step(self, grey: np.ndarray, boxes: dict[int, Box]) -> dict[int, Box]:
        """Boxes (id -> box, in the previous frame) moved into ``grey``; ids that failed are left out.

        The corners of every box go through one forward and one backward flow call, so the image
        pyramids are built once per frame whatever the number of faces.
        """
        prev, self._prev = self._prev, grey
        if prev is None or prev.shape != grey.shape or not boxes:
            return {}
        owners, points = [], []
        for key, box in boxes.items():
            corners = self._corners(prev, box)
            if corners is not None:
                owners.extend([key] * len(corners))
                points.append(corners)
        if not points:
            return {}
        p0 = np.concatenate(points).astype(np.float32)
        p1, ok1, _ = cv2.calcOpticalFlowPyrLK(prev, grey, p0, None, **self._lk)
        back, ok2, _ = cv2.calcOpticalFlowPyrLK(grey, prev, p1, None, **self._lk)
        good = (ok1.ravel() == 1) & (ok2.ravel() == 1) & (np.linalg.norm(back - p0, axis=1) < self.max_fb_error)
        owner = np.array(owners)
        moved = {}
        for key, box in boxes.items():
            keep = good & (owner == key)
            if int(keep.sum()) >= self.min_points:
                moved[key] = self._moved_box(box, p0[keep], p1[keep])
        return moved

    def _corners(self, prev: np.ndarray, box: Box) -> np.ndarray | None:
        """Up to ``max_points`` corners in the inner part of ``box`` (the face, not the background)."""
        height, width = prev.shape
        x0, y0 = int(max(0, box.x + 0.15 * box.width)), int(max(0, box.y + 0.15 * box.height))
        x1 = int(min(width, box.x + 0.85 * box.width))
        y1 = int(min(height, box.y + 0.85 * box.height))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        corners = cv2.goodFeaturesToTrack(prev[y0:y1, x0:x1], self.max_points, 0.01, 3)
        if corners is None or len(corners) < self.min_points:
            return None
        return corners.reshape(-1, 2) + np.array([x0, y0], np.float32)

    @staticmethod
    def _moved_box(box: Box, a: np.ndarray, b: np.ndarray) -> Box:
        """``box`` shifted by the median motion of points ``a`` -> ``b`` and scaled by their spread."""
        shift = np.median(b - a, axis=0)
        spread_a = np.linalg.norm(a - np.median(a, axis=0), axis=1)
        spread_b = np.linalg.norm(b - np.median(b, axis=0), axis=1)
        valid = spread_a > 1.0
        scale = float(np.clip(np.median(spread_b[valid] / spread_a[valid]), 0.8, 1.25)) if valid.sum() >= 3 else 1.0
        cx, cy = box.center
        w, h = box.width * scale, box.height * scale
        return Box(float(cx + shift[0] - w / 2), float(cy + shift[1] - h / 2), float(w), float(h))
