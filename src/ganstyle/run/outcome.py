"""What a finished fit says about itself: whether it trained at all, and whether its result is worse
than doing nothing.

A run that trained no batch (every epoch empty, or a limit that rounds to zero batches) would otherwise
end "finished" with untrained weights saved and translated; :func:`check_trained_something` turns it
into an error. A run whose training diverged still saves a "best" checkpoint (the least bad epoch);
:func:`result_warnings` names what looks wrong so the user reads it in the log and the summary
instead of trusting the file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ganstyle.config import ConfigError

# A training loss term whose last logged value is this many times its first is said to have exploded.
# GAN losses move by a factor of a few over a healthy run (LSGAN terms sit near 0.25-1, L1 terms
# shrink); a hundredfold rise means the updates left the region the losses were built for.
EXPLODED_RATIO = 100.0
# Metrics with an untranslated-input baseline logged beside them: "<metric>_identity".
BASELINED_METRICS = ("val/psnr_B",)


class TrainedNothingError(ConfigError):
    """The fit ended without a single optimisation step."""


def check_trained_something(global_step: int, fast_dev_run: bool, interrupted: bool) -> None:
    """Raise :class:`TrainedNothingError` when a fit that ran to its end took no optimisation step."""
    if global_step > 0 or fast_dev_run or interrupted:
        return
    raise TrainedNothingError(
        "Training ran no optimisation step: every training epoch was empty (for example "
        "`trainer.limit_train_batches` is a fraction that rounds to zero batches, or `trainer.max_time` "
        "ran out before the first batch), so the saved weights are untrained and no translations were "
        "written. Give the run batches to train on: leave `trainer.limit_train_batches` unset or raise "
        "it, and check that the training folders hold at least `data.batch_size` images."
    )


def result_warnings(final_metrics: Mapping[str, float], history: Sequence[Mapping[str, float]]) -> list[str]:
    """Sentences about a result that looks wrong, from the final callback metrics and the logged rows.

    - a metric with a do-nothing baseline (``val/psnr_B`` next to ``val/psnr_B_identity``) that ended
      below it: the model makes images worse than returning its input;
    - a training loss term (``train/loss*``) whose last value is non-finite or :data:`EXPLODED_RATIO`
      times its first: the run diverged (a learning rate too high is the usual cause).
    """
    warnings = []
    for metric in BASELINED_METRICS:
        value, baseline = final_metrics.get(metric), final_metrics.get(f"{metric}_identity")
        if value is not None and baseline is not None and value < baseline:
            warnings.append(
                f"{metric} ended at {value:.2f}, below the untranslated input's {baseline:.2f} "
                f"({metric}_identity): the model's output is further from the target than its input is."
            )
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    for row in history:
        for key, value in row.items():
            if key.startswith("train/loss"):
                first.setdefault(key, value)
                last[key] = value
    exploded = []
    for key, value in last.items():
        start = first[key]
        if not math.isfinite(value):
            exploded.append(f"{key}={value}")
        elif abs(start) > 0 and abs(value) >= EXPLODED_RATIO * abs(start) and abs(value) > 1.0:
            exploded.append(f"{key} {start:.3g} -> {value:.3g}")
    if exploded:
        warnings.append(
            f"training losses exploded ({', '.join(exploded)}): the run diverged, so its checkpoints, "
            "'best' included, hold a broken model. Lower the learning rate (`model.optimizer.lr`)."
        )
    if warnings:
        warnings.append(
            "The checkpoints were saved as usual; do not take this run's best checkpoint for a trained "
            "model until these are explained."
        )
    return warnings
