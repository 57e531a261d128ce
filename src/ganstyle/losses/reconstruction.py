"""Pixel reconstruction losses (cycle consistency, identity, pix2pix's L1 term)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ReconstructionLoss(nn.Module):
    """L1: mean |x - y|; L2: mean (x - y)^2, over all elements of images in [-1, 1].

    On a [0, 1] scale the same images give half the L1 value and a quarter of the L2 value; CycleGAN's
    lambda = 10 and pix2pix's 100 are for L1 on [-1, 1] images, as here. Unweighted: the model multiplies
    it by its weight (``loss.cycle_weight``, ``identity_weight * cycle_weight``, ``l1_weight``).
    """

    def __init__(self, kind: str = "l1") -> None:
        super().__init__()
        if kind not in ("l1", "l2"):
            raise ValueError(f"Unknown reconstruction loss {kind!r}; allowed: l1, l2")
        self.kind = kind

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.kind == "l1":
            return F.l1_loss(prediction, target)
        return F.mse_loss(prediction, target)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}"
