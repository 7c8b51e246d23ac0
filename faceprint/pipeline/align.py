"""Five-point similarity alignment: warp a face so its landmarks land on a model's template.

Pure functions; no state. The transform is the least-squares similarity (rotation, uniform scale,
translation) of Umeyama (1991), the same one insightface's ``norm_crop`` and OpenCV's
``FaceRecognizerSF.alignCrop`` use. They are defined in :mod:`faceprint.models.warp`, since each
model's crop is defined by them.
"""

from __future__ import annotations

from ..models.base import ARCFACE_112  # noqa: F401 (the template most embedders align to)
from ..models.warp import align_face, similarity_transform  # noqa: F401 (the pipeline's names for them)
