"""The REST service: FastAPI routes over collections, API keys and the bounded inference pool.

Images come as ``multipart/form-data`` file fields or as JSON with base64 strings. Every error is
``{"error": {"code": ..., "message": ...}}`` with a stable code. A key that may not use a
collection gets the same 403 whether or not that collection exists.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np

from ..extras import extra_not_installed

try:
    from fastapi import Depends, FastAPI, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import FileResponse, JSONResponse, Response
    from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
    from fastapi.staticfiles import StaticFiles
    from starlette.concurrency import run_in_threadpool
    from swagger_ui_bundle import swagger_ui_path  # Swagger UI's files, served at /docs (no CDN)
except ImportError as exc:  # the optional "service" part of faceprint
    raise extra_not_installed("service", "the REST service (faceprint.service.app)", [exc.name or "fastapi"]) from exc

from .._version import __version__
from ..engine import image_digest
from ..errors import FaceprintError
from ..gallery import EnrolmentItem
from ..gallery.names import normalise_name
from ..matching.normalisation import ScoreNormaliser, is_fair_model, plain_model_id
from ..pipeline.image_io import DEFAULT_MAX_PIXELS
from ..privacy.audit import AuditLog
from ..privacy.crypto import GalleryKey
from ..profiles import DEFAULT_FMR, DEFAULT_PROFILE
from ..types import Box
from . import challenges as active
from . import faces as picking
from . import observability
from . import schemas
from .collections import Collections
from .inference import InferencePool
from .keys import ALL, ApiKey, KeyStore
from .limits import BodyLimit, status_for
from .lockout import LockoutPolicy, SQLiteFailureStore, VerifyLockedError, VerifyLockout

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


class UnauthorizedError(FaceprintError):
    """No API key, or one that is not valid."""

    code = "unauthorized"


class ForbiddenError(FaceprintError):
    """The key is valid but may not do this (role too low, or not this collection)."""

    code = "forbidden"


class BadRequestError(FaceprintError):
    """A request body or field that is missing or malformed."""

    code = "bad_request"


class NoImageStoredError(FaceprintError):
    """The face has no stored image (the collection does not keep images)."""

    code = "image_not_stored"


@dataclass
class ServiceSettings:
    """How the service runs; every field has a command-line option in ``faceprint serve``."""

    data_dir: Path
    profile: str = DEFAULT_PROFILE
    fmr: float = DEFAULT_FMR
    max_upload_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 25_000_000
    max_images_per_request: int = 20
    max_top_k: int = 50
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    queue: int = 64
    timeout_s: float = 60.0
    warm: bool = True
    audit_log: Path | None = None  # every /v1 request is appended to this hash-chained log when set
    key: GalleryKey | None = None  # encrypts every collection's templates and kept images at rest
    database: str | None = None  # postgresql:// URL: keys, collections and the audit log there (replicas share it)
    lockout: LockoutPolicy = field(default_factory=LockoutPolicy)  # failed person verifications before a 429

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        self.audit_log = Path(self.audit_log) if self.audit_log else None
        if self.max_pixels > DEFAULT_MAX_PIXELS:
            raise ValueError(f"max_pixels may not exceed {DEFAULT_MAX_PIXELS}")


def _error(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer fp_<id>_<secret>")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="or X-API-Key: fp_<id>_<secret>")


class Service:
    """The state behind the routes: settings, keys, collections and the inference pool."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        if settings.database:  # every replica given this URL shares the keys, collections and audit log
            from ..privacy.audit import PostgresAuditLog
            from .database import PostgresCollections, PostgresKeyStore

            self.keys = PostgresKeyStore(settings.database)
            self.collections = PostgresCollections(settings.database, key=settings.key)
        else:
            self.keys = KeyStore(settings.data_dir / "keys.sqlite")
            self.collections = Collections(settings.data_dir / "collections", key=settings.key)
        self.pool = InferencePool(settings.workers, settings.queue, settings.timeout_s, settings.fmr,
                                  settings.max_pixels)
        self.loaded: list[str] = []
        self.audit = AuditLog(settings.audit_log, actor="service") if settings.audit_log else None
        if settings.database:
            self.audit = PostgresAuditLog(settings.database, actor="service")
        # active liveness challenges (challenges.py): in the database with --database, so replicas share them
        self.challenges: active.ChallengeStore = (active.PostgresChallengeStore(settings.database) if settings.database
                                                  else active.MemoryChallengeStore())
        # failed verifications per key and person (lockout.py); in the data folder, so a restart keeps the counts,
        # or with --database in the database, so that every replica counts the same failures
        if settings.database:
            from .database import PostgresFailureStore

            failures = PostgresFailureStore(settings.database)
        else:
            failures = SQLiteFailureStore(settings.data_dir / "lockout.sqlite")
        self.lockout = VerifyLockout(settings.lockout, failures)

    def write_lock(self, collection: str):
        """Collection's write lock, held while an enrolment checks and writes (so its face ids are its own).

        A lock of this process for a data folder; a PostgreSQL advisory lock, held against every
        replica, with ``--database``.
        """
        return self.collections.write_lock(collection)

    def storage_ready(self) -> bool:
        """Whether the state can be written: the data folder, or the database answering."""
        if self.settings.database:
            return self.keys.ping()
        return os.access(self.settings.data_dir, os.W_OK)

    def warm(self) -> None:
        """Load the default profile's models on every worker."""
        self.pool.warm(self.settings.profile)
        self.loaded.append(self.settings.profile)

    def close(self) -> None:
        """Stop the pool and close every file."""
        self.pool.close()
        self.challenges.close()
        self.collections.close()
        self.keys.close()
        self.lockout.store.close()

    def collection_out(self, name: str) -> schemas.CollectionOut:
        """A collection's settings, threshold and counts."""
        from ..profiles import get as get_profile

        info = self.collections.info(name)
        gallery = self.collections.gallery(name)
        fair = is_fair_model(info.model)
        threshold = (ScoreNormaliser.for_profile(info.profile, plain_model_id(info.model)) if fair
                     else get_profile(info.profile))
        threshold = threshold.threshold_at(self.settings.fmr) if fair else threshold.threshold(self.settings.fmr)
        return schemas.CollectionOut(**info.to_dict(), fair=fair, threshold=threshold, fmr=self.settings.fmr,
                                     persons=len(gallery), faces=gallery.face_count())


