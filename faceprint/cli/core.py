"""The core commands: ``detect``, ``verify``, ``enroll``, ``identify``, ``people``, ``delete``, ``models``,
``eval lfw`` and ``eval identify``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import FaceprintError, PersonNotFoundError, UnsupportedInputError
from ..gallery.names import normalise_name
from ..privacy.audit import audit_cli
from ..types import TIE_MARGIN
from .common import (GALLERY_HELP, add_fair_option, add_gallery_privacy_options, add_output_option, emit,
                     engine_from_args, fields_block, gallery_privacy_from_args, person_not_found, resolve_profile, table)


def _no_face(image: str) -> str:
    """What detect and identify print for an image without a face (the wording of analyze and verify)."""
    from ..engine import no_usable_face_error

    return no_usable_face_error(str(image), []).args[0]


def cmd_detect(args: argparse.Namespace) -> int:
    """Detect faces, print a table, optionally write an annotated image."""
    from ..pipeline.draw import annotate, save_rgb

    engine = engine_from_args(args)
    image = engine.load(args.image)
    faces = engine.finder.find(image)
    if args.out:
        save_rgb(annotate(image, faces, skipped=[not engine.gate.passes(f) for f in faces]), args.out)
    rows = [
        (i, f.box.as_list(), f"{f.score:.3f}", f"{f.quality:.2f}", ",".join(f.quality_reasons) or "-",
         f.orientation)
        for i, f in enumerate(faces)
    ]
    reason = None if faces else _no_face(args.image)
    text = table(rows, ["#", "box [x, y, w, h]", "score", "quality", "issues", "orientation"]) if faces else reason
    text += f"\n{len(faces)} face(s)" + (f"; annotated image: {args.out}" if args.out else "")
    emit(args, {"image": str(args.image), "faces": [f.to_dict() for f in faces], "reason": reason}, text)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Verify whether two images show the same person."""
    engine = engine_from_args(args)
    result = engine.verify(args.a, args.b, largest=args.largest, require_live=args.require_live)
    if result.rejected:
        text = f"REJECTED before matching: {result.rejected}"
    else:
        verdict = "SAME person" if result.is_match else "DIFFERENT people"
        text = (
            f"{verdict}: similarity {result.similarity:.4f} vs threshold {result.threshold:.4f} "
            f"(calibrated FMR {result.fmr:g}, model {result.model})"
        )
    emit(args, result.to_dict(), text)
    return 0 if result.is_match else 1


def cmd_enroll(args: argparse.Namespace) -> int:
    """Enrol one person from images, or every person of a folder-per-person tree."""
    from tqdm import tqdm

    if args.tree:
        return _enroll_tree(args)
    folder = next((p for p in args.images if Path(p).is_dir()), None)
    if folder is not None:
        raise UnsupportedInputError(
            f"{folder} is a folder, not an image: give the image files of --person (e.g. {Path(folder) / '*.jpg'}); "
            f"--tree DIR enrols a folder that holds one sub-folder of images per person")
    engine = engine_from_args(args, args.gallery)
    engine.check_domain = args.check_face
    engine.check_morph = args.check_morph
    if args.min_quality is not None:
        from ..pipeline.quality import QualityGate

        engine.gate = QualityGate(min_quality=args.min_quality)
    if not args.person or not args.images:
        raise FaceprintError("give --person NAME and images, or --tree DIR")
    people = [(normalise_name(args.person), [Path(p) for p in args.images])]
    total = sum(len(images) for _, images in people)
    enrolled, skipped, already = [], [], []
    with tqdm(total=total, desc="enrolling", unit="img", disable=args.json or not sys.stderr.isatty()) as bar:
        for name, images in people:
            items = []
            for image in images:
                try:
                    items.extend(engine.enrolment_items([image], largest=args.largest))
                except FaceprintError as exc:
                    if not args.skip_bad:
                        raise
                    skipped.append({"person": name, "image": str(image), "reason": str(exc)})
                bar.update(1)
            if not items:
                continue
            with engine.open_gallery(args.gallery) as store:
                known = set(engine.already_enrolled(name, items, store))
                already += [{"person": name, "image": item.source, "reason": "already enrolled"}
                            for i, item in enumerate(items) if i in known]
                items = [item for i, item in enumerate(items) if i not in known]
                record = (engine.enroll_items(name, items, store, allow_duplicate=args.allow_duplicate)
                          if items else None)
            if record is not None:
                audit_cli(args, "enroll", subject=name, details={"faces": len(items)})
                enrolled.append({"person": record.name, "faces_added": len(items), "faces_total": record.face_count})
    rows = [(e["person"], e["faces_added"], e["faces_total"]) for e in enrolled]
    text = table(rows, ["person", "faces added", "faces in gallery"]) if rows else "nothing new enrolled"
    if skipped or already:
        text += "\nskipped:\n" + "\n".join(f"  {s['image']}: {s['reason']}" for s in skipped + already)
    text += f"\ngallery: {args.gallery} (model {engine.model_id})"
    emit(args, {"gallery": str(args.gallery), "enrolled": enrolled, "skipped": skipped + already}, text)
    return 0 if enrolled or already else 2


