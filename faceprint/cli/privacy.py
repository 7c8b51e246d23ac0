"""``faceprint keys``, ``faceprint purge`` and ``faceprint audit``: keys, retention and the audit log.

The gallery privacy options every gallery-opening command shares (``--key-file``,
``--transform-key-file``, ``--transform-mode``, ``--audit-log``) are in :mod:`faceprint.cli.common`.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import FaceprintError
from ..gallery import is_postgres_url
from ..privacy.audit import AuditLog, AuditLogError, PostgresAuditLog, audit_cli
from ..privacy.cancelable import MODES
from ..privacy.crypto import KEY_ENV, GalleryKey, load_key, read_key_file, write_key_file
from .common import add_gallery_privacy_options, add_output_option, emit, gallery_privacy_from_args


def cmd_keys_new(args: argparse.Namespace) -> int:
    """Write a new random key file (mode 0600)."""
    key = GalleryKey.generate()
    path = write_key_file(args.path, key, overwrite=args.force)
    emit(args, {"key_file": str(path), "fingerprint": key.fingerprint},
         f"wrote {path} (key check {key.fingerprint}); keep it secret and backed up: "
         "without it an encrypted gallery cannot be read")
    return 0


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    """Re-encrypt a gallery under a new key (or encrypt / decrypt it) in one transaction."""
    from ..gallery import Gallery

    old = load_key(args.old_key_file)
    if args.decrypt == bool(args.new_key_file):
        raise FaceprintError("give exactly one of --new-key-file and --decrypt")
    new = None if args.decrypt else read_key_file(args.new_key_file)
    transform = gallery_privacy_from_args(args)["transform"]
    with Gallery(args.gallery, key=old, transform=transform) as gallery:
        count = gallery.rekey(new)
    after = new.fingerprint if new is not None else "none (decrypted)"
    audit_cli(args, "rotate_key", details={"faces": count, "old_key_check": old.fingerprint if old else None,
                                           "new_key_check": new.fingerprint if new else None})
    emit(args, {"gallery": args.gallery, "faces": count, "key_check": new.fingerprint if new else None},
         f"re-encrypted {count} face(s) of {args.gallery}; key check now {after}")
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    """Delete faces enrolled more than N days ago."""
    from ..gallery import Gallery

    with Gallery(args.gallery, **gallery_privacy_from_args(args)) as gallery:
        removed = gallery.purge_older_than(args.older_than_days)
        left = gallery.face_count()
    audit_cli(args, "purge", details={"older_than_days": args.older_than_days, "faces_removed": removed})
    emit(args, {"gallery": args.gallery, "faces_removed": removed, "faces_left": left},
         f"purged {removed} face(s) older than {args.older_than_days:g} days; {left} left in {args.gallery}")
    return 0


def _parse_head(text: str | None) -> tuple[int, str] | None:
    if text is None:
        return None
    seq, sep, digest = text.partition(":")
    if not sep or not seq.isdigit() or len(digest) != 64:
        raise FaceprintError(f"--expect-head must be SEQ:SHA256HEX, got {text!r}")
    return int(seq), digest


def _existing_log(path: str) -> AuditLog | PostgresAuditLog:
    """The audit log at ``path`` (a file, or the service database's table for a ``postgresql://`` URL).

    AuditLogError when there is no such file (a mistyped path is not an empty log).
    """
    if is_postgres_url(path):
        return PostgresAuditLog(path)
    if not os.path.isfile(path):
        raise AuditLogError(f"{path}: no such audit log file; give the log that 'faceprint serve' writes "
                            f"(DATA/audit.log) or that --audit-log / $FACEPRINT_AUDIT_LOG named")
    return AuditLog(path)


def cmd_audit_verify(args: argparse.Namespace) -> int:
    """Check an audit log's hash chain; exit 1 when it is broken."""
    report = _existing_log(args.log).verify(_parse_head(args.expect_head))
    if report.ok:
        text = (f"OK: {report.records} record(s), chain intact; head {report.head_seq}:{report.head_hash} "
                "(keep this head elsewhere to detect truncation)")
    else:
        text = f"BROKEN at seq {report.first_bad_seq} (line {report.first_bad_line}): {report.reason}"
    emit(args, report.to_dict(), text)
    return 0 if report.ok else 1


def cmd_audit_export(args: argparse.Namespace) -> int:
    """Write an audit log as JSON lines or CSV."""
    text = _existing_log(args.log).export(args.format)
    if args.out:
        with open(args.out, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return 0


def register(sub, eval_sub, common) -> None:
    """Add ``keys``, ``purge`` and ``audit`` to the ``faceprint`` command line."""
    keys = sub.add_parser("keys", help="gallery encryption keys").add_subparsers(dest="keys_command", required=True)
    p = keys.add_parser("new", parents=[common], help="write a new random key file (mode 0600)")
    p.add_argument("path", help="where to write the key file")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=cmd_keys_new)
    p = keys.add_parser("rotate", parents=[common],
                        help="re-encrypt a gallery under a new key, atomically")
    p.add_argument("--gallery", required=True, help="a SQLite gallery file")
    p.add_argument("--old-key-file", help=f"its current key (default: ${KEY_ENV}; none for a plaintext gallery)")
    p.add_argument("--new-key-file", help="the new key (from 'faceprint keys new')")
    p.add_argument("--decrypt", action="store_true", help="store the templates unencrypted instead")
    p.add_argument("--transform-key-file", help="the gallery's cancelable transform key, if it has one")
    p.add_argument("--transform-mode", choices=MODES, default="rotate")
    p.add_argument("--audit-log", help="audit log to record the rotation in (default: $FACEPRINT_AUDIT_LOG)")
    p.set_defaults(func=cmd_keys_rotate)

    p = sub.add_parser("purge", parents=[common], help="delete faces enrolled more than N days ago")
    p.add_argument("--gallery", required=True, help="a SQLite gallery file")
    p.add_argument("--older-than-days", type=float, required=True, help="retention period in days")
    add_gallery_privacy_options(p)
    p.set_defaults(func=cmd_purge)

    audit = sub.add_parser("audit", help="check or export an audit log").add_subparsers(
        dest="audit_command", required=True)
    p = audit.add_parser("verify", parents=[common], help="check the hash chain (exit 1 if broken)")
    p.add_argument("log", help="the audit log file, or the postgresql:// URL of a service database "
                               "(faceprint serve --database)")
    p.add_argument("--expect-head", help="SEQ:HASH printed by an earlier verify: also detects truncation")
    p.set_defaults(func=cmd_audit_verify)
    p = audit.add_parser("export", parents=[common], help="print the log as jsonl or csv")
    p.add_argument("log", help="the audit log file, or the postgresql:// URL of a service database")
    p.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    add_output_option(p, "--out", kind="file", help="write to this file instead of standard output")
    p.set_defaults(func=cmd_audit_export)
