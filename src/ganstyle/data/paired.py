"""Paired (aligned) image-to-image data for pix2pix.

Two layouts, detected from what ``root`` holds (or chosen with ``layout``):

- ``aligned`` -- the public pix2pix datasets (facades, maps, edges2shoes...): ``root/train/``,
  ``root/val/`` and/or ``root/test/``, each image A and B side by side, split at half the width.
- ``folders`` -- ``root/trainA/`` + ``root/trainB/`` (and ``valA``/``valB`` or ``testA``/``testB``)
  whose files pair up by name (``x.jpg`` in A pairs with ``x.jpg`` or ``x.png`` in B).

``direction="BtoA"`` swaps the two, so that in every batch ``"A"`` is the generator's input and
``"B"`` its target, whatever the direction: models never look at ``direction``. Both images of a
pair get the same crop and flip. Batches: ``"A"``, ``"B"`` (N, 3, H, W) in [-1, 1], ``"A_path"``,
``"B_path"`` (the same file for the aligned layout).
"""

from __future__ import annotations

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
from ganstyle.data.images import DatasetError, Size, list_images, load_rgb, scan_image_folder
from ganstyle.data.transforms import ImageTransform, check_batchable
from ganstyle.data.unpaired import match_by_stem

DIRECTIONS = ("AtoB", "BtoA")
LAYOUTS = ("auto", "aligned", "folders")
PAIRED_LAYOUT = (
    "A paired dataset root holds either train/ plus val/ or test/ with each A|B pair side by side in one "
    "image (the public pix2pix datasets, e.g. facades), or trainA/ and trainB/ plus valA/+valB/ or "
    "testA/+testB/ whose files pair up by name. Point the config at it with `data.root=/path/to/facades`."
)


class PairedImageDataset(AugmentedDataset):
    """(A, B) pairs: ``(path_ab, None)`` is one side-by-side image, ``(path_a, path_b)`` two files."""

    def __init__(
        self,
        pairs: Sequence[tuple[Path, Path | None]],
        transform: ImageTransform,
        direction: str = "AtoB",
        seed: int = 0,
    ) -> None:
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}.")
        super().__init__(seed)
        self.pairs = list(pairs)
        self.transform = transform
        self.direction = direction

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        path_a, path_b = self.pairs[index]
        if path_b is None:
            both = load_rgb(path_a)
            width, height = both.size
            half = width // 2  # widths are checked to be even at setup
            image_a, image_b = both.crop((0, 0, half, height)), both.crop((half, 0, width, height))
            path_b = path_a
        else:
            image_a, image_b = load_rgb(path_a), load_rgb(path_b)
        tensor_a, tensor_b = self.transform.apply_same([image_a, image_b], self.random.generator(index))
        if self.direction == "BtoA":
            tensor_a, tensor_b, path_a, path_b = tensor_b, tensor_a, path_b, path_a
        return {"A": tensor_a, "B": tensor_b, "A_path": str(path_a), "B_path": str(path_b)}


