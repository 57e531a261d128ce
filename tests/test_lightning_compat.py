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
from lightning.pytorch.loggers import CSVLogger

from ganstyle.utils.lightning_compat import (
    attached_trainer,
    csv_logger_experiment_keeping_rows,
    ddp_kwargs,
    launches_by_rerunning_script,
    stop_after_this_batch,
)

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "ganstyle"
PRIVATE_NAMES = (
    "_ddp_kwargs",
    "_SubprocessScriptLauncher",
    "_check_log_dir_exists",
    "_record_new_keys",
    "_rewrite_with_new_header",
    "._experiment",
    "._fs",
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


def test_a_module_still_says_whether_a_trainer_runs_it():
    module = pl.LightningModule()
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
