"""What several test modules share: running `train.py` as a user does, one intra-op thread."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def one_thread():
    """In-process training in these modules is tiny: one intra-op thread, restored afterwards.

    A module opts in with ``from helpers import one_thread``.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run_train(*overrides: str, cwd: Path, cache: Path, timeout: int = 420) -> subprocess.CompletedProcess:
    """`python train.py ...` as a user runs it, offline, from `cwd` (so stray files would show there)."""
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "RANK", "WORLD_SIZE", "WANDB_DIR")}
    # One thread per process: at these tiny sizes a second thread only adds waiting, and on a busy
    # machine two spinning OpenMP threads per process slowed steps by orders of magnitude (measured).
    env.update(WANDB_MODE="offline", WANDB_SILENT="true", GANSTYLE_CACHE=str(cache), TMPDIR=str(cwd))
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *overrides],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
