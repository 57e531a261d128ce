"""PSNR and SSIM for images in [-1, 1], computed on the [0, 1] scale (data range 1)."""

from __future__ import annotations

import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure


def _unit(images: torch.Tensor) -> torch.Tensor:
    return ((images.float() + 1.0) * 0.5).clamp(0.0, 1.0)


def psnr(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over images of 10 log10(1 / MSE) on [0, 1] (B, C, H, W) images given in [-1, 1], in dB.

    Per-image PSNR averaged over the batch (not the PSNR of the batch's pooled MSE), as image-translation
    papers report it; identical images give +inf.
    """
    return peak_signal_noise_ratio(_unit(prediction), _unit(target), data_range=1.0, dim=(1, 2, 3))


def ssim(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean SSIM (Gaussian window 11, sigma 1.5, k1 0.01, k2 0.03) on [0, 1] for images given in [-1, 1]."""
    return structural_similarity_index_measure(_unit(prediction), _unit(target), data_range=1.0)
