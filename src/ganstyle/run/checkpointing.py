"""Checkpoints that survive crashes, full disks and diverged training.

- :class:`AtomicCheckpointIO` (the trainer's ``plugins.checkpoint_io``) writes every checkpoint through
  :func:`~ganstyle.utils.atomic_files.atomic_write` (a temporary file beside it, fsynced, renamed over
  the old one). A process killed at any moment (SIGKILL, power loss after the rename) leaves either
  the previous checkpoint or the new one, never a truncated file. It refuses to write weights holding
  NaN or inf, and a failed write (``ENOSPC``) raises :class:`CheckpointWriteError` with the previous
  file untouched.
- :class:`LastAndBestCheckpoint` is Lightning's ModelCheckpoint with ``last.ckpt`` written at every
  save point, not only when the monitored metric improved, and hard-linked to the best checkpoint
  when both hold the same step (one file's disk space instead of two).
- :func:`slurm_environment` enables Lightning's SLURM requeue when running under SLURM.

Resuming (which checkpoint, whether it fits the configured model) lives in ``ganstyle.run.resuming``.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint

from ganstyle.config import ConfigError, listed
from ganstyle.run.monitoring import MonitoredMetricNotLoggedError, not_logged_message
from ganstyle.utils.atomic_files import atomic_hard_link, atomic_write

log = logging.getLogger(__name__)


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written (full disk, no permission); the previous file is unchanged."""


class NonFiniteCheckpointError(RuntimeError):
    """A checkpoint was not written because the weights hold NaN or inf."""


