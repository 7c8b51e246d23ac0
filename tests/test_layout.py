"""The package layout: no import cycles, no module importing from a layer above its own, old paths still import.

The import graph is read from the source with ``ast``: every ``import`` and ``from ... import`` of a
faceprint module, at module level or inside a function, ``if TYPE_CHECKING:`` blocks included (a type
named from above is a dependency on it too). ``from package import name`` counts as an import of the
submodule ``package.name`` when there is one.

Layers, lowest first. A module may import any module of a lower layer, and modules of its own
layer only inside its own unit (one subpackage, or one top-level module). Data flows one way, image
-> detections -> quality gate -> aligned crops -> templates -> gallery -> decision, and nothing
imports back up that chain. Where the order differs from the obvious one, the code says why:
privacy sits below gallery because a gallery encrypts its templates (privacy.crypto) and stores
them transformed (privacy.cancelable); pad and grouping sit above the engine and video because
active liveness and face grouping drive an Engine over VideoSource frames.
"""

from __future__ import annotations

import ast
import graphlib
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from faceprint import _compat

PACKAGE = Path(__file__).resolve().parents[1] / "faceprint"

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("errors", ("faceprint.errors",)),
    ("records and tools", ("faceprint.types", "faceprint.extras", "faceprint._text", "faceprint._version",
                           "faceprint._compat")),
    ("models", ("faceprint.models",)),
    ("pipeline", ("faceprint.pipeline",)),
    ("matching", ("faceprint.matching",)),
    ("attributes", ("faceprint.attributes",)),  # read off detected faces, beside embedding; the engine calls them
    ("privacy", ("faceprint.privacy",)),
    ("gallery", ("faceprint.gallery",)),
    ("profiles", ("faceprint.profiles",)),
    ("engine", ("faceprint.engine",)),
    ("api and batch enrolment", ("faceprint.api", "faceprint.batch")),
    ("video", ("faceprint.video",)),
    ("pad and grouping", ("faceprint.pad", "faceprint.grouping")),
    ("evaluation", ("faceprint.evaluation",)),
    ("service", ("faceprint.service",)),
    ("cli", ("faceprint.cli",)),
    ("package", ("faceprint", "faceprint.__main__")),  # "faceprint": the package's __init__ only
]


def package_modules(root: Path = PACKAGE) -> dict[str, Path]:
    """Every module of the package: dotted name -> file."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def import_graph(sources: dict[str, tuple[str, bool]]) -> dict[str, set[str]]:
    """module -> the package modules it imports, from ``{module: (source, is_package)}``."""
    known = set(sources)

    def owner(name: str) -> str | None:  # the module a dotted name lives in
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for module, (source, is_package) in sources.items():
        base = module if is_package else module.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                targets.update(owner(a.name) for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = base.split(".")
                    prefix = ".".join(parts[: len(parts) - node.level + 1])
                    target = f"{prefix}.{node.module}" if node.module else prefix
                else:
                    target = node.module
                targets.update(f"{target}.{a.name}" if f"{target}.{a.name}" in known else owner(target)
                               for a in node.names)
        graph[module] = {t for t in targets if t is not None and t != module}
    return graph


def unit_of(module: str) -> tuple[int, str]:
    """(layer index, unit prefix) of ``module``; KeyError when no layer claims it."""
    best = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            inside = module == prefix or (prefix != "faceprint" and module.startswith(prefix + "."))
            if inside and (best is None or len(prefix) > len(best[1])):
                best = (index, prefix)
    if best is None:
        raise KeyError(module)
    return best


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Each import that reaches a higher layer, or another unit of the same layer."""
    bad = []
    for module, targets in graph.items():
        layer, unit = unit_of(module)
        for target in sorted(targets):
            t_layer, t_unit = unit_of(target)
            if t_layer > layer or (t_layer == layer and t_unit != unit):
                bad.append(f"{module} ({LAYERS[layer][0]}) imports {target} ({LAYERS[t_layer][0]})")
    return bad


def forget(old: str, monkeypatch) -> None:
    """Undo an earlier import of old path ``old`` for this test, so that importing it runs (and warns) again."""
    parent, _, child = old.rpartition(".")
    if parent in sys.modules and child in vars(sys.modules[parent]):  # not hasattr: faceprint.__getattr__ would import it again
        monkeypatch.delattr(sys.modules[parent], child)
    monkeypatch.delitem(sys.modules, old, raising=False)


def _graph() -> dict[str, set[str]]:
    modules = package_modules()
    return import_graph({m: (p.read_text(), p.name == "__init__.py") for m, p in modules.items()})


