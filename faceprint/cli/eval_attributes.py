"""``faceprint eval age DIR`` and ``faceprint eval expression DIR``: accuracy of the attribute models."""

from __future__ import annotations

import argparse

from .common import add_output_option, emit, table


def cmd_eval_age(args: argparse.Namespace) -> int:
    """MAE, share within 5 years and gender accuracy on UTKFace-named photos, by decade, gender and race."""
    from ..evaluation.attributes import evaluate_age

    run = evaluate_age(args.dir, args.out, limit=args.limit)
    rows = [(g.attribute, g.group, g.n, f"{g.mae:.2f}", f"{100 * g.within5:.1f}%", f"{100 * g.gender_accuracy:.1f}%")
            for g in run.groups]
    text = table(rows, ["by", "group", "photos", "age MAE (years)", "within 5 years", "gender accuracy"])
    text += (f"\nmodel {run.to_dict()['model']}; no face detected in {run.no_face} of {run.groups[0].n} photos "
             f"(cropped as UTKFace chips)")
    if run.files:
        text += f"\nreport: {run.files['report']}  plot: {run.files['plot']}"
    emit(args, run.to_dict(), text)
    return 0


def cmd_eval_expression(args: argparse.Namespace) -> int:
    """Accuracy, recall per class, macro F1 and a confusion matrix on a folder per expression."""
    from ..evaluation.attributes import evaluate_expression
    from ..models.expression import CLASSES

    run = evaluate_expression(args.dir, args.out, detect=args.detect, limit=args.limit)
    recall, f1 = run.recall(), run.f1()
    counts = run.confusion.sum(axis=1)
    rows = [(c, int(counts[i]), f"{100 * recall[c]:.1f}%", f"{f1[c]:.3f}") for i, c in enumerate(CLASSES) if counts[i]]
    rows.append(("all", run.n, f"accuracy {100 * run.accuracy:.2f}%", f"macro {run.macro_f1:.3f}"))
    text = table(rows, ["class", "images", "recall", "F1"])
    renamed = {k: v for k, v in run.folders.items() if v is not None and k != v}
    if renamed:
        text += "\nfolders mapped: " + ", ".join(f"{k} -> {v}" for k, v in renamed.items())
    for folder, predicted in run.unmapped.items():
        text += (f"\n{folder}: not one of the model's classes, left out of the scores; predicted as "
                 + ", ".join(f"{c} {n}" for c, n in sorted(predicted.items(), key=lambda kv: -kv[1])))
    if run.files:
        text += f"\nreport: {run.files['report']}  confusion matrix: {run.files['confusion']}"
    emit(args, run.to_dict(), text)
    return 0


def register(sub: argparse._SubParsersAction, eval_sub: argparse._SubParsersAction,
             common: argparse.ArgumentParser) -> None:
    """Add ``eval age`` and ``eval expression`` to the ``faceprint`` command line."""
    e = eval_sub.add_parser("age", parents=[common],
                            help="apparent-age MAE, within-5-years share and gender accuracy on UTKFace-named "
                                 "photos (age_gender_race_date.jpg...), by decade, gender and race")
    e.add_argument("dir", help="folder of UTKFace photos (labels are read from the file names)")
    add_output_option(e, "--out", kind="folder", default=None, help="folder for report.json and mae_by_decade.png")
    e.add_argument("--limit", type=int, default=None, help="only the first N photos (sorted by name)")
    e.set_defaults(func=cmd_eval_age)
    e = eval_sub.add_parser("expression", parents=[common],
                            help="expression accuracy, recall per class, macro F1 and confusion matrix on a "
                                 "folder with one sub-folder per class (FER2013 or CK+ names)")
    e.add_argument("dir", help="folder with one sub-folder per expression (angry/anger, happy, sad/sadness, ...)")
    add_output_option(e, "--out", kind="folder", default=None, help="folder for report.json and confusion.png")
    e.add_argument("--detect", action="store_true",
                   help="find the face in each image (whole photos); default: each file is a face crop, as in FER2013")
    e.add_argument("--limit", type=int, default=None, help="at most N images per class")
    e.set_defaults(func=cmd_eval_expression)
