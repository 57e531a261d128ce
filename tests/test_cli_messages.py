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
