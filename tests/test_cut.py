"""CUT / FastCUT: PatchNCE against the paper's formula, flip equivariance, the reference's parameter
counts and mode defaults, training, resuming, and applying a trained model."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import one_thread  # noqa: F401  (autouse fixture)
from PIL import Image
from skimage import data

import ganstyle
from ganstyle.cli import main as cli_main
from ganstyle.config import ConfigError
from ganstyle.inference.export import export_generator
from ganstyle.inference.loading import inference_network, load_model
from ganstyle.losses.patchnce import PatchNCELoss
from ganstyle.models.base import build_model
from ganstyle.models.cut import CUT
from ganstyle.networks import NLayerDiscriminator, ResnetGenerator
from ganstyle.networks.antialias import BlurDownsample, BlurUpsample
from ganstyle.networks.patch_sample import PatchSampleF
from ganstyle.run.config_checks import validate_config
from ganstyle.run.training import train
from ganstyle.run.user_errors import user_error_message

# 5 residual blocks: the smallest generator that still has the reference's layer 16.
TINY = (
    "model=cut",
    "model.generator.ngf=4",
    "model.generator.n_blocks=5",
    "model.discriminator.ndf=4",
    "model.num_patches=16",
    "model.head_width=8",
    "data.n_train=4",
    "data.n_test=2",
    "data.load_size=36",
    "data.crop_size=32",
    "trainer.limit_val_batches=1",
    "trainer.num_sanity_val_steps=0",
    "logger=csv",
)


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def unit_rows(rows: int, channels: int, seed: int) -> torch.Tensor:
    vectors = torch.randn(rows, channels, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return vectors / vectors.norm(dim=1, keepdim=True)


def patchnce_by_the_formula(query, key, batch_size, tau, whole_batch):
    """-log(exp(q_i.k_i/tau) / (exp(q_i.k_i/tau) + sum_{j != i} exp(q_i.k_j/tau) + exp(-10/tau))),
    patch by patch; j runs over the same image's patches (or every patch of the batch)."""
    patches = query.shape[0] // batch_size
    losses = []
    for i in range(query.shape[0]):
        image = i // patches
        others = range(query.shape[0]) if whole_batch else range(image * patches, (image + 1) * patches)
        positive = math.exp(float(query[i] @ key[i]) / tau)
        negatives = sum(math.exp(float(query[i] @ key[j]) / tau) for j in others if j != i)
        masked_diagonal = math.exp(-10.0 / tau)  # the reference keeps the masked entry as a logit
        losses.append(-math.log(positive / (positive + negatives + masked_diagonal)))
    return torch.tensor(losses, dtype=torch.float64)


@pytest.mark.parametrize("whole_batch", [False, True], ids=["same_image_negatives", "batch_negatives"])
def test_patchnce_equals_the_papers_formula_written_out_patch_by_patch(whole_batch):
    query, key = unit_rows(2 * 5, 4, seed=0), unit_rows(2 * 5, 4, seed=1)
    criterion = PatchNCELoss(temperature=0.07, negatives_from_minibatch=whole_batch)
    ours = criterion(query, key, batch_size=2)
    expected = patchnce_by_the_formula(query, key, 2, 0.07, whole_batch)
    assert ours.shape == (10,)
    assert torch.allclose(ours, expected, rtol=1e-9, atol=1e-9)


def test_patchnce_sends_gradient_to_the_queries_only_and_is_low_when_each_patch_matches_its_key():
    key = unit_rows(8, 4, seed=2).requires_grad_(True)
    query = key.detach().clone().requires_grad_(True)
    losses = PatchNCELoss()(query, key, batch_size=1)
    losses.mean().backward()
    assert query.grad is not None and key.grad is None  # keys are detached, as in the reference
    shuffled = PatchNCELoss()(query.detach().roll(1, dims=0), key.detach(), batch_size=1)
    assert losses.mean() < shuffled.mean()


