"""ganstyle: GAN-based image style transfer experiments with Hydra and PyTorch Lightning."""

from ganstyle import _torchvision_compat  # noqa: F401  (must run before lightning/torchmetrics import)

__version__ = "0.1.0"


def __getattr__(name: str):
    # `ganstyle.load` imports the inference code on first use, so `import ganstyle` stays cheap.
    if name == "load":
        from ganstyle.inference import load

        return load
    raise AttributeError(f"module 'ganstyle' has no attribute {name!r}")
