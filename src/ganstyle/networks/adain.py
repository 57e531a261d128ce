"""Adaptive instance normalisation and its decoder (Huang & Belongie 2017, "Arbitrary Style Transfer
in Real-time with Adaptive Instance Normalization"), as in naoto0804/pytorch-AdaIN.

The frozen VGG19 encoder (up to relu4_1) is a feature extractor shared with the perceptual losses
and lives with them; this module holds the parts that are trained or computed on its features.
"""

from __future__ import annotations

from torch import Tensor, nn


def calc_mean_std(feat: Tensor, eps: float = 1e-5) -> tuple[Tensor, Tensor]:
    """Per-sample, per-channel mean and standard deviation over H and W, each ``(N, C, 1, 1)``.

    As in the reference: the unbiased variance plus ``eps`` (which keeps the division in AdaIN
    finite on constant feature maps), then the square root.
    """
    n, c = feat.shape[:2]
    flat = feat.reshape(n, c, -1)
    std = (flat.var(dim=2) + eps).sqrt().view(n, c, 1, 1)
    mean = flat.mean(dim=2).view(n, c, 1, 1)
    return mean, std


def adaptive_instance_norm(content_feat: Tensor, style_feat: Tensor, eps: float = 1e-5) -> Tensor:
    """AdaIN(x, y) = sigma(y) * (x - mu(x)) / sigma(x) + mu(y), statistics over the spatial dims.

    The content features keep their spatial layout and take on the style features' channel-wise
    mean and standard deviation. Content and style may differ in H and W; a style batch of one is
    broadcast over the content batch.

    Args:
        content_feat: ``(N, C, H, W)`` encoder features of the content images (x).
        style_feat: ``(N, C, H', W')`` or ``(1, C, H', W')`` features of the style images (y).
        eps: added to the variances before the square root.
    """
    if content_feat.dim() != 4 or style_feat.dim() != 4:
        raise ValueError(
            "adaptive_instance_norm: content_feat and style_feat must be 4-D feature maps (N, C, H, W), "
            f"got shapes {tuple(content_feat.shape)} and {tuple(style_feat.shape)}. Pass encoder "
            "features, with a batch dimension even for a single image."
        )
    if content_feat.shape[1] != style_feat.shape[1] or style_feat.shape[0] not in (1, content_feat.shape[0]):
        raise ValueError(
            "adaptive_instance_norm: content and style features must have the same number of channels "
            "and the style batch must be 1 or the content batch size, got shapes "
            f"{tuple(content_feat.shape)} and {tuple(style_feat.shape)}. Encode both with the same "
            "encoder layer, and repeat or split the style batch to match."
        )
    style_mean, style_std = calc_mean_std(style_feat, eps)
    content_mean, content_std = calc_mean_std(content_feat, eps)
    return (content_feat - content_mean) / content_std * style_std + style_mean


class AdainDecoder(nn.Sequential):
    """Decoder that maps relu4_1 features (512 channels, 1/8 resolution) back to an image.

    It mirrors VGG19 up to relu4_1: 3x3 convs with reflection padding (zero padding gives border
    artefacts, the paper notes), ReLU, and nearest-neighbour x2 upsampling where the encoder
    max-pools. No normalisation layers: the paper notes that instance or batch norm in the decoder
    would pull every output towards a single style. 3,505,219 parameters.

    Built as a bare ``nn.Sequential`` with the reference's layer order, so naoto0804's published
    ``decoder.pth`` loads with ``load_state_dict``.

    Images: the output is unbounded (no Tanh, as in the reference) and lands in the range of the
    images the training encoder takes: [-1, 1] for this project's images (naoto0804's weights
    produce [0, 1]). Clamp before display. Image sides that are multiples of
    :attr:`size_multiple` (8: three poolings in the encoder) come back at their own size.
    """

    size_multiple = 8

    def __init__(self) -> None:
        def conv(in_c: int, out_c: int) -> list[nn.Module]:
            return [nn.ReflectionPad2d((1, 1, 1, 1)), nn.Conv2d(in_c, out_c, (3, 3)), nn.ReLU()]

        def up() -> list[nn.Module]:
            return [nn.Upsample(scale_factor=2, mode="nearest")]

        # Read bottom-up, this is VGG19's relu1_1..relu4_1 with each max-pool replaced by an upsampling.
        layers = conv(512, 256) + up()  # relu4_1 -> block 3
        layers += conv(256, 256) + conv(256, 256) + conv(256, 256) + conv(256, 128) + up()
        layers += conv(128, 128) + conv(128, 64) + up()
        layers += conv(64, 64) + conv(64, 3)[:-1]  # the image layer is linear: no ReLU
        super().__init__(*layers)