class PairedDataModule(ImageDataModule):
    """pix2pix data from an aligned (side-by-side) or two-folder dataset; see the module docstring.

    Validation takes the first ``val_max_images`` pairs of ``val`` (else ``test``) with the
    deterministic transform; test takes ``test`` (else ``val``), all of it by default.
    """

    data_kind = "paired"  # what a model needs from its data (ganstyle.run.config_checks)

    def __init__(
        self,
        root: str,
        direction: str = "AtoB",  # BtoA swaps the images, so "A" is always the input
        layout: str = "auto",  # auto | aligned | folders
        load_size: int = 286,  # the pix2pix default: resize to 286, random-crop 256
        crop_size: int = 256,
        preprocess: str = "resize_and_crop",
        flip: bool = True,
        batch_size: int = 1,
        num_workers: int = 0,
        val_max_images: int | None = 16,
        skip_bad_images: bool = False,
        seed: int = 0,
        pin_memory: bool = False,
        test_max_images: int | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if direction not in DIRECTIONS:
            raise ValueError(f"data.direction must be AtoB or BtoA, got {direction!r}.")
        if layout not in LAYOUTS:
            raise ValueError(f"data.layout must be one of {', '.join(LAYOUTS)}, got {layout!r}.")
        check_batch_size(batch_size)
        self.train_transform, self.eval_transform = image_transforms(preprocess, load_size, crop_size, flip)
        self.root = Path(root).expanduser()
        self.layout: str | None = None  # resolved at setup

    @property
    def validation_has_targets(self) -> bool:
        return True  # the B image of each pair

    def _resolve_dataset(self) -> None:
        self.layout = self._detect_layout()

    def _train_dataset(self) -> PairedImageDataset:
        hp = self.hparams
        return PairedImageDataset(self._pairs("train"), self.train_transform, hp.direction, hp.seed)

    def _held_out_dataset(self, split: str, limit: int | None) -> PairedImageDataset:
        # Either of val/ and test/ stands in for the other when only one exists.
        splits = ("val", "test") if split == "val" else ("test", "val")
        pairs = first(self._pairs(self._held_out(splits)), limit)
        return PairedImageDataset(pairs, self.eval_transform, self.hparams.direction)

    def _detect_layout(self) -> str:
        root = self.root
        require_folder(root, "dataset root", PAIRED_LAYOUT)
        aligned = (root / "train").is_dir()
        folders = (root / "trainA").is_dir() and (root / "trainB").is_dir()
        layout = self.hparams.layout
        if layout == "auto":
            if aligned and folders:
                raise DatasetError(
                    f"The dataset root {root} holds both train/ (side-by-side pairs) and trainA/+trainB/ "
                    "(pairs in two folders), so the layout is ambiguous. Set `data.layout=aligned` or "
                    "`data.layout=folders`."
                )
            if not (aligned or folders):
                raise DatasetError(
                    f"The dataset root {root} holds neither train/ nor trainA/+trainB/. {PAIRED_LAYOUT}"
                )
            layout = "aligned" if aligned else "folders"
        return layout

    def _held_out(self, splits: tuple[str, str]) -> str:
        """The first of ``splits`` present under root (val/ or test/, valA/ or testA/)."""
        suffix = "" if self.layout == "aligned" else "A"
        for split in splits:
            if (self.root / f"{split}{suffix}").is_dir():
                return split
        wanted = " or ".join(f"{split}{suffix}/" for split in splits)
        raise DatasetError(f"The dataset root {self.root} has no held-out folder ({wanted}). {PAIRED_LAYOUT}")

    def _pairs(self, split: str) -> list[tuple[Path, Path | None]]:
        hp = self.hparams
        min_side = self.min_image_size or 0
        if self.layout == "aligned":

            def side_by_side(size: Size) -> str | None:
                width, height = size
                if width % 2:
                    return f"width {width} px is odd, so it cannot split into two equal A|B halves"
                if min(width // 2, height) < min_side:
                    return f"each half is {width // 2}x{height} px, smaller than data.crop_size={min_side}"
                return None

            sizes = scan_image_folder(
                self.root / split,
                f"{split} (side-by-side A|B pairs)",
                skip_bad=hp.skip_bad_images,
                expected=PAIRED_LAYOUT,
                check=side_by_side,
                counts=self.image_counts,
            )
            half_sizes = {path: (w // 2, h) for path, (w, h) in sizes.items()}
            check_batchable(half_sizes, self.train_transform, hp.batch_size, split)
            return [(path, None) for path in sizes]
        return self._folder_pairs(split, min_side)

    def _folder_pairs(self, split: str, min_side: int) -> list[tuple[Path, Path | None]]:
        hp = self.hparams
        folder_a, folder_b = self.root / f"{split}A", self.root / f"{split}B"
        for folder in (folder_a, folder_b):
            if not folder.is_dir():
                raise DatasetError(f"The paired folder {folder} does not exist. {PAIRED_LAYOUT}")
        # Names are compared on the full listing first: a missing partner is a layout error even when
        # skip_bad_images would drop unreadable files.
        names_a = {path.stem for path in list_images(folder_a)}
        names_b = {path.stem for path in list_images(folder_b)}
        only_a, only_b = sorted(names_a - names_b), sorted(names_b - names_a)
        if only_a or only_b:
            raise DatasetError(
                f"The paired folders {folder_a} and {folder_b} must hold files with matching names, but "
                f"{len(only_a)} names are only in {split}A ({_few(only_a)}) and {len(only_b)} only in "
                f"{split}B ({_few(only_b)}). Rename or remove the unmatched files, or use the unpaired "
                "data module (data=unpaired) if the images do not correspond."
            )
        kwargs = {
            "min_size": min_side or None,
            "skip_bad": hp.skip_bad_images,
            "expected": PAIRED_LAYOUT,
            "counts": self.image_counts,
        }
        sizes_a = scan_image_folder(folder_a, f"{split}A (paired inputs)", **kwargs)
        sizes_b = scan_image_folder(folder_b, f"{split}B (paired targets)", **kwargs)
        matches = match_by_stem(list(sizes_a), folder_b, sizes_b, f"{split}B")
        mismatched = [
            f"{a.name} {sizes_a[a][0]}x{sizes_a[a][1]} vs {b.name} {sizes_b[b][0]}x{sizes_b[b][1]}"
            for a, b in matches.items()
            if sizes_a[a] != sizes_b[b]
        ]
        if mismatched:
            raise DatasetError(
                f"{len(mismatched)} pairs in {folder_a} and {folder_b} differ in size ({_few(mismatched)}); "
                "the two images of a pair must be pixel-aligned and the same size. Resize them to match."
            )
        check_batchable(sizes_a, self.train_transform, hp.batch_size, f"{split}A")
        return list(matches.items())


def _few(items: Sequence[str], limit: int = 5) -> str:
    if not items:
        return "none"
    return ", ".join(items[:limit]) + (f", and {len(items) - limit} more" if len(items) > limit else "")
