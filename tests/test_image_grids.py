"""ImageGrids: the validation grid gathers samples across single-image batches."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from PIL import Image

from ganstyle.callbacks import ImageGrids


class _Identity(torch.nn.Module):
    visual_rows = (("real_A", "fake_B"),)

    def compute_visuals(self, batch):
        return {"real_A": batch["A"], "fake_B": -batch["A"]}


def _trainer():
    return SimpleNamespace(
        sanity_checking=False,
        current_epoch=0,
        fit_loop=SimpleNamespace(total_batch_idx=9),
        loggers=[],
    )


def _batch(value: float, size: int = 8) -> dict:
    return {"A": torch.full((1, 3, size, size), value), "A_paths": [f"{value}.png"]}


def test_validation_grid_holds_num_images_gathered_from_single_image_batches(tmp_path):
    grids = ImageGrids(dirpath=str(tmp_path), num_images=3)
    trainer, module = _trainer(), _Identity()
    for index in range(5):
        grids.on_validation_batch_end(trainer, module, None, _batch(index / 10), index)
    grids.on_validation_epoch_end(trainer, module)

    (path,) = grids.saved
    # 3 lines of 2 tiles of 8 px with 2 px padding: (2 + 3 * 10) x (2 + 2 * 10).
    assert Image.open(path).size == (22, 32)
    # The lines are the first three batches, in order (tile centre = (value + 1) / 2 * 255).
    pixels = Image.open(path).convert("RGB")
    for line, value in enumerate((0.0, 0.1, 0.2)):
        assert abs(pixels.getpixel((6, 6 + 10 * line))[0] - round((value + 1) / 2 * 255)) <= 1


def test_validation_grid_stops_at_a_batch_of_another_size_and_restarts_each_epoch(tmp_path):
    grids = ImageGrids(dirpath=str(tmp_path), num_images=4)
    trainer, module = _trainer(), _Identity()
    grids.on_validation_batch_end(trainer, module, None, _batch(0.0), 0)
    grids.on_validation_batch_end(trainer, module, None, _batch(0.5, size=12), 1)
    grids.on_validation_epoch_end(trainer, module)
    assert Image.open(grids.saved[-1]).size == (22, 12)  # one line: the 12 px image was not stacked

    grids.on_validation_batch_end(trainer, module, None, _batch(0.3), 0)
    grids.on_validation_batch_end(trainer, module, None, _batch(0.4), 1)
    grids.on_validation_epoch_end(trainer, module)
    assert Image.open(grids.saved[-1]).size == (22, 22)  # two lines, none from the last epoch
