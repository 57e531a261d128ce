"""Image preprocessing: the reference CycleGAN/pix2pix modes, and the [-1, 1] tensor convention.

``preprocess`` modes (junyanz/pytorch-CycleGAN-and-pix2pix ``base_dataset.get_transform``):

- ``resize_and_crop``: resize to ``load_size`` x ``load_size`` (aspect not kept), crop ``crop_size``.
  The CycleGAN default: load 286, crop 256.
- ``scale_width_and_crop``: width to ``load_size`` keeping the aspect (height at least
  ``crop_size``), crop ``crop_size``.
- ``crop``: crop ``crop_size`` from the image as it is (images must be at least that large).
- ``scale_width``: width to ``load_size`` keeping the aspect (height at least ``crop_size``); no crop.
- ``scale_shorter_side_and_crop``: shorter side to ``load_size`` keeping the aspect, crop
  ``crop_size`` (not in the reference: for style images and photos of any aspect, as in AdaIN).
- ``none``: keep the size, only rounded to a multiple of 4 (the reference's ``__make_power_2``) so
  two stride-2 downsamplings and upsamplings give back the input size.

Training crops at a random position and flips with probability 1/2; evaluation (``train=False``)
takes the centre crop and never flips, so validation images are the same every epoch. Resizing is
bicubic, as in the reference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganstyle.data.images import DatasetError, Size

PREPROCESS_MODES = (
    "resize_and_crop",
    "scale_width_and_crop",
    "crop",
    "scale_width",
    "scale_shorter_side_and_crop",
    "none",
)
_RESIZE_TO_LOAD_SIZE = {
    "resize_and_crop",
    "scale_width_and_crop",
    "scale_width",
    "scale_shorter_side_and_crop",
}
_CROPS = {"resize_and_crop", "scale_width_and_crop", "crop", "scale_shorter_side_and_crop"}
SIZE_MULTIPLE = 4  # the reference's base for preprocess=none


class ImageTransform:
    """PIL RGB image -> float tensor (3, H, W) in [-1, 1], in one of :data:`PREPROCESS_MODES`.

    ``__call__`` samples its own crop and flip; :meth:`apply_same` gives several images of one size
    the same crop and flip (pix2pix pairs, an image and its ground truth).
    """

    def __init__(
        self,
        preprocess: str = "resize_and_crop",
        load_size: int = 286,
        crop_size: int = 256,
        flip: bool = True,
        train: bool = True,
    ) -> None:
        if preprocess not in PREPROCESS_MODES:
            raise ValueError(
                f"Unknown preprocess mode {preprocess!r}. Choose one of {', '.join(PREPROCESS_MODES)}, "
                "e.g. `data.preprocess=resize_and_crop`."
            )
        for label, value in (("load_size", load_size), ("crop_size", crop_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"data.{label} must be a positive integer number of pixels, got {value!r}.")
        if preprocess in _CROPS and preprocess in _RESIZE_TO_LOAD_SIZE and crop_size > load_size:
            raise ValueError(
                f"data.crop_size={crop_size} is larger than data.load_size={load_size}: preprocess="
                f"{preprocess} first resizes to load_size and then crops crop_size out of it. Set "
                f"load_size >= crop_size (the CycleGAN default is load 286, crop 256)."
            )
        self.preprocess = preprocess
        self.load_size = load_size
        self.crop_size = crop_size
        self.flip = flip and train
        self.train = train

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(preprocess={self.preprocess!r}, load_size={self.load_size}, "
            f"crop_size={self.crop_size}, flip={self.flip}, train={self.train})"
        )

    @property
    def crops(self) -> bool:
        """Whether every output is crop_size x crop_size (so any images can share a batch)."""
        return self.preprocess in _CROPS

    def resized_size(self, size: Size) -> Size:
        """(width, height) after the resize stage, before cropping."""
        width, height = size
        mode, load, crop = self.preprocess, self.load_size, self.crop_size
        if mode == "resize_and_crop":
            return load, load
        if mode in ("scale_width", "scale_width_and_crop"):
            if width == load and height >= crop:  # the reference leaves such images untouched
                return width, height
            return load, int(max(load * height / width, crop))
        if mode == "scale_shorter_side_and_crop":
            scale = load / min(width, height)
            return max(load, round(width * scale)), max(load, round(height * scale))
        if mode == "none":
            return tuple(max(SIZE_MULTIPLE, round(side / SIZE_MULTIPLE) * SIZE_MULTIPLE) for side in size)
        return width, height

    def output_size(self, size: Size) -> Size:
        """(width, height) of the tensor made from an image of ``size``."""
        return (self.crop_size, self.crop_size) if self.crops else self.resized_size(size)

    def resize(self, image: Image.Image) -> Image.Image:
        """The deterministic resize stage alone (cacheable, e.g. for style images)."""
        target = self.resized_size(image.size)
        return image if target == image.size else image.resize(target, Image.Resampling.BICUBIC)

    def finish(
        self, images: Sequence[Image.Image], generator: torch.Generator | None = None
    ) -> list[torch.Tensor]:
        """Crop, flip and convert already-resized images of one size, all with the same crop and flip."""
        size = images[0].size
        if any(image.size != size for image in images):
            raise ValueError(
                f"Images transformed together must share a size, got {[i.size for i in images]}."
            )
        box = self._crop_box(size, generator) if self.crops else None
        flip = self.flip and bool(torch.rand((), generator=generator) < 0.5)
        tensors = []
        for image in images:
            if box is not None:
                image = image.crop(box)
            if flip:
                image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            tensors.append(to_tensor(image))
        return tensors

    def apply_same(
        self, images: Sequence[Image.Image], generator: torch.Generator | None = None
    ) -> list[torch.Tensor]:
        """Transform images of one size with one shared random crop and flip."""
        return self.finish([self.resize(image) for image in images], generator)

    def __call__(self, image: Image.Image, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.apply_same([image], generator)[0]

    def _crop_box(self, size: Size, generator: torch.Generator | None) -> tuple[int, int, int, int]:
        width, height = size
        crop = self.crop_size
        if width < crop or height < crop:
            raise DatasetError(
                f"An image of {width}x{height} px (after the {self.preprocess} resize stage) is smaller "
                f"than data.crop_size={crop}. With preprocess=crop every image must be at least crop_size "
                "on each side: lower data.crop_size, or use preprocess=resize_and_crop."
            )
        if self.train:
            left = int(torch.randint(width - crop + 1, (), generator=generator))
            top = int(torch.randint(height - crop + 1, (), generator=generator))
        else:
            left, top = (width - crop) // 2, (height - crop) // 2
        return left, top, left + crop, top + crop


def to_tensor(image: Image.Image) -> torch.Tensor:
    """8-bit RGB PIL image -> float32 tensor (3, H, W) in [-1, 1] (0 -> -1, 255 -> 1)."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32)
    return torch.from_numpy(array).permute(2, 0, 1).contiguous().div_(127.5).sub_(1.0)


