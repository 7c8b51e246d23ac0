"""Response models of the REST service (they are what the OpenAPI document describes)."""

from __future__ import annotations

from pydantic import BaseModel, Field


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


class CollectionOut(BaseModel):
    name: str
    profile: str
    model: str
    keep_images: bool
    created_at: str
    threshold: float = Field(description="cosine similarity at or above which two faces match")
    fmr: float = Field(description="false-match rate the threshold was calibrated for")
    persons: int
    faces: int


class FaceBox(BaseModel):
    box: list[float] = Field(description="[x, y, width, height] in pixels")
    landmarks: list[list[float]]
    score: float
    quality: float
    quality_reasons: list[str]


class DetectOut(BaseModel):
    width: int
    height: int
    faces: list[FaceBox]


class LivenessOut(BaseModel):
    score: float = Field(description="probability that the face is live (not a photo or screen)")
    is_live: bool
    threshold: float
    reason: str | None
    model: str


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
    liveness: LivenessOut | None = None
    rejected: str | None = Field(default=None, description="with require_live=true: why this face was not searched")


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


class Deleted(BaseModel):
    deleted: str
    faces_removed: int
