"""What several test modules share: running `train.py` as a user does, one batch through a Trainer,
one intra-op thread, and the bad-input checks every perceptual-loss model must pass (a missing style
image, missing VGG weights)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

# A CycleGAN job small enough for a multirun in a test.
TINY_SWEEP_JOB = (
    "model.generator.ngf=8",
    "model.generator.netG=resnet_1blocks",
    "model.discriminator.ndf=8",
    "data.n_train=8",
    "data.n_test=4",
    "data.crop_size=32",
    "data.load_size=36",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "callbacks.progress_bar=null",
)


@pytest.fixture(autouse=True)
def one_thread():
    """In-process training in these modules is tiny: one intra-op thread, restored afterwards.

    A module opts in with ``from helpers import one_thread``.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def user_environment(cwd: Path, cache: Path, **extra: str) -> dict[str, str]:
    """The environment of a user's shell, offline, with the test's cache (and ``extra`` variables)."""
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "RANK", "WORLD_SIZE", "WANDB_DIR")}
    # One thread per process: at these tiny sizes a second thread only adds waiting, and on a busy
    # machine two spinning OpenMP threads per process slowed steps by orders of magnitude (measured).
    env.update(WANDB_MODE="offline", WANDB_SILENT="true", GANSTYLE_CACHE=str(cache), TMPDIR=str(cwd))
    env["OMP_NUM_THREADS"] = "1"
    env.update(extra)
    return env


def run_train(
    *overrides: str, cwd: Path, cache: Path, timeout: int = 420, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`python train.py ...` as a user runs it, offline, from `cwd` (so stray files would show there).

    ``env`` adds environment variables (e.g. an empty ``TORCH_HOME``)."""
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *overrides],
        cwd=cwd,
        env=user_environment(cwd, cache, **(env or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def fit_one_batch(model, batch: dict):
    """One training batch through Lightning's Trainer on the CPU, no logger, checkpoint or validation;
    the Trainer is returned for its ``callback_metrics`` (lightning imported here: ganstyle loads first)."""
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader

    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(model, train_dataloaders=DataLoader([batch], batch_size=None))
    return trainer


def assert_missing_style_image_is_a_clear_error(compose_config, tiny: tuple[str, ...], missing: Path) -> None:
    """Training with `data.style=<missing>` fails with a DatasetError naming the file."""
    from ganstyle.data.images import DatasetError
    from ganstyle.run.training import train

    with pytest.raises(Exception, match=f"{missing.name} does not exist") as error:
        train(compose_config(*tiny, f"data.style={missing}", "trainer.fast_dev_run=true"))
    assert isinstance(error.value.__cause__ or error.value, DatasetError)  # Hydra wraps it


def missing_imagenet_weights_error(
    compose_config, tiny: tuple[str, ...], file_name: str, monkeypatch, tmp_path
):
    """The error of building the reference-config model (ImageNet VGG) with an empty torch cache;
    asserted to be a WeightsNotFoundError naming `file_name`."""
    from ganstyle.models.base import build_model
    from ganstyle.weights import WeightsNotFoundError

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))
    cfg = compose_config(*tiny, "experiment=null")
    assert cfg.loss.feature_net.weights == "imagenet"
    with pytest.raises(Exception, match=file_name) as error:
        build_model(cfg.model)  # what train() does before any data is read
    assert isinstance(error.value.__cause__ or error.value, WeightsNotFoundError)  # Hydra wraps it
    return error.value
