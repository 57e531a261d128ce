"""Learning-rate schedules that torch does not ship, stepped once per epoch by the models."""

from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def linear_decay(optimizer: Optimizer, n_epochs: int = 100, n_epochs_decay: int = 100) -> LambdaLR:
    """Keep the initial rate for `n_epochs`, then decay linearly to zero over `n_epochs_decay`.

    The CycleGAN/pix2pix reference policy ``linear`` (with its ``epoch_count=1``): epoch e (0-based,
    counted by ``scheduler.step()`` calls) trains at ``lr * (1 - max(0, e + 1 - n_epochs) / (n_epochs_decay + 1))``,
    so epochs 0..n_epochs-1 use the full rate and the last of the ``n_epochs + n_epochs_decay`` epochs
    trains at ``lr / (n_epochs_decay + 1)``.
    """
    if n_epochs < 0 or n_epochs_decay < 0:
        raise ValueError(
            f"linear_decay needs n_epochs >= 0 and n_epochs_decay >= 0, got {n_epochs} and "
            f"{n_epochs_decay}; set scheduler.n_epochs / scheduler.n_epochs_decay."
        )

    def factor(epoch: int) -> float:
        # Clamped at 0: training past n_epochs + n_epochs_decay keeps a zero rate, never a negative one.
        return max(0.0, 1.0 - max(0, epoch + 1 - n_epochs) / float(n_epochs_decay + 1))

    return LambdaLR(optimizer, lr_lambda=factor)
