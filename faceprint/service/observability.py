"""Prometheus metrics at ``/metrics`` and structured JSON logs for the service.

Metrics use the standard client library (``prometheus-client``), in a registry of the app's own
(two apps in one process, as in the tests, never share counters):

* ``faceprint_http_requests_total{route, method, status}``: requests answered, by route template
  (``/v1/collections/{collection}/identify``, never the raw path, so the label set stays small;
  ``unmatched`` for a path no route serves) and HTTP status.
* ``faceprint_http_request_duration_seconds{route, method}``: a latency histogram (buckets from
  5 ms to 60 s, the service's default time limit).
* ``faceprint_inference_queue_depth``: inference jobs running or waiting now;
  ``faceprint_inference_workers``: the pool's size.
* ``faceprint_templates{collection}`` and ``faceprint_persons{collection}``: read from the store at
  scrape time (the database with ``--database``: every replica reports the same, current counts).

Each ``faceprint serve`` process is one Python process (inference runs on threads), so the
client's default single-process mode is the right one: with replicas, Prometheus scrapes each
replica and labels its series by ``instance``; there is no worker process whose counts would need
the client's multiprocess mode.

:func:`configure_json_logs` makes every log record one JSON object per line (``python-json-logger``)
and turns on one access record per request (logger ``faceprint.service.access``: method, route,
path, status, milliseconds, the key id; at DEBUG for the probes ``/health``, ``/ready`` and
``/metrics``, which load balancers and Prometheus poll).
"""

from __future__ import annotations

import logging
import sys
import time

from ..extras import extra_not_installed

log = logging.getLogger(__name__)
access_log = logging.getLogger("faceprint.service.access")

PROBES = ("/health", "/ready", "/metrics")  # load balancers and Prometheus poll these: access records at DEBUG
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"


class _StateCollector:
    """Gauges read when Prometheus scrapes: the inference queue and each collection's size."""

    def __init__(self, service) -> None:
        self.service = service

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        pool = self.service.pool
        queue = GaugeMetricFamily("faceprint_inference_queue_depth", "Inference jobs running or waiting now")
        queue.add_metric([], pool.pending)
        yield queue
        workers = GaugeMetricFamily("faceprint_inference_workers", "Inference worker threads of this process")
        workers.add_metric([], pool.workers)
        yield workers
        templates = GaugeMetricFamily("faceprint_templates", "Face templates stored, per collection",
                                      labels=["collection"])
        persons = GaugeMetricFamily("faceprint_persons", "Enrolled persons, per collection", labels=["collection"])
        collections = self.service.collections
        try:
            for name in collections.names():
                gallery = collections.gallery(name)
                templates.add_metric([name], gallery.face_count())
                persons.add_metric([name], len(gallery))
        except Exception as exc:  # noqa: BLE001 - a scrape must answer even when the store does not
            log.warning("metrics: cannot count the collections' templates: %s", exc)
        yield templates
        yield persons


class Metrics:
    """The app's registry, its request counter and latency histogram, and the state gauges."""

    def __init__(self, service) -> None:
        try:
            from prometheus_client import CollectorRegistry, Counter, Histogram
        except ImportError as exc:  # the optional "service" part of faceprint
            raise extra_not_installed("service", "the service's /metrics (faceprint.service.observability)",
                                      [exc.name or "prometheus-client"]) from exc
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("faceprint_http_requests", "HTTP requests answered, by route template and status",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("faceprint_http_request_duration_seconds", "Time to answer an HTTP request",
                                 ["route", "method"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.registry.register(_StateCollector(service))

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)

    def exposition(self) -> bytes:
        """Every metric in the Prometheus text format."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


def route_of(request) -> str:
    """The route template that served ``request`` (``unmatched`` when none did).

    FastAPI's own routes put themselves in the scope; Starlette's plain routes (``/openapi.json``,
    ``/docs``) and mounts (``/static``, ``/docs/static``) do not, so they are matched here again; a
    mount's label is ``MOUNT/{path}``.
    """
    from starlette.routing import Match, Mount

    route = request.scope.get("route")
    if route is None:
        scope = {**request.scope, "path": request.url.path, "root_path": ""}
        route = next((r for r in request.app.router.routes if r.matches(scope)[0] is Match.FULL), None)
    path = getattr(route, "path", None)
    if not path:
        return "unmatched"
    return f"{path}/{{path}}" if isinstance(route, Mount) else path


def install(app, service) -> Metrics:
    """Add the metrics middleware, the access log and ``GET /metrics`` to ``app``."""
    from fastapi import Request
    from fastapi.responses import Response

    metrics = Metrics(service)

    @app.middleware("http")
    async def count_requests(request: Request, call_next):
        start = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            seconds = time.perf_counter() - start
            route = route_of(request)
            if route != "/metrics":
                metrics.observe(route, request.method, status, seconds)
            level = logging.DEBUG if route in PROBES else logging.INFO
            if access_log.isEnabledFor(level):
                key = getattr(request.state, "key", None)
                access_log.log(level, "request", extra={"method": request.method, "route": route,
                                                  "path": request.url.path, "status": status,
                                                  "ms": round(1000 * seconds, 1), "key_id": key.id if key else None})

    from prometheus_client import CONTENT_TYPE_LATEST

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return metrics


def configure_json_logs(level: int = logging.INFO, stream=None) -> logging.Handler:
    """Send every log record to ``stream`` (default stderr) as one JSON object per line; returns the handler."""
    try:
        from pythonjsonlogger.json import JsonFormatter
    except ImportError as exc:  # the optional "service" part of faceprint
        raise extra_not_installed("service", "faceprint serve --log-format json",
                                  [exc.name or "python-json-logger"]) from exc

    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(JSON_FIELDS, rename_fields={"asctime": "time", "levelname": "level",
                                                                   "name": "logger"}))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
