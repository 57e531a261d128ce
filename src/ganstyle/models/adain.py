"""Arbitrary style transfer with adaptive instance normalisation (Huang & Belongie 2017, "Arbitrary Style
Transfer in Real-time with Adaptive Instance Normalization"), as in naoto0804/pytorch-AdaIN.

A frozen VGG19 encoder f (up to relu4_1) and a trained decoder g. For content c and style s:

    t = AdaIN(f(c), f(s)) = sigma(f(s)) * (f(c) - mu(f(c))) / sigma(f(c)) + mu(f(s))
    L = content_weight * || f(g(t)) - t ||^2
      + style_weight   * sum_{l in relu1_1, relu2_1, relu3_1, relu4_1} || mu(phi_l(g(t))) - mu(phi_l(s)) ||^2
                                                                      + || sigma(phi_l(g(t))) - sigma(phi_l(s)) ||^2

Each ||.||^2 is a mean squared error (mean over elements) and the four style layers are *summed*, as in
the reference; mu and sigma are per-channel statistics over H and W (unbiased variance + 1e-5). The content
target is the AdaIN output t, not the content features: the decoder learns to invert AdaIN. Both terms
come unweighted from a :class:`~ganstyle.losses.perceptual.PerceptualCriterion` on the encoder
(``ContentLoss`` and ``MeanStdStyleLoss``); the step multiplies them by their weights. The paper's
weights are content 1, style 10. The reference's encoder is a Caffe-converted VGG19 on [0, 1] inputs whose
first layer rescales to [0, 255]; ours is torchvision's VGG19 on ImageNet-normalised inputs, so feature
magnitudes (and the absolute loss values) differ, and the 1:10 ratio is the paper's, not re-tuned.

Training: Adam lr 1e-4 with inverse-time decay per iteration i, lr_i = lr / (1 + lr_decay * i), lr_decay
5e-5 (naoto0804's ``adjust_learning_rate``); batch 8; content and style resized to 512 and randomly cropped
to 256; 160k iterations. One optimiser, so ``global_step`` counts iterations and ``trainer.max_steps``
sets their number. The epoch-level ``scheduler`` group does not apply (the model config sets it to null).

Inference (``stylize``): content/style trade-off ``alpha``, interpolation between several styles with
weights, and colour preservation by matching each style image's colour statistics to the content first.

    python train.py model=adain                                  # CPU quick start on the embedded styles
    python train.py experiment=adain_wikiart data.content_root=/data/coco data.style=/data/wikiart trainer=gpu
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ganstyle.config import ConfigError
from ganstyle.inference.tiling import pad_to_multiple
from ganstyle.losses.perceptual import PerceptualCriterion, weighted_perceptual_terms
from ganstyle.models.base import ImageModel, InferenceConditioning, build
from ganstyle.networks.adain import adaptive_instance_norm
from ganstyle.networks.vgg import VGGFeatures

if TYPE_CHECKING:  # annotations only: typing.Unpack needs Python 3.11
    from typing_extensions import Unpack

ENCODER_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


def coral(style: torch.Tensor, content: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """The style images recoloured to the colour mean and covariance of the content images (CORAL).

    As naoto0804's ``coral`` (the paper's colour control, after Gatys et al. 2017): per image, the style's
    RGB pixels are standardised per channel, z = (x - mu_s) / sigma_s; their channel correlation R_s is
    mapped onto the content's, z' = R_c^(1/2) R_s^(-1/2) z (symmetric square roots); then
    x' = sigma_c * z' + mu_c. The result has the content's mean and covariance. One difference: the
    reference uses *un-normalised* correlations (sums over pixels) plus I, which scales the result by
    sqrt(N_content / N_style) when the images differ in size; here correlations are averages (+ eps I).
    Style (N or 1, 3, h, w) and content (N, 3, H, W) in [-1, 1]; returns (N, 3, h, w).
    """
    style = style.expand(content.shape[0], -1, -1, -1) if style.shape[0] == 1 else style
    eye = eps * torch.eye(3, dtype=torch.float64, device=style.device)

    def standardised(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        flat = image.reshape(3, -1).double()
        mean, std = flat.mean(1, keepdim=True), flat.std(1, keepdim=True).clamp_min(eps)
        return (flat - mean) / std, mean, std

    def matrix_power(matrix: torch.Tensor, power: float) -> torch.Tensor:
        values, vectors = torch.linalg.eigh(matrix)
        return (vectors * values.clamp_min(eps).pow(power)) @ vectors.T

    out = []
    for s, c in zip(style, content):
        s_norm, _, _ = standardised(s)
        c_norm, c_mean, c_std = standardised(c)
        s_corr = s_norm @ s_norm.T / (s_norm.shape[1] - 1) + eye
        c_corr = c_norm @ c_norm.T / (c_norm.shape[1] - 1) + eye
        transferred = matrix_power(c_corr, 0.5) @ matrix_power(s_corr, -0.5) @ s_norm
        out.append((transferred * c_std + c_mean).to(s.dtype).reshape(s.shape))
    return torch.stack(out)


def check_stylize_args(
    styles: Sequence[torch.Tensor], alpha: float, style_weights: Sequence[float] | None
) -> list[float]:
    """Validate the inference arguments; returns the normalised style weights."""
    if not styles or not all(
        isinstance(s, torch.Tensor) and s.dim() == 4 and s.shape[1] == 3 for s in styles
    ):
        raise ValueError(
            "AdaIN: styles must be a (N or 1, 3, h, w) tensor or a non-empty list of them, in [-1, 1]; got "
            f"{[getattr(s, 'shape', s) for s in styles]}. Add a batch dimension with image[None]."
        )
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"AdaIN: alpha={alpha} must be in [0, 1] (1: full style, 0: the content features).")
    weights = [1.0] * len(styles) if style_weights is None else [float(w) for w in style_weights]
    if len(weights) != len(styles) or min(weights) < 0 or sum(weights) <= 0:
        raise ValueError(
            f"AdaIN: style_weights={style_weights} must give one non-negative weight per style "
            f"({len(styles)}) with a positive sum."
        )
    return [w / sum(weights) for w in weights]


class AdainStylizer(nn.Module):
    """Content images -> stylised images with fixed style images: what inference and export apply.

    ``forward(content)``: (N, 3, H, W) in [-1, 1], any H and W (padded to a multiple of 8 and cropped
    back), to (N, 3, H, W) in [-1, 1] (clamped). The decoder gets
    ``alpha * sum_k w_k AdaIN(f(c), f(s_k)) + (1 - alpha) * f(c)``; style features are computed once
    here unless ``preserve_color``, which first gives each style the content's colours (:func:`coral`).
    Each style is (N or 1, 3, h, w): one style per content image, or one for all.
    """

    size_multiple = 8  # three poolings in the encoder

    def __init__(
        self,
        encoder: VGGFeatures,
        decoder: nn.Module,
        styles: Sequence[torch.Tensor],
        alpha: float = 1.0,
        style_weights: Sequence[float] | None = None,
        preserve_color: bool = False,
    ) -> None:
        super().__init__()
        self.weights = check_stylize_args(styles, alpha, style_weights)
        self.encoder, self.decoder = encoder, decoder
        self.alpha, self.preserve_color = float(alpha), bool(preserve_color)
        device = next(decoder.parameters()).device
        # Buffers, so .to(device) moves them with the networks; the style features are computed once.
        for k, style in enumerate(styles):
            self.register_buffer(f"style_{k}", style.to(device), persistent=False)
            if not preserve_color:
                with torch.no_grad():
                    self.register_buffer(
                        f"style_feature_{k}", self.encode(style.to(device)), persistent=False
                    )

    @property
    def styles(self) -> list[torch.Tensor]:
        return [getattr(self, f"style_{k}") for k in range(len(self.weights))]

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder(images)["relu4_1"]

    def forward(self, content: torch.Tensor) -> torch.Tensor:
        if content.dim() != 4 or content.shape[1] != 3:
            raise ValueError(f"AdaIN: content must be (N, 3, H, W) in [-1, 1], got {tuple(content.shape)}.")
        if any(s.shape[0] not in (1, content.shape[0]) for s in self.styles):
            raise ValueError(
                f"AdaIN: each style batch must be 1 or the content batch {content.shape[0]}, got "
                f"{[s.shape[0] for s in self.styles]}."
            )
        padded, (height, width) = pad_to_multiple(content, self.size_multiple)
        content_feature = self.encode(padded)
        if self.preserve_color:
            style_features = [self.encode(coral(style, content)) for style in self.styles]
        else:
            style_features = [getattr(self, f"style_feature_{k}") for k in range(len(self.weights))]
        feature = torch.zeros_like(content_feature)
        for style_feature, weight in zip(style_features, self.weights):
            feature = feature + weight * adaptive_instance_norm(content_feature, style_feature)
        feature = self.alpha * feature + (1.0 - self.alpha) * content_feature
        return self.decoder(feature)[..., :height, :width].clamp(-1.0, 1.0)


class AdaIN(ImageModel):
    """Frozen VGG19 encoder to relu4_1, trained decoder; :meth:`stylize` and :meth:`inference_generator`
    for inference. See the module docstring for the objective and the training schedule."""

    data_kinds = ("content_style",)  # content photos and style image(s)

    loss_terms = ("content_weight", "style_weight")
    visual_rows = (("content", "style", "stylized"),)
    test_translation_folders = ("stylized",)  # each test content image with its paired style image
    # The style is given at inference: see inference_generator.
    inference_conditioning = ("style_images", "alpha", "style_weights", "preserve_color")
    # FID/KID of stylised validation images against style crops of the same size (val/fid_style),
    # when the FID weights are present; see distribution_samples.
    distribution_domains = ("style",)
    # Without FID: the weighted perceptual objective on held-out data (monitor.metric=auto picks it).
    ground_truth_monitor = ("val/loss_perceptual", "min")

    def __init__(
        self,
        decoder: dict[str, Any],
        optimizer: dict[str, Any],
        lr_decay: float = 5.0e-5,  # lr_i = lr / (1 + lr_decay * i), per iteration (naoto0804)
        scheduler: dict[str, Any] | None = None,
        loss: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        loss = self.checked_loss_config(loss)
        if scheduler is not None:
            raise ConfigError(
                "AdaIN decays its learning rate per iteration (model.lr_decay, as in the paper's code), so an "
                "epoch scheduler is not used: set model.scheduler=null (conf/model/adain.yaml does), and "
                "model.lr_decay=0 for a constant rate."
            )
        if float(lr_decay) < 0:
            raise ConfigError(f"model.lr_decay={lr_decay} must be >= 0 (0: constant learning rate).")
        self.save_hyperparameters()  # as plain data (ImageModel)

        net = loss["feature_net"]
        # The frozen encoder (kept out of checkpoints: it comes from the weights file).
        self.encoder = VGGFeatures(
            "vgg19",
            ENCODER_LAYERS,
            weights=net["weights"],
            weights_path=net["weights_path"],
            pooling=net["pooling"],
        )
        self.decoder = build(decoder)
        # The paper's loss on the encoder's own features: content at relu4_1 against the AdaIN output,
        # style as channel means and deviations at relu1_1..relu4_1, summed over layers (weights 1).
        self.criterion = PerceptualCriterion(
            self.encoder,
            content_layers=["relu4_1"],
            style_layers=ENCODER_LAYERS,
            style_layer_weights=[1.0] * len(ENCODER_LAYERS),
            style_statistic="mean_std",
        )

    @classmethod
    def check_loss_config(cls, loss: dict[str, Any]) -> None:
        super().check_loss_config(loss)
        if float(loss.get("gan_weight") or 0) != 0:
            raise ConfigError(
                f"loss.gan_weight={loss['gan_weight']} but AdaIN has no adversarial term; set loss.gan_weight=0 "
                "(conf/loss/adain.yaml does), or use model=fast_style for a critic."
            )
        net = loss.get("feature_net") or {}
        if net.get("arch", "vgg19") != "vgg19" or net.get("content_layers") or net.get("style_layers"):
            raise ConfigError(
                "AdaIN's encoder is fixed by the paper: VGG19 up to relu4_1, content loss at relu4_1, style "
                "statistics at relu1_1, relu2_1, relu3_1, relu4_1; the decoder mirrors exactly that network. "
                "Leave loss.feature_net.arch=vgg19 and content_layers/style_layers null."
            )

    # --- inference -----------------------------------------------------------------------------
    def forward(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """Stylise content (N, 3, H, W) with style (N or 1, 3, h, w), both in [-1, 1]; alpha = 1."""
        return self.stylize(content, style)

    @torch.no_grad()
    def stylize(
        self,
        content: torch.Tensor,
        styles: torch.Tensor | Sequence[torch.Tensor],
        alpha: float = 1.0,
        style_weights: Sequence[float] | None = None,
        preserve_color: bool = False,
    ) -> torch.Tensor:
        """Stylised content images, (N, 3, H, W) in [-1, 1] (clamped), any H and W.

        Args:
            content: (N, 3, H, W) in [-1, 1].
            styles: one style as a (N or 1, 3, h, w) tensor (one style per content image, or one for all),
                or a list of such tensors, several styles to interpolate. Sizes may differ.
            alpha: content/style trade-off in [0, 1]: the decoder gets alpha * t + (1 - alpha) * f(c);
                0 gives back the decoded content features, 1 full stylisation.
            style_weights: one non-negative weight per style in ``styles`` (normalised to sum 1); the
                decoder gets sum_k w_k AdaIN(f(c), f(s_k)). None: equal weights.
            preserve_color: first give each style image the content's colour mean and covariance
                (:func:`coral`), so the result keeps the content's colours.
        """
        styles = [styles] if isinstance(styles, torch.Tensor) else list(styles)
        return AdainStylizer(self.encoder, self.decoder, styles, alpha, style_weights, preserve_color)(
            content
        )

    def inference_generator(
        self, direction: str | None = None, **conditioning: Unpack[InferenceConditioning]
    ) -> AdainStylizer:
        """The network ``ganstyle stylize``/``export`` apply: content -> stylised with fixed styles.

        ``style_images``: a list of (1, 3, h, w) tensors in [-1, 1] (required: AdaIN learns no style);
        ``alpha`` (default 1), ``style_weights`` and ``preserve_color`` (default off) as in
        :meth:`stylize`. One decoder, so ``direction`` is None.
        """
        style_images = conditioning.get("style_images")
        if not style_images:
            raise ValueError(
                "AdaIN transfers the style of images given at inference time: pass style_images (one or "
                "more style images; several are interpolated with style_weights)."
            )
        alpha = conditioning.get("alpha")
        return AdainStylizer(
            self.encoder,
            self.decoder,
            list(style_images),
            1.0 if alpha is None else alpha,
            conditioning.get("style_weights"),
            bool(conditioning.get("preserve_color")),
        )

    # --- training ------------------------------------------------------------------------------
    def losses(
        self, content: torch.Tensor, style: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Unweighted content and style losses for a batch (the criterion's), and the decoded images g(t)."""
        with torch.no_grad():
            style_features = self.encoder(style)
            target = adaptive_instance_norm(self.encoder(content)["relu4_1"], style_features["relu4_1"])
        decoded = self.decoder(target)
        # The content target is t itself: the decoder learns to invert AdaIN.
        losses = self.criterion(decoded, content_features={"relu4_1": target}, style_features=style_features)
        return losses, decoded

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        loss_cfg, optimizer = self.hparams.loss, self.optimizers()
        # Inverse-time decay by iteration (global_step: one optimiser step per batch), before the step.
        lr = self.hparams.optimizer["lr"] / (1.0 + self.hparams.lr_decay * self.global_step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        losses, _ = self.losses(batch["content"], batch["style"])
        # L = content_weight * L_content + style_weight * L_style
        terms = weighted_perceptual_terms(losses, loss_cfg)
        loss = terms["content"] + terms["style"]
        self.step_if_finite(optimizer, loss, terms, "decoder")
        size = batch["content"].shape[0]
        logged = {
            "train/loss_content": terms["content"].detach(),
            "train/loss_style": terms["style"].detach(),
        }
        logged.update({"train/loss": loss.detach(), "train/lr": lr})
        self.log_training_values(logged, size, progress_bar={"loss": loss.detach()})

    def make_optimizers(self):
        return {"decoder": self.build_optimizer(self.decoder.parameters())}  # the encoder is frozen

    # --- validation ----------------------------------------------------------------------------
    @classmethod
    def validation_metric_names(cls, loss: dict[str, Any], has_targets: bool | None) -> frozenset[str] | None:
        return frozenset({"val/loss_perceptual", "val/content_distance", "val/style_distance"})

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        losses, _ = self.losses(batch["content"], batch["style"])
        terms, size = weighted_perceptual_terms(losses, self.hparams.loss), batch["content"].shape[0]
        self.log(
            "val/loss_perceptual",
            terms["content"] + terms["style"],
            batch_size=size,
            prog_bar=True,
            sync_dist=True,
        )
        self.log("val/content_distance", losses["content"], batch_size=size, sync_dist=True)
        self.log("val/style_distance", losses["style"], batch_size=size, sync_dist=True)

    def distribution_samples(self, batch: dict[str, Any]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """For FID/KID against the style: ``{"style": (style crops, stylised content)}``, same size, [-1, 1]."""
        return {"style": (batch["style"], self.stylize(batch["content"], batch["style"]))}

    # --- visuals and outputs -------------------------------------------------------------------
    @torch.no_grad()
    def compute_visuals(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        content, style = batch["content"].to(self.device), batch["style"].to(self.device)
        return {"content": content, "style": style, "stylized": self.stylize(content, style)}

    def test_translations(self, batch: dict[str, Any]) -> dict[str, tuple[torch.Tensor, list[str]]]:
        """Each test content image stylised with its paired style image (style i % S)."""
        return {"stylized": (self.stylize(batch["content"], batch["style"]), batch["content_path"])}