def test_every_module_is_in_a_layer():
    unplaced = []
    for module in package_modules():
        try:
            unit_of(module)
        except KeyError:
            unplaced.append(module)
    assert not unplaced, f"add these modules to LAYERS in tests/test_layout.py: {unplaced}"


def test_no_import_cycles():
    graph = _graph()
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")


def test_no_module_imports_from_a_layer_above():
    assert upward_imports(_graph()) == []


def test_the_checks_see_an_upward_import_and_a_cycle():
    """The checks above on a small made-up package: they do fail when they should."""
    sources = {
        "faceprint": ("from .engine import Engine\n", True),
        "faceprint.engine": ("from .pipeline import detection\n", False),
        "faceprint.pipeline": ("", True),
        "faceprint.pipeline.detection": ("def f():\n    from ..engine import Engine\n", False),
        "faceprint.video": ("", True),
        "faceprint.video.source": ("from ..pad import active\n", False),
        "faceprint.pad": ("", True),
        "faceprint.pad.active": ("from faceprint.video.source import VideoSource\n", False),
    }
    graph = import_graph(sources)
    assert graph["faceprint.engine"] == {"faceprint.pipeline.detection"}
    assert graph["faceprint.pipeline.detection"] == {"faceprint.engine"}
    assert upward_imports(graph) == ["faceprint.pipeline.detection (pipeline) imports faceprint.engine (engine)",
                                     "faceprint.video.source (video) imports faceprint.pad.active (pad and grouping)"]
    with pytest.raises(graphlib.CycleError):
        tuple(graphlib.TopologicalSorter(graph).static_order())


@pytest.mark.parametrize("old", sorted(_compat.MOVED))
def test_old_module_path_imports_with_a_deprecation_warning(old, monkeypatch):
    new = _compat.MOVED[old]
    assert old not in package_modules(), f"{old} is a real module again: drop it from faceprint._compat.MOVED"
    forget(old, monkeypatch)
    with pytest.warns(DeprecationWarning, match=f"{old} is deprecated: use {new} ") as caught:
        module = importlib.import_module(old)
    assert [w.filename for w in caught] == [__file__]  # it points at the line that imported, not at importlib
    target = importlib.import_module(new)
    public = [name for name in vars(target) if not name.startswith("_")]
    assert public and all(getattr(module, name) is getattr(target, name) for name in public)
    for name, home in _compat.MOVED_NAMES.get(old, {}).items():
        assert getattr(module, name) is getattr(importlib.import_module(home), name)
    forget(old, monkeypatch)


def test_old_paths_in_every_form_reach_the_new_objects(monkeypatch):
    for old in ("faceprint.crypto", "faceprint.pad.passive", "faceprint.landmarks", "faceprint.tracker"):
        forget(old, monkeypatch)
    with pytest.warns(DeprecationWarning) as caught:
        from faceprint.crypto import GalleryKey
        from faceprint.landmarks import DlibLandmarker, load_landmarker
        from faceprint.pad import passive

        import faceprint

        tracker = faceprint.tracker
    assert len(caught) == 4 and {w.filename for w in caught} == {__file__}  # each names the line that imported
    from faceprint.models import registry
    from faceprint.models.dlib_landmarks import DlibLandmarker as Landmarker
    from faceprint.models.pad_passive import PassiveLiveness
    from faceprint.privacy.crypto import GalleryKey as Key
    from faceprint.types import Liveness
    from faceprint.video.tracker import Tracker

    assert GalleryKey is Key and DlibLandmarker is Landmarker and load_landmarker is registry.load_landmarker
    assert passive.PassiveLiveness is PassiveLiveness and passive.Liveness is Liveness
    assert tracker.Tracker is Tracker
    # A write through the old path reaches the new module (monkeypatching code that still uses it works).
    monkeypatch.setattr("faceprint.tracker.Tracker", dict)
    from faceprint.video import tracker as new_tracker

    assert new_tracker.Tracker is dict


def test_public_api_is_where_it_was():
    import faceprint
    from faceprint.gallery import EnrolmentItem, Gallery, GalleryStore, open_gallery

    assert faceprint.Gallery is Gallery and faceprint.Engine.__module__ == "faceprint.engine"
    assert callable(faceprint.verify) and callable(open_gallery)
    assert EnrolmentItem.__module__ == "faceprint.gallery.records"
    assert GalleryStore.__module__ == "faceprint.gallery" and Gallery.__module__ == "faceprint.gallery.sqlite"


def test_old_demo_module_still_runs_with_a_warning():
    run = subprocess.run([sys.executable, "-m", "faceprint.demo", "--help"], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    assert "usage:" in run.stdout and "--data" in run.stdout
    assert "DeprecationWarning: faceprint.demo is deprecated: use faceprint.cli.demo" in run.stderr
