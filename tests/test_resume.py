"""Resuming: a resumed run ends where an uninterrupted one ends, SIGTERM leaves a checkpoint that
resumes, a requeued SLURM job picks its run up again, an earlier run's folder is never overwritten,
and a checkpoint of another model or config is refused before fitting."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from ganstyle.config import ConfigError
from ganstyle.models.base import build_model
from ganstyle.run.resuming import (
    CheckpointMismatchError,
    check_resume_compatible,
    check_reused_run_dir_in_argv,
)
from ganstyle.run.training import resolve_ckpt_path, train

ROOT = Path(__file__).resolve().parents[1]
TINY = (
    "model.generator.ngf=8",
    "model.generator.netG=resnet_1blocks",
    "model.discriminator.ndf=8",
    "data.n_train=8",
    "data.n_test=4",
    "trainer.limit_val_batches=1",
    "trainer.num_sanity_val_steps=0",
    "logger=none",
    "callbacks.progress_bar=null",
    "trainer.enable_model_summary=false",
    "~callbacks.translate_test_set",
    "~callbacks.run_summary",
)
# Shuffled order, random B picks, random crops and flips: all follow (data.seed, epoch), so a resumed
# run sees the batches of an uninterrupted one and can be compared with it weight for weight.
RANDOM_DATA = ("data.load_size=36", "data.crop_size=32")
# The learning rate halves in the second epoch, so comparing it shows the scheduler was restored.
# total_epochs=2 fixes the schedule to a 2-epoch run's, so the 1-epoch run is that run stopped halfway
# (by default the schedule follows trainer.max_epochs).
SCHEDULE = ("scheduler.n_epochs=1", "scheduler.n_epochs_decay=1", "scheduler.total_epochs=2")
STEPS_PER_BATCH = 2  # trainer.global_step counts the generator and the discriminator step


def epochs_of(batches: int) -> tuple[str, ...]:
    return (f"trainer.limit_train_batches={batches}",)


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def run_training(compose_config, run_dir: Path, *overrides: str, batches: int = 4) -> dict:
    """Train in-process as train.py would; return the run's final last.ckpt."""
    cfg = compose_config(*TINY, *epochs_of(batches), *RANDOM_DATA, *SCHEDULE, *overrides, output_dir=run_dir)
    train(cfg)
    return load(run_dir / "checkpoints" / "last.ckpt")


_FINISHED: dict[str, Path] = {}


@pytest.fixture
def finished_runs(compose_config, tmp_path_factory) -> dict[str, Path]:
    """A 2-epoch run and a 1-epoch run of the same config, trained once for this module."""
    if not _FINISHED:
        root = tmp_path_factory.mktemp("finished")
        run_training(compose_config, root / "two_epochs", "trainer.max_epochs=2")
        run_training(compose_config, root / "one_epoch", "trainer.max_epochs=1")
        _FINISHED.update(two_epochs=root / "two_epochs", one_epoch=root / "one_epoch")
    return _FINISHED


def last_of(finished_runs, name: str) -> Path:
    return finished_runs[name] / "checkpoints" / "last.ckpt"


def copy_run(source: Path, destination: Path) -> Path:
    shutil.copytree(source, destination)
    return destination


def learning_rate(checkpoint: dict) -> float:
    return checkpoint["optimizer_states"][0]["param_groups"][0]["lr"]


def assert_same_training_state(resumed: dict, uninterrupted: dict) -> None:
    assert resumed["epoch"] == uninterrupted["epoch"]
    assert resumed["global_step"] == uninterrupted["global_step"]
    for mine, theirs in zip(resumed["optimizer_states"], uninterrupted["optimizer_states"], strict=True):
        assert mine["param_groups"][0]["lr"] == theirs["param_groups"][0]["lr"]
    for domain in ("A", "B"):
        pool, reference = resumed["image_pools"][domain], uninterrupted["image_pools"][domain]
        assert len(pool["images"]) == len(reference["images"])
        assert all(torch.equal(a, b) for a, b in zip(pool["images"], reference["images"]))
    for name, weight in uninterrupted["state_dict"].items():
        assert torch.equal(resumed["state_dict"][name], weight), name


def test_resumed_run_ends_with_the_epoch_lr_pools_and_weights_of_an_uninterrupted_run(
    compose_config, finished_runs, tmp_path
):
    two, one = load(last_of(finished_runs, "two_epochs")), load(last_of(finished_runs, "one_epoch"))
    resumed = run_training(
        compose_config,
        tmp_path / "resumed",
        "trainer.max_epochs=2",
        f"ckpt_path={last_of(finished_runs, 'one_epoch')}",
    )
    assert learning_rate(one) != learning_rate(two)
    assert two["global_step"] == 2 * 4 * STEPS_PER_BATCH
    assert_same_training_state(resumed, two)


