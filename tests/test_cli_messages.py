"""The ganstyle commands answer in their own terms: what a checkpoint holds and where its result is,
flags rather than Python arguments, every export size the file handles, and no advice from torch to
load untrusted files unsafely."""

from __future__ import annotations

import pytest
import torch

from ganstyle.cli import main as cli_main
from ganstyle.commands.messages import for_cli
from ganstyle.inference.export import ExportError, export_generator, run_exported, smallest_input_side
from ganstyle.inference.loading import GeneratorInfo
from ganstyle.networks import ResnetGenerator, UnetGenerator
from ganstyle.weights import WeightsFileError, load_checked_state_dict


class Unpicklable:
    """A Python object that torch's weights-only loader refuses."""


def test_gatys_checkpoint_says_what_the_model_is_and_where_its_result_is(compose_config, tmp_path, capsys):
    from ganstyle.run.training import train

    run = tmp_path / "run"
    train(
        compose_config(
            "model=gatys",
            "data.image_size=32",
            "data.iterations_per_epoch=2",
            "trainer.max_epochs=1",
            "logger=none",
            "callbacks.progress_bar=null",
            "trainer.enable_model_summary=false",
            output_dir=run,
        )
    )
    checkpoint = run / "checkpoints" / "last.ckpt"
    for command in (
        ["stylize", str(checkpoint), str(run / "stylized.png"), "--output", str(tmp_path / "out")],
        ["export", str(checkpoint), "--format", "torchscript"],
    ):
        assert cli_main(command) == 1
        message = " ".join(capsys.readouterr().err.split())
        assert "GatysStyleTransfer" in message and str(run / "stylized.png") in message
        assert "missing" not in message and "unexpected" not in message
    assert not (tmp_path / "out").exists()


def test_unet_export_takes_every_size_the_file_handles(tmp_path):
    generator = UnetGenerator(num_downs=6, ngf=2, norm="instance").eval()
    info = GeneratorInfo("ganstyle.models.cyclegan.CycleGAN", "AtoB", 64, generator.min_side, 0, False)
    assert smallest_input_side(info) == 33  # reflect-padded to 64: the 1x1 bottleneck unet_64 was built for
    path = export_generator(generator, info, tmp_path / "g.pt", "torchscript", example_size=(64, 64))
    for size in ((64, 64), (40, 48), (100, 130)):
        assert run_exported(path, torch.rand(1, 3, *size)).shape[-2:] == size
    with pytest.raises(ExportError, match="--size of at least 33 33"):
        export_generator(generator, info, tmp_path / "small.pt", "torchscript", example_size=(20, 20))


def test_resnet_export_minimum_is_what_its_padding_allows():
    generator = ResnetGenerator(ngf=2, n_blocks=1)
    info = GeneratorInfo("x.Model", None, generator.size_multiple, 2 * generator.size_multiple, 0, False)
    assert smallest_input_side(info) == 5


@pytest.mark.parametrize(
    ("api_message", "cli_message"),
    [
        (
            "AdaIN transfers the style of images given at inference time: pass style_images (one or more "
            "style images; several are interpolated with style_weights).",
            "pass --style <image>",
        ),
        (
            "tile=100 must be a multiple of the generator's size_multiple=64.",
            "--tile 100 must be a multiple of",
        ),
        (
            "If you trust the file, load it with trusted=True (CLI: --trust-checkpoint).",
            "load it with --trust-checkpoint.",
        ),
        ("Pass it: model_class='a.B' (CLI: --model-class a.B).", "Pass it: --model-class a.B."),
        ("size=0 must be a positive number of pixels.", "--size 0 must be"),
    ],
)
def test_command_errors_name_flags_not_python_arguments(api_message, cli_message):
    text = for_cli(api_message)
    assert cli_message in text
    for api_name in ("style_images", "size_multiple=", "trusted=", "model_class=", "(CLI:"):
        assert api_name not in text


def test_a_weights_file_with_python_objects_is_refused_without_torchs_unsafe_advice(tmp_path):
    path = tmp_path / "vgg19-dcbb9e9d.pth"
    torch.save({"features.0.weight": Unpicklable()}, path)
    with pytest.raises(WeightsFileError) as error:
        load_checked_state_dict("vgg19", path)
    message = str(error.value)
    assert "Unpicklable" in message
    assert "weights_only" not in message and "file an issue" not in message and "\x1b[" not in message


@pytest.fixture
def png_folder(tmp_path):
    from PIL import Image

    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        Image.new("RGB", (40, 32), (200, 120, 40)).save(folder / name)
    return folder


def test_stylize_into_its_own_input_folder_names_the_png_naming_not_a_flag_not_given(
    png_folder, tmp_path, capsys
):
    command = ["stylize", str(tmp_path / "any.ckpt"), str(png_folder), "--output", str(png_folder)]
    assert cli_main(command) == 1
    message = " ".join(capsys.readouterr().err.split())
    assert "would overwrite the input" in message and "written as <name>.png" in message
    assert "--format same" not in message
    assert cli_main([*command, "--format", "same"]) == 1
    assert "drop --format same" in " ".join(capsys.readouterr().err.split())


@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [
        ("--batch-size", "0", "'0' is not a batch size: give how many images go through the network at once"),
        ("--size", "0", "'0' is not a number of pixels: give a whole number of at least 1"),
        ("--stats-size", "-5", "'-5' is not a number of pixels"),
        ("--overlap", "x", "'x' is not an overlap in pixels"),
    ],
)
def test_stylize_numbers_out_of_range_get_one_sentence_saying_what_the_flag_takes(
    png_folder, tmp_path, capsys, flag, value, expected
):
    with pytest.raises(SystemExit) as stop:
        cli_main(
            ["stylize", str(tmp_path / "any.ckpt"), str(png_folder), "-o", str(tmp_path / "o"), flag, value]
        )
    assert stop.value.code == 2
    message = " ".join(capsys.readouterr().err.split())
    assert f"argument {flag}: {expected}" in message and "(or None)" not in message


def test_fid_on_empty_folders_reports_the_folders_before_the_missing_weights(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))
    (tmp_path / "empty").mkdir()
    assert cli_main(["fid", str(tmp_path / "empty"), str(tmp_path / "missing")]) == 1
    message = " ".join(capsys.readouterr().err.split())
    assert f"{tmp_path / 'empty'} holds 0 image file(s)" in message
    assert f"{tmp_path / 'missing'} does not exist" in message
    assert "weights-inception" not in message


def test_the_libraries_noise_is_dropped_and_verbose_keeps_it(monkeypatch):
    import logging

    from ganstyle.run import console

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("lightning", logging.INFO, __file__, 0, message, None, None)

    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    console.quiet_library_output(verbose=False)
    try:
        assert not logger.filter(record("💡 Tip: For seamless cloud logging, try installing [litlogger]"))
        assert not logger.filter(record("GPU available: False, used: False"))
        assert logger.filter(record("`Trainer.fit` stopped: `max_epochs=4` reached."))
    finally:
        logger.removeFilter(console._NOISE_FILTER)
    from omegaconf import OmegaConf

    quiet, hydra_verbose = (
        OmegaConf.create({"hydra": {"verbose": False}}),
        OmegaConf.create({"hydra": {"verbose": True}}),
    )
    monkeypatch.delenv(console.VERBOSE_ENV, raising=False)
    assert not console.is_verbose(quiet) and console.is_verbose(hydra_verbose)
    monkeypatch.setenv(console.VERBOSE_ENV, "1")  # what `train.py --verbose` sets
    assert console.is_verbose(quiet)
