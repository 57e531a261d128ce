"""The sweep page: written at the end of a real multirun with a failed job, rewritten on demand by
``ganstyle report <multirun folder>``, an Optuna search's trial history, TensorBoard's HParams
summaries read back from the event files, and the page rendered by a headless Chromium."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from helpers import one_thread  # noqa: F401  (an autouse fixture: in-process training uses one thread)
from PIL import Image

from ganstyle.cli import main as cli_main
from ganstyle.report.sweep import collect_sweep, is_sweep_folder
from ganstyle.report.sweep_html import write_sweep_report


def last_logged(job_dir: Path, metric: str) -> float:
    with (job_dir / "metrics.csv").open(newline="") as handle:
        values = [float(row[metric]) for row in csv.DictReader(handle) if row.get(metric)]
    return values[-1]


def job_rows(page: str) -> dict[str, str]:
    """Each job row of the jobs table, by job number."""
    return dict(re.findall(r"<tr class='job[^']*' data-job='(\d+)'>(.*?)</tr>", page, flags=re.S))


def test_multirun_ends_with_a_page_comparing_its_jobs_failed_one_included(failing_sweep):
    sweep_dir = failing_sweep.sweep_dir
    page = (sweep_dir / "report.html").read_text(encoding="utf-8")
    rows = job_rows(page)
    assert sorted(rows) == ["0", "1", "2"]
    assert "failed" in rows["0"] and "ConfigError: loss.cycle_weight=-1.0 is negative" in rows["0"]
    failed = yaml.safe_load((sweep_dir / "0" / "job.yaml").read_text())
    assert failed["status"] == "failed" and failed["objective"] is None
    assert failed["error"].startswith("ConfigError: loss.cycle_weight=-1.0 is negative")
    assert "<th>loss.cycle_weight</th>" in page  # the one key that differs between the jobs
    assert "Same in every job: model.generator.ngf=8" in page
    for job, weight in (("1", "5"), ("2", "10")):
        assert (
            "finished" in rows[job]
            and f"<td data-value='{weight}' title='{weight}'>{weight}</td>" in rows[job]
        )
        assert f"<a href='{job}/report.html'>{job}</a>" in rows[job]
        final = last_logged(sweep_dir / job, "val/psnr_B")
        recorded = yaml.safe_load((sweep_dir / job / "job.yaml").read_text())
        assert recorded["objective"] == pytest.approx(final) and recorded["wall_seconds"] > 0
        assert f"data-value='{final}'" in rows[job]  # the monitored metric's final value, unrounded
        assert re.search(r"\d+s</td>", rows[job])  # wall time
    assert "<th>val/psnr_B final</th><th>val/psnr_B best</th>" in page and "<th>val/ssim_B</th>" in page
    assert "alt='val/psnr_B against loss.cycle_weight'" in page
    assert "1 job(s) without a value of val/psnr_B (failed or unfinished) are not plotted" in page
    assert "<figcaption>job 1: loss.cycle_weight=5</figcaption>" in page
    assert "<figcaption>job 2: loss.cycle_weight=10</figcaption>" in page
    assert page.count("src='data:image/png;base64,") == 1 + 2  # one swept key's plot, two grids
    assert "http://" not in page and "https://" not in page and "src='//" not in page


def test_report_command_recognises_a_multirun_folder_and_rewrites_its_page(failing_sweep, tmp_path):
    sweep_dir = shutil.copytree(failing_sweep.sweep_dir, tmp_path / "copied")
    (sweep_dir / "report.html").unlink()
    for job in ("0", "1", "2"):  # a sweep from before job.yaml: file times give the wall time
        (sweep_dir / job / "job.yaml").unlink()
    assert is_sweep_folder(sweep_dir) and not is_sweep_folder(sweep_dir / "1")
    assert cli_main(["report", str(sweep_dir)]) == 0
    rows = job_rows((sweep_dir / "report.html").read_text(encoding="utf-8"))
    assert sorted(rows) == ["0", "1", "2"] and "failed" in rows["0"] and "finished" in rows["2"]
    assert f"data-value='{last_logged(sweep_dir / '2', 'val/psnr_B')}'" in rows["2"]

    elsewhere = tmp_path / "pages" / "sweep.html"
    elsewhere.parent.mkdir()
    assert cli_main(["report", str(sweep_dir), "--output", str(elsewhere)]) == 0
    assert "<a href='../copied/1/report.html'>1</a>" in elsewhere.read_text(encoding="utf-8")
    assert cli_main(["report", str(sweep_dir / "1")]) == 0  # a job folder is a run: its own report
    assert "ganstyle run 1" in (sweep_dir / "1" / "report.html").read_text(encoding="utf-8")


def write_job(
    sweep_dir: Path, number: int, overrides: list[str], objective: float | None, failed: bool = False
):
    """A job folder as an Optuna trial leaves it (no training: the page only reads files)."""
    job_dir = sweep_dir / str(number)
    (job_dir / ".hydra").mkdir(parents=True)
    (job_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (job_dir / ".hydra" / "config.yaml").write_text("monitor:\n  metric: val/psnr_B\n  mode: max\n")
    sweeper = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    (job_dir / ".hydra" / "hydra.yaml").write_text(f"hydra:\n  sweeper:\n    _target_: {sweeper}\n")
    if failed:
        (job_dir / "FAILED").write_text(f"job: {number}\noverrides: x\nerror: ValueError: diverged\n")
        return
    (job_dir / "job.yaml").write_text(yaml.safe_dump({"status": "returned", "objective": objective}))
    (job_dir / "metrics.csv").write_text(f"step,epoch,val/psnr_B\n1,0,{objective - 1}\n2,1,{objective}\n")


def test_an_optuna_search_page_has_the_trial_history_and_the_best_trial(tmp_path):
    sweep_dir = tmp_path / "search"
    trials = [(0, "0.1", 14.0), (1, "0.000316841588421", 17.5), (2, "0.001", None), (3, "0.0001", 16.0)]
    for number, lr, objective in trials:
        write_job(
            sweep_dir, number, [f"model.optimizer.lr={lr}", "seed=0"], objective, failed=objective is None
        )
    (sweep_dir / "optimization_results.yaml").write_text(
        yaml.safe_dump({"name": "optuna", "best_params": {"model.optimizer.lr": 0.0003}, "best_value": 17.5})
    )
    sweep = collect_sweep(sweep_dir)
    assert sweep.sweeper == "optuna" and sweep.swept_keys == ["model.optimizer.lr"]
    assert sweep.common_overrides == {"seed": "0"} and sweep.best_job().number == 1
    page = write_sweep_report(sweep_dir).read_text(encoding="utf-8")
    assert "<section id='history'><h2>Trial history and best so far</h2>" in page
    assert "alt='val/psnr_B against model.optimizer.lr'" in page
    assert "<tr class='job best' data-job='1'>" in page
    assert "title='0.000316841588421'>0.0003168</td>" in job_rows(page)["1"]  # a sample, shortened
    assert "ValueError: diverged" in job_rows(page)["2"]
    assert "model.optimizer.lr=0.0003</code>, value 17.5" in page


def hparams_plugin_data(event_dir: Path) -> tuple[dict, list[str], dict[str, float]]:
    """The session's hyperparameters, the experiment's metric tags and the last value of each metric
    scalar, read back from the event files as TensorBoard's HParams plugin reads them."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    events = EventAccumulator(str(event_dir))
    events.Reload()
    hparams, metric_tags = {}, []
    for content in events.PluginTagToContent("hparams").values():
        data = plugin_data_pb2.HParamsPluginData.FromString(content)
        if data.HasField("session_start_info"):
            for key, value in data.session_start_info.hparams.items():
                hparams[key] = getattr(value, value.WhichOneof("kind"))
        if data.HasField("experiment"):
            metric_tags = [info.name.tag for info in data.experiment.metric_infos]
    scalars = {tag: events.Scalars(tag)[-1].value for tag in events.Tags()["scalars"]}
    return hparams, metric_tags, scalars


