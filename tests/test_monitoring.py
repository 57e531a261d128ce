"""The monitored metric is decided before training from what the run will log: auto picks FID, else a
ground-truth metric the data supports, else no best checkpoint; an explicit metric that is not logged
stops the run before training, or at the first validation after writing last.ckpt; a search with
nothing to optimise stops before its first trial."""

from __future__ import annotations

import errno
import logging
import os
from types import SimpleNamespace

import lightning.pytorch as pl
import pytest
import torch
from helpers import one_thread  # noqa: F401  (an autouse fixture)
from journeys.user_data import CYCLEGAN_OWN_DATA_TINY, unpaired_dataset
from omegaconf import open_dict

from ganstyle.data.content_style import ContentStyleDataModule
from ganstyle.data.image_folder import ImageFolderDataModule
from ganstyle.data.paired import PairedDataModule
from ganstyle.data.unpaired import UnpairedDataModule
from ganstyle.models.adain import AdaIN
from ganstyle.models.cyclegan import CycleGAN
from ganstyle.models.dcgan import DCGAN
from ganstyle.models.fast_style import FastStyleTransfer
from ganstyle.models.gatys import GatysStyleTransfer
from ganstyle.models.pix2pix import Pix2Pix
from ganstyle.run.checkpointing import AtomicCheckpointIO, LastAndBestCheckpoint
from ganstyle.run.monitoring import MonitoredMetricNotLoggedError, plan_monitor
from ganstyle.run.sweeps import CheckSearchObjective
from ganstyle.run.training import resolve_monitor, train
from ganstyle.utils.atomic_files import atomic_hard_link

STYLE_LOSS = {"content_weight": 1.0e5, "style_weight": 4.0e10}
AUTO = {"metric": "auto", "mode": "max"}

# model, its loss weights, validation targets, FID on -> what monitor.metric=auto chooses
AUTO_CHOICES = [
    (CycleGAN, {}, False, False, (None, "min")),
    (CycleGAN, {}, True, False, ("val/psnr_B", "max")),
    (CycleGAN, {}, False, True, ("val/fid_B", "min")),
    (Pix2Pix, {}, True, False, ("val/psnr_B", "max")),
    (FastStyleTransfer, STYLE_LOSS, False, False, ("val/loss_perceptual", "min")),
    (FastStyleTransfer, STYLE_LOSS, False, True, ("val/fid_style", "min")),
    (AdaIN, STYLE_LOSS, False, False, ("val/loss_perceptual", "min")),
    (GatysStyleTransfer, STYLE_LOSS, False, False, ("val/loss_perceptual", "min")),
    (DCGAN, {"gan_mode": "vanilla"}, False, False, (None, "min")),
    (DCGAN, {"gan_mode": "wgangp"}, False, True, ("val/fid_samples", "min")),
]


@pytest.mark.parametrize(
    "model_class, loss, targets, fid_on, expected",
    AUTO_CHOICES,
    ids=[f"{row[0].__name__}-targets{row[2]}-fid{row[3]}" for row in AUTO_CHOICES],
)
def test_auto_monitor_picks_only_a_metric_the_run_logs(model_class, loss, targets, fid_on, expected):
    data = SimpleNamespace(validation_has_targets=targets)
    choice = plan_monitor(AUTO, model_class, loss, data, {"fid": "auto"}, fid_on)
    assert (choice.metric, choice.mode) == expected
    if choice.metric is None:  # the log line says why and how to get a best checkpoint
        assert "last.ckpt" in choice.reason and "For a best checkpoint" in choice.reason


def test_data_modules_say_whether_validation_has_targets(tmp_path):
    root = unpaired_dataset(tmp_path / "h2z")
    assert UnpairedDataModule(root=str(root)).validation_has_targets is False
    (root / "testA2B").mkdir()
    assert UnpairedDataModule(root=str(root)).validation_has_targets is True
    assert PairedDataModule(root=str(root)).validation_has_targets is True
    assert ImageFolderDataModule(root=str(root / "trainA")).validation_has_targets is False
    content_style = ContentStyleDataModule(content_root=str(root / "trainA"), style=str(root / "trainB"))
    assert content_style.validation_has_targets is False


def test_an_explicit_metric_the_run_will_not_log_is_refused_naming_the_logged_ones():
    data = SimpleNamespace(validation_has_targets=False)
    with pytest.raises(MonitoredMetricNotLoggedError) as error:
        plan_monitor({"metric": "val/psnr_B", "mode": "max"}, CycleGAN, {}, data, {"fid": False}, False)
    message = str(error.value)
    assert "monitor.metric=val/psnr_B" in message and "val/loss_cycle_A, val/loss_cycle_B" in message


