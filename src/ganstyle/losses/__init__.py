"""Losses: adversarial objectives, pixel reconstruction, VGG perceptual terms and CUT's PatchNCE (all
``nn.Module``). Each returns its unweighted term; a model's step multiplies the terms by their
``loss.*_weight``, and :func:`discriminator_loss` is the discriminators' weighted objective."""

from ganstyle.losses.adversarial import (
    AdversarialLoss,
    DiscriminatorLoss,
    discriminator_loss,
    gradient_penalty,
)
from ganstyle.losses.patchnce import PatchNCELoss
from ganstyle.losses.perceptual import (
    ContentLoss,
    MeanStdStyleLoss,
    PerceptualCriterion,
    StyleLoss,
    TotalVariationLoss,
    build_perceptual_criterion,
    gram_matrix,
    weighted_perceptual_terms,
)
from ganstyle.losses.reconstruction import ReconstructionLoss

__all__ = [
    "AdversarialLoss",
    "ContentLoss",
    "DiscriminatorLoss",
    "MeanStdStyleLoss",
    "PatchNCELoss",
    "PerceptualCriterion",
    "ReconstructionLoss",
    "StyleLoss",
    "TotalVariationLoss",
    "build_perceptual_criterion",
    "discriminator_loss",
    "gradient_penalty",
    "gram_matrix",
    "weighted_perceptual_terms",
]
