"""A user's mistakes get one clear paragraph before any work: the key, its value, what is allowed and
the fix; never a traceback, a silent wrong run, or a half-written run folder."""

from __future__ import annotations

from pathlib import Path

import hydra
import pytest
import torch
from helpers import run_train
from omegaconf import OmegaConf

from ganstyle.config import ConfigError
from ganstyle.models.base import build_model
from ganstyle.run.config_checks import drop_quick_start_random_weights, validate_config
from ganstyle.run.overrides import check_overrides
from ganstyle.run.user_errors import user_error_message

ROOT = Path(__file__).resolve().parents[1]
CONF = str(ROOT / "conf")


def assert_one_paragraph(message: str, *expected: str) -> None:
    assert "\n" not in message and "Traceback" not in message
    for text in expected:
        assert text in message, (text, message)


# --- the validation pass over the composed config -------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        # types, for keys outside the loss schema
        (["data.batch_size=two"], ["data.batch_size='two'", "int", "data.batch_size=4"]),
        (["trainer.max_epochs=abc"], ["trainer.max_epochs='abc'", "int"]),
        (["model.generator.ngf=wide"], ["model.generator.ngf='wide'", "int"]),
        (["model=pix2pix", "data.crop_size=1.5"], ["data.crop_size=1.5", "int"]),
        # run length
        (["trainer.max_epochs=0"], ["trainer.max_epochs=0", "at least 1", "trainer.max_epochs=10"]),
        (["trainer.max_epochs=-1"], ["trainer.max_epochs=-1", "without end"]),
        (["trainer.max_epochs=null"], ["trainer.max_epochs=None", "at least 1"]),
        (["trainer.precision=17"], ["trainer.precision=17", "bf16-mixed"]),
        (["trainer.accelerator=tpux"], ["trainer.accelerator=tpux", "trainer=cpu", "this machine has: cpu"]),
        # device types Lightning knows but this machine lacks: the ones it has, not an install hint
        (["trainer.accelerator=tpu"], ["trainer.accelerator=tpu", "its accelerators are cpu", "trainer=cpu"]),
        # settings that would train nothing, or run something other than the config records
        (["trainer.limit_train_batches=0"], ["trainer.limit_train_batches=0 trains no batch", "unset"]),
        (["trainer.limit_train_batches=0.0"], ["trainer.limit_train_batches=0.0 trains no batch"]),
        (["trainer.precision=16-mixed"], ["trainer.precision=16-mixed", "CUDA GPU", "bf16-mixed"]),
        # data the model cannot train on
        (["model=pix2pix", "data=unpaired"], ["model=pix2pix", "data=unpaired", "data=paired data.root="]),
        (["data=image_folder"], ["model=cyclegan", "data=image_folder", "data=unpaired data.root="]),
        (["model=dcgan", "data=unpaired"], ["model=dcgan", "data=image_folder data.root="]),
        (["model=gatys", "data=paired"], ["model=gatys", "data.content=<photo>"]),
        (["model=fast_style", "data=embedded_cyclegan"], ["model=fast_style", "data=content_style"]),
        # crops the networks cannot take
        (
            ["data.load_size=32", "data.crop_size=32"],
            ["data.crop_size=32", "netG=unet_64", "multiples of 64"],
        ),
        (
            ["data.load_size=96", "data.crop_size=96"],
            ["data.crop_size=96", "netG=unet_64", "data.crop_size=128"],
        ),
        (
            ["model.generator.netG=resnet_2blocks", "data.load_size=16", "data.crop_size=16"],
            ["data.crop_size=16", "model.discriminator", "n_layers=2"],
        ),
        # values out of range (the model's loss check, the model and data configs' own ranges)
        (["loss.cycle_weight=-1"], ["loss.cycle_weight=-1.0 is negative"]),
        (["loss.cycle_weight=nan"], ["loss.cycle_weight=nan is not a finite number"]),
        (["loss.identity_weight=inf"], ["loss.identity_weight=inf is not a finite number"]),
        (["loss.gan_mode=lsgann"], ["loss.gan_mode='lsgann'", "vanilla, lsgan, hinge, wgangp"]),
        (["model.optimizer.lr=0"], ["model.optimizer.lr=0 must be a positive finite number"]),
        (["model.pool_size=-1"], ["model.pool_size=-1 must be 0 or more"]),
        (["data.load_size=64", "data.crop_size=72"], ["crop_size=72 is larger than data.load_size=64"]),
        # the quick start of another model
        (
            ["experiment=gatys_quickstart"],
            ["experiment=gatys_quickstart", "model=gatys", "python train.py model=gatys"],
        ),
        # keys added with "+" (Hydra's own hint for a misspelt key), which nothing would read
        (["+loss.stlye_weight=1"], ["loss.stlye_weight", "Did you mean loss.style_weight?"]),
        (["+model.generator.ngg=8"], ["model.generator", "'ngg'", "Did you mean ngf?"]),
        # networks that cannot be built at all
        (["model.generator.netG=unet_60"], ["model.generator", "Unknown generator netG='unet_60'"]),
        # schedules that would not change the rate, or raise it again
        (["scheduler=step"], ["scheduler.step_size=50", "trainer.max_epochs=4", "never change"]),
        (["scheduler=cosine", "scheduler.T_max=2"], ["scheduler.T_max=2", "rises again"]),
        # a required value
        (["model=fast_style", "data=content_style"], ["data.style is required", "data.style=<value>"]),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) and "=" in value[0] else None,
)
def test_config_mistakes_are_refused_in_one_paragraph_naming_the_key_and_the_fix(
    compose_config, overrides, expected
):
    with pytest.raises(ConfigError) as error:
        validate_config(compose_config(*overrides))
    assert_one_paragraph(str(error.value), *expected)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_trainer_gpu_without_a_gpu_is_refused_naming_trainer_cpu(compose_config):
    with pytest.raises(ConfigError) as error:
        validate_config(compose_config("trainer=gpu"))
    assert_one_paragraph(str(error.value), "trainer=gpu", "CUDA GPU", "trainer=cpu")


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["model=pix2pix"],
        ["model=dcgan"],
        ["experiment=wgangp_quickstart"],
        ["model=gatys"],
        ["model=fast_style"],
        ["model=adain"],
        ["experiment=null"],
        ["model=pix2pix", "experiment=null"],
        ["data.load_size=72", "data.crop_size=64", "trainer.max_epochs=7"],
        ["scheduler=cosine"],
        ["scheduler=step", "scheduler.step_size=2"],
    ],
)
def test_the_shipped_configs_pass_the_validation(compose_config, overrides):
    validate_config(compose_config(*overrides))


