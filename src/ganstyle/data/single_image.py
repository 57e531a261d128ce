"""One content image and one or more style images, for optimisation-based style transfer (Gatys et al.).

There is no dataset to iterate: the model optimises the pixels of one image. Every "batch" is the same
content image (and the first style image fitted to its size, for image grids); an epoch is
``iterations_per_epoch`` such batches, so with one optimiser step per batch

    optimisation iterations = trainer.max_epochs * data.iterations_per_epoch   (or trainer.max_steps)

and validation, checkpoints and image grids happen once per epoch. The model reads the full-size targets
once through :meth:`SingleImageStyleDataModule.content_image` and :meth:`~SingleImageStyleDataModule.style_images`.

    python train.py model=gatys data.content=photo.jpg data.style=starry_night.jpg
    python train.py model=gatys data.content=photo.jpg data.style=[a.jpg,b.jpg] data.style_weights=[0.7,0.3]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from ganstyle.data.images import IMAGE_EXTENSIONS, DatasetError, check_image, load_rgb
from ganstyle.data.transforms import to_tensor


def scale_shorter_side(image: Image.Image, side: int | None) -> Image.Image:
    """Resize (bicubic) so the shorter side is ``side``, keeping the aspect; None keeps the image."""
    if side is None or min(image.size) == side:
        return image
    scale = side / min(image.size)
    size = (max(side, round(image.width * scale)), max(side, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BICUBIC)


def fit_to_size(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Scale (N, C, h, w) images to cover ``height`` x ``width`` keeping the aspect, then centre-crop."""
    h, w = image.shape[-2:]
    scale = max(height / h, width / w)
    size = (max(height, round(h * scale)), max(width, round(w * scale)))
    resized = torch.nn.functional.interpolate(image, size=size, mode="bilinear", align_corners=False)
    top, left = (size[0] - height) // 2, (size[1] - width) // 2
    return resized[..., top : top + height, left : left + width]


def checked_image_path(path: str | Path, role: str, key: str) -> Path:
    """``path`` as a Path once it is known to be a readable image; else a :class:`DatasetError`."""
    path = Path(path).expanduser()
    if not path.is_file():
        state = "is a folder, not an image file" if path.is_dir() else "does not exist"
        raise DatasetError(
            f"The {role} {path.absolute()} {state}. {key} must name an image file "
            f"({', '.join(sorted(IMAGE_EXTENSIONS))}), e.g. `{key}=/path/to/image.jpg`."
        )
    _, problem = check_image(path)
    if problem:
        raise DatasetError(f"The {role} {path} cannot be used: {problem}. Point {key} at another image.")
    return path


class RepeatedItemDataset(Dataset):
    """``length`` copies of one sample (the images are decoded once)."""

    def __init__(self, item: dict[str, Any], length: int) -> None:
        self.item, self.length = item, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.item


class SingleImageStyleDataModule(L.LightningDataModule):
    """One content image, one or several weighted style images; see the module docstring.

    Args:
        content: the content image file.
        style: a style image file or a list of them.
        style_weights: one non-negative weight per style image (normalised to sum 1); None: equal.
        image_size: shorter side of the content image in px (the output size); None keeps its size.
        style_size: shorter side of each style image; None: ``image_size`` (style statistics are
            scale-dependent, so a style image much larger than the output gives finer strokes).
        iterations_per_epoch: optimiser steps per epoch (validation, grids and checkpoints per epoch).
    """

    data_kind = "single_image_style"  # what a model needs from its data (ganstyle.run.config_checks)

    def __init__(
        self,
        content: str,
        style: str | Sequence[str],
        style_weights: Sequence[float] | None = None,
        image_size: int | None = 128,
        style_size: int | None = None,
        iterations_per_epoch: int = 50,
    ) -> None:
        super().__init__()
        self.validation_has_targets = False  # what stylised output should be is not known
        styles = [style] if isinstance(style, str | Path) else [str(s) for s in style]
        if not styles:
            raise DatasetError("data.style is empty: name at least one style image, `data.style=style.jpg`.")
        if style_weights is not None:
            style_weights = [float(w) for w in style_weights]
            if len(style_weights) != len(styles) or min(style_weights) < 0 or sum(style_weights) <= 0:
                raise DatasetError(
                    f"data.style_weights={style_weights} does not fit data.style={styles}: give one "
                    "non-negative weight per style image with a positive sum, e.g. "
                    "`data.style=[a.jpg,b.jpg] data.style_weights=[0.7,0.3]`."
                )
        for name, value in (("image_size", image_size), ("style_size", style_size)):
            if value is not None and (not isinstance(value, int) or value < 16):
                raise DatasetError(f"data.{name}={value!r} must be an integer of at least 16 px, or null.")
        if not isinstance(iterations_per_epoch, int) or iterations_per_epoch < 1:
            raise DatasetError(
                f"data.iterations_per_epoch={iterations_per_epoch!r} must be a positive integer."
            )
        self.content_path = checked_image_path(content, "content image", "data.content")
        self.style_paths = [checked_image_path(s, "style image", "data.style") for s in styles]
        weights = style_weights or [1.0] * len(styles)
        self.style_weights = [w / sum(weights) for w in weights]
        self.image_size = image_size
        self.style_size = style_size or image_size
        self.iterations_per_epoch = iterations_per_epoch
        self._content: torch.Tensor | None = None
        self._styles: list[torch.Tensor] | None = None

    def content_image(self) -> torch.Tensor:
        """The content image as (1, 3, H, W) in [-1, 1], shorter side ``image_size``."""
        if self._content is None:
            self._content = to_tensor(scale_shorter_side(load_rgb(self.content_path), self.image_size))[None]
        return self._content

    def style_images(self) -> list[torch.Tensor]:
        """Each style image as (1, 3, h, w) in [-1, 1], shorter side ``style_size``."""
        if self._styles is None:
            self._styles = [
                to_tensor(scale_shorter_side(load_rgb(path), self.style_size))[None]
                for path in self.style_paths
            ]
        return self._styles

    def _item(self) -> dict[str, Any]:
        content = self.content_image()
        style = fit_to_size(self.style_images()[0], *content.shape[-2:])
        return {"content": content[0], "style": style[0], "content_path": str(self.content_path)}

    def train_dataloader(self) -> DataLoader:
        return DataLoader(RepeatedItemDataset(self._item(), self.iterations_per_epoch), batch_size=1)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(RepeatedItemDataset(self._item(), 1), batch_size=1)

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()
