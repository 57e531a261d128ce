"""What every ganstyle LightningModule shares: building parts from plain configs, loss-term checks,
optimisers and per-epoch schedulers, learning-rate logging, and the names that make logging generic.

A model subclass declares
- ``loss_terms``: the weights in the ``loss`` config it uses (others must be 0),
- ``visual_rows``: rows of image names that ``compute_visuals`` returns, for grids and reports,
and implements ``compute_visuals(batch)`` plus its training and validation steps.

Hyperparameters are plain data (network configs with ``_target_``, not built networks), so
``Model.load_from_checkpoint(path)`` restores a model without the Hydra run that made it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import hydra
import lightning.pytorch as pl
import torch
from omegaconf import OmegaConf
from torch import nn

from ganstyle.config import ConfigError, LossConfig, validate_loss_config

# Loss weights every model understands trivially: gp_weight only matters with gan_mode=wgangp.
_ALWAYS_ALLOWED = ("gan_weight", "gp_weight")
_ALL_WEIGHTS = tuple(name for name in LossConfig.__dataclass_fields__ if name.endswith("_weight"))


def build(config: dict[str, Any] | None, **kwargs: Any) -> Any:
    """Instantiate a `_target_` config (a network, a partial optimiser or scheduler)."""
    if config is None:
        return None
    return hydra.utils.instantiate(config, **kwargs)


def complete_loss_config(loss: dict[str, Any] | None) -> dict[str, Any]:
    """The loss config merged onto the typed schema: every key present, types checked.

    Models built from Python (or from a checkpoint that predates a newer loss key) get the schema's
    defaults for keys they do not set; an unknown key or a wrong type raises with the key's name.
    """
    merged = OmegaConf.merge(OmegaConf.structured(LossConfig), loss or {})
    return OmegaConf.to_container(merged, resolve=True)


class GANModule(pl.LightningModule):
    """Base class: manual optimisation, plain-data hyperparameters, per-epoch LR schedules."""

    loss_terms: tuple[str, ...] = ()
    visual_rows: tuple[tuple[str, ...], ...] = ()

    def __init__(self) -> None:
        super().__init__()
        # Two optimisers (generators, discriminators) stepped in the order the paper gives.
        self.automatic_optimization = False

    # --- configuration checks -------------------------------------------------------------------
    @classmethod
    def check_loss_config(cls, loss: dict[str, Any]) -> None:
        """Refuse non-zero weights for terms this model does not have, instead of ignoring them."""
        validate_loss_config(loss)
        allowed = set(cls.loss_terms) | set(_ALWAYS_ALLOWED)
        for key in _ALL_WEIGHTS:
            if key not in allowed and float(loss.get(key) or 0.0) != 0.0:
                raise ConfigError(
                    f"loss.{key}={loss[key]} but {cls.__name__} has no such term (its terms: "
                    f"{', '.join(sorted(cls.loss_terms))}). A non-zero weight would be silently "
                    f"ignored; set loss.{key}=0 or choose a model that uses it."
                )

    # --- helpers for subclasses -----------------------------------------------------------------
    def build_optimizer(self, parameters: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        # Optimiser and scheduler configs are partial (`_partial_: true`): built here, given params.
        return build(self.hparams.optimizer)(list(parameters))

    def build_scheduler(self, optimizer: torch.optim.Optimizer):
        return build(self.hparams.scheduler)(optimizer) if self.hparams.scheduler else None

    def configure_optimizers(self):
        optimizers = self.make_optimizers()
        schedulers = [s for s in (self.build_scheduler(o) for o in optimizers) if s is not None]
        # "epoch" interval is informational here: with manual optimisation we step them ourselves.
        return list(optimizers), [{"scheduler": s, "interval": "epoch"} for s in schedulers]

    def make_optimizers(self) -> Sequence[torch.optim.Optimizer]:
        raise NotImplementedError

    def scheduler_list(self) -> list:
        schedulers = self.lr_schedulers()
        if schedulers is None:
            return []
        return list(schedulers) if isinstance(schedulers, list) else [schedulers]

    def optimizer_list(self) -> list:
        optimizers = self.optimizers()
        return list(optimizers) if isinstance(optimizers, list) else [optimizers]

    # --- Lightning hooks shared by all models ---------------------------------------------------
    def on_train_epoch_start(self) -> None:
        for name, optimizer in zip(self.optimizer_names(), self.optimizer_list()):
            self.log(f"train/lr_{name}", optimizer.param_groups[0]["lr"], on_step=False, on_epoch=True)

    def on_train_epoch_end(self) -> None:
        # Manual optimisation: Lightning does not step schedulers, so each epoch ends with one step.
        for scheduler in self.scheduler_list():
            scheduler.step()

    def optimizer_names(self) -> tuple[str, ...]:
        return ("G", "D")

    @torch.no_grad()
    def compute_visuals(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        raise NotImplementedError
