"""A finished fit says what it is: a run that trained nothing fails instead of presenting untrained
weights as results, and a run worse than doing nothing, or one whose losses exploded, says so."""

from __future__ import annotations

import logging
import math

import lightning.pytorch as pl
import pytest

from ganstyle.run.outcome import TrainedNothingError, check_trained_something, result_warnings
from ganstyle.run.training import train
from ganstyle.run.user_errors import user_error_message

TINY = (
    "model.generator.ngf=8",
    "model.generator.netG=resnet_1blocks",
    "model.discriminator.ndf=8",
    "data.n_train=8",
    "data.n_test=4",
    "data.load_size=36",
    "data.crop_size=32",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "trainer.num_sanity_val_steps=0",
    "logger=none",
    "callbacks.progress_bar=null",
    "trainer.enable_model_summary=false",
)


class StopBeforeTheFirstBatch(pl.Callback):
    """What an epoch with no batches amounts to: the fit ends before any optimisation step."""

    def on_train_start(self, trainer, pl_module) -> None:
        trainer.should_stop = True


def test_a_fit_that_took_no_step_fails_naming_it_and_writes_no_translations(compose_config, tmp_path):
    run_dir = tmp_path / "run"
    cfg = compose_config(
        *TINY, f"+callbacks.stop._target_={__name__}.StopBeforeTheFirstBatch", output_dir=run_dir
    )
    with pytest.raises(TrainedNothingError) as error:
        train(cfg)
    message = user_error_message(error.value)
    assert "Training ran no optimisation step" in message and "untrained" in message
    assert not (run_dir / "translations").exists()
    assert "trained nothing" in (run_dir / "report.html").read_text()


def test_trained_something_passes_steps_and_smoke_runs_and_interruptions():
    check_trained_something(4, fast_dev_run=False, interrupted=False)
    check_trained_something(0, fast_dev_run=True, interrupted=False)
    check_trained_something(0, fast_dev_run=False, interrupted=True)
    with pytest.raises(TrainedNothingError):
        check_trained_something(0, fast_dev_run=False, interrupted=False)


def test_a_result_below_the_untranslated_input_is_named():
    warnings = result_warnings({"val/psnr_B": 5.5, "val/psnr_B_identity": 12.5}, [])
    assert "val/psnr_B ended at 5.50, below the untranslated input's 12.50" in warnings[0]
    assert "best checkpoint" in warnings[-1]
    assert result_warnings({"val/psnr_B": 16.0, "val/psnr_B_identity": 15.3}, []) == []
    assert result_warnings({"val/psnr_B": 5.0}, []) == []  # no baseline: nothing to compare


@pytest.mark.parametrize(
    ("rows", "named"),
    [
        ([{"train/loss_G": 2.0}, {"train/loss_G": 1.0e8}], "train/loss_G 2 -> 1e+08"),
        ([{"train/loss_D_A": 0.3}, {"train/loss_D_A": math.nan}], "train/loss_D_A=nan"),
    ],
)
def test_exploded_training_losses_are_named_with_the_fix(rows, named):
    warnings = result_warnings({}, rows)
    assert named in warnings[0] and "model.optimizer.lr" in warnings[0]


def test_healthy_loss_curves_raise_no_warning():
    rows = [{"train/loss_G": 20.0, "train/loss_D_A": 0.3}, {"train/loss_G": 12.0, "train/loss_D_A": 0.2}]
    rows.append({"val/psnr_B": 16.0})  # rows of other metrics are ignored
    assert result_warnings({}, rows) == []


def test_a_run_ending_below_its_input_warns_in_the_log(compose_config, tmp_path, caplog):
    # One epoch of two batches at these sizes leaves the generator far from the identity: its output
    # is further from the ground truth than the untranslated photo.
    with caplog.at_level(logging.WARNING, logger="ganstyle.run.training"):
        train(compose_config(*TINY, output_dir=tmp_path / "run"))
    assert any("below the untranslated input's" in record.getMessage() for record in caplog.records)
