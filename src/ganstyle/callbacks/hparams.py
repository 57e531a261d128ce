"""Each run's hyperparameters next to its final metrics, for TensorBoard's HParams view.

``tensorboard --logdir <multirun folder>`` then lists every job of a sweep as one row: its
command-line overrides (the values a sweep changes; numbers as numbers) against ``final/<metric>``
(each validation metric's last value) and ``best/<monitored metric>`` (the best checkpoint's score).
The summary goes into the TensorBoard logger's event file when that logger is configured; in a
multirun without it (W&B is the default logger) into ``<run>/tensorboard/`` all the same, so a sweep is
comparable in TensorBoard whatever the logger. A single run without TensorBoard writes nothing.

Lightning's own ``log_hyperparams`` writes this summary only together with metrics, which a run has
only at its end; the config logged at its start goes to ``hparams.yaml``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only

log = logging.getLogger(__name__)


def hparam_value(text: str) -> bool | float | str:
    """An override's value as TensorBoard can filter it: a bool, a number, else the text."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return float(text)
    except ValueError:
        return text


def run_hparams(pl_module: pl.LightningModule) -> dict[str, Any]:
    """The model class and the command-line overrides of the Hydra job in this process."""
    from ganstyle.callbacks.report import job_overrides

    hparams: dict[str, Any] = {"model": type(pl_module).__name__}
    for override in job_overrides() or []:
        key, _, value = override.partition("=")
        hparams[key] = hparam_value(value)
    return hparams


def final_metrics(trainer: pl.Trainer) -> dict[str, float]:
    """``final/<name>`` for every validation metric's last value; ``best/<monitored>`` when known."""
    metrics = {
        f"final/{name}": float(value)
        for name, value in sorted(trainer.callback_metrics.items())
        if name.startswith(("val/", "test/")) and value.numel() == 1
    }
    checkpoint = trainer.checkpoint_callback
    score = getattr(checkpoint, "best_model_score", None)
    if score is not None and getattr(checkpoint, "monitor", None):
        metrics[f"best/{checkpoint.monitor}"] = float(score)
    return metrics


class HParamsSummary(pl.Callback):
    def __init__(self, log_dir: str) -> None:
        self.log_dir = Path(log_dir)  # used only in a multirun without a TensorBoard logger

    @rank_zero_only
    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.fast_dev_run:  # a smoke test: no metrics worth comparing
            return
        from ganstyle.utils.hydra_jobs import is_multirun

        loggers = [logger for logger in trainer.loggers if isinstance(logger, TensorBoardLogger)]
        if not loggers and not is_multirun():
            return
        metrics = final_metrics(trainer)
        if not metrics:
            return
        try:
            write_hparams(
                loggers[0].experiment if loggers else None,
                self.log_dir,
                run_hparams(pl_module),
                metrics,
                trainer.global_step,
            )
        except Exception as error:  # a dashboard summary must never fail a finished run
            log.warning("could not write the TensorBoard hparams summary: %s", error, exc_info=True)


def write_hparams(
    writer: Any, log_dir: Path, hparams: dict[str, Any], metrics: dict[str, float], step: int
) -> None:
    """The HParams plugin's three summaries and the metrics as scalars, in ``writer``'s event file (a
    SummaryWriter; None: a new one in ``log_dir``)."""
    from torch.utils.tensorboard import SummaryWriter
    from torch.utils.tensorboard.summary import hparams as hparams_summaries

    own = writer is None
    writer = SummaryWriter(str(log_dir)) if own else writer
    try:
        file_writer = writer._get_file_writer()  # as Lightning's TensorBoardLogger does: no sub-folder
        for summary in hparams_summaries(hparams, metrics):
            file_writer.add_summary(summary)
        for name, value in metrics.items():
            writer.add_scalar(name, value, step)
        writer.flush()
    finally:
        if own:
            writer.close()
