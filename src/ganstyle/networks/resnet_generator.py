"""ResNet-based generator of CycleGAN (Zhu et al. 2017, "Unpaired Image-to-Image Translation using
Cycle-Consistent Adversarial Networks"), after Johnson et al. (2016).

Module names and order follow junyanz/pytorch-CycleGAN-and-pix2pix (``model.<i>``,
``model.<i>.conv_block.<j>``), so the authors' published ``latest_net_G*.pth`` state dicts load
with ``load_state_dict``.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from ganstyle.networks.antialias import BlurDownsample, BlurUpsample
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
    11,383,427 with 9 blocks and batch norm; anti-aliasing adds none (its filters are buffers).

    CUT (Park et al. 2020) uses the same network with anti-aliased resampling (Zhang 2019): each
    downsampling is Conv3x3 stride 1, norm, ReLU, :class:`BlurDownsample`; each upsampling is
    :class:`BlurUpsample`, Conv3x3, norm, ReLU. :meth:`encode` returns the outputs of chosen layers of
    the flat layer list (CUT's ``nce_layers``), stopping after the last one.

    Args:
        in_channels: channels of the input image.
        out_channels: channels of the output image.
        ngf: filters of the first conv layer; later layers use 2*ngf and 4*ngf.
        n_blocks: residual blocks at the bottleneck (>= 0).
        norm: "instance" (CycleGAN), "batch", "layer" or "none"; see :func:`get_norm_layer`.
        use_dropout: dropout 0.5 inside each residual block (off in CycleGAN).
        padding_type: "reflect", "replicate" or "zero" padding inside the residual blocks.
        init_type, init_gain: weight initialisation, see :func:`init_weights`.
        antialias: anti-aliased downsampling (CUT's default; off in CycleGAN).
        antialias_up: anti-aliased upsampling instead of transposed convs (CUT's default).
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
        antialias: bool = False,
        antialias_up: bool = False,
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
            stride = 1 if antialias else 2  # anti-aliased: full-resolution conv, then blur-subsample
            model += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=stride, padding=1, bias=use_bias),
                norm_layer(ngf * mult * 2),
                nn.ReLU(True),
            ]
            if antialias:
                model.append(BlurDownsample(ngf * mult * 2))
        mult = 2**n_downsampling
        model += [ResnetBlock(ngf * mult, padding_type, norm, use_dropout, use_bias) for _ in range(n_blocks)]
        for i in range(n_downsampling):
            mult = 2 ** (n_downsampling - i)
            if antialias_up:
                model += [
                    BlurUpsample(ngf * mult),
                    nn.Conv2d(ngf * mult, ngf * mult // 2, kernel_size=3, padding=1, bias=use_bias),
                    norm_layer(ngf * mult // 2),
                    nn.ReLU(True),
                ]
                continue
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

    def encode(self, x: Tensor, layers: Sequence[int]) -> list[Tensor]:
        """The outputs of ``self.model[i]`` for each ``i`` in ``layers`` (ascending), in that order.

        CUT's ``nce_layers`` ``0, 4, 8, 12, 16`` with anti-aliasing on: the padded input, the first and
        second downsampling convs, residual blocks 1 and 5. The pass stops after the last layer asked for.
        """
        self.check_layers(layers)
        wanted, features = set(layers), []
        for index, layer in enumerate(self.model):
            x = layer(x)
            if index in wanted:
                features.append(x)
            if index == layers[-1]:
                break
        return features

    def feature_channels(self, layers: Sequence[int]) -> list[int]:
        """Channels of :meth:`encode`'s features, read from the layer list (no forward pass)."""
        self.check_layers(layers)
        channels, widths = self.model[1].in_channels, []
        for index, layer in enumerate(self.model):
            channels = getattr(layer, "out_channels", channels)  # convs change it; the rest keep it
            if index in layers:
                widths.append(channels)
        return widths

    def check_layers(self, layers: Sequence[int]) -> None:
        last = len(self.model) - 1
        if not layers or list(layers) != sorted(set(layers)) or not 0 <= layers[0] <= layers[-1] <= last:
            raise ValueError(
                f"{type(self).__name__}: feature layers must be distinct ascending indices into its "
                f"{last + 1} layers (0..{last}), got {list(layers)}. CUT uses 0,4,8,12,16 on resnet_9blocks."
            )