# --- misspelt keys on the command line -------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["loss.stlye_weight=1"], ["loss.stlye_weight=1", "Did you mean loss.style_weight?"]),
        (["trainer.max_epoch=1"], ["Did you mean trainer.max_epochs?"]),
        (["model.generator.ngg=8"], ["Did you mean model.generator.ngf?"]),
        (["data.bach_size=2"], ["Did you mean data.batch_size?"]),
        (["traner.max_epochs=2"], ["Did you mean trainer.max_epochs?"]),
        (["modle=pix2pix"], ["Did you mean model?"]),
        (["-m", "loss.cycl_weight=5,10"], ["loss.cycl_weight=5,10", "Did you mean loss.cycle_weight?"]),
        (["loss.style_weight=abc"], ["'abc' is not a valid value for loss.style_weight", "Float"]),
        # a bad value anywhere in a sweep, not only its first
        (["-m", "loss.cycle_weight=5,abc"], ["loss.cycle_weight=5,abc", "'abc' is not a valid value"]),
        (
            ["-m", "loss.cycle_weight=5,10", "loss.identity_weight=0,x"],
            ["loss.identity_weight=0,x", "'x' is not a valid value for loss.identity_weight"],
        ),
        # an unknown option in a sweep stops before the sweep folder is made
        (
            ["-m", "model=cyclegan,pix2px"],
            ["model=cyclegan,pix2px", "'pix2px' is not a model option", "model=pix2pix"],
        ),
        (["-m", "experiment=horse2zebra,null"], ["`null` cannot be one value of a sweep over experiment"]),
        # group options are file names without their extension
        (["model=cyclegan.yaml"], ["use `model=cyclegan`", "adain, cut, cyclegan, dcgan"]),
        (["-m", "data=unpaired.yaml"], ["use `data=unpaired`", "content_style, embedded_adain"]),
        # a folder given to a data config that builds its own images: the option that reads it
        (
            ["data.root=/data/horse2zebra"],
            ["data=embedded_cyclegan has no data.root", "data=unpaired data.root="],
        ),
        (["model=pix2pix", "data.root=/data/facades"], ["data=embedded_pix2pix", "data=paired data.root="]),
        (["model=dcgan", "data.root=/data/art"], ["data=embedded_dcgan", "data=image_folder data.root="]),
        (["model=fast_style", "data.content_root=/coco"], ["data=content_style data.content_root="]),
    ],
)
def test_misspelt_or_misplaced_overrides_get_the_nearest_valid_names(argv, expected):
    with pytest.raises(ConfigError) as error:
        check_overrides(["train.py", *argv], CONF)
    assert_one_paragraph(str(error.value), *expected)
    assert "+" not in str(error.value).split("Did you mean")[-1]  # never Hydra's "use +key" advice