def _authorizer(role: str, collection_scoped: bool = True):
    """A dependency: the caller's key, if it has ``role`` (for the path's collection when scoped)."""

    def dependency(
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        header: Annotated[str | None, Depends(_header)],
    ) -> ApiKey:
        service: Service = request.app.state.service
        presented = header or (bearer.credentials if bearer else None)
        key = service.keys.authenticate(presented)
        if key is None:
            raise UnauthorizedError("missing or invalid API key")
        request.state.key = key
        collection = request.path_params.get("collection") if collection_scoped else None
        if not key.allows(role, collection):
            where = f" on collection {collection!r}" if collection else ""
            raise ForbiddenError(f"this key may not act as {role}{where}")
        return key

    return dependency


Reader = Annotated[ApiKey, Depends(_authorizer("reader"))]
Writer = Annotated[ApiKey, Depends(_authorizer("writer"))]
Admin = Annotated[ApiKey, Depends(_authorizer("admin"))]
AnyReader = Annotated[ApiKey, Depends(_authorizer("reader", collection_scoped=False))]  # any collection
AnyAdmin = Annotated[ApiKey, Depends(_authorizer("admin", collection_scoped=False))]


class _Images(dict):
    """Image bytes per field name; ``received`` lists every field name the request sent, in order (for errors)."""

    received: list[str]