def test_reference_networks_have_the_reference_parameter_counts(compose_config):
    cfg = compose_config("model=cut", "experiment=null")
    model = build_model(cfg.model)
    assert count(model.G) == 11_378_179 and count(model.D) == 2_764_737 and count(model.F) == 560_384
    assert model.F.in_channels == [3, 128, 256, 256, 256]  # known before any batch
    assert any(isinstance(m, BlurDownsample) for m in model.G.modules())
    assert any(isinstance(m, BlurUpsample) for m in model.G.modules())
    assert any(isinstance(m, BlurDownsample) for m in model.D.modules())
    opt_G, opt_D, opt_F = model.make_optimizers().values()
    assert {id(p) for p in opt_F.param_groups[0]["params"]} == {id(p) for p in model.F.parameters()}
    assert opt_G.defaults["lr"] == opt_D.defaults["lr"] == opt_F.defaults["lr"] == pytest.approx(2e-4)
    assert opt_F.defaults["betas"] == (0.5, 0.999)


def test_networks_and_heads_are_initialised_as_the_reference_xavier_with_gain_0_02(compose_config):
    # The reference's base_options.py: --init_type xavier, --init_gain 0.02, for G, D and netF.
    cfg = compose_config("model=cut", "experiment=null")
    for network in (cfg.model.generator, cfg.model.discriminator):
        assert (network.init_type, network.init_gain) == ("xavier", 0.02)
    torch.manual_seed(0)
    model = build_model(cfg.model)
    head = next(m for m in model.F.modules() if isinstance(m, torch.nn.Linear) and m.in_features == 256)
    # xavier normal: std = gain * sqrt(2 / (fan_in + fan_out)) = 0.02 * sqrt(2 / 512) = 0.00125
    # (N(0, 0.02), the other choice, would be 16 times wider).
    assert float(head.weight.detach().std()) == pytest.approx(0.02 * (2 / 512) ** 0.5, rel=0.05)


def test_the_mode_sets_the_reference_run_length_unless_max_epochs_is_given(compose_config):
    assert compose_config("model=cut", "experiment=null").trainer.max_epochs == 400  # 200 + 200
    assert compose_config("model=cut", "experiment=null", "model.mode=fastcut").trainer.max_epochs == 200
    assert compose_config("model=cut", "experiment=null", "trainer.max_epochs=7").trainer.max_epochs == 7
    assert compose_config("model=cyclegan", "experiment=null").trainer.max_epochs == 200


def test_antialiased_networks_keep_the_image_and_patch_map_sizes():
    generator = ResnetGenerator(ngf=4, n_blocks=5, antialias=True, antialias_up=True)
    images = torch.rand(1, 3, 36, 44) * 2 - 1
    features = generator.encode(images, [0, 4, 8, 12, 16])
    assert generator(images).shape == images.shape
    assert [tuple(f.shape[1:]) for f in features] == [
        (3, 42, 50),
        (8, 36, 44),
        (16, 18, 22),
        (16, 9, 11),
        (16, 9, 11),
    ]
    assert generator.feature_channels([0, 4, 8, 12, 16]) == [f.shape[1] for f in features]
    assert NLayerDiscriminator(ndf=4, antialias=True)(torch.rand(1, 3, 256, 256)).shape[-2:] == (30, 30)
    constant = torch.full((1, 2, 6, 6), 0.5)
    assert torch.allclose(BlurUpsample(2)(constant), torch.full((1, 2, 12, 12), 0.5))
    assert torch.allclose(BlurDownsample(2)(constant), torch.full((1, 2, 3, 3), 0.5))


def test_heads_sample_the_same_locations_for_queries_and_keys():
    heads = PatchSampleF([3], nc=8)
    features = torch.randn(2, 3, 5, 5)
    keys, ids = heads([features], num_patches=6)
    again, same_ids = heads([features], num_patches=6, patch_ids=ids)
    assert keys[0].shape == (12, 8) and torch.equal(ids[0], same_ids[0]) and torch.allclose(keys[0], again[0])
    # Unit length up to the reference's eps of 1e-7, which is not negligible against the small outputs of
    # freshly initialised heads.
    assert torch.allclose(keys[0].norm(dim=1), torch.ones(12), atol=1e-3)


