"""Runs saved while the run modules sat at the package root keep working: their ``_target_`` strings
(``ganstyle.checkpointing.LastAndBestCheckpoint``, ``ganstyle.sweeps.ReportFailedJobs``, ...) still
build the same objects, old module names still import, and their checkpoints still load and resume.

``tests/data/run_folder_with_root_module_paths`` is such a run: a one-batch CycleGAN (ngf=4) trained
by that layout's code, its ``.hydra/`` folder and ``checkpoints/last.ckpt`` kept as written (only the
machine's paths replaced).
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import hydra
import pytest
import torch
from omegaconf import OmegaConf

import ganstyle
from ganstyle import MOVED_MODULES
from ganstyle.inference.loading import load_model
from ganstyle.run.checkpointing import AtomicCheckpointIO, LastAndBestCheckpoint
from ganstyle.run.sweeps import CheckSearchObjective, ReportFailedJobs
from ganstyle.run.training import train

OLD_RUN = Path(__file__).resolve().parent / "data" / "run_folder_with_root_module_paths"


def ganstyle_targets(node, found: list[str] | None = None) -> list[str]:
    """Every ``ganstyle.`` ``_target_`` string in a plain config tree."""
    found = [] if found is None else found
    if isinstance(node, dict):
        target = node.get("_target_")
        if isinstance(target, str) and target.startswith("ganstyle."):
            found.append(target)
        for value in node.values():
            ganstyle_targets(value, found)
    elif isinstance(node, list):
        for value in node:
            ganstyle_targets(value, found)
    return found


def saved_config(name: str) -> dict:
    return OmegaConf.to_container(OmegaConf.load(OLD_RUN / ".hydra" / name), resolve=False)


@pytest.mark.parametrize("old_name", sorted(MOVED_MODULES))
def test_an_old_module_name_imports_the_module_it_moved_to(old_name):
    moved = importlib.import_module(MOVED_MODULES[old_name])
    assert importlib.import_module(old_name) is moved
    assert getattr(ganstyle, old_name.removeprefix("ganstyle.")) is moved
    assert moved.__spec__.name == MOVED_MODULES[old_name]  # it still reports where it lives


def test_the_saved_run_names_modules_by_their_old_paths():
    # Guards the fixture: without old paths in it the tests below would prove nothing.
    targets = ganstyle_targets(saved_config("config.yaml")) + ganstyle_targets(saved_config("hydra.yaml"))
    assert "ganstyle.checkpointing.LastAndBestCheckpoint" in targets
    assert "ganstyle.sweeps.ReportFailedJobs" in targets


@pytest.mark.parametrize("file_name", ["config.yaml", "hydra.yaml"])
def test_every_target_of_a_saved_run_config_still_resolves(file_name):
    for target in ganstyle_targets(saved_config(file_name)):
        assert hydra.utils.get_object(target) is not None, target


def test_old_target_paths_of_a_saved_run_still_instantiate(tmp_path):
    config = OmegaConf.load(OLD_RUN / ".hydra" / "config.yaml")
    config.paths.output_dir = str(tmp_path)  # was ${hydra:runtime.output_dir}
    assert config.callbacks.model_checkpoint._target_ == "ganstyle.checkpointing.LastAndBestCheckpoint"
    assert isinstance(hydra.utils.instantiate(config.callbacks.model_checkpoint), LastAndBestCheckpoint)
    assert isinstance(hydra.utils.instantiate(config.plugins.checkpoint_io), AtomicCheckpointIO)
    assert hydra.utils.instantiate(config.plugins.slurm) is None  # not under SLURM
    callbacks = OmegaConf.load(OLD_RUN / ".hydra" / "hydra.yaml").hydra.callbacks
    assert isinstance(hydra.utils.instantiate(callbacks.check_search_objective), CheckSearchObjective)
    assert isinstance(hydra.utils.instantiate(callbacks.report_failed_jobs), ReportFailedJobs)
    assert callable(hydra.utils.get_method("ganstyle.loggers.make_wandb_logger"))  # conf/logger/wandb.yaml


def test_import_ganstyle_imports_no_moved_module():
    # The old names are answered on first use; `import ganstyle` must not pay for the run layer.
    script = (
        "import sys, ganstyle\n"
        "loaded = [m for m in sys.modules if m.startswith(('ganstyle.run', 'ganstyle.utils', 'lightning'))]\n"
        "print(loaded)\n"
        "sys.exit(1 if loaded else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_checkpoint_saved_before_the_move_loads_for_inference():
    path = OLD_RUN / "checkpoints" / "last.ckpt"
    model = load_model(path)
    saved = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    assert type(model).__name__ == "CycleGAN"
    for key, value in model.state_dict().items():
        assert torch.equal(value, saved[key]), key


def test_a_run_saved_before_the_move_resumes(compose_config, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(OLD_RUN, run_dir)
    overrides = OmegaConf.to_container(OmegaConf.load(run_dir / ".hydra" / "overrides.yaml"))
    saved = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    cfg = compose_config(*overrides, "trainer.max_epochs=2", "ckpt_path=last", output_dir=run_dir)
    train(cfg)
    resumed = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert saved["epoch"] == 0 and resumed["epoch"] == 1
    assert resumed["global_step"] == 2 * saved["global_step"]  # one more batch: a G and a D step
