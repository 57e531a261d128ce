"""What a run prints before its first batch: one block saying what runs, and no library noise.

Lightning and the libraries under it print lines a ganstyle user cannot act on: an advertisement for
a logging product, a model table whose FLOPs column is always 0 (nothing is traced), a deprecation
warning raised inside Lightning itself, and device lines the start block already answers. They are
dropped here, in one place; ``python train.py --verbose`` (or ``hydra.verbose=true``) keeps them and
Lightning's model table.
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any

from lightning.pytorch.utilities.model_summary import get_human_readable_count
from omegaconf import DictConfig

from ganstyle.run.config_checks import choice, hydra_node

log = logging.getLogger(__name__)

VERBOSE_ENV = "GANSTYLE_VERBOSE"  # set by `train.py --verbose`

# Info lines from Lightning's rank-zero logger that the start block replaces or that advertise.
LIBRARY_NOISE_PREFIXES = (
    "💡 Tip:",  # the LitLogger advertisement, printed whenever another logger is used
    "GPU available:",  # the start block names the device
    "TPU available:",
    "HPU available:",
    "Seed set to",  # the start block names the seed
)
# Warnings raised inside the libraries we pin, about their own internals: nothing for a user to change.
LIBRARY_WARNINGS = (r"`isinstance\(treespec, LeafSpec\)` is deprecated",)  # Lightning's _pytree vs torch 2.13


class _DropLibraryNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(LIBRARY_NOISE_PREFIXES)


_NOISE_FILTER = _DropLibraryNoise()
# Lightning's rank-zero messages, and seed_everything's own logger ("Seed set to 0").
_LIBRARY_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
    "lightning.fabric.utilities.seed",
)


def is_verbose(cfg: DictConfig) -> bool:
    """Whether the user asked for everything: ``train.py --verbose`` or ``hydra.verbose``."""
    hydra = hydra_node(cfg)
    return bool(os.environ.get(VERBOSE_ENV)) or bool(hydra is not None and hydra.get("verbose"))


def quiet_library_output(verbose: bool) -> None:
    """Drop the library lines above for this process (idempotent); nothing when ``verbose``."""
    if verbose:
        return
    for name in _LIBRARY_LOGGERS:
        logging.getLogger(name).addFilter(_NOISE_FILTER)
    for message in LIBRARY_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    # The `lightning` package logger prints its lines itself ("INFO: `Trainer.fit` stopped ...") and
    # passes them on to the root logger Hydra set up, so each appeared twice; the root's handlers (the
    # console and <run>/train.log) keep them.
    if logging.getLogger().handlers:
        package_logger = logging.getLogger("lightning")
        for handler in list(package_logger.handlers):
            if type(handler) is logging.StreamHandler:
                package_logger.removeHandler(handler)
    # W&B's own start lines (its version, an "anonymous setting" deprecation Lightning triggers, where
    # an offline run is kept): the start block says where the run is and how to upload it.
    os.environ.setdefault("WANDB_SILENT", "true")


def describe_networks(model: Any) -> str:
    """``G_AB UnetGenerator 7.3 M, D_B NLayerDiscriminator 694.0 K``: every child with parameters."""
    parts = []
    for name, child in model.named_children():
        count = sum(p.numel() for p in child.parameters())
        if count:
            parts.append(f"{name} {type(child).__name__} {get_human_readable_count(count)}")
    return ", ".join(parts) or "no trainable networks"


def start_block(cfg: DictConfig, model: Any, trainer: Any) -> list[str]:
    """The lines that say what this run uses: model, data, experiment, networks, sizes, precision, device."""
    data = cfg.get("data") or {}

    def named(group: str, target: str | None) -> str:
        short = str(target or "").rsplit(".", 1)[-1]
        option = choice(cfg, group)
        return f"{group}={option} ({short})" if option else short or "-"

    experiment = choice(cfg, "experiment") or "none"
    sizes = []
    for key, label in (("image_size", "stored"), ("load_size", "load"), ("crop_size", "crop")):
        if data.get(key) is not None:
            sizes.append(f"{label} {data.get(key)} px")
    if data.get("batch_size") is not None:
        sizes.append(f"batch {data.get('batch_size')}")
    device = type(trainer.accelerator).__name__.replace("Accelerator", "").lower()
    lines = [
        f"model: {named('model', cfg.model.get('_target_'))}; data: {named('data', data.get('_target_'))}; "
        f"experiment: {experiment}",
        f"networks: {describe_networks(model)}",
        f"sizes: {', '.join(sizes) or 'from the data'}; max_epochs {cfg.trainer.get('max_epochs')}; seed {cfg.get('seed')}",
        f"precision {trainer.precision} on {device} x {trainer.num_devices} ({trainer.strategy.__class__.__name__})",
    ]
    if trainer.loggers:
        lines.append(f"loggers: {describe_loggers(trainer.loggers)}")
    return lines


def describe_loggers(loggers: list[Any]) -> str:
    """``csv, wandb (offline in <dir>; `wandb sync <dir>/offline-run-*` uploads it)``."""
    names = []
    for logger in loggers:
        name = type(logger).__name__.removesuffix("Logger").removeprefix("Run").lower()
        folder = getattr(logger, "offline_folder", None)  # set by ganstyle.run.loggers.make_wandb_logger
        if folder:
            name += f" (offline in {folder}; `wandb sync {folder}/offline-run-*` uploads it)"
        names.append(name)
    return ", ".join(names)


def log_start_block(cfg: DictConfig, model: Any, trainer: Any) -> None:
    if trainer.is_global_zero:
        log.info("this run:\n  %s", "\n  ".join(start_block(cfg, model, trainer)))
