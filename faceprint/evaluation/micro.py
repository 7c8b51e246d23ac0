"""Micro-expression spotting measured on synthetic sequences made from real face photos.

No labelled micro-expression set is available here, so a sequence is made from one still photo:
a random walk of sub-pixel head motion (``jitter_px`` per frame) with sensor noise (``noise``
grey levels), and in one region (a brow, a mouth corner) a smooth upward bump whose centre moves
``amplitude`` inter-ocular distances (IOD) at the apex. The bump rises from ``onset`` to ``apex``
and is gone at ``offset``: the first moved frame is ``onset + 1``, the last ``offset - 1``.
:func:`score_spotting` compares :func:`faceprint.video.micro.spot_frames` with the plant: recall
(the planted region has an event whose onset-offset span holds the apex), onset and apex frame
errors, events in another region during the planted movement (``spill``: a brow bump also moves
the eye below it) and events at any other time (false events).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ..engine import Engine
from ..models import registry
from ..video.micro import REGIONS, SpotSettings, spot_frames
from ..video.source import Frame


@dataclass(frozen=True)
class Plant:
    """Where and when a synthetic movement is planted (frames at ``fps``), and how large (IOD)."""

    region: str
    onset: int = 20
    apex: int = 24
    offset: int = 29
    amplitude: float = 0.04
    frames: int = 48
    fps: float = 30.0
    jitter_px: float = 0.3
    noise: float = 1.5


def planted_sequence(image: np.ndarray, points: np.ndarray, plant: Plant, seed: int = 0) -> list[Frame]:
    """Frames of ``image`` (RGB uint8) with ``plant`` applied around its region of the 68 ``points``."""
    iod = float(np.linalg.norm(points[36:42].mean(0) - points[42:48].mean(0)))
    cx, cy = points[list(REGIONS[plant.region][0])].mean(0)
    yy, xx = np.mgrid[0:image.shape[0], 0:image.shape[1]].astype(np.float32)
    bump = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (0.15 * iod) ** 2)).astype(np.float32)
    rng = np.random.default_rng(seed)
    frames, tx, ty = [], 0.0, 0.0
    for t in range(plant.frames):
        if t <= plant.onset or t >= plant.offset:
            s = 0.0
        elif t <= plant.apex:
            s = (t - plant.onset) / (plant.apex - plant.onset)
        else:
            s = (plant.offset - t) / (plant.offset - plant.apex)
        tx, ty = tx + rng.normal(0, plant.jitter_px), ty + rng.normal(0, plant.jitter_px)
        moved = cv2.remap(image, xx - tx, yy - ty + plant.amplitude * iod * s * bump, cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT)
        noisy = np.clip(moved + rng.normal(0, plant.noise, moved.shape), 0, 255).astype(np.uint8)
        frames.append(Frame(t, t / plant.fps, noisy))
    return frames


@dataclass(frozen=True)
class SpotScore:
    """How the spotter did on synthetic sequences: ``found`` of ``planted``, frame errors of the found
    ones (``onset_errors``, ``apex_errors``), ``spill`` events in other regions during a planted
    movement, and ``false_events`` at other times."""

    planted: int
    found: int
    onset_errors: tuple[int, ...]
    apex_errors: tuple[int, ...]
    false_events: int
    spill: int = 0

    @property
    def recall(self) -> float:
        """Share of planted movements found (0-1)."""
        return self.found / self.planted if self.planted else float("nan")

    def to_dict(self) -> dict:
        """A JSON-ready description."""
        return {"planted": self.planted, "found": self.found, "recall": round(self.recall, 4),
                "onset_error_mean": round(float(np.mean(self.onset_errors)), 3) if self.onset_errors else None,
                "apex_error_mean": round(float(np.mean(self.apex_errors)), 3) if self.apex_errors else None,
                "onset_error_max": max(self.onset_errors, default=None),
                "apex_error_max": max(self.apex_errors, default=None), "spill": self.spill,
                "false_events": self.false_events}


def score_spotting(engine: Engine, images: Sequence[np.ndarray], plants: Sequence[Plant],
                   settings: SpotSettings | None = None) -> SpotScore:
    """Plant ``plants[i]`` in ``images[i]`` (RGB uint8, one face each), spot, and score (see the module docstring)."""
    landmarker = registry.load_landmarker()
    found, onset_err, apex_err, false, spill = 0, [], [], 0, 0
    for seed, (image, plant) in enumerate(zip(images, plants, strict=True)):
        points = landmarker.landmarks(image, engine.detect(image)[0].box)
        events = spot_frames(planted_sequence(image, points, plant, seed), plant.fps, engine, settings).events
        hits = [e for e in events if e.region == plant.region and e.onset <= plant.apex <= e.offset]
        others = [e for e in events if not (hits and e is hits[0])]
        during = [e for e in others if e.region != plant.region and e.onset < plant.offset and e.offset > plant.onset]
        spill += len(during)
        false += len(others) - len(during)
        if hits:
            found += 1
            onset_err.append(abs(hits[0].onset - (plant.onset + 1)))
            apex_err.append(abs(hits[0].apex - plant.apex))
    return SpotScore(len(plants), found, tuple(onset_err), tuple(apex_err), false, spill)
