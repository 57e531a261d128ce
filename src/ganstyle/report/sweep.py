"""Gather what a multirun folder says about its jobs, so they can be compared on one page.

A sweep folder (``outputs/<task>/multiruns/<timestamp>/``) holds one folder per job, named by its
number. For each job this reads

- its overrides (``.hydra/overrides.yaml``), of which the keys whose values differ between jobs are
  the *swept* keys;
- how it ended: ``FAILED`` (written by :func:`ganstyle.run.sweeps.write_failure_report`) means failed,
  with the error's first line; ``job.yaml`` (written by :class:`ganstyle.report.sweep_callback.
  SweepReport` when the job returns) or a ``checkpoints/last.ckpt`` means finished;
- the value the sweeper optimised and the wall time from ``job.yaml`` (older folders: the monitored
  metric's last value and the span of the job's file times);
- its validation metrics from ``metrics.csv`` (last and best of each) and its last validation grid.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf

from ganstyle.report.collect import MetricSummary, read_metrics, read_monitor, summarize
from ganstyle.utils.hydra_jobs import FAILED_FILE

JOB_FILE = "job.yaml"  # per job: number, status, objective, start time, wall time
SWEEP_MARKERS = ("multirun.yaml", "optimization_results.yaml", "failed_jobs.txt")
VALIDATION_STAGES = ("val/", "test/")


@dataclass
class JobRecord:
    number: int
    job_dir: Path
    overrides: dict[str, str] = field(default_factory=dict)
    status: str = "unfinished"  # finished | failed | unfinished (running, killed, or saved nothing)
    error: str | None = None
    monitor: tuple[str, str] | None = None  # (metric, "min" | "max")
    metrics: dict[str, MetricSummary] = field(default_factory=dict)  # validation metrics only
    objective: float | None = None  # what the job returned to the sweeper
    wall_seconds: float | None = None
    last_val_grid: Path | None = None
    has_report: bool = False

    @property
    def monitored(self) -> MetricSummary | None:
        return self.metrics.get(self.monitor[0]) if self.monitor else None

    @property
    def score(self) -> float | None:
        """The value the sweep is judged by: the returned objective, else the monitored final value."""
        if self.objective is not None and math.isfinite(self.objective):
            return self.objective
        monitored = self.monitored
        return monitored.last if monitored and math.isfinite(monitored.last) else None


@dataclass
class SweepRecord:
    sweep_dir: Path
    jobs: list[JobRecord] = field(default_factory=list)
    swept_keys: list[str] = field(default_factory=list)
    common_overrides: dict[str, str] = field(default_factory=dict)
    monitor: tuple[str, str] | None = None
    sweeper: str = "basic"  # basic | optuna (from the jobs' .hydra/hydra.yaml)
    optuna_results: dict[str, Any] | None = None  # optimization_results.yaml

    @property
    def metric_names(self) -> list[str]:
        """Every validation metric of any job; the monitored one first."""
        names = sorted({name for job in self.jobs for name in job.metrics})
        first = self.monitor[0] if self.monitor else None
        return sorted(names, key=lambda name: name != first)

    def best_job(self) -> JobRecord | None:
        scored = [job for job in self.jobs if job.status == "finished" and job.score is not None]
        if not scored or self.monitor is None:
            return None
        pick = min if self.monitor[1] == "min" else max
        return pick(scored, key=lambda job: job.score)


def job_folders(sweep_dir: Path) -> list[Path]:
    """The job folders of a sweep (numbered sub-folders with a .hydra/ folder), in job order."""
    if not sweep_dir.is_dir():
        return []
    found = [path for path in sweep_dir.iterdir() if path.is_dir() and path.name.isdigit()]
    return sorted((path for path in found if (path / ".hydra").is_dir()), key=lambda path: int(path.name))


def is_sweep_folder(path: Path) -> bool:
    """A multirun folder (not a run): Hydra's or the sweep's own files, or numbered job folders."""
    if (path / ".hydra").is_dir():
        return False
    return any((path / name).is_file() for name in SWEEP_MARKERS) or bool(job_folders(path))


def parse_overrides(items: list[str]) -> dict[str, str]:
    """``["loss.cycle_weight=5", "+x=1"] -> {"loss.cycle_weight": "5", "+x": "1"}``."""
    parsed = {}
    for item in items:
        key, _, value = str(item).partition("=")
        parsed[key] = value
    return parsed


def read_job_overrides(job_dir: Path) -> dict[str, str]:
    path = job_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return {}
    return parse_overrides(OmegaConf.to_container(OmegaConf.load(path)) or [])


def job_monitor(job_dir: Path) -> tuple[str, str] | None:
    path = job_dir / ".hydra" / "config.yaml"
    monitor = OmegaConf.load(path).get("monitor") if path.is_file() else None
    config = {"monitor": OmegaConf.to_container(monitor, resolve=False)} if monitor is not None else None
    return read_monitor(config, job_dir)


def first_error_line(failed_file: Path) -> str:
    for line in failed_file.read_text(errors="replace").splitlines():
        if line.startswith("error: "):
            return line[len("error: ") :]
    return "unknown error (see FAILED)"


def file_time_span(job_dir: Path) -> float | None:
    """Seconds from Hydra writing the job's config to the job's last written file (the page itself
    excluded): the wall time of a job that ran before job.yaml was written."""
    start_file = job_dir / ".hydra" / "config.yaml"
    if not start_file.is_file():
        return None
    times = [
        path.stat().st_mtime for path in job_dir.rglob("*") if path.is_file() and path.name != "report.html"
    ]
    return max(times) - start_file.stat().st_mtime if times else None


def collect_job(job_dir: Path) -> JobRecord:
    job = JobRecord(number=int(job_dir.name), job_dir=job_dir)
    job.overrides = read_job_overrides(job_dir)
    job.monitor = job_monitor(job_dir)
    metrics, _ = read_metrics(job_dir)
    job.metrics = {
        row.name: row for row in summarize(metrics, job.monitor) if row.name.startswith(VALIDATION_STAGES)
    }
    summary = yaml.safe_load((job_dir / JOB_FILE).read_text()) if (job_dir / JOB_FILE).is_file() else None
    summary = summary if isinstance(summary, dict) else {}
    if (job_dir / FAILED_FILE).is_file():
        job.status, job.error = "failed", first_error_line(job_dir / FAILED_FILE)
    elif summary.get("status") == "raised":  # an exception that reached Hydra itself
        job.status, job.error = "failed", str(summary.get("error") or "unknown error")
    elif summary or (job_dir / "checkpoints" / "last.ckpt").is_file():
        job.status = "finished"
    objective = summary.get("objective")
    job.objective = float(objective) if isinstance(objective, int | float) else None
    job.wall_seconds = summary.get("wall_seconds") or file_time_span(job_dir)
    grids = sorted((job_dir / "images").glob("val_*.png"))
    job.last_val_grid = grids[-1] if grids else None
    job.has_report = (job_dir / "report.html").is_file()
    return job


def read_sweeper(job_dir: Path) -> str:
    path = job_dir / ".hydra" / "hydra.yaml"
    if not path.is_file():
        return "basic"
    sweeper = OmegaConf.select(OmegaConf.load(path), "hydra.sweeper._target_", default="") or ""
    return "optuna" if "optuna" in str(sweeper).lower() else "basic"


def collect_sweep(sweep_dir: str | Path) -> SweepRecord:
    """Everything the sweep page shows about the jobs in ``sweep_dir``."""
    sweep_dir = Path(sweep_dir)
    record = SweepRecord(sweep_dir=sweep_dir, jobs=[collect_job(path) for path in job_folders(sweep_dir)])
    keys = list(dict.fromkeys(key for job in record.jobs for key in job.overrides))
    for key in keys:
        values = {job.overrides.get(key) for job in record.jobs}
        if len(values) > 1:
            record.swept_keys.append(key)
        else:
            record.common_overrides[key] = values.pop()
    monitors = Counter(job.monitor for job in record.jobs if job.monitor)
    record.monitor = monitors.most_common(1)[0][0] if monitors else None
    if record.jobs:
        record.sweeper = read_sweeper(record.jobs[0].job_dir)
    results = sweep_dir / "optimization_results.yaml"
    if results.is_file():
        record.sweeper = "optuna"
        record.optuna_results = yaml.safe_load(results.read_text())
    return record
