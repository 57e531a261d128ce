"""The results report: written at the end of a real (tiny) training run with every section, embedded
images and the command; rewritten on demand for any run folder; metric history whatever the logger;
and, in a slow test, rendered by a headless Chromium."""

from __future__ import annotations

import csv
import math
import os
import shutil
import subprocess
import types
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader

from ganstyle.callbacks.metrics_history import MetricsHistory, MetricsRecorder
from ganstyle.callbacks.report import RunReport
from ganstyle.cli import main as cli_main
from ganstyle.report import REPORT_NAME
from ganstyle.report.collect import Series, parse_metrics_csv, resolve_leniently, summarize

SECTIONS = ("metrics", "curves", "images", "translations", "command", "checkpoints", "config")


def read_report(run_dir: Path) -> str:
    return (run_dir / REPORT_NAME).read_text(encoding="utf-8")


def copy_run(run_dir: Path, destination: Path, without: tuple[str, ...] = ()) -> Path:
    shutil.copytree(run_dir, destination, ignore=shutil.ignore_patterns(*without))
    return destination


def test_training_run_ends_with_a_self_contained_report_of_every_section(tiny_cyclegan_run):
    page = read_report(tiny_cyclegan_run)
    for anchor in SECTIONS:
        assert f"<section id='{anchor}'>" in page, anchor
    grids = len(list((tiny_cyclegan_run / "images").glob("*.png")))
    translations = len(list((tiny_cyclegan_run / "translations").glob("*/*.png")))
    plots = (
        4  # validation, training, the discriminators (r_t, held-out against training reals), learning rates
    )
    assert page.count("src='data:image/png;base64,") == plots + grids + translations
    overrides = OmegaConf.load(tiny_cyclegan_run / ".hydra" / "overrides.yaml")
    assert "python train.py " + " ".join(overrides) in page
    assert "python train.py trainer.fast_dev_run=false trainer.max_epochs=1 " in page
    assert str(tiny_cyclegan_run / "checkpoints" / "last.ckpt") in page and "best (val/psnr_B=" in page
    # One epoch: the best checkpoint and last.ckpt hold the same step, so they are one file on disk.
    assert (tiny_cyclegan_run / "checkpoints" / "epoch000.ckpt").samefile(
        tiny_cyclegan_run / "checkpoints" / "last.ckpt"
    )
    assert "same file as epoch000.ckpt" in page
    assert "_target_: ganstyle.models.cyclegan.CycleGAN" in page
    assert str(tiny_cyclegan_run) in page  # ${paths.output_dir} resolved through .hydra/hydra.yaml
    assert "http://" not in page and "https://" not in page and "src='//" not in page
    assert "finished" in page


def test_metric_history_holds_every_logged_scalar_at_its_step(tiny_cyclegan_run):
    metrics = parse_metrics_csv(tiny_cyclegan_run / "metrics.csv")
    assert metrics["train/loss_G"].steps == [0.0, 1.0, 2.0]
    assert {"val/psnr_B", "val/ssim_B", "train/lr_G", "train/loss_D_A"} <= set(metrics)
    assert all(math.isfinite(value) for value in metrics["val/psnr_B"].values)


