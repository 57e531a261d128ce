"""At the end of training, translate the whole test set and write the results as image files.

The model says what to translate through ``test_translations(batch)``, which returns
``{folder name: (images in [-1, 1], source file paths)}`` for the folders it declares in
``test_translation_folders`` (none: the test set is not loaded); each output keeps its source file name
(as PNG), so results line up with the inputs. Two sources with one stem (``a.jpg`` and ``a.png``) would
write the same ``a.png``: the later one keeps its extension in the name (``a.png.png``) instead of
overwriting the earlier result.
"""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_only
from torchvision.utils import save_image


class TranslateTestSet(pl.Callback):
    def __init__(self, dirpath: str, max_images: int | None = None) -> None:
        self.dirpath = Path(dirpath)
        self.max_images = max_images
        self.written: dict[str, int] = {}
        self.sources_by_output: dict[Path, str] = {}  # which source wrote each file in this run

    def output_file(self, out_dir: Path, source: str) -> Path:
        """``<stem>.png``, or ``<name>.png`` when another source of this run already took the stem."""
        path = out_dir / f"{Path(source).stem}.png"
        if self.sources_by_output.setdefault(path, source) != source:
            path = out_dir / f"{Path(source).name}.png"
            self.sources_by_output[path] = source
        return path

    @rank_zero_only
    @torch.no_grad()
    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        datamodule = trainer.datamodule
        if datamodule is None or trainer.fast_dev_run or not pl_module.test_translation_folders:
            return
        if trainer.global_step == 0:  # untrained weights: their translations would pass for results
            return
        datamodule.setup("test")
        pl_module.eval()
        for batch in datamodule.test_dataloader():
            batch = {
                k: v.to(pl_module.device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()
            }
            for folder, (images, paths) in pl_module.test_translations(batch).items():
                out_dir = self.dirpath / folder
                out_dir.mkdir(parents=True, exist_ok=True)
                for image, source in zip(images, paths):
                    if self.max_images is not None and self.written.get(folder, 0) >= self.max_images:
                        break
                    save_image(((image + 1.0) / 2.0).clamp(0.0, 1.0), self.output_file(out_dir, source))
                    self.written[folder] = self.written.get(folder, 0) + 1
