"""``faceprint liveness IMAGE`` and ``faceprint eval pad DIR``: passive presentation attack detection."""

from __future__ import annotations

import argparse
import sys

from .common import emit, table


def cmd_liveness(args: argparse.Namespace) -> int:
    """Passive liveness of every face in an image (the whole image when no face is found)."""
    from ..models import registry
    from ..models.pad_passive import WEIGHTS, PassiveLiveness
    from ..pipeline.image_io import load_image

    image = load_image(args.image)
    model = PassiveLiveness(args.pad_weights or WEIGHTS, threshold=args.pad_threshold)
    faces = registry.load_detector("yunet").detect(image)
    faces.sort(key=lambda f: f.box.area, reverse=True)
    results = [(f, model.check(image, f)) for f in faces] or [(None, model.check(image, None))]
    rows = [
        (i, f.box.as_list() if f else "whole image", f"{r.score:.3f}", "LIVE" if r.is_live else "ATTACK",
         r.reason or "-")
        for i, (f, r) in enumerate(results)
    ]
    text = table(rows, ["#", "box [x, y, w, h]", "live score", "decision", "reason"])
    text += f"\nthreshold {model.threshold:.3f} (model {model.model})"
    payload = {"image": str(args.image),
               "faces": [{"box": f.box.as_list() if f else None, **r.to_dict()} for f, r in results]}
    emit(args, payload, text)
    return 0 if all(r.is_live for _, r in results) else 1


def cmd_eval_pad(args: argparse.Namespace) -> int:
    """ISO/IEC 30107-3 APCER/BPCER of the passive PAD model on a real/ + fake/ (attack-<type>/) folder."""
    from ..evaluation.pad import run_pad_eval

    run = run_pad_eval(args.dir, args.out, threshold=args.pad_threshold, weights=args.pad_weights,
                       progress=not args.json and sys.stderr.isatty())
    m = run.metrics
    rows = [(f"APCER {kind}", f"{100 * rate:.2f}%", m.attack_counts[kind]) for kind, rate in m.apcer_per_type.items()]
    rows += [
        ("APCER (worst case)", f"{100 * m.apcer:.2f}%", sum(m.attack_counts.values())),
        ("BPCER", f"{100 * m.bpcer:.2f}%", m.bona_fide_count),
    ]
    rows += [(f"BPCER @ APCER {100 * x:g}%", f"{100 * v:.2f}%", f"threshold {m.threshold_at_apcer[x]:.4f}")
             for x, v in m.bpcer_at_apcer.items()]
    rows.append(("EER", f"{100 * m.eer:.2f}%", f"threshold {m.eer_threshold:.4f}"))
    text = table(rows, ["metric", "value", "n / note"])
    faces = sum(1 for r in run.rows if r["face_found"])
    text += (f"\noperating threshold {m.threshold:.4f}; face found in {faces} of {len(run.rows)} images "
             f"(the rest scored as whole images)\nreport: {run.files['report']}  DET plot: {run.files['det']}")
    emit(args, run.to_dict(), text)
    return 0


def register(sub: argparse._SubParsersAction, eval_sub: argparse._SubParsersAction,
             common: argparse.ArgumentParser) -> None:
    """Add ``liveness`` and ``eval pad`` to the ``faceprint`` command line."""
    p = sub.add_parser("liveness", parents=[common],
                       help="passive liveness (presentation attack detection) of the faces in one image")
    p.add_argument("image")
    p.add_argument("--pad-threshold", type=float, default=None,
                   help="live-score threshold (default: the model's, chosen on synthetic validation data)")
    p.add_argument("--pad-weights", default=None,
                   help="passive PAD weights file (default: the shipped faceprint/models/weights/pad_passive.npz)")
    p.set_defaults(func=cmd_liveness)
    e = eval_sub.add_parser("pad", parents=[common],
                            help="PAD APCER/BPCER (ISO/IEC 30107-3) on a folder with real/ and fake/ or attack-<type>/")
    e.add_argument("dir", help="folder with real/ (bona fide) and fake/ or attack-<type>/ sub-folders")
    e.add_argument("--out", default="out/eval-pad", help="folder for report.json, scores.csv and det.png")
    e.add_argument("--pad-threshold", type=float, default=None,
                   help="live-score threshold (default: the model's, chosen on synthetic validation data)")
    e.add_argument("--pad-weights", default=None, help="passive PAD weights file (default: the shipped one)")
    e.set_defaults(func=cmd_eval_pad)
