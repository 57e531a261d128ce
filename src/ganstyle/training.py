"""`train(cfg)`: the whole experiment as plain code under train.py's thin `@hydra.main`.

Order matters for the user: every check that needs only the config runs first, then the data is
validated (once, in the data module's setup), and only then are networks built and trained. Loggers
are always closed, so one multirun job never leaks its W&B run into the next.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
import lightning.pytorch as pl
from omegaconf import DictConfig, OmegaConf

from ganstyle.config import ConfigError, validate_config

log = logging.getLogger(__name__)


def instantiate_group(group: DictConfig | None) -> list[Any]:
    """Build every `_target_` entry of a callbacks/logger group (a mapping of name -> config)."""
    if not group:
        return []
    built = []
    for name, node in group.items():
        if isinstance(node, DictConfig) and "_target_" in node:
            log.debug("building %s: %s", name, node._target_)
            built.append(hydra.utils.instantiate(node))
    return built


def resolve_ckpt_path(ckpt_path: str | None, output_dir: str | Path) -> str | None:
    """`last` means this run folder's checkpoints/last.ckpt; a path must exist before any work."""
    if not ckpt_path:
        return None
    path = Path(output_dir) / "checkpoints" / "last.ckpt" if ckpt_path == "last" else Path(ckpt_path)
    if not path.is_file():
        hint = (
            "ckpt_path=last resumes from <run dir>/checkpoints/last.ckpt, so pass the run folder "
            "too: `hydra.run.dir=<that run folder> ckpt_path=last`"
            if ckpt_path == "last"
            else "pass an existing .ckpt file, e.g. ckpt_path=outputs/train/runs/<run>/checkpoints/last.ckpt"
        )
        raise ConfigError(f"ckpt_path={ckpt_path!r}: no checkpoint file at {path}. {hint}.")
    return str(path)


def monitored_value(trainer: pl.Trainer, metric: str | None) -> float | None:
    """The monitored metric at the end of training (what a sweeper optimises), if it was logged."""
    if not metric:
        return None
    value = trainer.callback_metrics.get(metric)
    return None if value is None else float(value)


def close_loggers(loggers: list[Any]) -> None:
    """Finish W&B runs so each multirun job gets its own run, even when training failed."""
    for logger in loggers:
        try:
            logger.finalize("success")
        except Exception as error:  # a logger failing to close must not hide the training result
            log.warning("could not finalise logger %s: %s", type(logger).__name__, error)
    try:
        import wandb

        if wandb.run is not None:
            wandb.finish()
    except ImportError:
        pass


def train(cfg: DictConfig) -> float | None:
    """Train the configured model; return the monitored metric's final value (for sweepers)."""
    validate_config(cfg)
    output_dir = Path(cfg.paths.output_dir)
    ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), output_dir)
    if cfg.get("seed") is not None:
        pl.seed_everything(cfg.seed, workers=True)

    datamodule: pl.LightningDataModule = hydra.utils.instantiate(cfg.data, _convert_="all")
    # Networks, optimisers and schedulers stay plain configs here: the model builds them and saves
    # the configs (not the built objects) as hyperparameters.
    model: pl.LightningModule = hydra.utils.instantiate(cfg.model, _recursive_=False)
    callbacks = instantiate_group(cfg.get("callbacks"))
    loggers = instantiate_group(cfg.get("logger"))
    trainer: pl.Trainer = hydra.utils.instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, _convert_="all"
    )
    try:
        for logger in loggers:
            logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
        return monitored_value(trainer, cfg.get("monitor", {}).get("metric"))
    finally:
        close_loggers(loggers)
