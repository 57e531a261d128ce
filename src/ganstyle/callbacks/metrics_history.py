"""Every logged scalar, at the step it was logged, in ``<run>/metrics.csv``, whatever the loggers are.

The results report draws its curves from this file, so it must exist with ``logger=wandb``,
``logger=tensorboard`` and ``logger=none`` alike. Lightning hands logged metrics only to loggers
(and none at all when there is no logger), so the callback attaches a small recorder to
``trainer.loggers`` at setup: it sees exactly what the other loggers see, at the same steps.

Columns: ``step`` (the step loggers get: batches trained so far), ``epoch``, then one column per
metric name. A row holds the metrics of one log call; others are empty. When a resumed run continues
in the same folder it keeps the earlier rows; at its first logged row it drops those at or after that
step (a run that went on past the checkpoint and stopped left them; they are logged again), so no step
appears twice. Nothing is written before training starts (Lightning saves every logger once before
``on_train_start``; the resumed run has not read its rows back then), and rewrites go through a
temporary file, so a resume that fails early or mid-write leaves the earlier rows on disk.
"""

from __future__ import annotations

import csv
from argparse import Namespace
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only

from ganstyle.utils.metrics_csv import read_metrics_csv, rows_logged_before, write_csv_atomically

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
        self._continues_earlier_rows = False
        self._started = False
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

    def start(self, continue_file: bool) -> None:
        """Begin writing the file; ``continue_file``: a resumed run's, whose earlier rows are kept."""
        if continue_file:
            self.load_existing()
        self._started = True
        self.save()

    def load_existing(self) -> None:
        """Take over the rows a resumed run wrote in this folder; see :meth:`log_metrics` for which stay."""
        fieldnames, rows = read_metrics_csv(self.path)
        self.columns = list(dict.fromkeys([*FIXED_COLUMNS, *fieldnames]))
        for row in rows:
            self._add({key: float(value) for key, value in row.items() if value not in ("", None)})
        # The file holds exactly these rows: nothing to write until a row is logged or dropped.
        self._written_rows = len(self.rows)
        self._written_columns = list(self.columns) if fieldnames == self.columns else []
        self._continues_earlier_rows = bool(rows)

    def _add(self, row: dict[str, float]) -> None:
        for key in row:
            if key not in self.columns:
                self.columns.append(key)
        self.rows.append(row)

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        row = {key: float(value) for key, value in metrics.items() if _is_scalar(value)}
        row["step"] = float(step if step is not None else len(self.rows))
        if self._continues_earlier_rows:
            self._continues_earlier_rows = False
            kept = rows_logged_before(self.rows, row["step"])
            if len(kept) < len(self.rows):
                self.rows = kept
                self._written_columns = []  # rewrite: the dropped rows are in the file
        self._add(row)

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
        """Hyperparameters are in the run's .hydra/config.yaml and the checkpoints; not repeated here."""

    @rank_zero_only
    def save(self) -> None:
        if not self._started:
            return
        if self._written_rows == len(self.rows) and self._written_columns == self.columns:
            return
        # A new column or dropped rows rewrite the whole file, replaced only once complete; appending
        # never touches the rows already written.
        rewrite = self._written_columns != self.columns
        rows = [
            {key: _format(value) for key, value in row.items()}
            for row in (self.rows if rewrite else self.rows[self._written_rows :])
        ]
        if rewrite:
            write_csv_atomically(self.path, self.columns, rows)
        else:
            with self.path.open("a", newline="") as handle:
                csv.DictWriter(handle, fieldnames=self.columns).writerows(rows)
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
        if trainer.is_global_zero and not trainer.fast_dev_run:
            # After a checkpoint was restored (trainer.ckpt_path is set from then on); the file
            # exists from here, with the header at least.
            self.recorder.start(continue_file=bool(trainer.ckpt_path))


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
