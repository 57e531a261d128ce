"""Normalisation layers selected by name, as in pytorch-CycleGAN-and-pix2pix's ``get_norm_layer``.

Networks take ``norm`` as a plain string so a Hydra config (and a checkpoint's saved
hyperparameters) can name it; :func:`get_norm_layer` turns the string into a layer factory.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from torch import nn

NormFactory = Callable[[int], nn.Module]

# "layer" is not in the CycleGAN reference; it is the normalisation Gulrajani et al. (2017) recommend
# for WGAN-GP critics, where batch norm would couple the samples the gradient penalty treats apart.
NORM_TYPES = ("instance", "batch", "none", "layer")


def check_norm(norm: str, owner: str = "network") -> str:
    """Return ``norm`` unchanged if it names a known normalisation, else raise a clear ValueError."""
    if norm not in NORM_TYPES:
        raise ValueError(
            f"{owner}: unknown norm {norm!r}. Allowed values are {', '.join(repr(n) for n in NORM_TYPES)}: "
            "'instance' (InstanceNorm2d without affine parameters, the CycleGAN default), 'batch' "
            "(BatchNorm2d with running statistics, the pix2pix default), 'layer' (GroupNorm with one "
            "group, for WGAN-GP critics) or 'none'. Set norm to one of them in the network config."
        )
    return norm


def get_norm_layer(norm: str) -> NormFactory:
    """Return a factory ``f(num_channels) -> nn.Module`` for the named normalisation.

    - ``"instance"``: ``InstanceNorm2d(affine=False, track_running_stats=False)``; per-image
      statistics, no learnable parameters (Ulyanov et al. 2016; the CycleGAN default).
    - ``"batch"``: ``BatchNorm2d(affine=True, track_running_stats=True)`` (the pix2pix default).
    - ``"layer"``: ``GroupNorm(1, C)``, i.e. layer norm over (C, H, W) with a per-channel affine.
    - ``"none"``: ``nn.Identity``.
    """
    check_norm(norm, "get_norm_layer")
    if norm == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if norm == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if norm == "layer":
        return functools.partial(nn.GroupNorm, 1)
    return lambda num_channels: nn.Identity()


def uses_bias(norm: str) -> bool:
    """Whether a convolution followed by ``norm`` should have a bias.

    A norm with a learnable shift (batch, layer) makes the conv bias redundant, so the reference
    drops it. Instance norm here has no affine shift, and the reference keeps the bias there (this
    is what its published parameter counts include). With no norm the bias is the only offset.
    The reference's ``norm="none"`` drops the bias too (its test is ``norm is InstanceNorm2d``);
    we keep it, since a conv without norm and without bias cannot shift its output.
    """
    return check_norm(norm, "uses_bias") in ("instance", "none")
