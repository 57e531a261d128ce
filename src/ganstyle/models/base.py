"""What every ganstyle LightningModule shares: building parts from plain configs, loss-term checks,
optimisers and per-epoch schedulers, learning-rate logging, and the names that make logging generic.

A model subclass declares
- ``loss_terms``: the weights in the ``loss`` config it uses (others must be 0),
- ``visual_rows``: rows of image names that ``compute_visuals`` returns, for grids and reports,
and implements ``compute_visuals(batch)`` plus its training and validation steps.

Models that can be applied to new images also implement ``inference_generator(direction=None)``
(and list their directions in ``inference_directions``): ``ganstyle.load``, ``ganstyle stylize``
and ``ganstyle export`` use it. A subclass overriding ``on_save_checkpoint`` calls ``super()`` so
the checkpoint keeps the model's class path.

Hyperparameters are plain data (network configs with ``_target_``, not built networks), so
``Model.load_from_checkpoint(path)`` restores a model without the Hydra run that made it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import hydra
import lightning.pytorch as pl
import torch
from omegaconf import OmegaConf
from torch import nn

from ganstyle.config import ConfigError, LossConfig, validate_loss_config
from ganstyle.models.validation_metrics import ValidationMetricsMixin
from ganstyle.utils.ddp import find_unused_parameters_for_gans
from ganstyle.utils.lightning_compat import default_logs_on_epoch
from ganstyle.utils.logging_steps import logs_this_step
from ganstyle.utils.performance import fused_optimizer_kwargs, prepare_networks
from ganstyle.utils.random_states import restore_rng_states, rng_states

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


class GANModule(ValidationMetricsMixin, pl.LightningModule):
    """Base class: manual optimisation, plain-data hyperparameters, per-epoch LR schedules."""

    loss_terms: tuple[str, ...] = ()
    visual_rows: tuple[tuple[str, ...], ...] = ()

    def __init__(self) -> None:
        super().__init__()
        # Two optimisers (generators, discriminators) stepped in the order the paper gives.
        self.automatic_optimization = False
        # Optimiser steps skipped for a NaN/inf loss (see finite_or_skip); saved in checkpoints.
        self.skipped_steps = 0
        # {optimizer name: {term: value}} of the non-finite terms of the latest skipped steps.
        self.last_nonfinite: dict[str, dict[str, float]] = {}

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
        # Lightning calls configure_optimizers after moving the model, so `auto` sees the device.
        optimizer, parameters = build(self.hparams.optimizer), list(parameters)
        fused = fused_optimizer_kwargs(getattr(optimizer, "func", None), parameters, self.fused_optimizers)
        return optimizer(parameters, **fused)

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

    def finite_or_skip(self, terms: Mapping[str, torch.Tensor], optimizer_name: str) -> bool:
        """True when every loss term is finite; else the caller skips this backward and step.

        :meth:`step_if_finite` is the usual caller; a model with its own step (Gatys' L-BFGS closure)
        calls it between computing the loss terms and ``manual_backward``. A skipped step leaves the
        weights and optimiser moments as they were: one NaN step would otherwise write NaN into every
        weight it touches and the run could never recover. Skips are counted in ``skipped_steps``;
        the NanGuard callback logs them and stops the run after a streak. Under DDP all ranks skip
        together (a rank skipping backward alone would hang the gradient all-reduce).
        """
        finite = bool(torch.isfinite(torch.stack([t.detach().float().sum() for t in terms.values()])).all())
        if self._trainer is not None and self.trainer.world_size > 1:
            finite = self.trainer.strategy.reduce_boolean_decision(finite, all=True)
        if finite:
            return True
        self.skipped_steps += 1
        bad = {
            name: float(value.detach().float().sum())
            for name, value in terms.items()
            if not bool(torch.isfinite(value.detach()).all())
        }
        self.last_nonfinite[optimizer_name] = bad or {"(a term on another rank)": float("nan")}
        return False

    def step_if_finite(
        self, optimizer, loss: torch.Tensor, terms: Mapping[str, torch.Tensor], optimizer_name: str
    ) -> bool:
        """One optimiser step on ``loss`` (the sum of ``terms``) unless a term is NaN/inf.

        See :meth:`finite_or_skip`: a skipped step leaves weights and optimiser moments untouched
        and is counted. Returns whether the step was taken.
        """
        if not self.finite_or_skip(terms, optimizer_name):
            return False
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        optimizer.step()
        return True

    # --- Lightning hooks shared by all models ---------------------------------------------------
    # Speed switches from the `performance` config (ganstyle.performance); train() sets them.
    channels_last: bool = False
    compile_networks: bool = False
    fused_optimizers: bool | str = "auto"

    def set_performance_options(
        self, channels_last: bool = False, compile: bool = False, fused_optimizers: bool | str = "auto"
    ) -> None:
        self.channels_last, self.compile_networks = bool(channels_last), bool(compile)
        fused_optimizer_kwargs(None, [], fused_optimizers)  # a wrong value fails before training starts
        self.fused_optimizers = fused_optimizers

    def setup(self, stage: str) -> None:
        """Runs on every rank before Lightning moves the model to its device and wraps it in DDP.

        DDP must look for unused parameters (each GAN optimiser's backward leaves the other networks
        without gradients; see ganstyle.distributed), then the speed switches convert the networks.
        A subclass overriding setup calls ``super().setup(stage)``.
        """
        if self._trainer is not None:
            find_unused_parameters_for_gans(self.trainer.strategy)
        prepare_networks(self, channels_last=self.channels_last, compile=self.compile_networks)

    def log(self, name: str, value: Any, *args: Any, **kwargs: Any) -> None:
        """Lightning's ``log``; values logged per epoch are averaged over DDP processes by default.

        Each process validates its own shard, so without ``sync_dist`` the epoch value would be rank
        0's shard alone (and checkpoints would pick the "best" epoch from it). Per-step training values
        stay per process: syncing them would add a collective per value per step. torchmetrics objects
        synchronise themselves either way; an explicit ``sync_dist=`` is respected.
        """
        kwargs.setdefault("sync_dist", self._logs_per_epoch(kwargs.get("on_epoch")))
        super().log(name, value, *args, **kwargs)

    def log_dict(self, dictionary: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("sync_dist", self._logs_per_epoch(kwargs.get("on_epoch")))
        super().log_dict(dictionary, *args, **kwargs)

    def log_training_values(
        self,
        values: Mapping[str, Any],
        batch_size: int,
        progress_bar: Mapping[str, Any] | None = None,
    ) -> None:
        """Log a training step's ``values`` (and ``progress_bar`` entries, shown but not logged).

        Only on the steps the loggers write (every ``trainer.log_every_n_steps``, and the last): a
        ``self.log`` call costs about half a millisecond of Lightning bookkeeping, which for ten
        values was 4-13% of a small model's CPU step, and Lightning drops per-step values from the
        other steps anyway. ``trainer.callback_metrics`` and the progress bar therefore hold the
        latest written step. Without loggers (tests, ``logger=none``) every step is logged.
        """
        if self._trainer is not None and not logs_this_step(self.trainer):
            return
        self.log_dict(dict(values), batch_size=batch_size)
        if progress_bar:
            self.log_dict(dict(progress_bar), prog_bar=True, logger=False, batch_size=batch_size)

    def _logs_per_epoch(self, on_epoch: bool | None) -> bool:
        if on_epoch is not None:
            return on_epoch
        # Lightning's own default for the hook being run: on_epoch in validation, not in training_step
        return default_logs_on_epoch(self)

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

    # --- inference (ganstyle.inference: stylize, export) ----------------------------------------
    # Directions inference_generator accepts, the first being the default; empty for models with
    # one generator (its direction was fixed at training time).
    inference_directions: tuple[str, ...] = ()

    def inference_generator(self, direction: str | None = None) -> nn.Module:
        """The network that stylises new images: ``(N, 3, H, W)`` in [-1, 1] to the same in [-1, 1].

        Its ``size_multiple`` attribute (1 when absent) says what H and W must be multiples of;
        ``ganstyle.inference`` pads to it and crops back. Models with per-call conditioning (AdaIN's
        style images) take it as keyword arguments: ``style_images`` (a list of ``(1, 3, H, W)``
        tensors in [-1, 1]) and ``alpha`` (a float in [0, 1]).
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not implement inference_generator(direction), so it cannot be "
            "applied to new images; add the method (see ganstyle.models.base.GANModule)."
        )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # The class path lets ganstyle.load rebuild the model from the checkpoint file alone.
        checkpoint["ganstyle_model_class"] = f"{type(self).__module__}.{type(self).__qualname__}"
        # Random states make a resumed run draw what an uninterrupted one would (pool swaps, dropout).
        checkpoint["ganstyle_training_state"] = {"skipped_steps": self.skipped_steps, "rng": rng_states()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("ganstyle_training_state") or {}
        self.skipped_steps = int(state.get("skipped_steps", 0))
        # Only when a trainer resumes: load_from_checkpoint for inference must not reseed the caller.
        if self._trainer is not None and "rng" in state:
            restore_rng_states(state["rng"])
