"""Hydra callback: record each multirun job's outcome, and write the sweep page when the sweep ends.

In conf/hydra/default.yaml. In each job's process (any launcher: the basic one runs jobs in the
launching process, submitit in its own) ``on_job_end`` writes ``<job dir>/job.yaml``: the job's number,
whether it returned, failed (its error caught so the sweep goes on: a ``FAILED`` file) or
raised, the value it returned to the sweeper and its wall time. In the
launching process ``on_multirun_end`` writes ``<sweep dir>/report.html`` (see
:mod:`ganstyle.report.sweep_html`), also when jobs failed.

Hydra calls ``on_multirun_end`` in reverse config order, so this callback is listed after
``report_failed_jobs``, whose SystemExit (a sweep with failed jobs exits 1) would otherwise stop it
from running. A problem while writing the page is logged as a warning: the jobs' results are saved,
and ``ganstyle report <sweep dir>`` writes it again.
"""

from __future__ import annotations

import datetime
import logging
import math
import time
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from ganstyle.report.sweep import JOB_FILE, first_error_line
from ganstyle.utils.hydra_jobs import FAILED_FILE

log = logging.getLogger(__name__)


def _is_multirun(config: DictConfig) -> bool:
    from hydra.types import RunMode

    return config.hydra.get("mode") == RunMode.MULTIRUN


class SweepReport(Callback):
    def __init__(self) -> None:
        self._started: tuple[float, str] | None = None  # (monotonic clock, ISO time) of the running job

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._started = (time.monotonic(), datetime.datetime.now().isoformat(timespec="seconds"))

    def on_job_end(self, config: DictConfig, job_return: Any = None, **kwargs: Any) -> None:
        if not _is_multirun(config) or self._started is None:
            return
        from hydra.core.utils import JobStatus

        started, started_at = self._started
        job_dir = Path(str(config.hydra.runtime.output_dir))
        raised = job_return is not None and job_return.status == JobStatus.FAILED
        # A job whose error was caught (ganstyle.run.sweeps: the sweep goes on) returns None to Hydra,
        # which counts it as completed; its FAILED file says how it really ended.
        failed = (job_dir / FAILED_FILE).is_file()
        value = None if job_return is None or raised or failed else job_return.return_value
        record = {
            "job": int(config.hydra.job.num),
            "status": "raised" if raised else "failed" if failed else "returned",
            "objective": float(value) if isinstance(value, int | float) and math.isfinite(value) else None,
            "started": started_at,
            "wall_seconds": round(time.monotonic() - started, 1),
        }
        if raised:
            error = job_return._return_value  # the exception; return_value would re-raise it
            record["error"] = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        elif failed:
            record["error"] = first_error_line(job_dir / FAILED_FILE)
        path = job_dir / JOB_FILE
        try:
            path.write_text(yaml.safe_dump(record, sort_keys=False))
        except OSError as error:  # the job's own results matter more than this summary
            log.warning("could not write %s: %s", path, error)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from ganstyle.report.sweep_html import write_sweep_report

        sweep_dir = Path(str(config.hydra.sweep.dir))
        try:
            path = write_sweep_report(sweep_dir)
        except Exception as error:  # see the module docstring: never fail a sweep over its page
            log.warning("could not write the sweep report in %s: %s", sweep_dir, error, exc_info=True)
            return
        log.info("sweep report: %s", path)
