"""What the image data modules share: dataloaders, a resumable training order, per-epoch augmentation.

A subclass of :class:`ImageDataModule` says only what differs: how it checks its root
(:meth:`~ImageDataModule._resolve_dataset`) and how it builds its training and held-out datasets
(:meth:`~ImageDataModule._train_dataset`, :meth:`~ImageDataModule._held_out_dataset`). Its hparams
must hold ``batch_size``, ``num_workers``, ``pin_memory``, ``seed``, ``val_max_images`` and
``test_max_images`` (the last only if it keeps the base ``setup``).

Training data is a pure function of ``(seed, epoch)``, so a run resumed at epoch k sees the batches an
uninterrupted run sees at epoch k:

- the order: :class:`EpochSampler` draws epoch k's permutation from a generator seeded with
  ``seed + k`` (Lightning's fit loop calls its ``set_epoch`` before each epoch);
- the augmentation (crops, flips, random picks): :class:`EpochRandom` seeds one generator per sample
  from ``(seed, epoch, index, rank)``, whichever DataLoader worker loads it.

Under DDP Lightning wraps the sampler in a ``DistributedSamplerWrapper`` (``use_distributed_sampler``,
the default): it shards (and shuffles again, with its own seed, ``PL_GLOBAL_SEED``) this sampler's
order and forwards ``set_epoch`` to it, so both stay functions of the seeds and the epoch. With
``trainer.overfit_batches`` Lightning swaps in a plain ``SequentialSampler``: no ``set_epoch`` reaches
the dataset, so every epoch gets epoch 0's crops and flips, the same batches each time.
A checkpoint saved mid-epoch (SIGTERM, SLURM requeue) resumes its epoch from the first batch of that
epoch's order (Lightning warns that the loader is not resumable); an epoch-end one resumes exactly.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator, Sequence, Sized
from pathlib import Path
from typing import Any, TypeVar

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ganstyle.data.images import DatasetError, Size, scan_image_folder
from ganstyle.data.transforms import ImageTransform, check_batchable

T = TypeVar("T")


def first(items: Sequence[T], limit: int | None) -> list[T]:
    """The first ``limit`` items (all of them when limit is None)."""
    return list(items) if limit is None else list(items)[: max(0, limit)]


def _rank() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    return 0


class EpochRandom:
    """The random source for a dataset's crops, flips and random picks: one generator per sample.

    Sample ``index`` of epoch ``epoch`` draws from a generator seeded from ``(seed, epoch, index,
    rank)``, so what it draws depends neither on the worker that loads it nor on what came before,
    and a resumed epoch draws what an uninterrupted one drew. The epoch is set through
    :meth:`set_epoch` (by :class:`EpochSampler`) and kept in shared memory: DataLoader workers hold
    their own copies of the dataset (persistent ones for the whole run) and must see the epoch that
    the main process sets. The distributed rank is mixed in so that ranks loading the same index
    (``use_distributed_sampler=False``, or the padding of a ``DistributedSampler``) do not draw
    identical crops. The model's own randomness (initialisation, dropout) stays on torch's global
    generator.
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._epoch = torch.zeros((), dtype=torch.int64)
        # Without shared memory (a locked-down /dev/shm) DataLoader workers could not run either.
        with contextlib.suppress(RuntimeError):
            self._epoch.share_memory_()

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        self._epoch.fill_(epoch)

    def generator(self, index: int) -> torch.Generator:
        """A generator for sample ``index`` of the current epoch."""
        # SeedSequence hashes the four numbers, so neighbouring samples and epochs get unrelated streams.
        entropy = [self.seed % 2**64, self.epoch, index, _rank()]
        seed = int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0])
        return torch.Generator().manual_seed(seed)


class AugmentedDataset(Dataset):
    """A map-style dataset whose random augmentation comes from :attr:`random` (an :class:`EpochRandom`)."""

    def __init__(self, seed: int = 0) -> None:
        self.random = EpochRandom(seed)

    def set_epoch(self, epoch: int) -> None:
        self.random.set_epoch(epoch)


