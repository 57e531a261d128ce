"""Exported generators (ONNX run by onnxruntime, TorchScript by torch.jit.load) give PyTorch's output
for any image size, record what a user needs to know, and make generators with dropout say whether
it stays on."""

from __future__ import annotations

import pytest
import torch

from ganstyle.cli import main as cli_main
from ganstyle.inference.export import (
    ExportedGenerator,
    ExportError,
    check_dropout_choice,
    export_generator,
    read_metadata,
    run_exported,
)
from ganstyle.inference.loading import GeneratorInfo, inference_network, load_model, set_dropout
from ganstyle.networks import ResnetGenerator

# float32 kernels of two runtimes differ by about 1e-6 on these outputs; 1e-4 is far below the 8-bit
# step (1 / 255 = 4e-3) and far above rounding noise, so a real difference (a missing layer, a wrong
# padding) fails while kernel-order noise passes.
TOLERANCE = 1e-4
ODD_SIZES = ((37, 53), (64, 64), (9, 130))


def pytorch_output(
    generator, info: GeneratorInfo, images: torch.Tensor, unit_range: bool = True
) -> torch.Tensor:
    with torch.no_grad():
        return ExportedGenerator(generator, info.size_multiple, unit_range)(images)


@pytest.fixture
def trained_generator(tiny_cyclegan_run):
    checkpoint = tiny_cyclegan_run / "checkpoints" / "last.ckpt"
    generator, info = inference_network(load_model(checkpoint), "AtoB")
    return checkpoint, generator, info


def test_onnx_export_matches_pytorch_at_any_size_and_records_its_contract(trained_generator, tmp_path):
    checkpoint, generator, info = trained_generator
    path = export_generator(
        generator, info, tmp_path / "g.onnx", "onnx", example_size=(64, 64), checkpoint=checkpoint
    )
    for height, width in ODD_SIZES:
        images = torch.rand(2, 3, height, width)
        exported = run_exported(path, images)
        assert exported.shape == images.shape
        assert (exported - pytorch_output(generator, info, images)).abs().max() < TOLERANCE
    metadata = read_metadata(path)
    assert metadata["ganstyle.input_range"] == "[0, 1]" and metadata["ganstyle.size_multiple"] == "4"
    assert metadata["ganstyle.direction"] == "AtoB" and metadata["ganstyle.dropout"] == "none"


def test_torchscript_export_matches_pytorch_in_both_pixel_ranges(trained_generator, tmp_path):
    checkpoint, generator, info = trained_generator
    for unit_range in (True, False):
        path = export_generator(
            generator, info, tmp_path / f"g_{unit_range}.pt", "torchscript", unit_range=unit_range
        )
        for height, width in ODD_SIZES:
            images = torch.rand(1, 3, height, width)
            images = images if unit_range else images * 2 - 1
            expected = pytorch_output(generator, info, images, unit_range)
            assert (run_exported(path, images) - expected).abs().max() < TOLERANCE
        assert read_metadata(path)["ganstyle.input_range"] == ("[0, 1]" if unit_range else "[-1, 1]")


def test_export_command_writes_next_to_the_checkpoint_and_checks_the_file(tiny_cyclegan_run, capsys):
    checkpoint = tiny_cyclegan_run / "checkpoints" / "last.ckpt"
    code = cli_main(
        ["export", str(checkpoint), "--format", "torchscript", "--direction", "BtoA", "--size", "32", "48"]
    )
    output = capsys.readouterr().out
    assert code == 0 and "(ok)" in output
    assert (checkpoint.parent / "last_BtoA.pt").is_file()


def test_export_style_is_refused_for_a_model_that_learnt_its_style(tiny_cyclegan_run, tmp_path, capsys):
    from PIL import Image

    style = tmp_path / "starry.png"
    Image.new("RGB", (16, 16), (20, 40, 200)).save(style)
    checkpoint = tiny_cyclegan_run / "checkpoints" / "last.ckpt"
    assert cli_main(["export", str(checkpoint), "--format", "onnx", "--style", str(style)]) == 1
    assert "takes no --style" in capsys.readouterr().err  # the flag, not the Python argument
    assert cli_main(["export", str(checkpoint), "--format", "onnx", "--style", str(tmp_path / "no.jpg")]) == 1
    assert "no such image file" in capsys.readouterr().err


def test_export_command_explains_a_missing_checkpoint(tmp_path, capsys):
    assert cli_main(["export", str(tmp_path / "none.ckpt"), "--format", "onnx"]) == 1
    assert "does not exist" in capsys.readouterr().err


def dropout_generator_info(dropout: bool | None) -> tuple[torch.nn.Module, GeneratorInfo]:
    torch.manual_seed(0)
    generator = ResnetGenerator(ngf=8, n_blocks=1, use_dropout=True).eval()
    set_dropout(generator, bool(dropout))
    return generator, GeneratorInfo("tests.Pix2PixLike", None, 4, 8, dropout_layers=1, dropout=bool(dropout))


def test_generator_with_dropout_needs_an_explicit_choice():
    _, info = dropout_generator_info(None)
    with pytest.raises(ExportError, match="--dropout on"):
        check_dropout_choice(info, None)
    check_dropout_choice(info, False)  # an explicit choice is accepted


def test_dropout_on_samples_a_new_output_per_run_and_off_is_deterministic(tmp_path):
    images = torch.rand(1, 3, 24, 28)
    for dropout in (True, False):
        generator, info = dropout_generator_info(dropout)
        path = export_generator(generator, info, tmp_path / f"d_{dropout}.pt", "torchscript")
        module = torch.jit.load(str(path))
        first, second = module(images), module(images)
        assert read_metadata(path)["ganstyle.dropout"] == ("on" if dropout else "off")
        assert (first - second).abs().max() > 1e-3 if dropout else torch.equal(first, second)


@pytest.mark.slow
def test_onnx_dropout_on_samples_a_new_output_per_run(tmp_path):
    import onnxruntime

    generator, info = dropout_generator_info(True)
    path = export_generator(generator, info, tmp_path / "d.onnx", "onnx")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    images = torch.rand(1, 3, 24, 28).numpy()
    first, second = (session.run(None, {"images": images})[0] for _ in range(2))
    assert abs(first - second).max() > 1e-3
