"""`train(cfg)`: the whole experiment as plain code under train.py's thin `@hydra.main`.

Order matters for the user: every check that needs only the config runs first, then the data is
validated (once, in the data module's setup), and only then are networks built and trained. Loggers
are always closed, so one multirun job never leaks its W&B run into the next.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any

import hydra
import lightning.pytorch as pl
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf, open_dict

from ganstyle.callbacks.metrics_history import MetricsHistory
from ganstyle.callbacks.signals import EXIT_CODE_SIGINT, EXIT_CODE_SIGTERM, CheckpointOnInterrupt
from ganstyle.config import ConfigError
from ganstyle.models.base import build_model
from ganstyle.run.config_checks import drop_quick_start_random_weights, validate_config
from ganstyle.run.console import is_verbose, log_start_block, quiet_library_output
from ganstyle.run.distributed import build_trainer, trained_in_spawned_processes
from ganstyle.run.loggers import continue_earlier_rows
from ganstyle.run.monitoring import plan_monitor
from ganstyle.run.outcome import check_trained_something, result_warnings
from ganstyle.run.resuming import (
    check_resume_compatible,
    check_run_dir_reuse,
    latest_checkpoint,
    slurm_requeue_checkpoint,
)

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
    if ckpt_path == "last":  # last.ckpt, or a newer SLURM hpc_ckpt_<n>.ckpt from a requeue signal
        path = latest_checkpoint(output_dir) or Path(output_dir) / "checkpoints" / "last.ckpt"
    else:
        path = Path(ckpt_path)
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


# What a run writes before its first training step: Hydra's config and log, the loggers' folders and
# the report written on failure. Nothing else in the folder is touched.
STARTUP_OUTPUTS = (".hydra", "report.html", "images_read.yaml", "csv", "tensorboard", "wandb", "images")


def discard_unstarted_run(cfg: DictConfig) -> None:
    """After bad input stopped a fresh run before training, remove what it wrote in its run folder.

    A run that never reached a training step (no checkpoint, no metrics.csv) leaves nothing behind
    for the user to clean up; the error itself is on stderr. That includes a refused resume into a new
    folder (a missing or foreign checkpoint, ``ckpt_path=last`` where there is none). A folder with
    checkpoints or metrics (the run being resumed) and files the run did not write are left as they are.
    """
    import shutil

    run_dir = Path(cfg.paths.output_dir)
    checkpoints = run_dir / "checkpoints"
    if (run_dir / "metrics.csv").exists() or (checkpoints.is_dir() and any(checkpoints.iterdir())):
        return
    for name in (*STARTUP_OUTPUTS, f"{cfg.get('task_name', 'train')}.log", "checkpoints"):
        path = run_dir / name
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_file():
            path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        run_dir.rmdir()  # only when empty: never a folder holding anything else


def resolve_monitor(cfg: DictConfig, model: Any, datamodule: Any) -> None:
    """Fix `monitor.metric` before training to a metric this run logs (see ganstyle.run.monitoring).

    `auto` becomes FID when it runs, else the model's ground-truth metric when the validation data has
    targets, else nothing: then no best checkpoint is kept (save_top_k=0), last.ckpt is still written
    every epoch, and one log line says why. An explicit metric the run will not log raises here.
    """
    if cfg.get("monitor") is None:
        return
    fid_on = model.fid_metrics() is not None
    metrics_cfg = OmegaConf.to_container(cfg.metrics, resolve=True) if cfg.get("metrics") else None
    loss = dict(model.hparams.get("loss") or {})
    monitor_cfg = OmegaConf.to_container(cfg.monitor, resolve=True)
    choice = plan_monitor(monitor_cfg, type(model), loss, datamodule, metrics_cfg, fid_on)
    if choice is None:
        return
    with open_dict(cfg):
        cfg.monitor.metric, cfg.monitor.mode = choice.metric, choice.mode
        checkpoint_cfg = (cfg.get("callbacks") or {}).get("model_checkpoint")
        if checkpoint_cfg is not None and monitor_cfg.get("metric") == "auto":
            checkpoint_cfg.stop_if_monitor_missing = (
                False  # auto never stops a run (see LastAndBestCheckpoint)
            )
            if choice.metric is None:
                checkpoint_cfg.save_top_k = 0  # a "best" of nothing would just be the latest epoch
    if choice.metric is None:
        log.info(choice.reason)
    else:
        log.info("monitoring %s (%s): %s", choice.metric, choice.mode, choice.reason)


def warn_about_result(trainer: pl.Trainer, callbacks: list[Any]) -> None:
    """Log what looks wrong with a finished run's result (see ganstyle.run.outcome), on rank 0."""
    if not trainer.is_global_zero:
        return
    history = next((cb.recorder.rows for cb in callbacks if isinstance(cb, MetricsHistory)), [])
    final = {key: float(value) for key, value in trainer.callback_metrics.items() if value.numel() == 1}
    for warning in result_warnings(final, history):
        log.warning(warning)