class EpochSampler(Sampler[int]):
    """Indices of ``dataset`` for one epoch: a permutation seeded with ``seed + epoch``, or in order.

    ``set_epoch`` (called by Lightning's fit loop before each epoch, with the epoch restored from a
    checkpoint on resume) chooses the permutation and passes the epoch on to the dataset's own
    ``set_epoch`` when it has one (see :class:`AugmentedDataset`). Without calls to ``set_epoch``
    every pass repeats epoch 0's order, as with ``torch.utils.data.DistributedSampler``.
    ``shuffle=False`` (``data.serial_batches``) keeps the file order; it is still a sampler of its
    own so that the epoch reaches the dataset's augmentation.
    """

    def __init__(self, dataset: Sized, seed: int = 0, shuffle: bool = True) -> None:
        self.dataset = dataset
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        set_dataset_epoch = getattr(self.dataset, "set_epoch", None)
        if callable(set_dataset_epoch):
            set_dataset_epoch(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __iter__(self) -> Iterator[int]:
        if not self.shuffle:
            return iter(range(len(self.dataset)))
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(len(self.dataset), generator=generator).tolist())


def make_dataloader(
    dataset: Dataset,
    batch_size: int,
    train: bool = False,
    shuffle: bool = True,
    num_workers: int = 0,
    pin_memory: bool = False,
    seed: int = 0,
) -> DataLoader:
    """A DataLoader for training (``train``: an :class:`EpochSampler`, shuffled unless ``shuffle`` is
    False) or evaluation (in order); workers persist across epochs.

    The loader's generator, seeded from ``seed``, only seeds the workers' global random generators
    (Lightning's ``seed_everything(workers=True)``); the data itself follows the sampler and the
    dataset's :class:`EpochRandom`.
    """
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=EpochSampler(dataset, seed, shuffle) if train else None,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,  # re-forking workers every epoch costs seconds on CPU
        generator=torch.Generator().manual_seed(seed),
    )


def check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise ValueError(f"data.batch_size must be at least 1, got {batch_size}.")


def image_transforms(
    preprocess: str, load_size: int, crop_size: int, flip: bool
) -> tuple[ImageTransform, ImageTransform]:
    """The training transform (random crop and flip) and the evaluation one (centre crop, no flip).

    Data modules build them in ``__init__``, so that a bad size or mode fails when the config is
    instantiated.
    """
    return (
        ImageTransform(preprocess, load_size, crop_size, flip, train=True),
        ImageTransform(preprocess, load_size, crop_size, flip=False, train=False),
    )


def require_folder(path: Path, what: str, layout: str) -> None:
    """Raise a :class:`DatasetError` naming ``path`` and the expected ``layout`` unless it is a folder."""
    if not path.is_dir():
        state = "is not a folder" if path.exists() else "does not exist"
        raise DatasetError(f"The {what} {path} {state}. {layout}")


def cache_folder(cache_dir: str | None, default: Path) -> Path:
    """``cache_dir`` (with ``~`` expanded) when given, else ``default``."""
    return Path(cache_dir).expanduser() if cache_dir else default


def forwarded(parent: type, arguments: dict[str, Any], **fixed: Any) -> dict[str, Any]:
    """Keyword arguments for ``parent.__init__``: ``fixed``, and the others taken from ``arguments``.

    For subclasses that repeat their parent's signature (Hydra passes every argument by name, and
    the subclasses' defaults differ) and fix a few arguments:
    ``super().__init__(**forwarded(Parent, locals(), root=...))``. A parent argument found in neither
    is a programming error and raises at once.
    """
    names = [name for name in inspect.signature(parent.__init__).parameters if name != "self"]
    missing = [name for name in names if name not in fixed and name not in arguments]
    if missing:
        raise TypeError(f"{parent.__name__} arguments not forwarded: {', '.join(missing)}.")
    return {name: fixed[name] if name in fixed else arguments[name] for name in names}


