"""FID and KID between image sets, on torchmetrics with torch-fidelity's FID Inception.

Images enter in [-1, 1]. For the Inception they are quantised exactly as a saved PNG would be,
``round((x + 1) * 127.5)`` as uint8, and then resized to 299x299 and scaled inside torch-fidelity's network
(the same preprocessing as torch-fidelity's own FID on image files). A custom feature module instead
receives float images in [0, 1] (torchmetrics' ``normalize=True`` convention).

Each image goes through the feature network once per update; the features feed both FID (running mean
and covariance) and KID (stored features). Real-image statistics are kept across :meth:`reset` (torchmetrics'
``reset_real_features=False``), so a validation callback extracts them once per run and only the generated
images are processed every epoch.

FID is biased upwards for small sample sizes (and with 2048-d features it needs thousands of images to
be comparable with published numbers); KID is unbiased and better suited to a few hundred images.
"""

from __future__ import annotations

import logging
import math
import os
import warnings

import numpy as np
import torch
from scipy import linalg
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from ganstyle.networks.fid_inception import FIDInceptionV3
from ganstyle.weights import keep_out_of_checkpoints, load_weights

log = logging.getLogger(__name__)

INCEPTION_FEATURES = (64, 192, 768, 2048)


class InceptionFeatureExtractor(nn.Module):
    """FID Inception v3 pool features of float images in [0, 1]: (B, 3, H, W) -> (B, feature).

    Images are quantised to uint8 (rounded, as when saved to PNG), then resized to 299x299 inside. The
    resize defaults to torch-fidelity's TensorFlow-1.x-compatible bilinear (``antialias=False``), which
    published FIDs use; torchmetrics' own default is an antialiased resize, which shifts FID slightly.
    Frozen, always in eval mode, and kept out of checkpoints.
    """

    def __init__(
        self, state_dict: dict[str, torch.Tensor] | None, feature: int = 2048, antialias: bool = False
    ):
        super().__init__()
        if feature not in INCEPTION_FEATURES:
            raise ValueError(f"feature must be one of {INCEPTION_FEATURES}, got {feature!r}")
        self.net = FIDInceptionV3(feature, antialias)
        if state_dict is not None:
            self.net.load_state_dict(state_dict)
        self.num_features = feature
        self.requires_grad_(False)
        super().train(False)
        keep_out_of_checkpoints(self)

    def train(self, mode: bool = True) -> InceptionFeatureExtractor:
        return super().train(False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        quantised = (images * 255.0).round().clamp(0, 255).to(torch.uint8)
        return self.net(quantised)


def build_inception_feature_extractor(
    weights: str = "fid_inception",
    weights_path: str | os.PathLike | None = None,
    feature: int = 2048,
    download: bool = False,
    antialias: bool = False,
    config_key: str | None = None,
) -> InceptionFeatureExtractor:
    """The FID Inception with torch-fidelity's weights ("fid_inception", via :mod:`ganstyle.weights`: the
    explicit ``weights_path`` or ``$TORCH_HOME/hub/checkpoints/weights-inception-2015-12-05-6726825d.pth``),
    or "random", an explicit opt-in for smoke tests whose FID/KID values mean nothing.
    """
    if weights == "fid_inception":
        state = load_weights("fid_inception", weights_path, download=download, config_key=config_key)
        return InceptionFeatureExtractor(state, feature, antialias)
    if weights == "random":
        log.warning(
            "FID Inception uses RANDOM weights (weights='random'): FID/KID values are NOT comparable to anything "
            "(features are near zero, FID near 0). Use only for smoke tests."
        )
        return InceptionFeatureExtractor(None, feature, antialias)
    raise ValueError(f"weights must be 'fid_inception' or 'random', got {weights!r}")


class _Precomputed(nn.Module):
    """Identity 'feature network': features are computed once by DistributionMetrics and fed to both metrics."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


class DistributionMetrics(nn.Module):
    """FID (and KID) between real and generated images in [-1, 1], real statistics computed once per run.

    Usage in a validation loop::

        metrics = DistributionMetrics()                      # FID Inception weights must be available
        if not metrics.has_real_statistics:                  # first epoch only
            for real in real_batches: metrics.update(real, real=True)
        for fake in fake_batches: metrics.update(fake, real=False)
        scores = metrics.compute()                           # {"fid": ..., "kid": ..., "kid_std": ...}
        metrics.reset()                                      # forgets the fakes, keeps the real statistics

    Args:
        weights: "fid_inception" or "random" (explicit opt-in, values meaningless), see
            :func:`build_inception_feature_extractor`; ignored when ``feature`` is a module.
        weights_path: explicit FID Inception file (``metrics.fid_weights_path``).
        feature: Inception pool feature size (64, 192, 768, 2048: 2048 is the standard FID) or any
            ``nn.Module`` mapping [0, 1] float images to (B, D) features.
        kid: also compute KID (stores every feature vector; memory grows with the number of images).
        kid_subsets, kid_subset_size: KID's subsets (the standard is 100 subsets of 1000); the subset size is
            clamped to the number of real and fake images available, with a warning.
        download: let a missing FID Inception file be downloaded into the cache.
        antialias: resize with antialiasing (torchmetrics' default) instead of torch-fidelity's resize.
        weights_config_key: the setting named in the missing-weights message (default
            ``metrics.fid_weights_path``; the ``ganstyle fid`` command passes ``--weights-path``).
    """

    def __init__(
        self,
        weights: str = "fid_inception",
        weights_path: str | os.PathLike | None = None,
        feature: int | nn.Module = 2048,
        kid: bool = True,
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        download: bool = False,
        antialias: bool = False,
        weights_config_key: str | None = None,
    ) -> None:
        super().__init__()
        if isinstance(feature, nn.Module):
            self.feature_extractor = feature
            num_features = getattr(feature, "num_features", None)
        else:
            self.feature_extractor = build_inception_feature_extractor(
                weights,
                weights_path,
                feature=int(feature),
                download=download,
                antialias=antialias,
                config_key=weights_config_key,
            )
            num_features = int(feature)
        self.fid = None  # built lazily once the feature size is known (see _metrics)
        self.kid = None
        self._num_features = None if num_features is None else int(num_features)
        self._use_kid, self._kid_subsets, self._kid_subset_size = kid, int(kid_subsets), int(kid_subset_size)
        self._warned_subset = False
        if self._num_features is not None:
            self._build(self._num_features)

    def _build(self, num_features: int) -> None:
        self._num_features = num_features
        self.fid = FrechetInceptionDistance(feature=_Precomputed(num_features), reset_real_features=False)
        if self._use_kid:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
                self.kid = KernelInceptionDistance(
                    feature=_Precomputed(num_features),
                    subsets=self._kid_subsets,
                    subset_size=self._kid_subset_size,
                    reset_real_features=False,
                )
        device = next((t.device for t in self.feature_extractor.parameters()), None)
        if device is not None:
            self.fid.to(device)
            if self.kid is not None:
                self.kid.to(device)

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Feature vectors of images in [-1, 1] (one pass of the feature network, in float32).

        Autocast is switched off: FID must not depend on whether training used mixed precision.
        """
        unit = ((images.float() + 1.0) * 0.5).clamp(0.0, 1.0)
        with torch.autocast(device_type=unit.device.type, enabled=False):
            features = self.feature_extractor(unit)
        return features.reshape(features.shape[0], -1)

    @torch.no_grad()
    def update(self, images: torch.Tensor, real: bool) -> None:
        """Add a batch of real or generated images in [-1, 1]."""
        features = self.features(images)
        if self.fid is None:
            self._build(features.shape[1])
        self.fid.update(features, real=real)
        if self.kid is not None:
            self.kid.update(features, real=real)

    @property
    def num_real(self) -> int:
        return 0 if self.fid is None else int(self.fid.real_features_num_samples)

    @property
    def num_fake(self) -> int:
        return 0 if self.fid is None else int(self.fid.fake_features_num_samples)

    @property
    def has_real_statistics(self) -> bool:
        return self.num_real > 0

    def compute(self) -> dict[str, float]:
        """{"fid": ..., "kid": ..., "kid_std": ...} (KID entries only when ``kid=True``)."""
        if self.num_real < 2 or self.num_fake < 2:
            raise ValueError(
                f"FID needs at least 2 real and 2 generated images; got {self.num_real} and {self.num_fake}"
            )
        scores = {"fid": float(self.fid.compute())}
        if self.kid is not None:
            available = min(self.num_real, self.num_fake)
            subset_size = min(self._kid_subset_size, available)
            if subset_size < self._kid_subset_size and not self._warned_subset:
                log.warning(
                    "KID subset size %d is larger than the %d real / %d generated images available: using subsets "
                    "of %d. KID values are comparable only between runs with the same subset size.",
                    self._kid_subset_size,
                    self.num_real,
                    self.num_fake,
                    subset_size,
                )
                self._warned_subset = True
            self.kid.subset_size = subset_size
            kid_mean, kid_std = self.kid.compute()
            scores["kid"], scores["kid_std"] = float(kid_mean), float(kid_std)
        return scores

    def reset(self, include_real: bool = False) -> None:
        """Forget the generated images; with ``include_real`` the real statistics too."""
        for metric in (self.fid, self.kid):
            if metric is None:
                continue
            if include_real:
                metric.reset_real_features = True
                metric.reset()
                metric.reset_real_features = False
            else:
                metric.reset()


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2)), in numpy/scipy (pytorch-fid's form).

    An independent reference for the torch implementation; adds ``eps`` to the diagonals when the product
    is singular, and drops a negligible imaginary part of the matrix square root.
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(
                f"matrix square root has a large imaginary component {np.max(np.abs(covmean.imag))}"
            )
        covmean = covmean.real
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))
    return value if math.isfinite(value) else float("nan")