def test_a_misspelt_key_of_a_model_in_an_added_config_folder_gets_the_nearest_valid_name():
    # docs/adding_a_model.md's command: the model's configs are found only through hydra.searchpath.
    search_path = f"hydra.searchpath=[file://{ROOT / 'docs' / 'examples' / 'conf'}]"
    for argv in (
        ["model=minimal_gan", search_path, "loss.l1_wieght=3"],
        [search_path, "model=minimal_gan", "loss.l1_wieght=3"],
    ):
        with pytest.raises(ConfigError) as error:
            check_overrides(["train.py", *argv], CONF)
        assert_one_paragraph(str(error.value), "loss.l1_wieght=3", "Did you mean loss.l1_weight?")
    check_overrides(["train.py", "model=minimal_gan", search_path, "loss.l1_weight=3"], CONF)


@pytest.mark.parametrize(
    "argv",
    [
        ["loss.style_weight=1e4"],
        ["-m", "loss.cycle_weight=5,10"],
        ["data=unpaired", "data.root=/data/horse2zebra"],
        ["+extra_key=1"],
        ["--cfg", "job"],
        ["hydra.run.dir=/tmp/run"],
    ],
)
def test_valid_command_lines_pass_the_override_check(argv):
    check_overrides(["train.py", *argv], CONF)


# --- train.py end to end ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["loss.stlye_weight=1"], "Did you mean loss.style_weight?"),
        pytest.param(["trainer.max_epochs=0"], "trainer.max_epochs=0", marks=pytest.mark.slow),
        pytest.param(
            ["-m", "loss.cycle_weight=5,abc"],
            "'abc' is not a valid value for loss.cycle_weight",
            marks=pytest.mark.slow,
        ),
        pytest.param(["model=pix2pix", "data=unpaired"], "data=paired", marks=pytest.mark.slow),
        pytest.param(["data.root=/data/horse2zebra"], "data=unpaired data.root=", marks=pytest.mark.slow),
        pytest.param(["data.batch_size=two"], "data.batch_size='two'", marks=pytest.mark.slow),
        pytest.param(["data.load_size=32", "data.crop_size=32"], "netG=unet_64", marks=pytest.mark.slow),
    ],
)
def test_train_py_answers_a_mistake_with_exit_1_one_paragraph_and_nothing_written(
    tmp_path, overrides, expected
):
    result = run_train(
        *overrides, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path, cache=tmp_path / "cache", timeout=300
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and expected in errors[0]
    assert "Traceback" not in result.stderr and "+loss" not in result.stderr
    assert not (tmp_path / "run").exists() and not (tmp_path / "outputs").exists()


# --- Hydra's wrapper -------------------------------------------------------------------------------
def test_an_argument_error_inside_hydras_instantiate_names_the_key_and_the_classs_own_message():
    config = OmegaConf.create(
        {"model": {"generator": {"_target_": "ganstyle.networks.define_generator", "netG": "x"}}}
    )
    with pytest.raises(Exception) as error:
        hydra.utils.instantiate(config.model)
    message = user_error_message(error.value)
    assert message is not None and "define_generator" in message and "Unknown generator netG='x'" in message
    assert "Error in call to target" not in message


def test_an_added_data_key_nothing_reads_gets_the_nearest_argument(compose_config):
    with pytest.raises(Exception) as error:
        hydra.utils.instantiate(compose_config("+data.bach_size=2").data)
    assert_one_paragraph(user_error_message(error.value), "'bach_size'", "Did you mean batch_size?")


def test_a_network_refusing_its_size_inside_a_model_names_the_network_and_the_reason(compose_config):
    cfg = compose_config("model=dcgan", "data.load_size=48", "data.crop_size=48")
    validate_config(cfg)  # DCGAN sizes its networks from the data: only building them tells
    with pytest.raises(Exception) as error:
        build_model(cfg.model)
    message = user_error_message(error.value)
    assert (
        message is not None
        and "DCGANGenerator" in message
        and "power of two" in message
        and "got 48" in message
        and "data.crop_size" in message  # the key the user sets
    )


# --- the quick starts' random VGG and the user's own images ---------------------------------------
@pytest.fixture
def photo(tmp_path) -> Path:
    from PIL import Image

    path = tmp_path / "me.png"
    Image.new("RGB", (48, 40), (200, 120, 40)).save(path)
    return path


@pytest.mark.parametrize(
    ("model", "own_images"),
    [
        ("gatys", "data.content={photo} data.style={photo}"),
        ("fast_style", "data.style={photo}"),
        ("adain", "data.style={photo}"),
    ],
)
def test_own_images_switch_the_quick_starts_random_vgg_off(compose_config, photo, model, own_images):
    demo = compose_config(f"model={model}")
    drop_quick_start_random_weights(demo)
    assert demo.loss.feature_net.weights == "random"  # the embedded demo keeps its opt-in
    own = compose_config(f"model={model}", *own_images.format(photo=photo).split())
    drop_quick_start_random_weights(own)
    assert own.loss.feature_net.weights == "imagenet" and own.model.loss.feature_net.weights == "imagenet"
    again = compose_config(
        f"model={model}", *own_images.format(photo=photo).split(), "loss.feature_net.weights=random"
    )
    drop_quick_start_random_weights(again)
    assert again.loss.feature_net.weights == "random"  # opted in again, explicitly


def test_gatys_on_own_images_without_vgg_weights_stops_naming_the_file(
    compose_config, photo, tmp_path, monkeypatch
):
    from ganstyle.run.training import train

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))
    cfg = compose_config(
        "model=gatys", f"data.content={photo}", f"data.style={photo}", output_dir=tmp_path / "run"
    )
    with pytest.raises(Exception) as error:
        train(cfg)
    assert "vgg19-dcbb9e9d.pth" in user_error_message(error.value)
    assert not (tmp_path / "run" / "stylized.png").exists()


