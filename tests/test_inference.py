"""Applying trained models: any image size, tiles that match a whole-image pass, checkpoint loading,
the Python API and `ganstyle stylize` end to end on a checkpoint of a real (tiny) training run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from skimage import data
from torch import nn

import ganstyle
from ganstyle.cli import main as cli_main
from ganstyle.inference import CheckpointError, InferenceInputError, Stylizer
from ganstyle.inference.loading import MODEL_CLASS_KEY, load_model
from ganstyle.inference.tiling import blend_windows, reflect_pad, tile_starts, window_sum
from ganstyle.networks import ResnetGenerator

GREY_LEVEL = 1.0 / 255.0


class StridedIdentity(nn.Module):
    """x -> x, refusing sizes that are not multiples of 4 as a strided generator would: any crop in
    the wrong place, resize or wrongly normalised blend shows in the output."""

    size_multiple = 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] % 4 or x.shape[-1] % 4:
            raise AssertionError(f"the network was given {tuple(x.shape)}, not a multiple of 4")
        return x


@pytest.fixture(scope="module")
def generator() -> nn.Module:
    torch.manual_seed(0)
    return ResnetGenerator(ngf=8, n_blocks=2).eval().requires_grad_(False)


def photo(height: int, width: int, top: int = 100, left: int = 150) -> torch.Tensor:
    """A natural image (tiling errors on noise say little about photos), (3, H, W) in [0, 1]."""
    return (
        torch.from_numpy(data.astronaut()[top : top + height, left : left + width].copy()).permute(2, 0, 1)
        / 255.0
    )


# --- sizes -------------------------------------------------------------------------------------------
def test_reflect_pad_equals_torch_reflect_and_keeps_reflecting_past_the_side():
    image = torch.rand(1, 3, 5, 7)
    assert torch.equal(reflect_pad(image, (2, 3, 4, 1)), F.pad(image, (4, 1, 2, 3), mode="reflect"))
    padded = reflect_pad(image, (0, 11, 0, 0))  # 11 rows below a 5-row image: reflects back and forth
    assert padded.shape[-2] == 16
    assert torch.equal(padded[..., 8, :], image[..., 0, :]) and torch.equal(
        padded[..., 12, :], image[..., 4, :]
    )


@pytest.mark.parametrize("height, width", [(37, 53), (5, 7), (64, 9), (1, 1), (128, 96)])
def test_any_size_comes_back_at_its_own_size_pixel_for_pixel(height, width):
    stylizer = Stylizer(StridedIdentity(), size_multiple=4, tile=None)
    image = torch.rand(3, height, width)
    assert torch.allclose(stylizer(image), image, atol=1e-6)
    pil = Image.fromarray((image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    assert np.array_equal(np.asarray(stylizer(pil)), np.asarray(pil))


@pytest.mark.parametrize("height, width", [(37, 53), (5, 7), (31, 64)])
def test_resnet_generator_output_has_the_input_size(generator, height, width):
    stylizer = Stylizer(generator, size_multiple=4, tile=None)
    output = stylizer(torch.rand(2, 3, height, width))
    assert output.shape == (2, 3, height, width) and output.min() >= 0.0 and output.max() <= 1.0


def test_size_option_sets_the_shorter_side_and_keeps_the_aspect_ratio(generator):
    stylizer = Stylizer(generator, size_multiple=4, tile=None, size=32)
    assert stylizer(Image.new("RGB", (90, 60))).size == (48, 32)
    assert stylizer(torch.rand(3, 60, 90)).shape == (3, 32, 48)


def test_grayscale_and_rgba_images_come_out_rgb_at_their_size(generator):
    stylizer = Stylizer(generator, size_multiple=4, tile=None)
    grey = Image.fromarray(data.camera()[:45, :30])
    rgba = Image.fromarray(data.logo()[:33, :41])
    assert rgba.mode == "RGBA"
    outputs = stylizer.stylize_images([grey, rgba])
    assert [(image.mode, image.size) for image in outputs] == [("RGB", (30, 45)), ("RGB", (41, 33))]


def test_tensor_in_the_wrong_range_or_layout_is_refused_with_the_fix(generator):
    stylizer = Stylizer(generator, size_multiple=4, tile=None)
    with pytest.raises(InferenceInputError, match="Divide 0-255"):
        stylizer(torch.rand(3, 8, 8) * 255)
    with pytest.raises(InferenceInputError, match="permute"):
        stylizer(torch.rand(8, 8, 3))


# --- tiles ----------------------------------------------------------------------------------------------
def test_blend_weights_sum_to_one_between_neighbours_and_are_zero_at_inner_tile_edges():
    starts = tile_starts(200, 64, 24, 4)
    assert starts[0] == 0 and starts[-1] == 200 - 64 and all(start % 4 == 0 for start in starts)
    windows = blend_windows(starts, 64)
    assert windows[1][0] == 0 and windows[0][-1] == 0 and windows[0][0] == 1 and windows[-1][-1] == 1
    assert (window_sum(starts, windows, 200) > 0).all()


def test_tiles_of_an_identity_network_reassemble_the_image_exactly():
    image = torch.rand(3, 150, 230)
    stylizer = Stylizer(StridedIdentity(), size_multiple=4, tile=64, overlap=24)
    assert stylizer.uses_tiles(150, 230)
    assert torch.allclose(stylizer(image), image, atol=1e-6)


def mean_and_max_error(
    stylizer: Stylizer, image: torch.Tensor, reference: torch.Tensor
) -> tuple[float, float]:
    difference = (stylizer(image) - reference).abs()
    return float(difference.mean()) / GREY_LEVEL, float(difference.max()) / GREY_LEVEL


def test_tiled_result_matches_the_whole_image_with_shared_norm_statistics_and_not_without(generator):
    # 192 x 160 px in 96 px tiles overlapping by 48: 3 x 3 tiles. The statistics copy is the whole
    # image (stats_size=192), so what differs is only the context a tile lacks near its edges: pixels
    # within the receptive field of a tile edge, after the cross-fade has weighted them down. Measured:
    # mean 0.04, max 2.2 grey levels. Tolerance: mean below 0.25 and max below 4 grey levels (out of
    # 255; one level is the 8-bit output step). Per-tile statistics measure a mean of about 14.
    image = photo(192, 160)
    whole = Stylizer(generator, size_multiple=4, tile=None)(image)
    shared = Stylizer(generator, size_multiple=4, tile=96, overlap=48, stats_size=192)
    per_tile = Stylizer(generator, size_multiple=4, tile=96, overlap=48, stats_size=192)
    per_tile.statistics.layers = []  # each tile normalised by its own statistics
    mean_shared, max_shared = mean_and_max_error(shared, image, whole)
    mean_per_tile, _ = mean_and_max_error(per_tile, image, whole)
    assert mean_shared < 0.25 and max_shared < 4.0
    assert mean_per_tile > 5.0 and mean_per_tile > 20 * mean_shared


def test_exact_statistics_match_the_whole_image_where_a_small_statistics_copy_does_not(generator):
    # A 4x smaller copy loses the fine detail the first layers respond to: its statistics are about as
    # far off as per-tile ones (mean ~16 grey levels). Measured layer by layer over all tiles, they are
    # those of the whole image: same tolerance as above.
    image = photo(192, 160)
    whole = Stylizer(generator, size_multiple=4, tile=None)(image)
    downscaled = Stylizer(generator, size_multiple=4, tile=96, overlap=48, stats_size=48)
    exact = Stylizer(generator, size_multiple=4, tile=96, overlap=48, stats_size=48, exact_statistics=True)
    mean_exact, max_exact = mean_and_max_error(exact, image, whole)
    assert mean_exact < 0.25 and max_exact < 4.0
    assert mean_and_max_error(downscaled, image, whole)[0] > 20 * mean_exact


def test_auto_tiling_starts_above_the_pixel_threshold(generator):
    stylizer = Stylizer(generator, size_multiple=4, tile="auto", auto_tile_pixels=100 * 100)
    assert not stylizer.uses_tiles(100, 100) and stylizer.uses_tiles(101, 100)
    assert stylizer(torch.rand(3, 130, 110)).shape == (3, 130, 110)


# --- checkpoints and the API -------------------------------------------------------------------------
def test_missing_file_and_non_checkpoints_are_refused_with_a_reason(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        ganstyle.load(tmp_path / "nope.ckpt")
    state_dict = tmp_path / "latest_net_G_A.pth"
    torch.save(ResnetGenerator(ngf=4, n_blocks=0).state_dict(), state_dict)
    with pytest.raises(CheckpointError, match="not a ganstyle"):
        ganstyle.load(state_dict)
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"definitely not a zip file")
    with pytest.raises(CheckpointError, match="Cannot read"):
        ganstyle.load(garbage)


def test_checkpoint_records_its_model_class_and_loads_without_hydra(tiny_cyclegan_run):
    checkpoint = tiny_cyclegan_run / "checkpoints" / "last.ckpt"
    assert torch.load(checkpoint, weights_only=True)[MODEL_CLASS_KEY] == "ganstyle.models.cyclegan.CycleGAN"
    model = load_model(checkpoint)
    image = torch.rand(1, 3, 36, 52)
    for direction, network in (("AtoB", model.G_AB), ("BtoA", model.G_BA)):
        stylizer = ganstyle.load(checkpoint, direction=direction, device="cpu")
        with torch.no_grad():
            expected = ((network(image * 2 - 1) + 1) / 2).clamp(0, 1)
        assert torch.allclose(stylizer(image), expected, atol=1e-5)
    with pytest.raises(CheckpointError, match="AtoB, BtoA"):
        ganstyle.load(checkpoint, direction="sideways")


def test_checkpoint_without_class_path_uses_the_run_config_or_asks_for_it(tiny_cyclegan_run, tmp_path):
    contents = torch.load(tiny_cyclegan_run / "checkpoints" / "last.ckpt", weights_only=True)
    del contents[MODEL_CLASS_KEY]
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    old = tmp_path / "run" / "checkpoints" / "old.ckpt"
    torch.save(contents, old)
    with pytest.raises(CheckpointError, match="--model-class"):
        load_model(old)
    (tmp_path / "run" / ".hydra").mkdir()
    (tmp_path / "run" / ".hydra" / "config.yaml").write_text(
        (tiny_cyclegan_run / ".hydra" / "config.yaml").read_text()
    )
    assert type(load_model(old)).__name__ == "CycleGAN"


# --- the command line ------------------------------------------------------------------------------------
def test_stylize_command_writes_every_readable_image_and_reports_the_broken_one(
    tiny_cyclegan_run, tmp_path, capsys
):
    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.fromarray(data.astronaut()[:37, :53]).save(inputs / "odd.png")
    Image.fromarray(data.camera()[:20, :28]).save(inputs / "grey.jpg")
    Image.fromarray(data.logo()[:40, :24]).save(inputs / "logo.png")
    (inputs / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    checkpoint = str(tiny_cyclegan_run / "checkpoints" / "last.ckpt")
    code = cli_main(
        ["stylize", checkpoint, str(inputs), "--output", str(tmp_path / "out"), "--device", "cpu"]
    )
    assert code == 0
    written = {path.name: Image.open(path).size for path in (tmp_path / "out").iterdir()}
    assert written == {"odd.png": (53, 37), "grey.png": (28, 20), "logo.png": (24, 40)}
    assert "broken.png" in capsys.readouterr().err
    only_broken = cli_main(
        ["stylize", checkpoint, str(inputs / "broken.png"), "--output", str(tmp_path / "none")]
    )
    assert only_broken == 1


def test_stylize_command_refuses_colliding_outputs_before_loading_anything(tmp_path, capsys):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        Image.new("RGB", (8, 8)).save(tmp_path / folder / "same.png")
    code = cli_main(
        [
            "stylize",
            str(tmp_path / "missing.ckpt"),
            str(tmp_path / "a"),
            str(tmp_path / "b"),
            "-o",
            str(tmp_path / "o"),
        ]
    )
    assert code == 1 and "same.png" in capsys.readouterr().err


def test_stylize_command_keeps_the_input_format_when_asked(tiny_cyclegan_run, tmp_path):
    source = tmp_path / "photo.jpg"
    Image.fromarray(data.astronaut()[:30, :41]).save(source)
    checkpoint = str(tiny_cyclegan_run / "checkpoints" / "last.ckpt")
    code = cli_main(
        [
            "stylize",
            checkpoint,
            str(source),
            "-o",
            str(tmp_path / "out"),
            "--format",
            "same",
            "--direction",
            "BtoA",
        ]
    )
    assert code == 0
    with Image.open(tmp_path / "out" / "photo.jpg") as result:
        assert (result.format, result.size) == ("JPEG", (41, 30))


def test_importing_ganstyle_does_not_import_the_inference_code():
    import subprocess
    import sys

    code = "import ganstyle, sys; print('ganstyle.inference' in sys.modules, callable(ganstyle.load))"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.split() == ["False", "True"]


def test_inputs_come_from_folders_and_globs_once_each_and_missing_ones_are_reported(tmp_path):
    from ganstyle.commands.stylize import collect_inputs

    (tmp_path / "x").mkdir()
    for name in ("b.png", "a.jpg", "notes.txt"):
        (tmp_path / "x" / name).write_bytes(b"")
    found, missing = collect_inputs(
        [str(tmp_path / "x"), str(tmp_path / "x" / "*.png"), str(tmp_path / "nope")]
    )
    assert [path.name for path in found] == ["a.jpg", "b.png"]
    assert [pattern for pattern, _ in missing] == [str(tmp_path / "nope")]
    assert Path(found[0]).is_absolute()


def test_generator_that_cannot_share_statistics_is_never_tiled():
    generator = StridedIdentity()
    generator.tileable = False  # e.g. a functional AdaIN: normalises by statistics outside norm layers
    stylizer = Stylizer(generator, size_multiple=4, tile=16)
    assert not stylizer.uses_tiles(64, 64)
    assert stylizer(torch.rand(3, 64, 64)).shape == (3, 64, 64)


def test_style_images_are_refused_by_a_model_that_learnt_its_style(tiny_cyclegan_run, tmp_path, capsys):
    style = tmp_path / "style.png"
    Image.new("RGB", (16, 16)).save(style)
    checkpoint = str(tiny_cyclegan_run / "checkpoints" / "last.ckpt")
    code = cli_main(["stylize", checkpoint, str(style), "-o", str(tmp_path / "out"), "--style", str(style)])
    assert code == 1 and "takes no --style" in capsys.readouterr().err  # the flag, not the API argument
