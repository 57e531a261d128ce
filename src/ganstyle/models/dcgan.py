"""DCGAN and WGAN-GP: new images from noise, learnt from a collection (e.g. artworks in one style).

DCGAN (Radford et al. 2016): generator G(z), z ~ N(0, I) of ``latent_dim`` values, and a convolutional
discriminator D trained with the standard GAN objective (loss.gan_mode=vanilla, BCE on logits):

    max_D  E_x[log D(x)] + E_z[log(1 - D(G(z)))]        G: min -E_z[log D(G(z))] (non-saturating)

WGAN-GP (Gulrajani et al. 2017, loss.gan_mode=wgangp): D is a critic with unbounded scores, trained
to estimate the Wasserstein-1 distance, its gradient kept near unit norm by a penalty:

    critic:  E_z[D(G(z))] - E_x[D(x)] + lambda * E_xhat[(||grad D(xhat)||_2 - 1)^2],  lambda = loss.gp_weight
    G:       -E_z[D(G(z))]                               xhat = a x + (1 - a) G(z),  a ~ U(0, 1)

Training follows both papers' Algorithm 1: every batch is one critic (discriminator) step on real
images against samples from fresh noise; after every ``n_critic`` critic steps the generator takes
one step on another fresh noise batch. The critic losses are summed, not halved (that halving is a
pix2pix/CycleGAN convention). ``n_critic`` defaults to 1 for DCGAN and to 5 for WGAN-GP, and a
discriminator config with ``norm: null`` gets batch norm (DCGAN) or layer norm (WGAN-GP: the penalty
is per sample, which batch norm would break). Adam 2e-4, betas (0.5, 0.999) for DCGAN; the WGAN-GP
experiments use Gulrajani et al.'s 1e-4, betas (0.0, 0.9).

    python train.py model=dcgan                          # DCGAN, quick-start sizes, embedded "artworks"
    python train.py experiment=wgangp_quickstart         # WGAN-GP with the paper's n_critic and Adam
    python train.py experiment=dcgan_artworks data.root=/data/monet   # reference sizes, your images
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from ganstyle.config import ConfigError
from ganstyle.losses.adversarial import AdversarialLoss
from ganstyle.models.base import ImageModel, InferenceConditioning, build, plain_data
from ganstyle.networks.critic_checks import check_critic_norm

if TYPE_CHECKING:  # annotations only: typing.Unpack needs Python 3.11
    from typing_extensions import Unpack

WHITE = 1.0  # the separator between samples in a visual row, in the network's [-1, 1] range


def tile_rows(images: torch.Tensor, per_row: int, separator: int = 2) -> torch.Tensor:
    """(N, C, H, W) images -> (ceil(N / per_row), C, H, W') strips of ``per_row`` side by side,
    ``separator`` white columns between neighbours; a short last row is padded with white tiles."""
    count, channels, height, width = images.shape
    missing = -count % per_row
    if missing:
        images = torch.cat([images, images.new_full((missing, channels, height, width), WHITE)])
    gap = images.new_full((channels, height, separator), WHITE)
    rows = []
    for start in range(0, images.shape[0], per_row):
        tiles = []
        for index, image in enumerate(images[start : start + per_row]):
            tiles += [gap, image] if index else [image]
        rows.append(torch.cat(tiles, dim=2))
    return torch.stack(rows)


class DCGAN(ImageModel):
    """DCGAN / WGAN-GP as a LightningModule; see the module docstring for the objectives.

    Args:
        generator: ``_target_`` config of G (``DCGANGenerator``); its ``latent_dim`` sizes z.
        discriminator: ``_target_`` config of D (``DCGANDiscriminator``); ``norm: null`` picks
            "batch" (DCGAN) or "layer" (WGAN-GP).
        optimizer, scheduler: partial ``_target_`` configs, one optimiser each for G and D.
        loss: the loss config; uses ``gan_mode``, ``gan_weight`` and, for wgangp, ``gp_weight``.
        n_critic: critic steps per generator step; None: 5 for wgangp (Gulrajani et al.), else 1.
        num_fixed_samples: size of the fixed noise batch behind every sample grid.
        samples_per_row: samples side by side in one row of the grid.
        fixed_noise_seed: seed of the fixed noise (stored in checkpoints as a buffer as well).
    """

    data_kinds = ("image_folder",)  # unconditional: one folder of images

    loss_terms = ("gan_weight",)
    visual_rows = (("samples",),)
    # FID/KID of samples against the validation images (val/fid_samples) when FID runs. There is no
    # ground truth for a sample, so without FID checkpointing keeps the latest epoch (monitor None).
    distribution_domains = ("samples",)
    ground_truth_monitor = None

    def __init__(
        self,
        generator: dict[str, Any],
        discriminator: dict[str, Any],
        optimizer: dict[str, Any],
        scheduler: dict[str, Any] | None = None,
        loss: dict[str, Any] | None = None,
        n_critic: int | None = None,
        num_fixed_samples: int = 64,  # an 8 x 8 grid, as in pytorch/examples' dcgan
        samples_per_row: int = 8,
        fixed_noise_seed: int = 0,
    ) -> None:
        super().__init__()
        generator, discriminator = plain_data(generator), dict(plain_data(discriminator))
        loss = self.checked_loss_config(loss)
        wgangp = loss["gan_mode"] == "wgangp"
        if discriminator.get("norm") is None:  # unset or null: the paper's choice for the objective
            discriminator["norm"] = "layer" if wgangp else "batch"
        check_critic_norm(type(self).__name__, discriminator, loss["gan_mode"])
        if n_critic is None:
            n_critic = 5 if wgangp else 1
        for name, value in (
            ("n_critic", n_critic),
            ("num_fixed_samples", num_fixed_samples),
            ("samples_per_row", samples_per_row),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"model.{name}={value!r} must be a positive integer.")
        sizes = (generator.get("image_size", 64), discriminator.get("image_size", 64))
        if sizes[0] != sizes[1]:
            raise ConfigError(
                f"model.generator.image_size={sizes[0]} but model.discriminator.image_size={sizes[1]}: the "
                "discriminator must score images of the size the generator makes. Set both to the data's "
                "data.crop_size (the model config does that by default with ${data.crop_size})."
            )
        # Resolved values (norm, n_critic) are what the checkpoint stores, so a reload needs no rules.
        self.save_hyperparameters()  # as plain data (ImageModel)

        self.generator = build(generator)
        self.discriminator = build(discriminator)
        self.adversarial = AdversarialLoss(loss["gan_mode"])
        self.image_size = int(sizes[0])
        self.latent_dim = int(self.generator.latent_dim)
        noise = torch.Generator().manual_seed(fixed_noise_seed)
        # A buffer: saved in checkpoints and moved with the model, so grids from a reloaded model
        # show the same z as during training.
        self.register_buffer("fixed_noise", torch.randn(num_fixed_samples, self.latent_dim, generator=noise))
        self.critic_steps_since_generator_step = 0  # saved in checkpoints: resuming keeps the rhythm
        self.latest_loss_G: torch.Tensor | None = None  # the last generator step's loss, for logging

    @classmethod
    def check_loss_config(cls, loss: dict[str, Any]) -> None:
        super().check_loss_config(loss)
        if float(loss["gan_weight"]) == 0:
            raise ConfigError(
                "loss.gan_weight=0, but the adversarial loss is the only signal a noise-to-image generator "
                "learns from. Use loss.gan_weight=1 (its scale does not matter with Adam)."
            )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Images (N, C, image_size, image_size) in [-1, 1] from latent vectors z (N, latent_dim)."""
        return self.generator(z)

    @torch.no_grad()
    def generate(self, num_images: int, seed: int | None = None) -> torch.Tensor:
        """``num_images`` new images in [-1, 1]; ``seed`` makes the noise (and so the images) repeatable."""
        return self(self.sample_noise(num_images, seed))

    def sample_noise(self, count: int, seed: int | None = None) -> torch.Tensor:
        """z ~ N(0, I), shape (count, latent_dim), on the model's device."""
        if seed is None:
            return torch.randn(count, self.latent_dim, device=self.device)
        generator = torch.Generator().manual_seed(seed)
        return torch.randn(count, self.latent_dim, generator=generator).to(self.device)

    # --- training ------------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        real = batch["image"]
        self.check_image_size(real)
        opt_G, opt_D = self.optimizers()
        size = real.shape[0]

        # 1. Critic step, every batch: real images against samples from fresh noise (G is not
        #    updated here, so no graph is kept through it).
        with torch.no_grad():
            fake = self.generator(self.sample_noise(size))
        with self.toggled_optimizer(opt_D):
            terms = self.critic_terms(real, fake)
            loss_D = sum(terms.values())
            self.step_if_finite(opt_D, loss_D, terms, "discriminator")
        self.critic_steps_since_generator_step += 1
        logged = {f"train/{name}": value.detach() for name, value in terms.items()}
        if self.hparams.loss["gan_mode"] == "wgangp":
            # The critic's estimate of the Wasserstein distance: Gulrajani et al.'s training curve.
            logged["train/wasserstein_estimate"] = -(terms["loss_D_real"] + terms["loss_D_fake"]).detach()
        logged["train/loss_D"] = loss_D.detach()

        # 2. Generator step after every n_critic critic steps, on a new noise batch.
        if self.critic_steps_since_generator_step >= self.hparams.n_critic:
            with self.toggled_optimizer(opt_G):
                score = self.discriminate(self.discriminator, self.generator(self.sample_noise(size)))
                loss_G = self.hparams.loss["gan_weight"] * self.adversarial(score, True, False)
                self.step_if_finite(opt_G, loss_G, {"loss_G": loss_G}, "generator")
            self.critic_steps_since_generator_step = 0
            self.latest_loss_G = loss_G.detach()
        # With n_critic > 1 most steps have no G loss: the latest one is logged, so every written
        # step (every trainer.log_every_n_steps) has it.
        if self.latest_loss_G is not None:
            logged["train/loss_G"] = self.latest_loss_G
        progress = {
            name: logged[f"train/{name}"] for name in ("loss_D", "loss_G") if f"train/{name}" in logged
        }
        self.log_training_values(logged, size, progress_bar=progress)

    def critic_terms(self, real: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        """L(D(x), real) and L(D(G(z)), fake), summed unhalved as in both papers' Algorithm 1; with
        gan_mode=wgangp also loss.gp_weight * the gradient penalty on random interpolates of real and
        generated images (:func:`~ganstyle.losses.adversarial.discriminator_loss`)."""
        objective = self.discriminator_objective(self.discriminator, real, fake, real_fake_weight=1.0)
        return {f"loss_D_{name}": value for name, value in objective.weighted_terms.items()}

    def make_optimizers(self):
        return {
            "generator": self.build_optimizer(self.generator.parameters()),
            "discriminator": self.build_optimizer(self.discriminator.parameters()),
        }

    # --- validation ----------------------------------------------------------------------------
    def discriminator_real_inputs(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {"discriminator": batch["image"]}

    @classmethod
    def validation_metric_names(cls, loss: dict[str, Any], has_targets: bool | None) -> frozenset[str] | None:
        wasserstein = {"val/wasserstein_estimate"} if loss.get("gan_mode") == "wgangp" else set()
        return frozenset({"val/loss_D"} | wasserstein)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """The discriminator's loss on held-out real images against samples (without the penalty),
        and for WGAN-GP the critic's Wasserstein estimate on them. The noise is seeded by the batch
        index, so epochs are compared on the same z. (FID, when it runs, is the quality
        metric: see :meth:`distribution_samples`.)"""
        real = batch["image"]
        self.check_image_size(real)
        size = real.shape[0]
        fake = self.generator(self.sample_noise(size, seed=batch_idx))
        score_real, score_fake = self.discriminate(self.discriminator, real, fake)
        loss_real, loss_fake = self.adversarial(score_real, True), self.adversarial(score_fake, False)
        self.log("val/loss_D", loss_real + loss_fake, batch_size=size, sync_dist=True)
        if self.hparams.loss["gan_mode"] == "wgangp":
            self.log(
                "val/wasserstein_estimate",
                score_real.mean() - score_fake.mean(),
                batch_size=size,
                sync_dist=True,
            )

    # --- outputs -------------------------------------------------------------------------------
    @torch.no_grad()
    def compute_visuals(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """``samples``: G(fixed noise), tiled into rows of ``samples_per_row`` images (one grid line
        each), so every grid of a run shows the same z."""
        return {"samples": tile_rows(self(self.fixed_noise), self.hparams.samples_per_row)}

    def distribution_samples(self, batch: dict[str, Any]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """For FID/KID: ``{"samples": (real images, as many new samples)}`` in [-1, 1]."""
        real = batch["image"]
        return {"samples": (real, self(self.sample_noise(real.shape[0])))}

    def inference_generator(
        self, direction: str | None = None, **conditioning: Unpack[InferenceConditioning]
    ) -> torch.nn.Module:
        raise NotImplementedError(
            "DCGAN generates new images from noise; it does not translate an input image, so `ganstyle "
            "stylize` and `ganstyle export` do not apply. Load the checkpoint with "
            "DCGAN.load_from_checkpoint(path) and call model.generate(num_images, seed=...)."
        )

    def check_image_size(self, images: torch.Tensor) -> None:
        """Raise before any work when the data's images are not the networks' image_size."""
        if tuple(images.shape[-2:]) != (self.image_size, self.image_size):
            height, width = images.shape[-2:]
            raise ValueError(
                f"The data gives {height}x{width} images but the generator and discriminator are built for "
                f"{self.image_size}x{self.image_size} (model.generator.image_size / "
                "model.discriminator.image_size). Set data.crop_size (with a cropping data.preprocess) to "
                f"{self.image_size}, or build the networks for the data's size."
            )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["critic_steps_since_generator_step"] = self.critic_steps_since_generator_step

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        self.critic_steps_since_generator_step = int(checkpoint.get("critic_steps_since_generator_step", 0))
