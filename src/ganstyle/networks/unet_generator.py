"""U-Net generator of pix2pix (Isola et al. 2017, "Image-to-Image Translation with Conditional
Adversarial Networks"), built recursively from skip-connection blocks as in
junyanz/pytorch-CycleGAN-and-pix2pix; module names match it, so the authors' pix2pix state dicts load.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ganstyle.networks.init import check_init, check_int, init_weights
from ganstyle.networks.norm import check_norm, get_norm_layer, uses_bias


class UnetSkipConnectionBlock(nn.Module):
    """One U-Net level: ``x -> [x, up(submodule(down(x)))]`` concatenated on channels.

    down = LeakyReLU(0.2), Conv4x4 s2, norm; up = ReLU, ConvTranspose4x4 s2, norm, [dropout 0.5].
    The outermost level has no activation or norm on its down path, ends in Tanh and returns no
    skip; the innermost has no submodule and no norm on its down path (its output is 1x1 at the
    reference size, where batch norm over a batch of one would fail).
    """

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        input_nc: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        norm: str = "batch",
        use_dropout: bool = False,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        norm_layer = get_norm_layer(norm)
        use_bias = uses_bias(norm)
        if input_nc is None:
            input_nc = outer_nc
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
        # Not in place, unlike the reference; forward() reproduces what its in-place version computes.
        downrelu = nn.LeakyReLU(0.2)
        downnorm = norm_layer(inner_nc)
        uprelu = nn.ReLU(True)
        upnorm = norm_layer(outer_nc)

        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            model = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
            model = [downrelu, downconv, uprelu, upconv, upnorm]
        else:
            upconv = nn.ConvTranspose2d(
                inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias
            )
            model = [downrelu, downconv, downnorm, submodule, uprelu, upconv, upnorm]
            if use_dropout:
                model.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*model)

    def forward(self, x: Tensor) -> Tensor:
        if self.outermost:
            return self.model(x)
        # In the reference the first layer is LeakyReLU(inplace=True): it overwrites x before the
        # concatenation, so the skip branch carries LeakyReLU(x), not x. Pretrained pix2pix weights
        # expect that, so we compute it explicitly instead of through an in-place side effect.
        x = self.model[0](x)
        return torch.cat([x, self.model[1:](x)], 1)


class UnetGenerator(nn.Module):
    """pix2pix's ``unet_256`` (``num_downs=8``) / ``unet_128`` (``num_downs=7``) generator.

    Encoder C64-C128-C256-C512-C512-C512-C512-C512 (for ``num_downs=8``, ngf=64), a mirrored decoder
    with skip connections between each level, Tanh output. ``num_downs - 5`` levels at 8*ngf
    channels sit between the innermost block and the 4*ngf level; those decoder blocks get dropout
    0.5 when ``use_dropout`` (the three 512-channel blocks next to the bottleneck in ``unet_256``).

    Images: input and output in [-1, 1]. H and W must be multiples of :attr:`size_multiple`
    (``2 ** num_downs``; 256 for ``unet_256``) so that the bottleneck is 1x1 and the skips line up.

    Dropout: the paper keeps dropout active at test time as the generator's noise source; whoever
    calls ``eval()`` (inference, export) decides whether to switch it back on for these modules.

    Parameters (ngf=64, batch norm): 54,413,955 for ``num_downs=8``, 41,828,995 for ``num_downs=7``.

    Args:
        in_channels, out_channels: image channels in and out.
        num_downs: number of stride-2 downsamplings (>= 5).
        ngf: filters of the outermost conv layer; inner levels use up to 8*ngf.
        norm: "batch" (pix2pix), "instance", "layer" or "none"; see :func:`get_norm_layer`.
        use_dropout: dropout 0.5 in the ``num_downs - 5`` inner 8*ngf decoder blocks.
        init_type, init_gain: weight initialisation, see :func:`init_weights`.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        num_downs: int = 8,
        ngf: int = 64,
        norm: str = "batch",
        use_dropout: bool = True,
        init_type: str = "normal",
        init_gain: float = 0.02,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        check_int(owner, "in_channels", in_channels, 1, "It is the number of channels of the input image.")
        check_int(owner, "out_channels", out_channels, 1, "It is the number of channels of the output image.")
        check_int(
            owner,
            "num_downs",
            num_downs,
            5,
            "It is the number of stride-2 downsamplings; the U-Net has five fixed levels "
            "(ngf, 2ngf, 4ngf, 8ngf, innermost) and num_downs - 5 extra 8ngf levels. "
            "Use 8 for 256 px images (unet_256) or 7 for 128 px (unet_128).",
        )
        check_int(owner, "ngf", ngf, 1, "It is the width of the outermost conv layer (64 in pix2pix).")
        check_norm(norm, owner)
        check_init(init_type, init_gain, owner)
        self.size_multiple = 2**num_downs  # the bottleneck must come out at a whole 1x1 or larger
        # One multiple is enough: at 2**num_downs px the innermost level is 1x1 and has no norm layer,
        # which is the size the U-Net was designed for (unet_256 at 256 px).
        self.min_side = self.size_multiple

        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, norm=norm, innermost=True)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(
                ngf * 8, ngf * 8, submodule=block, norm=norm, use_dropout=use_dropout
            )
        block = UnetSkipConnectionBlock(ngf * 4, ngf * 8, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf * 2, ngf * 4, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf, ngf * 2, submodule=block, norm=norm)
        self.model = UnetSkipConnectionBlock(
            out_channels, ngf, input_nc=in_channels, submodule=block, outermost=True, norm=norm
        )
        init_weights(self, init_type, init_gain)

    def forward(self, x: Tensor) -> Tensor:
        """Translate ``(N, in_channels, H, W)`` in [-1, 1] to ``(N, out_channels, H, W)`` in [-1, 1]."""
        return self.model(x)