# --- writing -------------------------------------------------------------------------------------
def non_finite_tensors(state_dict: Mapping[str, Any]) -> list[str]:
    """Names of floating-point tensors in ``state_dict`` that hold a NaN or an inf."""
    return [
        name
        for name, value in state_dict.items()
        if isinstance(value, torch.Tensor)
        and value.is_floating_point()
        and not bool(torch.isfinite(value).all())
    ]


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` that replaces ``path`` all at once or not at all (:func:`atomic_write`); a
    failed write raises :class:`CheckpointWriteError` saying what to do, with ``path`` unchanged."""
    path = Path(path)
    try:
        atomic_write(path, lambda file: torch.save(obj, file))
    except (OSError, RuntimeError) as error:
        os_error = error if isinstance(error, OSError) else _os_error_behind(error)
        if os_error is None:  # a RuntimeError unrelated to the file (e.g. an unpicklable object)
            raise
        raise CheckpointWriteError(_write_error_message(path, os_error)) from error


def link_checkpoint(source: str | os.PathLike, path: str | os.PathLike) -> None:
    """:func:`atomic_hard_link`, with a failure told as a :class:`CheckpointWriteError`."""
    try:
        atomic_hard_link(source, path)
    except OSError as error:
        raise CheckpointWriteError(_write_error_message(Path(path), error)) from error


def _os_error_behind(error: BaseException) -> OSError | None:
    """torch.save reports a failed write as a RuntimeError whose context is the OSError."""
    seen = error
    while seen is not None:
        if isinstance(seen, OSError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _write_error_message(path: Path, error: OSError) -> str:
    previous = (
        f"The previous {path.name} is unchanged and still loads"
        if path.is_file()
        else f"No earlier {path.name} existed"
    )
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        cause = "the disk (or your quota) is full"
        fix = (
            "Free space there, or move the outputs with `hydra.run.dir=<folder on a larger disk>` "
            "(and keep fewer checkpoints with `callbacks.model_checkpoint.save_top_k=0`)"
        )
    elif error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        cause = "the folder is not writable"
        fix = "Make it writable or point `hydra.run.dir` at a writable folder"
    else:
        cause = error.strerror or str(error)
        fix = "Check the folder and the filesystem"
    return (
        f"Could not write the checkpoint {path}: {cause} ({error}). {previous}. {fix}, then continue "
        f"with `ckpt_path=last` and the same `hydra.run.dir`."
    )


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch checkpoint IO with atomic local writes and a refusal to save NaN weights.

    Every checkpoint the trainer writes goes through it: ModelCheckpoint's ``last.ckpt`` and top-k
    files, the SIGTERM/SIGINT checkpoint and Lightning's SLURM ``hpc_ckpt_*.ckpt``. Remote paths
    (``s3://...``) fall back to Lightning's own fsspec transaction.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None or "://" in str(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        bad = non_finite_tensors(checkpoint.get("state_dict", {}))
        if bad:
            path = Path(path)
            kept = f"the previous {path.name} is kept" if path.is_file() else f"no {path.name} is written"
            raise NonFiniteCheckpointError(
                f"Refusing to write the checkpoint {path}: {len(bad)} weight tensors hold NaN or inf "
                f"({listed(bad)}); {kept}. Training diverged although every loss was finite (NaN "
                "gradients from a finite loss, or an overflow in the optimiser): lower model.optimizer.lr, "
                "use trainer.precision=32-true, or set trainer.gradient_clip_val if the model clips, then "
                "resume from the last good checkpoint."
            )
        atomic_torch_save(checkpoint, path)


class LastAndBestCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint, except that ``last.ckpt`` is written at every save point and
    shares its file with a checkpoint written at the same step.

    Lightning 2.6 (checked against 2.6.6, whose ``on_validation_end`` and ``on_train_epoch_end`` still
    gate it so; no public option changes that) writes ``last.ckpt`` only when a top-k checkpoint was
    written at the same step, i.e. when the monitored metric improved (or at the end of training). A run whose metric plateaued and
    then crashed would resume from its best epoch and silently lose the epochs since. Here, whenever
    an epoch (or ``every_n_train_steps``) save point passes without any file written, ``last.ckpt``
    is written anyway; top-k selection is unchanged.

    When the metric improved, the top-k file and ``last.ckpt`` hold the same step: ``last.ckpt`` is
    then a hard link to that file (:func:`~ganstyle.utils.atomic_files.atomic_hard_link`) instead of a
    second copy, provided :class:`AtomicCheckpointIO` (the default plugin) writes the checkpoints. That halves the
    checkpoint disk use of a run whose last epoch is its best (a quick-start CycleGAN run: one 190 MB
    file instead of two). Unlike Lightning's ``save_last="link"`` (a symbolic link) it survives the
    best file being replaced or deleted, and moving the run folder. The two differ only in the
    callback state stored inside: the shared file records the ``last_model_path`` of the step
    before, which resuming does not need (``last.ckpt`` is found by name).

    A monitored metric missing after a validation (one that could not be checked before training,
    see ganstyle.run.monitoring) writes ``last.ckpt`` first and then stops the run with a
    :class:`~ganstyle.run.monitoring.MonitoredMetricNotLoggedError` naming the metrics that are logged,
    instead of Lightning's MisconfigurationException. A metric that ``monitor.metric=auto`` chose
    (``stop_if_monitor_missing=False``; e.g. FID, which needs two validation images) only warns: the
    run goes on with ``last.ckpt`` alone, as auto does when nothing can be monitored.
    """

    def __init__(self, *args: Any, stop_if_monitor_missing: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stop_if_monitor_missing = stop_if_monitor_missing
        self._warned_missing = False

    def _save_topk_checkpoint(self, trainer: pl.Trainer, monitor_candidates: dict[str, Any]) -> None:
        missing = self.save_top_k != 0 and self.monitor is not None and self.monitor not in monitor_candidates
        if missing and trainer.fit_loop.epoch_loop.val_loop._has_run and not self.stop_if_monitor_missing:
            if not self._warned_missing:
                log.warning(
                    "%s (chosen by monitor.metric=auto) was not logged by this validation, so no best "
                    "checkpoint is kept; checkpoints/last.ckpt is still written every epoch.",
                    self.monitor,
                )
                self._warned_missing = True
            return
        if missing and trainer.fit_loop.epoch_loop.val_loop._has_run:
            self._save_last_checkpoint(trainer, monitor_candidates)  # nothing of this epoch is lost
            raise MonitoredMetricNotLoggedError(
                not_logged_message(self.monitor, monitor_candidates, "was not logged by the first validation")
                + f" This epoch is saved in {self.last_model_path}; continue with `ckpt_path=last` and the "
                "same `hydra.run.dir`."
            )
        super()._save_topk_checkpoint(trainer, monitor_candidates)

    def _save_last_checkpoint(self, trainer: pl.Trainer, monitor_candidates: dict[str, Any]) -> None:
        written_now = (
            self._last_checkpoint_saved if self._last_global_step_saved == trainer.global_step else ""
        )
        filepath = self.format_checkpoint_name(monitor_candidates, self.CHECKPOINT_NAME_LAST)
        if (
            not self.save_last
            or self._enable_version_counter
            # Only a writer that replaces files (never rewrites one in place) keeps the linked best intact.
            or not isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)
            or not written_now
            or "://" in str(filepath)
            or os.path.abspath(written_now) == os.path.abspath(filepath)
        ):
            super()._save_last_checkpoint(trainer, monitor_candidates)
            return
        previous, self.last_model_path = self.last_model_path, filepath
        if trainer.is_global_zero:
            link_checkpoint(written_now, filepath)
        trainer.strategy.barrier()
        if previous and self._should_remove_checkpoint(trainer, previous, filepath):
            self._remove_checkpoint(trainer, previous)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        super().on_train_batch_end(trainer, pl_module, *args)
        every = self._every_n_train_steps
        if every >= 1 and trainer.global_step % every == 0:
            self._save_last_if_nothing_was_saved(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer) and self._epoch_save_due(trainer):
            self._save_last_if_nothing_was_saved(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer) and self._epoch_save_due(trainer):
            self._save_last_if_nothing_was_saved(trainer)

    def _epoch_save_due(self, trainer: pl.Trainer) -> bool:
        return self._every_n_epochs >= 1 and (trainer.current_epoch + 1) % self._every_n_epochs == 0

    def _save_last_if_nothing_was_saved(self, trainer: pl.Trainer) -> None:
        # _should_skip_saving_checkpoint is also true when a file was already written at this step.
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))


def slurm_environment(auto_requeue: bool = True, requeue_signal: str = "SIGUSR1") -> Any | None:
    """Lightning's SLURMEnvironment under SLURM (``srun``/``sbatch`` with tasks), else None (skipped).

    With ``auto_requeue`` Lightning saves ``<run dir>/hpc_ckpt_<n>.ckpt`` on ``requeue_signal`` (ask
    SLURM for it ahead of the time limit: ``#SBATCH --signal=SIGUSR1@90``) and requeues the job;
    the requeued job resumes from it (see :func:`slurm_requeue_checkpoint`). Set it false when the
    cluster's own tooling requeues jobs.
    """
    from lightning.fabric.plugins.environments import SLURMEnvironment

    if not SLURMEnvironment.detect():
        return None
    try:
        signum = signal.Signals[requeue_signal]
    except KeyError as error:
        raise ConfigError(
            f"plugins.slurm.requeue_signal={requeue_signal!r} is not a signal name; use e.g. SIGUSR1."
        ) from error
    return SLURMEnvironment(auto_requeue=auto_requeue, requeue_signal=signum)
