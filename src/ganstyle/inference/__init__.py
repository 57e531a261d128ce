"""Applying trained models: load a checkpoint, stylise images of any size, export the generator.

    import ganstyle
    stylizer = ganstyle.load("outputs/train/runs/<run>/checkpoints/last.ckpt", direction="AtoB")
    stylizer(pil_image)          # -> PIL image of the same size
    stylizer(tensor)             # (3, H, W) or (N, 3, H, W) in [0, 1] -> same shape

The command-line equivalents are ``ganstyle stylize`` and ``ganstyle export``; docs/inference.md
describes padding, tiling and the instance-norm statistics in detail.
"""

from ganstyle.inference.loading import (
    CheckpointError,
    GeneratorInfo,
    inference_network,
    load,
    load_model,
    resolve_device,
)
from ganstyle.inference.norm_statistics import NormStatistics
from ganstyle.inference.stylize import (
    AUTO_TILE_PIXELS,
    DEFAULT_TILE,
    InferenceInputError,
    Stylizer,
)
from ganstyle.inference.tiling import reflect_pad, tiled_forward

__all__ = [
    "AUTO_TILE_PIXELS",
    "DEFAULT_TILE",
    "CheckpointError",
    "GeneratorInfo",
    "InferenceInputError",
    "NormStatistics",
    "Stylizer",
    "inference_network",
    "load",
    "load_model",
    "reflect_pad",
    "resolve_device",
    "tiled_forward",
]
