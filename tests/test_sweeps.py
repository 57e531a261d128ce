"""Sweeps: one folder and one W&B run per job, failing jobs reported without stopping the others,
Optuna searches that follow monitor.mode, and debug configs that fit every experiment."""

from __future__ import annotations

import math
from contextlib import contextmanager

import pytest
import yaml
from helpers import ROOT, TINY_SWEEP_JOB, one_thread, run_train  # noqa: F401  (one_thread: an autouse fixture)
from omegaconf import open_dict, read_write

from ganstyle.config import ConfigError
from ganstyle.run.loggers import make_wandb_logger
from ganstyle.run.sweeps import ReportFailedJobs, failed_jobs, report_failures_in_multirun
from ganstyle.run.training import train
from ganstyle.utils.hydra_jobs import FAILED_FILE

TINY = TINY_SWEEP_JOB


@contextmanager
def multirun_job(cfg, number: int = 0):
    """Make `cfg`'s job look like job `number` of `python train.py -m ...` for the duration."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    with read_write(cfg.hydra), open_dict(cfg.hydra):
        cfg.hydra.mode = RunMode.MULTIRUN
        cfg.hydra.job.num = number
    HydraConfig.instance().set_config(cfg)
    try:
        yield cfg
    finally:
        with read_write(cfg.hydra), open_dict(cfg.hydra):
            cfg.hydra.mode = RunMode.RUN
        HydraConfig.instance().set_config(cfg)


def test_basic_sweep_gives_each_job_a_folder_and_run_and_survives_a_failing_job(failing_sweep):
    sweep_dir, result = failing_sweep.sweep_dir, failing_sweep.result
    output = result.stdout + result.stderr
    assert result.returncode != 0, "a sweep with a failed job must not exit 0"
    assert "1 job(s) of the sweep" in output and "cycle_weight" in output, result.stdout[-3000:]

    failure = (sweep_dir / "0" / FAILED_FILE).read_text()
    assert "overrides:" in failure and "loss.cycle_weight=-1" in failure and "is negative" in failure
    assert (sweep_dir / "failed_jobs.txt").read_text().startswith("0: ConfigError")
    assert not (sweep_dir / "0" / "checkpoints").exists()

    run_ids = set()
    for job in ("1", "2"):
        assert (sweep_dir / job / "checkpoints" / "last.ckpt").is_file(), job
        assert not (sweep_dir / job / FAILED_FILE).exists()
        runs = list((sweep_dir / job / "wandb").glob("offline-run-*"))
        assert len(runs) == 1, f"job {job} has {len(runs)} W&B runs"
        run_ids.add(runs[0].name.rsplit("-", 1)[1])
        # The run record holds the job's run name; the group is checked in-process below.
        assert f"train-{job}".encode() in next(runs[0].glob("run-*.wandb")).read_bytes()
    assert len(run_ids) == 2, "the two jobs must log into two different W&B runs"
    overrides = yaml.safe_load((sweep_dir / "2" / ".hydra" / "overrides.yaml").read_text())
    assert "loss.cycle_weight=10" in overrides
    assert not (failing_sweep.cwd / "wandb").exists(), "W&B files were written into the working directory"


@pytest.mark.slow  # 20 s: three Optuna trials (the search config is composed and checked by default)
def test_optuna_search_runs_its_trials_and_writes_the_best_parameters(tmp_path, cache_dir):
    sweep_dir = tmp_path / "search"
    result = run_train(
        "hparams_search=cyclegan_optuna",
        "hydra.sweeper.n_trials=2",
        *TINY,
        "logger=none",
        f"hydra.sweep.dir={sweep_dir}",
        cwd=tmp_path,
        cache=cache_dir,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert set(results["best_params"]) == {"loss.cycle_weight", "loss.identity_weight", "model.optimizer.lr"}
    assert math.isfinite(results["best_value"])
    for trial in ("0", "1"):
        assert (sweep_dir / trial / "checkpoints" / "last.ckpt").is_file(), trial
    assert "Directions: ['maximize']" in result.stdout + result.stderr  # monitor.mode=max (val/psnr_B)
    page = (sweep_dir / "report.html").read_text(encoding="utf-8")  # written when the search ends
    assert "Optuna search" in page and "<section id='history'>" in page
    assert "data-job='0'" in page and "data-job='1'" in page


@pytest.mark.parametrize(("mode", "direction"), [("max", "maximize"), ("min", "minimize")])
def test_optuna_direction_follows_monitor_mode(compose_config, mode, direction):
    cfg = compose_config("hparams_search=cyclegan_optuna", f"monitor.mode={mode}")
    assert cfg.hydra.sweeper.direction == direction
    assert cfg.hydra.sweeper._target_.endswith("OptunaSweeper")


def test_a_failing_multirun_job_returns_none_and_writes_its_report(compose_config, tmp_path):
    def failing_task(cfg):
        raise ConfigError("loss.cycle_weight=-1 is negative.")

    task = report_failures_in_multirun(failing_task, explain=str)
    cfg = compose_config(output_dir=tmp_path / "3")
    with pytest.raises(ConfigError):  # a single run raises as usual
        task(cfg)
    assert not (tmp_path / "3" / FAILED_FILE).exists()

    with multirun_job(cfg, number=3):
        assert task(cfg) is None
    report = (tmp_path / "3" / FAILED_FILE).read_text()
    assert report.startswith("job: 3\n") and "ConfigError: loss.cycle_weight=-1 is negative." in report
    assert "Traceback" in report
    assert failed_jobs(tmp_path) == [tmp_path / "3" / FAILED_FILE]


def test_interrupts_still_stop_a_multirun(compose_config, tmp_path):
    def interrupted_task(cfg):
        raise KeyboardInterrupt

    cfg = compose_config(output_dir=tmp_path / "0")
    with multirun_job(cfg), pytest.raises(KeyboardInterrupt):
        report_failures_in_multirun(interrupted_task)(cfg)


def test_sweep_end_lists_failed_jobs_and_exits_with_status_1(compose_config, tmp_path, caplog):
    cfg = compose_config()
    with read_write(cfg.hydra):
        cfg.hydra.sweep.dir = str(tmp_path)
    ReportFailedJobs().on_multirun_end(config=cfg)  # nothing failed: nothing to report
    for job, error in (("2", "ValueError: bad"), ("10", "ConfigError: worse")):
        (tmp_path / job).mkdir()
        (tmp_path / job / FAILED_FILE).write_text(f"job: {job}\noverrides: x\nerror: {error}\n")
    with pytest.raises(SystemExit) as exit_info:
        ReportFailedJobs().on_multirun_end(config=cfg)
    assert exit_info.value.code == 1 and "2 job(s) of the sweep" in caplog.text
    assert (tmp_path / "failed_jobs.txt").read_text() == "2: ValueError: bad\n10: ConfigError: worse\n"


def test_wandb_runs_of_a_multirun_are_grouped_by_sweep_folder(compose_config, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_DIR", raising=False)  # make_wandb_logger sets it; restored afterwards
    cfg = compose_config()
    single = make_wandb_logger(name="train", save_dir=str(tmp_path), mode="disabled")
    assert single._wandb_init["group"] is None and single._wandb_init["name"] == "train"
    with read_write(cfg.hydra):
        cfg.hydra.sweep.dir = str(tmp_path / "2026-01-02_03-04-05-678901")
    with multirun_job(cfg, number=4):
        job = make_wandb_logger(name="train", save_dir=str(tmp_path), mode="disabled")
        explicit = make_wandb_logger(name="train", group="mine", save_dir=str(tmp_path), mode="disabled")
    assert job._wandb_init["group"] == "2026-01-02_03-04-05-678901"
    assert job._wandb_init["name"] == "train-4"
    assert explicit._wandb_init["group"] == "mine"


def experiments() -> list[str]:
    return sorted(path.stem for path in (ROOT / "conf" / "experiment").glob("*.yaml"))


def models() -> list[str]:
    return sorted(path.stem for path in (ROOT / "conf" / "model").glob("*.yaml"))


@pytest.mark.parametrize(
    "selection",
    [f"model={name}" for name in models()]  # each model's quick start
    + [f"experiment={name}" for name in experiments() if not name.endswith("_quickstart")],
)
def test_debug_smoke_limits_every_experiment_to_a_few_batches(compose_config, selection):
    cfg = compose_config(selection, "debug=smoke")
    assert cfg.trainer.limit_train_batches == 2 and cfg.trainer.limit_val_batches == 1
    assert cfg.trainer.max_epochs == 1 and cfg.callbacks.translate_test_set.max_images == 2
    assert cfg.hydra.runtime.choices.logger == "none" and cfg.task_name == "debug"


@pytest.mark.slow  # a minute: every model's quick start in one multirun (each is validated by default)
def test_every_model_quick_start_runs_under_debug_smoke_in_one_multirun(tmp_path):
    # What `python train.py -m 'model=glob(*)' debug=smoke` promises: every model's default
    # experiment on its embedded data trains, validates and writes its outputs.
    sweep = tmp_path / "sweep"
    result = run_train(
        "-m",
        "model=glob(*)",
        "debug=smoke",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
        cache=tmp_path / "cache",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (sweep / "failed_jobs.txt").exists()
    jobs = sorted(path for path in sweep.iterdir() if path.is_dir() and path.name.isdigit())
    assert len(jobs) == len(models())
    for job in jobs:
        assert (job / "checkpoints" / "last.ckpt").is_file(), job


def test_debug_smoke_runs_an_experiment_in_process(compose_config, tmp_path):
    # Network sizes are each experiment's business; TINY shrinks them for the test's time budget.
    cfg = compose_config("debug=smoke", *TINY[:7], output_dir=tmp_path / "run")
    assert train(cfg) is not None
    assert len(list((tmp_path / "run" / "images").glob("train_*.png"))) == 2  # a grid per batch
    assert len(list((tmp_path / "run" / "translations" / "AtoB").glob("*.png"))) == 2


def test_debug_fdr_and_overfit_set_their_trainer_modes(compose_config):
    fdr = compose_config("debug=fdr")
    assert fdr.trainer.fast_dev_run is True
    overfit = compose_config("debug=overfit")
    assert overfit.trainer.overfit_batches == 2 and overfit.model.scheduler is None


@pytest.mark.slow
def test_submitit_local_launcher_runs_a_job(tmp_path, cache_dir):
    sweep_dir = tmp_path / "sweep"
    result = run_train(
        "-m",
        "hydra/launcher=submitit_local",
        *TINY,
        "logger=none",
        f"hydra.sweep.dir={sweep_dir}",
        cwd=tmp_path,
        cache=cache_dir,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (sweep_dir / "0" / "checkpoints" / "last.ckpt").is_file()
    assert list((sweep_dir / ".submitit").glob("*/*_result.pkl"))
    # job.yaml is written in the job's own process, the sweep page in the launching one
    assert yaml.safe_load((sweep_dir / "0" / "job.yaml").read_text())["status"] == "returned"
    assert "data-job='0'" in (sweep_dir / "report.html").read_text(encoding="utf-8")
