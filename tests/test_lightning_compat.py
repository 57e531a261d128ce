"""Lightning's private internals that ganstyle relies on, checked against the installed Lightning.

Each failure names the Lightning version and the internal that moved, so an upgrade that breaks one
fails here, in one line, instead of in the middle of a training run: fix it in
``ganstyle.utils.lightning_compat`` and nowhere else.
"""

from __future__ import annotations

import inspect
from contextlib import contextmanager
from pathlib import Path

import lightning
import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from torch import nn

from ganstyle.utils.lightning_compat import (
    ConvertedHyperparameters,
    attached_trainer,
    csv_logger_experiment_keeping_rows,
    ddp_kwargs,
    default_logs_on_epoch,
    launches_by_rerunning_script,
    loggers_write_this_step,
    stop_after_this_batch,
)

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "ganstyle"
PRIVATE_NAMES = (
    "_FxValidator",
    "_current_fx_name",
    "_ddp_kwargs",
    "_SubprocessScriptLauncher",
    "_logger_connector",
    "_check_log_dir_exists",
    "_record_new_keys",
    "_rewrite_with_new_header",
    "._experiment",
    "._fs",
    "_set_hparams",
    "._trainer",
    "_signal_connector",
)


@contextmanager
def lightning_internal(internal: str, function: str):
    """Turn an import or attribute failure into a message naming the version and the internal."""
    try:
        yield
    except (ImportError, AttributeError, AssertionError, TypeError) as error:
        pytest.fail(
            f"Lightning {lightning.__version__} moved or renamed {internal} ({type(error).__name__}: {error}); "
            f"update ganstyle.utils.lightning_compat.{function} to its new home.",
            pytrace=False,
        )


def test_fx_validator_still_gives_the_default_logging_levels_of_a_hook():
    with lightning_internal(
        "lightning.pytorch.trainer.connectors.logger_connector.fx_validator._FxValidator"
        ".get_default_logging_levels",
        "default_logs_on_epoch",
    ):
        from lightning.pytorch.trainer.connectors.logger_connector.fx_validator import _FxValidator

        parameters = list(inspect.signature(_FxValidator.get_default_logging_levels).parameters)
        assert parameters[-3:] == ["fx_name", "on_step", "on_epoch"], parameters
        assert _FxValidator.get_default_logging_levels("validation_step", None, None) == (False, True)
        assert _FxValidator.get_default_logging_levels("training_step", None, None) == (True, False)
    with lightning_internal("LightningModule._current_fx_name", "default_logs_on_epoch"):
        assert pl.LightningModule()._current_fx_name is None


def test_ddp_strategy_still_keeps_its_distributed_data_parallel_arguments_in_a_dict():
    from lightning.pytorch.strategies import DDPStrategy

    with lightning_internal("DDPStrategy._ddp_kwargs", "ddp_kwargs"):
        assert isinstance(DDPStrategy(find_unused_parameters=False)._ddp_kwargs, dict)


def test_script_relaunching_launcher_still_has_its_class():
    with lightning_internal(
        "lightning.pytorch.strategies.launchers.subprocess_script._SubprocessScriptLauncher",
        "launches_by_rerunning_script",
    ):
        from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher

        assert inspect.isclass(_SubprocessScriptLauncher)


def test_trainer_still_has_a_logger_connector_that_says_when_loggers_write():
    with lightning_internal("Trainer._logger_connector.should_update_logs", "loggers_write_this_step"):
        connector = pl.Trainer(logger=False, enable_progress_bar=False)._logger_connector
        assert isinstance(type(connector).should_update_logs, property)


def test_a_trainer_asked_to_stop_after_this_batch_reports_the_sigterm_flag_its_loops_read():
    with lightning_internal("Trainer._signal_connector.received_sigterm", "stop_after_this_batch"):
        trainer = pl.Trainer(logger=False, enable_progress_bar=False)
        assert trainer.received_sigterm is False
        stop_after_this_batch(trainer)
        assert trainer.received_sigterm is True


