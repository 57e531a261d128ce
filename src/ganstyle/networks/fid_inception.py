"""torch-fidelity's FID Inception v3 (through torchmetrics), built without loading or downloading weights.

A network of its own, apart from :mod:`ganstyle.metrics.fid`, because :mod:`ganstyle.weights` builds it
on the meta device to know the shapes a valid weights file must hold, and the FID metric in turn loads
its weights through :mod:`ganstyle.weights`.
"""

from __future__ import annotations

import io

import torch
from torch import nn
from torchmetrics.image.fid import NoTrainInceptionV3

_SKELETON_KEY = "__ganstyle_unloaded_skeleton__"


class FIDInceptionV3(NoTrainInceptionV3):
    """torchmetrics' always-eval torch-fidelity Inception, built without loading (or downloading) weights.

    torch-fidelity loads weights in its constructor, from a path or else from the internet. Here the
    constructor gets a marker instead, and weights are loaded afterwards from the file that
    :mod:`ganstyle.weights` resolved and checked.
    """

    def __init__(self, feature: int = 2048, antialias: bool = False) -> None:
        marker = io.BytesIO()
        torch.save({_SKELETON_KEY: torch.zeros(())}, marker)
        marker.seek(0)
        super().__init__(
            "inception-v3-compat", [str(feature)], feature_extractor_weights_path=marker, antialias=antialias
        )

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        if _SKELETON_KEY in state_dict:
            return None  # the constructor's call: keep the random initialisation
        return super().load_state_dict(state_dict, strict=strict, assign=assign)


def inception_skeleton(feature: int = 2048, antialias: bool = False) -> nn.Module:
    """The FID Inception v3 with random (untrained) weights; build under ``torch.device("meta")`` for shapes."""
    return FIDInceptionV3(feature, antialias)
