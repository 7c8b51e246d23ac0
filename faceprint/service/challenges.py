"""Active liveness challenges driven over HTTP: the random blink / turn / smile check of
:mod:`faceprint.pad.active`, fed with camera frames that a browser posts one at a time.

A challenge is plain data (:class:`ChallengeRecord`): its random steps, who started it, when, and
what the service read off each frame so far (the subject's 68 landmarks, the passive liveness
score, the number of faces). Nothing else is kept between requests: each frame rebuilds the
:class:`~faceprint.pad.active.ActiveLivenessSession` by replaying the stored landmarks (about 50
microseconds a frame) and then feeds the new one. So any process that can read the record can
take the next frame, and the record can live in any store behind :class:`ChallengeStore`:
:class:`MemoryChallengeStore` keeps records in the process with a time to live (one service
process, or replicas with sticky sessions); :class:`PostgresChallengeStore` keeps them in a
PostgreSQL table, so replicas sharing one database share the challenges too.

Times are the service's own clock (seconds since the challenge started, at the arrival of each
frame), never a time the client sends: a client cannot stretch a step's time limit.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Protocol, TypeVar

import numpy as np

from ..errors import FaceprintError
from ..models.pad_passive import THRESHOLD, TrackLiveness
from ..pad.active import (
    CALIBRATION_INSTRUCTION,
    INSTRUCTIONS,
    ActiveLivenessResult,
    ActiveLivenessSession,
    ChallengeError,
    SessionState,
    random_challenge,
)

T = TypeVar("T")

CHALLENGE_TTL_S = 120.0  # a challenge (done or not) is forgotten this long after it started
MAX_FRAMES = 600  # frames one challenge may take (5 steps' worth at 25 frames a second)
MAX_CHALLENGES = 1000  # challenges one in-memory store holds at once


class ChallengeNotFoundError(FaceprintError):
    """No such challenge for this key: never started, started by another key, or expired."""

    code = "challenge_not_found"


class TooManyChallengesError(FaceprintError):
    """The store holds as many open challenges as it may; retry when some have expired."""

    code = "busy"


@dataclass
class FrameRecord:
    """What the service read off one frame: its time, the subject's landmarks and passive liveness.

    ``time_s``: seconds since the challenge started (service clock). ``points``: the largest face's
    68 [x, y] landmarks in pixels, or None when no face was found. ``passive``: that face's passive
    live probability (0-1), ``live`` whether it passed on its own, ``judged`` False when the face
    was greyscale (not judged, so not live) and ``attack_type`` the attack named when it did not
    pass. ``faces``: faces detected in the frame; ``box``: the largest one's [x, y, w, h] in pixels.
    """

    time_s: float
    points: list[list[float]] | None = None
    box: list[float] | None = None
    faces: int = 0
    passive: float | None = None
    live: bool | None = None
    attack_type: str | None = None
    judged: bool = True


@dataclass
class ChallengeRecord:
    """One challenge as stored: plain, JSON-ready data (see the module docstring)."""

    id: str
    key_id: str
    steps: list[str]
    timeout_s: float
    mirrored: bool
    started_at: float  # Unix time (s) at which the service started it
    passive_threshold: float = THRESHOLD
    frames: list[FrameRecord] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The record as JSON-ready data (what a shared store would write)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ChallengeRecord:
        """A record from :meth:`to_dict`'s output."""
        return cls(**{**data, "frames": [FrameRecord(**f) for f in data.get("frames", [])]})


class ChallengeStore(Protocol):
    """Where challenge records live between requests.

    ``update`` must run ``change`` on the current record and keep what it leaves there as one
    atomic step (a lock, or a transaction with ``SELECT ... FOR UPDATE`` in a database), so two
    frames of one challenge never interleave.
    """

    def add(self, record: ChallengeRecord) -> None:
        """Store a new record (TooManyChallengesError when the store is full)."""

    def get(self, challenge_id: str) -> ChallengeRecord | None:
        """The record, or None when unknown or expired."""

    def update(self, challenge_id: str, change: Callable[[ChallengeRecord], T]) -> T:
        """Apply ``change`` to the record in place, atomically; ChallengeNotFoundError when absent."""

    def close(self) -> None:
        """Let go of any connection."""


