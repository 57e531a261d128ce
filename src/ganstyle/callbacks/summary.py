"""Print where a finished run's outputs went: checkpoints, images, translations, logs."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_only


class RunSummary(pl.Callback):
    def __init__(self, output_dir: str) -> None:
        self.output_dir = Path(output_dir)

    def describe(self, trainer: pl.Trainer) -> list[tuple[str, str]]:
        rows = [("run folder", str(self.output_dir))]
        checkpoint = trainer.checkpoint_callback
        if checkpoint is not None:
            if checkpoint.last_model_path:
                rows.append(("last checkpoint", checkpoint.last_model_path))
            if checkpoint.best_model_path:
                score = checkpoint.best_model_score
                best = f" ({checkpoint.monitor}={float(score):.4g})" if score is not None else ""
                rows.append(("best checkpoint", checkpoint.best_model_path + best))
        for name in ("images", "translations", "wandb", "tensorboard", "csv"):
            if (self.output_dir / name).exists():
                rows.append((name, str(self.output_dir / name)))
        for key, value in sorted(trainer.callback_metrics.items()):
            if key.startswith("val/"):
                rows.append((key, f"{float(value):.4g}"))
        return rows

    @rank_zero_only
    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        from rich.console import Console
        from rich.table import Table

        table = Table(title="ganstyle run finished", show_header=False)
        for name, value in self.describe(trainer):
            table.add_row(name, value)
        Console().print(table)
