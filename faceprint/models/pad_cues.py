"""Recapture cues a person can check: which hand-crafted signs of a print or a screen a face shows.

They do not decide anything (the MiniFASNet networks do: :mod:`faceprint.models.pad_passive`);
they are listed with a rejected face as evidence to look at. Each cue is a number from
:mod:`faceprint.models.pad_features` and fires when it is beyond what 99 of 100 live LFW View 1
DevTrain photos show (:data:`CUES`, limits measured by ``benchmarks/pad.py``, so about 1% of live
faces fire each cue by chance). Measured firing rates on attacks are in docs/liveness.md: they fire
on some synthetic prints and screens and on none of the real replay frames, so an attack without a
cue is not evidence of a live face.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..types import Box, LivenessCue
from .pad_features import cue_values, face_view


@dataclass(frozen=True)
class Cue:
    """One recapture cue: its ``name``, what it means (``explains``) and its ``limit``.

    99 of 100 live DevTrain photos stay on the safe side of ``limit``: the cue fires above it when
    ``above``, else below it.
    """

    name: str
    explains: str
    limit: float
    above: bool


#: The cues, with limits at the 99th percentile of 3,443 live LFW View 1 DevTrain photos (benchmarks/pad.py).
CUES: tuple[Cue, ...] = (
    Cue("moire", "a narrow high-frequency peak in the face's spectrum (screen pixel grid or print halftone)",
        8.411, True),
    Cue("colour gamut", "little colour spread in the face (print or display gamut)", 0.036, False),
    Cue("washed out", "low contrast between the face's darkest and brightest parts (display black level, paper)",
        0.394, False),
    Cue("glare", "bright colourless highlights on the face (light reflected by glass or glossy paper)", 0.285, True),
)


def recapture_cues(image: np.ndarray, box: Box | None) -> tuple[LivenessCue, ...]:
    """The cues of :data:`CUES` that fire for ``box`` in the RGB uint8 ``image`` (the whole image for None)."""
    values = cue_values(face_view(image, box))
    fired = []
    for cue in CUES:
        value = values[cue.name]
        if (value > cue.limit) if cue.above else (value < cue.limit):
            side = "above" if cue.above else "below"
            fired.append(LivenessCue(cue.name, value, cue.limit,
                                     f"{cue.name}: {cue.explains}; {value:.3f}, {side} the live limit {cue.limit:g}"))
    return tuple(fired)
