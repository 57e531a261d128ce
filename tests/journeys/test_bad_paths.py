"""Bad paths a user types: each stops with one paragraph on stderr and exit code 1, no traceback, and
leaves nothing behind (no run folder, no output folder) and nothing overwritten."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import user_data
from helpers import run_train, user_environment

pytestmark = pytest.mark.journey

# The README's CycleGAN own-data command at tiny sizes; only data.root changes.
UNPAIRED = user_data.CYCLEGAN_OWN_DATA_TINY


def only_train_a(folder: Path) -> Path:
    user_data.write_images(folder / "trainA", 2)
    return folder


def single_image(folder: Path) -> Path:
    return user_data.one_image(folder / "horse.jpg", 0, (40, 30))


def no_images(folder: Path) -> Path:
    for split in ("trainA", "trainB", "testA", "testB"):
        (folder / split).mkdir(parents=True)
        (folder / split / "README.txt").write_text("images go here\n")
    return folder


BAD_ROOTS = {
    "missing": (lambda folder: folder / "horse2zebra", "does not exist"),
    "trainA_only": (only_train_a, "trainB"),
    "single_image_file": (single_image, "is not a folder"),
    "no_images": (no_images, "no image"),
}


def assert_one_paragraph_and_exit_1(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr + result.stdout, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.lower().startswith(("error:", "...error:"))]
    assert len(errors) == 1, result.stderr[-3000:]
    return result.stderr


# A missing root and a root without images by default; the other two shapes' messages are the data
# module's (tests/test_data.py), and the path through train.py is the same.
@pytest.mark.parametrize(
    "case",
    [
        case if case in ("missing", "no_images") else pytest.param(case, marks=pytest.mark.slow)
        for case in sorted(BAD_ROOTS)
    ],
)
def test_a_bad_data_root_is_one_paragraph_exit_1_and_leaves_no_run_folder(case, tmp_path):
    make_root, expected = BAD_ROOTS[case]
    root = make_root(tmp_path / "data")
    before = sorted(tmp_path.rglob("*"))
    run_dir = tmp_path / "run"
    result = run_train(
        *UNPAIRED,
        f"data.root={root}",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
        cache=tmp_path / "cache",
        env={"TORCH_HOME": str(tmp_path / "torch-home")},
    )
    message = assert_one_paragraph_and_exit_1(result)
    assert expected in message.lower() or expected in message, message
    assert str(root) in message or root.name in message
    assert not run_dir.exists()
    assert sorted(tmp_path.rglob("*")) == before  # nothing written next to the data either


def run_stylize(checkpoint: Path, inputs: Path, output: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "ganstyle.cli",
            "stylize",
            str(checkpoint),
            str(inputs),
            "--output",
            str(output),
        ],
        cwd=cwd,
        env=user_environment(cwd, cwd / "cache"),
        capture_output=True,
        text=True,
        timeout=120,
    )


def dcgan_checkpoint(path: Path) -> Path:
    """A checkpoint of a model that generates rather than translates, as training writes it."""
    from ganstyle.models.dcgan import DCGAN

    model = DCGAN(
        generator={
            "_target_": "ganstyle.networks.DCGANGenerator",
            "latent_dim": 8,
            "ngf": 4,
            "image_size": 32,
        },
        discriminator={"_target_": "ganstyle.networks.DCGANDiscriminator", "ndf": 4, "image_size": 32},
        optimizer={"_target_": "torch.optim.Adam", "_partial_": True, "lr": 2e-4},
        loss={"gan_mode": "vanilla", "gan_weight": 1.0},
        num_fixed_samples=4,
        samples_per_row=2,
    )
    checkpoint = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}
    model.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, path)
    return path


def truncated_checkpoint(path: Path, whole: Path) -> Path:
    path.write_bytes(whole.read_bytes()[: whole.stat().st_size // 3])
    return path


@pytest.mark.parametrize("case", [pytest.param("another_models_kind", marks=pytest.mark.slow), "truncated"])
def test_stylize_refuses_an_unusable_checkpoint_without_writing_anything(case, tmp_path):
    other = dcgan_checkpoint(tmp_path / "dcgan.ckpt")
    checkpoint = (
        other if case == "another_models_kind" else truncated_checkpoint(tmp_path / "last.ckpt", other)
    )
    inputs = user_data.write_images(tmp_path / "photos", 2)
    output = tmp_path / "stylized"
    result = run_stylize(checkpoint, inputs, output, tmp_path)
    message = assert_one_paragraph_and_exit_1(result)
    assert ("does not translate" if case == "another_models_kind" else "truncated") in " ".join(
        message.split()
    )
    assert not output.exists()


@pytest.mark.slow  # the run-folder reuse check itself is in the default suite (test_resume.py)
def test_an_earlier_run_is_not_overwritten_by_a_failed_start(tmp_path):
    """Bad input pointed at an earlier run's folder changes none of its files."""
    earlier = tmp_path / "earlier"
    (earlier / "checkpoints").mkdir(parents=True)
    (earlier / "checkpoints" / "last.ckpt").write_bytes(b"earlier run")
    (earlier / "metrics.csv").write_text("step,train/loss\n0,1.0\n")
    snapshot = {path: path.read_bytes() for path in earlier.rglob("*") if path.is_file()}
    result = run_train(
        *UNPAIRED,
        f"data.root={tmp_path / 'missing'}",
        f"hydra.run.dir={earlier}",
        cwd=tmp_path,
        cache=tmp_path / "cache",
    )
    assert_one_paragraph_and_exit_1(result)
    assert {path: path.read_bytes() for path in earlier.rglob("*") if path.is_file()} == snapshot
    shutil.rmtree(earlier)