def _enroll_tree(args: argparse.Namespace) -> int:
    """``enroll --tree``: multi-process, resumable batch enrolment (see :mod:`faceprint.batch`)."""
    from ..batch import SKIP_REASONS, enrol_tree

    if args.workers is not None and args.workers < 1:
        raise FaceprintError(f"--workers must be at least 1, got {args.workers}")
    progress = not args.json and (args.progress or sys.stderr.isatty())
    privacy = gallery_privacy_from_args(args)
    summary = enrol_tree(args.tree, args.gallery, profile=resolve_profile(args, args.gallery, privacy),
                         workers=args.workers, largest=args.largest, min_quality=args.min_quality,
                         model_config=args.model_config, progress=progress, allow_duplicate=args.allow_duplicate,
                         fair=args.fair, **privacy)
    data = summary.to_dict()
    rows = [(e["person"], e["faces_added"], e["faces_total"]) for e in data["enrolled"]]
    text = table(rows, ["person", "faces added", "faces in gallery"]) if rows else "nothing new enrolled"
    text += f"\nenrolled {data['enrolled_people']} people, {data['enrolled_faces']} faces from {data['images']} images"
    counts = data["skipped_counts"]
    if counts:
        text += "\n\nskipped images by reason:\n" + table([(r, counts[r]) for r in SKIP_REASONS if r in counts],
                                                          ["reason", "images"])
    if summary.skipped:
        text += "\n\nskipped:\n" + "\n".join(f"  [{s['reason']}] {s['image']}: {s['detail']}"
                                              for s in summary.skipped)
    text += (f"\n\n{data['processed']} image(s) processed by {data['workers']} worker(s) in {data['elapsed_s']:.1f} s"
             f" ({data['images_per_s']:.1f} images/s)\ngallery: {args.gallery} (model {data['model']})")
    emit(args, data, text)
    return 0 if summary.enrolled_faces or counts.get("already enrolled") else 2


def cmd_identify(args: argparse.Namespace) -> int:
    """Identify every face in an image, or in every image of a folder (see :mod:`faceprint.cli.folder`)."""
    from ..pipeline.draw import annotate, save_rgb

    args.json = args.json or args.format == "json"
    if Path(args.image).is_dir() or args.format == "csv":
        from .folder import identify_folder

        return identify_folder(args)
    engine = engine_from_args(args, args.gallery)
    image = engine.load(args.image)
    results = engine.identify(image, args.gallery, k=args.top, require_live=args.require_live)
    audit_cli(args, "identify", details={"image": str(args.image), "faces": len(results),
                                         "matched": [r.person for r in results if r.person]})
    if args.out:
        save_rgb(annotate(image, [r.face for r in results], [r.person for r in results],
                          skipped=[bool(r.skipped) for r in results]), args.out)
    rows = []
    for i, r in enumerate(results):
        best = r.best
        identity = r.person or ("skipped: " + r.skipped if r.skipped else
                                "REJECTED: " + r.rejected if r.rejected else "unknown")
        if r.tied:  # two or more people equally likely: say so rather than pick one
            identity = " = ".join(r.tied) + " (tie)"
        verdict = f"{best.score:.3f} {'>=' if best.score >= r.threshold else '<'} {r.threshold:.3f}" if best else "-"
        rows.append((i, r.face.box.as_list(), identity, verdict, best.person if best else "-"))
    reason = None if results else _no_face(args.image)
    text = table(rows, ["#", "box [x, y, w, h]", "identity", "score vs threshold", "nearest"]) if rows else reason
    known = sum(r.is_known for r in results)
    skipped = sum(bool(r.skipped) for r in results)
    text += (f"\n{len(results)} face(s): {known} known, {len(results) - known - skipped} unknown, {skipped} skipped "
             f"(threshold {engine.threshold:.4f})")
    if args.out:
        text += f"; annotated image: {args.out}"
    ties = sum(bool(r.tied) for r in results)
    if ties:
        text += (f"\n{ties} face(s) tied between different people (scores within {TIE_MARGIN} of each other): "
                 f"the same person enrolled under two names?")
    emit(args, {"image": str(args.image), "results": [r.to_dict() for r in results], "reason": reason}, text)
    return 0


