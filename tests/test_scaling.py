"""Scale-out: DDP gives the single-process result, rank 0 alone writes, precision and layout switches.

The DDP checks run `python train.py -m trainer=ddp_sim` (two gloo processes on the CPU) once per
module and compare it with a single process that sees the same images in one batch.
"""

from __future__ import annotations

import csv
import math
import subprocess
from contextlib import contextmanager
from pathlib import Path

import hydra
import lightning.pytorch as pl
import pytest
import torch
from helpers import ROOT, one_thread, run_train  # noqa: F401  (one_thread: an autouse fixture)
from lightning.pytorch.strategies.launchers.multiprocessing import _MultiProcessingLauncher
from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import open_dict, read_write

from ganstyle.callbacks import ImageGrids, RunSummary, TranslateTestSet
from ganstyle.config import ConfigError
from ganstyle.models.base import build_model
from ganstyle.models.cyclegan import CycleGAN
from ganstyle.run.distributed import build_trainer, slurm_tasks_per_node
from ganstyle.run.loggers import make_wandb_logger
from ganstyle.run.training import train
from ganstyle.utils.ddp import find_unused_parameters_for_gans

TINY = (
    "model.generator.ngf=8",
    "model.generator.netG=resnet_1blocks",
    "model.discriminator.ndf=8",
    "data.n_test=4",
    "trainer.limit_val_batches=1",
    "callbacks.progress_bar=null",
)
# Two training images: under DDP each rank takes one (Lightning's DistributedSampler always shuffles
# training data, so only a 2-image set gives both ranks together exactly the single process's batch).
# load == crop and no flip make the transforms deterministic; pool 0 and SGD make an update a plain
# function of the gradient, so a DDP step and a union-batch step must agree to float rounding.
UNION_BATCH = (
    *TINY,
    "data.n_train=2",
    "data.load_size=32",
    "data.crop_size=32",
    "data.flip=false",
    "data.serial_batches=true",
    "model.pool_size=0",
    "model.optimizer._target_=torch.optim.SGD",
    "~model.optimizer.betas",
    "model.optimizer.lr=0.01",
    "trainer.max_epochs=2",
)
NETWORKS = ("G_AB", "G_BA", "D_A", "D_B")


def network_parameters(state_dict: dict[str, torch.Tensor], network: str) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state_dict.items() if k.startswith(network + ".") and v.is_floating_point()}


def read_metrics(csv_path: Path) -> dict[str, float]:
    """The last logged value of every column of a CSVLogger metrics file."""
    values: dict[str, float] = {}
    with csv_path.open() as handle:
        for row in csv.DictReader(handle):
            values.update({key: float(value) for key, value in row.items() if value not in ("", None)})
    return values


@pytest.fixture(scope="module")
def ddp_sweep(tmp_path_factory, cache_dir) -> tuple[Path, subprocess.CompletedProcess]:
    """One `-m trainer=ddp_sim` job with W&B, TensorBoard and CSV; returns its sweep folder."""
    work = tmp_path_factory.mktemp("ddp_sweep")
    sweep_dir = work / "sweep"
    result = run_train(
        "-m",
        *UNION_BATCH,
        f"data.cache_dir={cache_dir}/embedded_two",
        "trainer=ddp_sim",
        "logger=many",
        f"hydra.sweep.dir={sweep_dir}",
        cwd=work,
        cache=cache_dir,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return sweep_dir, result


@pytest.mark.slow  # the ddp_sweep fixture: two CPU processes under -m, about 40 s
def test_ddp_sim_under_multirun_runs_as_one_job_with_ddp_spawn(ddp_sweep):
    sweep_dir, result = ddp_sweep
    # Plain ddp would make rank 1 re-run the sweep: a second job folder or a hang. One job, spawned.
    assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir()) == ["0"]
    assert "uses ddp_spawn instead" in result.stdout + result.stderr
    assert "strategy: ddp_spawn" in (sweep_dir / "0" / "csv" / "hparams.yaml").read_text()