class ImageDataModule(L.LightningDataModule):
    """Train/validation/test dataloaders and the stage logic of ``setup``; see the module docstring.

    ``setup`` builds each dataset once, only for the stages that need it (``validate`` does not scan
    the training folders), after :meth:`_resolve_dataset` has checked the root.
    """

    def __init__(self) -> None:
        super().__init__()
        # {folder description: {"folder", "read", "skipped"}} of every folder scanned at setup
        # (see ganstyle.data.images.scan_image_folder); the run report lists them.
        self.image_counts: dict[str, dict] = {}
        self.train_dataset: Dataset | None = None
        self.val_dataset: Dataset | None = None
        self.test_dataset: Dataset | None = None

    @property
    def shuffle_train(self) -> bool:
        """Whether training batches are shuffled (the unpaired ``serial_batches`` turns it off)."""
        return True

    @property
    def validation_has_targets(self) -> bool | None:
        """Whether validation batches carry ground truth for the output (PSNR/SSIM can be logged).

        Read before training to choose the monitored metric (ganstyle.run.monitoring): answered from the
        config and the folder layout, without reading images. None: only ``setup`` could tell.
        """
        return False

    @property
    def min_image_size(self) -> int | None:
        """The smallest usable image side, or None when any size will do."""
        hp = self.hparams
        # Only preprocess=crop cuts crop_size from the image as it is; the other modes resize first.
        return hp.crop_size if hp.preprocess == "crop" else None

    def _scan_images(
        self, folder: Path, name: str, layout: str, transform: ImageTransform, what: str
    ) -> dict[Path, Size]:
        """Check every image of ``folder`` (:func:`~ganstyle.data.images.scan_image_folder`, at this
        module's minimum size and ``skip_bad_images``) and that ``transform`` can batch them."""
        hp = self.hparams
        sizes = scan_image_folder(
            folder,
            name,
            min_size=self.min_image_size,
            skip_bad=hp.skip_bad_images,
            expected=layout,
            counts=self.image_counts,
        )
        check_batchable(sizes, transform, hp.batch_size, what)
        return sizes

    def setup(self, stage: str | None = None) -> None:
        self._resolve_dataset()
        hp = self.hparams
        if stage in (None, "fit") and self.train_dataset is None:
            self.train_dataset = self._train_dataset()
        if stage in (None, "fit", "validate") and self.val_dataset is None:
            self.val_dataset = self._held_out_dataset("val", hp.val_max_images)
        if stage in (None, "test", "predict") and self.test_dataset is None:
            self.test_dataset = self._held_out_dataset("test", hp.test_max_images)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_dataset, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_dataset)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_dataset)

    def _resolve_dataset(self) -> None:
        """Check the dataset root (and whatever else every stage needs) at each ``setup``."""

    def _train_dataset(self) -> Dataset:
        raise NotImplementedError

    def _held_out_dataset(self, split: str, limit: int | None) -> Dataset:
        """The validation (``split="val"``) or test dataset, its first ``limit`` images."""
        raise NotImplementedError

    def _loader(self, dataset: Dataset | None, train: bool = False) -> DataLoader:
        if dataset is None:
            raise RuntimeError(
                f"{type(self).__name__}.setup() must run before its dataloaders are requested."
            )
        hp = self.hparams
        return make_dataloader(
            dataset,
            hp.batch_size,
            train=train,
            shuffle=self.shuffle_train,
            num_workers=hp.num_workers,
            pin_memory=hp.pin_memory,
            seed=hp.seed,
        )


class BuiltOnFirstUse:
    """For data modules over a generated dataset: ``prepare_data`` builds it, ``setup`` checks it first.

    Subclasses define ``_materialize()``, which builds the dataset unless it is already complete.
    ``setup`` also runs without ``prepare_data`` (called directly, or on ranks where Lightning skips
    it), so it calls it too: a quick manifest check when ``prepare_data`` or another process built it.
    """

    def prepare_data(self) -> None:
        self._materialize()

    def setup(self, stage: str | None = None) -> None:
        self._materialize()
        super().setup(stage)

    def _materialize(self) -> object:
        raise NotImplementedError
