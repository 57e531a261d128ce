"""``ganstyle report RUN_DIR``: (re)write the results report of a training run folder.

Training writes ``report.html`` at the end of every run; this command writes it again, for a run
that was copied from another machine, stopped before its end, or trained before reports existed.
Open the file in any browser; it needs no server and no network.

Example::

    ganstyle report outputs/train/runs/2024-05-01_12-00-00-000000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from ganstyle.report import write_report

    run_dir = Path(args.run_dir).expanduser()
    markers = [
        name
        for name in ("checkpoints", "images", ".hydra", "metrics.csv", "csv")
        if (run_dir / name).exists()
    ]
    if run_dir.is_dir() and not markers:
        print(
            f"error: {run_dir} does not look like a training run folder (no checkpoints/, images/, .hydra/ or "
            "metrics.csv). Pass a folder like outputs/train/runs/<timestamp>/.",
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
        help="write report.html for a training run folder",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "run_dir", metavar="RUN_DIR", help="a run folder, e.g. outputs/train/runs/<timestamp>"
    )
    parser.add_argument("--output", "-o", default=None, help="where to write (default: RUN_DIR/report.html)")
    parser.set_defaults(func=run)
