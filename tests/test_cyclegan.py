"""CycleGAN: the reference's parameter counts, its training step, schedules, pools, outputs."""

from __future__ import annotations

import pytest
import torch

from ganstyle.config import ConfigError
from ganstyle.models.base import build_model
from ganstyle.models.cyclegan import CycleGAN
from ganstyle.run.config_checks import validate_config
from ganstyle.run.training import train
from ganstyle.utils.image_pool import ImagePool
from ganstyle.utils.schedulers import linear_decay

TINY = (
    "model.generator.ngf=8",
    "model.generator.netG=resnet_1blocks",
    "model.discriminator.ndf=8",
    "data.n_train=6",
    "data.n_test=4",
    "data.load_size=36",
    "data.crop_size=32",
    "logger=csv",
)


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_reference_cyclegan_has_the_reference_parameter_count(compose_config):
    cfg = compose_config("experiment=null")
    model = build_model(cfg.model)
    assert count(model.G_AB) == count(model.G_BA) == 11_378_179
    assert count(model.D_A) == count(model.D_B) == 2_764_737
    assert count(model) == 28_285_832


def test_one_optimiser_steps_both_generators_and_one_both_discriminators(compose_config):
    cfg = compose_config(*TINY, "experiment=null")  # the reference optimiser (the quick start raises lr)
    model = build_model(cfg.model)
    opt_G, opt_D = model.make_optimizers().values()
    g_params = {id(p) for group in opt_G.param_groups for p in group["params"]}
    d_params = {id(p) for group in opt_D.param_groups for p in group["params"]}
    assert g_params == {id(p) for p in [*model.G_AB.parameters(), *model.G_BA.parameters()]}
    assert d_params == {id(p) for p in [*model.D_A.parameters(), *model.D_B.parameters()]}
    assert opt_G.defaults["lr"] == pytest.approx(2e-4) and opt_G.defaults["betas"] == (0.5, 0.999)


def test_linear_schedule_is_constant_then_decays_to_near_zero():
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=2e-4)
    scheduler = linear_decay(optimizer, n_epochs=100, n_epochs_decay=100)
    rates = {}
    for epoch in range(200):
        rates[epoch] = optimizer.param_groups[0]["lr"]
        optimizer.step()
        scheduler.step()
    assert rates[0] == rates[99] == pytest.approx(2e-4)
    assert rates[100] == pytest.approx(2e-4 * (1 - 1 / 101))
    assert rates[150] == pytest.approx(2e-4 * (1 - 51 / 101))
    assert rates[199] == pytest.approx(2e-4 / 101)


def test_image_pool_fills_then_swaps_half_the_time():
    torch.manual_seed(0)
    pool = ImagePool(pool_size=4)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first), first) and len(pool) == 4
    returned = torch.cat([pool.query(torch.full((1, 1, 1, 1), 100.0 + i)) for i in range(200)])
    from_history = (returned < 100).sum().item() + (
        returned != torch.arange(100.0, 300.0).view(-1, 1, 1, 1)
    ).sum().item()
    assert len(pool) == 4
    # About half the queries return a stored (older) image once the pool is full.
    assert 60 < (returned.view(-1) != torch.arange(100.0, 300.0)).sum().item() < 140
    assert from_history > 0
    assert torch.equal(ImagePool(pool_size=0).query(first), first)


def test_image_pool_state_round_trips():
    pool = ImagePool(pool_size=3)
    pool.query(torch.randn(2, 3, 4, 4))
    restored = ImagePool(pool_size=3)
    restored.load_state_dict(pool.state_dict())
    assert len(restored) == 2 and torch.equal(restored.images[1], pool.images[1])


def test_a_loss_weight_cyclegan_does_not_have_is_refused(compose_config):
    cfg = compose_config(*TINY, "loss.l1_weight=100")
    with pytest.raises(ConfigError, match=r"loss\.l1_weight=100.0 but CycleGAN has no such term"):
        validate_config(cfg)


def test_training_writes_checkpoints_grids_translations_and_logs_every_loss(compose_config, tmp_path):
    cfg = compose_config(
        *TINY,
        "trainer.max_epochs=2",
        "trainer.log_every_n_steps=1",
        "scheduler.n_epochs=1",
        "scheduler.n_epochs_decay=1",
        "callbacks.image_grids.every_n_batches=3",
        output_dir=tmp_path / "run",
    )
    result = train(cfg)
    run = tmp_path / "run"
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert any((run / "checkpoints").glob("epoch*.ckpt"))
    assert any((run / "images").glob("train_*.png")) and any((run / "images").glob("val_*.png"))
    assert len(list((run / "translations" / "AtoB").glob("*.png"))) == 4
    assert len(list((run / "translations" / "BtoA").glob("*.png"))) == 4
    metrics = (run / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")
    for name in (
        "train/loss_G",
        "train/loss_D_A",
        "train/loss_D_B",
        "train/loss_cycle_A",
        "train/loss_cycle_B",
        "train/loss_idt_A",
        "train/loss_G_AB",
        "train/lr_G",
        "train/lr_D",
        "val/psnr_B",
        "val/ssim_B",
        "val/psnr_B_identity",
    ):
        assert name in metrics, name
    assert isinstance(result, float)  # the monitored val/psnr_B, returned for sweepers

    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    # 2 epochs x 6 batches of 1: every fake so far is in the pool (it holds up to 50).
    assert checkpoint["epoch"] == 1 and len(checkpoint["image_pools"]["A"]["images"]) == 12
    # Plain-data hyperparameters: the model restores without Hydra.
    model = CycleGAN.load_from_checkpoint(run / "checkpoints" / "last.ckpt")
    assert model.hparams.generator["ngf"] == 8 and len(model.pool_A) == 12
    images = torch.rand(1, 3, 32, 32) * 2 - 1
    assert model(images).shape == images.shape and model(images, "BtoA").shape == images.shape


def test_linear_schedule_never_goes_negative_past_its_end():
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=2e-4)
    scheduler = linear_decay(optimizer, n_epochs=2, n_epochs_decay=1)
    for _ in range(10):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == 0.0
