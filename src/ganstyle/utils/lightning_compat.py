"""Every use of Lightning's private internals, in one place.

Lightning exposes no public API for these five facts, and ganstyle needs each of them. The internals
they rely on may move or be renamed in any Lightning release, so each has one small function here and
``tests/test_lightning_compat.py`` checks every one against the installed version: an upgrade that
moves one fails that test by name instead of failing deep inside a training run. Private modules are
imported inside the functions, so a moved internal breaks only the feature that needs it, never
``import ganstyle``.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.loggers.csv_logs import ExperimentWriter  # public; its methods used below are not

from ganstyle.utils.metrics_csv import read_metrics_csv, rows_logged_before, step_of, write_csv_atomically


def attached_trainer(module: Any) -> Any | None:
    """The Trainer running ``module``, or None when it runs without one (a bare forward pass,
    ``load_from_checkpoint`` for inference, a test calling a step directly).

    Relies on ``LightningModule._trainer``: the public ``module.trainer`` raises when no trainer is
    attached, and the models' hooks must work in both cases without catching every RuntimeError.
    """
    return getattr(module, "_trainer", None)


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


def stop_after_this_batch(trainer: Any) -> None:
    """Ask the trainer to stop the way it stops on SIGTERM: once the current batch's metrics are logged
    and its loggers saved, its loop raises ``SIGTERMException`` (and broadcasts the stop to the other
    ranks).

    Relies on ``trainer._signal_connector.received_sigterm``, the flag Lightning's own SIGTERM handler
    sets. Stopping from a callback hook instead (``on_train_batch_end``) comes before Lightning hands
    that batch's logged values to the loggers, so they would be lost from ``metrics.csv``.
    """
    trainer._signal_connector.received_sigterm = True


def csv_logger_experiment_keeping_rows(logger: Any, keep_earlier_rows: bool) -> Any:
    """The experiment writer of a ``CSVLogger``, built on first use like Lightning's, but one that keeps
    the rows already in its ``metrics.csv`` when ``keep_earlier_rows`` (a resumed run's file).

    Relies on ``CSVLogger._experiment`` and ``._fs`` (where the logger keeps its writer and file
    system) and on ``ExperimentWriter._check_log_dir_exists`` (called by the writer's ``__init__``,
    where Lightning deletes an existing ``metrics.csv``), ``_record_new_keys`` and
    ``_rewrite_with_new_header``: Lightning offers no way to continue a metrics file, and deleting it
    before the resumed run has written anything would lose the earlier rows on any crash in between.
    """
    if logger._experiment is None:
        logger._fs.makedirs(logger.root_dir, exist_ok=True)
        logger._experiment = ContinuingExperimentWriter(logger.log_dir, keep_earlier_rows)
    return logger._experiment


class ContinuingExperimentWriter(ExperimentWriter):
    """Lightning's CSV ``ExperimentWriter``, keeping earlier rows when asked (see above); every whole-
    file rewrite goes through a temporary file, so a crash never leaves the file truncated. At module
    level, so a logger holding one can be pickled (``ddp_spawn`` sends the loggers to its processes)."""

    def __init__(self, log_dir: str, keep_earlier_rows: bool = False) -> None:
        self._keep_earlier_rows = keep_earlier_rows
        self._earlier_rows: list[dict[str, str]] = []
        super().__init__(log_dir=log_dir)

    def _check_log_dir_exists(self) -> None:
        if not self._keep_earlier_rows:
            super()._check_log_dir_exists()
            return
        self.metrics_keys, self._earlier_rows = read_metrics_csv(self.metrics_file_path)

    def save(self) -> None:
        if not (self._earlier_rows and self.metrics):
            super().save()
            return
        # The first save of a resumed run: earlier rows up to its first step, then its own rows.
        first_step = min(step_of(row) for row in self.metrics)
        self._record_new_keys()
        kept = rows_logged_before(self._earlier_rows, first_step)
        write_csv_atomically(self.metrics_file_path, self.metrics_keys, [*kept, *self.metrics])
        self._earlier_rows = []
        self.metrics = []

    def _rewrite_with_new_header(self, fieldnames: list[str]) -> None:
        _, rows = read_metrics_csv(self.metrics_file_path)
        write_csv_atomically(self.metrics_file_path, fieldnames, rows)
