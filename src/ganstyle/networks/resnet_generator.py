"""ResNet-based generator of CycleGAN (Zhu et al. 2017, "Unpaired Image-to-Image Translation using
Cycle-Consistent Adversarial Networks"), after Johnson et al. (2016).

Module names and order follow junyanz/pytorch-CycleGAN-and-pix2pix (``model.<i>``,
``model.<i>.conv_block.<j>``), so the authors' published ``latest_net_G*.pth`` state dicts load
with ``load_state_dict``.
"""

from __future__ import annotations

from torch import Tensor, nn

from ganstyle.networks.init import check_init, check_int, init_weights
from ganstyle.networks.norm import check_norm, get_norm_layer, uses_bias

PADDING_TYPES = ("reflect", "replicate", "zero")


def check_padding(padding_type: str, owner: str) -> None:
    if padding_type not in PADDING_TYPES:
        raise ValueError(
            f"{owner}: unknown padding_type {padding_type!r}. Allowed values are "
            f"{', '.join(repr(p) for p in PADDING_TYPES)}. 'reflect' is the CycleGAN default (it avoids "
            "the dark borders zero padding leaves); set padding_type to one of them."
        )


class ResnetBlock(nn.Module):
    """Residual block ``x + F(x)`` with F = pad, conv3x3, norm, ReLU, [dropout 0.5], pad, conv3x3, norm.

    The second half has no ReLU, as in the reference (and He et al.'s identity-mapping variant used
    by Johnson et al.), so the block can output negative residuals.
    """

    def __init__(self, dim: int, padding_type: str, norm: str, use_dropout: bool, use_bias: bool) -> None:
        super().__init__()
        norm_layer = get_norm_layer(norm)
        layers: list[nn.Module] = []
        for half in (0, 1):
            padding = 0
            if padding_type == "reflect":
                layers.append(nn.ReflectionPad2d(1))
            elif padding_type == "replicate":
                layers.append(nn.ReplicationPad2d(1))
            else:
                padding = 1
            layers += [nn.Conv2d(dim, dim, kernel_size=3, padding=padding, bias=use_bias), norm_layer(dim)]
            if half == 0:
                layers.append(nn.ReLU(True))
                if use_dropout:
                    layers.append(nn.Dropout(0.5))
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """CycleGAN's ``resnet_9blocks`` / ``resnet_6blocks`` generator.

    c7s1-ngf, d(2ngf), d(4ngf), ``n_blocks`` x R(4ngf), u(2ngf), u(ngf), c7s1-out, Tanh: two stride-2
    convs down, residual blocks at 1/4 resolution, two stride-2 transposed convs up. The paper uses
    9 blocks for 256x256 training images and 6 for 128x128.

    Images: input and output in [-1, 1] (the output passes through Tanh). H and W must be multiples
    of :attr:`size_multiple` (4) for the output to have the input's size; inference pads to it.

    Parameters (ngf=64): 11,378,179 with 9 blocks and instance norm, 7,837,699 with 6 blocks,
    11,383,427 with 9 blocks and batch norm.

    Args:
        in_channels: channels of the input image.
        out_channels: channels of the output image.
        ngf: filters of the first conv layer; later layers use 2*ngf and 4*ngf.
        n_blocks: residual blocks at the bottleneck (>= 0).
        norm: "instance" (CycleGAN), "batch", "layer" or "none"; see :func:`get_norm_layer`.
        use_dropout: dropout 0.5 inside each residual block (off in CycleGAN).
        padding_type: "reflect", "replicate" or "zero" padding inside the residual blocks.
        init_type, init_gain: weight initialisation, see :func:`init_weights`.
    """

    size_multiple = 4  # two stride-2 downsamplings

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 64,
        n_blocks: int = 9,
        norm: str = "instance",
        use_dropout: bool = False,
        padding_type: str = "reflect",
        init_type: str = "normal",
        init_gain: float = 0.02,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        check_int(owner, "in_channels", in_channels, 1, "It is the number of channels of the input image.")
        check_int(owner, "out_channels", out_channels, 1, "It is the number of channels of the output image.")
        check_int(owner, "ngf", ngf, 1, "It is the width of the first conv layer (64 in CycleGAN).")
        check_int(
            owner,
            "n_blocks",
            n_blocks,
            0,
            "It is the number of residual blocks (9 for 256 px images, 6 for 128 px in CycleGAN).",
        )
        check_norm(norm, owner)
        check_padding(padding_type, owner)
        check_init(init_type, init_gain, owner)

        norm_layer = get_norm_layer(norm)
        use_bias = uses_bias(norm)
        model: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, kernel_size=7, padding=0, bias=use_bias),
            norm_layer(ngf),
            nn.ReLU(True),
        ]
        n_downsampling = 2
        for i in range(n_downsampling):
            mult = 2**i
            model += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1, bias=use_bias),
                norm_layer(ngf * mult * 2),
                nn.ReLU(True),
            ]
        mult = 2**n_downsampling
        model += [ResnetBlock(ngf * mult, padding_type, norm, use_dropout, use_bias) for _ in range(n_blocks)]
        for i in range(n_downsampling):
            mult = 2 ** (n_downsampling - i)
            # output_padding=1 makes each transposed conv exactly double H and W.
            model += [
                nn.ConvTranspose2d(
                    ngf * mult,
                    ngf * mult // 2,
                    kernel_size=3,
                    stride=2,
                    padding=1,
                    output_padding=1,
                    bias=use_bias,
                ),
                norm_layer(ngf * mult // 2),
                nn.ReLU(True),
            ]
        # The last conv always has a bias: no norm follows it.
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, kernel_size=7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*model)
        init_weights(self, init_type, init_gain)

    def forward(self, x: Tensor) -> Tensor:
        """Translate ``(N, in_channels, H, W)`` in [-1, 1] to ``(N, out_channels, H, W)`` in [-1, 1]."""
        return self.model(x)
