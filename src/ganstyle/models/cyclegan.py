"""CycleGAN: unpaired image-to-image translation (Zhu et al. 2017, "Unpaired Image-to-Image
Translation using Cycle-Consistent Adversarial Networks").

Two generators, G_AB: A -> B and G_BA: B -> A, and two discriminators, D_A judging domain-A images
and D_B judging domain-B images. (The reference code calls D_B "netD_A"; names here say which domain
a network judges.) One optimiser steps both generators, one both discriminators, as in the reference.

    python train.py model=cyclegan                      # quick-start sizes on the embedded dataset
    python train.py data=unpaired data.root=datasets/horse2zebra  # reference sizes
"""

from __future__ import annotations

from itertools import chain
from typing import TYPE_CHECKING, Any

import torch

from ganstyle.losses.adversarial import AdversarialLoss
from ganstyle.losses.perceptual import build_perceptual_criterion, weighted_perceptual_terms
from ganstyle.losses.reconstruction import ReconstructionLoss
from ganstyle.models.base import ImageModel, InferenceConditioning, build
from ganstyle.models.validation_metrics import TRANSLATION_AGAINST_TARGET_METRICS
from ganstyle.utils.batching import batched_call, samples_are_independent
from ganstyle.utils.image_pool import ImagePool

if TYPE_CHECKING:  # annotations only: typing.Unpack needs Python 3.11
    from typing_extensions import Unpack


