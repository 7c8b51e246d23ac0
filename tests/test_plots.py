"""Plots a user can read: DET on log axes from the resolvable rate, thresholds marked, score histograms.

A small ``eval lfw`` run (40 LFW DevTest pairs, "fast" profile) and a small ``eval identify`` run
write their PNGs; the PNGs are decoded and must hold a drawn figure. Plot helpers are checked on
synthetic scores where the expected rates are known exactly.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceprint.evaluation.lfw import read_pairs
from faceprint.evaluation.plots import (
    OperatingPoint,
    format_rate,
    operating_points,
    plot_det,
    plot_identification_det,
    plot_score_histogram,
)
from faceprint.evaluation.runner import cached_templates, run_lfw

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def check_png(path: Path, min_size: tuple[int, int] = (600, 500)) -> np.ndarray:
    """The decoded RGB pixels of a PNG that is a real, non-blank figure."""
    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as image:
        image.load()
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.shape[1] >= min_size[0] and pixels.shape[0] >= min_size[1]
    assert pixels.std() > 10  # axes, curves and text, not an empty canvas
    return pixels


def small_pairs_file(data_dir: Path, tmp_path: Path, per_class: int = 20) -> Path:
    """A View 1 style pairs file with the first ``per_class`` same and different DevTest pairs."""
    pairs = read_pairs(data_dir / "lfw-view1" / "pairsDevTest.txt")
    same = [p for p in pairs if p.same][:per_class]
    diff = [p for p in pairs if not p.same][:per_class]

    lines = [str(per_class)]
    for p in same:
        name = Path(p.a).parent.name
        lines.append(f"{name}\t{int(Path(p.a).stem[-4:])}\t{int(Path(p.b).stem[-4:])}")
    for p in diff:
        lines.append(f"{Path(p.a).parent.name}\t{int(Path(p.a).stem[-4:])}\t"
                     f"{Path(p.b).parent.name}\t{int(Path(p.b).stem[-4:])}")
    out = tmp_path / "pairs-small.txt"
    out.write_text("\n".join(lines) + "\n")
    return out


def lfw_images(data_dir: Path) -> Path:
    images = data_dir / "lfw-view1" / "images"
    if not images.is_dir():
        pytest.skip(f"{images} not found")
    return images


def test_eval_lfw_writes_det_and_score_histogram(data_dir, engine_fast, tmp_path):
    images = lfw_images(data_dir)
    pairs = small_pairs_file(data_dir, tmp_path)
    report = run_lfw(engine_fast, images, pairs, tmp_path / "out", progress=False, cache=False)
    det, histogram = Path(report["plot"]), Path(report["histogram"])
    assert (det.name, histogram.name) == ("det.png", "scores.png")
    check_png(det)
    check_png(histogram)
    assert not (tmp_path / "out" / "roc.png").exists()
    scores = report["scores"]
    assert scores["mated"]["count"] == scores["non_mated"]["count"] == 20
    # Same-person pairs score far above different-person pairs with SFace.
    assert scores["mated"]["median"] > scores["non_mated"]["median"] + 0.3
    assert scores["threshold"] == pytest.approx(engine_fast.threshold, abs=1e-4)
    assert scores["non_mated_at_or_above"] <= 1 and scores["mated_below"] <= 2
    assert any(line.startswith("threshold in use   0.3586 (calibrated FMR 1e-3)") for line in report["summary_lines"])
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["scores"] == scores and saved["histogram"] == str(histogram)


def test_eval_identify_writes_det_and_score_histogram(data_dir, engine_fast, tmp_path):
    from faceprint.evaluation.identification import run_identify

    images = lfw_images(data_dir)
    report = run_identify(engine_fast, images, tmp_path / "out", max_people=60, distractors=(0, 100),
                          progress=False, cache=False)
    check_png(Path(report.plot))
    check_png(Path(report.histogram))
    assert Path(report.histogram).name == "scores.png"
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["histogram"] == report.histogram
    assert any("scores.png" in line for line in saved["summary_lines"])


def test_det_marks_each_threshold_at_the_rates_it_gives(tmp_path, monkeypatch):
    """The legend reports each threshold's FMR and FNMR on these scores, ``FMR < 1/n`` where none is accepted."""
    mated = np.linspace(0.30, 0.90, 100)  # 100 mated scores
    non_mated = np.linspace(-0.2, 0.40, 50)  # 50 non-mated scores
    scores = np.r_[mated, non_mated]
    labels = np.r_[np.ones(100, bool), np.zeros(50, bool)]
    labels_drawn: list[str] = []
    limits: list[tuple] = []
    from matplotlib.axes import Axes

    real_legend = Axes.legend

    def spy(ax, *args, **kwargs):
        handles, texts = ax.get_legend_handles_labels()
        labels_drawn.extend(texts)
        limits.append((ax.get_xlim(), ax.get_ylim()))
        return real_legend(ax, *args, **kwargs)

    monkeypatch.setattr(Axes, "legend", spy)
    points = [OperatingPoint("calibrated FMR 1e-2", 0.35), OperatingPoint("in use", 0.5, in_use=True)]
    out = plot_det(scores, labels, tmp_path / "det.png", name="demo", points=points)
    check_png(out)
    at_035 = np.mean(non_mated >= 0.35), np.mean(mated < 0.35)
    assert any(f"t = 0.3500 -> FMR {100 * at_035[0]:.2f}%, FNMR {100 * at_035[1]:.2f}%" in t for t in labels_drawn)
    assert any(t.startswith("in use: t = 0.5000 -> FMR < 1/50, FNMR ") for t in labels_drawn)
    (x_low, x_high), (y_low, y_high) = limits[0]
    # Axes start at the finest resolvable rate (1/n, with a little padding), never at a guess like 1e-4.
    assert 1 / 50 / 2 < x_low < 1 / 50 and 1 / 100 / 2 < y_low < 1 / 100 and x_high >= 1 and y_high >= 1