class MemoryChallengeStore:
    """Challenge records in this process's memory, each forgotten ``ttl_s`` after it started.

    Enough for one service process; several replicas need sticky sessions (each challenge's
    requests to the replica that started it) or a shared store implementing :class:`ChallengeStore`.
    """

    def __init__(self, ttl_s: float = CHALLENGE_TTL_S, max_records: int = MAX_CHALLENGES,
                 clock: Callable[[], float] = time.time) -> None:
        self.ttl_s, self.max_records, self.clock = ttl_s, max_records, clock
        self._records: dict[str, ChallengeRecord] = {}
        self._lock = threading.Lock()

    def _expire(self) -> None:
        now = self.clock()
        for cid in [cid for cid, r in self._records.items() if now - r.started_at > self.ttl_s]:
            del self._records[cid]

    def __len__(self) -> int:
        with self._lock:
            self._expire()
            return len(self._records)

    def add(self, record: ChallengeRecord) -> None:
        with self._lock:
            self._expire()
            if len(self._records) >= self.max_records:
                raise TooManyChallengesError(f"{self.max_records} liveness challenges open; retry in a minute")
            self._records[record.id] = record

    def get(self, challenge_id: str) -> ChallengeRecord | None:
        with self._lock:
            self._expire()
            return self._records.get(challenge_id)

    def update(self, challenge_id: str, change: Callable[[ChallengeRecord], T]) -> T:
        with self._lock:
            self._expire()
            record = self._records.get(challenge_id)
            if record is None:
                raise ChallengeNotFoundError(f"no liveness challenge {challenge_id!r} (or it expired); start a new one")
            return change(record)

    def close(self) -> None:
        """Nothing to let go of: the records go with the process."""


def new_record(key_id: str, *, n_steps: int = 2, timeout_s: float = 5.0, mirrored: bool = False,
               passive_threshold: float = THRESHOLD, now: float | None = None) -> ChallengeRecord:
    """A new challenge of ``n_steps`` distinct actions in random order (the OS's secure source).

    Raises ChallengeError (HTTP 422 ``invalid_challenge``) for ``n_steps`` outside 1-4 or a
    ``timeout_s`` outside 1-30 seconds.
    """
    if not 1.0 <= timeout_s <= 30.0:
        raise ChallengeError(f"step_timeout_s must be between 1 and 30 seconds, got {timeout_s:g}")
    return ChallengeRecord(id=secrets.token_urlsafe(16), key_id=key_id, steps=random_challenge(n_steps),
                           timeout_s=timeout_s, mirrored=mirrored, started_at=time.time() if now is None else now,
                           passive_threshold=passive_threshold)


def read_frame(engine, image: np.ndarray, time_s: float, landmarker=None) -> FrameRecord:
    """What a challenge needs from one RGB frame: the largest face's landmarks and passive liveness.

    ``engine`` finds the faces and checks liveness; ``landmarker`` (default: the process-wide
    68-point dlib model) places the landmarks.
    """
    faces = engine.finder.find(image)  # largest first
    if not faces:
        return FrameRecord(time_s=time_s)
    if landmarker is None:
        from ..models.registry import load_landmarker

        landmarker = load_landmarker()
    face = faces[0]
    points = landmarker.landmarks(image, face.box)
    check = engine.check_live(face)
    return FrameRecord(time_s=time_s, points=np.round(np.asarray(points, dtype=np.float64), 2).tolist(),
                       box=[round(v, 1) for v in face.box.as_list()], faces=len(faces),
                       passive=round(float(check.score), 4), live=bool(check.is_live), attack_type=check.attack_type,
                       judged=bool(check.judged))


def replay(record: ChallengeRecord) -> tuple[ActiveLivenessSession, SessionState | None]:
    """The session as it stands after the record's frames, and the state after the last one."""
    session = ActiveLivenessSession(record.steps, timeout_s=record.timeout_s, mirrored=record.mirrored)
    state = None
    for frame in record.frames:
        points = None if frame.points is None else np.asarray(frame.points, dtype=np.float64)
        state = session.feed_landmarks(points, frame.time_s)
    return session, state


def add_frame(record: ChallengeRecord, frame: FrameRecord) -> SessionState:
    """Feed one more frame to the challenge (unless it is over) and return the state to show.

    A frame that arrives after the challenge passed or failed is not kept. Frames are kept in
    arrival order; a time earlier than the last frame's is moved up to it.
    """
    session, state = replay(record)
    if session.done:
        return state
    if len(record.frames) >= MAX_FRAMES:
        raise ChallengeError(f"this challenge already took {MAX_FRAMES} frames; start a new one")
    if record.frames:
        frame.time_s = max(frame.time_s, record.frames[-1].time_s)
    record.frames.append(frame)
    return session.feed_landmarks(None if frame.points is None else np.asarray(frame.points), frame.time_s)


def result(record: ChallengeRecord) -> ActiveLivenessResult:
    """The verdict so far, with the subject's passive liveness over the frames that showed a face."""
    session, _ = replay(record)
    outcome = session.result()
    track = TrackLiveness(threshold=record.passive_threshold)
    for f in record.frames:
        if f.passive is not None:
            track.scores.append(f.passive)
            if not f.judged:
                track.not_judged += 1
            elif not f.live:
                track.failed_types.append(f.attack_type)
    outcome.passive = track
    outcome.multiple_faces_frames = sum(f.faces > 1 for f in record.frames)
    return outcome


