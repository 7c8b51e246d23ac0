"""What a stored template leaks: gender, race and age band read back by simple classifiers.

Anyone holding a gallery's templates, without any photo, can train a classifier on labelled
templates of their own (made with the same faceprint profile) and read soft-biometric attributes
off the gallery. This measures how well, with two classifiers a casual attacker would try
(scikit-learn's logistic regression, and a small MLP with one hidden layer of 128 units), on
UTKFace templates with their labels (gender, race, age band), by stratified k-fold cross-validation:

* **plain** templates (the attacker trains and tests on templates as faceprint makes them);
* **cancelable, same key** (:class:`~faceprint.privacy.cancelable.CancelableTransform`): the attacker
  has labelled templates stored under the gallery's own key (an insider, or a key that leaked);
* **cancelable, other key**: the attacker trains on templates transformed with their own key and
  reads the gallery's, stored under another key (the threat model cancelable templates address);
* **ciphertext at rest**: the AES-256-GCM blobs a gallery with an encryption key stores
  (:class:`~faceprint.privacy.crypto.BlobCipher`), as byte features.

Each figure is the mean balanced accuracy over the folds (the mean of per-class recalls: chance is
1 / classes whatever the class balance) and the plain accuracy, next to the majority-class rate.
Needs the ``bench`` extra (scikit-learn).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from ..extras import require_extra
from ..privacy.cancelable import CancelableTransform
from ..privacy.crypto import BlobCipher, GalleryKey

log = logging.getLogger(__name__)

__all__ = ["ATTRIBUTES", "CONDITIONS", "LeakageResult", "measure_leakage"]

ATTRIBUTES = ("gender", "race", "age")
CONDITIONS = ("plain", "rotate, same key", "rotate, other key", "sign, same key", "sign, other key",
              "ciphertext at rest")
CLASSIFIERS = ("logistic regression", "MLP (128)")
#: The attacker's key and the gallery's key (fixed, so that the figures are reproducible).
KEY_ATTACKER = GalleryKey(bytes(range(32)))
KEY_GALLERY = GalleryKey(bytes(range(100, 132)))


@dataclass
class LeakageResult:
    """One classifier reading one attribute from templates under one condition."""

    attribute: str
    condition: str
    classifier: str
    balanced_accuracy: float
    accuracy: float
    chance: float  # 1 / number of classes: the balanced accuracy of guessing
    majority: float  # the accuracy of always answering the commonest class
    classes: int
    samples: int

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return asdict(self)


def _classifier(name: str, seed: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if name == CLASSIFIERS[0]:
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
    return make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(128,), early_stopping=True,
                                                         max_iter=300, random_state=seed))


def _ciphertexts(vectors: np.ndarray) -> np.ndarray:
    """Byte features [n, blob length] of each template sealed as a gallery stores it at rest."""
    cipher = BlobCipher(KEY_GALLERY)
    blobs = [cipher.encrypt(np.ascontiguousarray(v, dtype="<f4").tobytes(), f"face:{i}".encode())
             for i, v in enumerate(vectors)]
    return np.frombuffer(b"".join(blobs), dtype=np.uint8).reshape(len(blobs), -1).astype(np.float32) / 255.0


def _views(condition: str, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(what the attacker trains on, what the attacker reads) for one condition."""
    if condition == "plain":
        return vectors, vectors
    if condition == "ciphertext at rest":
        sealed = _ciphertexts(vectors)
        return sealed, sealed
    mode, _, which = condition.partition(", ")
    own = CancelableTransform(KEY_GALLERY, mode).apply(vectors)
    if which == "same key":
        return own, own
    return CancelableTransform(KEY_ATTACKER, mode).apply(vectors), own


def measure_leakage(
    vectors: np.ndarray, labels: dict[str, Sequence[str]], *, conditions: Sequence[str] = CONDITIONS,
    classifiers: Sequence[str] = CLASSIFIERS, folds: int = 5, seed: int = 0,
) -> list[LeakageResult]:
    """Cross-validated accuracy of each classifier reading each attribute of ``labels`` from ``vectors``.

    ``vectors`` [n, dim] unit templates; ``labels`` maps an attribute to its n values. In each fold
    the classifier trains on the training rows of the attacker's view and is scored on the test
    rows of the gallery's view (:func:`_views`).
    """
    require_extra("bench", "measuring what a template leaks", modules=("sklearn",))
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import StratifiedKFold

    results = []
    for condition in conditions:
        train_view, test_view = _views(condition, np.asarray(vectors, np.float32))
        for attribute, values in labels.items():
            y = np.asarray(values)
            classes, counts = np.unique(y, return_counts=True)
            splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(train_view, y))
            for name in classifiers:
                balanced, plain = [], []
                for train, test in splits:
                    model = _classifier(name, seed).fit(train_view[train], y[train])
                    predicted = model.predict(test_view[test])
                    balanced.append(balanced_accuracy_score(y[test], predicted))
                    plain.append(float(np.mean(predicted == y[test])))
                results.append(LeakageResult(attribute, condition, name, float(np.mean(balanced)),
                                             float(np.mean(plain)), 1.0 / len(classes),
                                             float(counts.max() / counts.sum()), len(classes), len(y)))
                log.info("%s / %s / %s: balanced accuracy %.3f", condition, attribute, name, results[-1].balanced_accuracy)
    return results
