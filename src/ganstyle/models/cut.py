"""CUT and FastCUT: contrastive unpaired translation (Park, Efros, Zhang, Zhu, ECCV 2020, "Contrastive
Learning for Unpaired Image-to-Image Translation"; taesungp/contrastive-unpaired-translation).

One generator G: A -> B and one discriminator D on B. Instead of CycleGAN's second generator and
cycle, a patch of G(x) must be recognisable as the patch of x at the same place among other patches
of x (PatchNCE on G's own encoder features, through small projection heads F). The objective:

    L_G = gan_weight * LSGAN(D(G(x)), real)
        + nce_weight * (NCE(x, G(x)) + nce_idt_weight * NCE(y, G(y))) / (1 + nce_idt_weight)
    L_D = (LSGAN(D(y), real) + LSGAN(D(G(x)), fake)) / 2

``mode=cut``: nce_weight 1, identity NCE on (nce_idt_weight 1, i.e. the reference's (NCE + NCE_Y) / 2),
200 + 200 epochs. ``mode=fastcut``: nce_weight 10, no identity NCE, flip equivariance (the input is
flipped horizontally half the time and the output's features flipped back before comparing them with
the input's), 150 + 50 epochs. Values set explicitly win over the mode's. Step order as the reference:
D, then G and F together; no image pool.

    python train.py model=cut                        # CPU quick start on the embedded data
    python train.py model=cut model.mode=fastcut
    python train.py model=cut data=unpaired data.root=datasets/horse2zebra trainer=gpu
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ganstyle.config import CUT_MODES, ConfigError
from ganstyle.losses.adversarial import AdversarialLoss
from ganstyle.losses.patchnce import PatchNCELoss
from ganstyle.losses.perceptual import build_perceptual_criterion, weighted_perceptual_terms
from ganstyle.models.base import ImageModel, InferenceConditioning, build, plain_data
from ganstyle.models.validation_metrics import TRANSLATION_AGAINST_TARGET_METRICS
from ganstyle.networks.patch_sample import PatchSampleF

if TYPE_CHECKING:  # annotations only: typing.Unpack needs Python 3.11
    from typing_extensions import Unpack

# The reference's per-mode defaults (--CUT_mode): used for whatever the config leaves unset.
MODE_DEFAULTS = {
    "cut": {"nce_weight": 1.0, "nce_idt_weight": 1.0, "flip_equivariance": False},
    "fastcut": {"nce_weight": 10.0, "nce_idt_weight": 0.0, "flip_equivariance": True},
}


# The reference's linear schedules per mode (n_epochs constant, then n_epochs_decay of linear decay):
# CUT 200 + 200, FastCUT 150 + 50. The scheduler group's own default, 100 + 100, has CUT's shape.
MODE_SCHEDULE_SHAPES = {"cut": (200, 200), "fastcut": (150, 50)}
GENERIC_LINEAR_SHAPE = (100, 100)  # conf/scheduler/linear.yaml


def with_mode_schedule_shape(scheduler: dict[str, Any] | None, mode: str) -> dict[str, Any] | None:
    """The linear schedule in the mode's reference shape, unless the config chose another shape.

    The schedule is a shape fitted to ``trainer.max_epochs`` (ganstyle.utils.schedulers), so only the
    ratio matters: the group default's 100 + 100 becomes CUT's 200 + 200 (the same 1:1) or FastCUT's
    150 + 50 (3:1). Any other ``scheduler.n_epochs`` / ``n_epochs_decay`` is kept as set.
    """
    if not scheduler or not str(scheduler.get("_target_", "")).endswith("linear_decay"):
        return scheduler
    shape = (scheduler.get("n_epochs"), scheduler.get("n_epochs_decay"))
    if shape != GENERIC_LINEAR_SHAPE:
        return scheduler
    n_epochs, n_epochs_decay = MODE_SCHEDULE_SHAPES[mode]
    return {**scheduler, "n_epochs": n_epochs, "n_epochs_decay": n_epochs_decay}


class CUT(ImageModel):
    # content/style/TV (loss.content_weight, ...) are the optional perceptual terms CycleGAN has too:
    # style compares G(x) with the batch's real B images, content G(x) with x.
    loss_terms = ("gan_weight", "nce_weight", "nce_idt_weight", "content_weight", "style_weight", "tv_weight")
    distribution_domains = ("B",)  # val/fid_B scores G(A) against real B
    ground_truth_monitor = ("val/psnr_B", "max")  # with ground truth (the embedded dataset's testA2B)
    visual_rows = (("real_A", "fake_B", "real_B", "idt_B"),)
    data_kinds = ("unpaired", "paired")  # A/B batches; pairs are simply not used as pairs
    # The reference's optimizer_G, optimizer_D and optimizer_F (the projection heads).
    test_translation_folders = ("AtoB",)  # testA translated to B

    def __init__(
        self,
        generator: dict[str, Any],
        discriminator: dict[str, Any],
        optimizer: dict[str, Any],
        scheduler: dict[str, Any] | None = None,
        loss: dict[str, Any] | None = None,
        mode: str = "cut",
        nce_layers: Sequence[int] = (0, 4, 8, 12, 16),
        num_patches: int = 256,
        nce_temperature: float = 0.07,
        negatives_from_minibatch: bool = False,
        flip_equivariance: bool | None = None,
        head_width: int = 256,
    ) -> None:
        super().__init__()
        if str(mode).lower() not in CUT_MODES:
            raise ConfigError(
                f"model.mode={mode!r} is not a CUT mode. Use model.mode=cut (identity NCE, NCE weight 1) "
                "or model.mode=fastcut (NCE weight 10, flip equivariance, no identity NCE)."
            )
        mode = str(mode).lower()
        defaults = MODE_DEFAULTS[mode]
        loss = dict(plain_data(loss) or {})
        for key in ("nce_weight", "nce_idt_weight"):  # unset (built from Python): the mode's value
            if loss.get(key) is None:
                loss[key] = defaults[key]
        loss = self.checked_loss_config(loss)
        scheduler = with_mode_schedule_shape(plain_data(scheduler), mode)
        if flip_equivariance is None:
            flip_equivariance = defaults["flip_equivariance"]
        nce_layers = [int(layer) for layer in nce_layers]
        if not isinstance(num_patches, int) or num_patches < 1:
            raise ConfigError(f"model.num_patches={num_patches!r} must be a positive integer (CUT: 256).")
        self.save_hyperparameters()  # as plain data (ImageModel)

        self.G = build(generator)
        if not hasattr(self.G, "encode") or not hasattr(self.G, "feature_channels"):
            raise ConfigError(
                f"model.generator builds a {type(self.G).__name__}, which has no encode(x, layers) / "
                "feature_channels(layers): CUT compares the generator's own encoder features. Use "
                "_target_: ganstyle.networks.ResnetGenerator (CUT's network)."
            )
        self.D = build(discriminator)
        # The heads' input widths come from the generator's layer list, so they exist before training
        # (the reference builds them lazily at the first batch).
        self.F = PatchSampleF(
            self.G.feature_channels(nce_layers),
            nc=head_width,
            init_type=generator.get("init_type", "xavier"),  # the reference's --init_type default
            init_gain=generator.get("init_gain", 0.02),
        )
        self.adversarial = AdversarialLoss(loss["gan_mode"])
        self.patchnce = PatchNCELoss(nce_temperature, negatives_from_minibatch)
        # None unless a content/style/TV weight is non-zero: a zero weight builds no VGG at all.
        self.perceptual = build_perceptual_criterion(loss)

        # Ground-truth metrics for A -> B when the validation data has targets (the embedded dataset),
        # next to the untranslated input's: the do-nothing baseline a model that learnt must beat.
        self.build_translation_metrics()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Translate A images in [-1, 1] to B; inference only."""
        return self.G(images)

    def inference_generator(
        self, direction: str | None = None, **conditioning: Unpack[InferenceConditioning]
    ) -> nn.Module:
        """G (A -> B); see ImageModel.inference_generator."""
        return self.G

    # --- training ------------------------------------------------------------------------------
    def uses_identity_nce(self) -> bool:
        """Whether G also runs on real B for the identity PatchNCE (CUT's nce_idt)."""
        loss = self.hparams.loss
        return loss["nce_weight"] > 0 and loss["nce_idt_weight"] > 0

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        loss = self.hparams.loss
        real_A, real_B = batch["A"], batch["B"]
        opt_G, opt_D, opt_F = self.optimizers()
        size = real_A.shape[0]

        # G runs once on x (and y for the identity NCE), flipped half the time for FastCUT.
        real = torch.cat([real_A, real_B]) if self.uses_identity_nce() else real_A
        flipped = self.hparams.flip_equivariance and bool(torch.rand(()) < 0.5)
        fake = self.G(torch.flip(real, [3]) if flipped else real)
        fake_B, idt_B = fake[:size], fake[size:]

        # 1. Discriminator: real B against G(x) (no history pool).
        with self.toggled_optimizer(opt_D):
            # L_D = 0.5 * (L(D(y), real) + L(D(G(x)), fake)) (+ gp_weight * GP); the fakes are scored
            # first, as in the reference.
            objective = self.discriminator_objective(self.D, real_B, fake_B, 0.5, order="fake_first")
            loss_D = objective.loss
            # Logged as the reference prints them: D's real and fake terms before halving, and the
            # penalty as it enters L_D.
            critic_terms = {"loss_D_real": objective.terms["real"], "loss_D_fake": objective.terms["fake"]}
            if "gp" in objective.weighted_terms:
                critic_terms["loss_D_gp"] = objective.weighted_terms["gp"]
            self.step_if_finite(opt_D, loss_D, critic_terms, "discriminator")

        # 2. Generator and heads together: fool D, keep each patch recognisable (PatchNCE).
        # L_G = gan_weight * L_GAN + nce_weight * (L_NCE + nce_idt_weight * L_NCE_Y) / (1 + nce_idt_weight)
        #       (+ the optional perceptual terms), every L unweighted.
        self.D.requires_grad_(False)
        terms = {
            "loss_G_GAN": loss["gan_weight"]
            * self.adversarial(self.discriminate(self.D, fake_B), True, False)
        }
        if loss["nce_weight"] > 0:
            share = loss["nce_weight"] / (1.0 + (loss["nce_idt_weight"] if self.uses_identity_nce() else 0.0))
            terms["loss_NCE"] = share * self.nce_loss(real_A, fake_B, flipped)
            if self.uses_identity_nce():
                terms["loss_NCE_Y"] = share * loss["nce_idt_weight"] * self.nce_loss(real_B, idt_B, flipped)
        if self.perceptual is not None:
            perceptual = self.perceptual(fake_B, content=real_A, style=real_B)
            for name, value in weighted_perceptual_terms(perceptual, loss).items():
                terms[f"loss_{name}"] = value
        loss_G = sum(terms.values())
        if self.finite_or_skip(terms, "generator"):
            opt_G.zero_grad(set_to_none=True)
            opt_F.zero_grad(set_to_none=True)
            self.manual_backward(loss_G)
            opt_G.step()
            opt_F.step()
        self.D.requires_grad_(True)

        logged = {f"train/{name}": value.detach() for name, value in terms.items()}
        logged.update({f"train/{name}": value.detach() for name, value in critic_terms.items()})
        logged.update({"train/loss_G": loss_G.detach(), "train/loss_D": loss_D.detach()})
        self.log_training_values(
            logged, size, progress_bar={"loss_G": loss_G.detach(), "loss_D": loss_D.detach()}
        )

    def nce_loss(
        self,
        source: torch.Tensor,
        output: torch.Tensor,
        flipped: bool = False,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """PatchNCE between G's encoder features of ``output`` (queries) and of ``source`` (keys), averaged
        over the sampled patches of each layer and then over the layers (the reference's normalisation).

        ``flipped``: ``output`` was made from the mirrored ``source`` (flip equivariance), so its features
        are mirrored back before the same locations are sampled from both. ``generator``: draw the
        locations from it instead of the global random state.
        """
        layers = self.hparams.nce_layers
        queries = self.G.encode(output, layers)
        if flipped:
            queries = [torch.flip(feature, [3]) for feature in queries]
        keys = self.G.encode(source, layers)
        key_samples, patch_ids = self.F(keys, self.hparams.num_patches, generator=generator)
        query_samples, _ = self.F(queries, self.hparams.num_patches, patch_ids)
        per_layer = [
            self.patchnce(query, key, source.shape[0]).mean()
            for query, key in zip(query_samples, key_samples)
        ]
        return torch.stack(per_layer).mean()

    def make_optimizers(self):
        # Three Adams with the same settings, as the reference (optimizer_G, optimizer_D, optimizer_F).
        return {
            "generator": self.build_optimizer(self.G.parameters()),
            "discriminator": self.build_optimizer(self.D.parameters()),
            "heads": self.build_optimizer(self.F.parameters()),
        }

    # --- validation ----------------------------------------------------------------------------
    def discriminator_real_inputs(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {"D": batch["B"]}

    @classmethod
    def validation_metric_names(cls, loss: dict[str, Any], has_targets: bool | None) -> frozenset[str] | None:
        if has_targets is None:  # PSNR/SSIM come only with testA2B/ targets
            return None
        return frozenset({"val/loss_NCE"} | (TRANSLATION_AGAINST_TARGET_METRICS if has_targets else set()))

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        real_A = batch["A"]
        fake_B = self.G(real_A)
        size = real_A.shape[0]
        # The unweighted PatchNCE of G(x) against x: always available, also without ground truth. Its
        # patch locations come from a generator seeded by the batch index, so every epoch scores the same
        # patches and validation leaves training's random state alone.
        locations = torch.Generator().manual_seed(batch_idx)
        self.log(
            "val/loss_NCE",
            self.nce_loss(real_A, fake_B, generator=locations),
            batch_size=size,
            sync_dist=True,
        )
        if "B_target" in batch:
            self.log_translation_against_target(real_A, fake_B, batch["B_target"], size)

    def distribution_samples(self, batch: dict[str, Any]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        return {"B": (batch["B"], self.G(batch["A"]))}

    # --- visuals and outputs -------------------------------------------------------------------
    @torch.no_grad()
    def compute_visuals(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        real_A = batch["A"].to(self.device)
        real_B = batch["B"].to(self.device)
        return {"real_A": real_A, "fake_B": self.G(real_A), "real_B": real_B, "idt_B": self.G(real_B)}

    def test_translations(self, batch: dict[str, Any]) -> dict[str, tuple[torch.Tensor, list[str]]]:
        """Whole-test-set outputs: testA translated to B."""
        return {"AtoB": (self.G(batch["A"]), batch["A_path"])}