def cmd_people(args: argparse.Namespace) -> int:
    """List the people in a gallery."""
    from ..gallery import open_gallery

    with open_gallery(args.gallery, **gallery_privacy_from_args(args)) as gallery:
        persons = gallery.persons()
        model = gallery.model
    rows = [(p.name, p.face_count, p.created_at) for p in persons]
    text = table(rows, ["person", "faces", "enrolled"]) + f"\n{len(persons)} people, model {model}"
    emit(args, {"model": model, "people": [{"name": p.name, "faces": p.face_count} for p in persons]}, text)
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    """Delete a person and all their templates from a gallery."""
    from ..gallery import open_gallery

    person = normalise_name(args.person)
    with open_gallery(args.gallery, **gallery_privacy_from_args(args)) as gallery:
        try:
            removed = gallery.delete_person(person)
        except PersonNotFoundError:
            raise person_not_found(person, args.gallery, [p.name for p in gallery.persons()]) from None
    audit_cli(args, "delete", subject=person, details={"faces": removed})
    emit(args, {"deleted": person, "faces_removed": removed}, f"deleted {person}: {removed} template(s) removed")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """List the registered models and the recognition profiles."""
    from ..models import registry
    from ..profiles import get, names

    cards = registry.cards()
    profiles = [get(n) for n in names()]
    blocks = [fields_block(f"{c.name} ({c.kind})", [("source", c.source), ("licence", c.licence),
                                                    ("accuracy", c.published_accuracy)]) for c in cards]
    text = "models\n\n" + "\n".join(blocks)
    fmrs = (1e-2, 1e-3, 1e-4)
    prows = [(p.name, p.model_id, "+".join(f"{x.model}({x.weight:.2f})" for x in p.parts), "yes" if p.flip else "no",
              *(f"{p.thresholds[f]:.4f}" if f in p.thresholds else "-" for f in fmrs)) for p in profiles]
    text += "\n\nprofiles: cosine similarity threshold at each false-match rate (FMR)\n\n" + table(
        prows, ["profile", "template id", "embedders (weight)", "flip", *(f"FMR {f:.0e}".replace("e-0", "e-") for f in fmrs)])
    emit(args, {"models": [c.to_dict() for c in cards], "profiles": [p.to_dict() for p in profiles]}, text)
    return 0


def cmd_eval_lfw(args: argparse.Namespace) -> int:
    """Run the LFW pairs protocol and write the report, plot and JSON."""
    from ..evaluation.runner import run_lfw

    engine = engine_from_args(args)
    report = run_lfw(engine, Path(args.images), Path(args.pairs), Path(args.out),
                     progress=not args.json, cache=not args.no_cache)
    emit(args, report, "\n".join(report["summary_lines"]))
    return 0


