"""FID/KID in the validation loop, per translation direction, for every model.

A model names the domains it generates (``distribution_domains``, e.g. CycleGAN: ``("B", "A")``) and
returns ``{domain: (real images, generated images)}`` from ``distribution_samples(batch)``. This module
accumulates them over the validation set and logs ``val/fid_<domain>``, ``val/kid_<domain>`` and the
best values so far (``val/fid_<domain>_best``; papers often report the best FID over training, so both
are kept). Real-image statistics are computed during the first validation epoch and reused after.

``metrics.fid`` decides whether this runs: ``auto`` (on when torch-fidelity's Inception weights are
found, else a warning and the ground-truth metric is monitored), ``true`` (required: a missing file
stops the run before training) or ``false``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ganstyle.config import ConfigError
from ganstyle.metrics.fid import DistributionMetrics, build_inception_feature_extractor
from ganstyle.weights import WeightsNotFoundError, keep_out_of_checkpoints, resolve_weights

log = logging.getLogger(__name__)

FID_MODES = ("auto", True, False)


def fid_enabled(metrics_cfg: Mapping[str, Any] | None) -> bool:
    """Decide whether FID/KID run: honours ``metrics.fid`` and the presence of the weights file."""
    if not metrics_cfg:
        return False
    mode = metrics_cfg.get("fid", "auto")
    if mode not in FID_MODES:
        raise ConfigError(f"metrics.fid={mode!r} must be auto, true or false.")
    if mode is False:
        return False
    if metrics_cfg.get("weights", "fid_inception") == "random":
        return True  # explicit opt-in; DistributionMetrics warns that values are not comparable
    try:
        resolve_weights(
            "fid_inception", metrics_cfg.get("fid_weights_path"), config_key="metrics.fid_weights_path"
        )
    except WeightsNotFoundError as error:
        if mode is True:
            raise
        warnings.warn(
            "FID/KID are off for this run (metrics.fid=auto) because the Inception weights are missing; "
            "monitor.metric=auto falls back to the ground-truth metric where the validation data has "
            f"targets, else to last.ckpt only. {error}",
            stacklevel=2,
        )
        return False
    return True


class ValidationDistributionMetrics(nn.Module):
    """FID/KID per domain over one shared, frozen Inception feature network."""

    def __init__(
        self,
        domains: Sequence[str],
        weights: str = "fid_inception",
        weights_path: str | None = None,
        feature: int = 2048,
        kid: bool = True,
        kid_subset_size: int = 1000,
    ) -> None:
        super().__init__()
        extractor = build_inception_feature_extractor(
            weights, weights_path, feature=feature, config_key="metrics.fid_weights_path"
        )
        # The Inception weights come from their file: keep them out of every checkpoint.
        keep_out_of_checkpoints(extractor)
        self.per_domain = nn.ModuleDict(
            {
                domain: DistributionMetrics(feature=extractor, kid=kid, kid_subset_size=kid_subset_size)
                for domain in domains
            }
        )
        keep_out_of_checkpoints(self.per_domain)
        self.best: dict[str, float] = {}
        self._real_complete = False

    @torch.no_grad()
    def update(self, samples: Mapping[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
        for domain, (real, fake) in samples.items():
            metrics = self.per_domain[domain]
            if not self._real_complete:
                metrics.update(real, real=True)
            metrics.update(fake, real=False)

    def compute_and_reset(self) -> dict[str, float]:
        """Scores of this epoch plus best-so-far values; forgets the fakes, keeps real statistics."""
        scores: dict[str, float] = {}
        for domain, metrics in self.per_domain.items():
            if metrics.num_fake < 2 or metrics.num_real < 2:
                continue
            for name, value in metrics.compute().items():
                scores[f"{name}_{domain}"] = value
            metrics.reset()
        self._real_complete = self._real_complete or bool(scores)
        for key in [k for k in scores if k.startswith(("fid_", "kid_")) and not k.startswith("kid_std")]:
            best_key = f"{key}_best"
            self.best[best_key] = min(self.best.get(best_key, float("inf")), scores[key])
            scores[best_key] = self.best[best_key]
        return scores


def build_validation_metrics(
    metrics_cfg: Mapping[str, Any] | None, domains: Sequence[str]
) -> ValidationDistributionMetrics | None:
    """The FID/KID module for a model's domains, or None when FID is off or the model has none."""
    if not domains or not fid_enabled(metrics_cfg):
        return None
    return ValidationDistributionMetrics(
        domains,
        weights=metrics_cfg.get("weights", "fid_inception"),
        weights_path=metrics_cfg.get("fid_weights_path"),
        feature=int(metrics_cfg.get("feature", 2048)),
        kid=bool(metrics_cfg.get("kid", True)),
        kid_subset_size=int(metrics_cfg.get("kid_subset_size", 1000)),
    )
