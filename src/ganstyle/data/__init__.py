"""Datasets and LightningDataModules. Images enter networks as float (N, 3, H, W) in [-1, 1].

- :class:`UnpairedDataModule` -- CycleGAN/CUT folders ``trainA``, ``trainB``, ``testA``, ``testB``.
- :class:`EmbeddedDataModule` -- the default: photo crops vs a known cartoon rendering, no download.
- :class:`PairedDataModule` -- pix2pix: side-by-side A|B images or two folders matched by name.
- :class:`ContentStyleDataModule` -- content photos plus style image(s) for neural style transfer.
"""

from ganstyle.data.content_style import ContentStyleDataModule, ContentStyleDataset
from ganstyle.data.embedded import (
    EmbeddedDataModule,
    default_cache_dir,
    materialize_embedded_dataset,
    render_ink_grade,
    render_style,
)
from ganstyle.data.images import (
    IMAGE_EXTENSIONS,
    DatasetError,
    DatasetWarning,
    list_images,
    load_rgb,
    scan_image_folder,
    validate_image_folder,
)
from ganstyle.data.paired import PairedDataModule, PairedImageDataset
from ganstyle.data.transforms import PREPROCESS_MODES, ImageTransform, denormalize, tensor_to_pil, to_tensor
from ganstyle.data.unpaired import UnpairedDataModule, UnpairedImageDataset

__all__ = [
    "IMAGE_EXTENSIONS",
    "PREPROCESS_MODES",
    "ContentStyleDataModule",
    "ContentStyleDataset",
    "DatasetError",
    "DatasetWarning",
    "EmbeddedDataModule",
    "ImageTransform",
    "PairedDataModule",
    "PairedImageDataset",
    "UnpairedDataModule",
    "UnpairedImageDataset",
    "default_cache_dir",
    "denormalize",
    "list_images",
    "load_rgb",
    "materialize_embedded_dataset",
    "render_ink_grade",
    "render_style",
    "scan_image_folder",
    "tensor_to_pil",
    "to_tensor",
    "validate_image_folder",
]