def test_an_explicit_metric_is_left_to_the_first_validation_when_targets_are_unknown():
    data = SimpleNamespace()  # a data module that cannot say whether it has targets
    choice = plan_monitor({"metric": "val/psnr_B", "mode": "max"}, CycleGAN, {}, data, {"fid": False}, False)
    assert (choice.metric, choice.mode) == ("val/psnr_B", "max")


TINY_UNPAIRED = (
    *CYCLEGAN_OWN_DATA_TINY,
    "trainer.max_epochs=1",
    "callbacks.progress_bar=null",
)


def test_own_data_without_fid_or_ground_truth_keeps_last_ckpt_only_and_says_why(
    compose_config, tmp_path, monkeypatch, caplog
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))
    root = unpaired_dataset(tmp_path / "h2z")
    cfg = compose_config(*TINY_UNPAIRED, f"data.root={root}")
    model = CycleGAN(**{k: v for k, v in cfg.model.items() if k != "_target_"})
    with caplog.at_level(logging.WARNING, logger="ganstyle.metrics.validation"):
        model.configure_validation_metrics({"fid": "auto"})
    assert "FID/KID are off" in caplog.text
    with caplog.at_level(logging.INFO, logger="ganstyle.run.training"):
        resolve_monitor(cfg, model, UnpairedDataModule(root=str(root)))
    assert cfg.monitor.metric is None
    assert cfg.callbacks.model_checkpoint.save_top_k == 0
    assert cfg.callbacks.model_checkpoint.stop_if_monitor_missing is False
    assert "No best checkpoint" in caplog.text and "fetch-weights" in caplog.text


def test_training_with_an_unlogged_explicit_metric_stops_before_any_step(
    compose_config, tmp_path, monkeypatch
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))
    root = unpaired_dataset(tmp_path / "h2z")
    run_dir = tmp_path / "run"
    cfg = compose_config(*TINY_UNPAIRED, f"data.root={root}", "monitor.metric=val/ssim_B", output_dir=run_dir)
    with pytest.raises(MonitoredMetricNotLoggedError, match="monitor.metric=val/ssim_B"):
        train(cfg)
    assert not (run_dir / "checkpoints").exists()


