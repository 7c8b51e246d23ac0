"""Response models of the REST service (they are what the OpenAPI document describes)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ..pipeline.image_io import ACCEPTED_FORMATS


class ErrorDetail(BaseModel):
    code: str = Field(description="stable machine-readable code, e.g. no_face, image_too_large, forbidden")
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class Health(BaseModel):
    status: str
    version: str


class Ready(BaseModel):
    ready: bool
    workers: int
    queued_or_running: int
    profiles_loaded: list[str]


class KeyInfo(BaseModel):
    id: str
    role: str
    collections: list[str]
    label: str
    created_at: str


class NewKey(KeyInfo):
    key: str = Field(description="the full API key; shown once, never stored")


class KeyRequest(BaseModel):
    role: str = Field(description="reader, writer or admin")
    collections: list[str] = Field(description="collection names, or ['*'] for all")
    label: str = ""


class CollectionRequest(BaseModel):
    name: str
    profile: str | None = Field(default=None, description="recognition profile; the service default when omitted")
    keep_images: bool = Field(default=False, description="store uploaded enrolment images (off by default)")
    fair: bool = Field(default=False, description="fair scores: compare through the profile's fair score normaliser, "
                                                  "with its own thresholds (the model id ends in +fair)")


class CollectionOut(BaseModel):
    name: str
    profile: str
    model: str
    fair: bool = Field(default=False, description="scores go through the fair score normaliser")
    keep_images: bool
    created_at: str
    threshold: float = Field(description="cosine similarity at or above which two faces match")
    fmr: float = Field(description="false-match rate the threshold was calibrated for")
    persons: int
    faces: int


class FaceBox(BaseModel):
    box: list[float] = Field(description="[x, y, width, height] in pixels of the image as sent, clipped to the image")
    landmarks: list[list[float]] = Field(description="five [x, y] points in pixels of the image as sent (not clipped)")
    score: float
    quality: float
    quality_reasons: list[str]
    orientation: int = Field(default=0, description="degrees (0, 90, 180, 270) the image must be turned clockwise "
                                                    "for this face to be upright")


class DetectedFace(FaceBox):
    index: int = Field(description="position in this list (largest box first, ties in detector order; the same "
                                   "image always gives the same order): the value to send as `face`")
    usable: bool = Field(description="passes the quality gate; only usable faces are enrolled, verified or searched")


class DetectOut(BaseModel):
    width: int
    height: int
    faces: list[DetectedFace]


class AgeOut(BaseModel):
    years: float = Field(description="apparent age in years")
    low: float = Field(description="low end of the model's range for it, years")
    high: float = Field(description="high end of the model's range for it, years")


class GenderOut(BaseModel):
    label: str = Field(description="female or male: an estimate of appearance, not of a person's identity")
    confidence: float = Field(description="the model's probability of `label`, 0.5-1")
    p_female: float = Field(description="the model's probability of female, 0-1")


class ExpressionOut(BaseModel):
    label: str = Field(description="the most probable of angry, disgust, fear, happy, neutral, sad, surprise")
    confidence: float
    probabilities: dict[str, float] = Field(description="each of the seven expressions -> probability (sum 1)")


class PoseOut(BaseModel):
    yaw: float = Field(description="degrees, > 0 turned towards the subject's own left (nose to the image's right)")
    pitch: float = Field(description="degrees, > 0 looking up")
    roll: float = Field(description="degrees, > 0 head tilted clockwise in the image")


class EyesOut(BaseModel):
    open: bool = Field(description="both eyes open (eye aspect ratio of each at or above `threshold`)")
    score: float = Field(description="how open the less open eye is, 0-1; 0.5 at the threshold")
    right_open: bool
    left_open: bool
    right_ear: float = Field(description="eye aspect ratio of the subject's right eye (on the image's left)")
    left_ear: float
    threshold: float


class QualityOut(BaseModel):
    score: float = Field(description="recognition quality, 0-1")
    reasons: list[str] = Field(description="what pulled it down: small, blurry, profile, uncertain, dark")
    usable: bool = Field(description="passes the quality gate for recognition")


class AnalyzedFace(BaseModel):
    face: FaceBox
    age: AgeOut | None = None
    gender: GenderOut | None = None
    expression: ExpressionOut | None = None
    pose: PoseOut | None = None
    eyes: EyesOut | None = None
    quality: QualityOut | None = None
    not_estimated: dict[str, str] = Field(
        description="attribute asked for -> why it has no value (face too small, too blurred, turned too far)")


class AnalyzeOut(BaseModel):
    width: int
    height: int
    attributes: list[str] = Field(description="the attributes that were computed")
    faces: list[AnalyzedFace] = Field(description="every detected face, largest first")
    reason: str | None = Field(description="why `faces` is empty (no face found); null otherwise")


class LivenessCueOut(BaseModel):
    cue: str = Field(description="moire, colour gamut, washed out or glare")
    value: float
    limit: float = Field(description="the value 99% of live photos stay within")
    text: str


class LivenessOut(BaseModel):
    score: float = Field(description="probability (0-1) that the face is live (not a photo or screen)")
    is_live: bool = Field(description="score >= threshold, and the face was judged")
    judged: bool = Field(default=True, description="false when the check cannot judge the face (a greyscale image): "
                                                   "is_live is then false and reason says why")
    threshold: float
    attack_type: str = Field(description="the attack the model finds more likely: print or screen")
    attack_probability: float = Field(description="its probability (0-1)")
    context: float = Field(description="image around the face, in face-box sizes (below 1.5: a tight crop, live "
                                       "faces are rejected more often; send the whole camera frame)")
    cues: list[LivenessCueOut] = Field(description="recapture cues that fired (rejected faces only)")
    reason: str | None = Field(description="why the face was judged an attack, or what limited the check")
    model: str


class LivenessFace(BaseModel):
    box: list[float] = Field(description="[x, y, width, height]")
    liveness: LivenessOut


class LivenessCheckOut(BaseModel):
    width: int
    height: int
    is_live: bool = Field(description="every face live; false when no face was found")
    reason: str | None = Field(default=None, description="'no face found ...' when there is no face to judge "
                                                         "(faces is then empty and no attack type is claimed)")
    faces: list[LivenessFace] = Field(description="largest face first; empty when no face was found")


class VerifyOut(BaseModel):
    similarity: float | None = Field(description="null when a liveness check rejected a face")
    is_match: bool
    threshold: float
    fmr: float
    model: str
    liveness: list[LivenessOut] | None = Field(default=None, description="with require_live=true: per face")
    rejected: str | None = Field(default=None, description="why the faces were not compared")


class PersonVerifyOut(VerifyOut):
    person: str


class CandidateOut(BaseModel):
    person: str
    person_id: int
    score: float


class IdentifiedFace(BaseModel):
    face: FaceBox
    person: str | None = Field(description="the identity, or null when the face is unknown")
    unknown: bool
    candidates: list[CandidateOut]
    tied: list[str] = Field(default_factory=list,
                            description="people tied for first place: two or more at or above the threshold within "
                                        "0.01 of the best score (the same face under two names?); empty when none")
    liveness: LivenessOut | None = None
    rejected: str | None = Field(default=None, description="with require_live=true: why this face was not searched")
    skipped: str | None = Field(default=None, description="why this face was not searched at all, e.g. 'low quality "
                                                          "(profile, 0.21)'; it then has no candidates")


class IdentifyOut(BaseModel):
    width: int
    height: int
    threshold: float
    fmr: float
    model: str
    faces: list[IdentifiedFace]


class StoredFace(BaseModel):
    id: int
    source: str | None
    box: list[float] | None
    quality: float | None
    created_at: str
    has_image: bool


class PersonOut(BaseModel):
    name: str
    metadata: dict
    face_count: int
    created_at: str
    updated_at: str


class PersonDetail(PersonOut):
    faces: list[StoredFace]


class EnrolOut(PersonOut):
    faces_added: list[int]
    already_enrolled: list[str] = Field(default_factory=list,
                                        description="uploads not stored again: the same image (same decoded "
                                                    "pixels) is already enrolled for this person")
    thumbnails: list[str] = Field(description="a small JPEG crop of each face added, as a data: URL (same order as "
                                              "faces_added); not stored")


class Deleted(BaseModel):
    deleted: str
    faces_removed: int


# -- request bodies of the image endpoints ------------------------------------------------------
# The routes read multipart or JSON bodies themselves (one code path for both); these models only
# describe them in the OpenAPI document, through ``image_content``.

IMAGE_FILE = f"an image file ({ACCEPTED_FORMATS}), at most the service's upload limit"
IMAGE_BASE64 = "the image file's bytes in base64 (a data: URL is accepted)"
FACE = ("which face, when the image holds several usable ones: its `index` in POST /v1/detect's list for the "
        "same image")
BOX = "which face, by its box: x,y,w,h in pixels (the detected face overlapping it most, IoU >= 0.5)"
LARGEST = "true: take the largest usable face when there are several"


class ImageForm(BaseModel):
    """multipart/form-data: one image."""

    image: bytes = Field(description=IMAGE_FILE)


class ImageJson(BaseModel):
    """application/json: one image in base64."""

    image: str = Field(description=IMAGE_BASE64)


class FaceImageForm(ImageForm):
    """multipart/form-data: one image and, optionally, which of its faces to use."""

    face: int | None = Field(default=None, ge=0, description=FACE)
    box: str | None = Field(default=None, description=BOX, examples=["120,80,96,110"])
    largest: bool = Field(default=False, description=LARGEST)


class FaceImageJson(ImageJson):
    """application/json: one image in base64 and, optionally, which of its faces to use."""

    face: int | None = Field(default=None, ge=0, description=FACE)
    box: list[float] | None = Field(default=None, min_length=4, max_length=4, description=BOX)
    largest: bool = Field(default=False, description=LARGEST)


class PairForm(BaseModel):
    """multipart/form-data: images `a` and `b`, one face each (or named by `face_a`/`box_a`, `face_b`/`box_b`)."""

    a: bytes = Field(description=IMAGE_FILE)
    b: bytes = Field(description=IMAGE_FILE)
    face_a: int | None = Field(default=None, ge=0, description=FACE + " (image a)")
    box_a: str | None = Field(default=None, description=BOX + " (image a)")
    face_b: int | None = Field(default=None, ge=0, description=FACE + " (image b)")
    box_b: str | None = Field(default=None, description=BOX + " (image b)")
    largest: bool = Field(default=False, description=LARGEST + " (both images)")


class PairJson(BaseModel):
    """application/json: images `a` and `b` in base64 (faces named as in the multipart form)."""

    a: str = Field(description=IMAGE_BASE64)
    b: str = Field(description=IMAGE_BASE64)
    face_a: int | None = Field(default=None, ge=0, description=FACE + " (image a)")
    box_a: list[float] | None = Field(default=None, min_length=4, max_length=4, description=BOX + " (image a)")
    face_b: int | None = Field(default=None, ge=0, description=FACE + " (image b)")
    box_b: list[float] | None = Field(default=None, min_length=4, max_length=4, description=BOX + " (image b)")
    largest: bool = Field(default=False, description=LARGEST + " (both images)")


class EnrolForm(BaseModel):
    """multipart/form-data: one or more images of the person (repeat the field), all enrolled or none."""

    images: list[bytes] = Field(min_length=1, description=IMAGE_FILE + "; repeat the field for more images")
    face: list[str] | None = Field(default=None, description=FACE + "; one value per image, in order, empty for "
                                                                    "an image with one usable face")
    box: list[str] | None = Field(default=None, description=BOX + "; one value per image, in order, empty for an "
                                                                  "image with one usable face")
    largest: bool = Field(default=False, description=LARGEST + " (every image)")
    metadata: str | None = Field(default=None, description="a JSON object stored with the person, as text",
                                 examples=['{"team": "exec"}'])


class EnrolJson(BaseModel):
    """application/json: one or more images of the person in base64, all enrolled or none."""

    images: list[str] = Field(min_length=1, description=IMAGE_BASE64 + "; a list, or one string for one image")
    face: list[int | None] | None = Field(default=None, description=FACE + "; one per image, null for an image "
                                                                           "with one usable face")
    box: list[list[float] | None] | None = Field(default=None, description=BOX + "; one [x, y, w, h] per image, "
                                                                                 "null for an image with one face")
    largest: bool = Field(default=False, description=LARGEST + " (every image)")
    metadata: dict | None = Field(default=None, description="a JSON object stored with the person")


def image_content(form: type[BaseModel], json_body: type[BaseModel]) -> dict:
    """The OpenAPI ``requestBody.content`` of an image endpoint: ``form`` as multipart, ``json_body`` as JSON.

    Both schemas are inlined (they have no nested models), so Swagger UI and client generators
    show every field, its type (a file is ``string``/``binary``) and its description.
    """
    return {"multipart/form-data": {"schema": form.model_json_schema()},
            "application/json": {"schema": json_body.model_json_schema()}}


# The requestBody content of each image endpoint (app.py passes them as openapi_extra).
IMAGE_BODY = image_content(ImageForm, ImageJson)  # detect, identify
FACE_IMAGE_BODY = image_content(FaceImageForm, FaceImageJson)  # verify against an enrolled person
PAIR_BODY = image_content(PairForm, PairJson)  # verify two images
ENROL_BODY = image_content(EnrolForm, EnrolJson)  # enrol a person


class ChallengeRequest(BaseModel):
    n_steps: int = Field(default=2, ge=1, le=4, description="how many actions, drawn at random without repeats from "
                                                            "blink, turn_left, turn_right, smile")
    step_timeout_s: float = Field(default=5.0, ge=1.0, le=30.0, description="seconds allowed for each step")
    mirrored: bool = Field(default=False, description="true when the frames are flipped like a selfie preview "
                                                      "(swaps what counts as the subject's left and right)")


class ChallengeStepOut(BaseModel):
    action: str
    passed: bool
    started_s: float
    ended_s: float
    reason: str | None
    value: float | None = Field(description="blink depth, yaw change or mouth ratio that decided the step")


class ChallengeResultOut(BaseModel):
    live: bool = Field(description="every step passed and the subject's mean passive live score reached its threshold")
    passed: bool = Field(description="every step passed, in order, each within its time limit")
    reason: str | None = Field(description="why the check failed (the step and what was seen, or the passive check); "
                                           "null when live")
    challenge: list[str]
    steps: list[ChallengeStepOut]
    elapsed_s: float
    frames: int
    face_frames: int
    multiple_faces_frames: int
    passive: dict | None = Field(default=None, description="mean passive live score over the frames with a face: "
                                                           "score, is_live, threshold, frames, live_frames, "
                                                           "attack_type")


class ChallengeOut(BaseModel):
    id: str = Field(description="the challenge's id: post its frames to /v1/liveness/challenges/{id}/frames")
    steps: list[str] = Field(description="the actions asked for, in order (random)")
    instructions: list[str] = Field(description="what to tell the person for each step")
    step_timeout_s: float
    expires_at: float = Field(description="Unix time after which the challenge is forgotten (404)")
    frames: int = Field(description="frames taken so far")
    phase: str = Field(description="calibrating, challenge, passed or failed")
    step: int = Field(description="index of the current step")
    action: str | None = Field(description="the current step's action (null while calibrating or when done)")
    instruction: str | None = Field(description="what to show the person now")
    remaining_s: float | None = Field(description="seconds left for the current step or calibration")
    face_found: bool = Field(description="the last frame showed a face")
    box: list[float] | None = Field(description="[x, y, width, height] of the last frame's largest face")
    done: bool
    result: ChallengeResultOut | None = Field(description="the verdict, once the challenge passed or failed")
