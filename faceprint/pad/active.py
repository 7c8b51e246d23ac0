"""Active liveness on video: a random challenge (blink, turn left, turn right, smile) checked from landmarks.

    from faceprint.pad.active import ActiveLivenessSession, run_challenge
    session = ActiveLivenessSession(n_steps=2, timeout_s=5.0)    # random order, from ``secrets``
    for frame in VideoSource(0).frames():                          # a webcam, or a video file
        state = session.feed(frame.image, frame.time_s)            # state.instruction: what to ask
        if state.done:
            break
    result = session.result()                                      # ActiveLivenessResult

How each action is measured on the 68 iBUG landmarks of the largest face (:mod:`faceprint.models.dlib_landmarks`):

- **blink**: the eye aspect ratio (EAR, Soukupová & Čech 2016), mean of both eyes, falls below
  ``blink_close_ratio`` times the track's own open-eye baseline (running median of the last
  ``baseline_s``) for at least ``blink_min_frames`` frames, then recovers above
  ``blink_open_ratio`` times the baseline within ``blink_max_s``.
- **turn**: a yaw proxy, the nose tip's horizontal offset from the face-contour midline divided by
  the contour's half width, measured after levelling the eye line. ``turn_left`` and
  ``turn_right`` are the subject's own left and right: turning to one's own left moves the nose
  towards the image's right in an un-mirrored camera frame, and the yaw proxy is then positive.
  Pass ``mirrored=True`` when frames are already flipped like a selfie preview.
- **smile**: mouth width over inter-ocular distance rises above ``smile_ratio`` times its
  neutral value.

Turn and smile are measured against a neutral baseline taken over the first ``calibration_s``
of face frames ("look at the camera"). Each step has its own time limit. The replay guard is the
order: it is drawn at random when the session starts, so a recording made for one order fails
another. A head turn that was not asked for (after the head was seen neutral in that step) fails
the step at once, so a recording that cycles through every action fails too. Blinks and smiles
that were not asked for are ignored: people blink and smile without being told. Eyes that narrow
while the mouth smiles are not counted as a blink (a broad smile squeezes the eyes almost as much
as dlib's landmarks show a closed eye).
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import statistics
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..attributes.eyes import eye_aspect_ratio
from ..errors import FaceprintError
from ..models.pad_passive import PassiveLiveness, TrackLiveness
from ..models.dlib_landmarks import (
    JAW,
    LEFT_EYE,
    MOUTH_LEFT_CORNER,
    MOUTH_RIGHT_CORNER,
    NOSE_TIP,
    RIGHT_EYE,
)

log = logging.getLogger(__name__)

BLINK, TURN_LEFT, TURN_RIGHT, SMILE = "blink", "turn_left", "turn_right", "smile"
ACTIONS: tuple[str, ...] = (BLINK, TURN_LEFT, TURN_RIGHT, SMILE)
INSTRUCTIONS = {
    BLINK: "Blink your eyes",
    TURN_LEFT: "Turn your head to your LEFT, then back",
    TURN_RIGHT: "Turn your head to your RIGHT, then back",
    SMILE: "Smile",
}
CALIBRATION_INSTRUCTION = "Look straight at the camera"


class ChallengeError(FaceprintError):
    """An invalid challenge: unknown action, repeated action or impossible number of steps."""

    code = "invalid_challenge"


@dataclass(frozen=True)
class ActiveConfig:
    """Thresholds of the active check (ratios are relative to the person's own baseline)."""

    blink_close_ratio: float = 0.8
    blink_open_ratio: float = 0.88
    blink_min_frames: int = 2
    blink_max_s: float = 0.7
    baseline_s: float = 2.0
    baseline_min_frames: int = 5
    turn_threshold: float = 0.35
    smile_ratio: float = 1.12
    calibration_s: float = 0.5
    calibration_min_frames: int = 5
    max_gap_s: float = 0.5


# --- measures ------------------------------------------------------------------------------


def _levelled(points: np.ndarray) -> np.ndarray:
    """The points rotated about the eyes' midpoint so that the eye line is horizontal."""
    right_eye, left_eye = points[RIGHT_EYE].mean(axis=0), points[LEFT_EYE].mean(axis=0)
    dx, dy = left_eye - right_eye
    angle = np.arctan2(dy, dx)
    c, s = np.cos(-angle), np.sin(-angle)
    centre = (right_eye + left_eye) / 2.0
    return (points - centre) @ np.array([[c, s], [-s, c]]) + centre


def yaw_proxy(points: np.ndarray, *, mirrored: bool = False) -> float:
    """Head yaw proxy in about [-1, 1]: > 0 when the subject turns to their own left.

    The nose tip's offset from the midline of the face contour (jaw points 0-2 and 14-16), over the
    contour's half width, after levelling the eye line. In an un-mirrored camera frame the
    subject's left is the image's right; ``mirrored`` flips the sign for selfie-style frames.
    """
    p = _levelled(np.asarray(points, dtype=np.float64))
    jaw = p[JAW]
    image_left, image_right = jaw[0:3, 0].mean(), jaw[14:17, 0].mean()
    half = (image_right - image_left) / 2.0
    if half <= 0:
        return 0.0
    yaw = float((p[NOSE_TIP, 0] - (image_left + image_right) / 2.0) / half)
    return -yaw if mirrored else yaw


def mouth_ratio(points: np.ndarray) -> float:
    """Mouth width (outer corners) over the distance between the eye centres."""
    p = np.asarray(points, dtype=np.float64)
    iod = np.linalg.norm(p[LEFT_EYE].mean(axis=0) - p[RIGHT_EYE].mean(axis=0))
    if iod <= 0:
        return 0.0
    return float(np.linalg.norm(p[MOUTH_LEFT_CORNER] - p[MOUTH_RIGHT_CORNER]) / iod)


@dataclass(frozen=True)
class FaceMeasures:
    """What the check reads off one face's 68 landmarks."""

    ear: float
    yaw: float
    mouth: float

    @classmethod
    def from_landmarks(cls, points: np.ndarray, *, mirrored: bool = False) -> FaceMeasures:
        """Measures of a [68, 2] landmark array."""
        ear = (eye_aspect_ratio(points[RIGHT_EYE]) + eye_aspect_ratio(points[LEFT_EYE])) / 2.0
        return cls(ear=ear, yaw=yaw_proxy(points, mirrored=mirrored), mouth=mouth_ratio(points))

    def to_dict(self) -> dict:
        """A JSON-ready description."""
        return {"ear": round(self.ear, 4), "yaw": round(self.yaw, 4), "mouth": round(self.mouth, 4)}


# --- blinks --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Blink:
    """One detected blink: first and last closed frame times, and the lowest EAR / baseline."""

    start_s: float
    end_s: float
    depth: float

    def to_dict(self) -> dict:
        """A JSON-ready description."""
        return {"start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3), "depth": round(self.depth, 3)}


class BlinkDetector:
    """Finds blinks in one face's EAR series, frame by frame, against its own open-eye baseline."""

    def __init__(self, config: ActiveConfig | None = None) -> None:
        self.config = config or ActiveConfig()
        self._open: deque[tuple[float, float]] = deque()
        self._closed: list[tuple[float, float]] = []
        self._last_s: float | None = None

    @property
    def baseline(self) -> float | None:
        """Median open-eye EAR over the last ``baseline_s``, or None while there are too few frames."""
        if len(self._open) < self.config.baseline_min_frames:
            return None
        return statistics.median(e for _, e in self._open)

    def reset(self) -> None:
        """Forget the baseline and any blink in progress (the face was lost)."""
        self._open.clear()
        self._closed = []
        self._last_s = None

    def update(self, ear: float, time_s: float) -> Blink | None:
        """Feed one frame's EAR; returns the blink that this frame completes, if any."""
        cfg = self.config
        if self._last_s is not None and time_s - self._last_s > cfg.max_gap_s:
            self.reset()
        self._last_s = time_s
        base = self.baseline
        if base is None or base <= 0:
            self._remember_open(ear, time_s)
            return None
        ratio = ear / base
        if ratio < cfg.blink_close_ratio:
            self._closed.append((time_s, ratio))
            if time_s - self._closed[0][0] > cfg.blink_max_s:
                # Eyes kept low for too long: looking down or squinting, not a blink.
                self._closed = []
            return None
        if not self._closed:
            if ratio >= cfg.blink_open_ratio:
                self._remember_open(ear, time_s)
            return None
        if ratio < cfg.blink_open_ratio:
            return None  # half-open: wait for the eye to open fully
        closed, self._closed = self._closed, []
        self._remember_open(ear, time_s)
        if len(closed) < cfg.blink_min_frames:
            return None
        return Blink(start_s=closed[0][0], end_s=closed[-1][0], depth=min(r for _, r in closed))

    def _remember_open(self, ear: float, time_s: float) -> None:
        self._open.append((time_s, ear))
        while self._open and time_s - self._open[0][0] > self.config.baseline_s:
            self._open.popleft()


# --- the challenge ---------------------------------------------------------------------------


def random_challenge(n_steps: int = 2, rng: random.Random | None = None,
                     actions: Sequence[str] = ACTIONS) -> list[str]:
    """``n_steps`` distinct actions in random order; ``rng`` defaults to the OS's secure source."""
    if not 1 <= n_steps <= len(actions):
        raise ChallengeError(f"n_steps must be between 1 and {len(actions)}, got {n_steps}")
    return (rng or secrets.SystemRandom()).sample(list(actions), n_steps)


def validate_steps(steps: Sequence[str]) -> list[str]:
    """The steps as a list, or ChallengeError for an unknown or repeated action."""
    steps = list(steps)
    unknown = [s for s in steps if s not in ACTIONS]
    if unknown or not steps:
        raise ChallengeError(f"unknown or missing action(s) {unknown}; choose from {', '.join(ACTIONS)}")
    if len(set(steps)) != len(steps):
        raise ChallengeError(f"each action may appear once: {steps}")
    return steps


@dataclass(frozen=True)
class StepResult:
    """The outcome of one step of the challenge."""

    action: str
    passed: bool
    started_s: float
    ended_s: float
    reason: str | None = None
    value: float | None = None  # blink depth, yaw change or mouth ratio that passed the step

    def to_dict(self) -> dict:
        """A JSON-ready description."""
        return {
            "action": self.action,
            "passed": self.passed,
            "started_s": round(self.started_s, 3),
            "ended_s": round(self.ended_s, 3),
            "reason": self.reason,
            "value": None if self.value is None else round(self.value, 4),
        }


@dataclass
class ActiveLivenessResult:
    """The verdict: every step passed in order within its time limit, or why not.

    ``passive`` is the subject's passive liveness over the challenge's frames (None when the
    session had no passive check); :attr:`live` needs both.
    """

    passed: bool
    steps: list[StepResult]
    reason: str | None
    elapsed_s: float
    challenge: list[str] = field(default_factory=list)
    frames: int = 0
    face_frames: int = 0
    multiple_faces_frames: int = 0
    passive: TrackLiveness | None = None

    @property
    def live(self) -> bool:
        """Every step passed and, when it was checked, the passive liveness too."""
        return self.passed and (self.passive is None or self.passive.is_live is True)

    def to_dict(self) -> dict:
        """A JSON-ready description."""
        return {
            "live": self.live,
            "passed": self.passed,
            "reason": self.reason,
            "challenge": list(self.challenge),
            "steps": [s.to_dict() for s in self.steps],
            "elapsed_s": round(self.elapsed_s, 3),
            "frames": self.frames,
            "face_frames": self.face_frames,
            "multiple_faces_frames": self.multiple_faces_frames,
            **({"passive": self.passive.to_dict()} if self.passive is not None else {}),
        }


@dataclass(frozen=True)
class SessionState:
    """What a live loop shows after each frame: the phase, the instruction and the time left."""

    phase: str  # "calibrating", "challenge", "passed" or "failed"
    step_index: int
    action: str | None
    instruction: str | None
    remaining_s: float | None
    face_found: bool
    measures: FaceMeasures | None = None

    @property
    def done(self) -> bool:
        """True once the session has passed or failed."""
        return self.phase in ("passed", "failed")


class ActiveLivenessSession:
    """One challenge-response check, fed frame by frame (webcam loop or video file alike).

    ``steps`` fixes the actions; otherwise ``n_steps`` are drawn from ``rng`` (a seeded
    ``random.Random`` for tests; by default the OS's secure random source: the replay guard).
    The largest face of each frame is the subject. :meth:`feed` takes an RGB frame;
    :meth:`feed_landmarks` takes that face's 68 landmarks (or None), for callers that already
    have them. With ``passive`` (a :class:`~faceprint.models.pad_passive.PassiveLiveness`),
    :meth:`feed` also checks the subject's passive liveness on every frame and the result keeps the
    mean (:attr:`ActiveLivenessResult.passive`).
    """

    def __init__(
        self,
        steps: Sequence[str] | None = None,
        *,
        n_steps: int = 2,
        timeout_s: float = 5.0,
        rng: random.Random | None = None,
        config: ActiveConfig | None = None,
        mirrored: bool = False,
        finder=None,
        landmarker=None,
        passive: PassiveLiveness | None = None,
    ) -> None:
        self.challenge = validate_steps(steps) if steps is not None else random_challenge(n_steps, rng)
        self._passive = passive
        self._passive_track = TrackLiveness(threshold=passive.threshold) if passive is not None else None
        self.timeout_s = timeout_s
        self.config = config or ActiveConfig()
        self.mirrored = mirrored
        self._finder = finder
        self._landmarker = landmarker
        self._blinks = BlinkDetector(self.config)
        self._calibration: list[FaceMeasures] = []
        self._calibration_t0: float | None = None
        self._neutral: FaceMeasures | None = None
        self._phase = "calibrating"
        self._step = 0
        self._phase_start: float | None = None
        self._seen_neutral = False
        self._smiling: deque[float] = deque()
        self._results: list[StepResult] = []
        self._reason: str | None = None
        self._first_s: float | None = None
        self._last_s = 0.0
        self._frames = 0
        self._face_frames = 0
        self._multi = 0

    @property
    def done(self) -> bool:
        """True once the session has passed or failed."""
        return self._phase in ("passed", "failed")

    def feed(self, frame_rgb: np.ndarray, time_s: float) -> SessionState:
        """Process one RGB frame taken at ``time_s`` seconds; returns the state to show."""
        if self.done:
            return self._state(None)
        if self._finder is None:
            from ..engine import Engine

            self._finder = Engine("fast").finder
        if self._landmarker is None:
            from ..models.registry import load_landmarker

            self._landmarker = load_landmarker()
        faces = self._finder.find(frame_rgb)  # largest first
        if len(faces) > 1:
            self._multi += 1
        if faces and self._passive is not None:
            self._passive_track.add(self._passive.check(frame_rgb, faces[0]))
        points = self._landmarker.landmarks(frame_rgb, faces[0].box) if faces else None
        return self.feed_landmarks(points, time_s)

    def feed_landmarks(self, points: np.ndarray | None, time_s: float) -> SessionState:
        """Process the subject's 68 landmarks (None: no face) at ``time_s`` seconds."""
        if self.done:
            return self._state(None)
        self._frames += 1
        if self._first_s is None:
            self._first_s = time_s
            self._phase_start = time_s
        self._last_s = time_s
        measures = None
        if points is not None:
            self._face_frames += 1
            measures = FaceMeasures.from_landmarks(points, mirrored=self.mirrored)
        if self._phase == "calibrating":
            self._calibrate(measures, time_s)
        elif self._phase == "challenge":
            self._check_step(measures, time_s)
        return self._state(measures)

    def result(self) -> ActiveLivenessResult:
        """The verdict so far; a session stopped before the end fails with reason 'incomplete'."""
        reason = self._reason
        if not self.done:
            reason = f"incomplete: the video ended during {self._current_label()}"
        steps = list(self._results)
        return ActiveLivenessResult(
            passed=self._phase == "passed",
            steps=steps,
            reason=reason,
            elapsed_s=0.0 if self._first_s is None else self._last_s - self._first_s,
            challenge=list(self.challenge),
            frames=self._frames,
            face_frames=self._face_frames,
            multiple_faces_frames=self._multi,
            passive=self._passive_track,
        )

    # -- internals --

    def _current_label(self) -> str:
        if self._phase == "calibrating":
            return "calibration"
        return f"step {self._step + 1} ({self.challenge[self._step]})"

    def _calibrate(self, measures: FaceMeasures | None, time_s: float) -> None:
        cfg = self.config
        if measures is not None:
            if self._calibration_t0 is None:
                self._calibration_t0 = time_s
            self._calibration.append(measures)
            self._blinks.update(measures.ear, time_s)
            span = time_s - self._calibration_t0
            if len(self._calibration) >= cfg.calibration_min_frames and span >= cfg.calibration_s:
                self._neutral = FaceMeasures(
                    ear=statistics.median(m.ear for m in self._calibration),
                    yaw=statistics.median(m.yaw for m in self._calibration),
                    mouth=statistics.median(m.mouth for m in self._calibration),
                )
                log.info("calibrated: %s", self._neutral)
                self._start_step(0, time_s)
                return
        if time_s - self._phase_start > self.timeout_s:
            self._fail(f"no steady face to calibrate on within {self.timeout_s:g} s", time_s)

    def _start_step(self, index: int, time_s: float) -> None:
        self._phase = "challenge"
        self._step = index
        self._phase_start = time_s
        self._seen_neutral = False

    def _finish_step(self, passed: bool, time_s: float, reason: str | None = None,
                     value: float | None = None) -> None:
        action = self.challenge[self._step]
        self._results.append(StepResult(action, passed, self._phase_start, time_s, reason, value))
        if not passed:
            self._fail(f"step {self._step + 1} ({action}): {reason}", time_s)
        elif self._step + 1 == len(self.challenge):
            self._phase = "passed"
        else:
            self._start_step(self._step + 1, time_s)

    def _fail(self, reason: str, time_s: float) -> None:
        log.info("active liveness failed at %.2f s: %s", time_s, reason)
        self._phase = "failed"
        self._reason = reason

    def _check_step(self, measures: FaceMeasures | None, time_s: float) -> None:
        cfg = self.config
        action = self.challenge[self._step]
        if measures is not None:
            blink = self._blinks.update(measures.ear, time_s)
            turn = measures.yaw - self._neutral.yaw
            smile = measures.mouth / self._neutral.mouth if self._neutral.mouth > 0 else 1.0
            if abs(turn) < cfg.turn_threshold / 2.0:
                self._seen_neutral = True
            if smile > cfg.smile_ratio:
                self._smiling.append(time_s)
            if blink is not None and any(blink.start_s <= t <= time_s for t in self._smiling):
                log.debug("eye closure %.2f-%.2f s during a smile: not counted as a blink", blink.start_s, blink.end_s)
                blink = None
            while self._smiling and time_s - self._smiling[0] > 2 * cfg.blink_max_s:
                self._smiling.popleft()
            turned = TURN_LEFT if turn > cfg.turn_threshold else TURN_RIGHT if turn < -cfg.turn_threshold else None
            if action == BLINK and blink is not None and blink.start_s >= self._phase_start:
                self._finish_step(True, time_s, value=blink.depth)
                return
            if action == SMILE and smile > cfg.smile_ratio:
                self._finish_step(True, time_s, value=smile)
                return
            if turned is not None and self._seen_neutral:
                if turned == action:
                    self._finish_step(True, time_s, value=turn)
                else:
                    self._finish_step(False, time_s, f"wrong action: {turned} when asked to {action}", turn)
                return
        if time_s - self._phase_start > self.timeout_s:
            seen = "no face seen" if measures is None else f"no {action}"
            self._finish_step(False, time_s, f"timeout: {seen} within {self.timeout_s:g} s")

    def _state(self, measures: FaceMeasures | None) -> SessionState:
        action = self.challenge[self._step] if self._phase == "challenge" else None
        if self._phase == "calibrating":
            instruction = CALIBRATION_INSTRUCTION
        else:
            instruction = INSTRUCTIONS[action] if action else None
        remaining = None
        if not self.done and self._phase_start is not None:
            remaining = max(0.0, self.timeout_s - (self._last_s - self._phase_start))
        return SessionState(self._phase, self._step, action, instruction, remaining, measures is not None, measures)


def run_challenge(source: str | int | os.PathLike, session: ActiveLivenessSession, *,
                  every: int = 1, on_state=None) -> ActiveLivenessResult:
    """Feed a video file or camera to ``session`` until it passes, fails or the video ends.

    ``on_state(state)`` is called after every frame (to show instructions to a webcam user).
    """
    from ..video.source import VideoSource

    with VideoSource(source) as video:
        for frame in video.frames(every=every):
            state = session.feed(frame.image, frame.time_s)
            if on_state is not None:
                on_state(state)
            if state.done:
                break
    return session.result()


# --- blink counting (no instructions: who blinked, and when) ---------------------------------


@dataclass
class BlinkTrack:
    """One face followed through the video and the blinks found on it."""

    track_id: int
    first_s: float
    last_s: float
    frames: int
    centre: tuple[float, float]
    blinks: list[Blink] = field(default_factory=list)
    ears: list[tuple[float, float]] = field(default_factory=list, repr=False)
    passive: TrackLiveness | None = None

    def to_dict(self) -> dict:
        """A JSON-ready description (the EAR series is left out)."""
        return {
            "track": self.track_id,
            "first_s": round(self.first_s, 3),
            "last_s": round(self.last_s, 3),
            "frames": self.frames,
            "centre": [round(self.centre[0], 1), round(self.centre[1], 1)],
            "blinks": [b.to_dict() for b in self.blinks],
            **({"passive": self.passive.to_dict()} if self.passive is not None else {}),
        }


@dataclass
class BlinkReport:
    """Every face track of a video with its blinks."""

    source: str
    frames: int
    duration_s: float
    tracks: list[BlinkTrack]

    @property
    def blink_count(self) -> int:
        """Blinks over all tracks."""
        return sum(len(t.blinks) for t in self.tracks)

    def to_dict(self) -> dict:
        """A JSON-ready description."""
        return {
            "source": self.source,
            "frames": self.frames,
            "duration_s": round(self.duration_s, 3),
            "blinks": self.blink_count,
            "tracks": [t.to_dict() for t in self.tracks],
        }


SCENE_CUT = 20.0  # grey levels; the Hamilton clip's three cuts score 27-31, its camera moves at most 14


class _Tracker:
    """Greedy nearest-centre matching of face boxes from frame to frame."""

    def __init__(self, config: ActiveConfig, min_size: float, passive: PassiveLiveness | None = None) -> None:
        self.config = config
        self.min_size = min_size
        self.passive = passive
        self.tracks: list[BlinkTrack] = []
        self._detectors: dict[int, BlinkDetector] = {}
        self._box_width: dict[int, float] = {}
        self._cut_at = 0

    def cut(self) -> None:
        """A scene cut: every current track ends, faces after it start new tracks."""
        self._cut_at = len(self.tracks)

    def update(self, faces, points_of, time_s: float) -> None:
        live = [t for t in self.tracks[self._cut_at:] if time_s - t.last_s <= self.config.max_gap_s]
        taken: set[int] = set()
        for face in faces:
            if min(face.box.width, face.box.height) < self.min_size:
                continue
            cx, cy = face.box.center
            best, best_d = None, None
            for track in live:
                if track.track_id in taken:
                    continue
                d = float(np.hypot(cx - track.centre[0], cy - track.centre[1]))
                if d < 0.5 * self._box_width[track.track_id] and (best_d is None or d < best_d):
                    best, best_d = track, d
            if best is None:
                best = BlinkTrack(len(self.tracks), time_s, time_s, 0, (cx, cy),
                                  passive=TrackLiveness(threshold=self.passive.threshold) if self.passive else None)
                self.tracks.append(best)
                self._detectors[best.track_id] = BlinkDetector(self.config)
            taken.add(best.track_id)
            best.last_s, best.centre = time_s, (cx, cy)
            best.frames += 1
            self._box_width[best.track_id] = face.box.width
            ear = FaceMeasures.from_landmarks(points_of(face)).ear
            best.ears.append((time_s, ear))
            if self.passive is not None and face.image is not None:
                best.passive.add(self.passive.check(face.image, face))
            blink = self._detectors[best.track_id].update(ear, time_s)
            if blink is not None:
                best.blinks.append(blink)


def _thumbnail(image: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (64, 36), interpolation=cv2.INTER_AREA).astype(np.float32)


def count_blinks(source: str | int | os.PathLike, *, every: int = 1, min_face: float = 40.0,
                 config: ActiveConfig | None = None, finder=None, landmarker=None,
                 passive: PassiveLiveness | None = None,
                 limit: int | None = None) -> BlinkReport:
    """Blinks of every face (at least ``min_face`` pixels) in a video: who blinked and when.

    Faces are followed by nearest box centre from frame to frame; a face unseen for more than
    ``max_gap_s``, or any face after a scene cut (mean grey change of a 64x36 thumbnail above
    ``SCENE_CUT``), starts a new track.
    """
    from ..video.source import VideoSource

    if finder is None:
        from ..engine import Engine

        finder = Engine("fast").finder
    if landmarker is None:
        from ..models.registry import load_landmarker

        landmarker = load_landmarker()
    tracker = _Tracker(config or ActiveConfig(), min_face, passive)
    frames = 0
    last_s = 0.0
    previous = None
    with VideoSource(source) as video:
        label = video.label
        for frame in video.frames(every=every, limit=limit):
            frames += 1
            last_s = frame.time_s
            thumb = _thumbnail(frame.image)
            if previous is not None and float(np.abs(thumb - previous).mean()) > SCENE_CUT:
                tracker.cut()
            previous = thumb
            faces = finder.find(frame.image)
            tracker.update(faces, lambda f, img=frame.image: landmarker.landmarks(img, f.box), frame.time_s)
    return BlinkReport(source=label, frames=frames, duration_s=last_s, tracks=tracker.tracks)
