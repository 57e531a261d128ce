"""Fast neural style transfer (Johnson et al. 2016, "Perceptual Losses for Real-Time Style Transfer and
Super-Resolution"), with an optional adversarial critic: the GAN-based style transfer of the project's name.

A feed-forward ``TransformerNet`` G is trained on a folder of content photos against one (or a weighted
few) style images. Per batch of content images x, with VGG16 features phi_l of ImageNet-normalised images:

    L_G = content_weight * L_content(phi_relu2_2(G(x)), phi_relu2_2(x))
        + style_weight   * sum_k w_k * L_style(G(x), style_k)       (Grams at relu1_2, relu2_2, relu3_3, relu4_3)
        + tv_weight      * L_tv(G(x))
        + gan_weight     * L_adv(D(G(x)), real)                      (only when gan_weight > 0)

L_content, L_style and L_tv are :mod:`ganstyle.losses.perceptual`'s (Gram / (C*H*W), MSE per layer, mean
over layers); w_k are the style images' normalised weights (``data.style_weights``). Style Grams come from
the *whole* style images (``data.style_load_size`` on the shorter side), computed once, as in pytorch/examples.

Weights on our scale. ``content_weight=1e5`` and ``style_weight=4e10`` are exactly pytorch/examples'
defaults (1e5 content, 1e10 style with [0, 255] images): its ``normalize_batch`` divides by 255 before the
same ImageNet normalisation and it also divides Grams by C*H*W, so features, Grams and per-layer MSEs are
identical to ours; it *sums* the 4 style layers where we average them, hence 1e10 * 4 = 4e10.

The critic. With ``gan_weight > 0`` a PatchGAN D (``NLayerDiscriminator``) learns to tell stylised outputs
from random crops of the style image(s) at the same size (``batch["style"]``), and G is rewarded for
fooling it: the perceptual terms fix the content and the Gram statistics, the critic judges local texture.
D's loss is halved and uses ``loss.gan_mode`` (LSGAN by default), as in CycleGAN. With ``gan_weight=0``
(the paper) no critic is built and there is one optimiser, Adam lr 1e-3 as in pytorch/examples.

    python train.py model=fast_style                                   # CPU quick start (critic on)
    python train.py experiment=fast_style_coco data.content_root=/data/coco data.style=starry.jpg trainer=gpu
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ganstyle.config import ConfigError
from ganstyle.inference.tiling import pad_to_multiple
from ganstyle.losses.adversarial import AdversarialLoss
from ganstyle.losses.perceptual import build_perceptual_criterion, weighted_perceptual_terms
from ganstyle.losses.style_targets import StyleTargets, style_images_from
from ganstyle.models.base import ImageModel, InferenceConditioning, build

if TYPE_CHECKING:  # annotations only: typing.Unpack needs Python 3.11
    from typing_extensions import Unpack


class ClampedOutput(nn.Module):
    """A generator whose output is clamped to [-1, 1]; keeps its ``size_multiple`` for padding."""

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator
        self.size_multiple = int(getattr(generator, "size_multiple", 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.generator(images).clamp(-1.0, 1.0)


class FastStyleTransfer(ImageModel):
    """TransformerNet trained with VGG16 perceptual losses and, when ``loss.gan_weight > 0``, a PatchGAN
    critic on style crops; see the module docstring for the objective and the weights' scale."""

    data_kinds = ("content_style",)  # content photos and style image(s)

    loss_terms = ("content_weight", "style_weight", "tv_weight", "gan_weight")
    visual_rows = (("content", "stylized", "style"),)
    test_translation_folders = ("stylized",)  # every test content image stylised
    # FID/KID of stylised validation images against style crops of the same size (val/fid_style),
    # when the FID weights are present; see distribution_samples.
    distribution_domains = ("style",)
    # Without FID: the weighted perceptual objective on held-out data (monitor.metric=auto picks it).
    ground_truth_monitor = ("val/loss_perceptual", "min")

    def __init__(
        self,
        generator: dict[str, Any],
        optimizer: dict[str, Any],
        discriminator: dict[str, Any] | None = None,
        discriminator_optimizer: dict[str, Any] | None = None,
        scheduler: dict[str, Any] | None = None,
        loss: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        loss = self.checked_loss_config(loss)
        uses_critic = loss["gan_weight"] > 0
        if uses_critic and (discriminator is None or discriminator_optimizer is None):
            raise ConfigError(
                f"loss.gan_weight={loss['gan_weight']} turns the adversarial critic on, but model.discriminator "
                "or model.discriminator_optimizer is null. Give both (conf/model/fast_style.yaml has them), "
                "or set loss.gan_weight=0 for the paper's perceptual-loss-only training."
            )
        self.save_hyperparameters()  # as plain data (ImageModel)

        self.generator = build(generator)
        self.criterion = build_perceptual_criterion(loss)  # VGG16 (loss.feature_net), frozen
        self.style_targets = StyleTargets()
        self.discriminator = build(discriminator) if uses_critic else None
        self.adversarial = AdversarialLoss(loss["gan_mode"]) if uses_critic else None

    @classmethod
    def check_loss_config(cls, loss: dict[str, Any]) -> None:
        super().check_loss_config(loss)
        if not (float(loss.get("style_weight") or 0) > 0 or float(loss.get("gan_weight") or 0) > 0):
            raise ConfigError(
                "FastStyleTransfer has nothing that teaches a style: loss.style_weight and loss.gan_weight are "
                "both 0. Set loss.style_weight (the paper's Gram term, 4.0e10 on our scale) and/or "
                "loss.gan_weight (the adversarial critic)."
            )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Stylise content images in [-1, 1] (any size: padded to a multiple of 4 and cropped back).

        Returns images clamped to [-1, 1]; the raw network output is unbounded (no Tanh, as in pytorch/examples).
        """
        padded, (height, width) = pad_to_multiple(images, self.generator.size_multiple)
        return self.generator(padded)[..., :height, :width].clamp(-1.0, 1.0)

    def inference_generator(
        self, direction: str | None = None, **conditioning: Unpack[InferenceConditioning]
    ) -> nn.Module:
        """The trained TransformerNet with its output clamped to [-1, 1] (see ImageModel.inference_generator)."""
        return ClampedOutput(self.generator)

    def setup(self, stage: str) -> None:
        super().setup(stage)
        # The style Grams come from the whole style images of the data module, once per fit (unless
        # set_style_images() gave them and there is no data module, as in a plain training loop).
        if stage != "fit" or self.criterion is None or self.criterion.style is None:
            return
        datamodule = self.trainer.datamodule
        if datamodule is not None or not self.style_targets.count:
            images, weights = style_images_from(datamodule, type(self).__name__)
            self.style_targets.set(self.criterion, images, weights)

    def set_style_images(
        self, images: Sequence[torch.Tensor], weights: Sequence[float] | None = None
    ) -> None:
        """Set the style targets directly (each (1, 3, h, w) in [-1, 1]), e.g. to train without a data module."""
        self.style_targets.set(self.criterion, images, weights or [1.0] * len(images))

    # --- training ------------------------------------------------------------------------------
    def perceptual_terms(self, stylized: torch.Tensor, content: torch.Tensor) -> dict[str, torch.Tensor]:
        """The unweighted content, style and TV terms (the criterion's): one VGG pass with gradient
        (stylized), one without (content); the style Grams are the fixed style images' (StyleTargets)."""
        if self.criterion is None:
            return {}
        return self.criterion(stylized, content=content, style_targets=self.style_targets)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        loss = self.hparams.loss
        content = batch["content"]
        optimizers = self.optimizer_list()
        opt_G = optimizers[0]

        # 1. Transformer: match content and style statistics (and fool the critic when there is one).
        with self.toggled_optimizer(opt_G) if self.discriminator is not None else nullcontext():
            stylized = self.generator(content)
            # L_G = content_weight * L_content + style_weight * L_style + tv_weight * L_tv
            #       + gan_weight * L_adv  (each L unweighted; see the module docstring)
            terms = weighted_perceptual_terms(self.perceptual_terms(stylized, content), loss)
            if self.discriminator is not None:
                terms["gan"] = loss["gan_weight"] * self.adversarial(
                    self.discriminate(self.discriminator, stylized), True, for_discriminator=False
                )
            loss_G = sum(terms.values())
            self.step_if_finite(opt_G, loss_G, terms, "generator")

        logged = {f"train/loss_{name}": value.detach() for name, value in terms.items()}
        logged["train/loss_G"] = loss_G.detach()
        # 2. Critic: random crops of the style image(s) are real, stylised content photos are fake.
        if self.discriminator is not None:
            opt_D = optimizers[1]
            with self.toggled_optimizer(opt_D):
                loss_D = self.discriminator_loss(batch["style"], stylized.detach())
                self.step_if_finite(opt_D, loss_D, {"loss_D": loss_D}, "discriminator")
            logged["train/loss_D"] = loss_D.detach()
        self.log_training_values(logged, content.shape[0], progress_bar={"loss_G": loss_G.detach()})

    def discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """0.5 * (L(D(style crops), real) + L(D(stylised), fake)), plus loss.gp_weight * the gradient
        penalty for wgangp (:func:`~ganstyle.losses.adversarial.discriminator_loss`), halved as CycleGAN's."""
        return self.discriminator_objective(self.discriminator, real, fake, real_fake_weight=0.5).loss

    def make_optimizers(self):
        optimizers = {"generator": self.build_optimizer(self.generator.parameters())}
        if self.discriminator is not None:  # the critic, with its own optimiser settings
            optimizers["discriminator"] = build(self.hparams.discriminator_optimizer)(
                list(self.discriminator.parameters())
            )
        return optimizers

    # --- validation ----------------------------------------------------------------------------
    def discriminator_real_inputs(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        # The critic's reals are style crops; without a critic there is nothing to watch.
        return (
            {"discriminator": batch["style"]} if self.discriminator is not None and "style" in batch else {}
        )

    @classmethod
    def validation_metric_names(cls, loss: dict[str, Any], has_targets: bool | None) -> frozenset[str] | None:
        weights = {name: float(loss.get(f"{name}_weight") or 0.0) for name in ("content", "style", "tv")}
        names = {"val/loss_perceptual"} if any(weights.values()) else set()
        names |= {f"val/{name}_distance" for name in ("content", "style") if weights[name]}
        return frozenset(names)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        content = batch["content"]
        stylized = self.generator(content)
        size = content.shape[0]
        distances = self.perceptual_terms(stylized, content)
        if distances:
            weighted = weighted_perceptual_terms(distances, self.hparams.loss)
            self.log(
                "val/loss_perceptual", sum(weighted.values()), batch_size=size, prog_bar=True, sync_dist=True
            )
        for name in ("content", "style"):
            if name in distances:
                self.log(f"val/{name}_distance", distances[name], batch_size=size, sync_dist=True)

    def distribution_samples(self, batch: dict[str, Any]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """For FID/KID against the style: ``{"style": (style crops, stylised content)}``, same size, [-1, 1]."""
        return {"style": (batch["style"], self(batch["content"]))}

    # --- visuals and outputs -------------------------------------------------------------------
    @torch.no_grad()
    def compute_visuals(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        content = batch["content"].to(self.device)
        return {"content": content, "stylized": self(content), "style": batch["style"].to(self.device)}

    def test_translations(self, batch: dict[str, Any]) -> dict[str, tuple[torch.Tensor, list[str]]]:
        """Every test content image stylised, under ``translations/stylized/``."""
        return {"stylized": (self(batch["content"]), batch["content_path"])}
