"""A bounded pool for model inference: a burst of requests queues, and past the queue it is refused.

Models are not safe to share between threads (OpenCV's DNN nets and face detector keep state),
so each worker thread has its own :class:`~faceprint.engine.Engine` per profile. At most
``workers`` jobs run at once and at most ``queue`` more wait; a job beyond that raises
:class:`BusyError` at once (HTTP 429), and a job that waits or runs longer than ``timeout_s``
raises :class:`InferenceTimeoutError` (HTTP 503) while the work itself finishes in the background.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from ..engine import Engine
from ..errors import FaceprintError

T = TypeVar("T")


class BusyError(FaceprintError):
    """Every worker is busy and the queue is full; retry later."""

    code = "busy"


class InferenceTimeoutError(FaceprintError):
    """The request took longer than the service's time limit."""

    code = "timeout"


class InferencePool:
    """Run ``fn(engine)`` on a worker thread with that thread's engine for a profile."""

    def __init__(self, workers: int, queue: int, timeout_s: float, fmr: float, max_pixels: int) -> None:
        if workers < 1 or queue < 0:
            raise ValueError("workers must be >= 1 and queue >= 0")
        self.workers, self.queue, self.timeout_s = workers, queue, timeout_s
        self.fmr, self.max_pixels = fmr, max_pixels
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="faceprint-infer")
        self._slots = threading.BoundedSemaphore(workers + queue)
        self._local = threading.local()
        self._pending = 0
        self._count_lock = threading.Lock()

    @property
    def pending(self) -> int:
        """Jobs running or waiting now."""
        return self._pending

    def engine(self, profile: str, fair: bool = False) -> Engine:
        """This worker thread's engine for ``profile``, with fair scores when ``fair`` (made on first use)."""
        engines = self._local.__dict__.setdefault("engines", {})
        if (profile, fair) not in engines:
            engines[profile, fair] = Engine(profile, fmr=self.fmr, max_pixels=self.max_pixels, fair=fair)
        return engines[profile, fair]

    def _release(self, _future: object = None) -> None:
        # A done-callback: runs when the job ends, fails or is cancelled before it started.
        with self._count_lock:
            self._pending -= 1
        self._slots.release()

    async def submit(self, profile: str, fn: Callable[[Engine], T], *, fair: bool = False) -> T:
        """Run ``fn`` with a worker's engine for ``profile`` (fair scores if ``fair``); BusyError or timeout error."""
        if not self._slots.acquire(blocking=False):
            raise BusyError(f"all {self.workers} workers busy and {self.queue} requests queued; retry shortly")
        with self._count_lock:
            self._pending += 1
        try:
            future = self._executor.submit(lambda: fn(self.engine(profile, fair)))
        except BaseException:
            self._release()
            raise
        future.add_done_callback(self._release)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout=self.timeout_s)
        except asyncio.TimeoutError as exc:
            raise InferenceTimeoutError(f"request took longer than {self.timeout_s:g} s") from exc

    def warm(self, profile: str) -> None:
        """Load ``profile``'s models on every worker thread (so the first requests are not slow)."""
        barrier = threading.Barrier(self.workers)

        def load() -> None:
            self.engine(profile).recognizer  # noqa: B018 - loads the embedders
            self.engine(profile).finder  # noqa: B018 - loads the detector
            barrier.wait(timeout=120)  # one load per thread: hold each thread until all have one

        for f in [self._executor.submit(load) for _ in range(self.workers)]:
            f.result()

    def close(self) -> None:
        """Stop accepting work and wait for running jobs."""
        self._executor.shutdown(wait=True, cancel_futures=True)