def test_a_run_extended_on_resume_trains_its_added_epoch_at_the_refitted_rate(
    compose_config, finished_runs, tmp_path
):
    two = load(last_of(finished_runs, "two_epochs"))
    assert learning_rate(two) == 0.0  # its 1 + 1 schedule is over: the rate saved for a third epoch
    extended = run_training(
        compose_config,
        tmp_path / "extended",
        "trainer.max_epochs=3",
        "scheduler.total_epochs=3",  # as ${trainer.max_epochs} gives it; SCHEDULE pins it to 2 above
        f"ckpt_path={last_of(finished_runs, 'two_epochs')}",
    )
    # 1 + 1 refitted to 3 epochs is 2 + 1: the third epoch trains at half the rate (not at 0) ...
    assert extended["epoch"] == two["epoch"] + 1
    changed = [
        name
        for name, weight in two["state_dict"].items()
        if not torch.equal(extended["state_dict"][name], weight)
    ]
    assert any(name.startswith("G_AB.") for name in changed), "the added epoch left the generator unchanged"
    # ... and ends where the refitted schedule ends.
    assert learning_rate(extended) == 0.0


def test_slurm_job_that_finds_a_checkpoint_in_its_run_folder_resumes_it(
    compose_config, finished_runs, tmp_path, monkeypatch
):
    run_dir = copy_run(finished_runs["one_epoch"], tmp_path / "slurm_123")
    monkeypatch.setenv("SLURM_JOB_ID", "123")  # the requeued job: same id, same folder, no ckpt_path
    resumed = run_training(compose_config, run_dir, "trainer.max_epochs=2")
    assert_same_training_state(resumed, load(last_of(finished_runs, "two_epochs")))
    # The copied (moved) folder keeps writing last.ckpt, so the next `ckpt_path=last` finds this state.
    assert not (run_dir / "checkpoints" / "last-v1.ckpt").exists()


def test_fresh_run_in_a_folder_holding_an_earlier_run_is_refused(compose_config, finished_runs):
    run_dir = finished_runs["one_epoch"]
    before = (run_dir / "checkpoints" / "last.ckpt").read_bytes()
    with pytest.raises(ConfigError) as error:
        train(compose_config(*TINY, output_dir=run_dir))
    message = str(error.value)
    assert f"The run folder {run_dir} already holds the outputs of an earlier run" in message
    assert "ckpt_path=last" in message and "\n" not in message
    assert (run_dir / "checkpoints" / "last.ckpt").read_bytes() == before


def test_resuming_with_another_generator_size_names_the_differing_key(
    compose_config, finished_runs, tmp_path
):
    checkpoint = last_of(finished_runs, "one_epoch")
    with pytest.raises(CheckpointMismatchError) as error:
        train(
            compose_config(
                *TINY, "model.generator.ngf=16", f"ckpt_path={checkpoint}", output_dir=tmp_path / "run"
            )
        )
    assert "generator.ngf: checkpoint 8, configured 16" in str(error.value)
    assert not (tmp_path / "run" / "checkpoints").exists()  # refused before fitting


def test_resume_allow_changed_lets_a_schedule_be_extended(compose_config, finished_runs):
    checkpoint = last_of(finished_runs, "one_epoch")
    cfg = compose_config(*TINY, "scheduler.n_epochs=5")
    model = build_model(cfg.model)
    with pytest.raises(CheckpointMismatchError, match=r"scheduler\.n_epochs: checkpoint 1, configured 5"):
        check_resume_compatible(checkpoint, model)
    check_resume_compatible(checkpoint, model, allow_changed=["scheduler"])


def test_a_checkpoint_resumes_with_batched_calls_switched_or_from_before_the_switch(
    compose_config, finished_runs, tmp_path
):
    checkpoint = last_of(finished_runs, "one_epoch")
    cfg = compose_config(*TINY, "model.batch_shared_calls=false")
    model = build_model(cfg.model)
    check_resume_compatible(checkpoint, model, allow_changed=["scheduler"])  # the run was 1 epoch
    older = torch.load(checkpoint, map_location="cpu", weights_only=False)
    del older["hyper_parameters"]["batch_shared_calls"]
    torch.save(older, tmp_path / "older.ckpt")
    check_resume_compatible(tmp_path / "older.ckpt", model, allow_changed=["scheduler"])


