"""PatchGAN and pixel discriminators of pix2pix / CycleGAN (Isola et al. 2017; Zhu et al. 2017).

They output a map of raw logits (no sigmoid): the GAN loss module decides how to score them (LSGAN
regresses them to 0/1, the vanilla loss uses BCE-with-logits). Module names follow
junyanz/pytorch-CycleGAN-and-pix2pix so its published discriminator state dicts load.
"""

from __future__ import annotations

from torch import Tensor, nn

from ganstyle.networks.antialias import BlurDownsample
from ganstyle.networks.init import check_init, check_int, init_weights
from ganstyle.networks.norm import check_norm, get_norm_layer, uses_bias


class NLayerDiscriminator(nn.Module):
    """PatchGAN: a fully convolutional classifier of overlapping image patches.

    C64 (no norm) - C128 - C256 (stride 2) - C512 (stride 1) - Conv to 1 channel (stride 1), all 4x4
    kernels, LeakyReLU 0.2. With ``n_layers=3`` each output logit sees a 70x70 receptive field, and
    a 256x256 input gives a 30x30 logit map. Each extra layer halves the map again and widens the
    receptive field; channels stop doubling at 8*ndf.

    Images: input in [-1, 1], ``in_channels`` = 3 for CycleGAN, 6 for pix2pix's conditional
    discriminator (input and output images concatenated on channels).

    Parameters (ndf=64, n_layers=3): 2,764,737 with 3 channels and instance norm, 2,768,705 with 6
    channels and batch norm.

    Args:
        in_channels: channels of the image (or stacked image pair) to score.
        ndf: filters of the first conv layer.
        n_layers: stride-2 conv layers after the first (3 = the 70x70 PatchGAN).
        norm: "instance" (CycleGAN), "batch" (pix2pix), "layer" or "none".
        init_type, init_gain: weight initialisation, see :func:`init_weights`.
        antialias: CUT's default (Park et al. 2020): each stride-2 conv becomes a stride-1 conv and
            its activation followed by :class:`BlurDownsample`; same parameters, same output size.
    """

    def __init__(
        self,
        in_channels: int = 3,
        ndf: int = 64,
        n_layers: int = 3,
        norm: str = "instance",
        init_type: str = "normal",
        init_gain: float = 0.02,
        antialias: bool = False,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        check_int(
            owner,
            "in_channels",
            in_channels,
            1,
            "It is the number of channels scored (3 for an image, 6 for pix2pix's image pair).",
        )
        check_int(owner, "ndf", ndf, 1, "It is the width of the first conv layer (64 in the papers).")
        check_int(
            owner,
            "n_layers",
            n_layers,
            0,
            "It is the number of stride-2 conv layers after the first (3 gives the 70x70 PatchGAN).",
        )
        check_norm(norm, owner)
        check_init(init_type, init_gain, owner)
        norm_layer = get_norm_layer(norm)
        use_bias = uses_bias(norm)
        kw, padw = 4, 1
        stride = 1 if antialias else 2

        # No norm on the first layer, as in DCGAN (Radford et al. 2016), who found batch norm on the
        # discriminator's input layer made training oscillate.
        sequence: list[nn.Module] = [
            nn.Conv2d(in_channels, ndf, kernel_size=kw, stride=stride, padding=padw),
            nn.LeakyReLU(0.2, True),
        ]
        if antialias:
            sequence.append(BlurDownsample(ndf))
        nf_mult = 1
        for n in range(1, n_layers):
            nf_mult_prev, nf_mult = nf_mult, min(2**n, 8)
            sequence += [
                nn.Conv2d(
                    ndf * nf_mult_prev,
                    ndf * nf_mult,
                    kernel_size=kw,
                    stride=stride,
                    padding=padw,
                    bias=use_bias,
                ),
                norm_layer(ndf * nf_mult),
                nn.LeakyReLU(0.2, True),
            ]
            if antialias:
                sequence.append(BlurDownsample(ndf * nf_mult))
        nf_mult_prev, nf_mult = nf_mult, min(2**n_layers, 8)
        # Two stride-1 convs at the end widen the receptive field without shrinking the map further.
        sequence += [
            nn.Conv2d(
                ndf * nf_mult_prev, ndf * nf_mult, kernel_size=kw, stride=1, padding=padw, bias=use_bias
            ),
            norm_layer(ndf * nf_mult),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * nf_mult, 1, kernel_size=kw, stride=1, padding=padw),
        ]
        self.model = nn.Sequential(*sequence)
        init_weights(self, init_type, init_gain)

    @staticmethod
    def output_size(size: int, n_layers: int = 3) -> int:
        """Side of the logit map for an input side ``size`` (30 for 256 with ``n_layers=3``)."""
        for _ in range(n_layers):
            size = size // 2  # k4 s2 p1 halves (floor)
        return size - 2  # two k4 s1 p1 convs each remove one pixel

    def forward(self, x: Tensor) -> Tensor:
        """Score ``(N, in_channels, H, W)`` in [-1, 1]; returns a logit map ``(N, 1, h, w)``."""
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """1x1 PatchGAN ("pixelGAN" in the pix2pix paper): scores each pixel independently.

    Conv1x1 in->ndf, LeakyReLU 0.2, Conv1x1 ndf->2ndf, norm, LeakyReLU 0.2, Conv1x1 2ndf->1. It only
    judges colour statistics, not structure. Input in [-1, 1]; output a logit map of the input's size.
    Parameters (ndf=64, 3 channels, instance norm): 8,705.

    Args:
        in_channels: channels of the image (or stacked image pair) to score.
        ndf: filters of the first conv layer.
        norm: "instance", "batch", "layer" or "none".
        init_type, init_gain: weight initialisation, see :func:`init_weights`.
    """

    def __init__(
        self,
        in_channels: int = 3,
        ndf: int = 64,
        norm: str = "instance",
        init_type: str = "normal",
        init_gain: float = 0.02,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        check_int(owner, "in_channels", in_channels, 1, "It is the number of channels scored.")
        check_int(owner, "ndf", ndf, 1, "It is the width of the first conv layer (64 in the papers).")
        check_norm(norm, owner)
        check_init(init_type, init_gain, owner)
        norm_layer = get_norm_layer(norm)
        use_bias = uses_bias(norm)
        # The last conv follows the reference in using use_bias (its 8,705 count includes that bias).
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, ndf, kernel_size=1, stride=1, padding=0),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, kernel_size=1, stride=1, padding=0, bias=use_bias),
            norm_layer(ndf * 2),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, kernel_size=1, stride=1, padding=0, bias=use_bias),
        )
        init_weights(self, init_type, init_gain)

    def forward(self, x: Tensor) -> Tensor:
        """Score ``(N, in_channels, H, W)`` in [-1, 1]; returns per-pixel logits ``(N, 1, H, W)``."""
        return self.net(x)
