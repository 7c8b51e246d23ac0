"""``faceprint liveness IMAGE`` and ``faceprint eval pad DIR``: passive presentation attack detection."""

from __future__ import annotations

import argparse
import sys

from .common import add_output_option, emit, table


def cmd_liveness(args: argparse.Namespace) -> int:
    """Passive liveness of every face in an image; exit 1 (not live, no attack claimed) when no face is found."""
    from ..models import registry
    from ..models.pad_passive import PassiveLiveness
    from ..pipeline.image_io import load_image

    image = load_image(args.image)
    model = PassiveLiveness(threshold=args.pad_threshold)
    faces = registry.load_detector("yunet").detect(image)
    faces.sort(key=lambda f: f.box.area, reverse=True)
    if not faces:  # nothing to judge: not live, and no attack type is claimed for a faceless image
        reason = f"no face found in {args.image}; give the whole camera frame with the face in it"
        emit(args, {"image": str(args.image), "threshold": model.threshold, "model": model.model, "is_live": False,
                    "reason": reason, "faces": []}, f"NOT LIVE: {reason}")
        return 1
    results = [(f, model.check(image, f)) for f in faces]
    rows = [
        (i, f.box.as_list(), f"{r.score:.3f}",
         "NOT JUDGED" if not r.judged else "LIVE" if r.is_live else "ATTACK",
         "-" if r.is_live or not r.judged else f"{r.attack_type} {r.attack_probability:.2f}", f"{r.context:.1f}x")
        for i, (f, r) in enumerate(results)
    ]
    text = table(rows, ["#", "box [x, y, w, h]", "live score", "decision", "attack type", "context"])
    for i, (_, r) in enumerate(results):  # in full below the table: the reasons are what a person checks
        if r.reason:
            text += f"\nface {i}: {r.reason}"
        text += "".join(f"\n  cue {c.text}" for c in r.cues)
    text += f"\nthreshold {model.threshold:.3f} (model {model.model})"
    payload = {"image": str(args.image), "threshold": model.threshold, "model": model.model,
               "is_live": all(r.is_live for _, r in results), "reason": None,
               "faces": [{"box": f.box.as_list(), **r.to_dict()} for f, r in results]}
    emit(args, payload, text)
    return 0 if all(r.is_live for _, r in results) else 1


def cmd_eval_pad(args: argparse.Namespace) -> int:
    """ISO/IEC 30107-3 APCER/BPCER of the passive check on a real/ + fake/ (attack-<type>/) folder, BPCER per group."""
    from ..evaluation.pad import run_pad_eval

    run = run_pad_eval(args.dir, args.out, threshold=args.pad_threshold, bona_fide_only=args.bona_fide_only,
                       progress=not args.json and sys.stderr.isatty())
    bona = sum(1 for r in run.rows if r["type"] == "bona_fide")
    m = run.metrics
    rows = []
    if m is not None:
        rows += [(f"APCER {kind}", f"{100 * rate:.2f}%", m.attack_counts[kind])
                 for kind, rate in m.apcer_per_type.items()]
        rows.append(("APCER (worst case)", f"{100 * m.apcer:.2f}%", sum(m.attack_counts.values())))
    rows.append(("BPCER", f"{100 * run.bpcer:.2f}%", bona))
    if m is not None:
        rows += [(f"BPCER @ APCER {100 * x:g}%", f"{100 * v:.2f}%", f"threshold {m.threshold_at_apcer[x]:.4f}")
                 for x, v in m.bpcer_at_apcer.items()]
        rows.append(("EER", f"{100 * m.eer:.2f}%", f"threshold {m.eer_threshold:.4f}"))
    text = table(rows, ["metric", "value", "n / note"])
    if run.groups:
        shown = [g for g in run.groups if g.attribute != "person"]
        people = sorted((g for g in run.groups if g.attribute == "person"), key=lambda g: (-g.bpcer, -g.n))
        shown += [g for g in people if g.n >= args.min_images][:args.people]
        text += "\n\nBPCER per group (Wilson 95% interval)\n" + table(
            [(g.attribute, g.group, g.n, g.rejected, f"{100 * g.bpcer:.1f}%",
              f"{100 * g.low:.1f}-{100 * g.high:.1f}%") for g in shown],
            ["attribute", "group", "images", "rejected", "BPCER", "95% interval"])
        if people:
            text += (f"\n{len(people)} people; {sum(g.rejected > 0 for g in people)} with a rejected image; "
                     f"shown: the {args.people} worst with at least {args.min_images} images")
    faces = sum(1 for r in run.rows if r["face_found"])
    not_judged = sum(1 for r in run.rows if not r["judged"])
    text += (f"\noperating threshold {run.threshold:.4f}; face found in {faces} of {len(run.rows)} images "
             f"(the rest scored as whole images)"
             + (f"; {not_judged} greyscale image(s) not judged (counted as rejected)" if not_judged else "")
             + f"\nreport: {run.files['report']}"
             + (f"  DET plot: {run.files['det']}" if "det" in run.files else ""))
    emit(args, run.to_dict(), text)
    return 0


def register(sub: argparse._SubParsersAction, eval_sub: argparse._SubParsersAction,
             common: argparse.ArgumentParser) -> None:
    """Add ``liveness`` and ``eval pad`` to the ``faceprint`` command line."""
    p = sub.add_parser("liveness", parents=[common],
                       help="passive liveness (presentation attack detection) of the faces in one image "
                            "(exit 0 all live, 1 an attack suspected or a face not judged, such as a greyscale one)")
    p.add_argument("image", help="the whole camera frame or photo (not a face crop: the check needs the context)")
    p.add_argument("--pad-threshold", type=float, default=None,
                   help="live-score threshold (default: the shipped one, chosen on LFW DevTrain; docs/liveness.md)")
    p.set_defaults(func=cmd_liveness)
    e = eval_sub.add_parser("pad", parents=[common],
                            help="PAD APCER/BPCER (ISO/IEC 30107-3) on a folder with real/ and fake/ or "
                                 "attack-<type>/, and BPCER per group when the live images carry labels")
    e.add_argument("dir", help="folder with real/ (bona fide) and fake/ or attack-<type>/ sub-folders")
    add_output_option(e, "--out", kind="folder", default="out/eval-pad", help="folder for report.json, scores.csv and det.png")
    e.add_argument("--pad-threshold", type=float, default=None, help="live-score threshold (default: the shipped one)")
    e.add_argument("--bona-fide-only", action="store_true",
                   help="every image under DIR is bona fide (live photos): BPCER, per group when labelled "
                        "(UTKFace file names: gender, age, race; LFW layout NAME/NAME_0001.jpg: person)")
    e.add_argument("--people", type=int, default=10, help="people shown in the per-person table (default 10)")
    e.add_argument("--min-images", type=int, default=3,
                   help="only people with at least this many images in the per-person table (default 3)")
    e.set_defaults(func=cmd_eval_pad)
