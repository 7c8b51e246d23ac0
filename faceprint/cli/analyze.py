"""``faceprint analyze``: age, gender, expression, head pose, eye state and quality of every face in a photo."""

from __future__ import annotations

import argparse

from .common import add_output_option, emit, engine_from_args, parent_without, table


def _cell(value, text) -> str:
    return "-" if value is None else text(value)


def cmd_analyze(args: argparse.Namespace) -> int:
    """Print each face's attributes (table or JSON) for every image; optionally write the photo with them drawn on."""
    from ..attributes import parse_attributes
    from ..errors import FaceprintError

    wanted = parse_attributes(args.attributes)
    if args.out and len(args.images) > 1:
        raise FaceprintError(f"--out writes the annotated copy of one image, and {len(args.images)} were given: "
                             f"drop --out or give one image")
    engine = engine_from_args(args)
    payloads, texts = [], []
    for path in args.images:
        payload, text = _analyze_one(engine, path, wanted, args.out)
        payloads.append(payload)
        texts.append(text if len(args.images) == 1 else f"{path}\n{text}")
    emit(args, payloads[0] if len(payloads) == 1 else payloads, "\n\n".join(texts))
    return 0


def _analyze_one(engine, path: str, wanted, out: str | None) -> tuple[dict, str]:
    """The JSON payload and the table of one image."""
    from ..pipeline.draw import annotate, save_rgb

    analysis = engine.analyze(path, wanted)
    if out:
        image = analysis.faces[0].face.image if analysis.faces else engine.load(path)
        save_rgb(annotate(image, [r.face for r in analysis.faces], labels=[f"#{i}" for i in range(len(analysis.faces))],
                          notes=[r.notes() for r in analysis.faces]), out)
    rows = [
        (i, "{:.0f},{:.0f} {:.0f}x{:.0f}".format(*r.face.box.as_list()),
         _cell(r.age, lambda a: f"{a.years:.0f} ({a.low:.0f}-{a.high:.0f})"),
         _cell(r.gender, lambda g: f"{g.label} {g.confidence:.2f}"),
         _cell(r.expression, lambda e: f"{e.label} {e.confidence:.2f}"),
         _cell(r.pose, lambda p: f"{p.yaw:+.0f} {p.pitch:+.0f} {p.roll:+.0f}"),
         _cell(r.eyes, lambda e: f"{'open' if e.open else 'closed'} {e.score:.2f}"),
         _cell(r.quality, lambda q: f"{q.score:.2f}" + (f" {','.join(q.reasons)}" if q.reasons else "")),
         "; ".join(f"{k}: {v}" for k, v in r.not_estimated.items()) or "-")
        for i, r in enumerate(analysis.faces)
    ]
    columns = {"age": "age (range)", "gender": "gender", "expression": "expression", "pose": "yaw/pitch/roll",
               "eyes": "eyes", "quality": "quality"}
    keep = [0, 1] + [2 + i for i, name in enumerate(columns) if name in analysis.attributes]
    keep += [8] if any(r.not_estimated for r in analysis.faces) else []
    headers = ["#", "box x,y wxh", *columns.values(), "not estimated"]
    text = table([[row[k] for k in keep] for row in rows], [headers[k] for k in keep]) if rows else analysis.reason
    text += f"\n{len(rows)} face(s)" + (f"; annotated image: {out}" if out else "")
    return {"image": str(path), **analysis.to_dict()}, text


def register(sub, eval_sub, common) -> None:
    """Add ``faceprint analyze`` (no --model, --fmr or --threshold: it computes no template)."""
    from ..attributes import ATTRIBUTES

    p = sub.add_parser("analyze", parents=[parent_without(common, "--model", "--model-config", "--fmr", "--threshold")],
                       help="age, gender, expression, head pose, eyes and quality of every face in photos")
    p.add_argument("images", nargs="+", metavar="IMAGE",
                   help="one or more photos (--json: one object for one photo, a list for several)")
    p.add_argument("--attributes", default="all",
                   help=f"comma-separated, from {','.join(ATTRIBUTES)} (default all); only these are computed")
    add_output_option(p, "--out", kind="image", help="write the photo with each face's box and attributes drawn on it")
    p.set_defaults(func=cmd_analyze)
