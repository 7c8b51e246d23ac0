"""Matching: how two templates' similarity becomes a decision.

:mod:`~faceprint.matching.thresholds` turns impostor scores into the threshold of a false-match
rate and interpolates between calibrated thresholds; :mod:`~faceprint.matching.normalisation`
holds the fair score normaliser that ``Engine(fair=True)`` applies to every comparison and gallery
search. This layer sits above the pipeline (templates) and below the gallery, the profiles and the
engine, which use it; evaluation fits and measures it, production only loads it.
"""
