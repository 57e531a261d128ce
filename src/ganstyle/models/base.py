"""The contract between a ganstyle model and the framework: :class:`ImageModel`, the base class of
every model, declares each hook and class attribute that training, callbacks, monitoring and inference
call, with one signature each, and implements what all models share: plain-data hyperparameters,
loss-term checks, optimisers and per-epoch schedulers, learning-rate logging, NaN/inf step skipping.

A model subclass declares (class attributes, documented on :class:`ImageModel`)
- ``data_kinds``, ``loss_terms``, ``visual_rows``, ``test_translation_folders``,
  ``inference_directions``, ``inference_conditioning`` (and, for FID/KID and checkpoint selection,
  ``distribution_domains`` and ``ground_truth_monitor``),
and implements ``make_optimizers`` (``{role: optimizer}``), ``training_step``, ``validation_step``, ``compute_visuals`` and,
where they apply, ``validation_metric_names``, ``distribution_samples``, ``test_translations`` and
``inference_generator``. A subclass overriding ``setup`` or ``on_save_checkpoint`` calls ``super()``.

Hyperparameters are plain data (network configs with ``_target_``, not built networks), so
``Model.load_from_checkpoint(path)`` restores a model without the Hydra run that made it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, TypedDict

import hydra
import lightning.pytorch as pl
import torch
from omegaconf import OmegaConf
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from ganstyle.config import ConfigError, LossConfig, validate_loss_config
from ganstyle.losses.adversarial import DiscriminatorLoss, discriminator_loss
from ganstyle.models.validation_metrics import ValidationMetricsMixin
from ganstyle.utils.augmentation import AdaptiveProbability, augment, check_policies
from ganstyle.utils.batching import batched_call
from ganstyle.utils.ddp import find_unused_parameters_for_gans
from ganstyle.utils.lightning_compat import attached_trainer
from ganstyle.utils.performance import fused_optimizer_kwargs, prepare_networks
from ganstyle.utils.random_states import restore_rng_states, rng_states

if TYPE_CHECKING:  # annotations only: typing.Unpack needs Python 3.11
    from typing_extensions import Unpack

# Loss weights every model understands trivially: gp_weight only matters with gan_mode=wgangp.
_ALWAYS_ALLOWED = ("gan_weight", "gp_weight")
# The attributes that hold a model's discriminators or critics (D_A judges domain A, ...).
DISCRIMINATOR_ATTRIBUTES = ("D", "D_A", "D_B", "discriminator")
_ALL_WEIGHTS = tuple(name for name in LossConfig.__dataclass_fields__ if name.endswith("_weight"))


def build(config: dict[str, Any] | None, **kwargs: Any) -> Any:
    """Instantiate a `_target_` config (a network, a partial optimiser or scheduler)."""
    if config is None:
        return None
    return hydra.utils.instantiate(config, **kwargs)


def build_model(config: Any) -> ImageModel:
    """The model a ``model`` config node describes (``cfg.model``), as ``train()`` builds it.

    Its networks, optimisers and schedulers stay configs (``_recursive_=False``): the model builds them
    and saves them as hyperparameters, as plain dicts and lists (``_convert_="all"``), so a checkpoint
    restores without Hydra or the config that made it.
    """
    return hydra.utils.instantiate(config, _recursive_=False, _convert_="all")


def complete_loss_config(loss: dict[str, Any] | None) -> dict[str, Any]:
    """The loss config merged onto the typed schema: every key present, types checked.

    Models built from Python (or from a checkpoint that predates a newer loss key) get the schema's
    defaults for keys they do not set; an unknown key or a wrong type raises with the key's name.
    """
    merged = OmegaConf.merge(OmegaConf.structured(LossConfig), loss or {})
    return OmegaConf.to_container(merged, resolve=True)


def plain_data(value: Any) -> Any:
    """``value`` with every OmegaConf node in it resolved to plain dicts and lists (what checkpoints
    store as hyperparameters); plain values come back equal, of the same types."""
    if OmegaConf.is_config(value):
        return OmegaConf.to_container(value, resolve=True)
    if isinstance(value, dict):
        return {key: plain_data(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain_data(item) for item in value)
    return value


class InferenceConditioning(TypedDict, total=False):
    """The keyword arguments of :meth:`ImageModel.inference_generator`: per-call conditioning of models
    that take a style at inference time (AdaIN). A model lists those it uses in
    ``inference_conditioning``; the inference code refuses the others, naming them."""

    style_images: Sequence[torch.Tensor]  # a list of (1, 3, h, w) tensors in [-1, 1]
    alpha: float  # content/style trade-off in [0, 1] (absent: the model's default, full style)
    style_weights: Sequence[float]  # one non-negative weight per style image (absent: equal weights)
    preserve_color: bool  # keep the content's colours (absent: off)


# The train/lr_<name> metric of each optimiser: generator, discriminator and CUT's heads log as G, D
# and F, the names these curves have in existing logs, reports and dashboards; others use their name.
LEARNING_RATE_METRIC_NAMES = {"generator": "G", "discriminator": "D", "heads": "F"}
# The roles an optimiser can have; each keeps its name across models (make_optimizers' keys). AdaIN
# trains a decoder only, Gatys optimises the image itself.
OPTIMIZER_ROLES = ("generator", "discriminator", "heads", "decoder", "image")


class ImageModel(ValidationMetricsMixin, pl.LightningModule):
    """Base class of every ganstyle model: the hooks the framework calls, declared with one signature.

    Manual optimisation, plain-data hyperparameters, per-epoch learning-rate schedules. The class
    attributes below describe a model to code that never builds it (config checks, monitoring, the
    inference commands); the methods under "hooks" are what callbacks and inference call.
    """

    # --- what a model declares ------------------------------------------------------------------
    # The ``data_kind`` of the data modules it trains on (unpaired, paired, content_style,
    # single_image_style, image_folder), checked against ``data=`` before anything is built.
    data_kinds: tuple[str, ...] = ()
    # The weights in the ``loss`` config it uses; a non-zero weight outside them is refused (see
    # check_loss_config), as it would otherwise be silently ignored.
    loss_terms: tuple[str, ...] = ()
    # Rows of the image names compute_visuals returns, for the image grids and the report.
    visual_rows: tuple[tuple[str, ...], ...] = ()
    # The folders test_translations fills (translations/<folder>/ after training); empty: the model
    # writes no test-set translations and the test set is never loaded.
    test_translation_folders: tuple[str, ...] = ()
    # The directions inference_generator accepts, the first being the default; empty for a model with
    # one generator (its direction was fixed at training time), which takes direction=None only.
    inference_directions: tuple[str, ...] = ()
    # The keyword arguments of inference_generator this model uses (AdaIN's style images, alpha, ...);
    # the inference code refuses the others, naming them, instead of ignoring them.
    inference_conditioning: tuple[str, ...] = ()
    # Weights a model creates from its data in setup (Gatys' image): absent from a freshly built model,
    # so resuming does not take their absence for another config.
    weights_built_from_data: tuple[str, ...] = ()
    # Set by the inference loader for a checkpoint written by `ganstyle import-reference`: the
    # directions whose generators hold the reference's weights (the others are untrained). None for a
    # checkpoint from training.
    imported_directions: list[str] | None = None

    def __init__(self) -> None:
        super().__init__()
        # Each model steps its optimisers itself, in the order its paper gives.
        self.automatic_optimization = False
        # Optimiser steps skipped for a NaN/inf loss (see finite_or_skip); saved in checkpoints.
        self.skipped_steps = 0
        # {optimizer name: {term: value}} of the non-finite terms of the latest skipped steps; read
        # and cleared through nonfinite_terms / clear_nonfinite_terms.
        self._nonfinite_terms: dict[str, dict[str, float]] = {}
        # The epoch whose learning rates have been logged (see on_train_batch_start).
        self._learning_rates_logged_epoch: int | None = None
        # Training batches of the run so far, the current one included (see logs_this_step); saved in
        # checkpoints. None after resuming from a checkpoint written before it was counted.
        self.training_batches: int | None = 0

    # --- the shared start of __init__ -----------------------------------------------------------
    @classmethod
    def checked_loss_config(cls, loss: Mapping[str, Any] | None) -> dict[str, Any]:
        """The ``loss`` argument as plain data, completed by the schema (:func:`complete_loss_config`)
        and checked against this model's terms (:meth:`check_loss_config`): what ``__init__`` uses."""
        loss = plain_data(loss) or {}
        validate_loss_config(loss)  # before the schema merge: a misspelt key gets "did you mean"
        loss = complete_loss_config(loss)
        cls.check_loss_config(loss)
        return loss

    # --- configuration checks -------------------------------------------------------------------
    @classmethod
    def check_loss_config(cls, loss: dict[str, Any]) -> None:
        """Refuse non-zero weights for terms this model does not have, instead of ignoring them."""
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
        unknown = [name for name in optimizers if name not in OPTIMIZER_ROLES]
        if not isinstance(optimizers, Mapping) or unknown:
            raise TypeError(
                f"{type(self).__name__}.make_optimizers() must return {{role: optimizer}} with roles from "
                f"{OPTIMIZER_ROLES}; got {unknown or type(optimizers).__name__}."
            )
        self.__dict__["_optimizer_names"] = tuple(optimizers)
        schedulers = [s for s in (self.build_scheduler(o) for o in optimizers.values()) if s is not None]
        # "epoch" interval is informational here: with manual optimisation we step them ourselves.
        return list(optimizers.values()), [{"scheduler": s, "interval": "epoch"} for s in schedulers]

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """``{role: optimizer}`` (roles from ``OPTIMIZER_ROLES``); the base adds the schedulers. The role
        names the optimiser in ``step_if_finite``, in NaN/inf reports and in its ``train/lr_*`` metric;
        ``self.optimizers()`` returns them in this order."""
        raise NotImplementedError(f"{type(self).__name__} does not implement make_optimizers()")

    @property
    def optimizer_names(self) -> tuple[str, ...]:
        """The roles of this model's optimisers, in ``self.optimizers()``' order (all roles before
        ``configure_optimizers`` has run)."""
        return self.__dict__.get("_optimizer_names", OPTIMIZER_ROLES)

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
        if optimizer_name not in self.optimizer_names:
            raise ValueError(
                f"{type(self).__name__} steps an optimiser named {optimizer_name!r}, which is not one of "
                f"the roles its make_optimizers() returns {self.optimizer_names}."
            )
        finite = bool(torch.isfinite(torch.stack([t.detach().float().sum() for t in terms.values()])).all())
        trainer = attached_trainer(self)
        if trainer is not None and trainer.world_size > 1:
            finite = trainer.strategy.reduce_boolean_decision(finite, all=True)
        if finite:
            return True
        self.skipped_steps += 1
        bad = {
            name: float(value.detach().float().sum())
            for name, value in terms.items()
            if not bool(torch.isfinite(value.detach()).all())
        }
        self._nonfinite_terms[optimizer_name] = bad or {"(a term on another rank)": float("nan")}
        return False

    def nonfinite_terms(self) -> dict[str, dict[str, float]]:
        """``{optimizer name: {term: value}}``: the NaN/inf terms of the steps skipped since the last
        :meth:`clear_nonfinite_terms` (the NanGuard callback clears them before each batch)."""
        return {name: dict(terms) for name, terms in self._nonfinite_terms.items()}

    def clear_nonfinite_terms(self) -> None:
        self._nonfinite_terms.clear()

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

    # --- discriminators: the one path -----------------------------------------------------------
    # Augmentation of every discriminator input (ganstyle.utils.augmentation; train() sets it from `augment`).
    augment_policies: tuple[str, ...] = ()
    adaptive_augmentation: dict[str, Any] | None = None  # ADA's settings; None: DiffAugment's p = 1

    def set_augmentation(
        self,
        policies: Sequence[str] = (),
        adaptive: bool = False,
        p: float = 0.0,
        target: float = 0.6,
        interval: int = 4,
        kimg: float = 500.0,
        adjust: bool = True,
    ) -> None:
        """Augment every image a discriminator sees in training with ``policies`` (``augment=...``):
        always (DiffAugment), or, with ``adaptive``, with ADA's probability p per discriminator,
        starting at ``p`` and moved towards r_t = ``target`` every ``interval`` batches (``adjust``:
        false holds it)."""
        self.augment_policies = check_policies(policies)
        if self.augment_policies and not any(
            getattr(self, name, None) is not None for name in DISCRIMINATOR_ATTRIBUTES
        ):
            raise ConfigError(
                f"augment.policies={list(self.augment_policies)} augments what a discriminator sees, but "
                f"this {type(self).__name__} has no discriminator (fast_style has one only with "
                "loss.gan_weight > 0; Gatys and AdaIN have none). Drop augment=..., or use augment=none."
            )
        self.adaptive_augmentation = (
            {"p": p, "target": target, "interval": interval, "kimg": kimg, "adjust": bool(adjust)}
            if adaptive and self.augment_policies
            else None
        )
        AdaptiveProbability(target, interval, kimg, p)  # a wrong value fails before training

    def discriminator_name(self, discriminator: Any) -> str:
        """The attribute that holds ``discriminator`` (``D_A``, ``D``, ``discriminator``): its metrics' suffix."""
        for name, child in self.named_children():
            if child is discriminator:
                return name
        return "D"

    def _augmented(self, discriminator: Any, images: torch.Tensor) -> torch.Tensor:
        if not self.augment_policies or not self.training:
            return images  # validation and inference see the images as they are
        if self.adaptive_augmentation is None:
            return augment(images, self.augment_policies)
        ada = self.ada_state(discriminator)
        if not self.adaptive_augmentation["adjust"] and self.adaptive_augmentation["p"] == 0:
            return images  # p held at 0: exactly augment=none, random streams included
        ada.p = ada.p.to(images.device)  # once: later batches find it there (no copy, no host sync)
        return augment(images, self.augment_policies, probability=ada.p)

    def ada_state(self, discriminator: Any) -> AdaptiveProbability:
        """ADA's probability of ``discriminator`` (one per discriminator; saved in checkpoints)."""
        name = self.discriminator_name(discriminator)
        states = self.__dict__.setdefault("_ada_states", {})
        if name not in states:
            settings = {key: value for key, value in self.adaptive_augmentation.items() if key != "adjust"}
            states[name] = AdaptiveProbability(**settings)
            saved = self.__dict__.get("_ada_saved", {}).get(name)
            if saved is not None:
                states[name].load_state_dict(saved)
        return states[name]

    def discriminate(
        self, discriminator: Callable[[torch.Tensor], Any], *images: torch.Tensor, together: bool = False
    ) -> Any:
        """``discriminator``'s outputs on each batch in ``images``: one output, or a tuple for several.

        Every call of a discriminator or critic in every model goes through here: its D step
        (:meth:`discriminator_objective`), the adversarial term of its G step, the gradient penalty
        and validation. So the augmentation (``augment=diffaugment | ada``) is applied here, in
        training, to every image a discriminator sees, real and fake alike, differentiably.
        ``together``: one call on the concatenated batches (the same outputs when the
        discriminator's samples are independent, :func:`~ganstyle.utils.batching.samples_are_independent`).
        """
        images = tuple(self._augmented(discriminator, batch) for batch in images)
        if together and len(images) > 1:
            return batched_call(discriminator, *images)
        outputs = tuple(discriminator(batch) for batch in images)
        return outputs if len(images) > 1 else outputs[0]

    def record_real_scores(self, discriminator: Any, prediction_real: Any, batch_size: int) -> None:
        """What a discriminator says about training reals: ADA's overfitting heuristic
        r_t = E[sign(D(x_real))] logged as ``train/r_t_<D>`` (near 1: D calls every real image real,
        it memorises them), the mean output kept for ``val/D_real_train_<D>``, and ADA's p moved."""
        scores = per_image_scores(prediction_real).detach()
        name = self.discriminator_name(discriminator)
        sums = self.__dict__.setdefault("_real_score_sums", {})
        total, count = sums.get(name, (0.0, 0))
        sums[name] = (total + scores.mean(), count + 1)
        values = {f"train/r_t_{name}": torch.sign(scores).mean()}
        if self.adaptive_augmentation is not None:
            ada = self.ada_state(discriminator)
            if self.adaptive_augmentation["adjust"]:
                ada.observe(scores)
            values[f"train/ada_p_{name}"] = ada.p
        if attached_trainer(self) is not None:  # a step run outside a Trainer (benchmarks) logs nothing
            self.log_training_values(values, batch_size)

    def log_real_score_gap(self, batch: Any) -> None:
        """``val/D_real_heldout_<D>``: a discriminator's mean output on this validation batch's real
        images, logged next to ``val/D_real_train_<D>``, its mean on training reals since the last
        validation. The two drift apart when it memorises the training set (ADA's figure 1)."""
        for name, images in self.discriminator_real_inputs(batch).items():
            scores = per_image_scores(self.discriminate(getattr(self, name), images))
            self.log(f"val/D_real_heldout_{name}", scores.mean(), batch_size=images.shape[0], sync_dist=True)

    def log_real_score_train_means(self) -> None:
        for name, (total, count) in self.__dict__.pop("_real_score_sums", {}).items():
            self.log(f"val/D_real_train_{name}", total / max(count, 1), sync_dist=True)

    def discriminator_real_inputs(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """``{discriminator attribute: the real images it judges}`` from a validation batch (CycleGAN:
        ``{"D_A": batch["A"], "D_B": batch["B"]}``); empty for a model without a discriminator."""
        return {}

    def discriminator_objective(
        self,
        discriminator: Callable[[torch.Tensor], Any],
        real: torch.Tensor,
        fake: torch.Tensor,
        real_fake_weight: float,
        order: str = "real_first",
    ) -> DiscriminatorLoss:
        """A discriminator's loss on real and generated images, scored through :meth:`discriminate`:
        :func:`~ganstyle.losses.adversarial.discriminator_loss` with the model's adversarial loss and
        ``loss.gp_weight`` (the penalty's critic calls go through :meth:`discriminate` too).

        ``order``: ``real_first`` (CycleGAN's backward_D_basic), ``fake_first`` (pix2pix's and CUT's
        backward_D / compute_D_loss; with batch norm the running statistics depend on it) or
        ``together`` (one call on both, when the samples are independent).
        """
        fake = fake.detach()
        if order == "together":
            predictions = self.discriminate(discriminator, real, fake, together=True)
        elif order == "fake_first":
            prediction_fake = self.discriminate(discriminator, fake)
            predictions = (self.discriminate(discriminator, real), prediction_fake)
        else:
            predictions = self.discriminate(discriminator, real, fake)
        self.record_real_scores(discriminator, predictions[0], real.shape[0])
        return discriminator_loss(
            self.adversarial,
            partial(self.discriminate, discriminator),
            real,
            fake,
            gp_weight=self.hparams.loss["gp_weight"],
            real_fake_weight=real_fake_weight,
            predictions=tuple(predictions),
        )

    # --- Lightning hooks shared by all models ---------------------------------------------------
    # Speed switches from the `performance` config (ganstyle.utils.performance); train() sets them.
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
        without gradients; see ganstyle.utils.ddp), then the speed switches convert the networks.
        A subclass overriding setup calls ``super().setup(stage)``.
        """
        trainer = attached_trainer(self)
        if trainer is not None:
            find_unused_parameters_for_gans(trainer.strategy)
        prepare_networks(self, channels_last=self.channels_last, compile=self.compile_networks)

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
        if not self.logs_this_step():
            return
        self.log_dict(dict(values), batch_size=batch_size)
        if progress_bar:
            self.log_dict(dict(progress_bar), prog_bar=True, logger=False, batch_size=batch_size)

    def on_train_start(self) -> None:
        # Lightning restores each optimiser's learning rate as the checkpoint saved it: the rate the
        # schedule of the saved run gave the next epoch. Resuming with a larger trainer.max_epochs
        # refits the schedule to the longer run (utils.schedulers.fit_to_run), and the saved rate is
        # then the old schedule's, 0 after its last epoch. A closed-form schedule (LambdaLR, as
        # linear_decay) is applied again at the restored epoch, so the first resumed epoch trains at
        # the refitted rate; a fresh or unchanged run gets the rate it already has.
        for scheduler in self.scheduler_list():
            if isinstance(scheduler, LambdaLR):
                rates = [
                    base_lr * rate(scheduler.last_epoch)
                    for rate, base_lr in zip(scheduler.lr_lambdas, scheduler.base_lrs, strict=True)
                ]
                for group, lr in zip(scheduler.optimizer.param_groups, rates, strict=True):
                    group["lr"] = lr

    def on_train_epoch_start(self) -> None:
        self._log_learning_rates()

    def logs_this_step(self) -> bool:
        """Whether the current training batch's values reach the loggers: on every
        ``trainer.log_every_n_steps``-th batch of the run and when the trainer is stopping, the batches
        Lightning's loggers write (their step is the count of training batches, not of optimiser steps).
        Always without a trainer or loggers, and after resuming a checkpoint that predates the count."""
        trainer = attached_trainer(self)
        if trainer is None or not trainer.loggers or self.training_batches is None:
            return True
        every = trainer.log_every_n_steps
        return every > 0 and (self.training_batches % every == 0 or trainer.should_stop)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if self.training_batches is not None:
            self.training_batches += 1  # this batch included, like the loggers' step + 1
        # A run resumed mid-epoch (Ctrl-C, SIGTERM, a SLURM requeue) starts inside an epoch whose
        # on_train_epoch_start ran before the stop: its learning-rate row would be missing from the
        # metric history, so it is logged at the first batch instead.
        if self._learning_rates_logged_epoch != self.current_epoch:
            self._log_learning_rates()

    def _log_learning_rates(self) -> None:
        self._learning_rates_logged_epoch = self.current_epoch
        for name, optimizer in zip(self.optimizer_names, self.optimizer_list()):
            metric = f"train/lr_{LEARNING_RATE_METRIC_NAMES.get(name, name)}"
            # sync_dist: the same value on every rank, but an unsynced epoch value makes Lightning warn
            self.log(metric, optimizer.param_groups[0]["lr"], on_step=False, on_epoch=True, sync_dist=True)

    def on_train_epoch_end(self) -> None:
        # Manual optimisation: Lightning does not step schedulers, so each epoch ends with one step.
        for scheduler in self.scheduler_list():
            scheduler.step()

    # --- hooks the framework calls ----------------------------------------------------------------
    # validation_metric_names(loss, has_targets) and distribution_samples(batch) are declared on
    # ValidationMetricsMixin, with the FID/KID machinery they serve.
    @torch.no_grad()
    def compute_visuals(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """``{name: images (N, C, H, W) in [-1, 1]}`` for one batch, every name of ``visual_rows``
        included: what the image grids (ganstyle.callbacks.ImageGrids) and the report show."""
        raise NotImplementedError(f"{type(self).__name__} does not implement compute_visuals(batch)")

    def test_translations(self, batch: dict[str, Any]) -> dict[str, tuple[torch.Tensor, list[str]]]:
        """``{folder: (images (N, C, H, W) in [-1, 1], their N source paths)}`` for one test batch, one
        entry per name of ``test_translation_folders``; written after training by the
        TranslateTestSet callback. The default, for models with no test-set outputs: none."""
        return {}

    def inference_generator(
        self, direction: str | None = None, **conditioning: Unpack[InferenceConditioning]
    ) -> nn.Module:
        """The network that stylises new images: ``(N, 3, H, W)`` in [-1, 1] to the same in [-1, 1].

        ``ganstyle.load``, ``ganstyle stylize`` and ``ganstyle export`` call it through
        ``ganstyle.inference.loading.inference_network``, which checks the arguments against
        ``inference_directions`` and ``inference_conditioning`` first.

        Args:
            direction: one of ``inference_directions``; None: the first (models with one generator
                take None only).
            conditioning: the keywords of :class:`InferenceConditioning` the model lists in
                ``inference_conditioning`` (AdaIN's style images, ...); a keyword not given, or
                given as None, is absent. The inference code passes no other.

        The returned
        module's ``size_multiple`` attribute (1 when absent) says what H and W must be multiples of;
        ``ganstyle.inference`` pads to it and crops back. A model with no network to apply to images
        (DCGAN generates from noise, Gatys optimises one image) raises NotImplementedError whose
        message says what to use instead.
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not implement inference_generator(direction), so it cannot be "
            "applied to new images; add the method (see ganstyle.models.base.ImageModel)."
        )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Hyperparameters as plain data, so the checkpoint loads with weights_only and without Hydra.
        # build_model passes plain configs already; a model built from Python with DictConfig nodes
        # is converted here.
        if self.CHECKPOINT_HYPER_PARAMS_KEY in checkpoint:
            checkpoint[self.CHECKPOINT_HYPER_PARAMS_KEY] = plain_data(
                checkpoint[self.CHECKPOINT_HYPER_PARAMS_KEY]
            )
        # The class path lets ganstyle.load rebuild the model from the checkpoint file alone.
        checkpoint["ganstyle_model_class"] = f"{type(self).__module__}.{type(self).__qualname__}"
        # Random states make a resumed run draw what an uninterrupted one would (pool swaps, dropout).
        checkpoint["ganstyle_training_state"] = {
            "skipped_steps": self.skipped_steps,
            "training_batches": self.training_batches,
            "rng": rng_states(),
        }
        ada = self.__dict__.get("_ada_states")
        if ada:  # ADA's p per discriminator: a resumed run continues with it
            checkpoint["ganstyle_training_state"]["ada_p"] = {
                name: state.state_dict() for name, state in ada.items()
            }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("ganstyle_training_state") or {}
        self.skipped_steps = int(state.get("skipped_steps", 0))
        self.training_batches = state.get("training_batches")
        self.__dict__["_ada_saved"] = dict(state.get("ada_p") or {})
        self.__dict__.pop("_ada_states", None)
        # Only when a trainer resumes: load_from_checkpoint for inference must not reseed the caller.
        if attached_trainer(self) is not None and "rng" in state:
            restore_rng_states(state["rng"])


def per_image_scores(prediction: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    """A discriminator's output as (N, K): a patch map, or every scale of a multi-scale one, flattened
    per image (what r_t, ADA and the held-out statistics average over)."""
    scales = [prediction] if isinstance(prediction, torch.Tensor) else list(prediction)
    # reshape, not flatten(1): a per-image score (DCGAN's critic) is (N,)
    return torch.cat([scale.reshape(scale.shape[0], -1) for scale in scales], dim=1)


# The earlier name of ImageModel: code and pickles that import it keep working.
GANModule = ImageModel
