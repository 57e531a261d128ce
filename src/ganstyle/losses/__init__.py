"""Losses: adversarial objectives, pixel reconstruction, VGG perceptual terms and CUT's PatchNCE (all
``nn.Module``)."""

from ganstyle.losses.adversarial import AdversarialLoss, gradient_penalty
from ganstyle.losses.patchnce import PatchNCELoss
from ganstyle.losses.perceptual import (
    ContentLoss,
    PerceptualCriterion,
    StyleLoss,
    TotalVariationLoss,
    build_perceptual_criterion,
    gram_matrix,
)
from ganstyle.losses.reconstruction import ReconstructionLoss

__all__ = [
    "AdversarialLoss",
    "ContentLoss",
    "PatchNCELoss",
    "PerceptualCriterion",
    "ReconstructionLoss",
    "StyleLoss",
    "TotalVariationLoss",
    "build_perceptual_criterion",
    "gradient_penalty",
    "gram_matrix",
]