def describe(record: ChallengeRecord, state: SessionState | None = None) -> dict:
    """The JSON answer for a challenge: the steps, the state to show and, once over, the verdict."""
    if state is None:
        _, state = replay(record)
    out = {"id": record.id, "steps": list(record.steps), "instructions": [INSTRUCTIONS[s] for s in record.steps],
           "step_timeout_s": record.timeout_s, "expires_at": record.started_at + CHALLENGE_TTL_S,
           "frames": len(record.frames), "phase": "calibrating", "step": 0, "action": None,
           "instruction": CALIBRATION_INSTRUCTION, "remaining_s": None, "face_found": False, "box": None,
           "done": False, "result": None}
    if state is not None:
        out.update(phase=state.phase, step=state.step_index, action=state.action, instruction=state.instruction,
                   remaining_s=None if state.remaining_s is None else round(state.remaining_s, 2),
                   face_found=state.face_found, done=state.done)
    if record.frames:
        out["box"] = record.frames[-1].box
    if out["done"]:
        verdict = result(record)
        out["result"] = {**verdict.to_dict(), "reason": verdict_reason(verdict)}
    return out


def verdict_reason(verdict: ActiveLivenessResult) -> str | None:
    """Why a finished challenge is not live (a failed step, or the passive check), or None when it is."""
    if not verdict.passed:
        return verdict.reason
    p = verdict.passive
    if p is None or not p.frames:
        return "every step passed, but no face was seen for the passive check"
    if p.not_judged == p.frames:
        return ("every step passed, but the passive check could not judge the frames: the face is greyscale "
                "(an infrared or black-and-white camera); use a colour camera")
    if not p.is_live:
        return (f"every step passed, but passive liveness failed ({p.attack_type or 'attack'} suspected, "
                f"mean live score {p.score:.3f} < {p.threshold:.3f})")
    return None


class PostgresChallengeStore:
    """Challenge records in PostgreSQL (``faceprint_service.liveness_challenges``, JSONB rows), shared by replicas.

    ``update`` reads the row with ``SELECT ... FOR UPDATE`` and writes it back in the same
    transaction, so two frames of one challenge posted to two replicas never interleave. Each
    thread has its own connection. Rows older than ``ttl_s`` are ignored and deleted when the next
    challenge is added. The table is one of the service schema's, made by its migrations
    (:func:`faceprint.service.database.migrate`, schema version 3).
    """

    def __init__(self, url: str, *, ttl_s: float = CHALLENGE_TTL_S, max_records: int = MAX_CHALLENGES,
                 clock: Callable[[], float] = time.time) -> None:
        import psycopg
        from psycopg import sql

        from .database import SCHEMA, migrate

        migrate(url)
        self._psycopg, self._url = psycopg, url
        self.ttl_s, self.max_records, self.clock = ttl_s, max_records, clock
        self._table = sql.Identifier(SCHEMA, "liveness_challenges")
        self._local = threading.local()

    def _connection(self):
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self._local.conn = self._psycopg.connect(self._url, autocommit=True)
        return conn

    def _query(self, text: str):
        from psycopg import sql

        return sql.SQL(text).format(table=self._table)

    def add(self, record: ChallengeRecord) -> None:
        from psycopg.types.json import Jsonb

        conn = self._connection()
        with conn.transaction():
            conn.execute(self._query("DELETE FROM {table} WHERE started_at < %s"), (self.clock() - self.ttl_s,))
            count = conn.execute(self._query("SELECT count(*) FROM {table}")).fetchone()[0]
            if count >= self.max_records:
                raise TooManyChallengesError(f"{self.max_records} liveness challenges open; retry in a minute")
            conn.execute(self._query("INSERT INTO {table} (id, started_at, record) VALUES (%s, %s, %s)"),
                         (record.id, record.started_at, Jsonb(record.to_dict())))

    def get(self, challenge_id: str) -> ChallengeRecord | None:
        row = self._connection().execute(self._query("SELECT record FROM {table} WHERE id = %s AND started_at >= %s"),
                                         (challenge_id, self.clock() - self.ttl_s)).fetchone()
        return None if row is None else ChallengeRecord.from_dict(row[0])

    def update(self, challenge_id: str, change: Callable[[ChallengeRecord], T]) -> T:
        from psycopg.types.json import Jsonb

        conn = self._connection()
        with conn.transaction():
            row = conn.execute(self._query("SELECT record FROM {table} WHERE id = %s AND started_at >= %s FOR UPDATE"),
                               (challenge_id, self.clock() - self.ttl_s)).fetchone()
            if row is None:
                raise ChallengeNotFoundError(f"no liveness challenge {challenge_id!r} (or it expired); start a new one")
            record = ChallengeRecord.from_dict(row[0])
            out = change(record)
            conn.execute(self._query("UPDATE {table} SET record = %s WHERE id = %s"),
                         (Jsonb(record.to_dict()), challenge_id))
            return out

    def close(self) -> None:
        """Close this thread's connection (other threads' close when they end)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