@pytest.mark.slow  # the ddp_sweep fixture: two CPU processes under -m, about 40 s
def test_ddp_step_equals_single_process_step_on_the_union_batch(
    ddp_sweep, compose_config, tmp_path, cache_dir
):
    sweep_dir, _ = ddp_sweep
    overrides = (*UNION_BATCH, f"data.cache_dir={cache_dir}/embedded_two", "data.batch_size=2", "logger=csv")
    cfg = compose_config(*overrides, output_dir=tmp_path / "single")
    train(cfg)
    # The starting weights, built as train() builds them (seed, then data module, then model).
    pl.seed_everything(cfg.seed, workers=True)
    hydra.utils.instantiate(cfg.data, _convert_="all")
    initial = build_model(cfg.model).state_dict()

    ddp = torch.load(sweep_dir / "0/checkpoints/last.ckpt", map_location="cpu", weights_only=False)
    single = torch.load(tmp_path / "single/checkpoints/last.ckpt", map_location="cpu", weights_only=False)
    for network in NETWORKS:
        ddp_params = network_parameters(ddp["state_dict"], network)
        single_params = network_parameters(single["state_dict"], network)
        moved = max((single_params[k] - initial[k]).abs().max().item() for k in single_params)
        differs = max((single_params[k] - ddp_params[k]).abs().max().item() for k in single_params)
        # Two SGD steps (lr 0.01) on gradients that agree to float32 summation order (measured:
        # 1.4e-5 absolute on gradients up to 9, i.e. 1e-7 after the lr): 1e-5 leaves a wide margin,
        # while a network stepped on one rank's gradient alone would be off by about `moved`.
        assert moved > 1e-3, f"{network} barely trained ({moved}); the comparison would prove nothing"
        assert differs < 1e-5, f"{network}: DDP and single-process weights differ by {differs}"

    # Validation metrics are synchronised: the two ranks' halves give the single process's value.
    ddp_metrics = read_metrics(sweep_dir / "0/csv/metrics.csv")
    single_metrics = read_metrics(tmp_path / "single/csv/metrics.csv")
    for name in ("val/psnr_B", "val/ssim_B", "val/loss_cycle_A", "val/loss_cycle_B"):
        assert ddp_metrics[name] == pytest.approx(single_metrics[name], rel=1e-4, abs=1e-5), name


