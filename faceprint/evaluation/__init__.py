"""Verification metrics, LFW pair-file handling and ROC/DET plots for evaluating faceprint."""
