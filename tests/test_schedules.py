"""Learning-rate schedules follow the run: any trainer.max_epochs decays once and never trains an
epoch at rate 0, and checkpoints written before schedules followed the run still resume."""

from __future__ import annotations

import hydra
import pytest
import torch

from ganstyle.config import ConfigError
from ganstyle.models.base import build_model
from ganstyle.utils.schedulers import fit_to_run, linear_decay, with_schedule_length_of_old_checkpoints


def rates_per_epoch(scheduler_config, epochs: int, lr: float = 1.0) -> list[float]:
    """The rate each epoch trains at, stepping once per epoch as the models do."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    scheduler = hydra.utils.instantiate(scheduler_config)(optimizer)
    rates = []
    for _ in range(epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


@pytest.mark.parametrize(
    ("shape", "total", "fitted"),
    [
        ((100, 100), 200, (100, 100)),  # the reference run as it is
        ((100, 100), 10, (5, 5)),  # constant for the first half, then linear decay
        ((3, 1), 4, (3, 1)),  # the quick start as it is
        ((3, 1), 10, (8, 2)),
        ((3, 1), 2, (1, 1)),  # both parts kept while the run has room
        ((5, 0), 9, (9, 0)),  # constant stays constant
        ((100, 100), 1, (1, 0)),
    ],
)
def test_a_linear_schedule_keeps_its_shape_scaled_to_the_run(shape, total, fitted):
    assert fit_to_run(*shape, total) == fitted


@pytest.mark.parametrize("max_epochs", [1, 2, 6, 10, 37])
def test_quick_start_schedule_at_any_max_epochs_decays_and_never_trains_at_zero(compose_config, max_epochs):
    cfg = compose_config(f"trainer.max_epochs={max_epochs}")
    rates = rates_per_epoch(cfg.scheduler, max_epochs)
    assert all(rate > 0 for rate in rates), rates
    assert rates == sorted(rates, reverse=True)
    if max_epochs > 1:
        assert rates[-1] < rates[0]  # the decay happens within the run


def test_reference_schedule_over_ten_epochs_is_five_constant_then_linear_decay(compose_config):
    cfg = compose_config("experiment=null", "trainer.max_epochs=10")
    rates = rates_per_epoch(cfg.scheduler, 10)
    assert rates[:5] == [1.0] * 5
    assert rates[5:] == pytest.approx([1 - k / 6 for k in range(1, 6)])


def test_an_explicit_total_keeps_the_schedule_of_a_longer_run():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = linear_decay(optimizer, n_epochs=1, n_epochs_decay=1, total_epochs=2)
    optimizer.step()
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] == 0.5


def test_old_checkpoints_schedule_reads_as_the_same_schedule_today():
    old = {
        "_target_": "ganstyle.utils.schedulers.linear_decay",
        "_partial_": True,
        "n_epochs": 3,
        "n_epochs_decay": 1,
    }
    assert with_schedule_length_of_old_checkpoints(old) == {**old, "total_epochs": 4}
    step = {"_target_": "torch.optim.lr_scheduler.StepLR", "step_size": 2}
    assert with_schedule_length_of_old_checkpoints(step) == step
    assert with_schedule_length_of_old_checkpoints(None) is None


def test_checkpoint_written_before_total_epochs_existed_resumes_without_a_mismatch(compose_config, tmp_path):
    from ganstyle.run.resuming import check_resume_compatible

    cfg = compose_config(
        "model.generator.ngf=4",
        "model.generator.netG=resnet_1blocks",
        "model.discriminator.ndf=4",
        "trainer.max_epochs=4",
    )
    model = build_model(cfg.model)
    old_hparams = dict(model.hparams)
    old_hparams["scheduler"] = {k: v for k, v in old_hparams["scheduler"].items() if k != "total_epochs"}
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": old_hparams}, tmp_path / "old.ckpt")
    check_resume_compatible(tmp_path / "old.ckpt", model)  # 3 + 1 epochs then and now: no difference


def test_resuming_with_a_larger_max_epochs_extends_the_run_instead_of_refusing(compose_config, tmp_path):
    from ganstyle.run.resuming import check_resume_compatible

    tiny = ("model.generator.ngf=4", "model.generator.netG=resnet_1blocks", "model.discriminator.ndf=4")
    written = build_model(compose_config(*tiny, "trainer.max_epochs=2").model)
    torch.save(
        {"state_dict": written.state_dict(), "hyper_parameters": dict(written.hparams)}, tmp_path / "two.ckpt"
    )
    extended = build_model(compose_config(*tiny, "trainer.max_epochs=3").model)
    assert extended.hparams["scheduler"]["total_epochs"] == 3
    check_resume_compatible(tmp_path / "two.ckpt", extended)  # the run's length is not the model's config
    reshaped = build_model(compose_config(*tiny, "trainer.max_epochs=2", "scheduler.n_epochs=7").model)
    with pytest.raises(ConfigError, match="scheduler.n_epochs"):
        check_resume_compatible(tmp_path / "two.ckpt", reshaped)  # the schedule's shape still is
