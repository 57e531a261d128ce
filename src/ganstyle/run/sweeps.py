"""Multirun jobs that stay independent: a failing job is recorded and the sweep goes on.

``python train.py -m loss.cycle_weight=5,10`` runs one job per point, each in
``outputs/<task>/multiruns/<timestamp>/<job number>/`` with its own W&B run, grouped under the sweep
folder's name (see :func:`ganstyle.utils.hydra_jobs.sweep_group_name`). In a multirun,
:func:`report_failures_in_multirun` turns a job's exception into

- the traceback in the job's log and in ``<job dir>/FAILED`` (with the job's overrides),
- a return value of ``None``, which the basic sweeper ignores and the Optuna sweeper records as a
  failed trial (a NaN would make Optuna 2.10's ``tell`` raise and end the study),

so the other jobs still run. :class:`ReportFailedJobs` (a Hydra callback in conf/hydra/default.yaml)
lists the failed jobs when the sweep ends and exits with status 1, after every job has run and the
sweeper has written its results. A single run (no ``-m``) raises as usual.
"""

from __future__ import annotations

import functools
import logging
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from ganstyle.run.ranks import process_rank
from ganstyle.utils.hydra_jobs import (
    FAILED_FILE,
    is_multirun,
    job_number,
    running_hydra_config,
)

log = logging.getLogger(__name__)


def report_failures_in_multirun(
    task: Callable[[DictConfig], Any], explain: Callable[[BaseException], str | None] | None = None
) -> Callable[[DictConfig], Any]:
    """Wrap a Hydra task so that, in a multirun, an exception ends only its own job.

    ``explain(error)`` returns the one-paragraph message of an error the user can fix (a bad value in
    this sweep point), which is logged without a traceback; other errors are logged with theirs.
    KeyboardInterrupt and SystemExit still stop the sweep: Ctrl-C or a SIGTERM means stop everything.
    """

    @functools.wraps(task)
    def run(cfg: DictConfig) -> Any:
        if not is_multirun():
            return task(cfg)
        try:
            return task(cfg)
        except Exception as error:
            message = explain(error) if explain is not None else None
            if message is None:
                log.exception("job %s failed; the sweep goes on with the other jobs", job_number())
            else:
                log.error("job %s failed; the sweep goes on with the other jobs: %s", job_number(), message)
            write_failure_report(error, message)
            return None

    return run


def write_failure_report(error: BaseException, message: str | None = None) -> Path | None:
    """Write ``<job dir>/FAILED`` (``FAILED.rank<k>`` from other ranks): overrides, error, traceback."""
    hydra_cfg = running_hydra_config()
    if hydra_cfg is None:
        return None
    job_dir = Path(str(hydra_cfg.runtime.output_dir))
    rank = process_rank()
    path = job_dir / (FAILED_FILE if rank == 0 else f"{FAILED_FILE}.rank{rank}")
    overrides = " ".join(hydra_cfg.overrides.task)
    lines = [
        f"job: {hydra_cfg.job.num}",
        f"overrides: {overrides}",
        f"error: {type(error).__name__}: {message or error}",
        "",
        "".join(traceback.format_exception(type(error), error, error.__traceback__)),
    ]
    try:
        job_dir.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines))
    except OSError as write_error:  # the job already failed; do not hide why
        log.error("could not write %s: %s", path, write_error)
        return None
    return path


def failed_jobs(sweep_dir: str | Path) -> list[Path]:
    """The FAILED files of a sweep folder's jobs, in job order."""
    root = Path(sweep_dir)
    if not root.is_dir():
        return []
    found = [path for path in root.glob(f"*/{FAILED_FILE}") if path.parent.name.isdigit()]
    return sorted(found, key=lambda path: int(path.parent.name))


class ReportFailedJobs(Callback):
    """Hydra callback: at the end of a multirun, list the failed jobs and exit with status 1.

    The exit is a SystemExit because Hydra turns any Exception raised by a callback into a warning,
    and a sweep with failed jobs must not look like a success to a shell or a CI job.
    """

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        failures = failed_jobs(sweep_dir)
        if not failures:
            return
        summary = [f"{path.parent.name}: {_first_error_line(path)}" for path in failures]
        (sweep_dir / "failed_jobs.txt").write_text("\n".join(summary) + "\n")
        log.error(
            "%d job(s) of the sweep in %s failed; the other jobs ran to the end. Failed: %s. Each failed "
            "job's folder holds a FAILED file with its overrides and traceback; the list is also in %s.",
            len(failures),
            sweep_dir,
            "; ".join(summary),
            sweep_dir / "failed_jobs.txt",
        )
        raise SystemExit(1)


class CheckSearchObjective(Callback):
    """Hydra callback: refuse an optimising search (Optuna) with no metric it can optimise, before
    the first trial, with one paragraph on stderr and exit status 1 (see
    :func:`ganstyle.run.monitoring.check_search_metric`). Other sweeps pass untouched."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if "direction" not in (config.hydra.get("sweeper") or {}):
            return
        from ganstyle.run.monitoring import check_search_metric
        from ganstyle.run.user_errors import user_error_message

        try:
            check_search_metric(config)
        except Exception as error:
            message = user_error_message(error)
            if message is None:
                raise
            # SystemExit, not an Exception: Hydra turns a callback's exceptions into warnings.
            print(f"Error: {message}", file=sys.stderr)
            raise SystemExit(1) from error


def _first_error_line(path: Path) -> str:
    for line in path.read_text().splitlines():
        if line.startswith("error: "):
            return line[len("error: ") :]
    return "unknown error"


def wandb_run_name(name: str | None) -> str | None:
    """Each multirun job's W&B run is named ``<name>-<job number>``; a single run keeps ``name``."""
    number = job_number()
    if number is None or name is None:
        return name
    return f"{name}-{number}"
