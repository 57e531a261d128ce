"""Shared fixtures: Hydra's compose API over conf/, isolated caches and offline loggers."""

from __future__ import annotations

import os
import types
from pathlib import Path

import pytest
import torch

import ganstyle  # noqa: F401  (first: makes torchvision importable before lightning/torchmetrics)

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = ROOT / "conf"

os.environ["GANSTYLE_ROOT"] = str(ROOT)
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
# The cores this process may use: all of them (at most 2, for the few heavier tests) in a serial run,
# its share under pytest-xdist (`make test` runs one worker per core); intra-op threads only.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
torch.set_num_threads(max(1, min(2, (os.cpu_count() or 1) // _WORKERS)))


def cuda_available() -> bool:
    return torch.cuda.is_available()


requires_gpu = pytest.mark.skipif(not cuda_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One dataset/weights cache per test session, so the embedded dataset is built once."""
    path = tmp_path_factory.mktemp("ganstyle-cache")
    os.environ["GANSTYLE_CACHE"] = str(path)
    return path


@pytest.fixture
def compose_config(tmp_path, cache_dir):
    """Compose conf/train.yaml with overrides, as `python train.py <overrides>` would."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from ganstyle.config import rewrite_command_line

    def _compose(*overrides: str, output_dir: Path | None = None):
        GlobalHydra.instance().clear()
        args = rewrite_command_line(list(overrides), str(CONFIG_DIR))
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            cfg = compose("train", overrides=args, return_hydra_config=True)
        run_dir = output_dir or tmp_path / "run"
        run_dir.mkdir(parents=True, exist_ok=True)
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(run_dir)
            cfg.hydra.job.num = 0
        HydraConfig.instance().set_config(cfg)
        return cfg

    yield _compose
    GlobalHydra.instance().clear()


# A real 1-epoch CycleGAN training at tiny sizes, whose run folder the inference, export and report
# tests read. log_every_n_steps=1 so the three batches leave training curves.
TINY_CYCLEGAN_RUN = (
    "trainer.fast_dev_run=false",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=1",
    "trainer.log_every_n_steps=1",
    "data.n_train=8",
    "data.n_test=4",
    "model.generator.ngf=8",
    "model.generator.netG=resnet_1blocks",
    "model.discriminator.ndf=8",
    "logger=csv",
)
_TINY_RUN_DIRS: dict[str, Path] = {}


@pytest.fixture
def tiny_cyclegan_run(compose_config, tmp_path_factory) -> Path:
    """The folder of a finished tiny CycleGAN run, trained once per session (read it, do not change it).

    .hydra/config.yaml, hydra.yaml and overrides.yaml are written first, as a `python train.py` run does.
    """
    if "run" not in _TINY_RUN_DIRS:
        from omegaconf import OmegaConf, open_dict

        from ganstyle.run.training import train

        run_dir = tmp_path_factory.mktemp("tiny_cyclegan") / "2024-01-01_00-00-00-000000"
        cfg = compose_config(*TINY_CYCLEGAN_RUN, output_dir=run_dir)
        job_config = cfg.copy()
        with open_dict(job_config):
            del job_config["hydra"]
        (run_dir / ".hydra").mkdir()
        OmegaConf.save(job_config, run_dir / ".hydra" / "config.yaml")
        OmegaConf.save(OmegaConf.create({"hydra": cfg.hydra}), run_dir / ".hydra" / "hydra.yaml")
        OmegaConf.save(OmegaConf.create(list(TINY_CYCLEGAN_RUN)), run_dir / ".hydra" / "overrides.yaml")
        train(cfg)
        _TINY_RUN_DIRS["run"] = run_dir
    return _TINY_RUN_DIRS["run"]


@pytest.fixture(scope="session")
def failing_sweep(tmp_path_factory, cache_dir) -> types.SimpleNamespace:
    """`python train.py -m ... loss.cycle_weight=-1,5,10` at tiny sizes, run once per session (read it,
    do not change it): job 0 is invalid (a negative weight) and fails first, jobs 1 and 2 train.

    Returns ``sweep_dir``, ``cwd`` (where it ran) and ``result`` (the finished process)."""
    from helpers import TINY_SWEEP_JOB, run_train

    cwd = tmp_path_factory.mktemp("failing_sweep")
    sweep_dir = cwd / "sweep"
    result = run_train(
        "-m",
        *TINY_SWEEP_JOB,
        "loss.cycle_weight=-1,5,10",
        f"hydra.sweep.dir={sweep_dir}",
        cwd=cwd,
        cache=cache_dir,
    )
    return types.SimpleNamespace(sweep_dir=sweep_dir, cwd=cwd, result=result)