class CycleGAN(ImageModel):
    data_kinds = ("unpaired", "paired")  # A/B batches; pairs are simply not used as pairs
    # content/style/TV (loss.content_weight, ...) are optional perceptual terms on a frozen VGG:
    # style compares G_AB(A) with real B images (and G_BA(B) with real A), content G_AB(A) with A.
    loss_terms = (
        "gan_weight",
        "cycle_weight",
        "identity_weight",
        "content_weight",
        "style_weight",
        "tv_weight",
    )
    distribution_domains = ("B", "A")  # val/fid_B scores G_AB(A) against real B; val/fid_A the reverse
    ground_truth_monitor = ("val/psnr_B", "max")  # with ground truth (the embedded dataset's testA2B)
    visual_rows = (("real_A", "fake_B", "rec_A"), ("real_B", "fake_A", "rec_B"))
    test_translation_folders = ("AtoB", "BtoA")  # testA translated to B, testB to A
    inference_directions = ("AtoB", "BtoA")  # G_AB, G_BA; see inference_generator

    def __init__(
        self,
        generator: dict[str, Any],
        discriminator: dict[str, Any],
        optimizer: dict[str, Any],
        scheduler: dict[str, Any] | None = None,
        loss: dict[str, Any] | None = None,
        pool_size: int = 50,
        batch_shared_calls: bool = True,
    ) -> None:
        super().__init__()
        loss = self.checked_loss_config(loss)
        self.save_hyperparameters()  # as plain data (ImageModel)

        self.G_AB = build(generator)
        self.G_BA = build(generator)
        self.D_A = build(discriminator)
        self.D_B = build(discriminator)
        # One call of a network on inputs it sees at the same time (see batched_call) when its
        # outputs cannot depend on the other samples of the batch: read from the built modules, so
        # any generator or discriminator config is judged by what it builds.
        self.batch_generator_calls = batch_shared_calls and samples_are_independent(self.G_AB)
        self.batch_discriminator_calls = batch_shared_calls and samples_are_independent(self.D_A)

        self.adversarial = AdversarialLoss(loss["gan_mode"])
        self.reconstruction = ReconstructionLoss(loss["reconstruction"])
        # None unless a content/style/TV weight is non-zero: a zero weight builds no VGG at all.
        self.perceptual = build_perceptual_criterion(loss)
        # Pools live outside the module tree (they hold tensors, not parameters); their contents are
        # saved in checkpoints by on_save_checkpoint so a resumed run sees the same history.
        self.pool_A = ImagePool(pool_size)
        self.pool_B = ImagePool(pool_size)

        # Ground-truth metrics for A -> B when the validation data has targets (the embedded dataset),
        # next to the untranslated input's: the do-nothing baseline a model that learnt must beat.
        self.build_translation_metrics()

    def forward(self, images: torch.Tensor, direction: str = "AtoB") -> torch.Tensor:
        """Translate images in [-1, 1]; inference only."""
        if direction not in ("AtoB", "BtoA"):
            raise ValueError(f"direction must be 'AtoB' or 'BtoA', got {direction!r}.")
        return (self.G_AB if direction == "AtoB" else self.G_BA)(images)

    def inference_generator(
        self, direction: str | None = None, **conditioning: Unpack[InferenceConditioning]
    ) -> torch.nn.Module:
        """G_AB for "AtoB" (the default), G_BA for "BtoA"; see ImageModel.inference_generator."""
        direction = direction or "AtoB"
        if direction not in self.inference_directions:
            raise ValueError(f"direction must be 'AtoB' or 'BtoA', got {direction!r}.")
        return self.G_AB if direction == "AtoB" else self.G_BA

    # --- training ------------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        real_A, real_B = batch["A"], batch["B"]
        opt_G, opt_D = self.optimizers()

        # 1. Generators: fool both discriminators, reconstruct through the cycle, keep identity.
        with self.toggled_optimizer(opt_G):
            terms, fake_A, fake_B = self.generator_terms(real_A, real_B)
            loss_G = sum(terms.values())
            self.step_if_finite(opt_G, loss_G, terms, "generator")

        # 2. Discriminators: real vs. fakes drawn from the history pools.
        with self.toggled_optimizer(opt_D):
            loss_D_A = self.discriminator_loss(self.D_A, real_A, self.pool_A.query(fake_A))
            loss_D_B = self.discriminator_loss(self.D_B, real_B, self.pool_B.query(fake_B))
            self.step_if_finite(
                opt_D, loss_D_A + loss_D_B, {"loss_D_A": loss_D_A, "loss_D_B": loss_D_B}, "discriminator"
            )

        logged = {f"train/{name}": value.detach() for name, value in terms.items()}
        logged.update(
            {
                "train/loss_G": loss_G.detach(),
                "train/loss_D_A": loss_D_A.detach(),
                "train/loss_D_B": loss_D_B.detach(),
            }
        )
        progress = {"loss_G": loss_G.detach(), "loss_D": (loss_D_A + loss_D_B).detach()}
        self.log_training_values(logged, real_A.shape[0], progress_bar=progress)

    def generator_terms(
        self, real_A: torch.Tensor, real_B: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """The generators' weighted loss terms, and the fakes (fake_A, fake_B) for the discriminators.

        L_G = lambda_GAN * (L_GAN(G_AB) + L_GAN(G_BA)) + lambda_cyc * (L_cyc(A) + L_cyc(B))
            + lambda_idt * lambda_cyc * (L_idt(A) + L_idt(B))     (+ the optional perceptual terms)
        with every L unweighted and each lambda its ``loss.*_weight``; the terms are summed by the step.
        """
        loss = self.hparams.loss
        with_identity = loss["identity_weight"] > 0
        if with_identity and self.batch_generator_calls:
            # G_AB translates real_A and reproduces real_B (the identity term) in one call; same result.
            fake_B, idt_B = batched_call(self.G_AB, real_A, real_B)
            fake_A, idt_A = batched_call(self.G_BA, real_B, real_A)
        else:
            fake_B = self.G_AB(real_A)
            fake_A = self.G_BA(real_B)
        rec_A = self.G_BA(fake_B)
        rec_B = self.G_AB(fake_A)
        terms = {
            "loss_G_AB": loss["gan_weight"]
            * self.adversarial(self.discriminate(self.D_B, fake_B), True, False),
            "loss_G_BA": loss["gan_weight"]
            * self.adversarial(self.discriminate(self.D_A, fake_A), True, False),
            "loss_cycle_A": loss["cycle_weight"] * self.reconstruction(rec_A, real_A),
            "loss_cycle_B": loss["cycle_weight"] * self.reconstruction(rec_B, real_B),
        }
        if self.perceptual is not None:
            # Each generator's output should carry its target domain's style (Grams of the real
            # images of that domain in this batch) and keep its input's content.
            perceptual_AB = self.perceptual(fake_B, content=real_A, style=real_B)
            perceptual_BA = self.perceptual(fake_A, content=real_B, style=real_A)
            for name, value in weighted_perceptual_terms(perceptual_AB, loss).items():
                terms[f"loss_{name}_AB"] = value
            for name, value in weighted_perceptual_terms(perceptual_BA, loss).items():
                terms[f"loss_{name}_BA"] = value
        if with_identity:
            # A generator fed an image already in its target domain should leave it unchanged;
            # weighted identity_weight * cycle_weight as in the reference (0.5 * 10).
            if not self.batch_generator_calls:
                idt_A, idt_B = self.G_BA(real_A), self.G_AB(real_B)
            identity_weight = loss["identity_weight"] * loss["cycle_weight"]
            terms["loss_idt_A"] = identity_weight * self.reconstruction(idt_A, real_A)
            terms["loss_idt_B"] = identity_weight * self.reconstruction(idt_B, real_B)
        return terms, fake_A, fake_B

    def discriminator_loss(self, discriminator, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """0.5 * (L(D(real), real) + L(D(fake), fake)) (+ loss.gp_weight * GP with gan_mode=wgangp),
        halved as in the reference so D learns slower than G; real scored before fake as the
        reference's backward_D_basic does, or both in one call when the discriminator allows it."""
        order = "together" if self.batch_discriminator_calls else "real_first"
        return self.discriminator_objective(discriminator, real, fake, real_fake_weight=0.5, order=order).loss

    def make_optimizers(self):
        return {  # one Adam for both generators, one for both discriminators, as the reference
            "generator": self.build_optimizer(chain(self.G_AB.parameters(), self.G_BA.parameters())),
            "discriminator": self.build_optimizer(chain(self.D_A.parameters(), self.D_B.parameters())),
        }

    # --- validation ----------------------------------------------------------------------------
    def discriminator_real_inputs(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {"D_A": batch["A"], "D_B": batch["B"]}  # D_A judges domain A, D_B domain B

    @classmethod
    def validation_metric_names(cls, loss: dict[str, Any], has_targets: bool | None) -> frozenset[str] | None:
        if has_targets is None:  # PSNR/SSIM come only with testA2B/ targets
            return None
        cycle = {"val/loss_cycle_A", "val/loss_cycle_B"}
        return frozenset(cycle | (TRANSLATION_AGAINST_TARGET_METRICS if has_targets else set()))

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        real_A, real_B = batch["A"], batch["B"]
        fake_B, fake_A = self.G_AB(real_A), self.G_BA(real_B)
        size = real_A.shape[0]
        self.log(
            "val/loss_cycle_A",
            self.reconstruction(self.G_BA(fake_B), real_A),
            batch_size=size,
            sync_dist=True,
        )
        self.log(
            "val/loss_cycle_B",
            self.reconstruction(self.G_AB(fake_A), real_B),
            batch_size=size,
            sync_dist=True,
        )
        if "B_target" in batch:
            self.log_translation_against_target(real_A, fake_B, batch["B_target"], size)

    def distribution_samples(self, batch: dict[str, Any]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        return {"B": (batch["B"], self.G_AB(batch["A"])), "A": (batch["A"], self.G_BA(batch["B"]))}

    # --- visuals and checkpoints ---------------------------------------------------------------
    @torch.no_grad()
    def compute_visuals(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        real_A = batch["A"].to(self.device)
        real_B = batch["B"].to(self.device)
        fake_B, fake_A = self.G_AB(real_A), self.G_BA(real_B)
        return {
            "real_A": real_A,
            "fake_B": fake_B,
            "rec_A": self.G_BA(fake_B),
            "real_B": real_B,
            "fake_A": fake_A,
            "rec_B": self.G_AB(fake_A),
        }

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["image_pools"] = {"A": self.pool_A.state_dict(), "B": self.pool_B.state_dict()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        pools = checkpoint.get("image_pools")
        if pools:
            self.pool_A.load_state_dict(pools["A"])
            self.pool_B.load_state_dict(pools["B"])

    def test_translations(self, batch: dict[str, Any]) -> dict[str, tuple[torch.Tensor, list[str]]]:
        """Whole-test-set outputs, by folder: testA translated to B and testB to A."""
        return {
            "AtoB": (self.G_AB(batch["A"]), batch["A_path"]),
            "BtoA": (self.G_BA(batch["B"]), batch["B_path"]),
        }