def test_an_iteration_bounded_run_may_leave_max_epochs_open_but_an_unbounded_one_may_not(compose_config):
    from ganstyle.config import ConfigError
    from ganstyle.run.config_checks import validate_config

    validate_config(compose_config("trainer.max_epochs=-1", "trainer.max_steps=10"))
    with pytest.raises(ConfigError, match=r"trainer.max_epochs=-1 is not a run length"):
        validate_config(compose_config("trainer.max_epochs=-1"))


# --- output folders Hydra could not create ---------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["hydra.run.dir={file}/run"], ["hydra.run.dir={file}/run", "{file} is a file, not a folder"]),
        (["-m", "hydra.sweep.dir={file}/sweep", "loss.cycle_weight=5,10"], ["hydra.sweep.dir={file}/sweep"]),
        (["paths.log_dir={file}"], ["paths.log_dir={file}", "`paths.log_dir=<folder>`"]),
        (["hydra.run.dir=/proc/ganstyle-run"], ["no folder can be created in /proc"]),
    ],
)
def test_an_output_folder_that_cannot_be_made_is_refused_before_hydra_tries(tmp_path, argv, expected):
    from ganstyle.run.overrides import check_output_folder_in_argv

    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    with pytest.raises(ConfigError) as error:
        check_output_folder_in_argv(["train.py", *(arg.format(file=a_file) for arg in argv)])
    assert_one_paragraph(str(error.value), *(text.format(file=a_file) for text in expected))
    assert not list(Path("/proc").glob(".ganstyle-write-test-*"))


def test_a_writable_output_folder_passes_and_leaves_nothing_behind(tmp_path):
    from ganstyle.run.overrides import check_output_folder_in_argv

    check_output_folder_in_argv(["train.py", f"hydra.run.dir={tmp_path / 'new' / 'run'}"])
    check_output_folder_in_argv(["train.py", "hydra.run.dir=${paths.log_dir}/x"])
    assert list(tmp_path.iterdir()) == []


def test_train_py_refuses_an_unusable_run_folder_in_one_paragraph(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    result = run_train(f"hydra.run.dir={a_file}/run", cwd=tmp_path, cache=tmp_path / "cache", timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"Error: hydra.run.dir={a_file}/run: the run's folder cannot be made there" in result.stderr