@pytest.mark.slow  # the ddp_sweep fixture: two CPU processes under -m, about 40 s
def test_ddp_run_writes_one_set_of_outputs_and_one_wandb_run_in_its_folder(ddp_sweep):
    sweep_dir, _ = ddp_sweep
    job = sweep_dir / "0"
    runs = list((job / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, runs
    run = runs[0]
    assert list(run.glob("run-*.wandb")) and (run / "files").is_dir()
    # Grids logged by rank 0 (a spawned process attached to the run) land in this run's folder.
    assert list(run.glob("files/media/images/**/*.png"))
    assert not (sweep_dir.parent / "wandb").exists(), "a process wrote W&B files into the working directory"
    assert len(list((job / "images").glob("val_*.png"))) == 2  # one grid per epoch, not per rank
    assert len(list((job / "translations" / "AtoB").glob("*.png"))) == 4
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags: dict[str, list[str]] = {"images": [], "scalars": []}
    for events in (job / "tensorboard").glob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        for kind in tags:
            tags[kind] += accumulator.Tags()[kind]
    assert "val/images" in tags["images"] and "val/psnr_B" in tags["scalars"]


def test_other_ranks_write_no_images_translations_summaries_or_wandb_runs(monkeypatch, tmp_path):
    monkeypatch.setattr(rank_zero_only, "rank", 1)
    monkeypatch.delenv("WANDB_DIR", raising=False)  # make_wandb_logger sets it; restored afterwards
    grids = ImageGrids(dirpath=str(tmp_path / "images"))
    grids._save(trainer=None, pl_module=None, batch={}, stage="val")
    translate = TranslateTestSet(dirpath=str(tmp_path / "translations"))
    translate.on_fit_end(trainer=None, pl_module=None)
    RunSummary(output_dir=str(tmp_path)).on_fit_end(trainer=None, pl_module=None)
    logger = make_wandb_logger(save_dir=str(tmp_path), mode="offline")
    logger.log_hyperparams({"a": 1})
    assert type(logger.experiment).__name__ == "_DummyExperiment"
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # not even an empty wandb/ run folder


def test_ddp_strategies_get_find_unused_parameters_for_gan_steps():
    trainer = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp", logger=False)
    assert not trainer.strategy._ddp_kwargs.get("find_unused_parameters")
    find_unused_parameters_for_gans(trainer.strategy)
    assert trainer.strategy._ddp_kwargs["find_unused_parameters"] is True
    single = pl.Trainer(accelerator="cpu", devices=1, logger=False)
    find_unused_parameters_for_gans(single.strategy)  # not DDP: nothing to do, no error


@contextmanager
def multirun_mode(cfg):
    """Make `cfg`'s job look like a job of `python train.py -m ...` for the duration."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    with read_write(cfg.hydra), open_dict(cfg.hydra):
        cfg.hydra.mode = RunMode.MULTIRUN
    HydraConfig.instance().set_config(cfg)
    try:
        yield cfg
    finally:
        with read_write(cfg.hydra), open_dict(cfg.hydra):
            cfg.hydra.mode = RunMode.RUN
        HydraConfig.instance().set_config(cfg)


def test_multirun_replaces_script_relaunching_ddp_and_keeps_it_in_single_runs(compose_config):
    cfg = compose_config("trainer=ddp_sim", "logger=none")
    trainer = build_trainer(cfg, logger=False)
    assert isinstance(trainer.strategy.launcher, _SubprocessScriptLauncher)
    assert cfg.trainer.strategy == "ddp"

    with multirun_mode(cfg):
        trainer = build_trainer(cfg, logger=False)
    assert isinstance(trainer.strategy.launcher, _MultiProcessingLauncher)
    assert cfg.trainer.strategy == "ddp_spawn"  # recorded, so logged configs say what ran


def test_bf16_mixed_with_channels_last_trains_under_autocast_with_finite_losses(
    compose_config, tmp_path, monkeypatch
):
    seen = []
    original_step = CycleGAN.training_step

    def recording_step(self, batch, batch_idx):
        seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
        seen.append(self.G_AB.model[1].weight.is_contiguous(memory_format=torch.channels_last))
        return original_step(self, batch, batch_idx)

    monkeypatch.setattr(CycleGAN, "training_step", recording_step)
    cfg = compose_config(
        *TINY,
        "data.n_train=4",
        "data.load_size=36",
        "data.crop_size=32",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "trainer.log_every_n_steps=1",
        "trainer.precision=bf16-mixed",
        "performance.channels_last=true",
        "logger=csv",
        output_dir=tmp_path / "run",
    )
    value = train(cfg)
    assert seen and all(item in ((True, torch.bfloat16), True) for item in seen), seen
    metrics = read_metrics(tmp_path / "run/csv/metrics.csv")
    for name in ("train/loss_G", "train/loss_D_A", "train/loss_D_B"):
        assert math.isfinite(metrics[name]), name
    assert value is not None and math.isfinite(value)


def test_channels_last_networks_compute_what_contiguous_ones_do(compose_config):
    cfg = compose_config(*TINY)
    torch.manual_seed(0)
    model = build_model(cfg.model)
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        expected = model.G_AB(images)
    model.set_performance_options(channels_last=True)
    model.setup("fit")
    model.setup("validate")  # applied once, however often Lightning calls setup
    conv = model.D_A.model[0]
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        output = model.G_AB(images)  # the pre-hook converts the NCHW input
    assert torch.allclose(output, expected, atol=1e-5)


def test_slurm_launcher_asks_for_one_task_and_gpu_per_device(compose_config):
    cfg = compose_config(
        "hydra/launcher=slurm", "trainer=multinode", "trainer.devices=8", "trainer.num_nodes=2"
    )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (2, 8, 8)
    cpu = compose_config("hydra/launcher=slurm", "trainer=cpu")
    assert (cpu.hydra.launcher.tasks_per_node, cpu.hydra.launcher.gpus_per_node) == (1, 0)
    with pytest.raises(ConfigError, match="trainer.devices to be the number of devices per node"):
        slurm_tasks_per_node(-1)
    with pytest.raises(Exception, match="trainer.devices"):
        _ = compose_config("hydra/launcher=slurm", "trainer=ddp").hydra.launcher.tasks_per_node


@pytest.mark.slow
def test_ddp_sim_single_run_relaunches_the_script_and_trains(tmp_path, cache_dir):
    run_dir = tmp_path / "run"
    result = run_train(
        *UNION_BATCH,
        f"data.cache_dir={cache_dir}/embedded_two",
        "trainer=ddp_sim",
        "logger=csv",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
        cache=cache_dir,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (run_dir / "checkpoints/last.ckpt").is_file()
    assert "strategy: ddp\n" in (run_dir / "csv/hparams.yaml").read_text()


@pytest.mark.slow
def test_compile_switch_trains(compose_config, tmp_path):
    cfg = compose_config(
        *TINY,
        "data.n_train=2",
        "data.load_size=36",
        "data.crop_size=32",
        "trainer.max_epochs=1",
        "performance.compile=true",
        "logger=none",
        output_dir=tmp_path / "run",
    )
    assert math.isfinite(train(cfg))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed"])
def test_mixed_precision_on_gpu_trains_with_finite_losses(compose_config, tmp_path, precision):
    cfg = compose_config(
        *TINY,
        "data.n_train=4",
        "data.load_size=36",
        "data.crop_size=32",
        "trainer=gpu",
        "trainer.max_epochs=1",
        "trainer.log_every_n_steps=1",
        f"trainer.precision={precision}",
        "logger=csv",
        output_dir=tmp_path / "run",
    )
    value = train(cfg)
    metrics = read_metrics(tmp_path / "run/csv/metrics.csv")
    assert all(math.isfinite(metrics[name]) for name in ("train/loss_G", "train/loss_D_A", "train/loss_D_B"))
    assert value is not None and math.isfinite(value)
