"""Module paths from before the subpackage layout: they still import, with a DeprecationWarning, for one release.

faceprint's modules moved into subpackages named after their job (``pipeline``, ``gallery``,
``privacy``, ``pad``, ``video``, ``grouping``, ``cli``; model classes into ``models``).
:data:`MOVED` maps each old module path to its new one. Importing an old path in any form
(``import faceprint.image_io``, ``from faceprint.crypto import GalleryKey``,
``from faceprint import detection``, ``python -m faceprint.demo``) warns once and gives a stand-in
module that reads and writes the new module's names, so ``faceprint.image_io.load_image is
faceprint.pipeline.image_io.load_image``. Names that left their module for another one are in
:data:`MOVED_NAMES`. :func:`install` puts the finder on ``sys.meta_path``; ``faceprint/__init__.py``
calls it. This module and the old paths go in the next release.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import os
import sys
import types
import warnings

#: Old module path -> new module path.
MOVED: dict[str, str] = {
    "faceprint.image_io": "faceprint.pipeline.image_io",
    "faceprint.detection": "faceprint.pipeline.detection",
    "faceprint.quality": "faceprint.pipeline.quality",
    "faceprint.align": "faceprint.pipeline.align",
    "faceprint.embedding": "faceprint.pipeline.embedding",
    "faceprint.draw": "faceprint.pipeline.draw",
    "faceprint.gallery_postgres": "faceprint.gallery.postgres",
    "faceprint.index": "faceprint.gallery.index",
    "faceprint.names": "faceprint.gallery.names",
    "faceprint.crypto": "faceprint.privacy.crypto",
    "faceprint.cancelable": "faceprint.privacy.cancelable",
    "faceprint.audit": "faceprint.privacy.audit",
    "faceprint.ood": "faceprint.privacy.ood",
    "faceprint.landmarks": "faceprint.models.dlib_landmarks",
    "faceprint.morph_detection": "faceprint.models.morph_detector",
    "faceprint.pad.passive": "faceprint.models.pad_passive",
    "faceprint.pad.features": "faceprint.models.pad_features",
    "faceprint.morph": "faceprint.pad.morph",
    "faceprint.video_source": "faceprint.video.source",
    "faceprint.tracker": "faceprint.video.tracker",
    "faceprint.video_recognition": "faceprint.video.recognition",
    "faceprint.draw_video": "faceprint.video.draw",
    "faceprint.video_events": "faceprint.video.events",
    "faceprint.clustering": "faceprint.grouping.clustering",
    "faceprint.face_grouping": "faceprint.grouping.faces",
    "faceprint.score_normalisation": "faceprint.matching.normalisation",
    "faceprint.evaluation.score_normalisation": "faceprint.matching.normalisation",
    "faceprint.demo": "faceprint.cli.demo",
}

#: Old module path -> {name: the module that now holds it}, for names that did not move with their module.
MOVED_NAMES: dict[str, dict[str, str]] = {
    "faceprint.landmarks": {"load_landmarker": "faceprint.models.registry"},
}


def message(old: str) -> str:
    """The deprecation message for old module path ``old``."""
    return f"{old} is deprecated: use {MOVED[old]} (the old path will be removed in the next release)"


def _warn(text: str) -> None:
    """A DeprecationWarning pointing at the user's import, past the import machinery and this package's hooks."""
    skip = {__file__, importlib.__file__, os.path.join(os.path.dirname(__file__), "__init__.py")}
    frame, level = sys._getframe(1), 1
    while frame is not None:
        name = frame.f_code.co_filename
        if not ("importlib" in name and "_bootstrap" in name):  # frames warnings.warn does not count
            if name not in skip:
                break
            level += 1
        frame = frame.f_back
    warnings.warn(text, DeprecationWarning, stacklevel=level + 1)


class _Forward(types.ModuleType):
    """Stand-in for an old module path: attribute reads and writes go to the module it moved to."""

    def __init__(self, old: str) -> None:
        super().__init__(old)
        target = importlib.import_module(MOVED[old])
        object.__setattr__(self, "_target", target)
        public = [n for n in vars(target) if not n.startswith("_")]
        object.__setattr__(self, "__all__", list(getattr(target, "__all__", public)))

    def __getattr__(self, name: str) -> object:
        try:
            return getattr(self._target, name)
        except AttributeError:
            home = MOVED_NAMES.get(self.__name__, {}).get(name)
            if home is None:
                raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}") from None
            return getattr(importlib.import_module(home), name)

    def __setattr__(self, name: str, value: object) -> None:
        if name.startswith("__") and name.endswith("__"):  # the import system's own bookkeeping
            object.__setattr__(self, name, value)
        else:
            setattr(self._target, name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self._target, name)

    def __dir__(self) -> list[str]:
        return sorted(set(dir(self._target)) | set(MOVED_NAMES.get(self.__name__, {})))


class _Loader(importlib.abc.Loader):
    """Loads an old path as a :class:`_Forward` stand-in; runs the new module for ``python -m OLD``."""

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return _Forward(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        _warn(message(module.__name__))

    def get_code(self, fullname: str) -> types.CodeType:
        """What ``python -m OLD`` runs: a warning (shown, as it comes from ``__main__``), then the new module."""
        source = (f"import runpy, warnings\n"
                  f"warnings.warn({message(fullname)!r}, DeprecationWarning, stacklevel=1)\n"
                  f"runpy.run_module({MOVED[fullname]!r}, run_name='__main__', alter_sys=True)\n")
        return compile(source, f"<deprecated {fullname}>", "exec")


class _Finder(importlib.abc.MetaPathFinder):
    """Finds the old module paths of :data:`MOVED` (and nothing else)."""

    def find_spec(self, fullname: str, path: object = None,
                  target: object = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Loader(), origin=f"deprecated alias of {MOVED[fullname]}")


def install() -> None:
    """Put the finder of old module paths on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.append(_Finder())