class LogsOneMetric(pl.LightningModule):
    """The smallest module that validates: it logs val/seen and nothing else."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).mean()

    def validation_step(self, batch, batch_idx):
        self.log("val/seen", self.layer(batch[0]).mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def loader(self):
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(4, 2)), batch_size=2)

    def train_dataloader(self):
        return self.loader()

    def val_dataloader(self):
        return self.loader()


def two_epoch_trainer(checkpoint: LastAndBestCheckpoint, plugins: list | None = None) -> pl.Trainer:
    return pl.Trainer(
        max_epochs=2,
        plugins=plugins,
        callbacks=[checkpoint],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )


def test_a_metric_missing_at_the_first_validation_writes_last_ckpt_then_stops_with_a_paragraph(tmp_path):
    checkpoint = LastAndBestCheckpoint(dirpath=tmp_path, monitor="val/unseen", save_last=True, save_top_k=1)
    trainer = two_epoch_trainer(checkpoint)
    with pytest.raises(MonitoredMetricNotLoggedError) as error:
        trainer.fit(LogsOneMetric())
    assert "monitor.metric=val/unseen" in str(error.value) and "val/seen" in str(error.value)
    assert (tmp_path / "last.ckpt").is_file()
    assert torch.load(tmp_path / "last.ckpt", weights_only=False)["epoch"] == 0


def test_a_search_with_no_objective_it_can_optimise_stops_before_the_first_trial(
    compose_config, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))
    root = unpaired_dataset(tmp_path / "h2z")
    cfg = compose_config("hparams_search=cyclegan_optuna", *TINY_UNPAIRED, f"data.root={root}")
    assert "check_search_objective" in cfg.hydra.callbacks  # Hydra calls it before the sweeper starts
    with pytest.raises(SystemExit) as stop, pytest.warns(UserWarning, match="FID/KID are off"):
        CheckSearchObjective().on_multirun_start(config=cfg)
    assert stop.value.code == 1
    stderr = capsys.readouterr().err
    assert "monitor.metric=val/psnr_B is the search's objective" in stderr and "val/loss_cycle_A" in stderr


def test_a_search_on_data_with_ground_truth_is_allowed(compose_config):
    cfg = compose_config("hparams_search=cyclegan_optuna", "data.n_train=8", "data.n_test=4")
    with open_dict(cfg):
        cfg.metrics.fid = False
    CheckSearchObjective().on_multirun_start(config=cfg)  # the embedded dataset has testA2B targets


def test_a_metric_auto_chose_but_never_logged_only_warns_and_keeps_last_ckpt(tmp_path, caplog):
    checkpoint = LastAndBestCheckpoint(
        dirpath=tmp_path, monitor="val/fid_B", save_last=True, save_top_k=1, stop_if_monitor_missing=False
    )
    trainer = two_epoch_trainer(checkpoint)
    with caplog.at_level(logging.WARNING, logger="ganstyle.run.checkpointing"):
        trainer.fit(LogsOneMetric())
    assert "val/fid_B (chosen by monitor.metric=auto) was not logged" in caplog.text
    assert [path.name for path in tmp_path.iterdir()] == ["last.ckpt"]
    assert torch.load(tmp_path / "last.ckpt", weights_only=False)["epoch"] == 1


class LogsAScriptedMetric(LogsOneMetric):
    """Logs val/score from a script: one value per validation."""

    def __init__(self, scores: list[float]) -> None:
        super().__init__()
        self.scores = scores

    def validation_step(self, batch, batch_idx):
        self.log("val/score", self.scores[self.current_epoch])


def best_and_last_by_score(folder) -> LastAndBestCheckpoint:
    """The default config's checkpointing (epochNNN.ckpt, last.ckpt), watching val/score."""
    return LastAndBestCheckpoint(
        dirpath=folder, filename="epoch{epoch:03d}", monitor="val/score", mode="max", save_last=True,
        save_top_k=1, auto_insert_metric_name=False, enable_version_counter=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("scores", "shared_at_end"),
    [([1.0, 2.0, 3.0], True), ([1.0, 3.0, 2.0], False)],
    ids=["improves every epoch", "best in the middle"],
)
def test_last_ckpt_shares_the_best_file_when_both_hold_the_same_step(tmp_path, scores, shared_at_end):
    checkpoint = best_and_last_by_score(tmp_path)
    trainer = two_epoch_trainer(checkpoint, plugins=[AtomicCheckpointIO()])
    trainer.fit_loop.max_epochs = len(scores)
    trainer.fit(LogsAScriptedMetric(scores))
    best_epoch = scores.index(max(scores))
    best, last = tmp_path / f"epoch{best_epoch:03d}.ckpt", tmp_path / "last.ckpt"
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([best.name, "last.ckpt"])
    assert best.samefile(last) is shared_at_end  # one file on disk when last is also the best
    assert torch.load(last, weights_only=False)["epoch"] == len(scores) - 1
    assert torch.load(best, weights_only=False)["epoch"] == best_epoch
    # A later write to last.ckpt replaces it with a new file: the best checkpoint keeps its epoch.
    AtomicCheckpointIO().save_checkpoint({"epoch": 99, "state_dict": {}}, last)
    assert torch.load(best, weights_only=False)["epoch"] == best_epoch


def test_last_ckpt_is_a_copy_where_the_filesystem_has_no_hard_links(tmp_path, monkeypatch):
    def no_links(*args):
        raise OSError(errno.EPERM, "hard links are not supported")

    source = tmp_path / "epoch000.ckpt"
    torch.save({"epoch": 0}, source)
    monkeypatch.setattr(os, "link", no_links)
    atomic_hard_link(source, tmp_path / "last.ckpt")
    assert not source.samefile(tmp_path / "last.ckpt")
    assert torch.load(tmp_path / "last.ckpt", weights_only=False) == {"epoch": 0}
    assert sorted(path.name for path in tmp_path.iterdir()) == ["epoch000.ckpt", "last.ckpt"]


def test_last_ckpt_stays_a_separate_file_when_another_writer_saves_checkpoints(tmp_path):
    # Only AtomicCheckpointIO is known to replace a file rather than rewrite it: with another writer a
    # shared file could be truncated under the best checkpoint, so last.ckpt gets its own copy.
    checkpoint = best_and_last_by_score(tmp_path)
    two_epoch_trainer(checkpoint).fit(LogsAScriptedMetric([1.0, 2.0]))
    assert not (tmp_path / "epoch001.ckpt").samefile(tmp_path / "last.ckpt")
