"""A minimal paired translation GAN: the smallest model that uses the whole ganstyle model contract.

A generator G maps an input image A to an output B; a PatchGAN discriminator D scores outputs on
their own (pix2pix's D scores the (A, B) pair instead). With images in [-1, 1]:

    L_D = 0.5 * (L(D(B), real) + L(D(G(A)), fake))   (+ loss.gp_weight * GP with gan_mode=wgangp)
    L_G = loss.gan_weight * L(D(G(A)), real) + loss.l1_weight * mean |G(A) - B|

L is ``loss.gan_mode``'s adversarial loss. Each batch: one D step, then one G step.

    PYTHONPATH=docs/examples python train.py model=minimal_gan hydra.searchpath=[file://docs/examples/conf]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ganstyle.losses.adversarial import AdversarialLoss
from ganstyle.losses.reconstruction import ReconstructionLoss
from ganstyle.models.base import ImageModel, InferenceConditioning, build, plain_data
from ganstyle.models.validation_metrics import TRANSLATION_AGAINST_TARGET_METRICS
from ganstyle.networks.critic_checks import check_critic_norm

if TYPE_CHECKING:  # annotations only: typing.Unpack needs Python 3.11
    from typing_extensions import Unpack


class MinimalGAN(ImageModel):
    """Paired translation: an adversarial term and an L1 term to the target.

    Args:
        generator, discriminator: ``_target_`` configs of G and D, kept as plain data in checkpoints.
        optimizer, scheduler: partial ``_target_`` configs; one optimiser for G, one for D.
        loss: the loss config; uses ``gan_mode``, ``gan_weight``, ``l1_weight``, ``reconstruction``
            and, with ``gan_mode=wgangp``, ``gp_weight``.
    """

    data_kinds = ("paired",)  # the L1 term compares each output with the target of its input
    loss_terms = ("gan_weight", "l1_weight")
    visual_rows = (("real_A", "fake_B", "real_B"),)
    test_translation_folders = ("AtoB",)
    # FID/KID of G(A) against the real B when FID runs; without it, checkpoints follow PSNR.
    distribution_domains = ("B",)
    ground_truth_monitor = ("val/psnr_B", "max")

    def __init__(
        self,
        generator: dict[str, Any],
        discriminator: dict[str, Any],
        optimizer: dict[str, Any],
        scheduler: dict[str, Any] | None = None,
        loss: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        loss = self.checked_loss_config(loss)  # schema defaults filled in, unused weights refused
        check_critic_norm(type(self).__name__, plain_data(discriminator), loss["gan_mode"])
        self.save_hyperparameters()  # the arguments as plain data: a checkpoint rebuilds the model

        self.generator = build(generator)
        self.discriminator = build(discriminator)
        self.adversarial = AdversarialLoss(loss["gan_mode"])
        self.reconstruction = ReconstructionLoss(loss["reconstruction"])
        # Against the target of each validation pair; the identity PSNR (the untranslated input) is
        # the do-nothing baseline a trained G must beat.
        self.build_translation_metrics()  # val/psnr_B, val/ssim_B and the untranslated input's

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Translate images (N, 3, H, W) in [-1, 1]; inference only."""
        return self.generator(images)

    # --- training ------------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        loss = self.hparams.loss
        real_A, real_B = batch["A"], batch["B"]
        opt_G, opt_D = self.optimizers()
        fake_B = self.generator(real_A)  # one pass for both steps; D's step sees it detached

        # 1. D: targets -> real, outputs -> fake.
        with self.toggled_optimizer(opt_D):
            # halved, as in the pix2pix and CycleGAN reference code; scored through self.discriminate
            objective = self.discriminator_objective(self.discriminator, real_B, fake_B, real_fake_weight=0.5)
            terms_D = {f"loss_D_{name}": value for name, value in objective.weighted_terms.items()}
            self.step_if_finite(opt_D, objective.loss, terms_D, "discriminator")

        # 2. G: fool the updated D and stay close to the target. Losses return unweighted terms;
        # each is multiplied by its loss.*_weight here, where the objective is written.
        with self.toggled_optimizer(opt_G):
            terms_G = {
                "loss_G_GAN": loss["gan_weight"]
                * self.adversarial(self.discriminate(self.discriminator, fake_B), True, False),
                "loss_G_L1": loss["l1_weight"] * self.reconstruction(fake_B, real_B),
            }
            loss_G = sum(terms_G.values())
            self.step_if_finite(opt_G, loss_G, terms_G, "generator")

        values = {f"train/{name}": value.detach() for name, value in {**terms_G, **terms_D}.items()}
        values.update({"train/loss_G": loss_G.detach(), "train/loss_D": objective.loss.detach()})
        progress = {"loss_G": values["train/loss_G"], "loss_D": values["train/loss_D"]}
        self.log_training_values(values, real_A.shape[0], progress_bar=progress)

    # --- validation ----------------------------------------------------------------------------
    @classmethod
    def validation_metric_names(cls, loss: dict[str, Any], has_targets: bool | None) -> frozenset[str] | None:
        # Paired data: every validation batch carries its targets.
        return frozenset({"val/loss_L1"} | TRANSLATION_AGAINST_TARGET_METRICS)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        real_A, real_B = batch["A"], batch["B"]
        fake_B = self(real_A)
        size = real_A.shape[0]
        loss_L1 = self.reconstruction(fake_B, real_B)  # unweighted
        self.log("val/loss_L1", loss_L1, batch_size=size, sync_dist=True)
        self.log_translation_against_target(real_A, fake_B, real_B, size)

    # --- outputs -------------------------------------------------------------------------------
    @torch.no_grad()
    def compute_visuals(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        real_A = batch["A"].to(self.device)
        return {"real_A": real_A, "fake_B": self(real_A), "real_B": batch["B"].to(self.device)}

    def test_translations(self, batch: dict[str, Any]) -> dict[str, tuple[torch.Tensor, list[str]]]:
        return {"AtoB": (self(batch["A"]), batch["A_path"])}

    def distribution_samples(self, batch: dict[str, Any]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        return {"B": (batch["B"], self(batch["A"]))}

    def inference_generator(
        self, direction: str | None = None, **conditioning: Unpack[InferenceConditioning]
    ) -> nn.Module:
        # One generator, no per-call conditioning: the inference code passes direction=None only.
        return self.generator

    # --- optimisers ----------------------------------------------------------------------------
    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        # {role: optimizer}; the base class adds the schedulers and steps them each epoch.
        return {
            "generator": self.build_optimizer(self.generator.parameters()),
            "discriminator": self.build_optimizer(self.discriminator.parameters()),
        }
