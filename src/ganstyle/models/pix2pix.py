"""pix2pix: paired image-to-image translation (Isola et al. 2017, "Image-to-Image Translation with
Conditional Adversarial Networks").

A U-Net generator G maps an input image A to an output B. A conditional PatchGAN D scores the pair
(A, B) stacked on channels (6 channels for RGB), so it learns whether B is a plausible output *for this
A*, not merely a plausible B. The objective (the paper's Eq. 4), with images in [-1, 1]:

    G* = arg min_G max_D  L_cGAN(G, D) + lambda * L_L1(G),            lambda = loss.l1_weight = 100
    L_cGAN(G, D) = E[log D(A, B)] + E[log(1 - D(A, G(A)))]           loss.gan_mode=vanilla (BCE)
    L_L1(G)      = E[ mean |B - G(A)| ]

Each batch, as in the reference code: one D step on real pairs (A, B) against generated pairs
(A, G(A)), its loss halved so D learns slower than G; then one G step on the non-saturating GAN term
plus the weighted L1 term. No image pool (unlike CycleGAN). Batch norm, Adam 2e-4 (0.5, 0.999),
constant then linear decay.

Inference: the paper runs G "in exactly the same manner as during the training phase": dropout stays
on (it is G's only noise source) and batch norm uses the statistics of the test batch (with batch 1
that is instance normalisation). ``dropout_at_inference`` and ``batch_statistics_at_inference`` (both
true, as in the paper) make that explicit: :meth:`forward` and :meth:`compute_visuals` honour them in
eval mode, without touching the saved running statistics. Set both false for the usual deterministic
eval-mode network (e.g. before an export that must give the same output every call).

    python train.py model=pix2pix                          # quick-start sizes on the embedded pairs
    python train.py experiment=pix2pix_facades trainer=gpu # reference sizes on facades (BtoA)
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ganstyle.config import ConfigError
from ganstyle.losses.adversarial import AdversarialLoss
from ganstyle.losses.reconstruction import ReconstructionLoss
from ganstyle.models.base import ImageModel, InferenceConditioning, build, plain_data
from ganstyle.models.validation_metrics import TRANSLATION_AGAINST_TARGET_METRICS
from ganstyle.networks.critic_checks import check_critic_norm

if TYPE_CHECKING:  # annotations only: typing.Unpack needs Python 3.11
    from typing_extensions import Unpack


@contextlib.contextmanager
def training_behaviour(network: nn.Module, dropout: bool, batch_statistics: bool) -> Iterator[None]:
    """Within the block, an eval-mode ``network`` keeps its dropout active (``dropout``) and/or
    normalises with each batch's own statistics (``batch_statistics``) as it does in training.

    Batch norm is switched to training mode with ``track_running_stats`` off for the duration, so it
    uses the batch's mean and variance without updating (or reading) the stored running statistics.
    Modules already in training mode are left alone; everything is restored on exit.
    """
    changed: list[tuple[nn.Module, bool | None]] = []
    try:
        for module in network.modules():
            if module.training:
                continue
            if dropout and isinstance(module, nn.modules.dropout._DropoutNd):
                changed.append((module, None))
                module.training = True
            elif batch_statistics and isinstance(module, nn.modules.batchnorm._BatchNorm):
                changed.append((module, module.track_running_stats))
                module.training, module.track_running_stats = True, False
        yield
    finally:
        for module, track_running_stats in changed:
            module.training = False
            if track_running_stats is not None:
                module.track_running_stats = track_running_stats


class Pix2Pix(ImageModel):
    """pix2pix as a LightningModule; see the module docstring for the objective and inference.

    Args:
        generator: ``_target_`` config of G (``UnetGenerator``: unet_256 has ``num_downs=8``).
        discriminator: ``_target_`` config of D; ``in_channels`` must be G's in + out channels (6).
        optimizer, scheduler: partial ``_target_`` configs, one optimiser each for G and D.
        loss: the loss config; uses ``gan_mode``, ``gan_weight``, ``l1_weight``, ``reconstruction``.
        dropout_at_inference: keep dropout on in eval mode (the paper: true).
        batch_statistics_at_inference: batch norm on each batch's own statistics in eval mode (paper: true).
    """

    data_kinds = ("paired",)  # its L1 term compares each output with the corresponding target
    # Every test input translated, whichever way data.direction points.
    test_translation_folders = ("AtoB",)

    loss_terms = ("gan_weight", "l1_weight")
    visual_rows = (("real_A", "fake_B", "real_B"),)
    # FID/KID of G(A) against the real B of the validation pairs (val/fid_B) when FID runs; see
    # distribution_samples. Without FID, checkpoints follow PSNR against the ground truth.
    distribution_domains = ("B",)
    ground_truth_monitor = ("val/psnr_B", "max")

    def __init__(
        self,
        generator: dict[str, Any],
        discriminator: dict[str, Any],
        optimizer: dict[str, Any],
        scheduler: dict[str, Any] | None = None,
        loss: dict[str, Any] | None = None,
        dropout_at_inference: bool = True,
        batch_statistics_at_inference: bool = True,
    ) -> None:
        super().__init__()
        generator, discriminator = plain_data(generator), plain_data(discriminator)
        loss = self.checked_loss_config(loss)
        check_pair_channels(generator, discriminator)
        check_critic_norm(type(self).__name__, discriminator, loss["gan_mode"])
        self.save_hyperparameters()  # as plain data (ImageModel)

        self.generator = build(generator)
        self.discriminator = build(discriminator)
        self.adversarial = AdversarialLoss(loss["gan_mode"])
        self.reconstruction = ReconstructionLoss(loss["reconstruction"])

        # Ground-truth metrics for A -> B when the validation data has targets (the embedded dataset),
        # next to the untranslated input's: the do-nothing baseline a model that learnt must beat.
        self.build_translation_metrics()

    @classmethod
    def check_loss_config(cls, loss: dict[str, Any]) -> None:
        super().check_loss_config(loss)
        if float(loss["gan_weight"]) == 0 and float(loss["l1_weight"]) == 0:
            raise ConfigError(
                "loss.gan_weight=0 and loss.l1_weight=0 leave pix2pix's generator with nothing to learn "
                "from. The paper uses gan_weight=1 with l1_weight=100; either term alone is one of its "
                "ablations (l1_weight=0: cGAN alone; gan_weight=0: L1 alone)."
            )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Translate input images (N, C, H, W) in [-1, 1] to outputs in [-1, 1]; inference only.

        In eval mode, dropout and batch norm follow ``dropout_at_inference`` and
        ``batch_statistics_at_inference``.
        """
        self.check_image_size(images)
        with training_behaviour(
            self.generator, self.hparams.dropout_at_inference, self.hparams.batch_statistics_at_inference
        ):
            return self.generator(images)

    # --- training ------------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        loss = self.hparams.loss
        real_A, real_B = batch["A"], batch["B"]
        self.check_image_size(real_A)
        opt_G, opt_D = self.optimizers()
        # One generator pass serves both steps, as in the reference (built before any toggling, so
        # its graph reaches G's parameters for step 2).
        fake_B = self.generator(real_A)

        # 1. D: real pairs (A, B) -> real, generated pairs (A, G(A)) -> fake.
        with self.toggled_optimizer(opt_D):
            terms_D = self.discriminator_terms(real_A, real_B, fake_B.detach())
            loss_D = sum(terms_D.values())
            self.step_if_finite(opt_D, loss_D, terms_D, "discriminator")

        # 2. G: fool the just-updated D on (A, G(A)) and stay close to B in L1.
        with self.toggled_optimizer(opt_G):
            terms_G = {}
            if loss["gan_weight"] > 0:
                score = self.discriminate(self.discriminator, torch.cat([real_A, fake_B], dim=1))
                terms_G["loss_G_GAN"] = loss["gan_weight"] * self.adversarial(score, True, False)
            if loss["l1_weight"] > 0:
                terms_G["loss_G_L1"] = loss["l1_weight"] * self.reconstruction(fake_B, real_B)
            loss_G = sum(terms_G.values())
            self.step_if_finite(opt_G, loss_G, terms_G, "generator")

        logged = {f"train/{name}": value.detach() for name, value in {**terms_G, **terms_D}.items()}
        logged.update({"train/loss_G": loss_G.detach(), "train/loss_D": loss_D.detach()})
        progress = {"loss_G": logged["train/loss_G"], "loss_D": logged["train/loss_D"]}
        self.log_training_values(logged, real_A.shape[0], progress_bar=progress)

    def discriminator_terms(
        self, real_A: torch.Tensor, real_B: torch.Tensor, fake_B: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """D's weighted loss terms: 0.5 * L(D(A, B), real), 0.5 * L(D(A, G(A)), fake), halved as in the
        reference; with gan_mode=wgangp also loss.gp_weight * the gradient penalty on interpolated pairs
        (:func:`~ganstyle.losses.adversarial.discriminator_loss`)."""
        real_pair = torch.cat([real_A, real_B], dim=1)
        fake_pair = torch.cat([real_A, fake_B.detach()], dim=1)
        # The fake pair is scored first, as in the reference (pix2pix_model.py, backward_D): with
        # batch norm the running statistics that eval mode and checkpoints keep depend on the order.
        objective = self.discriminator_objective(
            self.discriminator, real_pair, fake_pair, real_fake_weight=0.5, order="fake_first"
        )
        return {f"loss_D_{name}": value for name, value in objective.weighted_terms.items()}

    def make_optimizers(self):
        return {
            "generator": self.build_optimizer(self.generator.parameters()),
            "discriminator": self.build_optimizer(self.discriminator.parameters()),
        }

    # --- validation ----------------------------------------------------------------------------
    def discriminator_real_inputs(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {"discriminator": torch.cat([batch["A"], batch["B"]], dim=1)}  # the real pair

    @classmethod
    def validation_metric_names(cls, loss: dict[str, Any], has_targets: bool | None) -> frozenset[str] | None:
        # Paired data: the B image of each pair is the target.
        return frozenset({"val/loss_L1"} | TRANSLATION_AGAINST_TARGET_METRICS)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        real_A, real_B = batch["A"], batch["B"]
        fake_B = self(real_A)  # the inference behaviour users get
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
        """Whole-test-set outputs, by folder: every test input translated ("AtoB": input -> output,
        whichever way ``data.direction`` points)."""
        return {"AtoB": (self(batch["A"]), batch["A_path"])}

    def distribution_samples(self, batch: dict[str, Any]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """For FID/KID: ``{"B": (real targets, translated inputs)}`` in [-1, 1], as ``forward`` makes them."""
        return {"B": (batch["B"], self(batch["A"]))}

    def inference_generator(
        self, direction: str | None = None, **conditioning: Unpack[InferenceConditioning]
    ) -> nn.Module:
        """The U-Net (``size_multiple`` = 2 ** num_downs) for ``ganstyle stylize`` / ``export``.

        Those tools put it in eval mode and make the dropout choice themselves (their ``dropout``
        argument); ``dropout_at_inference`` and ``batch_statistics_at_inference`` govern this
        module's own ``forward``, validation and image grids.
        """
        return self.generator

    def check_image_size(self, images: torch.Tensor) -> None:
        """Raise before any work when H or W is not a multiple of the U-Net's 2 ** num_downs."""
        multiple = getattr(self.generator, "size_multiple", 1)
        height, width = images.shape[-2:]
        if height % multiple or width % multiple:
            raise ValueError(
                f"pix2pix's U-Net halves the image {int(math.log2(multiple))} times and concatenates each "
                f"level with its mirror, so height and width must be multiples of {multiple}; got "
                f"{height}x{width}. Set data.crop_size to a multiple of {multiple} (the reference crops 256 "
                "for unet_256), or set model.generator.num_downs to log2 of a size that divides your images "
                "(7 for 128 px, 6 for 64 px)."
            )


def check_pair_channels(generator: dict[str, Any], discriminator: dict[str, Any]) -> None:
    """The conditional D scores input and output stacked on channels: in_channels must be their sum."""
    expected = int(generator.get("in_channels", 3)) + int(generator.get("out_channels", 3))
    got = discriminator.get("in_channels", 3)
    if got != expected:
        raise ConfigError(
            f"model.discriminator.in_channels={got}, but pix2pix's conditional discriminator scores the "
            f"input and the output image stacked on channels: {generator.get('in_channels', 3)} + "
            f"{generator.get('out_channels', 3)} = {expected}. "
            f"Set model.discriminator.in_channels={expected}."
        )
