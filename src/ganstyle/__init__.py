"""ganstyle: GAN-based image style transfer experiments with Hydra and PyTorch Lightning."""

import importlib
import importlib.abc
import importlib.util
import sys

from ganstyle import _torchvision_compat  # noqa: F401  (must run before lightning/torchmetrics import)

__version__ = "0.1.0"

# Modules that used to sit at the package root, by their old dotted name. Saved runs name them in
# `_target_` strings (.hydra/config.yaml, checkpoints' hyper_parameters) and scripts import them, so
# each old name still gives the module it became. Nothing here is imported until an old name is used.
MOVED_MODULES: dict[str, str] = {
    **{
        f"ganstyle.{name}": f"ganstyle.run.{name}"
        for name in (
            "checkpointing",
            "config_checks",
            "distributed",
            "loggers",
            "monitoring",
            "overrides",
            "ranks",
            "resuming",
            "sweeps",
            "training",
        )
    },
    "ganstyle.lightning_compat": "ganstyle.utils.lightning_compat",
    "ganstyle.performance": "ganstyle.utils.performance",
}


class _MovedModuleLoader(importlib.abc.Loader):
    """Loads an old module name as the module it moved to: both names give the same module object."""

    def __init__(self, new_name: str) -> None:
        self.new_name = new_name

    def create_module(self, spec):
        module = importlib.import_module(self.new_name)
        self._spec = module.__spec__
        return module

    def exec_module(self, module) -> None:
        # The import system stamps the old name's spec on the module it created; give the moved
        # module its own back, so it keeps reporting where it lives.
        module.__spec__ = self._spec


class _MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Answers `import ganstyle.<old name>` (and unpickling by it) for the modules in MOVED_MODULES."""

    def find_spec(self, fullname, path=None, target=None):
        new_name = MOVED_MODULES.get(fullname)
        if new_name is None:
            return None
        return importlib.util.spec_from_loader(fullname, _MovedModuleLoader(new_name))


if not any(isinstance(finder, _MovedModuleFinder) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModuleFinder())


def __getattr__(name: str):
    # `ganstyle.load` imports the inference code on first use, so `import ganstyle` stays cheap.
    if name == "load":
        from ganstyle.inference import load

        return load
    if f"ganstyle.{name}" in MOVED_MODULES:  # `ganstyle.training` after a bare `import ganstyle`
        return importlib.import_module(f"ganstyle.{name}")
    raise AttributeError(f"module 'ganstyle' has no attribute {name!r}")
