"""The package's shape: each model file stands alone, so adding or removing a model touches only its own
files, and every helper lives in the folder of the concern it serves."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "ganstyle"
MODELS = PACKAGE / "models"
# Shared infrastructure every model builds on, not a model itself.
SHARED_MODEL_MODULES = {"__init__", "base", "validation_metrics"}


def imported_modules(path: Path) -> set[str]:
    """Absolute module names a file imports, at top level or inside functions."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            # `from ganstyle.models import fast_style` imports a module too
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_model_module_imports_another_model_module():
    model_modules = {path.stem for path in MODELS.glob("*.py")} - SHARED_MODEL_MODULES
    offenders = []
    for path in sorted(MODELS.glob("*.py")):
        if path.stem in SHARED_MODEL_MODULES:
            continue
        for name in imported_modules(path):
            parts = name.split(".")
            other_model = parts[2] if parts[:2] == ["ganstyle", "models"] and len(parts) > 2 else None
            if other_model in model_modules and other_model != path.stem:
                offenders.append(f"models/{path.name} imports {name}")
    assert not offenders, (
        "A model module imports another model module; move the shared helper to the folder of its "
        "concern (losses/, networks/, inference/, ...):\n" + "\n".join(offenders)
    )


def package_modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__.py``)."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def ganstyle_imports(path: Path, modules: dict[str, Path], top_level_only: bool) -> set[str]:
    """The package modules a file imports (``from a.b import c`` counts ``a.b.c`` when it is a module)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    # Imports under `if TYPE_CHECKING:` never run: they name a type for annotations and cannot make a
    # module wait for another, so they are left out of the graph.
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            node.body = []
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found & modules.keys()


def test_every_module_imports_on_its_own_in_a_fresh_interpreter():
    # One interpreter for speed; before each module, every ganstyle module but the package root (whose
    # torchvision fix must stay applied) is forgotten, so each import starts the package's import graph
    # from that module, which is where a circle of top-level imports fails.
    names = [name for name in package_modules() if name != "ganstyle"]
    script = textwrap.dedent(
        f"""
        import importlib, sys, traceback
        import ganstyle
        failures = []
        for name in {names!r}:
            for loaded in [m for m in sys.modules if m.startswith("ganstyle.")]:
                if loaded != "ganstyle._torchvision_compat":
                    del sys.modules[loaded]
            try:
                importlib.import_module(name)
            except Exception:
                failures.append(name + ":\\n" + traceback.format_exc(limit=-3))
        print("\\n".join(failures))
        sys.exit(1 if failures else 0)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(PACKAGE.parent)},
    )
    assert result.returncode == 0, (
        f"modules that fail to import on their own:\n{result.stdout}{result.stderr}"
    )


def import_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """A circle of imports in ``graph`` (module -> modules it imports), as a path back to its start."""
    finished: set[str] = set()

    def circle_from(name: str, trail: list[str]) -> list[str] | None:
        if name in trail:
            return trail[trail.index(name) :] + [name]
        if name in finished:
            return None
        for imported in sorted(graph[name]):
            circle = circle_from(imported, trail + [name])
            if circle:
                return circle
        finished.add(name)
        return None

    for name in sorted(graph):
        circle = circle_from(name, [])
        if circle:
            return circle
    return None


def test_top_level_imports_form_no_circle():
    modules = package_modules()
    graph = {name: ganstyle_imports(path, modules, top_level_only=True) for name, path in modules.items()}
    circle = import_circle(graph)
    assert circle is None, "top-level imports form a circle: " + " -> ".join(circle)


def test_imports_form_no_circle_even_inside_functions():
    # An import inside a function only postpones a circle: the two modules still need each other, so
    # neither can be read, tested or moved alone.
    modules = package_modules()
    graph = {name: ganstyle_imports(path, modules, top_level_only=False) for name, path in modules.items()}
    circle = import_circle(graph)
    assert circle is None, (
        "imports (counting those inside functions) form a circle; move what both need to the module "
        "of its concern: " + " -> ".join(circle)
    )


# What the package root holds: the import-time torchvision fix, the typed config schema every layer
# reads, the pretrained-weights files shared by networks, metrics and commands, and the command line.
# Running an experiment lives in ganstyle/run/; helpers that models build on live in ganstyle/utils/.
PACKAGE_ROOT_MODULES = {"__init__", "_torchvision_compat", "cli", "config", "weights"}


def test_package_root_holds_no_run_machinery():
    strays = sorted(path.name for path in PACKAGE.glob("*.py") if path.stem not in PACKAGE_ROOT_MODULES)
    assert not strays, (
        "modules at the package root; put run machinery (training, checkpoints, sweeps, loggers, ...) in "
        "ganstyle/run/ and a helper in the folder of the concern it serves: " + ", ".join(strays)
    )


# The layers below the run layer: the run layer builds them from the config, never the other way.
# Callbacks and the report read what a run leaves; facts about the Hydra job they need come from
# ganstyle.utils.hydra_jobs.
LAYERS_BELOW_RUN = (
    "models", "networks", "losses", "data", "metrics", "utils", "inference", "callbacks", "report",
)  # fmt: skip


def test_models_their_parts_callbacks_and_the_report_never_import_the_run_layer():
    modules = package_modules()
    below = {
        name: path
        for name, path in modules.items()
        if name.split(".")[1:2] and name.split(".")[1] in (*LAYERS_BELOW_RUN, "config", "weights")
    }
    offenders = [
        f"{name} imports {imported}"
        for name, path in sorted(below.items())
        for imported in sorted(ganstyle_imports(path, modules, top_level_only=False))
        if imported == "ganstyle.run" or imported.startswith("ganstyle.run.")
    ]
    assert not offenders, (
        "a model (or a part it is built from, a callback, the report) imports the run layer; the run layer "
        "depends on them, so move the helper to ganstyle/utils/ or the folder of its concern:\n"
        + "\n".join(offenders)
    )


def test_run_modules_and_fid_weights_do_not_import_each_other_even_inside_functions():
    # distributed/sweeps share the process rank (ganstyle.run.ranks); the FID metric and the weights
    # checks share the Inception network (ganstyle.networks.fid_inception).
    modules = package_modules()
    for first, second in (
        ("ganstyle.run.distributed", "ganstyle.run.sweeps"),
        ("ganstyle.metrics.fid", "ganstyle.weights"),
    ):
        first_imports = ganstyle_imports(modules[first], modules, top_level_only=False)
        second_imports = ganstyle_imports(modules[second], modules, top_level_only=False)
        assert not (second in first_imports and first in second_imports), (
            f"{first} and {second} import each other"
        )


def test_train_py_checks_a_command_line_without_loading_lightning():
    # What train.py imports before Hydra composes (its argv checks) must not pull in Lightning: a
    # misspelt key or a reused run folder is answered in the seconds Lightning's import would take.
    script = (
        "import sys\n"
        "import ganstyle.config, ganstyle.run.overrides, ganstyle.run.resuming\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('lightning'))\n"
        "print(loaded[:5])\n"
        "sys.exit(1 if loaded else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
