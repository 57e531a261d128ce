"""The results report: one self-contained ``report.html`` per run folder.

Written at the end of every training run by :class:`ganstyle.callbacks.report.RunReport` and on
demand by ``ganstyle report RUN_DIR``: config, command to reproduce, metric curves and best/last
values, image grids over training, translated test images and checkpoint paths.
"""

from ganstyle.report.collect import RunRecord, collect_run, summarize
from ganstyle.report.html import REPORT_NAME, render_html, write_report

__all__ = ["REPORT_NAME", "RunRecord", "collect_run", "render_html", "summarize", "write_report"]
