"""What the Lightning side of every model benchmark shares: a Trainer set up like a real run."""

from __future__ import annotations

import tempfile
from typing import Any

# Lightning's default: per-step values are written every 50 steps, as in a ganstyle run.
LOG_EVERY_N_STEPS = 50


def benchmark_trainer(accelerator: str, callbacks: list, **options: Any):
    """A single-device Trainer with a CSV logger (every ganstyle run has a logger; the models log
    only on the steps it writes), no checkpoints, progress bar, summary or validation."""
    import lightning.pytorch as pl
    from lightning.pytorch.loggers import CSVLogger

    root = options.pop("default_root_dir", None) or tempfile.mkdtemp(prefix="ganstyle-bench-")
    settings = {
        "accelerator": accelerator,
        "devices": 1,
        "max_epochs": 1,
        "logger": CSVLogger(root),
        "log_every_n_steps": LOG_EVERY_N_STEPS,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "limit_val_batches": 0,
        "default_root_dir": root,
        "callbacks": callbacks,
    }
    return pl.Trainer(**{**settings, **options})
