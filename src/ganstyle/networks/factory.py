"""Generators by the reference code's ``--netG`` names, so one config key switches architecture.

junyanz/pytorch-CycleGAN-and-pix2pix picks its generator with ``--netG resnet_9blocks | resnet_6blocks
| unet_256 | unet_128``; :func:`define_generator` takes those names and their obvious siblings:
``resnet_<n>blocks`` (any n >= 0) and ``unet_<size>`` (size = 2 ** num_downs, num_downs >= 5, so
unet_32, unet_64, ...). The other arguments are the ones both architectures share, which is why a
config can switch ``netG`` without removing keys the other architecture does not take.
"""

from __future__ import annotations

import math
import re

from torch import nn

from ganstyle.networks.resnet_generator import ResnetGenerator
from ganstyle.networks.unet_generator import UnetGenerator

_RESNET = re.compile(r"resnet_(\d+)blocks")
_UNET = re.compile(r"unet_(\d+)")


def define_generator(
    netG: str = "resnet_9blocks",  # noqa: N803  (the reference's option name)
    in_channels: int = 3,
    out_channels: int = 3,
    ngf: int = 64,
    norm: str = "instance",
    use_dropout: bool = False,
    init_type: str = "normal",
    init_gain: float = 0.02,
) -> nn.Module:
    """A :class:`ResnetGenerator` or :class:`UnetGenerator` named as the reference names them.

    ``resnet_<n>blocks``: two stride-2 convs, n residual blocks, two transposed convs (CycleGAN's
    default, 9 blocks for 256 px). ``unet_<size>``: a U-Net with log2(size) downsamplings and skip
    connections between mirrored levels (pix2pix's generator, also a CycleGAN option); its skips
    carry the input's detail straight to the output, so it learns near-identity mappings such as
    colour and texture changes in far fewer steps than the ResNet.
    """
    shared = {
        "in_channels": in_channels,
        "out_channels": out_channels,
        "ngf": ngf,
        "norm": norm,
        "use_dropout": use_dropout,
        "init_type": init_type,
        "init_gain": init_gain,
    }
    name = str(netG)
    if match := _RESNET.fullmatch(name):
        return ResnetGenerator(n_blocks=int(match.group(1)), **shared)
    if (match := _UNET.fullmatch(name)) and int(match.group(1)) >= 32:
        size = int(match.group(1))
        num_downs = round(math.log2(size))
        if 2**num_downs == size:
            return UnetGenerator(num_downs=num_downs, **shared)
    raise ValueError(
        f"Unknown generator netG={netG!r}. Use resnet_<n>blocks (resnet_9blocks: CycleGAN at 256 px, "
        "resnet_6blocks at 128 px) or unet_<size> with size a power of two of at least 32 (unet_256, "
        "unet_128, unet_64: the U-Net whose bottleneck is 1x1 at that size), e.g. "
        "`model.generator.netG=resnet_6blocks`."
    )