def test_csv_logger_still_builds_its_writer_through_the_internals_a_resumed_run_overrides(tmp_path):
    from lightning.pytorch.loggers.csv_logs import ExperimentWriter

    internals = "CSVLogger._experiment/_fs or ExperimentWriter's _check_log_dir_exists/_record_new_keys"
    with lightning_internal(internals, "csv_logger_experiment_keeping_rows"):
        for method in ("_check_log_dir_exists", "_record_new_keys", "_rewrite_with_new_header"):
            assert callable(getattr(ExperimentWriter, method))
        # The writer's __init__ is where Lightning deletes an existing metrics.csv.
        assert "self._check_log_dir_exists()" in inspect.getsource(
            inspect.getmro(ExperimentWriter)[1].__init__
        )
        logger = CSVLogger(tmp_path, name="run", version=0)
        assert logger._experiment is None and logger._fs is not None
    (tmp_path / "run" / "version_0").mkdir(parents=True)
    (tmp_path / "run" / "version_0" / "metrics.csv").write_text("a,epoch,step\n1.0,0,0\n")
    writer = csv_logger_experiment_keeping_rows(logger, keep_earlier_rows=True)
    writer.log_metrics({"a": 2.0, "epoch": 1}, step=1)
    writer.save()
    lines = (tmp_path / "run" / "version_0" / "metrics.csv").read_text().splitlines()
    assert lines == ["a,epoch,step", "1.0,0,0", "2.0,1,1"]


class DoublingModule(ConvertedHyperparameters, pl.LightningModule):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.save_hyperparameters()

    def convert_hyperparameters(self, hyperparameters):
        return {key: 2 * value for key, value in hyperparameters.items()}


def test_save_hyperparameters_still_stores_through_set_hparams():
    with lightning_internal("HyperparametersMixin._set_hparams", "ConvertedHyperparameters"):
        assert DoublingModule(3).hparams == {"size": 6}


def test_a_module_still_says_whether_a_trainer_runs_it():
    module = RecordingModule()
    with lightning_internal("LightningModule._trainer", "attached_trainer"):
        assert attached_trainer(module) is None
        trainer = pl.Trainer(accelerator="cpu", logger=False)
        module.trainer = trainer
        assert attached_trainer(module) is trainer


def test_ddp_kwargs_and_script_relaunch_read_real_strategies():
    ddp = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp", logger=False)
    spawn = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp_spawn", logger=False)
    single = pl.Trainer(accelerator="cpu", devices=1, logger=False)
    with lightning_internal("DDPStrategy._ddp_kwargs", "ddp_kwargs"):
        kwargs = ddp_kwargs(ddp.strategy)
        assert isinstance(kwargs, dict)
        kwargs["find_unused_parameters"] = True  # a live dict: what DDP will be built with
        assert ddp_kwargs(ddp.strategy)["find_unused_parameters"] is True
    assert ddp_kwargs(single.strategy) is None
    with lightning_internal("_SubprocessScriptLauncher", "launches_by_rerunning_script"):
        assert launches_by_rerunning_script(ddp.strategy)
        assert not launches_by_rerunning_script(spawn.strategy)
        assert not launches_by_rerunning_script(single.strategy)


class RecordingModule(pl.LightningModule):
    """A one-layer module that records what the compatibility functions say inside each hook."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(2, 1)
        self.seen: list[tuple[str, bool, bool]] = []

    def training_step(self, batch, batch_idx):
        self.seen.append(
            ("training_step", default_logs_on_epoch(self), loggers_write_this_step(self.trainer))
        )
        return self.layer(batch[0]).mean()

    def validation_step(self, batch, batch_idx):
        self.seen.append(("validation_step", default_logs_on_epoch(self), True))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_logging_defaults_and_logged_steps_follow_a_real_trainer(tmp_path):
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(4, 2)), batch_size=2)
    module = RecordingModule()
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=1,
        log_every_n_steps=2,
        logger=CSVLogger(tmp_path),
        num_sanity_val_steps=0,
        limit_val_batches=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    with lightning_internal("the hook name or the logger connector", "default_logs_on_epoch"):
        trainer.fit(module, data, data)
        # on_epoch: Lightning's default per hook; loggers write on every 2nd step only.
        assert module.seen == [
            ("training_step", False, False),
            ("training_step", False, True),
            ("validation_step", True, True),
        ]
    assert default_logs_on_epoch(module) is False  # outside any hook


def test_no_module_outside_lightning_compat_uses_lightning_private_internals():
    offenders = [
        f"{path.relative_to(PACKAGE)}: {name}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "lightning_compat.py"
        for name in PRIVATE_NAMES
        if name in path.read_text()
    ]
    assert not offenders, (
        "Lightning private internals belong in ganstyle.utils.lightning_compat only:\n" + "\n".join(offenders)
    )