async def _read_images(request: Request, names: tuple[str, ...], limit: int) -> tuple[dict[str, list], dict]:
    """Image bytes per field name, and the other fields, from a multipart or JSON body."""
    ctype = request.headers.get("content-type", "")
    images = _Images({n: [] for n in names})
    images.received = []
    fields: dict[str, Any] = {}
    if ctype.startswith("multipart/form-data"):
        form = await request.form(max_files=limit, max_fields=50)
        for key, value in form.multi_items():
            if key not in images.received:
                images.received.append(key)
            if hasattr(value, "read"):
                if key in images:
                    images[key].append((value.filename or key, await value.read()))
            elif key in fields:  # a repeated field (one `face` per image): its values in order
                fields[key] = (fields[key] if isinstance(fields[key], list) else [fields[key]]) + [value]
            else:
                fields[key] = value
        if isinstance(fields.get("metadata"), list):
            raise BadRequestError("field 'metadata' given more than once")
        if "metadata" in fields:
            try:
                fields["metadata"] = json.loads(fields["metadata"])
            except json.JSONDecodeError as exc:
                raise BadRequestError(f"field 'metadata' is not JSON: {exc}") from exc
    elif ctype.startswith("application/json"):
        try:
            body = json.loads(await request.body() or b"null")
        except json.JSONDecodeError as exc:
            raise BadRequestError(f"body is not valid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise BadRequestError("JSON body must be an object")
        images.received = list(body)
        for key, value in body.items():
            if key in images:
                for i, item in enumerate(value if isinstance(value, list) else [value]):
                    if not isinstance(item, str):
                        raise BadRequestError(f"field {key!r} must hold base64 strings")
                    try:
                        data = base64.b64decode(item.split(",", 1)[-1] if item.startswith("data:") else item,
                                                validate=True)
                    except (binascii.Error, ValueError) as exc:
                        raise BadRequestError(f"image {i + 1} of field {key!r} is not valid base64: send the "
                                              f"file's bytes base64-encoded (or a data: URL)") from exc
                    images[key].append((f"{key}[{i}]", data))
            else:
                fields[key] = value
    else:
        raise BadRequestError("send multipart/form-data (file fields) or application/json (base64 strings)")
    total = sum(len(v) for v in images.values())
    if total > limit:
        raise BadRequestError(f"at most {limit} images per request, got {total}")
    return images, fields


def _chosen_face(engine, label: str, data: bytes, choice: picking.FaceChoice):
    """The face of the uploaded image ``label`` that ``choice`` names (see :mod:`.faces`)."""
    image = engine.load(data, label=label)
    return picking.choose_face(engine, engine.finder.find(image), label, choice)


def _one(images: dict[str, list], name: str) -> tuple[str, bytes]:
    """The one image of field ``name``; with none, the error names the fields the request did send."""
    if len(images.get(name, [])) != 1:
        got = len(images.get(name, []))
        received = getattr(images, "received", [])
        sent = f"; fields received: {', '.join(map(repr, received))}" if received else "; the request sent no field"
        raise BadRequestError(f"expected exactly one image in field {name!r}, got {got}"
                              + (sent if got == 0 else ""))
    return images[name][0]


def create_app(settings: ServiceSettings) -> FastAPI:
    """The FastAPI application for ``settings`` (models load at startup when ``settings.warm``)."""
    service = Service(settings)

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if settings.warm:
            import asyncio

            await asyncio.get_running_loop().run_in_executor(None, service.warm)
        yield
        service.close()

    app = FastAPI(title="faceprint", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Offline face recognition: collections of enrolled people, detect, verify, "
                              "identify. Authenticate with `Authorization: Bearer <key>` or `X-API-Key`.",
                  responses={code: {"model": schemas.ErrorBody} for code in (400, 401, 403, 404, 413, 422, 429)})
    app.state.service = service
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes)
    app.state.metrics = observability.install(app, service)  # GET /metrics, request counts, access log
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount("/docs/static", StaticFiles(directory=swagger_ui_path), name="swagger-ui")

    @app.exception_handler(FaceprintError)
    async def faceprint_error(request: Request, exc: FaceprintError) -> JSONResponse:
        status = status_for(exc)
        headers = {"Retry-After": str(getattr(exc, "retry_after", 1))} if status == 429 else None
        return _error(status, exc.code, str(exc), headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error(422, "invalid_request", f"{where}: {first.get('msg', 'invalid request')}")

    @app.middleware("http")
    async def audit_and_time(request: Request, call_next):
        start = time.perf_counter()
        response = await call_next(request)
        elapsed = 1000 * (time.perf_counter() - start)
        response.headers["X-Elapsed-Ms"] = f"{elapsed:.1f}"
        if service.audit is not None and request.url.path.startswith("/v1/"):
            await run_in_threadpool(_audit, service.audit, request, response.status_code, elapsed)
        return response

    # -- page, health -------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/docs", include_in_schema=False)
    async def api_docs() -> Response:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="faceprint API",
                                   swagger_js_url="/docs/static/swagger-ui-bundle.js",
                                   swagger_css_url="/docs/static/swagger-ui.css",
                                   swagger_favicon_url="/docs/static/favicon-32x32.png",
                                   swagger_ui_parameters={"validatorUrl": None})

    @app.get("/health", response_model=schemas.Health, tags=["health"])
    async def health() -> schemas.Health:
        """Liveness: the process answers."""
        return schemas.Health(status="ok", version=__version__)

    @app.get("/ready", response_model=schemas.Ready, tags=["health"],
             responses={503: {"model": schemas.Ready}})
    async def ready() -> Response:
        """Readiness: models loaded and the data folder writable (503 otherwise)."""
        ok = bool(service.loaded) and service.storage_ready()
        body = schemas.Ready(ready=ok, workers=settings.workers, queued_or_running=service.pool.pending,
                             profiles_loaded=service.loaded)
        return JSONResponse(body.model_dump(), status_code=200 if ok else 503)

    # -- keys ---------------------------------------------------------------------------

    @app.post("/v1/keys", response_model=schemas.NewKey, status_code=201, tags=["keys"])
    async def create_key(body: schemas.KeyRequest, key: AnyAdmin) -> schemas.NewKey:
        """Issue a key (admin). A key's collections must be within the issuing key's."""
        if ALL not in key.collections and not set(body.collections) <= set(key.collections):
            raise ForbiddenError("a key may only issue keys for its own collections")
        full, record = service.keys.create(body.role, body.collections, body.label)
        return schemas.NewKey(key=full, **record.to_dict())

    @app.get("/v1/keys", response_model=list[schemas.KeyInfo], tags=["keys"])
    async def list_keys(key: AnyAdmin) -> list[schemas.KeyInfo]:
        """Keys whose collections are within the caller's (admin)."""
        mine = set(key.collections)
        return [schemas.KeyInfo(**k.to_dict()) for k in service.keys.list()
                if ALL in mine or set(k.collections) <= mine]

    @app.delete("/v1/keys/{key_id}", status_code=204, tags=["keys"])
    async def revoke_key(key_id: str, key: AnyAdmin) -> Response:
        """Revoke a key (admin, within the caller's collections)."""
        target = next((k for k in service.keys.list() if k.id == key_id), None)
        if target is None or (ALL not in key.collections and not set(target.collections) <= set(key.collections)):
            raise ForbiddenError(f"no key {key_id!r} that this key may revoke")
        service.keys.revoke(key_id)
        return Response(status_code=204)

    # -- collections --------------------------------------------------------------------

    @app.post("/v1/collections", response_model=schemas.CollectionOut, status_code=201, tags=["collections"])
    async def create_collection(body: schemas.CollectionRequest,
                                key: AnyAdmin) -> schemas.CollectionOut:
        """Create a collection bound to a recognition profile (admin)."""
        if not key.allows("admin", body.name):
            raise ForbiddenError(f"this key may not act as admin on collection {body.name!r}")
        service.collections.create(body.name, body.profile or settings.profile, body.keep_images, fair=body.fair)
        return service.collection_out(body.name)

    @app.get("/v1/collections", response_model=list[schemas.CollectionOut], tags=["collections"])
    async def list_collections(key: AnyReader) -> list[schemas.CollectionOut]:
        """The collections this key may use."""
        return [service.collection_out(n) for n in service.collections.names() if key.allows("reader", n)]

    @app.get("/v1/collections/{collection}", response_model=schemas.CollectionOut, tags=["collections"])
    async def get_collection(collection: str, key: Reader) -> schemas.CollectionOut:
        """A collection's profile, threshold and counts."""
        return service.collection_out(collection)

    @app.delete("/v1/collections/{collection}", status_code=204, tags=["collections"])
    async def delete_collection(collection: str, key: Admin) -> Response:
        """Delete a collection with every person, template and kept image in it (admin)."""
        service.collections.delete(collection)
        return Response(status_code=204)

    # -- stateless: detect, verify ------------------------------------------------------

    @app.post("/v1/detect", response_model=schemas.DetectOut, tags=["faces"],
              openapi_extra={"requestBody": {"content": schemas.IMAGE_BODY, "required": True,
                                             "description": "field `image`: a file, or base64 in JSON"}})
    async def detect(request: Request, key: AnyReader) -> dict:
        """Find faces: boxes, landmarks, detector score and quality."""
        images, _ = await _read_images(request, ("image",), 1)
        label, data = _one(images, "image")

        def run(engine) -> dict:
            image = engine.load(data, label=label)
            return {"width": image.shape[1], "height": image.shape[0],
                    "faces": [{**f.to_dict(), "index": i, "usable": engine.gate.passes(f)}
                              for i, f in enumerate(engine.finder.find(image))]}

        return await service.pool.submit(settings.profile, run)

    @app.post("/v1/analyze", response_model=schemas.AnalyzeOut, tags=["faces"],
              openapi_extra={"requestBody": {"content": schemas.IMAGE_BODY, "required": True,
                                             "description": "field `image`: a file, or base64 in JSON"}})
    async def analyze(request: Request, key: AnyReader, attributes: str = "all") -> dict:
        """Age, gender, expression, head pose, eyes and quality of every face; `attributes` (comma-separated:
        age, gender, expression, pose, eyes, quality, or all) picks what is computed."""
        from ..attributes import parse_attributes

        wanted = parse_attributes(attributes)
        images, _ = await _read_images(request, ("image",), 1)
        label, data = _one(images, "image")

        def run(engine) -> dict:
            analysis = engine.analyze(data, wanted, label=label)
            request.state.audit_details = {"faces": len(analysis.faces)}
            width, height = analysis.image_size
            return {"width": width, "height": height, **analysis.to_dict()}

        return await service.pool.submit(settings.profile, run)

    @app.post("/v1/liveness", response_model=schemas.LivenessCheckOut, tags=["faces"],
              openapi_extra={"requestBody": {"content": schemas.IMAGE_BODY, "required": True,
                                             "description": "field `image`: the whole camera frame (not a face "
                                                            "crop), as a file or base64 in JSON"}})
    async def liveness(request: Request, key: AnyReader) -> dict:
        """Passive liveness of every face in one image: live, or a print or screen attack, and why."""
        images, _ = await _read_images(request, ("image",), 1)
        label, data = _one(images, "image")

        def run(engine) -> dict:
            image = engine.load(data, label=label)
            faces = engine.finder.find(image)
            checks = [(f.box.as_list(), engine.check_live(f)) for f in faces]
            request.state.audit_details = {"faces": len(faces), "live": sum(c.is_live for _, c in checks)}
            return {"width": image.shape[1], "height": image.shape[0], "is_live": bool(checks) and all(
                        c.is_live for _, c in checks),
                    "reason": None if checks else f"no face found in {label}: nothing to judge, so not live",
                    "faces": [{"box": box, "liveness": c.to_dict()} for box, c in checks]}

        return await service.pool.submit(settings.profile, run)

    # -- active liveness: a random blink / turn / smile challenge fed frame by frame -----

    async def own_challenge(challenge_id: str, key: ApiKey) -> active.ChallengeRecord:
        record = await run_in_threadpool(service.challenges.get, challenge_id)
        if record is None or record.key_id != key.id:  # another key's challenge: the same 404 as none
            raise active.ChallengeNotFoundError(f"no liveness challenge {challenge_id!r} for this key (or it "
                                                f"expired after {active.CHALLENGE_TTL_S:g} s); start a new one")
        return record

    @app.post("/v1/liveness/challenges", response_model=schemas.ChallengeOut, status_code=201, tags=["liveness"])
    async def start_challenge(key: AnyReader, body: schemas.ChallengeRequest | None = None) -> dict:
        """Start an active liveness check: random steps to ask for, and the id to post frames to."""
        body = body or schemas.ChallengeRequest()
        record = active.new_record(key.id, n_steps=body.n_steps, timeout_s=body.step_timeout_s,
                                   mirrored=body.mirrored, now=service.challenges.clock())
        await run_in_threadpool(service.challenges.add, record)
        return active.describe(record)

    @app.get("/v1/liveness/challenges/{challenge_id}", response_model=schemas.ChallengeOut, tags=["liveness"])
    async def get_challenge(challenge_id: str, key: AnyReader) -> dict:
        """Where a challenge stands, and its verdict once it passed or failed."""
        return active.describe(await own_challenge(challenge_id, key))

    @app.post("/v1/liveness/challenges/{challenge_id}/frames", response_model=schemas.ChallengeOut,
              tags=["liveness"], openapi_extra={"requestBody": {"content": schemas.IMAGE_BODY, "required": True,
                                                                "description": "field `image`: one whole camera "
                                                                               "frame, as it was taken"}})
    async def challenge_frame(challenge_id: str, request: Request, key: AnyReader) -> dict:
        """Feed one camera frame: the state to show next (instruction, time left) and, once over, the verdict."""
        arrived = service.challenges.clock()
        record = await own_challenge(challenge_id, key)
        images, _ = await _read_images(request, ("image",), 1)
        label, data = _one(images, "image")
        if active.replay(record)[0].done:  # over: nothing more to read off frames
            return active.describe(record)

        def run(engine) -> active.FrameRecord:
            return active.read_frame(engine, engine.load(data, label=label), arrived - record.started_at)

        frame = await service.pool.submit(settings.profile, run)
        answer = await run_in_threadpool(service.challenges.update, challenge_id,
                                         lambda r: active.describe(r, active.add_frame(r, frame)))
        if answer["done"]:
            request.state.audit_details = {"challenge": record.steps, "live": answer["result"]["live"],
                                           "reason": answer["result"]["reason"]}
        return answer

    @app.post("/v1/verify", response_model=schemas.VerifyOut, tags=["faces"],
              openapi_extra={"requestBody": {"content": schemas.PAIR_BODY, "required": True,
                                             "description": "fields `a` and `b`: one face each, or name it with "
                                                            "`face_a`/`box_a`, `face_b`/`box_b` or `largest`"}})
    async def verify(request: Request, key: AnyReader, profile: str | None = None, require_live: bool = False) -> dict:
        """Are the faces in images `a` and `b` the same person?"""
        images, fields = await _read_images(request, ("a", "b"), 2)
        sent = {"a": _one(images, "a"), "b": _one(images, "b")}
        choice = {name: picking.choices(fields, 1, suffix="_" + name)[0] for name in sent}

        def run(engine):
            faces = [_chosen_face(engine, label, data, choice[name]) for name, (label, data) in sent.items()]
            return engine.verify(*faces, require_live=require_live)

        return (await service.pool.submit(profile or settings.profile, run)).to_dict()

    # -- persons and faces --------------------------------------------------------------

    def stored_faces(collection: str, person: str) -> list[schemas.StoredFace]:
        gallery = service.collections.gallery(collection)
        with_image = gallery.faces_with_image(person)
        return [schemas.StoredFace(id=f.id, source=f.source, box=f.box, quality=f.quality, created_at=f.created_at,
                                   has_image=f.id in with_image) for f in gallery.faces(person)]

    @app.post("/v1/collections/{collection}/persons/{person}/faces", response_model=schemas.EnrolOut,
              status_code=201, tags=["persons"],
              openapi_extra={"requestBody": {"content": schemas.ENROL_BODY, "required": True,
                                             "description": "field `images` (one or more, one face each, or name "
                                                            "it with `face` or `box` per image, or `largest`) and "
                                                            "optional `metadata` (JSON object)"}})
    async def enrol(collection: str, person: str, request: Request, key: Writer, allow_duplicate: bool = False) -> dict:
        """Enrol `person` from one or more images, all or nothing (writer).

        The name is made canonical (NFC, whitespace; control characters: 422 `invalid_name`). An
        image already enrolled for the person (same decoded pixels) is not stored again: it is
        listed in `already_enrolled`. A face that matches another person at or above the
        threshold is refused (409 `duplicate_identity`) unless `allow_duplicate=true`.
        """
        person = normalise_name(person)
        info = service.collections.info(collection)
        images, fields = await _read_images(request, ("images",), settings.max_images_per_request)
        metadata = fields.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise BadRequestError("metadata must be a JSON object")
        if not images["images"]:
            received = ", ".join(map(repr, images.received)) or "none"
            raise BadRequestError(f"no images: send one or more in field 'images' (fields received: {received})")
        chosen = picking.choices(fields, len(images["images"]))
        gallery = service.collections.gallery(collection)

        def run(engine) -> tuple:
            items, thumbnails = [], []
            for (label, data), choice in zip(images["images"], chosen, strict=True):
                face = _chosen_face(engine, label, data, choice)
                image = face.image  # the decoded upload the face was found in
                template = engine.embed_faces([face])[0]
                items.append(EnrolmentItem(template=template, source=label, box=face.box.as_list(),
                                           quality=face.quality, image=data if info.keep_images else None,
                                           sha256=image_digest(image)))
                thumbnails.append(picking.thumbnail(image, face))
            with service.write_lock(collection):
                known = set(engine.already_enrolled(person, items, gallery))
                new = [item for i, item in enumerate(items) if i not in known]
                if new:
                    record = engine.enroll_items(person, new, gallery, metadata=metadata,
                                                 allow_duplicate=allow_duplicate)
                    ids = [f.id for f in gallery.faces(person)][-len(new):]
                else:
                    record, ids = gallery.get_person(person), []
            return (record, ids, [t for i, t in enumerate(thumbnails) if i not in known],
                    [items[i].source for i in sorted(known)])

        record, ids, thumbnails, already = await service.pool.submit(info.profile, run,
                                                                     fair=is_fair_model(info.model))
        return {**_person_dict(record), "faces_added": ids, "thumbnails": thumbnails, "already_enrolled": already}

    @app.get("/v1/collections/{collection}/persons", response_model=list[schemas.PersonOut], tags=["persons"])
    async def list_persons(collection: str, key: Reader) -> list[dict]:
        """Every person in the collection."""
        service.collections.info(collection)
        return [_person_dict(p) for p in service.collections.gallery(collection).persons()]

    @app.get("/v1/collections/{collection}/persons/{person}", response_model=schemas.PersonDetail,
             tags=["persons"])
    async def get_person(collection: str, person: str, key: Reader) -> dict:
        """A person with their stored faces."""
        record = service.collections.gallery(collection).get_person(person)
        return {**_person_dict(record), "faces": stored_faces(collection, person)}

    @app.delete("/v1/collections/{collection}/persons/{person}", response_model=schemas.Deleted, tags=["persons"])
    async def delete_person(collection: str, person: str, key: Writer) -> dict:
        """Delete a person, every template of theirs and any kept image (writer)."""
        person = normalise_name(person)
        gallery = service.collections.gallery(collection)
        with service.write_lock(collection):
            removed = gallery.delete_person(person)
        return {"deleted": person, "faces_removed": removed}

    @app.delete("/v1/collections/{collection}/faces/{face_id}", status_code=204, tags=["persons"])
    async def delete_face(collection: str, face_id: int, key: Writer) -> Response:
        """Delete one stored face (writer)."""
        gallery = service.collections.gallery(collection)
        with service.write_lock(collection):
            gallery.delete_face(face_id)
        return Response(status_code=204)

    @app.get("/v1/collections/{collection}/faces/{face_id}/image", tags=["persons"],
             responses={200: {"content": {"application/octet-stream": {}}}})
    async def face_image(collection: str, face_id: int, key: Reader) -> Response:
        """The uploaded image of a stored face, when the collection keeps images."""
        data = service.collections.gallery(collection).face_image(face_id)
        if data is None:
            raise NoImageStoredError(f"no stored image for face {face_id}")
        return Response(data, media_type="application/octet-stream")

    @app.get("/v1/collections/{collection}/persons/{person}/faces/{face_id}/thumbnail", tags=["persons"],
             responses={200: {"content": {"image/jpeg": {}}}})
    async def face_thumbnail(collection: str, person: str, face_id: int, key: Reader) -> Response:
        """A JPEG crop (at most 96 px) of a stored face from its kept image, when the collection keeps images."""
        person = normalise_name(person)
        info = service.collections.info(collection)
        gallery = service.collections.gallery(collection)
        face = next((f for f in gallery.faces(person) if f.id == face_id), None)
        data = gallery.face_image(face_id) if face is not None and face.box else None
        if data is None:
            raise NoImageStoredError(f"no stored image of face {face_id} of {person!r}; only a collection made with "
                                     f"keep_images keeps them")

        def run(engine) -> bytes:  # the same decoding (EXIF turn included) as at enrolment, so the box fits
            return picking.crop_jpeg(engine.load(data, label=f"face {face_id}"), Box(*face.box))

        jpeg = await service.pool.submit(info.profile, run)
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})

    # -- 1:1 against a person, 1:N ------------------------------------------------------

    @app.post("/v1/collections/{collection}/persons/{person}/verify", response_model=schemas.PersonVerifyOut,
              tags=["faces"], openapi_extra={"requestBody": {"content": schemas.FACE_IMAGE_BODY, "required": True,
                                                             "description": "field `image`: one face, or name it "
                                                                            "with `face`, `box` or `largest`"}})
    async def verify_person(collection: str, person: str, request: Request, key: Reader,
                            require_live: bool = False) -> dict:
        """Is the face in `image` this enrolled person? (best score over their templates)

        Failed verifications are counted per key and person and per person over every key: past
        the service's limits within its window the answer is 429 `verify_locked` with
        `Retry-After`, and the refusal is written to the audit log.
        """
        person = normalise_name(person)
        info = service.collections.info(collection)
        try:
            service.lockout.check(key.id, collection, person)
        except VerifyLockedError as exc:
            request.state.audit_details = {"locked_out": True, "retry_after_s": exc.retry_after}
            log.warning("verification of %r in %r locked for key %s: %s", person, collection, key.id, exc)
            raise
        images, fields = await _read_images(request, ("image",), 1)
        label, data = _one(images, "image")
        choice = picking.choices(fields, 1)[0]
        gallery = service.collections.gallery(collection)
        pid = gallery.get_person(person).id

        def run(engine) -> dict:
            face = _chosen_face(engine, label, data, choice)
            if require_live:
                check = engine.check_live(face)
                if not check.is_live:
                    return {"person": person, "similarity": None, "is_match": False,
                            "threshold": round(engine.threshold, 4), "fmr": engine.fmr, "model": engine.model_id,
                            "liveness": [check.to_dict()], "rejected": check.reason}
            probe = engine.embed_faces([face])[0]
            _, pids, vecs = gallery.matrix()
            mine = vecs[pids == pid]
            similarity = float(np.max(engine.scores(mine, probe.vector))) if len(mine) else -1.0
            request.state.audit_details = {"is_match": similarity >= engine.threshold}
            return {"person": person, "similarity": round(similarity, 4), "is_match": similarity >= engine.threshold,
                    "threshold": round(engine.threshold, 4), "fmr": engine.fmr, "model": engine.model_id}

        result = await service.pool.submit(info.profile, run, fair=is_fair_model(info.model))
        service.lockout.record(key.id, collection, person, bool(result["is_match"]))
        return result

    @app.post("/v1/collections/{collection}/identify", response_model=schemas.IdentifyOut, tags=["faces"],
              openapi_extra={"requestBody": {"content": schemas.IMAGE_BODY, "required": True,
                                             "description": "field `image`: any number of faces"}})
    async def identify(collection: str, request: Request, key: Reader,
                       top_k: Annotated[int, Query(ge=1)] = 3, require_live: bool = False,
                       liveness: bool = False) -> dict:
        """Name every face in `image`: top-k candidates, and `unknown` when none reaches the threshold.

        `liveness=true` adds each face's passive liveness (as `require_live` does) without refusing
        to name a face that fails it: one request for names and live/spoof badges.
        """
        info = service.collections.info(collection)
        images, _ = await _read_images(request, ("image",), 1)
        label, data = _one(images, "image")
        gallery = service.collections.gallery(collection)
        k = min(top_k, settings.max_top_k)

        def run(engine) -> dict:
            image = engine.load(data, label=label)
            results = engine.identify(image, gallery, k=k, require_live=require_live)
            faces = [{**r.to_dict(), "unknown": r.person is None} for r in results]
            if liveness:
                for r, out in zip(results, faces, strict=True):
                    out.setdefault("liveness", (r.liveness or engine.check_live(r.face)).to_dict())
            request.state.audit_details = {"faces": len(results), "matched": [r.person for r in results if r.person],
                                           "rejected": sum(bool(r.rejected) for r in results),
                                           "skipped": sum(bool(r.skipped) for r in results)}
            return {"width": image.shape[1], "height": image.shape[0], "threshold": round(engine.threshold, 4),
                    "fmr": engine.fmr, "model": engine.model_id,
                    "faces": faces}

        return await service.pool.submit(info.profile, run, fair=is_fair_model(info.model))

    return app