def test_identification_det_axes_follow_the_probe_counts(tmp_path):
    fpir = np.array([0.0, 0.01, 0.1, 1.0])
    fnir = np.array([0.5, 0.2, 0.05, 0.01])
    point = (OperatingPoint("in use", 0.4, in_use=True), 0.01, 0.2)
    out = plot_identification_det({"100 enrolled": (fpir, fnir)}, tmp_path / "det.png", counts=(200, 300),
                                   marks={"100 enrolled": [point]})
    check_png(out)


def test_histogram_rejects_a_single_class(tmp_path):
    with pytest.raises(ValueError, match="mated"):
        plot_score_histogram(np.array([0.1, 0.2]), np.array([1, 1]), tmp_path / "h.png")


def test_operating_points_mark_the_threshold_in_use():
    calibrated = {1e-2: 0.29, 1e-3: 0.3586, 1e-4: 0.4156}
    points = operating_points(calibrated, 0.3586, 1e-3)
    assert [p.label for p in points] == ["calibrated FMR 1e-2", "calibrated FMR 1e-3", "calibrated FMR 1e-4"]
    assert [p.in_use for p in points] == [False, True, False]
    explicit = operating_points(calibrated, 0.5)
    assert explicit[-1] == OperatingPoint("in use: explicit threshold", 0.5, in_use=True)
    interpolated = operating_points(calibrated, 0.38, 5e-4)
    assert interpolated[-1].label == "in use: FMR 5e-4 (interpolated)"
    assert [format_rate(r) for r in (1e-3, 3e-5, 0.25, 2.5e-3)] == ["1e-3", "3e-5", "0.25", "2.5e-3"]


def test_progress_bar_stays_out_of_a_log_file(tmp_path, capsys, monkeypatch):
    """With stderr redirected (not a terminal) no bar is drawn even when progress is asked for."""
    from faceprint.evaluation.runner import TemplateCache

    folder = tmp_path / "imgs"
    folder.mkdir()
    names = [f"p/{i}.jpg" for i in range(5)]
    (folder / "p").mkdir()
    for name in names:
        (folder / name).write_bytes(b"x")
    store = TemplateCache(tmp_path / "cache", "k", folder, enabled=False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    templates, how = cached_templates(store, folder, names, lambda p: (np.ones(4, np.float32), "detected"),
                                      progress=True)
    assert len(templates) == 5 and how == {"detected": 5}
    err = capsys.readouterr().err
    assert "\r" not in err and "img/s" not in err and "templates" not in err
