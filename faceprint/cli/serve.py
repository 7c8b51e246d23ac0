"""``faceprint serve`` (the REST service and web page) and ``faceprint apikey`` (keys offline)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from .common import emit, table

log = logging.getLogger("faceprint")
ADMIN_KEY_FILE = "admin.key"
DATABASE_ENV = "FACEPRINT_DATABASE"


def _key_store(data: Path, database: str | None):
    """The API key store: the service database's table with ``database``, else ``DATA/keys.sqlite``."""
    if database:
        from ..service.database import PostgresKeyStore

        return PostgresKeyStore(database)
    from ..service.keys import KeyStore

    data.mkdir(parents=True, exist_ok=True)
    return KeyStore(data / "keys.sqlite")


def _first_admin_key(data: Path, database: str | None = None) -> Path | None:
    """On a new data folder (or database), issue an admin key for every collection into ``DATA/admin.key`` (0600).

    With a database, only the first replica ever started finds no key (under a database lock) and
    writes the file, in its own data folder.
    """
    from ..service.keys import ALL

    store = _key_store(data, database)
    try:
        if database:
            full = store.create_first_admin()
            if full is None:
                return None
        elif store.list():
            return None
        else:
            full, _ = store.create("admin", [ALL], label="first admin key")
    finally:
        store.close()
    data.mkdir(parents=True, exist_ok=True)
    path = data / ADMIN_KEY_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(full + "\n")
    return path


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the service until interrupted."""
    from ..extras import require_extra

    require_extra("service", "faceprint serve")
    import uvicorn

    from ..errors import FaceprintError
    from ..privacy.crypto import load_key
    from ..profiles import DEFAULT_PROFILE
    from ..service.app import ServiceSettings, create_app
    from ..service.lockout import LockoutPolicy

    if args.log_format == "json":
        from ..service.observability import configure_json_logs

        configure_json_logs(logging.DEBUG if args.verbose else logging.INFO)
    data = Path(args.data)
    database = args.database or None
    if database:
        from ..service.database import check_url

        check_url(database)
        if args.audit_log:
            raise FaceprintError("--audit-log names a file; with --database the audit log is the database's "
                                 "faceprint_audit.audit_log table (faceprint audit verify URL checks it): drop one")
    created = _first_admin_key(data, database)
    if created:
        print(f"faceprint: new data folder; admin API key written to {created} (read it, then keep it safe)",
              file=sys.stderr)
    settings = ServiceSettings(data_dir=data, profile=args.model or DEFAULT_PROFILE, fmr=args.fmr,
                               max_upload_bytes=int(args.max_upload_mb * 1024 * 1024), max_pixels=args.max_pixels,
                               workers=args.workers or (os.cpu_count() or 1), queue=args.queue,
                               timeout_s=args.timeout,
                               audit_log=None if database else Path(args.audit_log or data / "audit.log"),
                               key=load_key(args.key_file), database=database,
                               lockout=LockoutPolicy(args.verify_max_failures, args.verify_max_failures_person,
                                                     args.verify_window))
    print(f"faceprint: serving http://{args.host}:{args.port}/ (web page), API at /v1, "
          f"OpenAPI at /openapi.json; profile {settings.profile}, {settings.workers} worker(s)", file=sys.stderr)
    if database:
        from ..gallery.postgres import mask_url

        print(f"faceprint: state in {mask_url(database)} (keys, collections, audit log; shared by replicas)",
              file=sys.stderr)
    logs = {"log_config": None, "access_log": False} if args.log_format == "json" else {}  # JSON: ours, one format
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="warning",
                timeout_graceful_shutdown=5, **logs)
    return 0


def cmd_apikey(args: argparse.Namespace) -> int:
    """Create, list or revoke API keys directly in a data folder (no running service needed)."""
    store = _key_store(Path(args.data), args.database or None)
    try:
        if args.action == "create":
            full, record = store.create(args.role, args.collections.split(","), args.label)
            emit(args, {"key": full, **record.to_dict()},
                 f"{full}\n(role {record.role}, collections {','.join(record.collections)}; shown once, not stored)")
        elif args.action == "list":
            keys = store.list()
            emit(args, [k.to_dict() for k in keys],
                 table([(k.id, k.role, ",".join(k.collections), k.label, k.created_at) for k in keys],
                       ["id", "role", "collections", "label", "created"]))
        else:
            store.revoke(args.id)
            emit(args, {"revoked": args.id}, f"revoked key {args.id}")
    finally:
        store.close()
    return 0


def register(sub, eval_sub, common) -> None:
    """Add ``serve`` and ``apikey``."""
    p = sub.add_parser("serve", parents=[common], help="run the REST service and web page")
    p.add_argument("--data", default="faceprint-data", help="folder for keys and collections (default ./faceprint-data)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=int, default=None, help="inference threads (default: CPU cores)")
    p.add_argument("--queue", type=int, default=64, help="requests that may wait for a worker before 429 (default 64)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds a request may take before 503 (default 60)")
    p.add_argument("--max-upload-mb", type=float, default=10.0, help="largest request body in MiB (default 10)")
    p.add_argument("--max-pixels", type=int, default=25_000_000, help="largest image in pixels (default 25e6)")
    p.add_argument("--key-file", default=None,
                   help="encrypt every collection's templates and kept images with this key "
                        "(default: $FACEPRINT_GALLERY_KEY if set; 'faceprint keys new' makes one)")
    p.add_argument("--audit-log", default=None,
                   help="hash-chained audit log of every API request (default DATA/audit.log); "
                        "check it with 'faceprint audit verify'")
    p.add_argument("--database", default=os.environ.get(DATABASE_ENV),
                   help="postgresql:// URL (PostgreSQL with pgvector): keep keys, collections, templates, kept "
                        "images and the audit log there, shared by every replica given the same URL "
                        f"(default ${DATABASE_ENV}; none: everything in --data)")
    p.add_argument("--log-format", choices=("text", "json"), default="text",
                   help="json: every log record as one JSON object per line, with one access record per request")
    p.add_argument("--verify-max-failures", type=int, default=5, metavar="N",
                   help="failed verifications of one person by one API key within --verify-window before the "
                        "person's verify endpoint answers 429 with Retry-After (default 5; 0: no limit)")
    p.add_argument("--verify-max-failures-person", type=int, default=20, metavar="N",
                   help="the same over every key together (default 20; 0: no limit)")
    p.add_argument("--verify-window", type=float, default=900.0, metavar="SECONDS",
                   help="the window the failures are counted in (default 900 = 15 minutes)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("apikey", parents=[common], help="create, list or revoke service API keys")
    p.add_argument("action", choices=["create", "list", "revoke"])
    p.add_argument("--data", default="faceprint-data", help="the service's data folder")
    p.add_argument("--database", default=os.environ.get(DATABASE_ENV),
                   help=f"the service database's postgresql:// URL, for a service run with --database "
                        f"(default ${DATABASE_ENV})")
    p.add_argument("--role", choices=["reader", "writer", "admin"], default="reader")
    p.add_argument("--collections", default="*", help="comma-separated collection names, or * (default)")
    p.add_argument("--label", default="", help="a note to recognise the key by")
    p.add_argument("--id", help="key id to revoke")
    p.set_defaults(func=cmd_apikey)
