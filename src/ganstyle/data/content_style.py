"""Content photos plus one or many style images: fast neural style, AdaIN, Gatys, style GANs.

Content images come from ``content_root``: its ``train/`` and ``test/`` (or ``val/``) subfolders when
``train/`` exists, otherwise the folder itself, from which a fixed, evenly spaced set of images is
held out for validation (independent of the seed, so runs compare on the same images).

``style`` names style image files and/or folders of them (a folder is many styles, as for AdaIN).
Style images are decoded once, resized so the shorter side is ``style_load_size``, and kept in
memory (up to :data:`MAX_CACHED_STYLES`; beyond that they are read per sample).

Batches: ``"content"`` and ``"style"`` (N, 3, H, W) in [-1, 1] -- ``"style"`` is a random crop of a
style image picked per sample (with ``style_weights``), at the content crop size, for an adversarial
critic or for style losses -- ``"style_index"`` (N,) int64 into :attr:`ContentStyleDataModule.style_paths`,
and ``"content_path"``, ``"style_path"``. Validation uses centre crops and cycles through the styles.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganstyle.data.base import (
    AugmentedDataset,
    ImageDataModule,
    check_batch_size,
    first,
    image_transforms,
    require_folder,
)
from ganstyle.data.images import (
    IMAGE_EXTENSIONS,
    DatasetError,
    check_image,
    load_rgb,
    scan_image_folder,
)
from ganstyle.data.transforms import ImageTransform, to_tensor

MAX_CACHED_STYLES = 64  # resized style images kept in memory; a WikiArt-size folder is read per sample
HELD_OUT_FRACTION = 0.1  # of a content folder without train/test subfolders, at most val_max_images
CONTENT_LAYOUT = (
    "content_root must be a folder of content photos, or hold train/ and test/ (or val/) subfolders of "
    "them; set it with `data.content_root=/path/to/photos`."
)


class StyleImages:
    """Style images by index, resized once by ``transform.resize`` and (up to a limit) cached."""

    def __init__(self, paths: Sequence[Path], transform: ImageTransform, weights: Sequence[float]) -> None:
        self.paths = list(paths)
        self.transform = transform
        total = float(sum(weights))
        self.weights = torch.tensor([w / total for w in weights], dtype=torch.float64)
        self._cache: dict[int, Image.Image] = {}
        if len(self.paths) <= MAX_CACHED_STYLES:
            for index in range(len(self.paths)):
                self.image(index)

    def __len__(self) -> int:
        return len(self.paths)

    def image(self, index: int) -> Image.Image:
        """Style image ``index`` after the resize stage (shorter side = the style load size)."""
        if index in self._cache:
            return self._cache[index]
        image = self.transform.resize(load_rgb(self.paths[index]))
        if len(self.paths) <= MAX_CACHED_STYLES:
            self._cache[index] = image
        return image

    def sample(self, generator: torch.Generator) -> int:
        return int(torch.multinomial(self.weights, 1, generator=generator))


class ContentStyleDataset(AugmentedDataset):
    """Each content image with a style crop: a weighted random style (train) or style i % S (eval)."""

    def __init__(
        self,
        content_paths: Sequence[Path],
        styles: StyleImages,
        content_transform: ImageTransform,
        style_transform: ImageTransform,
        random_style: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__(seed)
        self.content_paths = list(content_paths)
        self.styles = styles
        self.content_transform = content_transform
        self.style_transform = style_transform
        self.random_style = random_style

    def __len__(self) -> int:
        return len(self.content_paths)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str | int]:
        generator = self.random.generator(index)
        path = self.content_paths[index]
        style_index = self.styles.sample(generator) if self.random_style else index % len(self.styles)
        return {
            "content": self.content_transform(load_rgb(path), generator),
            "style": self.style_transform.finish([self.styles.image(style_index)], generator)[0],
            "style_index": style_index,
            "content_path": str(path),
            "style_path": str(self.styles.paths[style_index]),
        }


class ContentStyleDataModule(ImageDataModule):
    """Content photos and style image(s); see the module docstring for layout and batch keys."""

    data_kind = "content_style"  # what a model needs from its data (ganstyle.run.config_checks)

    def __init__(
        self,
        content_root: str,
        style: str | list[str],  # style image file(s) and/or folder(s) of them
        crop_size: int = 256,  # content and style crops (fast neural style trains at 256)
        load_size: int | None = None,  # None: crop_size + crop_size // 8 (288 for 256), like 286/256
        style_load_size: int | None = None,  # shorter side of style images before cropping; None: load_size
        preprocess: str = "scale_shorter_side_and_crop",  # content photos keep their aspect
        flip: bool = True,
        batch_size: int = 4,  # fast neural style's batch size
        num_workers: int = 0,
        val_max_images: int | None = 8,
        style_weights: list[float] | None = None,  # one per `style` entry; a folder's weight is shared
        skip_bad_images: bool = False,
        seed: int = 0,
        pin_memory: bool = False,
        test_max_images: int | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        check_batch_size(batch_size)
        load_size = load_size or crop_size + crop_size // 8
        style_load_size = style_load_size or load_size
        self.content_train_transform, self.content_eval_transform = image_transforms(
            preprocess, load_size, crop_size, flip
        )
        self.style_train_transform, self.style_eval_transform = image_transforms(
            "scale_shorter_side_and_crop", style_load_size, crop_size, flip
        )
        self.content_root = Path(content_root).expanduser()
        self.style_entries = [style] if isinstance(style, str | os.PathLike) else [str(s) for s in style]
        if not self.style_entries:
            raise DatasetError("data.style is empty: name at least one style image file or folder.")
        if style_weights is not None and len(style_weights) != len(self.style_entries):
            raise DatasetError(
                f"data.style_weights has {len(style_weights)} values for {len(self.style_entries)} style "
                "entries: give one weight per entry of data.style (a folder's weight is split over its "
                "images)."
            )
        if style_weights is not None and (any(w < 0 for w in style_weights) or sum(style_weights) <= 0):
            raise DatasetError(
                f"data.style_weights must be non-negative with a positive sum, got {style_weights}."
            )
        self.style_paths: list[Path] = []
        self.style_image_weights: list[float] = []
        self._splits: dict[str, list[Path]] | None = None
        self._styles: StyleImages | None = None

    @property
    def num_styles(self) -> int:
        return len(self.style_paths)

    def _resolve_dataset(self) -> None:
        if not self.style_paths:
            self._resolve_styles()
        if self._splits is None:
            self._splits = self._content_splits()

    def _train_dataset(self) -> ContentStyleDataset:
        return ContentStyleDataset(
            self._splits["train"],
            self._style_images(),
            self.content_train_transform,
            self.style_train_transform,
            random_style=True,
            seed=self.hparams.seed,
        )

    def _held_out_dataset(self, split: str, limit: int | None) -> ContentStyleDataset:
        return ContentStyleDataset(
            first(self._splits[split], limit),
            self._style_images(),
            self.content_eval_transform,
            self.style_eval_transform,
            random_style=False,
        )

    def style_image(self, index: int = 0) -> torch.Tensor:
        """Whole style image ``index``, shorter side = the style load size, as (1, 3, H, W) in [-1, 1].

        For methods that use the full style image as their target (Gatys, Gram targets).
        """
        if not self.style_paths:
            self._resolve_styles()
        return to_tensor(self.style_eval_transform.resize(load_rgb(self.style_paths[index]))).unsqueeze(0)

    def _style_images(self) -> StyleImages:
        # One decoded set serves train and eval: their resize stages are the same, only crop/flip differ.
        if self._styles is None:
            self._styles = StyleImages(self.style_paths, self.style_train_transform, self.style_image_weights)
        return self._styles

    def _resolve_styles(self) -> None:
        """Expand ``style`` entries into image paths and per-image sampling weights; check each once."""
        hp = self.hparams
        weights = hp.style_weights or [1.0] * len(self.style_entries)
        paths: list[Path] = []
        image_weights: list[float] = []
        for entry, weight in zip(self.style_entries, weights):
            path = Path(entry).expanduser()
            if path.is_dir():
                found = list(
                    scan_image_folder(
                        path, "style images", skip_bad=hp.skip_bad_images, counts=self.image_counts
                    )
                )
            elif path.is_file():
                _, problem = check_image(path)
                if problem:
                    raise DatasetError(
                        f"The style image {path} cannot be used: {problem}. Replace it or point data.style "
                        "at another image."
                    )
                found = [path]
            else:
                raise DatasetError(
                    f"The style image {path.absolute()} does not exist. data.style must name image files "
                    f"({', '.join(sorted(IMAGE_EXTENSIONS))}) or folders of them, e.g. "
                    "`data.style=/path/to/starry_night.jpg` or `data.style=[a.jpg,b.jpg]`."
                )
            paths += found
            image_weights += [weight / len(found)] * len(found)
        self.style_paths, self.style_image_weights = paths, image_weights

    def _content_splits(self) -> dict[str, list[Path]]:
        hp = self.hparams
        root = self.content_root
        require_folder(root, "content folder", CONTENT_LAYOUT)

        def scan(folder: Path, name: str) -> list[Path]:
            return list(self._scan_images(folder, name, CONTENT_LAYOUT, self.content_train_transform, name))

        if (root / "train").is_dir():
            train = scan(root / "train", "content training images")
            for held_out in ("test", "val"):
                if (root / held_out).is_dir():
                    evaluation = scan(root / held_out, f"content {held_out} images")
                    return {"train": train, "val": evaluation, "test": evaluation}
        else:
            train = scan(root, "content images")
        # No held-out folder: hold out an evenly spaced, seed-independent set (a single image serves both).
        if len(train) == 1:
            return {"train": train, "val": train, "test": train}
        n_held = max(1, int(len(train) * HELD_OUT_FRACTION))
        if hp.val_max_images:
            n_held = min(n_held, hp.val_max_images)
        held = set(np.linspace(0, len(train) - 1, n_held).round().astype(int).tolist())
        evaluation = [path for i, path in enumerate(train) if i in held]
        return {
            "train": [path for i, path in enumerate(train) if i not in held],
            "val": evaluation,
            "test": evaluation,
        }
