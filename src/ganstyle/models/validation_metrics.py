"""The validation-loop half of ImageModel: FID/KID per domain and the monitored-metric default.

Kept apart from ``base.py`` so the training-side machinery and the evaluation side read separately.
A model opts in by naming ``distribution_domains`` and implementing ``distribution_samples(batch)``;
``train()`` calls ``configure_validation_metrics(cfg.metrics)`` once the model is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

from ganstyle.metrics.validation import ValidationDistributionMetrics, build_validation_metrics


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] network images to [0, 1] for metrics and files."""
    return ((images + 1.0) / 2.0).clamp(0.0, 1.0)


# What log_translation_against_target logs: a model's validation_metric_names includes these exactly
# when its validation batches carry targets.
TRANSLATION_AGAINST_TARGET_METRICS = frozenset(
    {"val/psnr_B", "val/ssim_B", "val/psnr_B_identity", "val/ssim_B_identity"}
)


class ValidationMetricsMixin:
    # Domains whose generated images are scored against real ones, the main one first
    # (CycleGAN: ("B", "A") logs val/fid_B and val/fid_A). Empty: the model has no FID.
    distribution_domains: tuple[str, ...] = ()
    # What checkpointing and sweeps watch when FID is off: a ground-truth metric, or None. Chosen only
    # when validation_metric_names says the run logs it (CycleGAN's PSNR needs testA2B/ targets).
    ground_truth_monitor: tuple[str, str] | None = None

    @classmethod
    def validation_metric_names(
        cls, loss: Mapping[str, Any], has_targets: bool | None
    ) -> frozenset[str] | None:
        """The ``val/`` names ``validation_step`` logs (FID/KID aside) with this loss config, given
        whether the validation batches carry ground truth (None: unknown). None: the model cannot say,
        so a named ``monitor.metric`` is checked at the first validation instead of before training
        (see ganstyle.run.monitoring)."""
        return None

    def build_translation_metrics(self) -> None:
        """The metrics :meth:`log_translation_against_target` accumulates; call in ``__init__``
        (they are submodules, so they move with the model and reset each validation epoch)."""
        self.val_psnr_B = PeakSignalNoiseRatio(data_range=1.0)
        self.val_ssim_B = StructuralSimilarityIndexMeasure(data_range=1.0)
        self.val_psnr_B_identity = PeakSignalNoiseRatio(data_range=1.0)
        self.val_ssim_B_identity = StructuralSimilarityIndexMeasure(data_range=1.0)

    def log_translation_against_target(
        self, source: torch.Tensor, translated: torch.Tensor, target: torch.Tensor, batch_size: int
    ) -> None:
        """``val/psnr_B`` and ``val/ssim_B`` of a translation against its ground truth, and
        ``val/psnr_B_identity`` / ``val/ssim_B_identity``: the untranslated source's scores, the
        do-nothing baseline a translation must beat. Needs :meth:`build_translation_metrics`."""
        target = to_unit_range(target)
        scored = {
            "val/psnr_B": (self.val_psnr_B, translated),
            "val/ssim_B": (self.val_ssim_B, translated),
            "val/psnr_B_identity": (self.val_psnr_B_identity, source),
            "val/ssim_B_identity": (self.val_ssim_B_identity, source),
        }
        for name, (metric, images) in scored.items():
            metric(to_unit_range(images), target)
            self.log(name, metric, batch_size=batch_size, prog_bar=name == "val/psnr_B")

    def configure_validation_metrics(self, metrics_cfg: Mapping[str, Any] | None) -> bool:
        """Build FID/KID for this run (not a hyperparameter: inference never needs it). True if on."""
        self.distribution_metrics = build_validation_metrics(metrics_cfg, self.distribution_domains)
        return self.distribution_metrics is not None

    def fid_metrics(self) -> ValidationDistributionMetrics | None:
        # Not a class attribute: nn.Module keeps submodules in _modules, which a class-level default
        # would shadow.
        return getattr(self, "distribution_metrics", None)

    def distribution_samples(self, batch: dict[str, Any]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """{domain: (real images, generated images)} in [-1, 1] for one validation batch."""
        raise NotImplementedError(f"{type(self).__name__} lists distribution_domains but no samples")

    @torch.no_grad()
    def on_validation_batch_end(
        self, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        # Sanity-check batches would fix the real statistics from two batches: skip them.
        if self.trainer.sanity_checking:
            return
        if self.fid_metrics() is not None:
            self.fid_metrics().update(self.distribution_samples(batch))
        self.log_real_score_gap(batch)  # each discriminator on held-out reals (ImageModel)

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        self.log_real_score_train_means()
        if self.fid_metrics() is None:
            return
        for name, value in self.fid_metrics().compute_and_reset().items():
            self.log(f"val/{name}", value, sync_dist=False)  # torchmetrics already gathered all ranks