def denormalize(tensor: torch.Tensor) -> torch.Tensor:
    """Map a [-1, 1] image tensor back to [0, 1] (clamped), e.g. for saving or metrics."""
    return tensor.add(1.0).div_(2.0).clamp_(0.0, 1.0)


def tensor_to_pil(tensor: torch.Tensor) -> Image.Image:
    """A (3, H, W) tensor in [-1, 1] -> 8-bit RGB PIL image (rounded)."""
    array = denormalize(tensor.detach().cpu().float()).mul_(255.0).round_().to(torch.uint8)
    return Image.fromarray(array.permute(1, 2, 0).numpy(), "RGB")


def check_batchable(
    sizes: Mapping[Path, Size], transform: ImageTransform, batch_size: int, what: str
) -> None:
    """Raise a :class:`DatasetError` when batch_size > 1 but a non-cropping mode gives unequal sizes."""
    if batch_size <= 1 or transform.crops or not sizes:
        return
    out = {}
    for path, size in sizes.items():
        out.setdefault(transform.output_size(size), path)
    if len(out) > 1:
        examples = "; ".join(f"{path.name} -> {w}x{h}" for (w, h), path in list(out.items())[:3])
        raise DatasetError(
            f"data.preprocess={transform.preprocess} keeps each image's own size, but the {what} images give "
            f"{len(out)} different sizes ({examples}), which cannot be stacked into batches of "
            f"data.batch_size={batch_size}. Set data.batch_size=1, or use a cropping mode such as "
            "data.preprocess=resize_and_crop."
        )
