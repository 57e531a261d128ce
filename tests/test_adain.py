"""AdaIN: the reference decoder, a frozen encoder, the per-iteration learning-rate decay, alpha, style
interpolation, colour preservation, and clear errors for a missing style image or VGG weights file."""

from __future__ import annotations

import hydra
import lightning.pytorch as pl
import pytest
import torch
from helpers import assert_missing_style_image_is_a_clear_error, missing_imagenet_weights_error

from ganstyle.config import ConfigError
from ganstyle.models.adain import AdaIN, coral
from ganstyle.models.base import build_model
from ganstyle.networks.adain import adaptive_instance_norm
from ganstyle.run.config_checks import validate_config
from ganstyle.run.training import train

TINY = (
    "model=adain",
    "data.n_train=6",
    "data.n_test=4",
    "data.load_size=36",
    "data.crop_size=32",
    "data.style_load_size=48",
    "data.batch_size=2",
    "data.val_max_images=2",
    "logger=csv",
    "callbacks.progress_bar=null",
    "trainer.enable_model_summary=false",
)


@pytest.mark.parametrize("experiment", ["adain_quickstart", "adain_wikiart"])
def test_every_adain_experiment_composes(compose_config, experiment):
    cfg = compose_config("model=adain", f"experiment={experiment}", "data.style=/data/wikiart")
    assert cfg.model._target_ == "ganstyle.models.adain.AdaIN" and cfg.model.scheduler is None
    assert cfg.data.batch_size == 8 and cfg.loss.style_weight == 10.0


@pytest.fixture
def model(compose_config) -> AdaIN:
    torch.manual_seed(0)
    return build_model(compose_config(*TINY).model).eval()


def images(*shape: int) -> torch.Tensor:
    return torch.rand(*shape) * 2 - 1


def test_reference_decoder_size_and_a_frozen_vgg19_encoder_to_relu4_1(model):
    assert sum(p.numel() for p in model.decoder.parameters()) == 3_505_219
    assert model.encoder.arch == "vgg19" and model.encoder.layers == [
        "relu1_1",
        "relu2_1",
        "relu3_1",
        "relu4_1",
    ]
    (optimizer,) = model.make_optimizers().values()
    assert [p for g in optimizer.param_groups for p in g["params"]] == list(model.decoder.parameters())
    assert not any(p.requires_grad for p in model.encoder.parameters())
    assert not any(key.startswith("encoder.") for key in model.state_dict())  # from the weights file


def test_training_updates_the_decoder_only_with_inverse_time_lr_decay(compose_config):
    cfg = compose_config(*TINY, "model.lr_decay=0.5")  # large, so the decay shows in two steps
    model = build_model(cfg.model)
    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    encoder = [p.detach().clone() for p in model.encoder.parameters()]
    decoder = [p.detach().clone() for p in model.decoder.parameters()]
    trainer = pl.Trainer(
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=datamodule)
    assert all(torch.equal(a, b) for a, b in zip(encoder, model.encoder.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(decoder, model.decoder.parameters()))
    # The second iteration (i = 1) ran at lr / (1 + decay * i), as naoto0804's adjust_learning_rate.
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(1e-4 / (1 + 0.5 * 1))


def decoder_inputs(model: AdaIN) -> list[torch.Tensor]:
    """The features the decoder receives, recorded call by call."""
    seen: list[torch.Tensor] = []
    model.decoder.register_forward_pre_hook(lambda _module, args: seen.append(args[0].detach()))
    return seen


def test_alpha_blends_adain_output_and_content_features_and_zero_decodes_the_content(model):
    content, style = images(2, 3, 32, 40), images(1, 3, 48, 48)
    content_feature = model.encoder(content)["relu4_1"]
    adain = adaptive_instance_norm(content_feature, model.encoder(style)["relu4_1"])
    seen = decoder_inputs(model)
    out = model.stylize(content, style, alpha=0.0)
    model.stylize(content, style, alpha=0.3)
    assert torch.allclose(seen[0], content_feature, atol=1e-6)
    assert torch.allclose(seen[1], 0.3 * adain + 0.7 * content_feature, atol=1e-5)
    assert torch.allclose(out, model.decoder(content_feature).clamp(-1, 1), atol=1e-6)


def test_style_interpolation_blends_adain_features_by_weight(model):
    content, style_a, style_b = images(1, 3, 32, 32), images(1, 3, 40, 40), images(1, 3, 48, 32)
    feature = model.encoder(content)["relu4_1"]
    adain_a = adaptive_instance_norm(feature, model.encoder(style_a)["relu4_1"])
    adain_b = adaptive_instance_norm(feature, model.encoder(style_b)["relu4_1"])
    seen = decoder_inputs(model)
    model.stylize(content, [style_a, style_b], style_weights=[1.0, 0.0])
    model.stylize(content, [style_a, style_b], style_weights=[1.0, 3.0])  # normalised to 0.25, 0.75
    assert torch.allclose(seen[0], adain_a, atol=1e-5)
    assert torch.allclose(seen[1], 0.25 * adain_a + 0.75 * adain_b, atol=1e-5)
    assert not torch.allclose(adain_a, adain_b, atol=1e-3)


def test_odd_sizes_come_back_at_their_size_and_inference_generator_matches_stylize(model):
    content, style = images(1, 3, 30, 45), images(1, 3, 40, 40)
    out = model.stylize(content, style, alpha=0.7)
    assert out.shape == content.shape
    generator = model.inference_generator(style_images=[style], alpha=0.7)
    assert generator.size_multiple == 8
    assert torch.allclose(generator(content), out, atol=1e-6)
    with pytest.raises(ValueError, match="alpha=1.5 must be in"):
        model.stylize(content, style, alpha=1.5)


def test_colour_preservation_gives_the_style_the_content_colour_statistics():
    content = images(1, 3, 24, 24) * torch.tensor([0.3, 0.8, 0.5]).view(1, 3, 1, 1)
    style = images(1, 3, 40, 32) * 0.9
    recoloured = coral(style, content).reshape(3, -1).double()
    target = content.reshape(3, -1).double()
    assert torch.allclose(recoloured.mean(1), target.mean(1), atol=1e-5)
    assert torch.allclose(torch.cov(recoloured), torch.cov(target), atol=1e-3)


def test_fast_dev_run(compose_config):
    train(compose_config(*TINY, "trainer.fast_dev_run=true"))


def test_a_changed_encoder_or_an_adversarial_weight_is_refused(compose_config):
    with pytest.raises(ConfigError, match="VGG19 up to relu4_1"):
        validate_config(compose_config(*TINY, "loss.feature_net.arch=vgg16"))
    with pytest.raises(ConfigError, match="AdaIN has no adversarial term"):
        validate_config(compose_config(*TINY, "loss.gan_weight=1.0"))


def test_missing_style_image_is_a_clear_error(compose_config, tmp_path):
    assert_missing_style_image_is_a_clear_error(compose_config, TINY, tmp_path / "wave.jpg")


def test_default_imagenet_weights_without_the_file_fail_naming_it(compose_config, tmp_path, monkeypatch):
    missing_imagenet_weights_error(compose_config, TINY, "vgg19-dcbb9e9d.pth", monkeypatch, tmp_path)
