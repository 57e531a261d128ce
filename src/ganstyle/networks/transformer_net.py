"""Image transformation network of fast neural style (Johnson et al. 2016, "Perceptual Losses for
Real-Time Style Transfer and Super-Resolution"), as in pytorch/examples ``fast_neural_style``.

Two changes from the paper follow pytorch/examples and Ulyanov et al. (2016): instance norm instead
of batch norm, and nearest-neighbour upsampling followed by a conv instead of fractionally strided
convs (which leave checkerboard artefacts, Odena et al. 2016). Attribute names match
pytorch/examples, so its ``*.pth`` style models load with ``load_state_dict`` -- but those were
trained on images in [0, 255], not the [-1, 1] used here.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ganstyle.networks.init import check_init, check_int, init_weights


class ConvLayer(nn.Module):
    """Reflection padding (kernel_size // 2) then a conv, so stride 1 keeps H and W."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2d(self.reflection_pad(x))


class UpsampleConvLayer(nn.Module):
    """Nearest-neighbour upsampling by ``upsample``, then a reflection-padded conv."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int, upsample: int | None = None
    ) -> None:
        super().__init__()
        self.upsample = upsample
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x: Tensor) -> Tensor:
        if self.upsample:
            x = F.interpolate(x, mode="nearest", scale_factor=self.upsample)
        return self.conv2d(self.reflection_pad(x))


class ResidualBlock(nn.Module):
    """``x + IN(conv(ReLU(IN(conv(x)))))`` with 3x3 reflection-padded convs (He et al. 2016)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in1 = nn.InstanceNorm2d(channels, affine=True)
        self.conv2 = ConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in2 = nn.InstanceNorm2d(channels, affine=True)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.in1(self.conv1(x)))
        return x + self.in2(self.conv2(out))


class TransformerNet(nn.Module):
    """Johnson et al.'s feed-forward style network: one network per style.

    Conv9x9 3->32, Conv3x3 s2 32->64, Conv3x3 s2 64->128 (affine InstanceNorm, ReLU), 5 residual
    blocks at 128 channels, two (upsample x2, Conv3x3) 128->64->32 with InstanceNorm and ReLU,
    Conv9x9 32->3. 1,679,235 parameters.

    Images: the input is in [-1, 1], like every generator in this project. The output has no Tanh,
    as in pytorch/examples (the paper used a scaled tanh): it is unbounded and is read in the same
    [-1, 1] convention -- the content loss keeps it near the input's range, and callers clamp it to
    [-1, 1] before display or saving. H and W that are multiples of
    :attr:`size_multiple` (4) come out unchanged; inference pads to it.

    Args:
        in_channels, out_channels: image channels in and out.
        init_type: None keeps PyTorch's default initialisation, as pytorch/examples does; or one of
            the :func:`init_weights` types.
        init_gain: gain for :func:`init_weights` when ``init_type`` is not None.
    """

    size_multiple = 4  # two stride-2 convs, then two x2 upsamplings

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        init_type: str | None = None,
        init_gain: float = 0.02,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        check_int(owner, "in_channels", in_channels, 1, "It is the number of channels of the input image.")
        check_int(owner, "out_channels", out_channels, 1, "It is the number of channels of the output image.")
        check_init(init_type, init_gain, owner, allow_none=True)

        self.conv1 = ConvLayer(in_channels, 32, kernel_size=9, stride=1)
        self.in1 = nn.InstanceNorm2d(32, affine=True)
        self.conv2 = ConvLayer(32, 64, kernel_size=3, stride=2)
        self.in2 = nn.InstanceNorm2d(64, affine=True)
        self.conv3 = ConvLayer(64, 128, kernel_size=3, stride=2)
        self.in3 = nn.InstanceNorm2d(128, affine=True)
        self.res1 = ResidualBlock(128)
        self.res2 = ResidualBlock(128)
        self.res3 = ResidualBlock(128)
        self.res4 = ResidualBlock(128)
        self.res5 = ResidualBlock(128)
        self.deconv1 = UpsampleConvLayer(128, 64, kernel_size=3, stride=1, upsample=2)
        self.in4 = nn.InstanceNorm2d(64, affine=True)
        self.deconv2 = UpsampleConvLayer(64, 32, kernel_size=3, stride=1, upsample=2)
        self.in5 = nn.InstanceNorm2d(32, affine=True)
        self.deconv3 = ConvLayer(32, out_channels, kernel_size=9, stride=1)
        self.relu = nn.ReLU()
        if init_type is not None:
            init_weights(self, init_type, init_gain)

    def forward(self, x: Tensor) -> Tensor:
        """Stylise ``(N, in_channels, H, W)`` in [-1, 1]; returns unbounded ``(N, out_channels, H, W)``."""
        y = self.relu(self.in1(self.conv1(x)))
        y = self.relu(self.in2(self.conv2(y)))
        y = self.relu(self.in3(self.conv3(y)))
        y = self.res5(self.res4(self.res3(self.res2(self.res1(y)))))
        y = self.relu(self.in4(self.deconv1(y)))
        y = self.relu(self.in5(self.deconv2(y)))
        return self.deconv3(y)
