"""Anti-aliased resampling (Zhang 2019, "Making Convolutional Networks Shift-Invariant Again").

A stride-2 convolution samples every other pixel of its output and so aliases high frequencies; the
anti-aliased version convolves at stride 1, then blurs with a fixed binomial filter and subsamples
(:class:`BlurDownsample`). Upsampling mirrors it: zero-insertion followed by the same kind of blur
(:class:`BlurUpsample`). CUT (Park et al. 2020; taesungp/contrastive-unpaired-translation) uses both
in its ResNet generator and the downsampling in its PatchGAN by default.

The filters are buffers, not parameters, so turning anti-aliasing on leaves parameter counts unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def binomial_filter(size: int) -> Tensor:
    """The normalised 2-D binomial filter ``a a^T / sum`` with ``a`` row ``size - 1`` of Pascal's triangle
    (size 3: [1, 2, 1]; size 4: [1, 3, 3, 1])."""
    if not 1 <= size <= 7:
        raise ValueError(f"binomial_filter: size must be 1..7 (the reference's filters), got {size}.")
    row = torch.tensor([_binomial(size - 1, k) for k in range(size)], dtype=torch.float32)
    kernel = row[:, None] * row[None, :]
    return kernel / kernel.sum()


def _binomial(n: int, k: int) -> float:
    result = 1.0
    for i in range(k):
        result = result * (n - i) / (i + 1)
    return result


class BlurDownsample(nn.Module):
    """Blur with a 3x3 binomial filter (reflection padding 1), then keep every second pixel.

    ``(N, C, H, W)`` to ``(N, C, ceil(H / 2), ceil(W / 2))``; per-channel (grouped) convolution.
    """

    def __init__(self, channels: int, filter_size: int = 3) -> None:
        super().__init__()
        self.channels = channels
        kernel = binomial_filter(filter_size)
        self.register_buffer("filt", kernel[None, None].repeat(channels, 1, 1, 1))
        low, high = (filter_size - 1) // 2, filter_size // 2  # (left, right) padding of the filter
        self.pad = nn.ReflectionPad2d((low, high, low, high))

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(self.pad(x), self.filt, stride=2, groups=self.channels)


class BlurUpsample(nn.Module):
    """Double H and W: insert zeros between pixels and blur with a 4x4 binomial filter (times 4, so a
    constant image stays constant), with replication padding at the borders, as the reference does.

    ``(N, C, H, W)`` to ``(N, C, 2H, 2W)``; per-channel (grouped) transposed convolution.
    """

    filter_size = 4

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        kernel = binomial_filter(self.filter_size) * 4  # stride**2: each output gets 1/4 of the taps
        self.register_buffer("filt", kernel[None, None].repeat(channels, 1, 1, 1))
        self.pad = nn.ReplicationPad2d(1)

    def forward(self, x: Tensor) -> Tensor:
        pad_size = (self.filter_size - 1) // 2
        out = F.conv_transpose2d(self.pad(x), self.filt, stride=2, padding=1 + pad_size, groups=self.channels)
        # The padded input gives 2H + 2 rows; the reference keeps rows 1 .. 2H (an even filter).
        return out[:, :, 1:-1, 1:-1]
