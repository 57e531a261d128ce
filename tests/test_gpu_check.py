"""benchmarks/gpu_check.sh, the one GPU check, runs its code paths on the CPU so it cannot rot."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers import ROOT


@pytest.mark.slow  # a minute on 2 CPU cores
def test_gpu_check_smoke_runs_the_gpu_tests_and_prints_one_throughput_table():
    environment = {**os.environ, "PYTHON": sys.executable}
    result = subprocess.run(
        ["bash", "benchmarks/gpu_check.sh", "--smoke"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("GPU tests (pytest -m gpu): ") and "skipped" in line for line in lines)
    tables, table = [], []
    for line in lines:  # the output's markdown tables: runs of consecutive "|" lines
        if line.startswith("|"):
            table.append(line)
        elif table:
            tables, table = [*tables, table], []
    throughput, cut = tables[0], tables[-1]
    assert throughput[0].startswith("| batch | variant | plain s/step | Lightning s/step")
    rows = [line.split(" | ") for line in throughput[2:]]
    assert [row[1] for row in rows] == ["fp32", "fp32+fused"], result.stdout
    assert all(float(row[5]) > 0 for row in rows)  # images/s measured, nothing stopped
    assert cut[0].startswith("| model | s/step")
    cut_rows = [line.split(" | ") for line in cut[2:]]
    assert [row[0].strip("| ") for row in cut_rows] == ["cyclegan", "cut", "fastcut"], result.stdout
    assert all(float(row[1]) > 0 for row in cut_rows)  # seconds per step measured for each model
