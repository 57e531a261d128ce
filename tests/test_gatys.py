"""Gatys neural style: only the image is optimised, L-BFGS lowers the objective through the trainer,
colour preservation keeps the content's chroma, weighted styles, outputs, and clear errors."""

from __future__ import annotations

import csv

import hydra
import pytest
import torch
from helpers import assert_missing_style_image_is_a_clear_error, missing_imagenet_weights_error

from ganstyle.data.images import DatasetError
from ganstyle.losses.style_targets import StyleTargets
from ganstyle.models.base import build_model
from ganstyle.models.gatys import GatysStyleTransfer, rgb_to_luma_chroma
from ganstyle.run.training import train

TINY = (
    "model=gatys",
    "data.image_size=32",
    "data.iterations_per_epoch=4",
    "logger=csv",
    "callbacks.progress_bar=null",
    "trainer.enable_model_summary=false",
)


@pytest.mark.parametrize("experiment", ["gatys_quickstart", "gatys_512"])
def test_every_gatys_experiment_composes(compose_config, experiment):
    cfg = compose_config("model=gatys", f"experiment={experiment}")
    assert cfg.model._target_ == "ganstyle.models.gatys.GatysStyleTransfer"
    assert cfg.model.optimizers[cfg.model.optimizer].max_iter == 1  # one training step = one L-BFGS iteration
    assert cfg.loss.feature_net.arch == "vgg19"


def started_model(compose_config, *overrides: str) -> tuple[GatysStyleTransfer, torch.Tensor]:
    """A model with targets set from the embedded content and style, as setup() does in a fit."""
    cfg = compose_config(*TINY, *overrides)
    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    model = build_model(cfg.model)
    content = datamodule.content_image()
    model.start(content, datamodule.style_images(), datamodule.style_weights)
    return model, content


def test_only_the_image_is_optimised_and_vgg_gets_no_gradient(compose_config):
    model, content = started_model(compose_config)
    assert torch.equal(model.image, content)  # init: content
    (optimizer,) = model.make_optimizers().values()
    assert isinstance(optimizer, torch.optim.LBFGS)
    assert [p for group in optimizer.param_groups for p in group["params"]] == [model.image]
    assert [name for name, p in model.named_parameters() if p.requires_grad] == ["image"]
    sum(model.objective_terms().values()).backward()
    assert model.image.grad is not None and model.image.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.criterion.feature_net.parameters())


def test_noise_init_starts_from_white_noise(compose_config):
    model, content = started_model(compose_config, "model.init=noise")
    assert model.image.shape == content.shape and not torch.allclose(model.image, content)
    assert model.image.min() >= -1 and model.image.max() <= 1 and model.image.std() > 0.4


def test_fit_lowers_the_objective_and_writes_stylized_image_and_progress_strip(compose_config, tmp_path):
    run = tmp_path / "run"
    cfg = compose_config(
        *TINY,
        "trainer.max_epochs=1",
        "data.iterations_per_epoch=6",
        "trainer.log_every_n_steps=1",
        "model.progress_every=2",
        output_dir=run,
    )
    train(cfg)
    with open(run / "csv" / "metrics.csv") as file:
        losses = [float(row["train/loss"]) for row in csv.DictReader(file) if row.get("train/loss")]
    assert len(losses) == 6  # 1 epoch x 6 iterations, one L-BFGS iteration per step
    assert losses[-1] < 0.9 * losses[0]
    assert (run / "stylized.png").is_file()
    assert (run / "translations" / "stylized" / "astronaut.png").is_file()
    from PIL import Image

    with Image.open(run / "images" / "progress.png") as strip:
        # Snapshots at iterations 0, 2, 4 and the final image, 32 px each with 2 px padding.
        assert strip.size == (4 * 34 + 2, 36)
    model = GatysStyleTransfer.load_from_checkpoint(run / "checkpoints" / "last.ckpt", map_location="cpu")
    with Image.open(run / "stylized.png") as saved:
        assert model.stylized_image().shape[-2:] == (saved.height, saved.width)


def test_fast_dev_run_with_adam(compose_config):
    train(compose_config(*TINY, "model.optimizer=adam", "trainer.fast_dev_run=true"))


def test_colour_preservation_keeps_the_content_chroma(compose_config):
    model, content = started_model(compose_config, "model.preserve_color=true")
    assert model.image.shape[1] == 1  # only luminance is optimised
    with torch.no_grad():
        model.image.add_(0.2 * torch.randn_like(model.image)).clamp_(-0.6, 0.6)
    result = model.stylized_image()
    inside = (result.abs() < 0.999).all(dim=1, keepdim=True).expand(-1, 2, -1, -1)  # not clipped
    result_yiq, content_yiq = rgb_to_luma_chroma(result), rgb_to_luma_chroma(content)
    assert inside.float().mean() > 0.5
    assert torch.allclose(result_yiq[:, 1:][inside], content_yiq[:, 1:][inside], atol=1e-4)
    luma = (model.image + 1) / 2
    assert torch.allclose(result_yiq[:, :1][inside[:, :1]], luma[inside[:, :1]], atol=1e-4)
    # VGG sees grey images: the luminance repeated on the three channels.
    seen = model.vgg_input()
    assert torch.equal(seen[:, 0], seen[:, 1]) and torch.equal(seen[:, 1], seen[:, 2])


def test_several_styles_are_weighted_in_the_style_term(compose_config):
    model, _ = started_model(compose_config, "data.embedded_styles=[mosaic,pointillist]")
    criterion = model.criterion
    styles = [torch.rand(1, 3, 40, 48) * 2 - 1, torch.rand(1, 3, 36, 36) * 2 - 1]
    features = criterion.feature_net(torch.rand(1, 3, 32, 32) * 2 - 1)
    alone = [StyleTargets(), StyleTargets()]
    alone[0].set(criterion, styles[:1], [1.0])
    alone[1].set(criterion, styles[1:], [1.0])
    mixed = StyleTargets()
    mixed.set(criterion, styles, [3.0, 1.0])  # normalised to 0.75, 0.25
    expected = 0.75 * alone[0].distance(criterion.style, features) + 0.25 * alone[1].distance(
        criterion.style, features
    )
    assert torch.allclose(mixed.distance(criterion.style, features), expected)
    assert model.style_targets.count == 2


def test_style_weights_that_do_not_match_the_styles_are_refused(compose_config):
    cfg = compose_config(*TINY, "data.embedded_styles=[mosaic,cartoon]", "data.style_weights=[1.0]")
    with pytest.raises(Exception, match="does not fit data.style") as error:
        hydra.utils.instantiate(cfg.data, _convert_="all")
    assert isinstance(error.value.__cause__ or error.value, DatasetError)  # Hydra wraps it


def test_missing_style_image_is_a_clear_error_before_any_network_is_built(compose_config, tmp_path):
    assert_missing_style_image_is_a_clear_error(compose_config, TINY, tmp_path / "scream.png")


def test_default_imagenet_weights_without_the_file_fail_naming_it(compose_config, tmp_path, monkeypatch):
    missing_imagenet_weights_error(compose_config, TINY, "vgg19-dcbb9e9d.pth", monkeypatch, tmp_path)
