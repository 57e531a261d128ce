"""Frozen VGG feature extractor for perceptual (content / style) losses and AdaIN-style encoders."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from torch import nn
from torchvision.models.vgg import cfgs, make_layers

from ganstyle.weights import keep_out_of_checkpoints, load_weights

log = logging.getLogger(__name__)

_ARCH_CFG = {"vgg16": "D", "vgg19": "E"}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Layers used by the papers (see REFERENCE.md): Gatys et al. 2016 on VGG19, Johnson et al. 2016 on VGG16.
DEFAULT_CONTENT_LAYERS: dict[str, tuple[str, ...]] = {"vgg19": ("relu4_2",), "vgg16": ("relu2_2",)}
DEFAULT_STYLE_LAYERS: dict[str, tuple[str, ...]] = {
    "vgg19": ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
    "vgg16": ("relu1_2", "relu2_2", "relu3_3", "relu4_3"),
}


def vgg_layer_names(arch: str) -> list[str]:
    """Names of the modules of torchvision's ``vgg.features`` in order: conv1_1, relu1_1, ..., pool5."""
    if arch not in _ARCH_CFG:
        raise ValueError(f"Unknown VGG arch {arch!r}; expected one of {sorted(_ARCH_CFG)}.")
    names, block, index = [], 1, 1
    for value in cfgs[_ARCH_CFG[arch]]:
        if value == "M":
            names.append(f"pool{block}")
            block, index = block + 1, 1
        else:
            names += [f"conv{block}_{index}", f"relu{block}_{index}"]
            index += 1
    return names


class VGGFeatures(nn.Module):
    """Truncated, frozen torchvision VGG returning the activations of named layers.

    Input: images in [-1, 1] (the project's convention), shape (B, 3, H, W). Inside, they are mapped to
    [0, 1] and normalised with the ImageNet mean/std the weights were trained with, so a loss on these
    features has the same scale as in pytorch/examples' fast_neural_style (which divides its [0, 255]
    images by 255 before the same normalisation).

    ``forward`` runs the network once, up to the deepest requested layer, and returns ``{name: tensor}``.
    Names are ``conv{block}_{i}`` (before the ReLU), ``relu{block}_{i}`` and ``pool{block}``.

    The network is frozen: parameters have ``requires_grad=False`` (gradients flow to the input only), it
    stays in eval mode whatever ``train()`` is called with, and its weights are left out of checkpoints
    (they come from the weights file; see :func:`ganstyle.weights.keep_out_of_checkpoints`).

    Args:
        arch: "vgg19" or "vgg16".
        layers: layer names to return.
        weights: "imagenet" (torchvision's IMAGENET1K_V1 file from the torch hub cache or ``weights_path``)
            or "random", an explicit opt-in for smoke tests: losses and metrics are then not comparable.
        weights_path: explicit path of the torchvision file (``loss.feature_net.weights_path``).
        pooling: "max" (as trained) or "avg" (Gatys et al. found average pooling gives smoother results).
        download: fetch the file into the cache when missing (off by default: offline machines get a clear
            :class:`~ganstyle.weights.WeightsNotFoundError` instead).
    """

    def __init__(
        self,
        arch: str = "vgg19",
        layers: Sequence[str] = DEFAULT_STYLE_LAYERS["vgg19"],
        weights: str = "imagenet",
        weights_path: str | None = None,
        pooling: str = "max",
        download: bool = False,
    ) -> None:
        super().__init__()
        names = vgg_layer_names(arch)
        layers = list(dict.fromkeys(layers))  # unique, order kept
        unknown = [name for name in layers if name not in names]
        if not layers or unknown:
            raise ValueError(
                f"Unknown or no VGG layers {unknown or layers!r} for {arch}; valid names: {names}"
            )
        if pooling not in ("max", "avg"):
            raise ValueError(f"pooling must be 'max' or 'avg', got {pooling!r}")
        if weights not in ("imagenet", "random"):
            raise ValueError(f"weights must be 'imagenet' or 'random', got {weights!r}")
        self.arch, self.layers, self.weights, self.pooling = arch, layers, weights, pooling

        depth = max(names.index(name) for name in layers) + 1
        features = make_layers(cfgs[_ARCH_CFG[arch]])
        if weights == "imagenet":
            state = load_weights(arch, weights_path, download=download)
            features.load_state_dict(
                {
                    name.removeprefix("features."): value
                    for name, value in state.items()
                    if name.startswith("features.")
                }
            )
        else:
            log.warning(
                "VGGFeatures(%s) uses RANDOM weights (weights='random'): perceptual losses computed with it are "
                "not comparable to any published or pretrained-VGG result. Use only for smoke tests.",
                arch,
            )
            # torchvision's initialisation for an untrained VGG
            for module in features.modules():
                if isinstance(module, nn.Conv2d):
                    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                    nn.init.zeros_(module.bias)

        modules: list[nn.Module] = []
        for module in list(features)[:depth]:
            if isinstance(module, nn.ReLU):
                module = nn.ReLU(inplace=False)  # in place would overwrite a returned conv* activation
            elif isinstance(module, nn.MaxPool2d) and pooling == "avg":
                module = nn.AvgPool2d(kernel_size=2, stride=2)
            modules.append(module)
        # Keep torchvision's indices ("features.0.weight", ...) so the trunk reads like the weights file.
        self.features = nn.Sequential(*modules)
        self._names = names[:depth]
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        super().train(False)
        keep_out_of_checkpoints(self)

    def train(self, mode: bool = True) -> VGGFeatures:
        """Stay in eval mode: the network is a fixed measuring device, not a trained part."""
        return super().train(False)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """[-1, 1] images -> [0, 1] -> ImageNet-normalised input of the network."""
        return ((images + 1.0) * 0.5 - self.mean) / self.std

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.normalize(images)
        wanted = set(self.layers)
        outputs = {}
        for name, module in zip(self._names, self.features):
            x = module(x)
            if name in wanted:
                outputs[name] = x
        return {name: outputs[name] for name in self.layers}

    def extra_repr(self) -> str:
        return f"arch={self.arch}, weights={self.weights}, pooling={self.pooling}, layers={self.layers}"
