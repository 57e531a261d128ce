"""pix2pix: reference sizes, the conditional discriminator, the L1 weight, test-time dropout, outputs."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from helpers import fit_one_batch
from PIL import Image
from torch.utils.data import DataLoader

from ganstyle.config import ConfigError
from ganstyle.data.embedded import render_style
from ganstyle.data.embedded_paired import EmbeddedPairedDataModule, materialize_embedded_pairs
from ganstyle.data.images import list_images
from ganstyle.models.base import build_model
from ganstyle.models.pix2pix import Pix2Pix
from ganstyle.run.config_checks import validate_config
from ganstyle.run.training import train

TINY = (
    "model=pix2pix",
    "model.generator.num_downs=5",
    "model.generator.ngf=8",
    "model.discriminator.ndf=8",
    "data.image_size=40",
    "data.n_train=6",
    "data.n_test=4",
    "data.load_size=36",
    "data.crop_size=32",
    "logger=csv",
)
SIZE = 64  # num_downs=6: the smallest U-Net with a dropout block (num_downs - 5 of them)


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def tiny_model(**kwargs) -> Pix2Pix:
    """A pix2pix built from plain dicts, as a checkpoint restores it (no Hydra)."""
    return Pix2Pix(
        generator={"_target_": "ganstyle.networks.UnetGenerator", "num_downs": 6, "ngf": 4, "norm": "batch"},
        discriminator={
            "_target_": "ganstyle.networks.NLayerDiscriminator",
            "in_channels": 6,
            "ndf": 4,
            "n_layers": 2,
            "norm": "batch",
        },
        optimizer={"_target_": "torch.optim.Adam", "_partial_": True, "lr": 2.0e-4, "betas": [0.5, 0.999]},
        loss=kwargs.pop("loss", {"gan_mode": "vanilla", "l1_weight": 100.0}),
        **kwargs,
    )


def pair_batch(seed: int = 0, size: int = SIZE) -> dict:
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(2, 2, 3, size, size, generator=generator) * 2 - 1
    return {"A": images[0], "B": images[1], "A_path": ["a0.png", "a1.png"], "B_path": ["b0.png", "b1.png"]}


def test_reference_config_is_unet_256_and_a_conditional_patchgan_with_the_reference_counts(compose_config):
    cfg = compose_config("model=pix2pix", "experiment=null")
    model = build_model(cfg.model)
    assert count(model.generator) == 54_413_955  # unet_256, batch norm
    assert count(model.discriminator) == 2_768_705  # 6-channel 70x70 PatchGAN, batch norm
    assert model.generator.size_multiple == 256
    assert cfg.loss.gan_mode == "vanilla" and cfg.loss.l1_weight == 100.0
    assert model.hparams.dropout_at_inference and model.hparams.batch_statistics_at_inference


def test_facades_experiment_composes_the_reference_run_labels_to_photo(compose_config):
    cfg = compose_config("experiment=pix2pix_facades")
    assert cfg.model._target_.endswith("Pix2Pix") and cfg.model.generator.num_downs == 8
    assert cfg.data._target_.endswith("PairedDataModule") and cfg.data.direction == "BtoA"
    assert (cfg.data.load_size, cfg.data.crop_size, cfg.data.batch_size) == (286, 256, 1)
    assert cfg.loss.l1_weight == 100.0 and cfg.trainer.max_epochs == 200


def test_discriminator_sees_the_six_channel_input_output_pair_in_both_steps():
    torch.manual_seed(0)
    model = tiny_model()
    seen = []
    model.discriminator.register_forward_hook(lambda module, args, out: seen.append(args[0].detach()))
    batch = pair_batch()
    fit_one_batch(model, batch)
    assert len(seen) == 3  # D step: fake pair, real pair; G step: fake pair
    for pair in seen:
        assert pair.shape == (2, 6, SIZE, SIZE)
        assert torch.equal(pair[:, :3], batch["A"])  # conditioned on the input
    # The reference's order (pix2pix_model.py backward_D: fake, then real).
    assert torch.equal(seen[1][:, 3:], batch["B"]) and not torch.equal(seen[0][:, 3:], batch["B"])


def test_discriminator_batch_norm_statistics_follow_the_reference_order_fake_then_real():
    torch.manual_seed(0)
    model = tiny_model()
    batch = pair_batch()
    fake_B = model.generator(batch["A"]).detach()
    reference = copy.deepcopy(model.discriminator)
    model.discriminator_terms(batch["A"], batch["B"], fake_B)
    reference(torch.cat([batch["A"], fake_B], dim=1))
    reference(torch.cat([batch["A"], batch["B"]], dim=1))
    ours = {k: v for k, v in model.discriminator.state_dict().items() if "running" in k}
    assert ours and all(torch.equal(v, reference.state_dict()[k]) for k, v in ours.items())


def test_generator_loss_weights_the_l1_term_by_l1_weight():
    torch.manual_seed(0)
    model = tiny_model()
    outputs = []
    model.generator.register_forward_hook(lambda module, args, out: outputs.append(out.detach()))
    batch = pair_batch()
    trainer = fit_one_batch(model, batch)
    l1 = (outputs[0] - batch["B"]).abs().mean()
    logged = trainer.callback_metrics
    assert logged["train/loss_G_L1"] == pytest.approx(100.0 * float(l1), rel=1e-5)
    assert logged["train/loss_G"] == pytest.approx(
        float(logged["train/loss_G_L1"] + logged["train/loss_G_GAN"]), rel=1e-5
    )
    # D's loss is halved, as in the reference: 0.5 * (BCE(real) + BCE(fake)).
    assert logged["train/loss_D"] == pytest.approx(
        float(logged["train/loss_D_real"] + logged["train/loss_D_fake"]), rel=1e-5
    )


def test_dropout_at_inference_keeps_eval_outputs_stochastic_and_false_makes_them_repeatable():
    torch.manual_seed(0)
    images = pair_batch()["A"]
    sampling = tiny_model().eval()
    assert not torch.equal(sampling(images), sampling(images))  # the paper: dropout stays on
    visuals = [sampling.compute_visuals({"A": images, "B": images})["fake_B"] for _ in range(2)]
    assert not torch.equal(*visuals)

    fixed = tiny_model(dropout_at_inference=False, batch_statistics_at_inference=False).eval()
    assert torch.equal(fixed(images), fixed(images))
    assert all(not module.training for module in fixed.modules())  # forward restored eval mode


def test_batch_statistics_at_inference_normalise_per_batch_without_touching_running_stats():
    torch.manual_seed(0)
    model = tiny_model(dropout_at_inference=False).eval()
    before = {name: value.clone() for name, value in model.generator.state_dict().items()}
    images = pair_batch()["A"]
    together = model(images)
    alone = torch.cat([model(images[:1]), model(images[1:])])
    assert not torch.allclose(together, alone)  # each batch's own statistics, as in the paper
    for name, value in model.generator.state_dict().items():
        assert torch.equal(value, before[name]), name
    running = tiny_model(dropout_at_inference=False, batch_statistics_at_inference=False).eval()
    assert torch.allclose(running(images), torch.cat([running(images[:1]), running(images[1:])]), atol=1e-6)


def test_loss_weights_pix2pix_does_not_have_are_refused(compose_config):
    with pytest.raises(ConfigError, match=r"loss\.cycle_weight=10.0 but Pix2Pix has no such term"):
        validate_config(compose_config(*TINY, "loss.cycle_weight=10"))
    with pytest.raises(ConfigError, match="nothing to learn"):
        tiny_model(loss={"gan_mode": "vanilla", "gan_weight": 0.0, "l1_weight": 0.0})


def test_discriminator_without_input_plus_output_channels_is_refused():
    with pytest.raises(ConfigError, match=r"in_channels=3.*3 \+ 3 = 6"):
        Pix2Pix(
            generator={"_target_": "ganstyle.networks.UnetGenerator", "num_downs": 6, "ngf": 4},
            discriminator={"_target_": "ganstyle.networks.NLayerDiscriminator", "in_channels": 3},
            optimizer={"_target_": "torch.optim.Adam", "_partial_": True},
            loss={"gan_mode": "vanilla", "l1_weight": 100.0},
        )


def test_images_not_a_multiple_of_the_unet_size_are_explained_before_any_work():
    model = tiny_model().eval()
    with pytest.raises(ValueError, match="multiples of 64; got 48x48. Set data.crop_size"):
        model(torch.zeros(1, 3, 48, 48))


def test_fast_dev_run_trains_end_to_end(compose_config):
    assert isinstance(train(compose_config(*TINY, "logger=none", "trainer.fast_dev_run=true")), float)


def test_short_run_writes_checkpoints_grids_translations_and_reloads_without_hydra(compose_config, tmp_path):
    run = tmp_path / "run"
    cfg = compose_config(
        *TINY,
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "trainer.log_every_n_steps=1",
        "callbacks.image_grids.every_n_batches=2",
        output_dir=run,
    )
    result = train(cfg)
    assert isinstance(result, float)  # val/psnr_B, what checkpointing watches without FID
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert any((run / "images").glob("train_*.png")) and any((run / "images").glob("val_*.png"))
    assert len(list((run / "translations" / "AtoB").glob("*.png"))) == 4
    columns = (run / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")
    for name in ("train/loss_G_GAN", "train/loss_G_L1", "train/loss_D_real", "val/psnr_B", "val/ssim_B"):
        assert name in columns, name
    assert "val/psnr_B_identity" in columns

    model = Pix2Pix.load_from_checkpoint(run / "checkpoints" / "last.ckpt", map_location="cpu")
    assert model.hparams.generator["num_downs"] == 5 and model.hparams.loss["l1_weight"] == 100.0
    assert model.inference_generator() is model.generator
    images = torch.rand(1, 3, 32, 32) * 2 - 1
    assert model.eval()(images).shape == images.shape


def test_embedded_pairs_are_photo_crops_and_their_exact_renderings(tmp_path):
    source, paired = tmp_path / "embedded", tmp_path / "paired"
    root = materialize_embedded_pairs(paired, source, image_size=32, n_train=4, n_test=2)
    assert [p.name for p in list_images(root / "trainA")] == [p.name for p in list_images(root / "trainB")]
    for path in list_images(root / "trainA"):
        photo = np.asarray(Image.open(path).convert("RGB"))
        assert np.array_equal(np.asarray(Image.open(root / "trainB" / path.name)), render_style(photo))
    for path in list_images(root / "testA"):
        assert (root / "testB" / path.name).read_bytes() == (source / "testA2B" / path.name).read_bytes()
    stamp = (root / "manifest.json").stat().st_mtime_ns
    assert materialize_embedded_pairs(paired, source, image_size=32, n_train=4, n_test=2) == root
    assert (root / "manifest.json").stat().st_mtime_ns == stamp  # reused, not rebuilt

    data = EmbeddedPairedDataModule(str(paired), str(source), image_size=32, n_train=4, n_test=2,
                                    load_size=32, crop_size=32, batch_size=2)  # fmt: skip
    data.setup("fit")
    batch = next(iter(data.val_dataloader()))
    assert batch["A"].shape == batch["B"].shape == (2, 3, 32, 32)


def test_training_values_are_logged_only_on_the_steps_the_loggers_write(tmp_path):
    import lightning.pytorch as pl
    from lightning.pytorch.loggers import CSVLogger

    model = tiny_model()
    logged_at = []
    log_dict = model.log_dict
    model.log_dict = lambda values, *args, **kwargs: (
        logged_at.append(model.trainer.fit_loop.epoch_loop.batch_idx),
        log_dict(values, *args, **kwargs),
    )
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=1,
        logger=CSVLogger(tmp_path),
        log_every_n_steps=3,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(model, train_dataloaders=DataLoader([pair_batch(seed) for seed in range(7)], batch_size=None))

    # Batches 2 and 5 are written (every 3rd): the D step's values (r_t) and the step's losses.
    assert sorted(set(logged_at)) == [2, 5]
    rows = (tmp_path / "lightning_logs" / "version_0" / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    steps = [
        row.split(",")[header.index("step")]
        for row in rows[1:]
        if row.split(",")[header.index("train/loss_D")]
    ]
    assert steps == ["2", "5"]  # (the epoch's last row holds the learning rates)
