"""The results report: one self-contained ``report.html`` per run folder.

Written at the end of every training run by :class:`ganstyle.callbacks.report.RunReport` and on
demand by ``ganstyle report RUN_DIR``: config, command to reproduce, metric curves and best/last
values, image grids over training, translated test images and checkpoint paths. A multirun folder
gets its own page comparing its jobs (:mod:`ganstyle.report.sweep_html`), written when the multirun
ends and by ``ganstyle report <multirun folder>``.
"""

from ganstyle.report.collect import RunRecord, collect_run, summarize, write_images_read
from ganstyle.report.html import REPORT_NAME, render_html, write_report
from ganstyle.report.sweep import SweepRecord, collect_sweep
from ganstyle.report.sweep_html import write_sweep_report

__all__ = [
    "REPORT_NAME",
    "RunRecord",
    "SweepRecord",
    "collect_run",
    "collect_sweep",
    "render_html",
    "summarize",
    "write_images_read",
    "write_report",
    "write_sweep_report",
]
