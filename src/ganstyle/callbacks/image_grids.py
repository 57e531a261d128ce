"""Image grids of a model's visuals, saved as PNGs and sent to every logger that takes images.

A model lists its visuals in ``visual_rows`` (e.g. CycleGAN: real_A, fake_B, rec_A | real_B,
fake_A, rec_B) and returns them from ``compute_visuals(batch)``. One grid line per sample holds all
visuals side by side, so a grid reads left to right like the algorithm.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_only
from torchvision.utils import make_grid, save_image


def visuals_to_grid(visuals: dict[str, torch.Tensor], rows: tuple[tuple[str, ...], ...]) -> torch.Tensor:
    """A (3, H, W) grid in [0, 1]: one line per sample, the visuals of `rows` in order."""
    names = [name for row in rows for name in row if name in visuals]
    count = min(visuals[name].shape[0] for name in names)
    tiles = [visuals[name][index].detach().float().cpu() for index in range(count) for name in names]
    tiles = [((tile + 1.0) / 2.0).clamp(0.0, 1.0).expand(3, -1, -1) for tile in tiles]
    return make_grid(tiles, nrow=len(names), padding=2, pad_value=1.0)


def log_image_to_loggers(trainer: pl.Trainer, key: str, path: Path, grid: torch.Tensor, caption: str) -> None:
    """W&B gets the PNG, TensorBoard the tensor; loggers without images are skipped."""
    from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key=key, images=[str(path)], caption=[caption], step=trainer.global_step)
        elif isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(key, grid, global_step=trainer.global_step)


class ImageGrids(pl.Callback):
    def __init__(self, dirpath: str, every_n_batches: int = 200, num_images: int = 4) -> None:
        if every_n_batches <= 0 or num_images <= 0:
            raise ValueError("ImageGrids needs every_n_batches > 0 and num_images > 0.")
        self.dirpath = Path(dirpath)
        self.every_n_batches = every_n_batches
        self.num_images = num_images
        self._val_batch: dict[str, Any] | None = None
        self._latest_train_batch: dict[str, Any] | None = None
        self.saved: list[Path] = []

    def _first(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {
            key: value[: self.num_images] if isinstance(value, torch.Tensor | list) else value
            for key, value in batch.items()
        }

    @rank_zero_only
    def _save(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: dict, stage: str) -> None:
        was_training = pl_module.training
        # Eval mode for a fixed picture; the pix2pix model overrides this to keep dropout on.
        pl_module.eval()
        try:
            visuals = pl_module.compute_visuals(batch)
        finally:
            pl_module.train(was_training)
        grid = visuals_to_grid(visuals, pl_module.visual_rows)
        self.dirpath.mkdir(parents=True, exist_ok=True)
        name = f"{stage}_epoch{trainer.current_epoch:03d}_batch{trainer.fit_loop.total_batch_idx:06d}.png"
        path = self.dirpath / name
        save_image(grid, path)
        self.saved.append(path)
        caption = " | ".join(" ".join(row) for row in pl_module.visual_rows)
        log_image_to_loggers(trainer, f"{stage}/images", path, grid, caption)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.sanity_checking or trainer.fast_dev_run:
            return
        self._latest_train_batch = self._first(batch)
        if (trainer.fit_loop.total_batch_idx + 1) % self.every_n_batches == 0:
            self._save(trainer, pl_module, self._latest_train_batch, "train")

    def on_train_end(self, trainer, pl_module) -> None:
        # A run shorter than every_n_batches that never validates (a small dataset with a schedule
        # made for a large one) would otherwise end without a single picture of what it learnt.
        if not self.saved and self._latest_train_batch is not None and not trainer.fast_dev_run:
            self._save(trainer, pl_module, self._latest_train_batch, "train")

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        # Validation batches are often a single image (the quick start's are), so the grid gathers
        # the first `num_images` samples across batches instead of taking the first batch alone.
        if batch_idx == 0:
            self._val_batch = None
        self._val_batch = self._gather(self._val_batch, self._first(batch))

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if self._val_batch is not None and not trainer.sanity_checking:
            self._save(trainer, pl_module, self._val_batch, "val")
        self._val_batch = None

    def _gather(self, gathered: dict[str, Any] | None, batch: dict[str, Any]) -> dict[str, Any] | None:
        """`gathered` plus the samples of `batch`, up to `num_images`; unchanged once full or when
        the new batch cannot be stacked onto it (images of another size, other keys)."""
        if gathered is None:
            return batch
        tensors = [key for key, value in gathered.items() if isinstance(value, torch.Tensor)]
        if not tensors or gathered[tensors[0]].shape[0] >= self.num_images or batch.keys() != gathered.keys():
            return gathered
        if any(gathered[key].shape[1:] != batch[key].shape[1:] for key in tensors):
            return gathered
        room = self.num_images - gathered[tensors[0]].shape[0]
        merged = dict(gathered)
        for key, value in gathered.items():
            if isinstance(value, torch.Tensor):
                merged[key] = torch.cat([value, batch[key][:room].to(value.device)])
            elif isinstance(value, list):
                merged[key] = value + list(batch[key][:room])
        return merged