# Route name -> audit action; every other /v1 route is recorded as "other" with its name.
AUDIT_ACTIONS = {
    "enrol": "enroll", "identify": "identify", "verify": "verify", "verify_person": "verify",
    "list_persons": "search", "get_person": "search", "face_image": "search", "face_thumbnail": "search",
    "delete_person": "delete", "delete_face": "delete", "delete_collection": "delete", "revoke_key": "delete",
}


def _audit(audit: AuditLog, request: Request, status: int, elapsed_ms: float) -> None:
    """Append one request to the audit log: who (key id), what, which collection and person, outcome."""
    key = getattr(request.state, "key", None)
    name = getattr(request.scope.get("route"), "name", None)
    details = {"route": name, "method": request.method, "path": request.url.path, "status": status,
               "elapsed_ms": round(elapsed_ms, 1), **getattr(request.state, "audit_details", {})}
    outcome = "ok" if status < 400 else ("denied" if status in (401, 403) or details.get("locked_out") else "error")
    audit.append(AUDIT_ACTIONS.get(name, "other"), actor=f"key:{key.id}" if key else "anonymous",
                 collection=request.path_params.get("collection"), subject=request.path_params.get("person"),
                 outcome=outcome, details=details)


def _person_dict(record) -> dict:
    return {"name": record.name, "metadata": record.metadata, "face_count": record.face_count,
            "created_at": record.created_at, "updated_at": record.updated_at}


__all__ = ["ServiceSettings", "create_app"]
