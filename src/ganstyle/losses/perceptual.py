"""Perceptual losses on frozen VGG features: content, style (Gram, or AdaIN's mean and deviation), total
variation.

Every loss here returns its unweighted term; the model multiplies each by its ``loss.*_weight``
(``content_weight``, ``style_weight``, ``tv_weight``) in its step. Per-layer weights w_l are part of a
term's definition (they say how layers combine into one number), not a ``loss.*`` weight.

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
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from ganstyle.networks.adain import calc_mean_std
from ganstyle.networks.vgg import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, VGGFeatures

if TYPE_CHECKING:  # style_targets imports this module
    from ganstyle.losses.style_targets import StyleTargets


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
    with one layer (the papers' choice) it is the plain feature MSE, as in pytorch/examples. Unweighted:
    the model multiplies it by ``loss.content_weight``.
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
    Unweighted: the model multiplies it by ``loss.style_weight``.
    """

    def __init__(
        self, layers: Sequence[str], layer_weights: Sequence[float] | Mapping[str, float] | None = None
    ):
        super().__init__()
        self.layers = list(layers)
        self.layer_weights = _layer_weights(self.layers, layer_weights)

    def grams(self, features: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {layer: gram_matrix(features[layer]) for layer in self.layers}

    def targets(self, features: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The style statistics this loss compares (Grams), per layer; see :meth:`forward_targets`."""
        return self.grams(features)

    def forward_targets(
        self, output_features: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        return self.forward_grams(output_features, targets)

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


class MeanStdStyleLoss(nn.Module):
    """AdaIN's style loss (Huang & Belongie 2017, Eq. 13):

        L_style = sum_l w_l * ( mean_{b,c} (mu_l(output) - mu_l(style))^2
                              + mean_{b,c} (sigma_l(output) - sigma_l(style))^2 )

    mu_l, sigma_l are per-sample, per-channel mean and standard deviation of the features over H and W
    (unbiased variance + 1e-5, :func:`~ganstyle.networks.adain.calc_mean_std`). The paper and
    naoto0804's code *sum* the layers (w_l = 1); w_l defaults to 1/L like the other terms here, so AdaIN
    passes ones. A style batch of 1 is broadcast over the output batch. Unweighted: the model multiplies
    it by ``loss.style_weight``.
    """

    def __init__(
        self, layers: Sequence[str], layer_weights: Sequence[float] | Mapping[str, float] | None = None
    ):
        super().__init__()
        self.layers = list(layers)
        self.layer_weights = _layer_weights(self.layers, layer_weights)

    def targets(self, features: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per layer, the mean and deviation stacked: (2, B, C, 1, 1)."""
        return {layer: torch.stack(calc_mean_std(features[layer])) for layer in self.layers}

    def forward_targets(
        self, output_features: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        total = 0.0
        for layer, weight in self.layer_weights.items():
            output_mean, output_std = calc_mean_std(output_features[layer])
            target_mean, target_std = targets[layer]
            total = (
                total
                + weight * F.mse_loss(output_mean, target_mean)
                + weight * F.mse_loss(output_std, target_std)
            )
        return total

    def forward(
        self, output_features: Mapping[str, torch.Tensor], style_features: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        return self.forward_targets(output_features, self.targets(style_features))


STYLE_LOSSES = {"gram": StyleLoss, "mean_std": MeanStdStyleLoss}


class TotalVariationLoss(nn.Module):
    """L_tv = mean |x[:, :, i+1, j] - x[:, :, i, j]|^p + mean |x[:, :, i, j+1] - x[:, :, i, j]|^p.

    Computed on the [-1, 1] image itself (no VGG): on a [0, 1] scale the same image gives 2^-p times this
    value. p=1 (anisotropic TV, default) or p=2 (squared differences, Johnson et al.'s regulariser).
    Unweighted: the model multiplies it by ``loss.tv_weight``.
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
    """Unweighted content, style and TV terms from one VGG pass per image per step.

    ``forward(output, content=None, style=None)`` returns ``{"content": L_content, "style": L_style,
    "tv": L_tv}`` with the terms this criterion was built for: content with ``content_layers``, style with
    ``style_layers``, TV with ``tv=True``. The terms are unweighted: the model multiplies each by its
    ``loss.<name>_weight`` in its step and logs the weighted values. The output image goes through VGG
    once (with gradient to the image; VGG's own weights are frozen) for all content and style layers
    together; the content and style targets go through once more without a graph, in one batch when their
    sizes match. Targets can also come precomputed: ``content_features`` (Gatys' fixed content, AdaIN's
    AdaIN output), ``style_features`` (features the model already has), ``style_targets`` (a
    :class:`~ganstyle.losses.style_targets.StyleTargets`: the weighted Grams of a few fixed style
    images), or a fixed style image set once with :meth:`set_style`, whose statistics are then cached.

    ``style_statistic``: ``"gram"`` (:class:`StyleLoss`, Gatys et al., Johnson et al.) or ``"mean_std"``
    (:class:`MeanStdStyleLoss`, AdaIN). Scale: see the module docstring (images [-1, 1] ->
    ImageNet-normalised, Gram / (C*H*W), MSE per layer, mean over layers unless ``style_layer_weights``
    say otherwise). ``style_weight=1e4`` on this scale is ``2.5e3`` in pytorch/examples' units (they sum
    4 layers); their default 1e10 is our 4e10.
    """

    def __init__(
        self,
        feature_net: VGGFeatures | None,
        content_layers: Sequence[str] = (),
        style_layers: Sequence[str] = (),
        style_layer_weights: Sequence[float] | Mapping[str, float] | None = None,
        tv: bool = False,
        style_statistic: str = "gram",
    ) -> None:
        super().__init__()
        if style_statistic not in STYLE_LOSSES:
            raise ValueError(
                f"style_statistic must be one of {sorted(STYLE_LOSSES)}, got {style_statistic!r}"
            )
        self.feature_net = feature_net
        self.content = ContentLoss(content_layers) if content_layers else None
        self.style = (
            STYLE_LOSSES[style_statistic](style_layers, style_layer_weights) if style_layers else None
        )
        self.tv = TotalVariationLoss() if tv else None
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
        """Cache the style statistics of a fixed style image batch (in [-1, 1]); ``None`` clears the cache."""
        self._cached_style_layers = None
        if style is None or self.style is None:
            return
        for layer, target in self.style.targets(self.feature_net(style)).items():
            self.register_buffer(f"style_gram_{layer}", target, persistent=False)  # moves with .to(device)
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
        self,
        output: torch.Tensor,
        content: torch.Tensor | None = None,
        style: torch.Tensor | None = None,
        *,
        content_features: Mapping[str, torch.Tensor] | None = None,
        style_features: Mapping[str, torch.Tensor] | None = None,
        style_targets: StyleTargets | None = None,
    ) -> dict[str, torch.Tensor]:
        terms: dict[str, torch.Tensor] = {}
        if self.content is not None and content is None and content_features is None:
            raise ValueError("the content term needs the content image (or its content_features)")
        style_given = style is not None or style_features is not None or style_targets is not None
        style_cache = None if style_given else self._style_cache()
        if self.style is not None and not style_given and style_cache is None:
            raise ValueError("the style term needs the style image (or its features) or set_style() once")
        if self.content is not None or self.style is not None:
            output_features = self.feature_net(output)
            computed_content, computed_style = self._target_features(
                content if self.content is not None and content_features is None else None,
                style if self.style is not None and style_features is None else None,
            )
            if self.content is not None:
                target = content_features if content_features is not None else computed_content
                terms["content"] = self.content(output_features, target)
            if self.style is not None:
                if style_targets is not None:
                    terms["style"] = style_targets.distance(self.style, output_features)
                else:
                    features = style_features if style_features is not None else computed_style
                    targets = self.style.targets(features) if features is not None else style_cache
                    terms["style"] = self.style.forward_targets(output_features, targets)
        if self.tv is not None:
            terms["tv"] = self.tv(output)
        return terms


def weighted_perceptual_terms(
    terms: Mapping[str, torch.Tensor], loss_cfg: Mapping[str, Any]
) -> dict[str, torch.Tensor]:
    """The criterion's terms times their weights: ``{name: loss_cfg[f"{name}_weight"] * term}``, i.e.
    content_weight * L_content, style_weight * L_style, tv_weight * L_tv."""
    return {name: loss_cfg[f"{name}_weight"] * value for name, value in terms.items()}


def build_perceptual_criterion(loss_cfg: Mapping) -> PerceptualCriterion | None:
    """Build the criterion from the ``loss`` config group (a plain dict or DictConfig).

    Reads ``content_weight``, ``style_weight``, ``tv_weight`` (missing = 0) and ``feature_net: {arch,
    weights, weights_path, content_layers, style_layers, style_layer_weights, pooling, download}``; layers
    default to the papers' choice for the arch (VGG19: Gatys et al., VGG16: Johnson et al.). Returns None
    when every weight is 0, and builds no VGG (loads no weights file) unless a content or style weight is
    non-zero: a zero weight costs nothing. The weights only decide which terms exist: the criterion
    returns them unweighted and the model multiplies each by its weight.
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
        tv=bool(tv_weight),
    )
