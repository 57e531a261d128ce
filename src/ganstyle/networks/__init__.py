"""Plain ``nn.Module`` networks: generators, discriminators and the AdaIN decoder.

Each is built from plain arguments (``norm="instance"``, ``ngf=64``), so a Hydra ``_target_`` block
or a checkpoint's saved hyperparameters can rebuild it. Images enter in [-1, 1].
"""

from ganstyle.networks.adain import AdainDecoder, adaptive_instance_norm, calc_mean_std
from ganstyle.networks.antialias import BlurDownsample, BlurUpsample
from ganstyle.networks.dcgan import DCGANDiscriminator, DCGANGenerator
from ganstyle.networks.discriminators import NLayerDiscriminator, PixelDiscriminator
from ganstyle.networks.factory import define_generator
from ganstyle.networks.init import INIT_TYPES, init_weights
from ganstyle.networks.norm import NORM_TYPES, get_norm_layer, uses_bias
from ganstyle.networks.patch_sample import PatchSampleF
from ganstyle.networks.resnet_generator import ResnetBlock, ResnetGenerator
from ganstyle.networks.transformer_net import TransformerNet
from ganstyle.networks.unet_generator import UnetGenerator, UnetSkipConnectionBlock

__all__ = [
    "INIT_TYPES",
    "NORM_TYPES",
    "AdainDecoder",
    "BlurDownsample",
    "BlurUpsample",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "NLayerDiscriminator",
    "PatchSampleF",
    "PixelDiscriminator",
    "ResnetBlock",
    "ResnetGenerator",
    "TransformerNet",
    "UnetGenerator",
    "UnetSkipConnectionBlock",
    "adaptive_instance_norm",
    "calc_mean_std",
    "define_generator",
    "get_norm_layer",
    "init_weights",
    "uses_bias",
]
