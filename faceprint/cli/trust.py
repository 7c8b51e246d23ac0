"""``faceprint eval fairness``, ``eval impersonation`` and ``eval morph``: demographic fairness, look-alike
impersonation and morphing attacks."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import FaceprintError
from .common import add_fair_option, add_output_option, emit, engine_from_args, parent_without

MORPH_PROFILES = "accurate,fast"


def _profile_names(text: str) -> list[str]:
    """The profile names of a comma-separated ``--profiles`` value; unknown names fail before any work."""
    from ..profiles import get

    profiles = [p.strip() for p in text.split(",") if p.strip()]
    if not profiles:
        raise FaceprintError("--profiles needs at least one profile name")
    for name in profiles:
        get(name)
    return profiles


def cmd_eval_fairness(args: argparse.Namespace) -> int:
    """Per-group FMR and proxy FNMR on UTKFace; with ``--lfw``, the FSN mitigation before/after."""
    from ..evaluation.fairness import run_fairness, run_mitigation

    if args.fair and args.lfw:
        raise FaceprintError("--lfw fits and measures its own normaliser on raw scores: drop --fair, or drop --lfw "
                             "to measure the shipped fair scores per group")
    engine = engine_from_args(args)
    out = Path(args.out)
    report = run_fairness(engine, Path(args.images), out, progress=not args.json, cache=not args.no_cache)
    payload = {"fairness": report.to_dict()}
    lines = report.summary_lines()
    if args.lfw:
        lfw = Path(args.lfw)
        mitigation = run_mitigation(engine, Path(args.images), lfw / "images", lfw / "pairsDevTrain.txt",
                                    lfw / "pairsDevTest.txt", out, clusters=args.clusters, seed=args.seed,
                                    progress=not args.json, cache=not args.no_cache)
        payload["mitigation"] = mitigation.to_dict()
        lines += [""] + mitigation.summary_lines()
    emit(args, payload, "\n".join(lines))
    return 0


def cmd_eval_impersonation(args: argparse.Namespace) -> int:
    """Attack success of N look-alike photos of other people against targets enrolled from one photo."""
    from ..evaluation.impersonation import run_impersonation

    profiles = _profile_names(args.profiles)
    report = run_impersonation(profiles, Path(args.targets), Path(args.attackers), Path(args.out),
                               progress=not args.json, cache=not args.no_cache)
    emit(args, report.to_dict(), "\n".join(report.summary_lines()))
    return 0


def cmd_eval_morph(args: argparse.Namespace) -> int:
    """MMPMR of landmark-aligned morphs per profile and threshold."""
    from ..evaluation.morph import run_morph

    profiles = _profile_names(args.profiles)
    report = run_morph(profiles, Path(args.images), Path(args.pairs), Path(args.out), protocol=args.protocol,
                       count=args.count, seed=args.seed, operating_fmr=args.fmr, progress=not args.json,
                       cache=not args.no_cache)
    emit(args, report.to_dict(), "\n".join(report.summary_lines()))
    return 0


def register(sub, eval_sub, common) -> None:
    """Add ``eval fairness``, ``eval impersonation`` and ``eval morph`` under ``faceprint eval``."""
    del sub  # only evaluation subcommands here
    e = eval_sub.add_parser("fairness", parents=[common],
                            help="FMR per demographic group (UTKFace), FMR heatmap, optional FSN mitigation")
    e.add_argument("--images", required=True, help="UTKFace folder (age_gender_race_date.jpg.chip.jpg)")
    e.add_argument("--lfw", help="LFW View 1 folder (images/, pairsDevTrain.txt, pairsDevTest.txt): "
                                 "also fit and measure the fair score normalisation mitigation")
    e.add_argument("--clusters", type=int, default=20, help="k-means clusters of the mitigation (default 20)")
    e.add_argument("--seed", type=int, default=0, help="seed of the UTKFace fit/test split and k-means")
    add_output_option(e, "--out", kind="folder", default="out/fairness", help="folder for report.json, fmr_heatmap.png, fsn.npz")
    e.add_argument("--no-cache", action="store_true", help="recompute every template")
    add_fair_option(e)
    e.set_defaults(func=cmd_eval_fairness)

    # --profiles names the profiles and each is measured at its own FMR grid: --model, --fmr, --threshold unused
    e = eval_sub.add_parser("impersonation", parents=[parent_without(common, "--model", "--model-config", "--fmr",
                                                                     "--threshold")],
                            help="look-alike attack: N real photos of other people sharing the target's gender, race "
                                 "and age band vs random strangers (UTKFace), per profile, FMR and group")
    e.add_argument("--targets", required=True, help="UTKFace folder of the targets, each enrolled from one photo "
                                                    "(e.g. ../shared/data/age/utkface-sample)")
    e.add_argument("--attackers", required=True, help="UTKFace folder of other people's photos the attacker draws "
                                                      "from (e.g. ../shared/data/age/utkface-train)")
    e.add_argument("--profiles", default="accurate,fast",
                   help="comma-separated profiles (default accurate,fast); each with plain and, when shipped, "
                        "fair scores, at FMR 1e-3, 1e-4 and 1e-5. A fresh run embeds the ~13,000 images once per "
                        "profile (about 6 min for accurate, 3 min for fast on one core); templates are cached in "
                        "~/.cache/faceprint/templates (--no-cache recomputes them)")
    add_output_option(e, "--out", kind="folder", default="out/impersonation", help="folder for report.json and impersonation.png")
    e.add_argument("--no-cache", action="store_true", help="recompute every template")
    e.set_defaults(func=cmd_eval_impersonation)

    e = eval_sub.add_parser("morph", parents=[parent_without(common, "--model", "--model-config", "--threshold")],
                            help="morphing attack: MMPMR of landmark-aligned morphs of LFW pairs, per profile")
    e.add_argument("--images", required=True, help="LFW-layout folder: NAME/NAME_0001.jpg")
    e.add_argument("--pairs", required=True, help="LFW pairs file: its different pairs are morphed (protocol "
                                                  "'pairs'), its mated pairs give the FNMR of each threshold")
    e.add_argument("--protocol", choices=("pairs", "independent"), default="pairs",
                   help="'pairs': morph the pairs file's different pairs; 'independent': --count random pairs "
                        "of people with 2+ images, compared with images not used in the morph")
    e.add_argument("--count", type=int, default=500, help="morphs of the 'independent' protocol (default 500)")
    e.add_argument("--seed", type=int, default=0, help="seed of the 'independent' pairs")
    e.add_argument("--profiles", default=MORPH_PROFILES,
                   help=f"comma-separated profiles (default {MORPH_PROFILES}); each embedder of a fused profile "
                        "is also scored alone; --fmr marks the operating threshold")
    add_output_option(e, "--out", kind="folder", default="out/morph", help="folder for the morphs and report-<protocol>.json")
    e.add_argument("--no-cache", action="store_true", help="recompute every template")
    e.set_defaults(func=cmd_eval_morph)
