"""Perceptual losses on frozen VGG features: content, style (Gram), total variation.

Scale of every term (this is what gives ``content_weight`` / ``style_weight`` their meaning):

* images are in [-1, 1]; :class:`~ganstyle.networks.vgg.VGGFeatures` maps them to [0, 1] and normalises
  with the ImageNet mean/std before VGG, so features F_l have shape (B, C_l, H_l, W_l) on the scale VGG
  was trained on;
* Gram matrices are divided by C*H*W: G_l = F_l F_l^T / (C_l H_l W_l);
* each layer's error is a mean squared error (mean over all elements), and layers are combined with
  weights w_l that default to 1/L: the loss is the *mean* over layers, not the sum.

Relation to pytorch/examples' fast_neural_style (content 1e5 at relu2_2, style 1e10 at relu1_2, relu2_2,
relu3_3, relu4_3). Its images are in [0, 255], but its ``normalize_batch`` divides by 255 before the same
ImageNet normalisation, and its Gram is also divided by C*H*W: the VGG features, the Grams and each
layer's MSE are identical to ours. The [0, 255] range therefore contributes no factor. The one difference
is the reduction over layers: it *sums* the 4 style layers, we average them, a factor L = 4. Hence

    ours(style_weight=w)  ==  pytorch/examples(style_weight=w / 4)
    pytorch/examples' 1e10  ==  our style_weight=4e10, with content_weight=1e5 unchanged (one layer).

So ``style_weight=1e4`` on our scale is pytorch/examples' 2.5e3, i.e. 4e6 times weaker than their
default. In ratio terms their style:content is 1e10:1e5 over summed layers = 4e5:1 in our units, while
content_weight=1 with style_weight=1e4 is 1e4:1: forty times less style relative to content. In absolute
size our content term is 1e5 times and our style term 4e6 times smaller than theirs, which matters next to
adversarial and cycle terms of order 1. To reproduce pytorch/examples use content_weight=1e5 and
style_weight=4e10 with its VGG16 layers. The PyTorch neural-style tutorial (Gatys-style optimisation)
uses the same normalisation and Gram with style_weight=1e6 summed over 5 style layers (its conv_1..conv_5,
the first five convolutions) and content weight 1: our 5e6 on those layers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from ganstyle.networks.vgg import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, VGGFeatures


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """G = F F^T / (C*H*W) for features (B, C, H, W); returns (B, C, C), always in float32.

    Computed outside autocast: under mixed precision the undivided sums over H*W (about 1e9 for
    ImageNet VGG features at 256 px) would overflow float16 before the division.
    """
    b, c, h, w = features.shape
    with torch.autocast(device_type=features.device.type, enabled=False):
        flat = features.reshape(b, c, h * w).float()
        return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)


def _layer_weights(
    layers: Sequence[str], weights: Sequence[float] | Mapping[str, float] | None
) -> dict[str, float]:
    if weights is None:
        return {layer: 1.0 / len(layers) for layer in layers}  # mean over layers
    if isinstance(weights, Mapping):
        missing = [layer for layer in layers if layer not in weights]
        if missing:
            raise ValueError(f"layer weights missing for {missing}")
        return {layer: float(weights[layer]) for layer in layers}
    if len(weights) != len(layers):
        raise ValueError(f"{len(weights)} layer weights for {len(layers)} layers {list(layers)}")
    return {layer: float(weight) for layer, weight in zip(layers, weights)}


class ContentLoss(nn.Module):
    """L_content = sum_l w_l * mean_{b,c,h,w} (F_l(output) - F_l(content))^2.

    F_l are VGG features of ImageNet-normalised images (see the module docstring); w_l defaults to 1/L, so
    with one layer (the papers' choice) it is the plain feature MSE, as in pytorch/examples.
    """

    def __init__(
        self, layers: Sequence[str], layer_weights: Sequence[float] | Mapping[str, float] | None = None
    ):
        super().__init__()
        self.layers = list(layers)
        self.layer_weights = _layer_weights(self.layers, layer_weights)

    def forward(
        self, output_features: Mapping[str, torch.Tensor], target_features: Mapping[str, torch.Tensor]
    ):
        return sum(
            weight * (output_features[layer] - target_features[layer]).square().mean()
            for layer, weight in self.layer_weights.items()
        )


class StyleLoss(nn.Module):
    """L_style = sum_l w_l * mean_{b,i,j} (G_l(output) - G_l(style))^2, G = F F^T / (C*H*W).

    w_l defaults to 1/L (mean over layers; pytorch/examples sums, see the module docstring for the factor).
    Style Grams of batch 1 are broadcast over the output batch (one style image for all outputs); a batch
    of the output's size is compared image by image. ``forward`` takes style *features*; pass precomputed
    Grams (from :meth:`grams`) to ``forward_grams`` to skip recomputing a fixed style image every step.
    """

    def __init__(
        self, layers: Sequence[str], layer_weights: Sequence[float] | Mapping[str, float] | None = None
    ):
        super().__init__()
        self.layers = list(layers)
        self.layer_weights = _layer_weights(self.layers, layer_weights)

    def grams(self, features: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {layer: gram_matrix(features[layer]) for layer in self.layers}

    def forward_grams(
        self, output_features: Mapping[str, torch.Tensor], style_grams: Mapping[str, torch.Tensor]
    ):
        total = 0.0
        for layer, weight in self.layer_weights.items():
            output_gram, style_gram = gram_matrix(output_features[layer]), style_grams[layer]
            if style_gram.shape[0] not in (1, output_gram.shape[0]):
                raise ValueError(
                    f"style batch {style_gram.shape[0]} must be 1 or the output batch {output_gram.shape[0]}"
                )
            total = total + weight * (output_gram - style_gram).square().mean()
        return total

    def forward(
        self, output_features: Mapping[str, torch.Tensor], style_features: Mapping[str, torch.Tensor]
    ):
        return self.forward_grams(output_features, self.grams(style_features))


class TotalVariationLoss(nn.Module):
    """L_tv = mean |x[:, :, i+1, j] - x[:, :, i, j]|^p + mean |x[:, :, i, j+1] - x[:, :, i, j]|^p.

    Computed on the [-1, 1] image itself (no VGG): on a [0, 1] scale the same image gives 2^-p times this
    value. p=1 (anisotropic TV, default) or p=2 (squared differences, Johnson et al.'s regulariser).
    """

    def __init__(self, p: int = 1):
        super().__init__()
        if p not in (1, 2):
            raise ValueError(f"p must be 1 or 2, got {p!r}")
        self.p = p

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        dy = images[:, :, 1:, :] - images[:, :, :-1, :]
        dx = images[:, :, :, 1:] - images[:, :, :, :-1]
        if self.p == 1:
            return dy.abs().mean() + dx.abs().mean()
        return dy.square().mean() + dx.square().mean()


class PerceptualCriterion(nn.Module):
    """Weighted content, style and TV terms from one VGG pass per image per step.

    ``forward(output, content=None, style=None)`` returns ``{"content": content_weight * L_content,
    "style": style_weight * L_style, "tv": tv_weight * L_tv}``, with only the terms whose weight is non-zero;
    add ``sum(terms.values())`` to the generator loss and log each term. The output image goes through VGG
    once (with gradient to the image; VGG's own weights are frozen) for all content and style layers
    together; the content and style targets go through once more without a graph, in one batch when their
    sizes match. A fixed style image can be set once with :meth:`set_style`: its Grams are then cached.
    A term is computed if and only if its weight is non-zero (all default to 0).

    Scale: see the module docstring (images [-1, 1] -> ImageNet-normalised, Gram / (C*H*W), MSE per layer,
    mean over layers). ``style_weight=1e4`` here is ``2.5e3`` in pytorch/examples' units (they sum 4
    layers); their default 1e10 is our 4e10.
    """

    def __init__(
        self,
        feature_net: VGGFeatures | None,
        content_layers: Sequence[str] = (),
        style_layers: Sequence[str] = (),
        style_layer_weights: Sequence[float] | Mapping[str, float] | None = None,
        content_weight: float = 0.0,
        style_weight: float = 0.0,
        tv_weight: float = 0.0,
    ) -> None:
        super().__init__()
        self.content_weight, self.style_weight, self.tv_weight = (
            float(content_weight),
            float(style_weight),
            float(tv_weight),
        )
        self.feature_net = feature_net
        self.content = ContentLoss(content_layers) if self.content_weight and content_layers else None
        self.style = (
            StyleLoss(style_layers, style_layer_weights) if self.style_weight and style_layers else None
        )
        self.tv = TotalVariationLoss() if self.tv_weight else None
        if self.content_weight and not content_layers:
            raise ValueError("content_weight is non-zero but no content_layers are given")
        if self.style_weight and not style_layers:
            raise ValueError("style_weight is non-zero but no style_layers are given")
        needed = (self.content.layers if self.content else []) + (self.style.layers if self.style else [])
        if needed:
            if feature_net is None:
                raise ValueError("content or style terms need a feature_net")
            missing = sorted(set(needed) - set(feature_net.layers))
            if missing:
                raise ValueError(
                    f"feature_net does not compute the layers {missing} (it has {feature_net.layers})"
                )
        self._cached_style_layers: list[str] | None = None

    @torch.no_grad()
    def set_style(self, style: torch.Tensor | None) -> None:
        """Cache the Grams of a fixed style image batch (in [-1, 1]); ``None`` clears the cache."""
        self._cached_style_layers = None
        if style is None or self.style is None:
            return
        for layer, gram in self.style.grams(self.feature_net(style)).items():
            self.register_buffer(f"style_gram_{layer}", gram, persistent=False)  # moves with .to(device)
        self._cached_style_layers = list(self.style.layers)

    def _style_cache(self) -> dict[str, torch.Tensor] | None:
        if self._cached_style_layers is None:
            return None
        return {layer: getattr(self, f"style_gram_{layer}") for layer in self._cached_style_layers}

    @torch.no_grad()
    def _target_features(self, content: torch.Tensor | None, style: torch.Tensor | None):
        if content is not None and style is not None:
            if content is style:
                features = self.feature_net(content)
                return features, features
            if content.shape[1:] == style.shape[1:]:
                both = self.feature_net(torch.cat([content, style]))
                n = content.shape[0]
                return {k: v[:n] for k, v in both.items()}, {k: v[n:] for k, v in both.items()}
        return (
            self.feature_net(content) if content is not None else None,
            self.feature_net(style) if style is not None else None,
        )

    def forward(
        self, output: torch.Tensor, content: torch.Tensor | None = None, style: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        terms: dict[str, torch.Tensor] = {}
        if self.content is not None and content is None:
            raise ValueError("content_weight is non-zero: pass the content image")
        style_grams = self._style_cache() if style is None else None
        if self.style is not None and style is None and style_grams is None:
            raise ValueError("style_weight is non-zero: pass the style image or call set_style() once")
        if self.content is not None or self.style is not None:
            output_features = self.feature_net(output)
            content_features, style_features = self._target_features(
                content if self.content is not None else None, style if self.style is not None else None
            )
            if self.content is not None:
                terms["content"] = self.content_weight * self.content(output_features, content_features)
            if self.style is not None:
                if style_features is not None:
                    style_grams = self.style.grams(style_features)
                terms["style"] = self.style_weight * self.style.forward_grams(output_features, style_grams)
        if self.tv is not None:
            terms["tv"] = self.tv_weight * self.tv(output)
        return terms


def build_perceptual_criterion(loss_cfg: Mapping) -> PerceptualCriterion | None:
    """Build the criterion from the ``loss`` config group (a plain dict or DictConfig).

    Reads ``content_weight``, ``style_weight``, ``tv_weight`` (missing = 0) and ``feature_net: {arch,
    weights, weights_path, content_layers, style_layers, style_layer_weights, pooling, download}``; layers
    default to the papers' choice for the arch (VGG19: Gatys et al., VGG16: Johnson et al.). Returns None
    when every weight is 0, and builds no VGG (loads no weights file) unless a content or style weight is
    non-zero: a zero weight costs nothing.
    """
    content_weight = float(loss_cfg.get("content_weight", 0.0) or 0.0)
    style_weight = float(loss_cfg.get("style_weight", 0.0) or 0.0)
    tv_weight = float(loss_cfg.get("tv_weight", 0.0) or 0.0)
    if not (content_weight or style_weight or tv_weight):
        return None
    net_cfg = dict(loss_cfg.get("feature_net") or {})
    arch = net_cfg.get("arch", "vgg19")
    if arch not in DEFAULT_CONTENT_LAYERS:
        raise ValueError(
            f"loss.feature_net.arch must be one of {sorted(DEFAULT_CONTENT_LAYERS)}, got {arch!r}"
        )
    content_layers = (
        list(net_cfg.get("content_layers") or DEFAULT_CONTENT_LAYERS[arch]) if content_weight else []
    )
    style_layers = list(net_cfg.get("style_layers") or DEFAULT_STYLE_LAYERS[arch]) if style_weight else []
    style_layer_weights = net_cfg.get("style_layer_weights")
    if style_layer_weights is not None:
        style_layer_weights = (
            dict(style_layer_weights)
            if isinstance(style_layer_weights, Mapping)
            else list(style_layer_weights)
        )
    feature_net = None
    if content_layers or style_layers:
        feature_net = VGGFeatures(
            arch=arch,
            layers=list(dict.fromkeys(content_layers + style_layers)),
            weights=net_cfg.get("weights", "imagenet"),
            weights_path=net_cfg.get("weights_path"),
            pooling=net_cfg.get("pooling", "max"),
            download=bool(net_cfg.get("download", False)),
        )
    return PerceptualCriterion(
        feature_net,
        content_layers=content_layers,
        style_layers=style_layers,
        style_layer_weights=style_layer_weights,
        content_weight=content_weight,
        style_weight=style_weight,
        tv_weight=tv_weight,
    )