def tag_random_weights(cfg: DictConfig) -> None:
    """Mark runs whose losses or FID use random (opt-in) weights: their numbers compare to nothing."""
    loss_random = (cfg.get("loss") or {}).get("feature_net", {}).get("weights") == "random"
    fid_random = (cfg.get("metrics") or {}).get("weights") == "random"
    if (loss_random or fid_random) and "random-weights-not-comparable" not in (cfg.get("tags") or []):
        with open_dict(cfg):
            cfg.tags = [*(cfg.get("tags") or []), "random-weights-not-comparable"]


def train(cfg: DictConfig) -> float | None:
    """Train the configured model; return the monitored metric's final value (for sweepers)."""
    verbose = is_verbose(cfg)
    quiet_library_output(verbose)
    validate_config(cfg)
    drop_quick_start_random_weights(cfg)  # the user's own images want a real VGG, not the demo's
    output_dir = Path(cfg.paths.output_dir)
    ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), output_dir)
    if ckpt_path is None and (ckpt_path := slurm_requeue_checkpoint(output_dir)):
        log.info("SLURM job %s resumes from %s", os.environ.get("SLURM_JOB_ID"), ckpt_path)
    check_run_dir_reuse(output_dir, ckpt_path)  # never overwrite an earlier run's outputs
    if cfg.get("seed") is not None:
        pl.seed_everything(cfg.seed, workers=True)

    datamodule: pl.LightningDataModule = hydra.utils.instantiate(cfg.data, _convert_="all")
    # Networks, optimisers and schedulers stay plain configs here: the model builds them and saves
    # the configs (not the built objects) as hyperparameters.
    model: pl.LightningModule = build_model(cfg.model)
    if cfg.get("performance") is not None:  # channels_last / torch.compile, applied in ImageModel.setup
        model.set_performance_options(**cfg.performance)
    if cfg.get("augment") is not None:  # DiffAugment / ADA on every discriminator input
        model.set_augmentation(**OmegaConf.to_container(cfg.augment, resolve=True))
    if ckpt_path:  # another model or config in the checkpoint: name the differences before fitting
        check_resume_compatible(ckpt_path, model, cfg.get("resume_allow_changed") or ())
    # FID/KID: a missing required file fails here
    model.configure_validation_metrics(
        OmegaConf.to_container(cfg.metrics, resolve=True) if cfg.get("metrics") else None
    )
    resolve_monitor(cfg, model, datamodule)
    tag_random_weights(cfg)
    callbacks = instantiate_group(cfg.get("callbacks"))
    loggers = instantiate_group(cfg.get("logger"))
    if ckpt_path:  # a run resumed in its own folder appends to its csv/metrics.csv, never restarts it
        continue_earlier_rows(loggers)
    # Plugin factories return None when they do not apply (e.g. the SLURM environment off SLURM).
    plugins = [plugin for plugin in instantiate_group(cfg.get("plugins")) if plugin is not None]
    # Under -m, DDP that re-runs the command line becomes ddp_spawn (see ganstyle.run.distributed).
    if verbose:  # Lightning's model table too (the start block below lists the networks anyway)
        with open_dict(cfg):
            cfg.trainer.enable_model_summary = True
    trainer = build_trainer(cfg, callbacks=callbacks, logger=loggers or False, plugins=plugins or None)
    log_start_block(cfg, model, trainer)
    try:
        for logger in loggers:
            logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
        if not trained_in_spawned_processes(trainer):  # else this trainer never saw the steps
            check_trained_something(trainer.global_step, bool(trainer.fast_dev_run), trainer.interrupted)
            warn_about_result(trainer, callbacks)
        return monitored_value(trainer, cfg.get("monitor", {}).get("metric"))
    except SIGTERMException as stop:
        # Lightning stops cleanly on SIGTERM (and on Ctrl-C, which CheckpointOnInterrupt turns into the
        # same stop) and last.ckpt is saved; exit 143 or 130 (not Lightning's 0) so schedulers and `&&`
        # chains see that training did not finish.
        stopped_by_ctrl_c = any(
            isinstance(callback, CheckpointOnInterrupt) and callback.sigint_received for callback in callbacks
        )
        raise SystemExit(EXIT_CODE_SIGINT if stopped_by_ctrl_c else EXIT_CODE_SIGTERM) from stop
    finally:
        close_loggers(loggers)
