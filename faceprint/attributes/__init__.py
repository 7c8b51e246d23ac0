"""What a face shows besides whose it is: age, gender, expression, head pose, eye state and quality.

Sits after detection and alignment in the data flow, beside embedding: it reads detected faces
(:class:`faceprint.types.Face`) and the models of :mod:`faceprint.models`, and nothing above it.
:meth:`faceprint.engine.Engine.analyze` is the usual way in.
"""

from .analyzer import ATTRIBUTES, FaceAnalyzer, parse_attributes
from .eyes import EyeState, eye_aspect_ratio, eye_state
from .pose import HeadPose, head_pose
from .results import EXPRESSIONS, AgeEstimate, Analysis, ExpressionEstimate, FaceAttributes, GenderEstimate, QualityReport

__all__ = ["ATTRIBUTES", "EXPRESSIONS", "AgeEstimate", "Analysis", "ExpressionEstimate", "EyeState", "FaceAnalyzer",
           "FaceAttributes", "GenderEstimate", "HeadPose", "QualityReport", "eye_aspect_ratio", "eye_state",
           "head_pose", "parse_attributes"]
