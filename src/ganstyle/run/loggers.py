"""Experiment loggers: W&B that never blocks (offline unless credentials exist), and a CSV logger whose
file survives a resumed run."""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from typing import Any

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger

from ganstyle.utils.lightning_compat import csv_logger_experiment_keeping_rows

WANDB_HOST = "api.wandb.ai"


def wandb_credentials_available() -> bool:
    """True when W&B can authenticate without asking: an API key in the environment or ~/.netrc."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc_path = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return netrc.netrc(str(netrc_path)).authenticators(WANDB_HOST) is not None
    except (FileNotFoundError, netrc.NetrcParseError, PermissionError):
        return False


# W&B's older names. Lightning's WandbLogger(offline=True) itself sets WANDB_MODE=dryrun, which the
# next job of a multirun then reads from the environment.
_WANDB_MODE_ALIASES = {"dryrun": "offline", "run": "online"}


def resolve_wandb_mode(mode: str | None) -> str:
    """The explicit mode, else WANDB_MODE, else online with credentials and offline without."""
    if mode:
        return _WANDB_MODE_ALIASES.get(mode, mode)
    if os.environ.get("WANDB_MODE"):
        return _WANDB_MODE_ALIASES.get(os.environ["WANDB_MODE"], os.environ["WANDB_MODE"])
    return "online" if wandb_credentials_available() else "offline"


def make_wandb_logger(
    project: str = "ganstyle",
    name: str | None = None,
    group: str | None = None,
    tags: list[str] | None = None,
    mode: str | None = None,
    save_dir: str = ".",
    log_model: bool = False,
    **kwargs: Any,
):
    """A Lightning WandbLogger that cannot prompt for a login or wait on the network.

    Offline runs are written to ``<save_dir>/wandb/offline-run-*``; upload them later with
    ``wandb sync <that folder>``. In a multirun each job is its own run, named ``<name>-<job number>``
    and, when ``group`` is null, grouped under the sweep folder's name so a sweep reads as one group.
    """
    from lightning.pytorch.loggers import WandbLogger

    from ganstyle.run.sweeps import wandb_run_name
    from ganstyle.utils.hydra_jobs import sweep_group_name

    group = group if group is not None else sweep_group_name()
    name = wandb_run_name(name)

    resolved = resolve_wandb_mode(mode)
    if resolved not in ("online", "offline", "disabled"):
        raise ValueError(
            f"logger.wandb.mode={resolved!r} is not a W&B mode; use online, offline or disabled "
            f"(or leave it null to pick online only when credentials exist)."
        )
    # No stdin prompts under any circumstance (a SLURM job has no terminal to answer them).
    os.environ.setdefault("WANDB_DISABLE_CODE", "true")
    os.environ["WANDB_CONSOLE"] = os.environ.get("WANDB_CONSOLE", "off")
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    # Processes started later (ddp_spawn ranks attaching to this run) take their folder from the
    # environment, not from save_dir: without this their media would land in ./wandb of the cwd.
    os.environ["WANDB_DIR"] = str(Path(save_dir).resolve())
    import wandb

    wandb.setup()  # reads WANDB_SILENT now, so the settings Lightning passes to wandb.init warn nothing
    logger = WandbLogger(
        project=project,
        name=name,
        group=group,
        tags=list(tags or []),
        save_dir=save_dir,
        offline=resolved == "offline",
        mode=resolved,
        log_model=log_model and resolved == "online",
        **kwargs,
    )
    # Where an offline run is kept, for the start block (W&B's own lines are silenced there).
    logger.offline_folder = str(Path(save_dir) / "wandb") if resolved == "offline" else None
    return logger


class RunCSVLogger(CSVLogger):
    """Lightning's CSVLogger (``logger=csv``), except that a resumed run keeps its earlier rows.

    Lightning's writer deletes an existing ``metrics.csv`` when it starts, so a run resumed in its own
    folder would lose every row before the checkpoint. After :meth:`continue_earlier_rows` the file is
    kept instead; at the first save, rows from the resumed run's first step on (left by a run that went
    past the checkpoint) are dropped and the rest written with the new rows. Whole-file rewrites go
    through a temporary file, so a crash never leaves it truncated.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.keeps_earlier_rows = False

    def continue_earlier_rows(self) -> None:
        """Keep the rows already in this logger's metrics.csv (call before anything is logged)."""
        self.keeps_earlier_rows = True

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        return csv_logger_experiment_keeping_rows(self, self.keeps_earlier_rows)


def continue_earlier_rows(loggers: list[Any]) -> None:
    """Before a resumed run logs anything: the loggers writing files in its folder keep their rows."""
    for logger in loggers:
        if isinstance(logger, RunCSVLogger):
            logger.continue_earlier_rows()
