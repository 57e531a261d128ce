"""The package's shape: each model file stands alone, so adding or removing a model touches only its own
files, and every helper lives in the folder of the concern it serves."""

from __future__ import annotations

import ast
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
