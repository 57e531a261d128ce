"""This process's rank, from the environment the launcher set up.

A module of its own because both the DDP setup (:mod:`ganstyle.run.distributed`) and the multirun failure
reports (:mod:`ganstyle.run.sweeps`) need it, and the DDP setup already imports the sweep layer (to ask
whether it runs inside a multirun): kept in either of the two, the rank would make them import each other.
"""

from __future__ import annotations

import os

# Environment variables launchers set to a process's global rank, most specific first (the order
# Lightning's own rank detection uses).
_RANK_VARIABLES = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")


def process_rank() -> int:
    """This process's global rank from the launcher's environment (0 outside distributed runs).

    Read from the environment rather than torch.distributed because it is also needed before the
    process group exists and after it was torn down (e.g. when a failed job writes its report).
    """
    for name in _RANK_VARIABLES:
        value = os.environ.get(name)
        if value is not None and value.lstrip("-").isdigit():
            return int(value)
    return 0
