"""Every model's own-data journey from the README, run as a user runs it: `python train.py ...` in a
subprocess, on data shaped like users' (see user_data.py), with an empty torch cache (no FID or VGG
weights). The journeys themselves are the table in journey_table.py.

Step 1 (train) runs in the default suite once per kind of data, step 2 (resume) for CycleGAN; every
model's steps 1-2 and steps 3-5 (stylize, export, multirun) run with `make test-all` (marked slow).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import user_data
import yaml
from helpers import ROOT, run_train, user_environment
from journey_table import JOURNEYS, Journey
from PIL import Image

pytestmark = pytest.mark.journey
EPOCHS = 2

# journey name -> (its data paths, its run folder, the training's result), filled by train_once
_trained: dict[str, tuple[dict[str, Path], Path, subprocess.CompletedProcess]] = {}


@pytest.fixture(scope="module")
def journey_home(tmp_path_factory) -> Path:
    """The user's machine: a working folder, a ganstyle cache and an empty torch hub cache."""
    home = tmp_path_factory.mktemp("journeys")
    (home / "torch-home").mkdir()
    return home


def environment(home: Path) -> dict[str, str]:
    return {"TORCH_HOME": str(home / "torch-home")}


def train_once(journey: Journey, home: Path) -> tuple[dict[str, Path], Path, subprocess.CompletedProcess]:
    """Step 1, run once per journey per session: the documented command for EPOCHS epochs."""
    if journey.name not in _trained:
        folder = home / journey.name
        paths = journey.make_data(folder / "data")
        run_dir = folder / "run"
        result = run_train(
            *journey.command(paths),
            *journey.tiny,
            f"trainer.max_epochs={EPOCHS}",
            "logger=csv",
            f"hydra.run.dir={run_dir}",
            cwd=folder,
            cache=home / "cache",
            env=environment(home),
        )
        _trained[journey.name] = (paths, run_dir, result)
    return _trained[journey.name]


def explain(result: subprocess.CompletedProcess) -> str:
    return (
        f"exit {result.returncode}\n--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-6000:]}"
    )


def checkpoint_epoch(path: Path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=False)["epoch"])


def run_cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    """`ganstyle ...` as a user types it (the installed entry point's module)."""
    return subprocess.run(
        [sys.executable, "-m", "ganstyle.cli", *args],
        cwd=home,
        env=user_environment(home, home / "cache", **environment(home)),
        capture_output=True,
        text=True,
        timeout=300,
    )


def ids(journeys: tuple[Journey, ...]) -> list[str]:
    return [journey.name for journey in journeys]


TRANSLATING = tuple(journey for journey in JOURNEYS if journey.translates)


# Training on the user's data through train.py, by default once per kind of data (unpaired, paired,
# content and style, one folder, one image); CUT, AdaIN and pix2pix from A/B folders under slow.
TRAINED_BY_DEFAULT = ("cyclegan", "pix2pix_aligned", "fast_style", "dcgan", "gatys")


def journey_params(journeys: tuple[Journey, ...], by_default: tuple[str, ...]) -> list:
    return [
        pytest.param(journey, id=journey.name, marks=() if journey.name in by_default else pytest.mark.slow)
        for journey in journeys
    ]


@pytest.mark.parametrize("journey", journey_params(JOURNEYS, TRAINED_BY_DEFAULT))
def test_training_on_own_data_leaves_checkpoint_report_metrics_and_outputs(journey, journey_home):
    paths, run_dir, result = train_once(journey, journey_home)
    assert result.returncode == 0, explain(result)
    assert "Traceback" not in result.stderr, explain(result)
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert (run_dir / "report.html").stat().st_size > 0
    # A quiet start: what runs in one block, none of the libraries' noise; a command that names the
    # user's data (data=...) and no experiment trains at the model config's sizes (no quick start).
    console = result.stdout + result.stderr
    assert "this run:" in console, explain(result)
    command = journey.command(paths)
    if any(a.startswith("data=") for a in command) and not any(a.startswith("experiment=") for a in command):
        assert "experiment: none" in console, explain(result)
    for noise in (
        "litlogger",
        "Total FLOPs",
        "LeafSpec",
        "GPU available",
        "Seed set",
        "suggested max number of worker",
        "anonymous setting",  # W&B's own start lines: the start block says where the offline run is
        "Tracking run with wandb",
        "INFO: `Trainer.fit` stopped",  # Lightning's own copy of a line Hydra's log handler prints too
    ):
        assert noise not in console, explain(result)
    assert len((run_dir / "metrics.csv").read_text().splitlines()) > 1
    for output in journey.outputs:
        path = run_dir / output
        assert path.is_file() or any(path.iterdir()), f"{output} missing or empty in {run_dir}"


UNPAIRED = tuple(journey for journey in JOURNEYS if journey.name in ("cyclegan", "cut"))


