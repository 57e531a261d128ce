"""Save a resumable checkpoint when the run is told to stop: SIGTERM (SLURM pre-emption, `kill`,
a container shutting down) or Ctrl-C.

Lightning already turns SIGTERM into a clean stop: its handler sets a flag and the loop raises
``SIGTERMException`` once the current batch is done and its logged values have reached the loggers.
The first Ctrl-C sets the same flag (:func:`ganstyle.utils.lightning_compat.stop_after_this_batch`),
so both stop at the same point with nothing logged lost; a second Ctrl-C stops at once without saving,
since the state may then be half-way through an optimiser step. On the stop this callback flushes
every logger (``metrics.csv`` holds every row up to the stop) and then writes
``<run>/checkpoints/last.ckpt``, the file ``ckpt_path=last`` resumes from; ``train`` exits with 130
after Ctrl-C and 143 after SIGTERM.

Saving into ``last.ckpt`` rather than a separate file keeps one rule for users: ``last.ckpt`` is
always the newest state of the run, whether the run ended, was pre-empted or was interrupted.
The checkpoint may be mid-epoch; resuming finishes that epoch's remaining batches.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException

from ganstyle.utils.lightning_compat import stop_after_this_batch

log = logging.getLogger(__name__)

# The shell's convention for "terminated by signal N": 128 + N.
EXIT_CODE_SIGINT = 128 + signal.SIGINT
EXIT_CODE_SIGTERM = 128 + signal.SIGTERM


class CheckpointOnInterrupt(pl.Callback):
    """Write a resumable checkpoint to ``path`` when SIGTERM or Ctrl-C stops training.

    Args:
        path: the file to write; ``${paths.output_dir}/checkpoints/last.ckpt`` so that
            ``ckpt_path=last`` finds it.
        handle_sigint: treat the first Ctrl-C like SIGTERM (finish the batch, save, exit). False
            leaves Ctrl-C to Lightning, which stops without saving.
    """

    def __init__(self, path: str, handle_sigint: bool = True) -> None:
        self.path = Path(path)
        self.handle_sigint = handle_sigint
        self.sigint_received = False
        self.saved_path: Path | None = None
        self._previous_sigint: Any = None
        self._running_trainer: pl.Trainer | None = None

    # --- Ctrl-C --------------------------------------------------------------------------------
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Not on_fit_start: Lightning records the process's handlers after that hook and restores
        # them at teardown, which would leave this handler installed after fit.
        self.sigint_received = False
        self._running_trainer = trainer
        if self.handle_sigint and threading.current_thread() is threading.main_thread():
            self._previous_sigint = signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self.sigint_received:  # the second Ctrl-C: stop now, as Python normally would
            self._restore_sigint()
            raise KeyboardInterrupt
        self.sigint_received = True
        if self._running_trainer is not None:
            stop_after_this_batch(self._running_trainer)
        log.warning(
            "Ctrl-C: finishing the current batch, then saving %s. Press Ctrl-C again to stop at once "
            "without saving.",
            self.path,
        )

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._running_trainer = None
        self._restore_sigint()

    def _restore_sigint(self) -> None:
        if self._previous_sigint is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self._previous_sigint)
        self._previous_sigint = None

    # --- saving --------------------------------------------------------------------------------
    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self._restore_sigint()  # Lightning does not call teardown hooks after an exception
        self._running_trainer = None
        if not isinstance(exception, SIGTERMException):
            return  # a crash: the state may be half-way through a step, and last.ckpt stays as it was
        cause = "Ctrl-C" if self.sigint_received else "SIGTERM"
        for logger in trainer.loggers:  # every row logged before the stop reaches metrics.csv first
            try:
                logger.save()
            except Exception as error:  # the checkpoint matters more than a logger's file
                log.error("could not save %s's logged values: %s", type(logger).__name__, error)
        self._claim_last_checkpoint(trainer)
        try:
            trainer.save_checkpoint(self.path)
        except Exception as error:  # the stop itself must go on; the previous last.ckpt is intact
            log.error("Stopped by %s, but the checkpoint could not be saved: %s", cause, error)
            return
        self.saved_path = self.path
        log.warning(
            "Stopped by %s at epoch %d, global step %d: saved %s. Continue with the same overrides plus "
            "`hydra.run.dir=%s ckpt_path=last`.",
            cause,
            trainer.current_epoch,
            trainer.global_step,
            self.path,
            trainer.default_root_dir,  # the run folder (paths.output_dir)
        )

    def _claim_last_checkpoint(self, trainer: pl.Trainer) -> None:
        """Make ModelCheckpoint treat this file as its own last.ckpt after a resume.

        ModelCheckpoint writes ``last-v1.ckpt`` instead of overwriting a ``last.ckpt`` it did not
        write itself; its ``last_model_path`` is saved in the checkpoint, so setting it here keeps a
        resumed run writing to the same ``last.ckpt`` that ``ckpt_path=last`` reads.
        """
        for callback in trainer.checkpoint_callbacks:
            if isinstance(callback, ModelCheckpoint) and callback.save_last and callback.dirpath:
                last = Path(callback.dirpath) / f"{callback.CHECKPOINT_NAME_LAST}{callback.FILE_EXTENSION}"
                if last.resolve() == self.path.resolve():
                    callback.last_model_path = str(self.path)
