"""docs/adding_a_model.md cannot rot: the minimal model it shows (docs/examples/) is the code shown,
keeps the model contract, and trains, resumes, reports and reloads through the real run path with
its configs found the way a user adds a config folder (`hydra.searchpath`)."""

from __future__ import annotations

import csv
import importlib
import re
from pathlib import Path

import pytest
import torch
from helpers import one_thread  # noqa: F401  (tiny in-process training: one intra-op thread)
from test_model_contract import check_built_model, check_declarations, check_inference_generator_signature

import ganstyle
from ganstyle.models.base import build_model
from ganstyle.report.collect import collect_run
from ganstyle.run.training import train

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "adding_a_model.md"
EXAMPLES = ROOT / "docs" / "examples"
# What `PYTHONPATH=docs/examples python train.py model=minimal_gan 'hydra.searchpath=[...]'` adds.
MINIMAL = (f"hydra.searchpath=[file://{EXAMPLES / 'conf'}]", "model=minimal_gan")
# Tiny networks on a few small pairs (the data pix2pix's tests build: one cached dataset for both).
TINY = (
    "model.generator.ngf=4",
    "model.generator.n_blocks=1",
    "model.discriminator.ndf=4",
    "data.image_size=40",
    "data.n_train=6",
    "data.n_test=4",
    "data.load_size=36",
    "data.crop_size=32",
    "data.batch_size=2",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "trainer.log_every_n_steps=1",
    "callbacks.image_grids.every_n_batches=2",
    "callbacks.progress_bar=null",
    "logger=csv",
    # The schedule of a 2-epoch run in both parts, so the resumed run keeps the checkpoint's config.
    "scheduler.total_epochs=2",
)
# A file the guide shows whole: the marker line, then a fenced block holding the file's text.
SHOWN_FILE = re.compile(r"<!-- file: (?P<path>\S+) -->\n```\w*\n(?P<text>.*?)```\n", re.DOTALL)


@pytest.fixture
def minimal_gan(monkeypatch) -> type:
    """The example's model class, imported as train() imports its `_target_`."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    return importlib.import_module("minimal_gan").MinimalGAN


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def epochs_with(rows: list[dict[str, str]], name: str) -> list[float]:
    return sorted({float(row["epoch"]) for row in rows if row.get(name)})


def test_the_guide_shows_every_example_file_exactly_as_it_is():
    shown = {match["path"]: match["text"] for match in SHOWN_FILE.finditer(GUIDE.read_text())}
    files = sorted(
        str(path.relative_to(ROOT)) for path in EXAMPLES.rglob("*") if path.suffix in (".py", ".yaml")
    )
    assert sorted(shown) == files
    for path, text in shown.items():
        assert text == (ROOT / path).read_text(), f"{path} differs from its copy in {GUIDE.name}"


def test_the_minimal_model_keeps_the_model_contract(compose_config, minimal_gan):
    check_inference_generator_signature(minimal_gan)
    check_declarations(minimal_gan)
    cfg = compose_config(*MINIMAL)
    assert cfg.hydra.runtime.choices["loss"] == "minimal_gan"
    assert cfg.hydra.runtime.choices["experiment"] == "minimal_gan_quickstart"
    model = build_model(cfg.model)
    assert type(model) is minimal_gan
    check_built_model(model)


def test_the_minimal_model_trains_resumes_writes_its_outputs_and_loads_for_inference(
    compose_config, minimal_gan, tmp_path
):
    run = tmp_path / "run"
    first = train(compose_config(*MINIMAL, *TINY, "trainer.max_epochs=1", output_dir=run))
    assert isinstance(first, float)  # val/psnr_B: what checkpoints follow without FID
    resumed = train(compose_config(*MINIMAL, *TINY, "trainer.max_epochs=2", "ckpt_path=last", output_dir=run))
    assert isinstance(resumed, float)

    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert checkpoint["epoch"] == 1 and checkpoint["ganstyle_model_class"] == "minimal_gan.MinimalGAN"
    rows = read_rows(run / "metrics.csv")
    logged = {name for row in rows for name, value in row.items() if value}
    assert {"train/loss_G_GAN", "train/loss_G_L1", "train/loss_D_real", "train/lr_G", "val/psnr_B"} <= logged
    assert minimal_gan.validation_metric_names({}, True) <= logged
    # The resumed run kept the first run's rows, in both metric files, each step once.
    for metrics_file in (run / "metrics.csv", run / "csv" / "metrics.csv"):
        rows = read_rows(metrics_file)
        for name in ("train/loss_G_GAN", "val/psnr_B"):
            assert epochs_with(rows, name) == [0.0, 1.0], (metrics_file, name)
        steps = [(float(row["step"]), tuple(name for name, value in row.items() if value)) for row in rows]
        assert len(steps) == len(set(steps)), metrics_file
    assert collect_run(run).metrics["val/psnr_B"].epochs == [0.0, 1.0]  # what report.html's curves draw
    assert any((run / "images").glob("train_*.png")) and any((run / "images").glob("val_*.png"))
    assert (run / "report.html").is_file()
    assert len(list((run / "translations" / "AtoB").glob("*.png"))) == 4

    stylizer = ganstyle.load(run / "checkpoints" / "last.ckpt", device="cpu")
    image = torch.rand(3, 30, 34)  # not a multiple of the generator's 4: padded, then cropped back
    output = stylizer(image)
    assert output.shape == image.shape and bool(torch.isfinite(output).all())