@pytest.mark.parametrize("journey", journey_params(UNPAIRED, ("cyclegan",)))
def test_what_a_training_folder_held_but_was_not_read_is_said_in_the_log_and_the_report(
    journey, journey_home
):
    _, run_dir, result = train_once(journey, journey_home)
    assert result.returncode == 0, explain(result)
    log_lines = [line for line in (run_dir / "train.log").read_text().splitlines() if "trainA" in line]
    assert any(
        "read 4 images from" in line
        and "skipped 2" in line
        and "animation.gif: .gif is not a format that is read" in line
        and "sorted/: a subfolder, not read (2 image files inside)" in line
        for line in log_lines
    ), log_lines
    counts = yaml.safe_load((run_dir / "images_read.yaml").read_text())
    train_a = next(value for key, value in counts.items() if key.startswith("trainA"))
    assert train_a["read"] == 4 and [entry for entry, _ in train_a["skipped"]] == ["animation.gif", "sorted/"]
    page = (run_dir / "report.html").read_text()
    assert "Images read" in page and "animation.gif (.gif is not a format that is read)" in page


# Resuming through train.py on the user's data: CycleGAN by default (resuming itself is tested in depth
# in tests/test_resume.py); every other model under slow.
@pytest.mark.parametrize("journey", journey_params(JOURNEYS, ("cyclegan",)))
def test_resuming_with_ckpt_path_last_ends_at_the_new_max_epochs(journey, journey_home):
    _, run_dir, first = train_once(journey, journey_home)
    assert first.returncode == 0, explain(first)
    last = run_dir / "checkpoints" / "last.ckpt"
    epoch_before = checkpoint_epoch(last)
    overrides = _trained_overrides(run_dir)
    result = run_train(
        *overrides,
        f"trainer.max_epochs={EPOCHS + 1}",
        f"hydra.run.dir={run_dir}",
        "ckpt_path=last",
        cwd=run_dir.parent,
        cache=journey_home / "cache",
        env=environment(journey_home),
    )
    assert result.returncode == 0, explain(result)
    assert f"max_epochs={EPOCHS + 1}` reached" in result.stdout + result.stderr, explain(result)
    assert checkpoint_epoch(last) == epoch_before + 1


def _trained_overrides(run_dir: Path) -> list[str]:
    """The first run's overrides, as a user repeats them, minus the ones the resume changes."""
    from omegaconf import OmegaConf

    overrides = OmegaConf.load(run_dir / ".hydra" / "overrides.yaml")
    return [o for o in overrides if not o.startswith(("trainer.max_epochs=", "hydra.run.dir="))]


@pytest.mark.slow
@pytest.mark.parametrize("journey", TRANSLATING, ids=ids(TRANSLATING))
def test_stylize_keeps_sizes_and_reports_the_broken_file(journey, journey_home):
    paths, run_dir, first = train_once(journey, journey_home)
    assert first.returncode == 0, explain(first)
    inputs = user_data.stylize_inputs(journey_home / journey.name / "photos")
    output = journey_home / journey.name / "stylized"
    result = run_cli(
        "stylize",
        str(run_dir / "checkpoints" / "last.ckpt"),
        str(inputs),
        "--output",
        str(output),
        *journey.inference_args(paths),
        home=journey_home,
    )
    assert result.returncode == 0, explain(result)
    assert "broken.jpg" in result.stdout + result.stderr
    for name in ("large", "small"):
        (source,) = inputs.glob(f"{name}.*")
        (written,) = output.glob(f"{name}.*")
        assert Image.open(written).size == Image.open(source).size


@pytest.mark.slow
@pytest.mark.parametrize("journey", TRANSLATING, ids=ids(TRANSLATING))
def test_onnx_export_passes_its_parity_check(journey, journey_home):
    paths, run_dir, first = train_once(journey, journey_home)
    assert first.returncode == 0, explain(first)
    result = run_cli(
        "export",
        str(run_dir / "checkpoints" / "last.ckpt"),
        "--format",
        "onnx",
        *journey.inference_args(paths),
        *journey.export_args,
        home=journey_home,
    )
    assert result.returncode == 0, explain(result)
    assert "(ok)" in result.stdout, explain(result)
    assert list((run_dir / "checkpoints").glob("*.onnx"))


@pytest.mark.slow
@pytest.mark.parametrize("journey", JOURNEYS, ids=ids(JOURNEYS))
def test_a_two_point_multirun_finishes_both_jobs(journey, journey_home):
    paths, run_dir, _ = train_once(journey, journey_home)
    folder = run_dir.parent
    sweep_dir = folder / "sweep"
    result = run_train(
        "-m",
        *journey.command(paths),
        *journey.tiny,
        "trainer.max_epochs=1",
        "logger=csv",
        journey.sweep,
        f"hydra.sweep.dir={sweep_dir}",
        cwd=folder,
        cache=journey_home / "cache",
        env=environment(journey_home),
    )
    assert result.returncode == 0, explain(result)
    jobs = sorted(path for path in sweep_dir.iterdir() if path.is_dir())
    assert [job.name for job in jobs] == ["0", "1"]
    for job in jobs:
        assert (job / "checkpoints" / "last.ckpt").is_file()
        assert (job / "report.html").is_file()
        assert not (job / "FAILED").exists()


def test_the_journey_table_covers_every_model_config():
    """A new model config without a journey row fails here, so its own-data path gets tested."""
    models = {path.stem for path in (ROOT / "conf" / "model").glob("*.yaml")}
    covered = {journey.model for journey in JOURNEYS}
    assert models <= covered, f"no journey for {sorted(models - covered)}"
