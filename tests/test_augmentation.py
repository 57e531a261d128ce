"""DiffAugment / ADA: each operation against its formula, differentiable, aligned on pix2pix's pairs;
ADA's probability, its hold at 0 and its resume; what every adversarial model logs about its
discriminators (r_t, held-out against training reals)."""

from __future__ import annotations

import csv

import pytest
import torch
from helpers import fit_one_batch

from ganstyle.config import ConfigError
from ganstyle.models.base import build_model
from ganstyle.utils import augmentation
from ganstyle.utils.augmentation import AdaptiveProbability, augment

TINY_CYCLEGAN = (
    "experiment=null",
    "model.generator.netG=resnet_1blocks",
    "model.generator.ngf=4",
    "model.discriminator.ndf=4",
    "model.discriminator.n_layers=1",
    "model.pool_size=0",
)


def images(n: int = 4, channels: int = 3, size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, channels, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def draws(n: int, seed: int) -> torch.Tensor:
    torch.manual_seed(seed)
    return torch.rand(n, 1, 1, 1)


def test_colour_operations_follow_their_formulas():
    x = images()
    torch.manual_seed(1)
    out = augmentation.brightness(x)
    assert torch.allclose(out, x + (draws(4, 1) - 0.5))  # b ~ U(-0.5, 0.5)
    torch.manual_seed(2)
    out = augmentation.saturation(x)
    grey = x.mean(dim=1, keepdim=True)
    assert torch.allclose(out, grey + 2 * draws(4, 2) * (x - grey), atol=1e-6)  # s ~ U(0, 2)
    torch.manual_seed(3)
    out = augmentation.contrast(x)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    assert torch.allclose(out, mean + (0.5 + draws(4, 3)) * (x - mean), atol=1e-6)  # c ~ U(0.5, 1.5)


def test_translation_shifts_each_sample_by_at_most_an_eighth_with_zeros_coming_in():
    x = images(n=8, size=16)
    torch.manual_seed(4)
    out = augmentation.translation(x)
    for sample, shifted in zip(x, out):
        matches = []
        for dy in range(-2, 3):  # 16 / 8 = 2 pixels
            for dx in range(-2, 3):
                expected = torch.zeros_like(sample)
                src = sample[:, max(0, -dy) : 16 - max(0, dy), max(0, -dx) : 16 - max(0, dx)]
                expected[:, max(0, dy) : 16 - max(0, -dy), max(0, dx) : 16 - max(0, -dx)] = src
                matches.append(torch.equal(shifted, expected))
        assert sum(matches) == 1


def test_cutout_zeroes_one_square_of_at_most_half_the_side():
    x = images(n=8, size=16) * 0.5 + 0.6  # no zeros of its own
    torch.manual_seed(5)
    out = augmentation.cutout(x)
    for sample, cut in zip(x, out):
        hole = (cut == 0).all(dim=0)
        rows, cols = hole.any(dim=1).nonzero(), hole.any(dim=0).nonzero()
        height, width = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
        assert height <= 8 and width <= 8 and int(hole.sum()) == height * width  # a (clipped) square
        assert torch.equal(cut[:, ~hole], sample[:, ~hole])


def test_the_policies_are_differentiable_and_keep_a_pair_aligned():
    x = images().requires_grad_(True)
    augment(x, ("color", "translation", "cutout")).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    # pix2pix's pair: both halves get the same geometric change and the same colour change.
    half = images(n=4)
    pair = torch.cat([half, half], dim=1)
    torch.manual_seed(6)
    out = augment(pair, ("color", "translation", "cutout"))
    assert torch.allclose(out[:, :3], out[:, 3:])


def test_unknown_policies_are_refused_naming_the_three():
    with pytest.raises(ValueError, match="color, translation, cutout"):
        augmentation.check_policies(["colour"])


def test_ada_moves_p_towards_the_target_every_interval_and_keeps_it_in_range():
    ada = AdaptiveProbability(target=0.6, interval=4, kimg=0.001)  # 1 image moves p by 1
    for _ in range(3):
        ada.observe(torch.ones(1, 1, 4, 4))  # D calls every real image real: r_t = 1 > 0.6
    assert float(ada.p) == 0.0  # not before the fourth batch
    ada.observe(torch.ones(1, 1, 4, 4))
    assert float(ada.p) == 1.0  # 4 images at 1 per image, clamped to 1
    slow = AdaptiveProbability(interval=1, kimg=500)
    slow.observe(torch.ones(2, 1, 4, 4))
    assert float(slow.p) == pytest.approx(2 / 500_000)  # ADA's speed: 0 to 1 in 500k images
    for _ in range(3):
        slow.observe(-torch.ones(2, 1, 4, 4))
    assert float(slow.p) == 0.0


def tiny_cyclegan(compose_config, augment_choice: str, *extra: str):
    cfg = compose_config(*TINY_CYCLEGAN, f"augment={augment_choice}", *extra)
    torch.manual_seed(0)
    model = build_model(cfg.model)
    model.set_augmentation(**cfg.augment)
    return model


def one_step_losses(model) -> dict[str, float]:
    torch.manual_seed(1)
    x = images(n=2, size=16, seed=7).unsqueeze(1)
    trainer = fit_one_batch(model, {"A": x[0], "B": x[1], "A_path": ["a.png"], "B_path": ["b.png"]})
    return {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/loss")}


def test_ada_with_p_held_at_0_computes_what_no_augmentation_computes(compose_config):
    plain = one_step_losses(tiny_cyclegan(compose_config, "none"))
    held = one_step_losses(tiny_cyclegan(compose_config, "ada", "augment.adjust=false", "augment.p=0"))
    augmented = one_step_losses(tiny_cyclegan(compose_config, "diffaugment"))
    assert plain and held == plain
    assert augmented["train/loss_D_A"] != plain["train/loss_D_A"]  # the switch does change D's inputs


def test_ada_p_is_saved_in_checkpoints_and_restored(compose_config):
    model = tiny_cyclegan(compose_config, "ada")
    model.ada_state(model.D_B).p = torch.tensor(0.3)
    checkpoint = {}
    model.on_save_checkpoint(checkpoint)
    resumed = tiny_cyclegan(compose_config, "ada")
    resumed.on_load_checkpoint(checkpoint)
    assert float(resumed.ada_state(resumed.D_B).p) == pytest.approx(0.3)
    assert float(resumed.ada_state(resumed.D_A).p) == 0.0


def test_augmentation_is_refused_for_a_model_without_a_discriminator(compose_config):
    cfg = compose_config("model=gatys", "augment=diffaugment")
    model = build_model(cfg.model)
    with pytest.raises(ConfigError, match="has no discriminator"):
        model.set_augmentation(**cfg.augment)


def test_a_run_logs_r_t_and_each_discriminator_on_held_out_and_training_reals(compose_config, tmp_path):
    from ganstyle.run.training import train

    run_dir = tmp_path / "run"
    cfg = compose_config(
        *TINY_CYCLEGAN,
        "augment=ada",
        "augment.kimg=0.01",
        "logger=csv",
        "data.n_train=4",
        "data.n_test=2",
        "data.load_size=16",
        "data.crop_size=16",
        "trainer.max_epochs=2",
        "trainer.log_every_n_steps=1",
        "metrics.fid=false",
        "~callbacks.translate_test_set",
        output_dir=run_dir,
    )
    train(cfg)
    with (run_dir / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    for name in ("D_A", "D_B"):
        assert any(row.get(f"train/r_t_{name}") for row in rows)
        assert any(row.get(f"train/ada_p_{name}") for row in rows)
        validation = [row for row in rows if row.get(f"val/D_real_heldout_{name}")]
        assert len(validation) == 2 and all(row.get(f"val/D_real_train_{name}") for row in validation)
    assert (run_dir / "report.html").read_text().count("Discriminators") >= 1
