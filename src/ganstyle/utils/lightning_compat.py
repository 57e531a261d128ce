"""Every use of Lightning's private internals, in one place.

Lightning exposes no public API for these four facts, and ganstyle needs each of them. The internals
they rely on may move or be renamed in any Lightning release, so each has one small function here and
``tests/test_lightning_compat.py`` checks every one against the installed version: an upgrade that
moves one fails that test by name instead of failing deep inside a training run. Private modules are
imported inside the functions, so a moved internal breaks only the feature that needs it, never
``import ganstyle``.
"""

from __future__ import annotations

from typing import Any


def default_logs_on_epoch(module: Any) -> bool:
    """Lightning's own default for ``self.log(on_epoch=...)`` in the hook ``module`` is running now:
    True in validation hooks, False in ``training_step``; False outside any hook.

    Relies on ``LightningModule._current_fx_name`` (the hook being run, set by the Trainer) and
    ``lightning.pytorch.trainer.connectors.logger_connector.fx_validator._FxValidator
    .get_default_logging_levels(fx_name, on_step, on_epoch) -> (on_step, on_epoch)``: asking Lightning
    keeps ganstyle's logging defaults identical to ``self.log``'s without copying its table of hooks.
    """
    from lightning.pytorch.trainer.connectors.logger_connector.fx_validator import _FxValidator

    try:
        return _FxValidator.get_default_logging_levels(module._current_fx_name, None, None)[1]
    except (KeyError, TypeError, AssertionError):  # not inside a hook Lightning knows
        return False


def ddp_kwargs(strategy: Any) -> dict[str, Any] | None:
    """The keyword arguments a DDP strategy will pass to ``DistributedDataParallel`` (a live dict:
    changes before the module is wrapped take effect), or None if this Lightning keeps them elsewhere.

    Relies on ``DDPStrategy._ddp_kwargs``: the public way is choosing the strategy's arguments when it
    is built, but ganstyle must switch on ``find_unused_parameters`` for GANs on a strategy the user's
    config already built (``trainer.strategy=ddp``).
    """
    value = getattr(strategy, "_ddp_kwargs", None)
    return value if isinstance(value, dict) else None


def launches_by_rerunning_script(strategy: Any) -> bool:
    """Whether the strategy's launcher starts the other ranks by re-running ``sys.argv`` (Lightning's
    ``ddp``), before any process is started.

    Relies on ``lightning.pytorch.strategies.launchers.subprocess_script._SubprocessScriptLauncher``:
    the launcher's class is the only sign of it, and under Hydra's ``-m`` re-running the command line
    would re-run the whole sweep on every extra rank.
    """
    from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher

    return isinstance(getattr(strategy, "launcher", None), _SubprocessScriptLauncher)


def loggers_write_this_step(trainer: Any) -> bool:
    """Whether the trainer's loggers write the values logged in the current training step (every
    ``log_every_n_steps`` and on the last step); True when this Lightning cannot say.

    Relies on ``trainer._logger_connector.should_update_logs``, the test Lightning itself applies to
    drop the other steps' values: logging only on those steps saves ``self.log``'s bookkeeping cost
    without changing what the loggers receive.
    """
    connector = getattr(trainer, "_logger_connector", None)
    return bool(connector.should_update_logs) if connector is not None else True
