"""Image metrics: FID/KID between image sets, PSNR/SSIM between image pairs."""

from ganstyle.metrics.fid import (
    DistributionMetrics,
    InceptionFeatureExtractor,
    build_inception_feature_extractor,
    frechet_distance,
)
from ganstyle.metrics.reconstruction import psnr, ssim

__all__ = [
    "DistributionMetrics",
    "InceptionFeatureExtractor",
    "build_inception_feature_extractor",
    "frechet_distance",
    "psnr",
    "ssim",
]
