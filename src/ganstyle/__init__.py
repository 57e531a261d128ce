"""ganstyle: GAN-based image style transfer experiments with Hydra and PyTorch Lightning."""

from ganstyle import _torchvision_compat  # noqa: F401  (must run before lightning/torchmetrics import)

__version__ = "0.1.0"
