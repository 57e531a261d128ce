"""``<multirun folder>/report.html``: the jobs of a sweep compared on one self-contained page.

Built from ``templates/sweep.html.j2`` (the run report's layout): a table of jobs (the overrides that
differ, status, final and best value of the monitored metric and the other validation metrics, wall
time, a link to each job's own report), the monitored metric against each swept key, for Optuna the
trial history with the best value so far, and each job's last validation grid side by side. Written
at the end of every multirun by :class:`ganstyle.report.sweep_callback.SweepReport` and on demand by
``ganstyle report <multirun folder>``.
"""

from __future__ import annotations

import datetime
import os
from collections import Counter
from pathlib import Path

from ganstyle.report.plots import swept_value_figure, trial_history_figure
from ganstyle.report.sweep import SweepRecord, collect_sweep, is_sweep_folder
from ganstyle.report.templating import format_value, image_png, picture, render
from ganstyle.utils.atomic_files import atomic_write_text

SWEEP_REPORT_NAME = "report.html"
MAX_GRIDS = 64  # jobs whose last validation grid is embedded; the page says when more were left out
GRID_MAX_WIDTH = 900  # px; wider grids are shrunk
GRID_MIN_WIDTH = 384  # px; narrower grids are shown enlarged


def job_label(sweep: SweepRecord, job) -> str:
    values = " ".join(
        f"{key}={format_value(job.overrides[key])}" for key in sweep.swept_keys if key in job.overrides
    )
    return f"job {job.number}: {values}" if values else f"job {job.number}"


def swept_plots(sweep: SweepRecord) -> tuple[list, int]:
    """One plot per swept key over the jobs that have a score, and how many jobs had none."""
    if sweep.monitor is None:
        return [], 0
    scored = [job for job in sweep.jobs if job.status == "finished" and job.score is not None]
    plots = []
    for key in sweep.swept_keys:
        with_key = [job for job in scored if key in job.overrides]
        if with_key:
            png = swept_value_figure(
                key,
                [job.overrides[key] for job in with_key],
                [job.score for job in with_key],
                sweep.monitor[0],
            )
            plots.append(picture(f"{sweep.monitor[0]} against {key}", png))
    return plots, len(sweep.jobs) - len(scored)


def history_plot(sweep: SweepRecord):
    scored = [job for job in sweep.jobs if job.status == "finished" and job.score is not None]
    if sweep.sweeper != "optuna" or sweep.monitor is None or not scored:
        return None
    png = trial_history_figure(
        [job.number for job in scored], [job.score for job in scored], sweep.monitor[0], sweep.monitor[1]
    )
    return picture("Trial history", png)


def render_sweep_html(sweep: SweepRecord, page_dir: Path | None = None) -> str:
    """The sweep page; links to the jobs' reports are relative to ``page_dir`` (default: the sweep)."""
    page_dir = page_dir or sweep.sweep_dir
    plots, not_plotted = swept_plots(sweep)
    history = history_plot(sweep)
    all_with_grid = [job for job in sweep.jobs if job.last_val_grid is not None]
    with_grid = all_with_grid[:MAX_GRIDS]
    grids = [
        picture(
            job.last_val_grid.name,
            image_png(job.last_val_grid, GRID_MAX_WIDTH),
            min_width=GRID_MIN_WIDTH,
            caption=job_label(sweep, job),
        )
        for job in with_grid
    ]
    sections = {"jobs": "Jobs"}
    if plots:
        sections["swept"] = f"{sweep.monitor[0]} against each swept value"
    if history:
        sections["history"] = "Trial history and best so far"
    if grids:
        sections["grids"] = "Last validation grid of every job"
    counts = Counter(job.status for job in sweep.jobs)
    monitored = sweep.monitor[0] if sweep.monitor else None
    return render(
        "sweep.html.j2",
        title=f"ganstyle sweep {sweep.sweep_dir.name}",
        subtitle=[
            str(sweep.sweep_dir),
            "Optuna search" if sweep.sweeper == "optuna" else "multirun",
            f"report written {datetime.datetime.now():%Y-%m-%d %H:%M}",
        ],
        status=", ".join(f"{count} {status}" for status, count in sorted(counts.items())),
        status_failed=counts["failed"] > 0,
        sections=sections,
        sweep=sweep,
        best=sweep.best_job(),
        other_metrics=[name for name in sweep.metric_names if name != monitored],
        links={
            job.number: Path(os.path.relpath(job.job_dir.resolve() / "report.html", page_dir)).as_posix()
            for job in sweep.jobs
        },
        counts=", ".join(f"{count} {status}" for status, count in sorted(counts.items())),
        swept_plots=plots,
        not_plotted=not_plotted,
        history_plot=history,
        grids=grids,
        grids_left_out=len(all_with_grid) - len(with_grid),
    )


def write_sweep_report(sweep_dir: str | Path, output: str | Path | None = None) -> Path:
    """Collect the jobs in ``sweep_dir`` and write the page (default ``<sweep_dir>/report.html``)."""
    sweep_dir = Path(sweep_dir)
    if not is_sweep_folder(sweep_dir):
        raise FileNotFoundError(
            f"{sweep_dir} is not a multirun folder: it has no numbered job folders with a .hydra/ folder "
            "and none of multirun.yaml, optimization_results.yaml, failed_jobs.txt. Pass a folder like "
            "outputs/train/multiruns/<timestamp>/."
        )
    path = Path(output) if output else sweep_dir / SWEEP_REPORT_NAME
    page = render_sweep_html(collect_sweep(sweep_dir), page_dir=path.parent.resolve())
    return atomic_write_text(path, page)  # a browser never sees a half-written page
