"""Stop a run whose losses stay NaN or inf, naming the loss term and the last good checkpoint.

The skipping itself happens in the model: every ganstyle model passes its loss terms to
:meth:`ganstyle.models.base.ImageModel.finite_or_skip` before ``backward``/``optimizer.step``, which
skips the update (the weights keep their last finite values) and counts it. One bad batch (a NaN in
an input image, an fp16 overflow) then costs one step. This callback logs the count as
``train/skipped_steps`` and stops training once ``max_consecutive`` batches in a row were skipped:
a streak means the model diverged, and more steps would only burn compute.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from ganstyle.models.base import ImageModel

log = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """Training stopped because loss terms stayed NaN or inf for too many batches in a row."""


class NanGuard(pl.Callback):
    """Count batches whose update was skipped for a non-finite loss; stop after a streak.

    Args:
        max_consecutive: batches in a row with a skipped update that stop the run. A single bad
            batch is tolerated; ten in a row (the default) is divergence, not bad luck.
    """

    def __init__(self, max_consecutive: int = 10) -> None:
        if int(max_consecutive) < 1:
            raise ValueError(
                f"callbacks.nan_guard.max_consecutive={max_consecutive} must be at least 1 (the number "
                "of batches in a row with a non-finite loss that stops the run); remove the callback "
                "with `~callbacks.nan_guard` to never stop."
            )
        self.max_consecutive = int(max_consecutive)
        self.streak = 0
        self._skipped_before = 0

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx
    ) -> None:
        if not isinstance(pl_module, ImageModel):  # another LightningModule: nothing to guard
            return
        self._skipped_before = pl_module.skipped_steps
        pl_module.clear_nonfinite_terms()  # so that messages describe this batch only

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx
    ) -> None:
        if not isinstance(pl_module, ImageModel):
            return
        skipped = pl_module.skipped_steps
        if pl_module.logs_this_step():  # a running count: skipping the other steps loses nothing
            pl_module.log("train/skipped_steps", float(skipped), on_step=True, on_epoch=False, batch_size=1)
        if skipped == self._skipped_before:
            self.streak = 0
            return
        self.streak += 1
        terms = describe_steps(pl_module.nonfinite_terms())
        if self.streak == 1:
            log.warning(
                "Skipped the update of batch %d of epoch %d for a non-finite loss (%s). Training "
                "continues; %d such batches in a row stop the run.",
                batch_idx,
                trainer.current_epoch,
                terms,
                self.max_consecutive,
            )
        if self.streak >= self.max_consecutive:
            raise NonFiniteLossError(self.stop_message(trainer, terms, batch_idx))

    def stop_message(self, trainer: pl.Trainer, terms: str, batch_idx: int) -> str:
        return (
            f"Training stopped: {self.streak} batches in a row had a non-finite loss, so none of them "
            f"updated the weights (the last, batch {batch_idx} of epoch {trainer.current_epoch}: {terms}). "
            f"The weights still hold their last finite values; {last_good_checkpoint(trainer)}. Usual "
            "causes: a learning rate too high "
            "for these loss weights (model.optimizer.lr), a loss weight far from its paper value, an fp16 "
            "overflow (use trainer.precision=32-true or bf16-mixed), or NaN in the input data. Raise "
            "callbacks.nan_guard.max_consecutive to tolerate longer streaks."
        )

    def state_dict(self) -> dict[str, Any]:
        return {"streak": self.streak}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.streak = int(state_dict.get("streak", 0))


def describe_steps(steps: dict[str, dict[str, float]]) -> str:
    """``generator step: loss_cycle_A=nan; discriminator step: loss_D_A=inf``."""
    described = [
        f"{optimizer} step: " + ", ".join(f"{name}={value}" for name, value in terms.items())
        for optimizer, terms in steps.items()
    ]
    return "; ".join(described) or "terms not recorded"


def last_good_checkpoint(trainer: pl.Trainer) -> str:
    """Where to resume from, in words: the last checkpoint written (never a non-finite one)."""
    callback = trainer.checkpoint_callback
    for path in (getattr(callback, "last_model_path", ""), getattr(callback, "best_model_path", "")):
        if path and Path(path).is_file():
            return f"the last good checkpoint is {path} (resume with ckpt_path={path} after fixing the cause)"
    return "no checkpoint has been written yet in this run"
