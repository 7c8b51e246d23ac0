"""The recognition pipeline, one module per step: image -> detections -> quality gate -> aligned crops -> templates.

- :mod:`~faceprint.pipeline.image_io`: any input (path, bytes, array, PIL image) to an RGB array;
- :mod:`~faceprint.pipeline.detection`: faces (box, five landmarks, score), the image turned
  upright where needed, each face scored by the quality gate;
- :mod:`~faceprint.pipeline.quality`: the quality gate (is a face good enough to make a template from?);
- :mod:`~faceprint.pipeline.align`: the crop each embedder wants, warped onto its landmark template;
- :mod:`~faceprint.pipeline.embedding`: templates (per-embedder embeddings, fused, unit length);
- :mod:`~faceprint.pipeline.draw`: the results drawn over the image.

Templates then go to a gallery (:mod:`faceprint.gallery`) and to a decision
(:class:`faceprint.engine.Engine`); nothing here imports either.
"""
