"""Accuracy of the attribute models: apparent age and gender on UTKFace-named photos, expression on
a folder per class (FER2013, CK+48).

``faceprint eval age DIR`` and ``faceprint eval expression DIR`` print these tables; the figures in
docs/attributes.md come from them.

Age: mean absolute error (MAE, years), the share of estimates within 5 years of the label, and
gender accuracy (``p_female > 0.5`` against UTKFace's binary label), overall and by age decade,
gender and race (UTKFace's labels: race 0 White, 1 Black, 2 Asian, 3 Indian, 4 Others). Labels come
from the file names ``age_gender_race_date.jpg.chip.jpg``. Each photo's face is found by YuNet (the
largest one near the middle); a photo without a detected face is cropped as a UTKFace chip and
counted in ``no_face``.

Expression: accuracy, recall per class, macro F1 and the confusion matrix. Folder names are mapped
onto the model's classes by :data:`FOLDER_CLASSES` (CK+ calls them anger, sadness, happiness...);
a folder of a class the model does not have (CK+'s ``contempt``) is left out of the scores and its
predictions are listed on their own. Each file is taken as a face crop, as FER2013 and CK+48 store
them (48x48 grey); ``detect=True`` finds the face in whole photos first.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UnsupportedInputError
from ..models.age_gender import AgeGenderNet, fallback_landmarks
from ..models.expression import CLASSES, ExpressionNet
from ..pipeline.image_io import IMAGE_SUFFIXES
from .fairness import RACES, UTKFACE_NAME

log = logging.getLogger(__name__)

#: Folder names of expression data sets -> the model's class (None: a class the model lacks).
FOLDER_CLASSES: dict[str, str | None] = {
    **{c: c for c in CLASSES},
    "anger": "angry", "sadness": "sad", "happiness": "happy", "surprised": "surprise", "disgusted": "disgust",
    "fearful": "fear", "contempt": None,
}


@dataclass(frozen=True)
class AgeGroup:
    """Scores of one group of photos: ``attribute`` (all, decade, gender, race) and its ``group``."""

    attribute: str
    group: str
    n: int
    mae: float
    within5: float
    gender_accuracy: float

    def to_dict(self) -> dict:
        return {"attribute": self.attribute, "group": self.group, "n": self.n, "mae": round(self.mae, 3),
                "within5": round(self.within5, 4), "gender_accuracy": round(self.gender_accuracy, 4)}


@dataclass
class AgeEvaluation:
    """``faceprint eval age``: per-photo ``rows`` and ``groups`` (the first is everything)."""

    rows: list[dict]
    groups: list[AgeGroup]
    no_face: int
    files: dict[str, str] = field(default_factory=dict)

    @property
    def mae(self) -> float:
        return self.groups[0].mae

    def to_dict(self) -> dict:
        overall = self.groups[0]
        return {"n": overall.n, "mae": round(overall.mae, 3), "within5": round(overall.within5, 4),
                "gender_accuracy": round(overall.gender_accuracy, 4), "no_face": self.no_face,
                "model": AgeGenderNet.card.name, "groups": [g.to_dict() for g in self.groups], "files": self.files}


def utkface_labels(name: str) -> tuple[int, int, int]:
    """(age, gender 0 male / 1 female, race 0-4) from a UTKFace file name, or UnsupportedInputError."""
    match = UTKFACE_NAME.match(name)
    if match is None:
        raise UnsupportedInputError(
            f"'{name}' is not a UTKFace file name (age_gender_race_date.jpg.chip.jpg): "
            "eval age reads the labels from the names; rename the files or pass a UTKFace folder"
        )
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


def _images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise UnsupportedInputError(f"{folder} is not a folder: pass the folder that holds the images")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def decade(age: int) -> str:
    """'0-9', '10-19', ..., '90+'."""
    return "90+" if age >= 90 else f"{age // 10 * 10}-{age // 10 * 10 + 9}"


def _group(attribute: str, group: str, rows: list[dict]) -> AgeGroup:
    error = np.array([abs(r["estimate"] - r["age"]) for r in rows])
    gender = np.array([(r["p_female"] > 0.5) == (r["gender"] == 1) for r in rows])
    return AgeGroup(attribute, group, len(rows), float(error.mean()), float((error <= 5).mean()), float(gender.mean()))


def evaluate_age(folder: str | Path, out: str | Path | None = None, limit: int | None = None) -> AgeEvaluation:
    """Run :class:`~faceprint.models.age_gender.AgeGenderNet` on every UTKFace-named photo in ``folder``.

    ``out``: a folder for ``report.json`` and ``mae_by_decade.png``. ``limit``: the first N photos
    (sorted by name). Raises UnsupportedInputError for a missing folder, no images or a file name
    that carries no UTKFace labels.
    """
    from ..models import registry
    from ..pipeline.image_io import load_image

    paths = _images(Path(folder))[:limit]
    if not paths:
        raise UnsupportedInputError(f"no images in {folder}: pass a folder of UTKFace photos")
    labels = [utkface_labels(p.name) for p in paths]
    detector = registry.load_detector("yunet")
    net: AgeGenderNet = registry.load(AgeGenderNet.card.name)
    crops, found = [], []
    for path in paths:
        image = load_image(path)
        faces = detector.detect(image, small_faces=False)
        if faces:
            centre = np.array(image.shape[1::-1]) / 2
            face = max(faces, key=lambda f: f.box.area - 4 * np.hypot(*(np.array(f.box.center) - centre)))
            crops.append(net.crop(image, face))
        else:
            from ..models.age_gender import crop_from_landmarks

            crops.append(crop_from_landmarks(image, fallback_landmarks(image.shape)))
        found.append(bool(faces))
    result = net.predict_crops(crops)
    rows = [{"file": p.name, "age": a, "gender": g, "race": r, "estimate": round(float(result.age[i]), 2),
             "age_low": round(float(result.age_low[i]), 2), "age_high": round(float(result.age_high[i]), 2),
             "p_female": round(float(result.p_female[i]), 4), "face_found": found[i]}
            for i, (p, (a, g, r)) in enumerate(zip(paths, labels))]
    groups = [_group("all", "all", rows)]
    for attribute, key in (("decade", lambda r: decade(r["age"])), ("gender", lambda r: ("male", "female")[r["gender"]]),
                           ("race", lambda r: RACES[r["race"]])):
        names = sorted({key(r) for r in rows}, key=lambda s: (len(s) > 5, int(s.split("-")[0].rstrip("+")))
                       if attribute == "decade" else s)
        groups += [_group(attribute, n, [r for r in rows if key(r) == n]) for n in names]
    evaluation = AgeEvaluation(rows=rows, groups=groups, no_face=found.count(False))
    if out is not None:
        evaluation.files = _write_age(evaluation, Path(out))
    return evaluation


def _write_age(evaluation: AgeEvaluation, out: Path) -> dict[str, str]:
    from .plots import _new_figure, _save

    out.mkdir(parents=True, exist_ok=True)
    files = {"report": str(out / "report.json"), "plot": str(out / "mae_by_decade.png")}
    decades = [g for g in evaluation.groups if g.attribute == "decade"]
    fig, ax = _new_figure((6.4, 3.6))
    ax.bar([g.group for g in decades], [g.mae for g in decades], color="#4c72b0")
    for i, g in enumerate(decades):
        ax.text(i, g.mae, f"{g.mae:.1f}\nn={g.n}", ha="center", va="bottom", fontsize=7)
    ax.axhline(evaluation.mae, color="#c44e52", lw=1, ls="--", label=f"all: MAE {evaluation.mae:.2f}")
    ax.set_xlabel("true age (decade)")
    ax.set_ylabel("mean absolute error (years)")
    ax.set_title(f"{AgeGenderNet.card.name}: age error by decade ({evaluation.groups[0].n} photos)")
    ax.set_ylim(0, max(g.mae for g in decades) * 1.3)
    ax.legend(loc="upper left", fontsize=8)
    _save(fig, files["plot"], "age error plot")
    Path(files["report"]).write_text(json.dumps({**evaluation.to_dict(), "files": files, "rows": evaluation.rows},
                                                indent=1))
    return files


@dataclass
class ExpressionEvaluation:
    """``faceprint eval expression``: scores over the folders whose class the model has."""

    folders: dict[str, str | None]
    confusion: np.ndarray  # [7, 7]: rows true class, columns predicted, in CLASSES order
    unmapped: dict[str, dict[str, int]]  # folder -> predicted class -> count (classes the model lacks)
    rows: list[dict]
    files: dict[str, str] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.confusion.sum())

    @property
    def accuracy(self) -> float:
        return float(np.trace(self.confusion) / max(self.n, 1))

    def recall(self) -> dict[str, float | None]:
        totals = self.confusion.sum(axis=1)
        return {c: (float(self.confusion[i, i] / totals[i]) if totals[i] else None) for i, c in enumerate(CLASSES)}

    def f1(self) -> dict[str, float | None]:
        """F1 of each class present in the data (None for a class with no examples)."""
        out: dict[str, float | None] = {}
        for i, c in enumerate(CLASSES):
            true, predicted, hit = self.confusion[i].sum(), self.confusion[:, i].sum(), self.confusion[i, i]
            out[c] = None if not true else (2 * hit / (true + predicted) if true + predicted else 0.0)
        return out

    @property
    def macro_f1(self) -> float:
        values = [v for v in self.f1().values() if v is not None]
        return float(np.mean(values)) if values else 0.0

    def to_dict(self) -> dict:
        return {"n": self.n, "accuracy": round(self.accuracy, 4), "macro_f1": round(self.macro_f1, 4),
                "recall": {c: (None if v is None else round(v, 4)) for c, v in self.recall().items()},
                "f1": {c: (None if v is None else round(v, 4)) for c, v in self.f1().items()},
                "classes": list(CLASSES), "confusion": self.confusion.tolist(), "folders": self.folders,
                "unmapped": self.unmapped, "model": ExpressionNet.card.name, "files": self.files}


def evaluate_expression(folder: str | Path, out: str | Path | None = None, detect: bool = False,
                        limit: int | None = None) -> ExpressionEvaluation:
    """Run :class:`~faceprint.models.expression.ExpressionNet` on a folder with one sub-folder per class.

    Sub-folder names go through :data:`FOLDER_CLASSES`; an unknown name raises UnsupportedInputError.
    ``detect``: find the face in each image (whole photos) instead of taking the file as the crop;
    an image without a face is then skipped (counted in the rows). ``limit``: at most N images per
    class. ``out``: a folder for ``report.json`` and ``confusion.png``.
    """
    from ..models import registry
    from ..pipeline.image_io import load_image

    root = Path(folder)
    if not root.is_dir():
        raise UnsupportedInputError(f"{root} is not a folder: pass a folder with one sub-folder per expression")
    subfolders = sorted(p for p in root.iterdir() if p.is_dir())
    unknown = [p.name for p in subfolders if p.name.lower() not in FOLDER_CLASSES]
    if unknown or not subfolders:
        raise UnsupportedInputError(
            f"{root}: expected one sub-folder per expression named one of {', '.join(sorted(FOLDER_CLASSES))}; "
            + (f"unknown: {', '.join(unknown)}" if unknown else "found none")
        )
    net: ExpressionNet = registry.load(ExpressionNet.card.name)
    detector = registry.load_detector("yunet") if detect else None
    folders = {p.name: FOLDER_CLASSES[p.name.lower()] for p in subfolders}
    confusion = np.zeros((len(CLASSES), len(CLASSES)), np.int64)
    unmapped: dict[str, dict[str, int]] = {}
    rows: list[dict] = []
    for sub in subfolders:
        paths = _images(sub)[:limit]
        crops, kept = [], []
        for path in paths:
            image = load_image(path)
            if detector is None:
                crops.append(image)
                kept.append(path)
                continue
            faces = detector.detect(image)
            if faces:
                crops.append(net.crop(image, max(faces, key=lambda f: f.box.area)))
                kept.append(path)
            else:
                rows.append({"file": f"{sub.name}/{path.name}", "label": folders[sub.name], "predicted": None})
        probabilities = net.predict_crops(crops)
        predicted = probabilities.argmax(axis=1) if len(crops) else np.zeros(0, int)
        target = folders[sub.name]
        for path, k, p in zip(kept, predicted, probabilities):
            rows.append({"file": f"{sub.name}/{path.name}", "label": target, "predicted": CLASSES[k],
                         "p": round(float(p[k]), 4)})
            if target is None:
                counts = unmapped.setdefault(sub.name, {})
                counts[CLASSES[k]] = counts.get(CLASSES[k], 0) + 1
            else:
                confusion[CLASSES.index(target), k] += 1
    evaluation = ExpressionEvaluation(folders=folders, confusion=confusion, unmapped=unmapped, rows=rows)
    if out is not None:
        evaluation.files = _write_expression(evaluation, Path(out), root.name)
    return evaluation


def _write_expression(evaluation: ExpressionEvaluation, out: Path, title: str) -> dict[str, str]:
    from .plots import _new_figure, _save

    out.mkdir(parents=True, exist_ok=True)
    files = {"report": str(out / "report.json"), "confusion": str(out / "confusion.png")}
    present = [i for i in range(len(CLASSES)) if evaluation.confusion[i].sum() or evaluation.confusion[:, i].sum()]
    matrix = evaluation.confusion[np.ix_(present, present)].astype(float)
    share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = _new_figure((5.6, 4.8))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    names = [CLASSES[i] for i in present]
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    for r in range(len(names)):
        for c in range(len(names)):
            ax.text(c, r, f"{int(matrix[r, c])}", ha="center", va="center", fontsize=7,
                    color="white" if share[r, c] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true (row share shaded)")
    ax.set_title(f"{title}: accuracy {100 * evaluation.accuracy:.1f}%, macro F1 {evaluation.macro_f1:.3f}")
    _save(fig, files["confusion"], "confusion matrix")
    Path(files["report"]).write_text(json.dumps({**evaluation.to_dict(), "files": files, "rows": evaluation.rows},
                                                indent=1))
    return files

