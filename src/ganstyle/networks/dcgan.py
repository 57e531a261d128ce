"""DCGAN generator and discriminator (Radford et al. 2016, "Unsupervised Representation Learning with
Deep Convolutional Generative Adversarial Networks"), as in pytorch/examples ``dcgan``.

At ``image_size=64`` both networks are exactly the pytorch/examples ones (generator 3,576,704 and
discriminator 2,765,568 parameters with the defaults), except that the discriminator returns logits
instead of a sigmoid so the loss can use the numerically stable BCE-with-logits. Other powers of two
add or remove one stride-2 layer per doubling; channels stop growing at 8 * ngf / 8 * ndf, as in the
PatchGAN, so larger images do not make the 4x4 layers explode in width.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from ganstyle.networks.init import check_init, check_int, init_weights
from ganstyle.networks.norm import check_norm, get_norm_layer, uses_bias


def _check_image_size(owner: str, image_size: object) -> int:
    """Return the number of stride-2 layers between 4x4 and ``image_size``; raise if not a power of 2."""
    if (
        isinstance(image_size, bool)
        or not isinstance(image_size, int)
        or image_size < 16
        or image_size & (image_size - 1)
    ):
        raise ValueError(
            f"{owner}: image_size must be a power of two >= 16 (16, 32, 64, 128, ...), got {image_size!r}. "
            "Each layer doubles (generator) or halves (discriminator) the side, from or to 4x4. "
            "Set `data.crop_size` (which the networks follow) to such a size, with `data.load_size` at least "
            "as large (DCGAN uses 64)."
        )
    return int(math.log2(image_size)) - 2


def _width(base: int, image_size: int, side: int) -> int:
    """Channels at ``side`` px: ``base`` at ``image_size / 2``, doubling per halving, at most 8 * base."""
    return base * min(8, image_size // (2 * side))


class DCGANGenerator(nn.Module):
    """Maps a latent vector z ~ N(0, I) to an image in [-1, 1] (Tanh output).

    ConvTranspose4x4 (stride 1, no padding) from z to a 4x4 map, then ConvTranspose4x4 stride 2 layers
    that double the side up to ``image_size``; batch norm and ReLU after each except the last, which
    is followed by Tanh (the paper: no batch norm on the generator output layer). Convs have no bias
    because batch norm's shift replaces it. Weights ~ N(0, 0.02), batch-norm scales ~ N(1, 0.02).

    Args:
        latent_dim: size of z (100 in the paper).
        ngf: channels of the last hidden layer; earlier layers double it, up to 8 * ngf.
        out_channels: image channels.
        image_size: output side, a power of two >= 16.
        init_type, init_gain: weight initialisation, see :func:`init_weights`.
    """

    def __init__(
        self,
        latent_dim: int = 100,
        ngf: int = 64,
        out_channels: int = 3,
        image_size: int = 64,
        init_type: str = "normal",
        init_gain: float = 0.02,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        check_int(owner, "latent_dim", latent_dim, 1, "It is the size of the noise vector z (100 in DCGAN).")
        check_int(owner, "ngf", ngf, 1, "It is the width of the last hidden layer (64 in DCGAN).")
        check_int(owner, "out_channels", out_channels, 1, "It is the number of channels of the image.")
        n_up = _check_image_size(owner, image_size)
        check_init(init_type, init_gain, owner)
        self.latent_dim = latent_dim

        channels = _width(ngf, image_size, 4)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim, channels, 4, 1, 0, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(True),
        ]
        side = 4
        for _ in range(n_up - 1):
            side *= 2
            next_channels = _width(ngf, image_size, side)
            layers += [
                nn.ConvTranspose2d(channels, next_channels, 4, 2, 1, bias=False),
                nn.BatchNorm2d(next_channels),
                nn.ReLU(True),
            ]
            channels = next_channels
        layers += [nn.ConvTranspose2d(channels, out_channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        init_weights(self, init_type, init_gain)

    def forward(self, z: Tensor) -> Tensor:
        """Generate ``(N, out_channels, image_size, image_size)`` in [-1, 1] from z ``(N, latent_dim)``
        or ``(N, latent_dim, 1, 1)``."""
        if z.dim() == 2:
            z = z[:, :, None, None]
        return self.main(z)


class DCGANDiscriminator(nn.Module):
    """Scores images in [-1, 1]; returns one logit per image, shape ``(N,)``.

    Conv4x4 stride 2 layers halve the side down to 4x4 with LeakyReLU 0.2 (no norm on the first
    layer, as in the paper), then a 4x4 conv without padding gives one value per image.

    ``norm``: "batch" is the paper's choice. A WGAN-GP critic must not use batch norm, because its
    gradient penalty is taken per sample and batch norm mixes the samples of a batch (Gulrajani
    et al. 2017): use "layer" (their recommendation), "instance" or "none" there.

    Args:
        in_channels: image channels.
        ndf: channels of the first layer; later layers double it, up to 8 * ndf.
        image_size: input side, a power of two >= 16.
        norm: "batch", "layer", "instance" or "none".
        init_type, init_gain: weight initialisation, see :func:`init_weights`.
    """

    def __init__(
        self,
        in_channels: int = 3,
        ndf: int = 64,
        image_size: int = 64,
        norm: str = "batch",
        init_type: str = "normal",
        init_gain: float = 0.02,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        check_int(owner, "in_channels", in_channels, 1, "It is the number of channels of the image.")
        check_int(owner, "ndf", ndf, 1, "It is the width of the first layer (64 in DCGAN).")
        n_down = _check_image_size(owner, image_size)
        check_norm(norm, owner)
        check_init(init_type, init_gain, owner)
        self.image_size = image_size
        norm_layer = get_norm_layer(norm)
        # pytorch/examples has no conv bias anywhere; we keep that for the first and last convs, and
        # give the hidden convs one when their norm has no learnable shift (instance, none).
        use_bias = uses_bias(norm)

        side = image_size // 2
        channels = _width(ndf, image_size, side)
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, channels, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        for _ in range(n_down - 1):
            side //= 2
            next_channels = _width(ndf, image_size, side)
            layers += [
                nn.Conv2d(channels, next_channels, 4, 2, 1, bias=use_bias),
                norm_layer(next_channels),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            channels = next_channels
        layers.append(nn.Conv2d(channels, 1, 4, 1, 0, bias=False))
        self.main = nn.Sequential(*layers)
        init_weights(self, init_type, init_gain)

    def forward(self, x: Tensor) -> Tensor:
        """Score ``(N, in_channels, image_size, image_size)`` in [-1, 1]; returns logits ``(N,)``."""
        return self.main(x).view(-1)
