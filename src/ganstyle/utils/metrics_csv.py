"""Metric CSV files that survive a resumed run: earlier rows kept, no file ever left half-written.

Both writers of a run's metric rows (``<run>/metrics.csv`` from the MetricsHistory callback and
``<run>/csv/metrics.csv`` from ``logger=csv``) use these: a resumed run reads the earlier rows back,
drops those it is about to log again, and every full rewrite goes to a temporary file that then
replaces the old one, so a crash mid-write leaves the previous file whole.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ganstyle.utils.atomic_files import atomic_write


def read_metrics_csv(path: str | os.PathLike) -> tuple[list[str], list[dict[str, str]]]:
    """The header and rows of a metric CSV file; nothing when it does not exist."""
    path = Path(path)
    if not path.is_file():
        return [], []
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        rows = [{key: value for key, value in row.items() if key} for row in reader]
        return list(reader.fieldnames or []), rows


def write_csv_atomically(
    path: str | os.PathLike, fieldnames: Sequence[str], rows: Iterable[Mapping[str, Any]]
) -> None:
    """Write the whole file beside ``path``, then rename it over ``path`` (:func:`atomic_write`)."""

    def write(handle: Any) -> None:
        writer = csv.DictWriter(handle, fieldnames=list(fieldnames))
        writer.writeheader()
        writer.writerows(rows)

    atomic_write(path, write, text=True)


def step_of(row: Mapping[str, Any]) -> float:
    """A row's logger step; a row without one sorts last (it cannot be placed before a resume point)."""
    value = row.get("step")
    try:
        return float(value) if value not in (None, "") else math.inf
    except (TypeError, ValueError):
        return math.inf


def rows_logged_before(rows: Iterable[Mapping[str, Any]], step: float) -> list[Mapping[str, Any]]:
    """The rows of an earlier run that a resumed run, whose first row is at ``step``, does not repeat.

    Lightning gives loggers a step that only grows within a run and restores it from the checkpoint,
    so rows at or after the resumed run's first step were logged after that checkpoint was saved (by
    a run that went on and then stopped) and are logged again now.
    """
    return [row for row in rows if step_of(row) < step]
