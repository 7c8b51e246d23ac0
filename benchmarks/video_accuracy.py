#!/usr/bin/env python3
"""Per-frame identification accuracy of the video pipeline on a clip with hand-made ground truth.

    python benchmarks/video_accuracy.py                       # the Hamilton clip, fast profile
    python benchmarks/video_accuracy.py --profiles fast,accurate --out out/bench/video_accuracy.json

Enrols the truth file's reference photos in a temporary gallery, runs the tracked pipeline
(:class:`faceprint.video.recognition.VideoRecognizer`) and the naive baseline (``identify`` on
every frame) on the clip, and scores both against ``tests/data/hamilton_truth.json``:

* per frame, a named box is a true positive when that person is visible in the frame and the
  box's centre lies in the person's region (so naming the right people in the wrong places, a
  swap, counts as two errors); any other named box is a false positive; a visible person not
  correctly named is a false negative. Unknown faces make no claim and are not counted.
* precision = TP / (TP + FP), recall = TP / (TP + FN), over all frames, per person and per shot;
* identity switches: times a track's online name changed from one person to another.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = REPO_ROOT.parent / "shared" / "data"
DEFAULT_TRUTH = REPO_ROOT / "tests" / "data" / "hamilton_truth.json"
DEFAULT_OUT = REPO_ROOT / "out" / "bench" / "video_accuracy.json"


@dataclass(frozen=True)
class Segment:
    """Frames ``first``..``last`` (inclusive) and who is visible where: person -> [x0, y0, x1, y1]."""

    first: int
    last: int
    shot: str
    regions: dict[str, tuple[float, float, float, float]]


def load_truth(path: str | Path) -> tuple[dict, list[Segment]]:
    """The truth file's header and its segments, in frame order."""
    data = json.loads(Path(path).read_text())
    segments = [
        Segment(s["frames"][0], s["frames"][1], s.get("shot", ""),
                {p: tuple(v["region"]) for p, v in s["people"].items()})
        for s in data["segments"]
    ]
    return data, sorted(segments, key=lambda s: s.first)


def segment_of(segments: Sequence[Segment], frame: int) -> Segment | None:
    """The segment holding ``frame`` (None outside every segment)."""
    return next((s for s in segments if s.first <= frame <= s.last), None)


@dataclass
class Counts:
    """True positives, false positives and false negatives."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float | None:
        """TP / (TP + FP); None when nothing was named."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        """TP / (TP + FN); None when nobody was visible."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    def to_dict(self) -> dict:
        """A JSON-ready description."""
        r = (lambda v: None if v is None else round(v, 4))
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "precision": r(self.precision), "recall": r(self.recall)}


@dataclass
class FrameScore:
    """Per-frame identification scores overall, per person and per segment."""

    overall: Counts = field(default_factory=Counts)
    by_person: dict[str, Counts] = field(default_factory=dict)
    by_segment: dict[str, Counts] = field(default_factory=dict)
    frames: int = 0

    def to_dict(self) -> dict:
        """A JSON-ready description."""
        return {"frames": self.frames, "overall": self.overall.to_dict(),
                "by_person": {k: v.to_dict() for k, v in sorted(self.by_person.items())},
                "by_segment": {k: v.to_dict() for k, v in self.by_segment.items()}}


def _inside(box, region) -> bool:
    cx, cy = box.center
    return region[0] <= cx <= region[2] and region[1] <= cy <= region[3]


def score_frames(labels: Mapping[int, Sequence[tuple]], segments: Sequence[Segment],
                 frames: Sequence[int]) -> FrameScore:
    """Score named boxes ``labels`` (frame -> [(person or None, Box, ...)]) over ``frames``."""
    score = FrameScore()
    people = {p for s in segments for p in s.regions}
    for frame in frames:
        seg = segment_of(segments, frame)
        if seg is None:
            continue
        score.frames += 1
        key = f"{seg.first}-{seg.last}"
        buckets = [score.overall, score.by_segment.setdefault(key, Counts())]
        matched: set[str] = set()
        for person, box, *_ in labels.get(frame, []):
            if person is None:
                continue
            per = score.by_person.setdefault(person, Counts())
            ok = person in seg.regions and person not in matched and _inside(box, seg.regions[person])
            for c in (*buckets, per):
                if ok:
                    c.tp += 1
                else:
                    c.fp += 1
            if ok:
                matched.add(person)
        for person in seg.regions:
            if person not in matched:
                for c in (*buckets, score.by_person.setdefault(person, Counts())):
                    c.fn += 1
        for person in people:
            score.by_person.setdefault(person, Counts())
    return score