def test_checkpoint_of_another_model_class_is_refused_naming_both(compose_config, finished_runs, tmp_path):
    checkpoint = load(last_of(finished_runs, "one_epoch"))
    checkpoint["ganstyle_model_class"] = "ganstyle.models.pix2pix.Pix2Pix"
    torch.save(checkpoint, tmp_path / "other.ckpt")
    model = build_model(compose_config(*TINY).model)
    with pytest.raises(CheckpointMismatchError) as error:
        check_resume_compatible(tmp_path / "other.ckpt", model)
    assert "written by ganstyle.models.pix2pix.Pix2Pix" in str(error.value)
    assert "configured model is ganstyle.models.cyclegan.CycleGAN" in str(error.value)


def test_truncated_or_weights_only_checkpoint_is_refused_before_fitting(
    compose_config, finished_runs, tmp_path
):
    data = (last_of(finished_runs, "one_epoch")).read_bytes()
    (tmp_path / "truncated.ckpt").write_bytes(data[: len(data) // 2])
    torch.save(load(last_of(finished_runs, "one_epoch"))["state_dict"], tmp_path / "w.pt")
    model = build_model(compose_config(*TINY).model)
    with pytest.raises(ConfigError, match="is not a readable checkpoint"):
        check_resume_compatible(tmp_path / "truncated.ckpt", model)
    with pytest.raises(ConfigError, match="not a Lightning training checkpoint"):
        check_resume_compatible(tmp_path / "w.pt", model)


def test_ckpt_path_last_takes_the_newest_of_last_ckpt_and_the_slurm_checkpoints(tmp_path):
    last = tmp_path / "checkpoints" / "last.ckpt"
    last.parent.mkdir()
    last.write_bytes(b"epoch end")
    requeue = tmp_path / "hpc_ckpt_1.ckpt"  # Lightning's save on the SLURM requeue signal
    requeue.write_bytes(b"later")
    os.utime(last, ns=(1_000_000_000, 1_000_000_000))
    assert resolve_ckpt_path("last", tmp_path) == str(requeue)
    os.utime(requeue, ns=(1, 1))
    assert resolve_ckpt_path("last", tmp_path) == str(last)


def test_command_line_check_reads_the_run_folder_and_ckpt_path_from_argv(finished_runs):
    run_dir = finished_runs["one_epoch"]
    with pytest.raises(ConfigError, match="already holds the outputs of an earlier run"):
        check_reused_run_dir_in_argv(["train.py", f"hydra.run.dir='{run_dir}'"])
    check_reused_run_dir_in_argv(["train.py", f"hydra.run.dir={run_dir}", "ckpt_path=last"])
    check_reused_run_dir_in_argv(["train.py", "-m", f"hydra.run.dir={run_dir}"])  # sweeps: per job


# --- through train.py, as users run it -----------------------------------------------------------
def train_py(run_dir: Path, cache_dir: Path, *overrides: str, **popen) -> subprocess.Popen:
    """Start `python train.py` at tiny sizes, as a user would, with its own cache and offline W&B."""
    env = dict(os.environ, WANDB_MODE="offline", GANSTYLE_CACHE=str(cache_dir), HYDRA_FULL_ERROR="0")
    return subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *TINY, *overrides, f"hydra.run.dir={run_dir}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def test_train_py_refuses_a_reused_run_folder_before_hydra_touches_it(finished_runs, cache_dir, tmp_path):
    run_dir = copy_run(finished_runs["one_epoch"], tmp_path / "earlier")
    saved_config = run_dir / ".hydra" / "config.yaml"
    saved_config.parent.mkdir()
    saved_config.write_text("the earlier run's config\n")
    process = train_py(run_dir, cache_dir)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 1
    assert (
        stderr.startswith(f"Error: The run folder {run_dir} already holds the outputs")
        and "Traceback" not in stderr
    )
    assert saved_config.read_text() == "the earlier run's config\n"


def refused_checkpoint(kind: str, finished_runs, tmp_path: Path) -> str:
    """A ``ckpt_path`` value that resuming must refuse, of the given kind."""
    if kind == "missing file":
        return str(tmp_path / "no_such.ckpt")
    if kind == "a folder":
        return str(finished_runs["one_epoch"] / "checkpoints")
    if kind == "a text file":
        (tmp_path / "notes.ckpt").write_text("not a checkpoint\n")
        return str(tmp_path / "notes.ckpt")
    if kind == "a truncated file":
        data = last_of(finished_runs, "one_epoch").read_bytes()
        (tmp_path / "cut.ckpt").write_bytes(data[: len(data) // 2])
        return str(tmp_path / "cut.ckpt")
    if kind == "last in a new folder":
        return "last"
    if kind == "another model":
        checkpoint = load(last_of(finished_runs, "one_epoch"))
        checkpoint["ganstyle_model_class"] = "ganstyle.models.pix2pix.Pix2Pix"
        torch.save(checkpoint, tmp_path / "other.ckpt")
        return str(tmp_path / "other.ckpt")
    return str(last_of(finished_runs, "one_epoch"))  # with other network sizes


@pytest.mark.parametrize(
    ("kind", "overrides", "expected"),
    [
        ("missing file", (), "no checkpoint file at"),
        pytest.param(
            "last in a new folder", (), "ckpt_path='last': no checkpoint file at", marks=pytest.mark.slow
        ),
        pytest.param("a folder", (), "no checkpoint file at", marks=pytest.mark.slow),
        pytest.param("a text file", (), "notes.ckpt", marks=pytest.mark.slow),
        pytest.param("a truncated file", (), "cut.ckpt", marks=pytest.mark.slow),
        pytest.param(
            "other sizes",
            ("model.discriminator.n_layers=2",),
            "discriminator.n_layers: checkpoint 3, configured 2",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            "another model", (), "written by ganstyle.models.pix2pix.Pix2Pix", marks=pytest.mark.slow
        ),
    ],
)
def test_a_refused_resume_says_why_in_one_paragraph_and_leaves_no_run_folder(
    finished_runs, cache_dir, tmp_path, kind, overrides, expected
):
    run_dir = tmp_path / "new_run"
    checkpoint = refused_checkpoint(kind, finished_runs, tmp_path)
    process = train_py(run_dir, cache_dir, *overrides, f"ckpt_path={checkpoint}")
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 1, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and expected in errors[0], stderr
    assert "Traceback" not in stderr
    assert not run_dir.exists()  # no .hydra/ or train.log left in a folder this command made


def wait_for(condition, timeout: float, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"training exited early ({process.returncode}): {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"timed out; output: {process.communicate()}")
        time.sleep(0.05)


def test_sigterm_mid_epoch_saves_last_ckpt_and_the_run_resumes_from_it(compose_config, cache_dir, tmp_path):
    run_dir = tmp_path / "run"
    batches = 6  # epochs long enough that the signal lands mid-epoch even on a loaded machine
    # A grid per batch marks progress on disk: the second batch of epoch 1 is mid-epoch for sure.
    process = train_py(
        run_dir,
        cache_dir,
        *epochs_of(batches),
        *RANDOM_DATA,
        *SCHEDULE,
        "trainer.max_epochs=50",
        "callbacks.image_grids.every_n_batches=1",
    )
    second_batch_of_epoch_1 = run_dir / "images" / f"train_epoch001_batch{batches + 1:06d}.png"
    wait_for(second_batch_of_epoch_1.exists, timeout=300, process=process)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)

    assert process.returncode == 143, stderr
    assert "Stopped by SIGTERM at epoch 1" in stdout + stderr and "Traceback" not in stderr
    interrupted = load(run_dir / "checkpoints" / "last.ckpt")
    assert interrupted["epoch"] == 1
    done_batches = interrupted["global_step"] // STEPS_PER_BATCH
    assert batches + 2 <= done_batches < 2 * batches  # mid-epoch, after the marker

    resumed = run_training(compose_config, run_dir, "trainer.max_epochs=2", "ckpt_path=last", batches=batches)
    assert resumed["epoch"] == 1 and resumed["global_step"] == 2 * batches * STEPS_PER_BATCH
    assert not (run_dir / "checkpoints" / "last-v1.ckpt").exists()


class CtrlCAtBatch(pl.Callback):
    """Press Ctrl-C (a real SIGINT to this process) as training batch ``batch`` of epoch 0 starts."""

    def __init__(self, batch: int) -> None:
        self.batch = batch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.current_epoch == 0 and batch_idx == self.batch:
            signal.raise_signal(signal.SIGINT)


@pytest.mark.parametrize("batch", [0, pytest.param(2, marks=pytest.mark.slow)])
def test_ctrl_c_then_resume_leaves_the_metrics_csv_of_an_uninterrupted_run(compose_config, tmp_path, batch):
    """Every row logged before Ctrl-C reaches metrics.csv (the first step's too), so the resumed run's
    file equals the uninterrupted run's row for row: same steps, epochs and columns, same values."""
    every_step = ("trainer.log_every_n_steps=1", "trainer.max_epochs=2")
    run_training(compose_config, tmp_path / "uninterrupted", *every_step)
    interrupted = tmp_path / "interrupted"
    ctrl_c = (f"+callbacks.ctrl_c._target_={__name__}.CtrlCAtBatch", f"+callbacks.ctrl_c.batch={batch}")
    with pytest.raises(SystemExit) as stop:
        run_training(compose_config, interrupted, *every_step, *ctrl_c)
    assert stop.value.code == 130
    assert load(interrupted / "checkpoints" / "last.ckpt")["global_step"] == (batch + 1) * STEPS_PER_BATCH
    run_training(compose_config, interrupted, *every_step, "ckpt_path=last")

    def rows(run_dir: Path) -> list[dict[str, str]]:
        with (run_dir / "metrics.csv").open() as handle:
            return list(csv.DictReader(handle))

    resumed, reference = rows(interrupted), rows(tmp_path / "uninterrupted")
    assert [(row["step"], row["epoch"]) for row in resumed] == [
        (row["step"], row["epoch"]) for row in reference
    ]
    for mine, theirs in zip(resumed, reference, strict=True):
        assert {k for k, v in mine.items() if v} == {k for k, v in theirs.items() if v}
    # Up to the stop the two runs are one run; after it the resumed epoch draws its remaining batches
    # afresh (a mid-epoch checkpoint does not hold the loader's position), so values differ there.
    for mine, theirs in zip(resumed[: batch + 1], reference[: batch + 1], strict=True):
        assert mine == theirs


class LoggerStepProbe(pl.Callback):
    """Logs a value after every training batch; Lightning keeps it only on the steps its loggers write."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        pl_module.log("probe", 1.0, on_step=True, on_epoch=False, batch_size=1)


def test_training_values_are_logged_on_the_loggers_steps_before_and_after_a_resume(compose_config, tmp_path):
    """The model logs its training values only on the batches whose values the loggers write (every
    log_every_n_steps-th batch of the run, counted on across a resume): the same steps as a value
    logged on every batch."""
    every_third = (
        "trainer.log_every_n_steps=3",
        "trainer.max_epochs=3",
        f"+callbacks.probe._target_={__name__}.LoggerStepProbe",
    )
    ctrl_c = (f"+callbacks.ctrl_c._target_={__name__}.CtrlCAtBatch", "+callbacks.ctrl_c.batch=1")
    with pytest.raises(SystemExit):
        run_training(compose_config, tmp_path, *every_third, *ctrl_c)
    run_training(compose_config, tmp_path, *every_third, "ckpt_path=last")
    with (tmp_path / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    probe_steps = [int(row["step"]) for row in rows if row.get("probe")]
    model_steps = [int(row["step"]) for row in rows if row.get("train/loss_G")]
    assert probe_steps == [2, 5, 8, 11]  # 12 batches: the loggers write batches 3, 6, 9 and 12
    assert model_steps == probe_steps


# A one-batch CycleGAN (ngf=4) trained while the run modules sat at the package root: its saved
# .hydra/ names them there (ganstyle.checkpointing.*), its checkpoint names only models, networks and
# schedules, so it loads and resumes without those old module names.
EARLIER_LAYOUT_RUN = Path(__file__).resolve().parent / "data" / "run_folder_with_root_module_paths"


def test_a_checkpoint_of_an_earlier_package_layout_loads_for_inference():
    from ganstyle.inference.loading import load_model

    path = EARLIER_LAYOUT_RUN / "checkpoints" / "last.ckpt"
    model = load_model(path)
    saved = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    assert type(model).__name__ == "CycleGAN"
    for key, value in model.state_dict().items():
        assert torch.equal(value, saved[key]), key


def test_a_run_of_an_earlier_package_layout_resumes(compose_config, tmp_path):
    from omegaconf import OmegaConf

    run_dir = tmp_path / "run"
    shutil.copytree(EARLIER_LAYOUT_RUN, run_dir)
    overrides = OmegaConf.to_container(OmegaConf.load(run_dir / ".hydra" / "overrides.yaml"))
    saved = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    cfg = compose_config(*overrides, "trainer.max_epochs=2", "ckpt_path=last", output_dir=run_dir)
    train(cfg)
    resumed = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert saved["epoch"] == 0 and resumed["epoch"] == 1
    assert resumed["global_step"] == 2 * saved["global_step"]  # one more batch: a G and a D step
