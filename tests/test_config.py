"""Configuration: every config composes, bad values fail early with the key's name."""

from __future__ import annotations

import re
from pathlib import Path

import hydra
import pytest
import torch
from hydra.errors import ConfigCompositionException, MissingConfigException

from ganstyle.config import rewrite_command_line

CONF = Path(__file__).resolve().parents[1] / "conf"
# Groups whose every option composes on top of the default run. `experiment` and `model` options are
# composed by the model zoo's own tests together with their models.
GROUPS = ("trainer", "logger", "scheduler", "callbacks", "loss", "data", "debug", "hparams_search")


def options(group: str) -> list[str]:
    folder = CONF / group
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


@pytest.mark.parametrize(
    "group_option", [f"{g}={o}" for g in GROUPS for o in options(g)], ids=lambda s: s.replace("=", "-")
)
def test_every_group_option_composes_with_the_default_run(compose_config, group_option):
    group = group_option.split("=")[0]
    cfg = compose_config(group_option)
    assert cfg.hydra.runtime.choices[group] == group_option.split("=")[1]


@pytest.mark.parametrize("model", options("model"))
def test_every_model_composes_with_its_loss_data_and_quickstart(compose_config, model):
    cfg = compose_config(f"model={model}")
    assert cfg.hydra.runtime.choices["loss"] == model
    assert cfg.hydra.runtime.choices["experiment"] == f"{model}_quickstart"
    assert "_target_" in cfg.model and "_target_" in cfg.data


def test_default_run_is_cyclegan_quickstart_on_embedded_data(compose_config):
    cfg = compose_config()
    assert cfg.model._target_ == "ganstyle.models.cyclegan.CycleGAN"
    assert cfg.data._target_ == "ganstyle.data.embedded.EmbeddedDataModule"
    assert cfg.model.generator.ngf == 32 and cfg.model.generator.netG == "unet_64"
    assert cfg.loss.cycle_weight == 10.0 and cfg.loss.identity_weight == 0.5


def test_experiment_null_keeps_the_reference_sizes(compose_config):
    cfg = compose_config("experiment=null")
    assert cfg.model.generator.ngf == 64 and cfg.model.generator.netG == "resnet_9blocks"
    assert cfg.model.discriminator.ndf == 64 and cfg.model.pool_size == 50
    assert cfg.model.optimizer.lr == pytest.approx(2e-4) and list(cfg.model.optimizer.betas) == [0.5, 0.999]
    assert cfg.scheduler.n_epochs == 100 and cfg.scheduler.n_epochs_decay == 100
    assert cfg.trainer.max_epochs == 200


def test_quick_start_adam_is_fused_and_the_reference_adam_is_not(compose_config):
    weights = [torch.nn.Parameter(torch.zeros(3))]
    quick = hydra.utils.instantiate(compose_config().model.optimizer)(weights)
    reference = hydra.utils.instantiate(compose_config("experiment=null").model.optimizer)(weights)
    assert quick.defaults["fused"] is True and not reference.defaults.get("fused")
    weights[0].grad = torch.ones(3)
    quick.step()  # the fused CPU kernel runs
    assert torch.all(weights[0] < 0)


def test_null_group_override_is_rewritten_only_for_config_groups():
    argv = ["train.py", "experiment=null", "ckpt_path=null", "debug=null", "loss.style_weight=1e4"]
    assert rewrite_command_line(argv, str(CONF)) == [
        "train.py",
        "~experiment",
        "ckpt_path=null",
        "~debug",
        "loss.style_weight=1e4",
    ]


def test_style_weight_override_composes_and_is_a_float(compose_config):
    cfg = compose_config("model=cyclegan", "loss.style_weight=1e4")
    assert cfg.loss.style_weight == 1.0e4


def test_wrong_type_for_a_loss_weight_fails_naming_the_key(compose_config):
    with pytest.raises(ConfigCompositionException) as info:
        compose_config("loss.style_weight=abc")
    text = f"{info.value} {info.value.__cause__}"
    assert "loss.style_weight" in text and "abc" in text


def test_misspelt_key_fails_naming_the_key(compose_config):
    with pytest.raises(ConfigCompositionException, match="styel_weight"):
        compose_config("loss.styel_weight=1")


def test_unknown_model_lists_the_available_models(compose_config):
    with pytest.raises(MissingConfigException) as info:
        compose_config("model=cyclegann")
    assert "cyclegan" in str(info.value) and "Available options" in str(info.value)


def test_any_trainer_argument_can_be_overridden(compose_config):
    cfg = compose_config("trainer.max_time=00:00:10:00", "trainer.precision=bf16-mixed", "trainer.devices=1")
    assert cfg.trainer.max_time == "00:00:10:00" and cfg.trainer.precision == "bf16-mixed"


def test_run_folders_have_sub_second_timestamps_and_job_numbers():
    from omegaconf import OmegaConf

    hydra_cfg = OmegaConf.to_container(OmegaConf.load(CONF / "hydra" / "default.yaml"), resolve=False)
    assert re.search(r"runs/\$\{now:%Y-%m-%d_%H-%M-%S-%f\}$", hydra_cfg["run"]["dir"])
    assert hydra_cfg["sweep"]["dir"].endswith("multiruns/${now:%Y-%m-%d_%H-%M-%S-%f}")
    assert hydra_cfg["sweep"]["subdir"] == "${hydra.job.num}"


def test_every_loss_config_declares_every_weight(compose_config):
    from ganstyle.config import LossConfig

    weights = {name for name in LossConfig.__dataclass_fields__ if name.endswith("_weight")}
    for option in options("loss"):
        cfg = compose_config(f"loss={option}")
        assert weights <= set(cfg.loss.keys()), option
