"""``ganstyle report FOLDER``: (re)write the results report of a run folder or a multirun folder.

Training writes ``report.html`` at the end of every run, and every multirun writes one in its sweep
folder comparing its jobs; this command writes either again, for a folder copied from another
machine, stopped before its end, or made before reports existed. Which page is written depends on
the folder: a run (checkpoints/, images/, .hydra/, metrics.csv) or a multirun (numbered job folders,
multirun.yaml, optimization_results.yaml). Open the file in any browser; it needs no server and no
network.

Examples::

    ganstyle report outputs/train/runs/2024-05-01_12-00-00-000000
    ganstyle report outputs/train/multiruns/2024-05-01_12-00-00-000000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from ganstyle.report import write_report
    from ganstyle.report.sweep import is_sweep_folder
    from ganstyle.report.sweep_html import write_sweep_report

    run_dir = Path(args.run_dir).expanduser()
    if run_dir.is_dir() and is_sweep_folder(run_dir):
        path = write_sweep_report(run_dir, output=args.output)
        print(f"wrote {path}")
        return 0
    markers = [
        name
        for name in ("checkpoints", "images", ".hydra", "metrics.csv", "csv")
        if (run_dir / name).exists()
    ]
    if run_dir.is_dir() and not markers:
        print(
            f"error: {run_dir} does not look like a training run folder (no checkpoints/, images/, .hydra/ or "
            "metrics.csv) nor like a multirun folder (no numbered job folders with .hydra/, no multirun.yaml). "
            "Pass a folder like outputs/train/runs/<timestamp>/ or outputs/train/multiruns/<timestamp>/.",
            file=sys.stderr,
        )
        return 1
    try:
        path = write_report(run_dir, output=args.output)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write report.html for a training run folder or a multirun folder",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "run_dir",
        metavar="FOLDER",
        help="a run folder (outputs/train/runs/<timestamp>) or a multirun folder (outputs/train/multiruns/<timestamp>)",
    )
    parser.add_argument("--output", "-o", default=None, help="where to write (default: FOLDER/report.html)")
    parser.set_defaults(func=run)
