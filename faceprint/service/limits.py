"""Request limits and the map from documented errors to HTTP status codes.

:class:`BodyLimit` refuses a body over the limit: at once from its ``Content-Length``, or while
it streams in when no length is given, so an oversized upload is never held in memory whole.
"""

from __future__ import annotations

import json

from ..errors import FaceprintError

# Error code -> HTTP status; anything not listed is a 400.
STATUS = {
    "unauthorized": 401,
    "forbidden": 403,
    "collection_not_found": 404,
    "person_not_found": 404,
    "image_not_stored": 404,
    "challenge_not_found": 404,
    "collection_exists": 409,
    "model_mismatch": 409,
    "duplicate_identity": 409,
    "upload_too_large": 413,
    "image_too_large": 413,
    "image_decode_error": 422,
    "unsupported_input": 422,
    "no_face": 422,
    "multiple_faces": 422,
    "unknown_model": 422,
    "unknown_attribute": 422,
    "normaliser_missing": 422,
    "invalid_collection": 422,
    "invalid_key_request": 422,
    "invalid_name": 422,
    "invalid_challenge": 422,
    "busy": 429,
    "verify_locked": 429,
    "timeout": 503,
    "database_error": 503,
    "model_unavailable": 503,
}


class UploadTooLargeError(FaceprintError):
    """The request body is over the service's upload limit."""

    code = "upload_too_large"


def status_for(exc: FaceprintError) -> int:
    """The HTTP status for a documented error."""
    return STATUS.get(exc.code, 400)


class BodyLimit:
    """ASGI middleware: at most ``limit`` bytes of request body (413 beyond)."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send, int(declared))
            return
        seen = 0

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise UploadTooLargeError(f"request body over the limit of {self.limit} bytes")
            return message

        await self.app(scope, limited_receive, send)

    async def _refuse(self, send, size: int) -> None:
        body = json.dumps({"error": {"code": UploadTooLargeError.code,
                                     "message": f"request body of {size} bytes is over the limit of "
                                                f"{self.limit} bytes"}}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
