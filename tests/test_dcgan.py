"""DCGAN / WGAN-GP: reference sizes, n_critic, the gradient penalty, the critic's norm, outputs, data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from ganstyle.config import ConfigError
from ganstyle.data.image_folder import ImageFolderDataModule
from ganstyle.data.images import DatasetError
from ganstyle.losses.adversarial import gradient_penalty
from ganstyle.models.base import build_model
from ganstyle.models.dcgan import DCGAN
from ganstyle.run.config_checks import validate_config
from ganstyle.run.training import train

TINY = (
    "model=dcgan",
    "model.generator.ngf=4",
    "model.discriminator.ndf=4",
    "model.num_fixed_samples=6",
    "model.samples_per_row=3",
    "data.n_train=6",
    "data.n_test=4",
    "data.image_size=40",
    "data.load_size=16",
    "data.crop_size=16",
    "data.batch_size=2",
    "logger=csv",
)
SIZE = 16


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def tiny_model(gan_mode: str = "vanilla", **kwargs) -> DCGAN:
    """A DCGAN built from plain dicts, as a checkpoint restores it (no Hydra)."""
    discriminator = {"_target_": "ganstyle.networks.DCGANDiscriminator", "ndf": 4, "image_size": SIZE}
    discriminator.update(kwargs.pop("discriminator", {"norm": None}))
    return DCGAN(
        generator={
            "_target_": "ganstyle.networks.DCGANGenerator",
            "latent_dim": 8,
            "ngf": 4,
            "image_size": SIZE,
        },
        discriminator=discriminator,
        optimizer={"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1.0e-4, "betas": [0.0, 0.9]},
        loss=kwargs.pop("loss", {"gan_mode": gan_mode}),
        **kwargs,
    )


def image_batches(count: int) -> list[dict]:
    generator = torch.Generator().manual_seed(0)
    return [{"image": torch.rand(2, 3, SIZE, SIZE, generator=generator) * 2 - 1} for _ in range(count)]


def step_counter():
    """A callback counting optimiser steps of the generator (first optimiser) and the discriminator."""
    import lightning.pytorch as pl

    class CountSteps(pl.Callback):
        def __init__(self) -> None:
            self.steps = {"G": 0, "D": 0}

        def on_train_start(self, trainer, pl_module) -> None:
            for name, optimizer in zip(("G", "D"), trainer.optimizers):
                optimizer.register_step_post_hook(lambda *args, name=name: self.count(name))

        def count(self, name: str) -> None:
            self.steps[name] += 1

    return CountSteps()


def fit(model: DCGAN, batches: list[dict], max_epochs: int = 1, callbacks=()):
    """Train on in-memory batches through Lightning's Trainer (imported here: ganstyle loads first)."""
    import lightning.pytorch as pl

    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=max_epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=list(callbacks),
    )
    trainer.fit(model, train_dataloaders=DataLoader(batches, batch_size=None))
    return trainer


def test_reference_config_has_the_pytorch_examples_parameter_counts(compose_config):
    cfg = compose_config("model=dcgan", "experiment=null")
    model = build_model(cfg.model)
    assert count(model.generator) == 3_576_704 and count(model.discriminator) == 2_765_568
    assert model.image_size == 64 and model.latent_dim == 100 and model.hparams.n_critic == 1
    assert cfg.loss.gan_mode == "vanilla"


@pytest.mark.parametrize("experiment", ["wgangp_quickstart", "wgangp_artworks"])
def test_wgangp_experiments_use_the_papers_critic_penalty_and_adam(compose_config, experiment):
    cfg = compose_config(f"experiment={experiment}")
    assert cfg.model._target_.endswith("DCGAN") and cfg.loss.gan_mode == "wgangp" and cfg.loss.gp_weight == 10
    assert cfg.model.discriminator.norm == "layer" and cfg.model.n_critic == 5
    assert cfg.model.optimizer.lr == pytest.approx(1e-4) and list(cfg.model.optimizer.betas) == [0.0, 0.9]


def test_artworks_experiment_is_dcgan_at_the_reference_sizes_on_an_image_folder(compose_config):
    cfg = compose_config("experiment=dcgan_artworks", "data.root=/data/monet")
    assert cfg.data._target_.endswith("ImageFolderDataModule") and cfg.data.root == "/data/monet"
    assert cfg.model.generator.image_size == cfg.model.discriminator.image_size == 64
    assert cfg.data.batch_size == 128 and cfg.model.optimizer.betas[0] == 0.5


def test_dcgan_critic_defaults_to_batch_norm_and_wgangp_to_layer_norm_and_five_critic_steps():
    dcgan, wgangp = tiny_model("vanilla"), tiny_model("wgangp")
    assert dcgan.hparams.n_critic == 1 and dcgan.hparams.discriminator["norm"] == "batch"
    assert wgangp.hparams.n_critic == 5 and wgangp.hparams.discriminator["norm"] == "layer"
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in dcgan.discriminator.modules())
    assert not any(
        isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in wgangp.discriminator.modules()
    )
    with pytest.raises(ConfigError, match=r"wgangp with model\.discriminator\.norm=batch.*norm=layer"):
        tiny_model("wgangp", discriminator={"norm": "batch"})


def test_generator_steps_once_every_n_critic_batches_across_epochs():
    torch.manual_seed(0)
    counter = step_counter()
    model = tiny_model("wgangp", n_critic=3)
    fit(model, image_batches(5), max_epochs=2, callbacks=[counter])
    # 10 critic steps; the generator after the 3rd, 6th and 9th (the count carries over the epoch).
    assert counter.steps == {"D": 10, "G": 3}
    assert model.critic_steps_since_generator_step == 1