def test_flip_equivariance_flips_the_output_features_back_before_matching_them():
    # Layer 0 (the reflection-padded image) is itself flip-equivariant, so the output made from the
    # mirrored input, with its features flipped back, must match the input exactly like an identity map.
    model = tiny_model(nce_layers=[0], num_patches=64)
    images = torch.rand(1, 3, 8, 8) * 2 - 1
    mirrored = torch.flip(images, [3])

    def loss(output, flipped):
        torch.manual_seed(0)  # the same patch locations for each call
        return float(model.nce_loss(images, output, flipped).detach())

    assert loss(mirrored, flipped=True) == pytest.approx(loss(images, flipped=False), abs=1e-6)
    assert loss(mirrored, flipped=False) > loss(mirrored, flipped=True) + 0.1


def test_style_weight_adds_the_perceptual_style_term_to_the_generator_step(tmp_path):
    loss = {"style_weight": 1.0e4, "feature_net": {"weights": "random"}}  # random VGG: plumbing only
    model = tiny_model(loss=loss, num_patches=8, head_width=8)
    assert model.perceptual is not None
    terms = fit_one_batch(model, torch.rand(2, 3, 32, 32) * 2 - 1, tmp_path).callback_metrics
    assert float(terms["train/loss_style"]) > 0 and "train/loss_NCE" in terms
    generator_terms = ("train/loss_G_GAN", "train/loss_NCE", "train/loss_NCE_Y", "train/loss_style")
    assert float(terms["train/loss_G"]) == pytest.approx(
        sum(float(terms[name]) for name in generator_terms), rel=1e-5
    )


def test_wgangp_mode_adds_the_gradient_penalty_to_the_critic_step(tmp_path):
    model = tiny_model(loss={"gan_mode": "wgangp", "gp_weight": 10.0}, num_patches=8, head_width=8)
    terms = fit_one_batch(model, torch.rand(2, 3, 32, 32) * 2 - 1, tmp_path).callback_metrics
    assert float(terms["train/loss_D"]) == pytest.approx(
        0.5 * (float(terms["train/loss_D_real"]) + float(terms["train/loss_D_fake"]))
        + float(terms["train/loss_D_gp"]),
        rel=1e-5,
    )


def tiny_model(**kwargs) -> CUT:
    """A CUT built from plain dicts, as a checkpoint restores it."""
    return CUT(
        generator={
            "_target_": "ganstyle.networks.ResnetGenerator",
            "ngf": 4,
            "n_blocks": 1,
            "antialias": True,
        },
        discriminator={"_target_": "ganstyle.networks.NLayerDiscriminator", "ndf": 4, "antialias": True},
        optimizer={"_target_": "torch.optim.Adam", "_partial_": True, "lr": 2.0e-4, "betas": [0.5, 0.999]},
        **kwargs,
    )


def test_fastcut_mode_switches_the_reference_defaults_unless_set_explicitly(compose_config):
    cut = compose_config("model=cut")
    assert (cut.loss.nce_weight, cut.loss.nce_idt_weight, cut.model.flip_equivariance) == (1.0, 1.0, False)
    fast = compose_config("model=cut", "model.mode=fastcut")
    assert (fast.loss.nce_weight, fast.loss.nce_idt_weight, fast.model.flip_equivariance) == (10.0, 0.0, True)
    explicit = compose_config(
        "model=cut", "model.mode=fastcut", "loss.nce_weight=3", "model.flip_equivariance=false"
    )
    assert explicit.loss.nce_weight == 3.0 and explicit.model.flip_equivariance is False
    # Built from Python without the NCE weights: the mode's values.
    python_fast = tiny_model(mode="fastcut")
    assert python_fast.hparams.loss["nce_weight"] == 10.0 and python_fast.hparams.flip_equivariance is True
    assert not python_fast.uses_identity_nce() and tiny_model().uses_identity_nce()


