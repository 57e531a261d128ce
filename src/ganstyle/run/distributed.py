"""Running on several processes: a Trainer that is safe under Hydra's multirun, and the SLURM task
counts the submitit launcher asks for. (DDP set up for GANs, which every model applies in its own
``setup``, is :func:`ganstyle.utils.ddp.find_unused_parameters_for_gans`.)

Two facts shape this module:

- Lightning's ``ddp`` starts the other ranks by running the script again with the same command line.
  Under ``python train.py -m ...`` that command line is the whole sweep, so each extra rank would run
  every job of the sweep. :func:`build_trainer` sees that case and uses ``ddp_spawn`` (processes
  started from inside the job) for that job instead, with a warning.
- ``data.batch_size`` is per process: the batch of one optimiser step is batch_size x devices x nodes.
  :func:`build_trainer` logs that product so nobody has to remember it.
"""

from __future__ import annotations

import logging
from typing import Any

import hydra
import lightning.pytorch as pl
from omegaconf import DictConfig, OmegaConf

from ganstyle.config import ConfigError
from ganstyle.utils.hydra_jobs import is_multirun
from ganstyle.utils.lightning_compat import launches_by_rerunning_script

log = logging.getLogger(__name__)


def relaunches_script(trainer: pl.Trainer) -> bool:
    """True when this trainer would start its other ranks by re-running ``sys.argv`` (Lightning's ddp).

    A cluster that starts every rank itself (SLURM's srun, torchrun) re-runs nothing, so it is safe.
    """
    strategy = trainer.strategy
    if not launches_by_rerunning_script(strategy):
        return False
    return not strategy.cluster_environment.creates_processes_externally


def trained_in_spawned_processes(trainer: pl.Trainer) -> bool:
    """True when the ranks ran in processes this one started (ddp_spawn): this process's trainer then
    keeps its state from before the fit (``global_step`` 0), and only the ranks saw training."""
    return trainer.strategy.launcher is not None and not launches_by_rerunning_script(trainer.strategy)


def build_trainer(cfg: DictConfig, **trainer_objects: Any) -> pl.Trainer:
    """Instantiate ``cfg.trainer`` with ``trainer_objects`` (callbacks, logger, plugins); inside a local
    multirun, replace script-relaunching DDP by ddp_spawn.

    The replacement is written back to ``cfg.trainer.strategy`` so the config logged to W&B and
    TensorBoard says what actually ran.
    """
    trainer = _instantiate_trainer(cfg, trainer_objects)
    if is_multirun() and relaunches_script(trainer):
        log.warning(
            "trainer.strategy=%s starts extra ranks by re-running the command line, which under `-m` is the "
            "whole sweep: every extra rank would run every job. This job uses ddp_spawn instead (ranks "
            "started from inside the job). To keep `ddp`, run one process group per job through a cluster "
            "launcher (hydra/launcher=slurm) or run the points one by one without -m.",
            cfg.trainer.strategy,
        )
        cfg.trainer.strategy = "ddp_spawn"
        trainer = _instantiate_trainer(cfg, trainer_objects)
    if trainer.world_size > 1:
        batch_size = OmegaConf.select(cfg, "data.batch_size")
        total = f"{batch_size * trainer.world_size}" if isinstance(batch_size, int) else "?"
        log.info(
            "%d processes (num_nodes=%d x devices=%d); data.batch_size=%s per process, %s images per "
            "optimiser step; image pools (where a model has them) are per process",
            trainer.world_size,
            trainer.num_nodes,
            trainer.num_devices,
            batch_size,
            total,
        )
    return trainer


def _instantiate_trainer(cfg: DictConfig, trainer_objects: dict[str, Any]) -> pl.Trainer:
    return hydra.utils.instantiate(cfg.trainer, **trainer_objects, _convert_="all")


# --- SLURM task counts for hydra/launcher=slurm -------------------------------------------------------
def slurm_tasks_per_node(devices: Any) -> int:
    """One SLURM task per device: Lightning's SLURMEnvironment maps each task to one rank."""
    if isinstance(devices, int) and not isinstance(devices, bool) and devices > 0:
        return devices
    if isinstance(devices, str) and devices.isdigit() and int(devices) > 0:
        return int(devices)
    if isinstance(devices, list | tuple) or OmegaConf.is_list(devices):
        return len(devices)
    raise ConfigError(
        f"hydra/launcher=slurm needs trainer.devices to be the number of devices per node (e.g. "
        f"trainer.devices=4), but it is {devices!r}. SLURM must be told how many tasks to start on each "
        f"node before the job runs, so -1 or auto (all devices of a node) cannot be resolved at submission."
    )


def slurm_gpus_per_node(accelerator: str, devices: Any) -> int:
    """GPUs to request per node: one per task on GPU accelerators, none for CPU runs."""
    if str(accelerator) == "cpu":
        return 0
    return slurm_tasks_per_node(devices)


def register_resolvers() -> None:
    """Resolvers used by conf/hydra/launcher/slurm.yaml (registered once, on import)."""
    for name, function in (
        ("ganstyle.slurm_tasks_per_node", slurm_tasks_per_node),
        ("ganstyle.slurm_gpus_per_node", slurm_gpus_per_node),
    ):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, function)


register_resolvers()
