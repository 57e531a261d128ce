"""Which training steps log their values: the steps the Trainer's loggers write."""

from __future__ import annotations

from typing import Any

from ganstyle.utils.lightning_compat import loggers_write_this_step


def logs_this_step(trainer: Any) -> bool:
    """Whether a training step's values should be logged: always without loggers (only the
    progress bar and ``callback_metrics`` read them then), else on the steps the loggers write."""
    if not trainer.loggers:
        return True
    return loggers_write_this_step(trainer)  # Lightning's own test