def test_unknown_mode_and_foreign_loss_weights_are_refused_before_anything_is_built(compose_config):
    with pytest.raises(Exception, match="model.mode='fast' is not a CUT mode") as error:
        validate_config(compose_config("model=cut", "model.mode=fast"))
    assert user_error_message(error.value).startswith("model.mode='fast'")  # one paragraph, no traceback
    with pytest.raises(ConfigError, match=r"loss\.cycle_weight=10.0 but CUT has no such term"):
        validate_config(compose_config("model=cut", "loss.cycle_weight=10"))
    with pytest.raises(ConfigError, match=r"loss\.nce_weight=1.0 but CycleGAN has no such term"):
        validate_config(compose_config("model=cyclegan", "loss.nce_weight=1"))
    with pytest.raises(ConfigError, match="no encode"):
        CUT(
            generator={"_target_": "ganstyle.networks.UnetGenerator", "num_downs": 5, "ngf": 4},
            discriminator={"_target_": "ganstyle.networks.NLayerDiscriminator", "ndf": 4},
            optimizer={"_target_": "torch.optim.Adam", "_partial_": True},
        )


@pytest.mark.parametrize("mode", ["cut", "fastcut"])
def test_fast_dev_run_of_each_mode_trains_through_train_py_code(compose_config, tmp_path, mode):
    cfg = compose_config(
        *TINY, f"model.mode={mode}", "trainer.fast_dev_run=true", output_dir=tmp_path / "run"
    )
    train(cfg)  # one training and one validation batch through the whole pipeline
    assert cfg.monitor.metric == "val/psnr_B"  # FID is off without its weights: ground truth is watched


def fit_one_batch(model: CUT, images: torch.Tensor, root):
    """One training step of ``model`` on A = images[0], B = images[1]; returns the Lightning Trainer."""
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader

    batch = {"A": images[0], "B": images[1], "A_path": "a.png", "B_path": "b.png"}
    trainer = pl.Trainer(
        fast_dev_run=True,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
    )
    trainer.fit(model, train_dataloaders=DataLoader([batch], batch_size=1))
    return trainer


@pytest.mark.parametrize("mode", ["cut", "fastcut"])
def test_one_step_updates_the_generator_the_discriminator_and_the_heads(tmp_path, mode):
    torch.manual_seed(0)
    model = tiny_model(mode=mode, num_patches=8, head_width=8)
    before = {name: value.clone() for name, value in model.state_dict().items()}
    fit_one_batch(model, torch.rand(2, 3, 32, 32) * 2 - 1, tmp_path)
    for prefix in ("G.", "D.", "F."):
        changed = [
            n for n, v in model.state_dict().items() if n.startswith(prefix) and not torch.equal(v, before[n])
        ]
        assert changed, f"{prefix} was not updated"
    assert model.skipped_steps == 0


def test_a_non_finite_loss_skips_both_steps_and_leaves_every_weight_as_it_was(tmp_path):
    torch.manual_seed(0)
    model = tiny_model(num_patches=8, head_width=8)
    before = {name: value.clone() for name, value in model.state_dict().items()}
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    images[0, :, :4, :4] = float("nan")  # a corrupt A image: G(A), D(G(A)) and PatchNCE are NaN
    fit_one_batch(model, images, tmp_path)
    assert model.skipped_steps == 2  # the discriminator's and the generator-and-heads' step
    assert set(model.nonfinite_terms()) == {"discriminator", "generator"}
    assert all(torch.equal(value, before[name]) for name, value in model.state_dict().items())


