"""Unpaired image-to-image data (CycleGAN, CUT): two folders of images that need not correspond.

Layout, the one the public CycleGAN datasets unzip to (``horse2zebra`` works unchanged)::

    root/trainA/  root/trainB/    training images of domain A and domain B
    root/testA/   root/testB/     held-out images, used for validation and test
    root/testA2B/                 optional: the true B rendering of each testA image (same names)

Batches are dicts: ``"A"``, ``"B"`` float tensors (N, 3, H, W) in [-1, 1]; ``"A_path"``,
``"B_path"`` lists of str; and, in validation/test batches when ``testA2B/`` exists, ``"B_target"``,
pixel-aligned with ``"A"`` so a model can report PSNR/SSIM of G_AB(A) against it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

from ganstyle.data.base import (
    AugmentedDataset,
    ImageDataModule,
    check_batch_size,
    first,
    image_transforms,
    require_folder,
)
from ganstyle.data.images import DatasetError, DatasetWarning, Size, load_rgb
from ganstyle.data.transforms import ImageTransform

UNPAIRED_LAYOUT = (
    "An unpaired dataset root must hold the folders trainA/, trainB/, testA/ and testB/ of images (the "
    "layout of the public CycleGAN datasets, e.g. horse2zebra unzipped as it is). Point the config at it "
    "with `data.root=/path/to/horse2zebra`."
)


class UnpairedImageDataset(AugmentedDataset):
    """Pairs every A image with a B image drawn independently, as the reference ``UnalignedDataset``.

    An epoch is max(|A|, |B|) samples: sample i takes A image i % |A| and a uniformly random B image
    (B image i % |B| with ``serial_batches``). ``targets`` (optional, aligned with ``paths_a``) are
    ground-truth B images of the A images, returned as ``"B_target"`` with A's crop and flip. The
    random B pick, crops and flips of sample i follow ``seed`` and the epoch (see :class:`~ganstyle.data.base.EpochRandom`).
    """

    def __init__(
        self,
        paths_a: Sequence[Path],
        paths_b: Sequence[Path],
        transform: ImageTransform,
        serial_batches: bool = False,
        targets: Sequence[Path] | None = None,
        seed: int = 0,
    ) -> None:
        if not paths_a or not paths_b:
            raise ValueError("UnpairedImageDataset needs at least one A and one B image.")
        if targets is not None and len(targets) != len(paths_a):
            raise ValueError(f"{len(targets)} targets for {len(paths_a)} A images: they must align.")
        super().__init__(seed)
        self.paths_a = list(paths_a)
        self.paths_b = list(paths_b)
        self.transform = transform
        self.serial_batches = serial_batches
        self.targets = list(targets) if targets is not None else None

    def __len__(self) -> int:
        return max(len(self.paths_a), len(self.paths_b))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        generator = self.random.generator(index)
        index_a = index % len(self.paths_a)
        if self.serial_batches:
            index_b = index % len(self.paths_b)
        else:  # a random B so that A/B pairings differ from epoch to epoch
            index_b = int(torch.randint(len(self.paths_b), (), generator=generator))
        path_a, path_b = self.paths_a[index_a], self.paths_b[index_b]
        sample: dict[str, torch.Tensor | str] = {"A_path": str(path_a), "B_path": str(path_b)}
        if self.targets is None:
            sample["A"] = self.transform(load_rgb(path_a), generator)
        else:
            images = [load_rgb(path_a), load_rgb(self.targets[index_a])]
            sample["A"], sample["B_target"] = self.transform.apply_same(images, generator)
        sample["B"] = self.transform(load_rgb(path_b), generator)
        return sample


def match_by_stem(
    paths: Sequence[Path], folder: Path, candidates: dict[Path, Size], folder_name: str
) -> dict[Path, Path]:
    """Map each path to the file in ``candidates`` with the same name, or else the same stem.

    Matching on the stem lets ``x.jpg`` pair with ``x.png`` (translations are often saved as PNG).
    Raises :class:`DatasetError` on stems that are ambiguous in ``candidates``.
    """
    by_name = {path.name: path for path in candidates}
    by_stem: dict[str, list[Path]] = {}
    for path in candidates:
        by_stem.setdefault(path.stem, []).append(path)
    matches = {}
    for path in paths:
        if path.name in by_name:
            matches[path] = by_name[path.name]
        elif len(by_stem.get(path.stem, [])) == 1:
            matches[path] = by_stem[path.stem][0]
        elif len(by_stem.get(path.stem, [])) > 1:
            names = ", ".join(p.name for p in by_stem[path.stem])
            raise DatasetError(
                f"The {folder_name} folder {folder} holds several files for {path.name} ({names}), so the "
                "match is ambiguous. Keep one file per name and restart."
            )
    return matches


class UnpairedDataModule(ImageDataModule):
    """Unpaired A/B images from ``root/trainA``, ``trainB``, ``testA``, ``testB`` (see module docstring).

    Validation takes the first ``val_max_images`` of testA and of testB with the deterministic (centre
    crop, no flip) transform; test takes the first ``test_max_images`` (all by default). Folders are
    checked once, at ``setup``, before any training step.
    """

    data_kind = "unpaired"  # what a model needs from its data (ganstyle.run.config_checks)

    def __init__(
        self,
        root: str,
        load_size: int = 286,  # the CycleGAN default: resize to 286, random-crop 256
        crop_size: int = 256,
        preprocess: str = "resize_and_crop",
        flip: bool = True,
        batch_size: int = 1,  # the reference's batch size; instance norm works per image
        num_workers: int = 0,
        val_max_images: int | None = 16,  # validation images per domain; enough for an image grid
        serial_batches: bool = False,  # True pairs A[i] with B[i % |B|] instead of a random B
        skip_bad_images: bool = False,  # False stops at setup on any unreadable file
        seed: int = 0,  # data order and augmentation; independent of the model's seed
        pin_memory: bool = False,
        test_max_images: int | None = None,  # None: the whole of testA/testB
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        check_batch_size(batch_size)
        self.train_transform, self.eval_transform = image_transforms(preprocess, load_size, crop_size, flip)
        self.root = Path(root).expanduser()
        self._scans: dict[str, dict[Path, Size]] = {}

    @property
    def shuffle_train(self) -> bool:
        return not self.hparams.serial_batches

    @property
    def validation_has_targets(self) -> bool:
        return (self.root / "testA2B").is_dir()

    def _resolve_dataset(self) -> None:
        require_folder(self.root, "dataset root", UNPAIRED_LAYOUT)

    def _train_dataset(self) -> UnpairedImageDataset:
        hp = self.hparams
        paths_a, paths_b = self._scan("trainA"), self._scan("trainB")
        return UnpairedImageDataset(
            paths_a, paths_b, self.train_transform, serial_batches=hp.serial_batches, seed=hp.seed
        )

    def _scan(self, folder: str) -> list[Path]:
        """Check ``root/folder`` once (cached across stages) and return its usable images."""
        if folder not in self._scans:
            self._scans[folder] = self._scan_images(
                self.root / folder,
                _FOLDER_NAMES.get(folder, folder),
                _nested_hint(self.root, folder) + UNPAIRED_LAYOUT,
                self.train_transform,
                folder,
            )
        return list(self._scans[folder])

    def _held_out_dataset(self, split: str, limit: int | None) -> UnpairedImageDataset:
        # testA/testB serve validation and test alike.
        paths_a = first(self._scan("testA"), limit)
        paths_b = first(self._scan("testB"), limit)
        targets = None
        if (self.root / "testA2B").is_dir():
            paths_a, targets = self._targets_for(paths_a)
        return UnpairedImageDataset(
            paths_a, paths_b, self.eval_transform, serial_batches=True, targets=targets
        )

    def _targets_for(self, paths_a: list[Path]) -> tuple[list[Path], list[Path]]:
        """The testA2B ground truth of each testA image: same name (or stem) and same size."""
        folder = self.root / "testA2B"
        self._scan("testA2B")
        candidates = self._scans["testA2B"]
        matches = match_by_stem(paths_a, folder, candidates, "testA2B")
        sizes_a = self._scans["testA"]
        problems = [f"{p.name}: no file of that name" for p in paths_a if p not in matches]
        problems += [
            f"{p.name}: {sizes_a[p][0]}x{sizes_a[p][1]} px but its target is "
            f"{candidates[t][0]}x{candidates[t][1]} px"
            for p, t in matches.items()
            if sizes_a[p] != candidates[t]
        ]
        if problems:
            listed = "; ".join(problems[:10]) + ("; ..." if len(problems) > 10 else "")
            message = (
                f"{len(problems)} testA images have no usable ground truth in {folder} ({listed}). testA2B/ "
                "must hold, under the same file name and at the same size, the B rendering of every testA "
                "image"
            )
            if not self.hparams.skip_bad_images:
                raise DatasetError(
                    message + "; fix or remove those files, remove testA2B/ to validate without targets, or "
                    "set `data.skip_bad_images=true` to validate on the images that have one."
                )
            warnings.warn(
                message + "; validating on the others (data.skip_bad_images=true).",
                DatasetWarning,
                stacklevel=2,
            )
            paths_a = [p for p in paths_a if p in matches and sizes_a[p] == candidates[matches[p]]]
            if not paths_a:
                raise DatasetError(message + "; none is left to validate on.")
        return paths_a, [matches[p] for p in paths_a]


_FOLDER_NAMES = {
    "trainA": "trainA (domain A training images)",
    "trainB": "trainB (domain B training images)",
    "testA": "testA (domain A held-out images)",
    "testB": "testB (domain B held-out images)",
    "testA2B": "testA2B (ground-truth B renderings of testA)",
}


def _nested_hint(root: Path, folder: str) -> str:
    """A pointer to ``root/<sub>/folder`` when ``root/folder`` is missing (root set one level too high)."""
    if (root / folder).exists():
        return ""
    nested = sorted(path.parent for path in root.glob(f"*/{folder}") if path.is_dir())
    return f"{folder}/ is one level down, in {nested[0]}: set data.root to that folder. " if nested else ""