class LoggingModule(pl.LightningModule):
    """The smallest module that logs a training and a validation scalar."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(1, 1)

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch).pow(2).mean()
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val/score", self.layer(batch).mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return DataLoader(torch.rand(8, 1), batch_size=2)

    def val_dataloader(self):
        return DataLoader(torch.rand(4, 1), batch_size=2)


def test_metric_history_is_recorded_when_no_logger_is_configured(tmp_path):
    trainer = pl.Trainer(
        logger=False,
        callbacks=[MetricsHistory(tmp_path / "metrics.csv")],
        max_epochs=2,
        log_every_n_steps=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(LoggingModule())
    metrics = parse_metrics_csv(tmp_path / "metrics.csv")
    assert metrics["train/loss"].steps == [float(step) for step in range(8)]
    assert metrics["val/score"].epochs == [0.0, 1.0]


def test_report_command_rewrites_a_copied_run_from_its_checkpoint_when_hydra_files_are_gone(
    tiny_cyclegan_run, tmp_path
):
    run_dir = copy_run(tiny_cyclegan_run, tmp_path / "copied", without=(".hydra", REPORT_NAME))
    assert cli_main(["report", str(run_dir)]) == 0
    page = read_report(run_dir)
    assert "model hyperparameters from checkpoints/last.ckpt" in page
    assert "overrides were not recorded" in page
    assert "best (val/psnr_B=" in page  # read from the ModelCheckpoint state inside last.ckpt


def test_report_command_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    (tmp_path / "photos").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "photos" / "a.png")
    assert cli_main(["report", str(tmp_path / "photos")]) == 1
    assert "does not look like a training run folder" in capsys.readouterr().err
    assert cli_main(["report", str(tmp_path / "missing")]) == 1


def test_failed_run_still_gets_a_report_that_says_how_it_ended(tiny_cyclegan_run, tmp_path):
    run_dir = copy_run(tiny_cyclegan_run, tmp_path / "failed", without=(REPORT_NAME,))
    trainer = types.SimpleNamespace(fast_dev_run=False, loggers=[], checkpoint_callback=None)
    RunReport(str(run_dir)).on_exception(trainer, None, RuntimeError("loss is NaN"))
    assert "failed: RuntimeError: loss is NaN" in read_report(run_dir)


def test_a_value_that_cannot_be_resolved_here_is_shown_as_written(tmp_path):
    config = OmegaConf.create(
        {"root": "${oc.env:GANSTYLE_SURELY_UNSET_VARIABLE}", "size": 4, "twice": "${size}"}
    )
    resolved = resolve_leniently(config, tmp_path / "no_hydra.yaml")
    assert resolved == {"root": "${oc.env:GANSTYLE_SURELY_UNSET_VARIABLE}", "size": 4, "twice": 4}


def test_best_values_follow_each_metrics_direction_and_the_monitored_mode():
    series = Series(steps=[0.0, 1.0, 2.0], epochs=[0.0, 0.0, 1.0], values=[3.0, 1.0, 2.0])
    rows = {
        row.name: row
        for row in summarize({"train/loss_G": series, "val/psnr_B": series, "val/odd": series}, None)
    }
    assert (rows["train/loss_G"].best, rows["train/loss_G"].best_step) == (1.0, 1.0)
    assert rows["val/psnr_B"].best == 3.0 and rows["val/odd"].best is None
    monitored = summarize({"val/odd": series}, ("val/odd", "max"))
    assert monitored[0].best == 3.0 and monitored[0].last == 2.0


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.slow
@pytest.mark.skipif(chromium() is None, reason="needs Chromium (Debian: apt-get install -y chromium)")
def test_report_renders_in_a_headless_browser(tiny_cyclegan_run, tmp_path):
    screenshot = tmp_path / "report.png"
    command = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1280,2400",
        f"--screenshot={screenshot}",
        (tiny_cyclegan_run / REPORT_NAME).as_uri(),
    ]
    subprocess.run(
        command, check=True, capture_output=True, timeout=120, env={**os.environ, "HOME": str(tmp_path)}
    )
    with Image.open(screenshot) as image:
        pixels = image.convert("RGB").resize((128, 240))
        colours = len(set(pixels.getdata()))
        extrema = pixels.convert("L").getextrema()
    # A blank or error page has a handful of colours; the report's header, tables, plots and image
    # grids give hundreds, from the dark header to white panels.
    assert screenshot.stat().st_size > 50_000 and colours > 200 and extrema[0] < 60 and extrema[1] > 240


def test_report_resolves_hydra_paths_from_the_run_folder_in_a_fresh_process(
    tiny_cyclegan_run, tmp_path, monkeypatch
):
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.utils import setup_globals

    run_dir = copy_run(tiny_cyclegan_run, tmp_path / "copied", without=(REPORT_NAME,))
    # As in `ganstyle report` started from a shell: no Hydra job, no hydra: resolver registered yet.
    monkeypatch.setattr(HydraConfig.instance(), "cfg", None)
    OmegaConf.clear_resolver("hydra")
    try:
        assert cli_main(["report", str(run_dir)]) == 0
    finally:
        setup_globals()
    assert f"output_dir: {tiny_cyclegan_run}" in read_report(run_dir)  # the run's own hydra.yaml


def test_a_resumed_run_keeps_the_earlier_metric_rows_and_drops_those_it_logs_again(tmp_path):
    path = tmp_path / "metrics.csv"
    # Steps 2 and 3 were logged after the checkpoint the run resumes from (at step 2).
    earlier = "step,epoch,train/loss\n0,0,3\n1,0,2\n2,1,1\n3,1,0.5\n"
    path.write_text(earlier)
    recorder = MetricsRecorder(path)
    recorder.save()  # Lightning saves every logger once before training starts
    recorder.finalize("failed")  # and on a failure before it
    assert path.read_text() == earlier
    recorder.start(continue_file=True)
    assert path.read_text() == earlier
    recorder.log_metrics({"train/loss": 1.5, "epoch": 1}, step=2)
    recorder.save()
    with path.open(newline="") as handle:
        rows = [(row["step"], row["epoch"], row["train/loss"]) for row in csv.DictReader(handle)]
    assert rows == [("0", "0", "3"), ("1", "0", "2"), ("2", "1", "1.5")]
    assert sorted(item.name for item in tmp_path.iterdir()) == ["metrics.csv"]  # no temporary file left
