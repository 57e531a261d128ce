"""CycleGAN with perceptual terms and FID/KID in its validation loop."""

from __future__ import annotations

import logging

import pytest

from ganstyle.run.training import train
from ganstyle.weights import WeightsNotFoundError

TINY = (
    "model.generator.ngf=8",
    "model.generator.netG=resnet_1blocks",
    "model.discriminator.ndf=8",
    "data.n_train=3",
    "data.n_test=4",
    "data.load_size=36",
    "data.crop_size=32",
    "logger=csv",
    "trainer.max_epochs=1",
    "trainer.log_every_n_steps=1",
    "trainer.num_sanity_val_steps=0",
    "~callbacks.translate_test_set",
)


@pytest.fixture(autouse=True)
def empty_torch_hub(tmp_path, monkeypatch):
    """No pretrained weights anywhere: the situation of an offline machine."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))


def logged_columns(run):
    return (run / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")


def test_style_weight_adds_a_logged_gram_style_term(compose_config, tmp_path):
    cfg = compose_config(
        *TINY,
        "loss.style_weight=1e4",
        "loss.feature_net.weights=random",
        "metrics.fid=false",
        output_dir=tmp_path / "run",
    )
    train(cfg)
    columns = logged_columns(tmp_path / "run")
    assert "train/loss_style_AB" in columns and "train/loss_style_BA" in columns
    assert "train/loss_content_AB" not in columns  # content_weight stayed 0: no content term


def test_style_weight_without_vgg_weights_fails_before_training_naming_the_file(compose_config, tmp_path):
    cfg = compose_config(*TINY, "loss.style_weight=1e4", output_dir=tmp_path / "run")
    with pytest.raises(Exception) as info:
        train(cfg)
    text = str(info.value) + str(info.value.__cause__)
    assert "vgg19-dcbb9e9d.pth" in text and "fetch-weights" in text
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_fid_and_kid_are_logged_per_direction_with_best_values(compose_config, tmp_path):
    cfg = compose_config(*TINY, "metrics.weights=random", "metrics.feature=64", output_dir=tmp_path / "run")
    result = train(cfg)
    columns = logged_columns(tmp_path / "run")
    for name in ("val/fid_B", "val/fid_A", "val/kid_B", "val/fid_B_best", "val/psnr_B"):
        assert name in columns, name
    assert cfg.monitor.metric == "val/fid_B" and cfg.monitor.mode == "min"
    assert "random-weights-not-comparable" in cfg.tags  # logged runs say their FID means nothing
    assert result is not None


def test_fid_auto_without_weights_warns_and_monitors_ground_truth(compose_config, tmp_path, caplog):
    cfg = compose_config(*TINY, output_dir=tmp_path / "run")
    with caplog.at_level(logging.WARNING, logger="ganstyle.metrics.validation"):
        train(cfg)
    (line,) = [record.getMessage() for record in caplog.records if "FID/KID are off" in record.getMessage()]
    assert "\n" not in line and "ganstyle fetch-weights" in line  # one line: how to turn FID on
    assert cfg.monitor.metric == "val/psnr_B" and cfg.monitor.mode == "max"
    assert "val/fid_B" not in logged_columns(tmp_path / "run")


def test_required_fid_without_weights_fails_before_training(compose_config, tmp_path):
    cfg = compose_config(*TINY, "metrics.fid=true", output_dir=tmp_path / "run")
    with pytest.raises(WeightsNotFoundError, match="weights-inception-2015-12-05-6726825d.pth"):
        train(cfg)