def test_training_logs_every_term_and_a_resumed_run_ends_where_an_uninterrupted_one_does(
    compose_config, tmp_path
):
    common = (
        *TINY,
        "trainer.limit_train_batches=3",
        "trainer.log_every_n_steps=1",
        "trainer.num_sanity_val_steps=1",  # the resumed run validates again before it trains
        "scheduler.n_epochs=1",
        "scheduler.n_epochs_decay=1",
        "scheduler.total_epochs=2",  # the 1-epoch run is the 2-epoch run stopped halfway
    )
    train(compose_config(*common, "trainer.max_epochs=2", output_dir=tmp_path / "two"))
    train(compose_config(*common, "trainer.max_epochs=1", output_dir=tmp_path / "one"))
    resumed_dir = tmp_path / "resumed"
    resumed_dir.mkdir()
    (resumed_dir / "checkpoints").mkdir()
    (resumed_dir / "checkpoints" / "last.ckpt").write_bytes(
        (tmp_path / "one" / "checkpoints" / "last.ckpt").read_bytes()
    )
    train(compose_config(*common, "trainer.max_epochs=2", "ckpt_path=last", output_dir=resumed_dir))

    uninterrupted = torch.load(tmp_path / "two" / "checkpoints" / "last.ckpt", weights_only=True)
    resumed = torch.load(resumed_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert len(uninterrupted["optimizer_states"]) == 3  # G, D and the heads
    assert resumed["epoch"] == uninterrupted["epoch"] == 1
    for name, weight in uninterrupted["state_dict"].items():
        assert torch.equal(resumed["state_dict"][name], weight), name
    header = (tmp_path / "two" / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")
    for name in (
        "train/loss_G_GAN",
        "train/loss_NCE",
        "train/loss_NCE_Y",
        "train/loss_D",
        "train/lr_F",
        "val/loss_NCE",
        "val/psnr_B",
        "val/ssim_B",
        "val/psnr_B_identity",
    ):
        assert name in header, name
    assert len(list((tmp_path / "two" / "translations" / "AtoB").glob("*.png"))) == 2


@pytest.mark.slow  # CUT through stylize is in tests/test_web.py, export in tests/test_export.py
def test_trained_cut_stylizes_exports_and_loads_with_ganstyle_load(compose_config, tmp_path):
    run = tmp_path / "run"
    train(compose_config(*TINY, "trainer.max_epochs=1", "trainer.limit_train_batches=1", output_dir=run))
    checkpoint = run / "checkpoints" / "last.ckpt"
    assert type(load_model(checkpoint)).__name__ == "CUT"
    stylizer = ganstyle.load(checkpoint, device="cpu")
    assert stylizer(Image.fromarray(data.astronaut()[:37, :53])).size == (53, 37)
    generator, info = inference_network(load_model(checkpoint), None)
    path = export_generator(generator, info, tmp_path / "g.pt", "torchscript")
    exported = torch.jit.load(str(path))
    images = torch.rand(1, 3, 36, 40)
    with torch.no_grad():
        assert exported(images).shape == images.shape
    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.fromarray(data.chelsea()[:30, :42]).save(inputs / "cat.png")
    assert (
        cli_main(
            ["stylize", str(checkpoint), str(inputs), "--output", str(tmp_path / "out"), "--device", "cpu"]
        )
        == 0
    )
    assert Image.open(tmp_path / "out" / "cat.png").size == (42, 30)
    assert cli_main(["export", str(checkpoint), "--format", "onnx", "--size", "32", "48"]) == 0


@pytest.mark.slow
def test_cut_trains_under_ddp_sim_with_the_heads_in_every_process(tmp_path, cache_dir):
    from helpers import run_train

    run_dir = tmp_path / "run"
    result = run_train(
        *TINY,
        "trainer=ddp_sim",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
        cache=cache_dir,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Starting with 2 processes" in result.stdout + result.stderr
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert len(checkpoint["optimizer_states"]) == 3 and any(
        k.startswith("F.") for k in checkpoint["state_dict"]
    )


def test_the_schedule_takes_the_modes_reference_shape_unless_the_config_chose_one(compose_config):
    def schedule(*overrides: str) -> tuple[int, int]:
        cfg = compose_config("model=cut", "experiment=null", *overrides)
        model = build_model(cfg.model)
        return model.hparams.scheduler.get("n_epochs"), model.hparams.scheduler.get("n_epochs_decay")

    small = ("model.generator.ngf=4", "model.generator.n_blocks=5", "model.discriminator.ndf=4")
    assert schedule(*small) == (200, 200)  # CUT: 200 + 200, fitted to trainer.max_epochs
    assert schedule(*small, "model.mode=fastcut") == (150, 50)
    assert schedule(*small, "model.mode=fastcut", "scheduler.n_epochs=7", "scheduler.n_epochs_decay=3") == (
        7,
        3,
    )
    assert schedule(*small, "model.mode=fastcut", "scheduler=cosine") == (None, None)  # other schedules alone
