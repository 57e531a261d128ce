"""Every logged scalar, at the step it was logged, in ``<run>/metrics.csv``, whatever the loggers are.

The results report draws its curves from this file, so it must exist with ``logger=wandb``,
``logger=tensorboard`` and ``logger=none`` alike. Lightning hands logged metrics only to loggers
(and none at all when there is no logger), so the callback attaches a small recorder to
``trainer.loggers`` at setup: it sees exactly what the other loggers see, at the same steps.

Columns: ``step`` (the step loggers get: batches trained so far), ``epoch``, then one column per
metric name. A row holds the metrics of one log call; others are empty. When a resumed run continues
in the same folder, rows of the epochs it repeats are dropped and the rest kept.
"""

from __future__ import annotations

import csv
import math
from argparse import Namespace
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only

FIXED_COLUMNS = ("step", "epoch")


class MetricsRecorder(Logger):
    """A Lightning logger writing metric rows to one CSV file; appends, rewrites when a column appears."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.rows: list[dict[str, float]] = []
        self.columns: list[str] = list(FIXED_COLUMNS)
        self._written_rows = 0
        self._written_columns: list[str] = []
        self.shown_version: str | int = ""

    @property
    def name(self) -> str:
        return "metrics_history"

    @property
    def version(self) -> str | int:
        return self.shown_version

    @property
    def save_dir(self) -> str:
        return str(self.path.parent)

    def load_existing(self, keep_before_epoch: int) -> None:
        """Keep rows of an earlier run in this folder from epochs before ``keep_before_epoch``."""
        if not self.path.is_file():
            return
        with self.path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                values = {key: float(value) for key, value in row.items() if key and value not in ("", None)}
                if values.get("epoch", math.inf) < keep_before_epoch:
                    self._add(values)
        self._written_rows = 0
        self._written_columns = []  # the next save rewrites the file with exactly these rows

    def _add(self, row: dict[str, float]) -> None:
        for key in row:
            if key not in self.columns:
                self.columns.append(key)
        self.rows.append(row)

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        row = {key: float(value) for key, value in metrics.items() if _is_scalar(value)}
        row["step"] = float(step if step is not None else len(self.rows))
        self._add(row)

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
        """Hyperparameters are in the run's .hydra/config.yaml and the checkpoints; not repeated here."""

    @rank_zero_only
    def save(self) -> None:
        if self._written_rows == len(self.rows) and self._written_columns == self.columns:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rewrite = self._written_columns != self.columns
        rows = self.rows if rewrite else self.rows[self._written_rows :]
        with self.path.open("w" if rewrite else "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns)
            if rewrite:
                writer.writeheader()
            for row in rows:
                writer.writerow({key: _format(value) for key, value in row.items()})
        self._written_rows = len(self.rows)
        self._written_columns = list(self.columns)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        self.save()


class MetricsHistory(pl.Callback):
    """Record every logged scalar to ``path`` (``<run>/metrics.csv`` in conf/callbacks/default.yaml)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.recorder = MetricsRecorder(self.path)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # fast_dev_run replaces the loggers with a dummy that records nothing; so does this callback.
        if stage != "fit" or trainer.fast_dev_run or not trainer.is_global_zero:
            return
        if not any(logger is self.recorder for logger in trainer.loggers):
            # The progress bar shows the loggers' versions joined, duplicates removed: repeating the
            # first logger's version keeps "v_num" as it is without the recorder.
            self.recorder.shown_version = trainer.loggers[0].version if trainer.loggers else ""
            trainer.loggers = [*trainer.loggers, self.recorder]

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # After a checkpoint was restored, current_epoch is where the run continues.
        if trainer.is_global_zero and not trainer.fast_dev_run:
            if trainer.ckpt_path:
                self.recorder.load_existing(keep_before_epoch=trainer.current_epoch)
            self.recorder.save()


def _is_scalar(value: Any) -> bool:
    """Numbers and one-element tensors (NaN and inf included: they are what was logged)."""
    if hasattr(value, "numel") and value.numel() != 1:
        return False
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _format(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)
