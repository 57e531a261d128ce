"""Learning-rate schedules that torch does not ship, stepped once per epoch by the models."""

from __future__ import annotations

import logging
import math
from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

log = logging.getLogger(__name__)
_REPORTED: set[tuple[int, int, int]] = set()


def fit_to_run(n_epochs: int, n_epochs_decay: int, total_epochs: int) -> tuple[int, int]:
    """The constant and decay lengths of an ``n_epochs + n_epochs_decay`` schedule stretched or
    shrunk to ``total_epochs``, keeping the constant part's share of the run.

    The reference's 100 + 100 over a 10-epoch run becomes 5 + 5: constant for the first half, then
    linear decay. A run as long as the schedule keeps it unchanged.
    """
    planned = n_epochs + n_epochs_decay
    if planned == total_epochs or planned == 0:
        return n_epochs, n_epochs_decay
    constant = math.floor(total_epochs * n_epochs / planned + 0.5)
    # A schedule with both parts keeps both whenever the run has room (3 + 1 over 2 epochs: 1 + 1).
    lowest = 1 if n_epochs > 0 and total_epochs > 1 else 0
    highest = total_epochs - 1 if n_epochs_decay > 0 and total_epochs > 1 else total_epochs
    constant = min(max(constant, lowest), highest)
    return constant, total_epochs - constant


def linear_decay(
    optimizer: Optimizer, n_epochs: int = 100, n_epochs_decay: int = 100, total_epochs: int | None = None
) -> LambdaLR:
    """Keep the initial rate for `n_epochs`, then decay linearly to zero over `n_epochs_decay`.

    The CycleGAN/pix2pix reference policy ``linear`` (with its ``epoch_count=1``): epoch e (0-based,
    counted by ``scheduler.step()`` calls) trains at ``lr * (1 - max(0, e + 1 - n_epochs) / (n_epochs_decay + 1))``,
    so epochs 0..n_epochs-1 use the full rate and the last of the ``n_epochs + n_epochs_decay`` epochs
    trains at ``lr / (n_epochs_decay + 1)``.

    ``total_epochs`` (``trainer.max_epochs`` in conf/scheduler/linear.yaml): when the run is longer
    or shorter than ``n_epochs + n_epochs_decay``, both parts are scaled to it (:func:`fit_to_run`),
    so no epoch trains at a zero rate and the decay always happens. None keeps the lengths as given
    (checkpoints written before this argument existed).
    """
    if n_epochs < 0 or n_epochs_decay < 0:
        raise ValueError(
            f"linear_decay needs n_epochs >= 0 and n_epochs_decay >= 0, got {n_epochs} and "
            f"{n_epochs_decay}; set scheduler.n_epochs / scheduler.n_epochs_decay."
        )
    if total_epochs is not None and total_epochs > 0:
        fitted = fit_to_run(n_epochs, n_epochs_decay, total_epochs)
        if fitted != (n_epochs, n_epochs_decay) and (n_epochs, n_epochs_decay, total_epochs) not in _REPORTED:
            _REPORTED.add((n_epochs, n_epochs_decay, total_epochs))  # once, not once per optimiser
            log.info(
                "learning rate: scheduler.n_epochs=%d + n_epochs_decay=%d scaled to the run's %d epochs: "
                "constant for %d, then linear decay over %d",
                n_epochs,
                n_epochs_decay,
                total_epochs,
                *fitted,
            )
        n_epochs, n_epochs_decay = fitted

    def factor(epoch: int) -> float:
        # Clamped at 0: training past n_epochs + n_epochs_decay keeps a zero rate, never a negative one.
        return max(0.0, 1.0 - max(0, epoch + 1 - n_epochs) / float(n_epochs_decay + 1))

    return LambdaLR(optimizer, lr_lambda=factor)


def with_schedule_length_of_old_checkpoints(scheduler: dict[str, Any] | None) -> dict[str, Any] | None:
    """A saved ``linear_decay`` config without ``total_epochs`` (older checkpoints) as today's config
    of the same schedule: its run length was ``n_epochs + n_epochs_decay``, which scaling leaves as is."""
    if not isinstance(scheduler, dict) or not str(scheduler.get("_target_", "")).endswith(".linear_decay"):
        return scheduler
    if "total_epochs" in scheduler:
        return scheduler
    planned = int(scheduler.get("n_epochs", 100)) + int(scheduler.get("n_epochs_decay", 100))
    return {**scheduler, "total_epochs": planned}