def test_critic_loss_is_the_sum_of_its_terms_including_the_gradient_penalty():
    model = tiny_model("wgangp", loss={"gan_mode": "wgangp", "gp_weight": 10.0})
    real, fake = (torch.rand(2, 3, SIZE, SIZE) * 2 - 1 for _ in range(2))
    torch.manual_seed(1)
    terms = model.critic_terms(real, fake)
    torch.manual_seed(1)
    expected = 10.0 * gradient_penalty(model.discriminator, real, fake)  # gp_weight * GP
    assert set(terms) == {"loss_D_real", "loss_D_fake", "loss_D_gp"}
    assert float(terms["loss_D_gp"]) == pytest.approx(float(expected), rel=1e-5) and float(expected) > 0

    trainer = fit(tiny_model("wgangp", n_critic=1), image_batches(1))
    logged = trainer.callback_metrics
    total = logged["train/loss_D_real"] + logged["train/loss_D_fake"] + logged["train/loss_D_gp"]
    assert float(logged["train/loss_D"]) == pytest.approx(float(total), rel=1e-5)
    assert float(logged["train/wasserstein_estimate"]) == pytest.approx(
        -float(logged["train/loss_D_real"] + logged["train/loss_D_fake"]), rel=1e-5, abs=1e-6
    )


def test_loss_weights_dcgan_does_not_have_are_refused(compose_config):
    with pytest.raises(ConfigError, match=r"loss\.l1_weight=100.0 but DCGAN has no such term"):
        validate_config(compose_config(*TINY, "loss.l1_weight=100"))
    with pytest.raises(ConfigError, match="only signal"):
        tiny_model(loss={"gan_mode": "vanilla", "gan_weight": 0.0})


def test_sample_grid_rows_come_from_the_fixed_noise():
    model = tiny_model(num_fixed_samples=5, samples_per_row=2).eval()
    rows = model.compute_visuals({})["samples"]
    assert rows.shape == (3, 3, SIZE, 2 * SIZE + 2)  # 5 samples in rows of 2, the last padded white
    samples = model(model.fixed_noise)
    assert torch.equal(rows[0, :, :, :SIZE], samples[0]) and torch.equal(
        rows[1, :, :, SIZE + 2 :], samples[3]
    )
    assert torch.equal(rows[2, :, :, SIZE + 2 :], torch.ones(3, SIZE, SIZE))
    assert torch.equal(model.compute_visuals({})["samples"], rows)


def test_images_of_another_size_than_the_networks_are_explained():
    model = tiny_model()
    with pytest.raises(ValueError, match="built for 16x16.*data.crop_size"):
        model.check_image_size(torch.zeros(1, 3, 32, 32))


def test_fast_dev_run_trains_wgangp_end_to_end(compose_config):
    cfg = compose_config(*TINY, "experiment=wgangp_quickstart", "logger=none", "trainer.fast_dev_run=true")
    assert cfg.model.n_critic == 5 and cfg.model.optimizer.betas == [0.0, 0.9]
    assert train(cfg) is None  # no ground truth and no FID: nothing is monitored


def test_short_run_writes_checkpoints_and_sample_grids_and_reloads_without_hydra(compose_config, tmp_path):
    run = tmp_path / "run"
    cfg = compose_config(
        *TINY,
        "trainer.max_epochs=1",
        "trainer.check_val_every_n_epoch=1",
        "trainer.log_every_n_steps=1",
        "callbacks.image_grids.every_n_batches=2",
        output_dir=run,
    )
    train(cfg)
    assert (run / "checkpoints" / "last.ckpt").is_file()
    grids = sorted((run / "images").glob("val_*.png"))
    assert grids and Image.open(grids[0]).size == (3 * (SIZE + 2) + 2, 2 * (SIZE + 2) + 2)  # 2 rows of 3
    columns = (run / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train/loss_D", "train/loss_G", "train/loss_D_real", "val/loss_D"} <= set(columns)

    trained = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]["fixed_noise"]
    model = DCGAN.load_from_checkpoint(run / "checkpoints" / "last.ckpt", map_location="cpu").eval()
    assert torch.equal(model.fixed_noise, trained) and model.hparams.discriminator["norm"] == "batch"
    assert torch.equal(model.generate(4, seed=3), model.generate(4, seed=3))
    assert model.generate(4).shape == (4, 3, SIZE, SIZE)


def test_image_folder_holds_out_an_even_spread_of_images_for_validation(tmp_path):
    for index in range(10):
        pixels = np.random.default_rng(index).integers(0, 256, (20, 20, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / f"art{index}.png")
    data = ImageFolderDataModule(str(tmp_path), held_out=4, load_size=16, crop_size=16, batch_size=4)
    data.setup("fit")
    held = [path.name for path in data.val_dataset.paths]
    assert held == ["art0.png", "art3.png", "art6.png", "art9.png"]  # spread over the sorted names
    assert not set(held) & {path.name for path in data.train_dataset.paths}
    assert len(data.train_dataset) == 6
    batch = next(iter(data.train_dataloader()))
    assert batch["image"].shape == (4, 3, 16, 16) and batch["image"].abs().max() <= 1
    with pytest.raises(DatasetError, match="held_out=10 would keep all 10 images"):
        ImageFolderDataModule(str(tmp_path), held_out=10, load_size=16, crop_size=16).setup("fit")