def enrol_truth_people(engine, truth: dict, gallery_path: Path) -> None:
    """Enrol each reference photo of the truth file under its person's name."""
    for person, image in truth["enrolled"].items():
        engine.enroll(person, [DATA_DIR / image], gallery_path)


def evaluate_clip(profile: str, truth_path: Path, *, naive: bool = True, every: int | None = None) -> dict:
    """Run the tracked pipeline (and the naive baseline) on the truth's clip; scores and tracks."""
    from faceprint import Engine
    from faceprint.video.recognition import (
        VideoRecognizer,
        VideoSettings,
        identify_every_frame,
    )
    from faceprint.video.source import VideoSource

    truth, segments = load_truth(truth_path)
    engine = Engine(profile)
    video = DATA_DIR / truth["video"]
    frames = range(truth["frames"])
    out: dict = {"profile": profile, "threshold": engine.threshold, "video": str(video)}
    with tempfile.TemporaryDirectory(prefix="faceprint-video-acc-") as tmp:
        gallery_path = Path(tmp) / "people.db"
        enrol_truth_people(engine, truth, gallery_path)
        with engine.open_gallery(gallery_path, create=False) as gallery:
            settings = VideoSettings() if every is None else VideoSettings(every=every)
            with VideoSource(video) as source:
                timeline = VideoRecognizer(engine, gallery, settings).run(source)
            out["tracked"] = {
                "score": score_frames(timeline.frame_labels(), segments, frames).to_dict(),
                "identity_switches": sum(t.identity_switches for t in timeline.tracks),
                "tracks": [{k: v for k, v in t.to_dict().items() if k != "boxes"} for t in timeline.tracks],
                "stats": timeline.stats.to_dict(),
            }
            if naive:
                with VideoSource(video) as source:
                    labels, stats = identify_every_frame(engine, gallery, source)
                out["naive"] = {"score": score_frames(labels, segments, frames).to_dict(), "stats": stats.to_dict()}
    return out


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def report_lines(result: dict) -> list[str]:
    """A markdown table of one profile's results."""
    lines = [f"profile {result['profile']} (threshold {result['threshold']:.4f})", "",
             ("| pipeline | precision | recall | TP | FP | FN | Lin-Manuel Miranda recall | Alex Lacamoire recall "
              "| identity switches |"),
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name in ("tracked", "naive"):
        if name not in result:
            continue
        s = result[name]["score"]
        o, bp = s["overall"], s["by_person"]
        switches = result[name].get("identity_switches", "n/a (no tracks)")
        lines.append(f"| {name} | {_pct(o['precision'])} | {_pct(o['recall'])} | {o['tp']} | {o['fp']} | {o['fn']} | "
                     f"{_pct(bp.get('lin-manuel-miranda', {}).get('recall'))} | "
                     f"{_pct(bp.get('alex-lacamoire', {}).get('recall'))} | {switches} |")
    lines += ["", "| shot (frames) | " + " | ".join(f"{n} P / R" for n in ("tracked", "naive") if n in result) + " |",
              "|---|" + "---:|" * sum(n in result for n in ("tracked", "naive"))]
    for key in result["tracked"]["score"]["by_segment"]:
        cells = []
        for name in ("tracked", "naive"):
            if name in result:
                c = result[name]["score"]["by_segment"][key]
                cells.append(f"{_pct(c['precision'])} / {_pct(c['recall'])} ({c['tp']} TP, {c['fp']} FP)")
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    lines += ["", "tracks (tracked pipeline):"]
    for t in result["tracked"]["tracks"]:
        lines.append(f"  #{t['track_id']}: {t['person'] or 'unknown'} frames {t['first_frame']}-{t['last_frame']}, "
                     f"score {t['score']} (nearest {t['nearest']}), best single {t['best_score']}, "
                     f"templates {t['templates']}, switches {t['identity_switches']}")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--truth", default=str(DEFAULT_TRUTH), help="ground-truth JSON (default: the Hamilton clip's)")
    ap.add_argument("--profiles", default="fast", help="comma-separated recognition profiles (default fast)")
    ap.add_argument("--every", type=int, default=None, help="most frames between detections (default: pipeline's)")
    ap.add_argument("--no-naive", action="store_true", help="skip the identify-every-frame baseline")
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="JSON results")
    args = ap.parse_args(argv)
    if not DATA_DIR.is_dir():
        print(f"shared data not found at {DATA_DIR}", file=sys.stderr)
        return 2
    results = []
    for profile in [p.strip() for p in args.profiles.split(",") if p.strip()]:
        result = evaluate_clip(profile, Path(args.truth), naive=not args.no_naive, every=args.every)
        results.append(result)
        print("\n".join(report_lines(result)) + "\n")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
