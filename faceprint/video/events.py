"""Sighting events of a video run, as they happen: a JSON-lines file and a webhook.

:class:`~faceprint.video.recognition.VideoRecognizer` reports a :class:`TrackEvent` when a
confirmed track's identity is first decided (``seen``), when it changes (``changed``) and when the
track ends (``ended``). The outputs here take them one by one:

- :class:`JsonLinesSink` appends one JSON object per line to a file and flushes each line, so a
  reader tailing the file sees every event at once;
- :class:`WebhookSink` POSTs each event as JSON from a background thread through a bounded queue,
  with a timeout and a few retries per event, so a slow or dead receiver never stalls the video
  loop (a full queue drops the event, with a warning);
- :class:`EventOutputs` hands each event to several of them.

    outputs = EventOutputs([JsonLinesSink("events.jsonl"), WebhookSink("http://127.0.0.1:8080/hook")])
    try:
        timeline = VideoRecognizer(engine, gallery).run(source, on_event=outputs.emit)
    finally:
        outputs.close()   # waits up to drain_s for the webhook's queue to empty
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from ..errors import FaceprintError

log = logging.getLogger(__name__)

EventKind = Literal["seen", "changed", "ended"]


class EventOutputError(FaceprintError):
    """The events file cannot be written, or the webhook URL is not an http(s) URL."""

    code = "event_output_failed"


@dataclass(frozen=True)
class TrackEvent:
    """One sighting event of one confirmed track.

    ``kind``: ``seen`` (identity first decided), ``changed`` (the name changed) or ``ended`` (the
    track ended; ``person`` and ``score`` are then its final decision). ``person``: the enrolled
    person, or ``None`` for unknown. ``score``: cosine similarity in [-1, 1] of the track's mean
    template to ``nearest`` (the best-matching enrolled person, named or not), compared with
    ``threshold``. ``frame`` and ``time_s``: where in the video the event happened (seconds from
    the start; they run on across loops and reconnections); ``first_s`` and ``last_s``: the
    track's first and latest observation. ``wall``: local wall-clock time of the event, ISO 8601
    with UTC offset and milliseconds. ``source``: the video's label. ``live``: the track's passive
    liveness so far (mean live score at or above the threshold), or None when not checked
    (``faceprint video`` without ``--require-live``); it is in the JSON only when checked.
    ``expression``: the track's smoothed expression label so far (``faceprint video --attributes
    expression``), or None; in the JSON only when followed.
    """

    kind: EventKind
    track_id: int
    person: str | None
    score: float | None
    threshold: float
    nearest: str | None
    frame: int
    time_s: float
    first_s: float
    last_s: float
    wall: str
    source: str
    live: bool | None = None
    expression: str | None = None

    def to_dict(self) -> dict:
        """A JSON-ready description (the line written to the events file, the webhook's body)."""
        return {"event": self.kind, "track": self.track_id, "person": self.person,
                "score": None if self.score is None else round(self.score, 4),
                "threshold": round(self.threshold, 4), "nearest": self.nearest, "frame": self.frame,
                "t": round(self.time_s, 3), "first_s": round(self.first_s, 3), "last_s": round(self.last_s, 3),
                "wall": self.wall, "source": self.source, **({"live": self.live} if self.live is not None else {}),
                **({"expression": self.expression} if self.expression is not None else {})}


class EventSink(Protocol):
    """Anything that takes events one at a time and can be closed."""

    def emit(self, event: TrackEvent) -> None:
        """Take one event; must return quickly (it runs in the video loop)."""

    def close(self, wait: bool = True) -> None:
        """Finish: flush, deliver what is pending (only when ``wait``), release resources."""


class JsonLinesSink:
    """Appends each event to ``path`` as one JSON line and flushes it at once.

    Raises :class:`EventOutputError` when the file cannot be opened for appending.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        try:
            self._file = self.path.open("a", encoding="utf-8")
        except OSError as exc:
            raise EventOutputError(f"{self.path}: cannot open for writing events ({exc.strerror}); check that "
                                   "the folder exists and is writable") from exc
        self.written = 0

    def emit(self, event: TrackEvent) -> None:
        """Write one line and flush it (raises ``OSError`` when the disk refuses)."""
        self._file.write(json.dumps(event.to_dict()) + "\n")
        self._file.flush()
        self.written += 1

    def close(self, wait: bool = True) -> None:
        """Close the file (``wait`` is for the protocol: every line is already written)."""
        self._file.close()


_CLOSE = object()


class WebhookSink:
    """POSTs each event's JSON to ``url`` from a background thread (httpx).

    ``emit`` only enqueues (never blocks): when ``queue_size`` events are already waiting, the
    event is dropped and counted in ``dropped``, with a warning. Each POST has ``timeout_s``
    seconds; a connection error, timeout, HTTP 408, 429 or 5xx is retried up to ``retries``
    times, waiting ``backoff_s``, then twice that, and so on; other 4xx answers are not retried.
    An event that is not delivered is counted in ``failed`` and logged. :meth:`close` waits up to
    ``drain_s`` seconds for the queue to empty, then gives up on what is left (logged, counted in
    ``failed``). ``delivered`` counts events the receiver accepted (2xx).

    Raises :class:`EventOutputError` when ``url`` is not an ``http://`` or ``https://`` URL.
    """

    def __init__(self, url: str, *, queue_size: int = 1000, timeout_s: float = 5.0, retries: int = 3,
                 backoff_s: float = 0.5, drain_s: float = 10.0) -> None:
        import httpx

        from .._version import __version__

        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise EventOutputError(f"{url}: not a valid webhook URL ({exc}); give an http:// or https:// URL") from exc
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise EventOutputError(f"{url}: the webhook must be an http:// or https:// URL with a host")
        self.url = url
        self.retries = retries
        self.backoff_s = backoff_s
        self.drain_s = drain_s
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._abort = threading.Event()
        self._closed = False
        self._client = httpx.Client(timeout=timeout_s, headers={"User-Agent": f"faceprint/{__version__}"})
        self._thread = threading.Thread(target=self._run, name="faceprint-webhook", daemon=True)
        self._thread.start()

    def emit(self, event: TrackEvent) -> None:
        """Queue the event for posting; drop it (with a warning) when the queue is full."""
        try:
            self._queue.put_nowait(event.to_dict())
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                log.warning("webhook %s: receiver too slow, %d event(s) dropped so far (%d waiting)",
                            self.url, self.dropped, self._queue.maxsize)

    def _run(self) -> None:
        with self._client:
            while not self._abort.is_set():
                payload = self._queue.get()
                if payload is _CLOSE:
                    return
                self._deliver(payload)

    def _deliver(self, payload: dict) -> None:
        import httpx

        reason = "not attempted"
        attempts = 0
        for attempt in range(self.retries + 1):
            if attempt and self._abort.wait(self.backoff_s * 2 ** (attempt - 1)):
                break
            attempts += 1
            try:
                response = self._client.post(self.url, json=payload)
            except httpx.HTTPError as exc:
                reason = f"{type(exc).__name__}: {exc}"
                continue
            if response.is_success:
                self.delivered += 1
                return
            reason = f"HTTP {response.status_code}"
            if response.status_code < 500 and response.status_code not in (408, 429):
                break
        self.failed += 1
        log.warning("webhook %s: %s event of track %s not delivered after %d attempt(s): %s", self.url,
                    payload.get("event"), payload.get("track"), attempts, reason)

    def close(self, wait: bool = True) -> None:
        """Deliver what is queued (up to ``drain_s`` seconds; not at all unless ``wait``), then stop."""
        if self._closed:
            return
        self._closed = True
        drain_s = self.drain_s if wait else 0.0
        deadline = time.monotonic() + drain_s
        try:
            self._queue.put(_CLOSE, timeout=drain_s)
        except queue.Full:
            pass
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            self._abort.set()
            left = sum(1 for item in list(self._queue.queue) if item is not _CLOSE)
            self.failed += left
            log.warning("webhook %s: receiver still busy after %.0f s; %d queued event(s) not delivered",
                        self.url, drain_s, left)


class EventOutputs:
    """Hands each event to every sink; a sink whose ``emit`` raises ``OSError`` is logged, not fatal.

    (An events file on a full disk must not end an hour of monitoring: the run goes on, the error
    is logged once per sink, and the timeline is still written at the end.)
    """

    def __init__(self, sinks: Sequence[EventSink]) -> None:
        self.sinks = list(sinks)
        self.count = 0
        self._failing: set[int] = set()

    def emit(self, event: TrackEvent) -> None:
        """Give ``event`` to every sink."""
        self.count += 1
        for i, sink in enumerate(self.sinks):
            try:
                sink.emit(event)
            except OSError as exc:
                if i not in self._failing:
                    self._failing.add(i)
                    log.error("event output %s failed: %s (the run goes on; later failures not logged)",
                              type(sink).__name__, exc)

    def close(self, wait: bool = True) -> None:
        """Close every sink (``wait``: let them deliver what is pending), even when one raises.

        The first error is raised once all sinks are closed.
        """
        error: BaseException | None = None
        for sink in self.sinks:
            try:
                sink.close(wait)
            except Exception as exc:  # noqa: BLE001 - re-raised below once all sinks are closed
                error = error or exc
        if error is not None:
            raise error
