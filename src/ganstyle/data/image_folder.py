"""One folder of images, e.g. a collection of artworks, for models that generate images from noise
(DCGAN, WGAN-GP).

Batches are dicts: ``"image"`` float (N, 3, H, W) in [-1, 1] and ``"image_path"`` (list of str).

Validation images are ``val_root`` when given; otherwise ``held_out`` images of ``root``, spread
evenly over its sorted file list, are kept out of training. With ``held_out=0`` (and no ``val_root``)
validation reads the first ``val_max_images`` *training* images, so its numbers are not held-out ones.

:class:`EmbeddedArtworksDataModule` is the default: the embedded dataset's painterly renderings
(``trainB``, held-out ``testB``) as the "artworks", built on first use with no download.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ganstyle.data.base import (
    AugmentedDataset,
    BuiltOnFirstUse,
    ImageDataModule,
    cache_folder,
    check_batch_size,
    first,
    forwarded,
    image_transforms,
)
from ganstyle.data.embedded import default_cache_dir, materialize_embedded_dataset
from ganstyle.data.images import DatasetError, load_rgb
from ganstyle.data.transforms import ImageTransform

IMAGE_FOLDER_LAYOUT = (
    "An image-folder dataset is one folder of images (a collection of artworks, photos of one kind), "
    "read flat, not recursively; optionally a second folder of held-out images. Point the config at them "
    "with `data.root=/path/to/artworks` (and `data.val_root=/path/to/held_out`)."
)


class ImageFolderDataset(AugmentedDataset):
    """The images at ``paths``, each transformed on its own (random crop and flip when training)."""

    def __init__(self, paths: Sequence[Path], transform: ImageTransform, seed: int = 0) -> None:
        if not paths:
            raise ValueError("ImageFolderDataset needs at least one image.")
        super().__init__(seed)
        self.paths = list(paths)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        path = self.paths[index]
        generator = self.random.generator(index)
        return {"image": self.transform(load_rgb(path), generator), "image_path": str(path)}


def held_out_indices(count: int, held_out: int) -> list[int]:
    """``held_out`` indices spread evenly over ``range(count)``: sorted file names often group images
    by artist or series, and an even spread keeps the held-out set representative of all of them."""
    if held_out <= 0:
        return []
    return sorted({int(i) for i in np.linspace(0, count - 1, held_out).round()})


class ImageFolderDataModule(ImageDataModule):
    """Images of one folder for unconditional generation; see the module docstring for validation."""

    data_kind = "image_folder"  # what a model needs from its data (ganstyle.run.config_checks)

    def __init__(
        self,
        root: str,
        val_root: str | None = None,  # held-out images; None: hold out `held_out` images of root
        held_out: int = 16,  # images of root kept out of training for validation (without val_root)
        load_size: int = 72,  # resize, then random-crop crop_size: a little translation augmentation
        crop_size: int = 64,  # DCGAN's image side; the networks' image_size must equal it
        preprocess: str = "resize_and_crop",
        flip: bool = True,
        batch_size: int = 128,  # DCGAN's mini-batch size; WGAN-GP used 64
        num_workers: int = 0,
        val_max_images: int | None = 64,
        skip_bad_images: bool = False,
        seed: int = 0,  # data order and augmentation; independent of the model's seed
        pin_memory: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        check_batch_size(batch_size)
        if held_out < 0:
            raise ValueError(f"data.held_out must be 0 or more images, got {held_out}.")
        self.train_transform, self.eval_transform = image_transforms(preprocess, load_size, crop_size, flip)
        self.root = Path(root).expanduser()
        self.val_root = Path(val_root).expanduser() if val_root else None

    def setup(self, stage: str | None = None) -> None:
        """Every stage splits the folder into training and validation images; test reuses validation."""
        if self.train_dataset is not None and self.val_dataset is not None:
            return
        hp = self.hparams
        paths = self._scan(self.root, "image collection")
        if self.val_root is not None:
            train_paths, val_paths = paths, self._scan(self.val_root, "held-out image")
        else:
            held = set(held_out_indices(len(paths), hp.held_out))
            if len(held) >= len(paths):
                raise DatasetError(
                    f"data.held_out={hp.held_out} would keep all {len(paths)} images of {self.root} out of "
                    "training. Lower data.held_out (0 validates on training images), or give held-out "
                    "images their own folder with data.val_root=/path/to/held_out."
                )
            train_paths = [path for index, path in enumerate(paths) if index not in held]
            val_paths = [paths[index] for index in sorted(held)] or train_paths
        self.train_dataset = ImageFolderDataset(train_paths, self.train_transform, hp.seed)
        self.val_dataset = ImageFolderDataset(first(val_paths, hp.val_max_images), self.eval_transform)
        self.test_dataset = self.val_dataset

    def _scan(self, folder: Path, name: str) -> list[Path]:
        return list(self._scan_images(folder, name, IMAGE_FOLDER_LAYOUT, self.train_transform, folder.name))


class EmbeddedArtworksDataModule(BuiltOnFirstUse, ImageFolderDataModule):
    """The embedded dataset's renderings as an image collection: ``trainB`` to learn, ``testB`` held out.

    ``cache_dir``/``image_size``/``n_train``/``n_test``/``dataset_seed`` are
    :class:`~ganstyle.data.embedded.EmbeddedDataModule`'s (the same defaults share one cached dataset
    with CycleGAN's default run); the rest are :class:`ImageFolderDataModule`'s.
    """

    def __init__(
        self,
        cache_dir: str | None = None,  # the embedded dataset folder; None: its default under the cache
        image_size: int = 96,
        n_train: int = 320,
        n_test: int = 16,
        dataset_seed: int = 0,
        load_size: int = 72,
        crop_size: int = 64,
        preprocess: str = "resize_and_crop",
        flip: bool = True,
        batch_size: int = 64,  # 320 renderings: five batches per epoch
        num_workers: int = 0,
        val_max_images: int | None = 64,
        skip_bad_images: bool = False,
        seed: int = 0,
        pin_memory: bool = False,
    ) -> None:
        dataset = cache_folder(cache_dir, default_cache_dir(image_size, n_train, n_test, dataset_seed))
        super().__init__(
            **forwarded(
                ImageFolderDataModule,
                locals(),
                root=str(dataset / "trainB"),
                val_root=str(dataset / "testB"),
                held_out=0,
            )
        )
        self.dataset_dir = dataset

    def _materialize(self) -> Path:
        hp = self.hparams
        return materialize_embedded_dataset(
            self.dataset_dir, hp.image_size, hp.n_train, hp.n_test, hp.dataset_seed
        )
