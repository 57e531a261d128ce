"""Style targets: the Gram matrices of one or a weighted few style images, fixed for a whole run.

Fast style transfer and Gatys et al. both compare a stylised image's Grams against the same style images'
Grams, computed once from the whole images (not crops), so they share this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ganstyle.config import ConfigError
from ganstyle.losses.perceptual import PerceptualCriterion, StyleLoss

MAX_STYLE_IMAGES = 32  # one network learns one style (or a blend of a few); many styles: model=adain


class StyleTargets(nn.Module):
    """The Gram matrices of K style images and their weights w_k (summing to 1), as buffers.

    ``distance(style_loss, features) = sum_k w_k * L_style(features, Grams_k)``: the weighted style loss
    against several style images. Buffers are not saved in checkpoints (they come from the data).
    """

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.layers: list[str] = []

    @torch.no_grad()
    def set(
        self, criterion: PerceptualCriterion, images: Sequence[torch.Tensor], weights: Sequence[float]
    ) -> None:
        """Compute the Grams of ``images`` (each (1, 3, h, w) in [-1, 1]) with the criterion's VGG."""
        if criterion.style is None:
            return
        total = float(sum(weights))
        for k, image in enumerate(images):
            grams = criterion.style.grams(criterion.feature_net(image.to(self._device(criterion))))
            for layer, gram in grams.items():
                self.register_buffer(f"gram_{k}_{layer}", gram, persistent=False)
            self.register_buffer(f"weight_{k}", torch.tensor(weights[k] / total), persistent=False)
        self.count, self.layers = len(images), list(criterion.style.layers)

    @staticmethod
    def _device(criterion: PerceptualCriterion) -> torch.device:
        return next(criterion.feature_net.parameters()).device

    def distance(self, style_loss: StyleLoss, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        if not self.count:
            raise RuntimeError("StyleTargets.set() must run before the style distance is computed.")
        total = 0.0
        for k in range(self.count):
            grams = {layer: getattr(self, f"gram_{k}_{layer}") for layer in self.layers}
            total = total + getattr(self, f"weight_{k}") * style_loss.forward_grams(features, grams)
        return total


def style_images_from(datamodule: Any, owner: str) -> tuple[list[torch.Tensor], list[float]]:
    """Whole style images (1, 3, h, w) and their weights from a content/style or single-image data module."""
    if hasattr(datamodule, "style_images"):  # SingleImageStyleDataModule
        return list(datamodule.style_images()), list(datamodule.style_weights)
    if hasattr(datamodule, "style_image") and hasattr(datamodule, "style_image_weights"):
        count = len(datamodule.style_paths)
        if count > MAX_STYLE_IMAGES:
            raise ConfigError(
                f"{owner} learns one network for one style (or a weighted blend of a few), but data.style "
                f"gives {count} style images (at most {MAX_STYLE_IMAGES}). For arbitrary styles use "
                "model=adain; otherwise point data.style at the one or few images to learn."
            )
        return [datamodule.style_image(k) for k in range(count)], list(datamodule.style_image_weights)
    raise ConfigError(
        f"{owner} needs style images from its data module, but {type(datamodule).__name__} has none. Use a "
        "content/style data module, e.g. `data=content_style data.content_root=... data.style=...`."
    )