def _counts(text: str) -> list[int]:
    """``"0,1000,1e4"`` -> ``[0, 1000, 10000]`` (for ``--distractors``)."""
    try:
        values = [int(float(v)) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated counts, got {text!r}") from exc
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected counts >= 0, got {text!r}")
    return values


def cmd_eval_identify(args: argparse.Namespace) -> int:
    """Run the open-set 1:N identification protocol and write the report, DET plot and JSON."""
    from ..evaluation.identification import run_identify

    engine = engine_from_args(args)
    report = run_identify(engine, Path(args.images), Path(args.out), max_people=args.max_people,
                          distractors=args.distractors,
                          distractor_images=Path(args.distractor_images) if args.distractor_images else None,
                          seed=args.seed, progress=not args.json, cache=not args.no_cache)
    lines = report.summary_lines() + [f"plots: {report.plot} (DET), {report.histogram} (scores); "
                                      f"figures: {Path(args.out) / 'report.json'}"]
    emit(args, report.to_dict(), "\n".join(lines))
    return 0


def register(sub, common) -> argparse._SubParsersAction:
    """Add the core commands and ``eval`` with ``eval lfw`` and ``eval identify``; returns ``eval``'s subparsers.

    The modules of :data:`faceprint.cli.SUBCOMMAND_MODULES` add their own protocols to them.
    """
    p = sub.add_parser("detect", parents=[common], help="find faces in an image")
    p.add_argument("image")
    add_output_option(p, "--out", kind="image", help="write an annotated image here")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("verify", parents=[common], help="are two photos the same person? (exit 0 yes, 1 no)")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--largest", action="store_true", help="use the largest face when there are several")
    p.add_argument("--require-live", action="store_true",
                   help="check liveness first: a photo or screen held up to the camera is rejected, with the reason")
    add_fair_option(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("enroll", parents=[common], help="add people to a gallery")
    p.add_argument("--gallery", required=True, help=GALLERY_HELP + "; created if missing")
    p.add_argument("--person", help="name of the person the images show")
    p.add_argument("images", nargs="*", help="images of --person")
    p.add_argument("--tree", help="folder with one sub-folder of images per person")
    p.add_argument("--largest", action="store_true", help="use the largest face when there are several")
    p.add_argument("--skip-bad", action="store_true",
                   help="skip images without exactly one usable face (listed at the end) instead of stopping; "
                        "with --tree bad images are always skipped and reported by reason")
    p.add_argument("--workers", type=int, default=None,
                   help="--tree: worker processes (default: CPU cores, at most one per image)")
    p.add_argument("--min-quality", type=float, default=None,
                   help="quality gate: minimum face quality in [0, 1] (default 0.25)")
    p.add_argument("--progress", action="store_true",
                   help="--tree: show the progress bar even when stderr is not a terminal (never with --json)")
    p.add_argument("--check-face", action="store_true",
                   help="refuse templates the out-of-domain check says are not a face's (see docs/privacy.md; "
                        "it also rejects about 1.6%% of real faces)")
    p.add_argument("--check-morph", action="store_true",
                   help="refuse photos the morph detector flags as a blend of two faces (see docs/morphing.md; "
                        "untouched morphs only, edited ones mostly pass)")
    p.add_argument("--allow-duplicate", action="store_true",
                   help="enrol a face even when it already matches another person in the gallery (by default "
                        "that is refused as the same person under two names; with --tree it is skipped)")
    add_fair_option(p)
    add_gallery_privacy_options(p)
    p.set_defaults(func=cmd_enroll)

    p = sub.add_parser("identify", parents=[common], help="name every face in an image, or in a folder of images")
    p.add_argument("image", help="an image, or a folder: every image in it and its sub-folders")
    p.add_argument("--gallery", required=True, help=GALLERY_HELP)
    p.add_argument("--top", type=int, default=3, help="candidates per face (default 3)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table",
                   help="table (default), csv (one row per face) or json (as --json; for a folder one JSON "
                        "object per image and line, printed as each image is done)")
    add_output_option(p, "--out", kind="image", help="write an annotated image here (one image only)")
    p.add_argument("--require-live", action="store_true",
                   help="check liveness first: a photo or screen held up to the camera is rejected, with the reason")
    add_fair_option(p)
    add_gallery_privacy_options(p)
    p.set_defaults(func=cmd_identify)

    p = sub.add_parser("people", parents=[common], help="list the people in a gallery")
    p.add_argument("--gallery", required=True, help=GALLERY_HELP)
    add_gallery_privacy_options(p)
    p.set_defaults(func=cmd_people)

    p = sub.add_parser("delete", parents=[common], help="delete a person from a gallery")
    p.add_argument("person")
    p.add_argument("--gallery", required=True, help=GALLERY_HELP)
    add_gallery_privacy_options(p)
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser("models", parents=[common], help="installed models, licences, published accuracy")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("eval", help="accuracy on a standard protocol")
    esub = p.add_subparsers(dest="protocol", required=True)
    e = esub.add_parser("lfw", parents=[common], help="LFW pairs (View 1 or View 2 pairs.txt), 10-fold")
    e.add_argument("--images", required=True, help="LFW-layout folder: NAME/NAME_0001.jpg")
    e.add_argument("--pairs", required=True, help="pairs file (pairsDevTest.txt, pairs.txt ...)")
    add_output_option(e, "--out", kind="folder", default="out/lfw", help="folder for report.json, det.png and scores.png (default out/lfw)")
    e.add_argument("--no-cache", action="store_true", help="recompute every template")
    e.set_defaults(func=cmd_eval_lfw)
    e = esub.add_parser("identify", parents=[common],
                        help="open-set 1:N identification (CMC, FNIR @ FPIR, DET) on an LFW-layout folder")
    e.add_argument("--images", required=True, help="LFW-layout folder: NAME/NAME_0001.jpg")
    e.add_argument("--max-people", type=int, default=None, help="seeded random subset of people (quick runs)")
    e.add_argument("--distractors", type=_counts, default=[0],
                   help="extra non-mate gallery sizes, e.g. 0,1000,10000,100000 (default 0)")
    e.add_argument("--distractor-images",
                   help="folder of face images used first as distractors (largest face); the rest are synthetic")
    e.add_argument("--seed", type=int, default=0, help="seed for --max-people and synthetic distractors")
    add_output_option(e, "--out", kind="folder", default="out/eval-identify", help="folder for report.json, det.png and scores.png")
    e.add_argument("--no-cache", action="store_true", help="recompute every template")
    e.set_defaults(func=cmd_eval_identify)
    return esub
