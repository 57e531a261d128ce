"""What a process knows about the Hydra job it runs in: whether it is one job of a multirun, the
sweep's name and the job's number. No dependencies on the rest of ganstyle, so callbacks and the
report read these facts without importing the run layer (``ganstyle.run.sweeps`` builds on them).
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

FAILED_FILE = "FAILED"  # written into a failed multirun job's folder by ganstyle.run.sweeps


def running_hydra_config() -> DictConfig | None:
    """The running Hydra app's own config (``hydra.*``), or None outside a Hydra app."""
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get() if HydraConfig.initialized() else None


def is_multirun() -> bool:
    """True inside a job of ``python train.py -m ...`` (any sweeper, any launcher)."""
    from hydra.types import RunMode

    hydra_cfg = running_hydra_config()
    return hydra_cfg is not None and hydra_cfg.mode == RunMode.MULTIRUN


def sweep_group_name() -> str | None:
    """The sweep folder's name (its timestamp) inside a multirun job, else None.

    Used as the W&B group so a sweep's runs appear together; each job is one run of the group.
    """
    if not is_multirun():
        return None
    return Path(str(running_hydra_config().sweep.dir)).name


def job_number() -> int | None:
    """This job's number within the sweep (its sub-folder's name), None outside a multirun."""
    if not is_multirun():
        return None
    return int(running_hydra_config().job.num)