def test_each_sweep_job_gives_tensorboard_its_overrides_and_final_metrics(failing_sweep):
    for job, weight in (("1", 5.0), ("2", 10.0)):
        job_dir = failing_sweep.sweep_dir / job
        hparams, metric_tags, scalars = hparams_plugin_data(job_dir / "tensorboard")
        assert hparams["loss.cycle_weight"] == weight and hparams["model.generator.netG"] == "resnet_1blocks"
        assert hparams["model"] == "CycleGAN" and hparams["model.generator.ngf"] == 8.0
        assert {"final/val/psnr_B", "final/val/ssim_B", "best/val/psnr_B"} <= set(metric_tags)
        assert scalars["final/val/psnr_B"] == pytest.approx(last_logged(job_dir, "val/psnr_B"))
        assert set(metric_tags) <= set(scalars)  # every HParams column has its value
    assert not (failing_sweep.sweep_dir / "0" / "tensorboard").exists()  # failed before training


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def run_chromium(page: Path, profile: Path, *arguments: str) -> subprocess.CompletedProcess:
    command = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        *arguments,
        page.as_uri(),
    ]
    env = {**os.environ, "HOME": str(profile.parent)}
    return subprocess.run(command, check=True, capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.skipif(
    chromium() is None, reason="no chromium binary found (Debian: apt-get install -y chromium)"
)
def test_sweep_page_renders_in_headless_chromium_with_its_script_and_images(failing_sweep, tmp_path):
    page = failing_sweep.sweep_dir / "report.html"
    dom = run_chromium(page, tmp_path / "profile-dom", "--dump-dom")
    # The script marks the body at its very end: it ran without an error; and it made headers sortable.
    assert 'data-scripts="ran"' in dom.stdout and "Uncaught" not in dom.stderr
    assert len(re.findall(r'<tr class="job[^"]*" data-job="\d"', dom.stdout)) == 3
    assert dom.stdout.count('<th class="sortable"') >= 5
    assert dom.stdout.count('src="data:image/png;base64,') == 3

    screenshot = tmp_path / "sweep.png"
    run_chromium(page, tmp_path / "profile-shot", "--window-size=1280,1600", f"--screenshot={screenshot}")
    with Image.open(screenshot) as image:
        pixels = image.convert("RGB").resize((128, 160))
        colours = len(set(pixels.getdata()))
        darkest, brightest = pixels.convert("L").getextrema()
    # A blank or error page has a handful of colours; the header, table, plot and grids give hundreds.
    assert colours > 200 and darkest < 60 and brightest > 240


def test_a_job_that_raised_is_recorded_as_failed_and_a_page_problem_never_fails_the_sweep(
    compose_config, tmp_path, caplog
):
    from hydra.core.utils import JobReturn, JobStatus
    from hydra.types import RunMode
    from omegaconf import open_dict, read_write

    from ganstyle.report.sweep_callback import SweepReport

    cfg = compose_config(output_dir=tmp_path / "sweep" / "4").copy()  # the callback reads only this copy
    with read_write(cfg.hydra), open_dict(cfg.hydra):
        cfg.hydra.mode, cfg.hydra.job.num, cfg.hydra.sweep.dir = RunMode.MULTIRUN, 4, str(tmp_path / "sweep")
    callback = SweepReport()
    callback.on_job_start(config=cfg)
    raised = JobReturn(status=JobStatus.FAILED, _return_value=RuntimeError("CUDA out of memory\ndetails"))
    callback.on_job_end(config=cfg, job_return=raised)
    recorded = yaml.safe_load((tmp_path / "sweep" / "4" / "job.yaml").read_text())
    assert recorded["job"] == 4 and recorded["status"] == "raised" and recorded["objective"] is None
    assert recorded["error"] == "RuntimeError: CUDA out of memory"
    (tmp_path / "sweep" / "4" / ".hydra").mkdir()
    assert collect_sweep(tmp_path / "sweep").jobs[0].error == "RuntimeError: CUDA out of memory"

    with read_write(cfg.hydra), open_dict(cfg.hydra):
        cfg.hydra.sweep.dir = str(tmp_path / "never_made")
    callback.on_multirun_end(config=cfg)  # logs, does not raise
    assert "could not write the sweep report" in caplog.text


def test_a_run_with_a_tensorboard_logger_gets_its_hparams_summary(tmp_path):
    import lightning.pytorch as pl
    import torch
    from lightning.pytorch.loggers import TensorBoardLogger
    from torch import nn
    from torch.utils.data import DataLoader

    from ganstyle.callbacks.hparams import HParamsSummary

    class Scored(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.Linear(1, 1)

        def training_step(self, batch, batch_idx):
            return self.layer(batch).pow(2).mean()

        def validation_step(self, batch, batch_idx):
            self.log("val/score", self.layer(batch).mean())

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    logger = TensorBoardLogger(tmp_path, name="tensorboard", version="", default_hp_metric=False)
    trainer = pl.Trainer(
        logger=logger,
        callbacks=[HParamsSummary(str(tmp_path / "unused"))],
        max_epochs=2,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    data = DataLoader(torch.rand(4, 1), batch_size=2)
    trainer.fit(Scored(), train_dataloaders=data, val_dataloaders=data)
    hparams, metric_tags, scalars = hparams_plugin_data(tmp_path / "tensorboard")
    assert hparams["model"] == "Scored" and metric_tags == ["final/val/score"]
    assert scalars["final/val/score"] == pytest.approx(float(trainer.callback_metrics["val/score"]))
    assert not (tmp_path / "unused").exists()  # the logger's own event file was used
