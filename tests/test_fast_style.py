"""Fast neural style: the reference network, one optimiser without a critic, a critic that sees style
crops, the embedded style images, and clear errors for a missing style image or VGG weights file."""

from __future__ import annotations

import csv
import json

import hydra
import lightning.pytorch as pl
import pytest
import torch
from helpers import assert_missing_style_image_is_a_clear_error, missing_imagenet_weights_error

from ganstyle.data.embedded_styles import STYLES, materialize_embedded_styles
from ganstyle.models.base import build_model
from ganstyle.models.fast_style import FastStyleTransfer
from ganstyle.run.config_checks import validate_config
from ganstyle.run.training import train

# The same embedded dataset parameters as the CycleGAN tests, so one build serves both.
TINY = (
    "model=fast_style",
    "data.n_train=6",
    "data.n_test=4",
    "data.load_size=36",
    "data.crop_size=32",
    "data.style_load_size=48",
    "data.batch_size=2",
    "data.val_max_images=2",
    "model.discriminator.ndf=8",
    "logger=csv",
    "callbacks.progress_bar=null",
    "trainer.enable_model_summary=false",
)


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def build(compose_config, *overrides: str):
    cfg = compose_config(*TINY, *overrides)
    return cfg, build_model(cfg.model)


@pytest.mark.parametrize("experiment", ["fast_style_quickstart", "fast_style_coco", "fast_style_gan"])
def test_every_fast_style_experiment_composes_and_builds_its_data_config(compose_config, experiment):
    cfg = compose_config("model=fast_style", f"experiment={experiment}", "data.style=style.jpg")
    assert cfg.model._target_ == "ganstyle.models.fast_style.FastStyleTransfer"
    assert cfg.loss.feature_net.arch == "vgg16"
    assert (cfg.loss.gan_weight > 0) == (experiment != "fast_style_coco")
    assert hydra.utils.get_class(cfg.data._target_)  # the data module class exists


def test_paper_config_has_the_reference_transformer_no_critic_and_one_adam(compose_config):
    cfg, model = build(compose_config, "experiment=null", "loss.feature_net.weights=random")
    assert cfg.loss.content_weight == 1.0e5 and cfg.loss.style_weight == 4.0e10  # pytorch/examples' scale
    assert count(model.generator) == 1_679_235
    assert model.discriminator is None and model.adversarial is None
    (optimizer,) = model.make_optimizers().values()
    assert isinstance(optimizer, torch.optim.Adam) and optimizer.defaults["lr"] == pytest.approx(1e-3)
    params = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert params == {id(p) for p in model.generator.parameters()}
    assert all(not p.requires_grad for p in model.criterion.feature_net.parameters())


def test_critic_learns_style_crops_as_real_and_stylised_outputs_as_fake(compose_config):
    cfg, model = build(compose_config, "loss.gan_weight=1.0")
    assert len(model.make_optimizers()) == 2
    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    seen: list[torch.Tensor] = []
    batches: list[dict] = []
    model.discriminator.register_forward_pre_hook(lambda _module, args: seen.append(args[0].detach().clone()))

    class KeepBatch(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            batches.append(batch)
            seen.clear()  # only the training step's calls

    trainer = pl.Trainer(fast_dev_run=1, logger=False, enable_progress_bar=False, callbacks=[KeepBatch()])
    before = [p.detach().clone() for p in model.discriminator.parameters()]
    trainer.fit(model, datamodule=datamodule)
    style, content = batches[0]["style"], batches[0]["content"]
    # D judged the generator's output once (G step), then the style crops and the output again (D step).
    assert any(torch.equal(images, style) for images in seen)
    assert not any(torch.equal(images, content) for images in seen)
    assert all(images.shape == content.shape for images in seen)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.discriminator.parameters()))


def test_a_run_without_style_term_or_critic_is_refused(compose_config):
    from ganstyle.config import ConfigError

    cfg = compose_config(*TINY, "loss.style_weight=0", "loss.gan_weight=0")
    with pytest.raises(ConfigError, match="nothing that teaches a style"):
        validate_config(cfg)


def test_fast_dev_run_trains_with_the_critic(compose_config):
    train(compose_config(*TINY, "trainer.fast_dev_run=true"))


@pytest.mark.slow
def test_short_run_writes_checkpoint_grids_stylised_test_images_and_metrics(compose_config, tmp_path):
    run = tmp_path / "run"
    cfg = compose_config(
        *TINY,
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "trainer.log_every_n_steps=1",
        "callbacks.image_grids.every_n_batches=2",
        output_dir=run,
    )
    train(cfg)
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert any((run / "images").glob("train_*.png")) and any((run / "images").glob("val_*.png"))
    assert len(list((run / "translations" / "stylized").glob("*.png"))) == 4  # every test photo (n_test)
    with open(run / "csv" / "metrics.csv") as file:
        columns = set(next(csv.reader(file)))
    for name in ("train/loss_content", "train/loss_style", "train/loss_gan", "train/loss_D"):
        assert name in columns
    assert {"val/loss_perceptual", "val/content_distance", "val/style_distance"} <= columns

    model = FastStyleTransfer.load_from_checkpoint(run / "checkpoints" / "last.ckpt", map_location="cpu")
    odd = torch.rand(1, 3, 30, 35) * 2 - 1  # not a multiple of 4: padded and cropped back
    out = model.eval()(odd)
    assert out.shape == odd.shape and out.abs().max() <= 1.0
    generator = model.inference_generator()
    assert generator.size_multiple == 4
    assert torch.allclose(generator(odd[..., :28, :32]), model(odd[..., :28, :32]), atol=1e-6)


def test_missing_style_image_is_a_clear_error(compose_config, tmp_path):
    assert_missing_style_image_is_a_clear_error(compose_config, TINY, tmp_path / "starry_night.jpg")


def test_default_imagenet_weights_without_the_file_fail_naming_it(compose_config, tmp_path, monkeypatch):
    error = missing_imagenet_weights_error(compose_config, TINY, "vgg16-397923af.pth", monkeypatch, tmp_path)
    assert "ganstyle fetch-weights" in str(error)


def test_embedded_styles_are_rendered_deterministically_and_reused(tmp_path):
    first = materialize_embedded_styles(tmp_path / "a")
    stamp = (first / "manifest.json").stat().st_mtime_ns
    assert materialize_embedded_styles(tmp_path / "a") == first
    assert (first / "manifest.json").stat().st_mtime_ns == stamp  # not rebuilt
    second = materialize_embedded_styles(tmp_path / "b")
    manifest = json.loads((first / "manifest.json").read_text())
    for name in STYLES:
        path = f"styles/{name}.png"
        assert (first / path).read_bytes() == (second / path).read_bytes()
        assert manifest["files"][path]  # provenance recorded
    assert (first / "photos" / "astronaut.png").is_file()
