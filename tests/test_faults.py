"""Faults: processes killed while writing, full disks, NaN losses, Ctrl-C and bad input, each ending
with the previous checkpoint intact and a message that says what happened and what to do."""

from __future__ import annotations

import errno
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import hydra
import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException

from ganstyle.callbacks.nan_guard import NanGuard, NonFiniteLossError
from ganstyle.callbacks.signals import CheckpointOnInterrupt
from ganstyle.models.base import build_model
from ganstyle.run.checkpointing import AtomicCheckpointIO, CheckpointWriteError, NonFiniteCheckpointError
from ganstyle.run.training import train
from ganstyle.run.user_errors import user_error_message
from ganstyle.utils.image_pool import ImagePool

ROOT = Path(__file__).resolve().parents[1]
TINY = (
    "model.generator.ngf=8",
    "model.generator.netG=resnet_1blocks",
    "model.discriminator.ndf=8",
    "data.n_train=8",
    "data.n_test=4",
    "data.load_size=32",
    "data.crop_size=32",
    "trainer.limit_val_batches=1",
    "trainer.num_sanity_val_steps=0",
    "trainer.limit_train_batches=4",
    "logger=none",
    "callbacks.progress_bar=null",
    "trainer.enable_model_summary=false",
    "~callbacks.translate_test_set",
    "~callbacks.run_summary",
)


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


# --- crash safety ------------------------------------------------------------------------------
def keep_saving(path: Path, payloads: list[torch.Tensor]) -> None:
    """Write checkpoints back to back until killed; ``marker`` says which payload a file must hold."""
    torch.set_num_threads(1)  # a forked child must not use the parent's OpenMP pool (it would hang)
    writer, step = AtomicCheckpointIO(), 0
    while True:
        step += 1
        writer.save_checkpoint({"state_dict": {"weight": payloads[step % 2]}, "marker": step % 2}, path)


def test_writer_killed_at_random_moments_always_leaves_a_complete_checkpoint(tmp_path):
    path = tmp_path / "last.ckpt"
    payloads = [torch.full((1024, 1024), 1.0), torch.full((1024, 1024), 2.0)]  # 4 MB each: slow to write
    context = multiprocessing.get_context("fork")  # the child inherits torch: no import per attempt
    moments = random.Random(0)
    killed_mid_write = 0
    for _ in range(6):
        writer = context.Process(target=keep_saving, args=(path, payloads), daemon=True)
        writer.start()
        deadline = time.monotonic() + 60
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(moments.uniform(0.0, 0.1))
        os.kill(writer.pid, signal.SIGKILL)
        writer.join()
        killed_mid_write += len(list(tmp_path.glob(".last.ckpt.*.tmp"))) > 0
        checkpoint = load(path)  # whatever moment the kill hit, the file is a whole checkpoint
        assert torch.equal(checkpoint["state_dict"]["weight"], payloads[checkpoint["marker"]])
        for leftover in tmp_path.glob(".last.ckpt.*.tmp"):
            leftover.unlink()
    assert killed_mid_write >= 1  # the kills did land inside writes, where a plain torch.save truncates


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_checkpoints_get_the_mode_the_umask_gives_any_other_output_file(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        path = tmp_path / "checkpoints" / "last.ckpt"
        AtomicCheckpointIO().save_checkpoint({"state_dict": {"weight": torch.ones(2)}}, path)
        (tmp_path / "grid.png").write_bytes(b"")  # what any other output file of the run gets
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == mode == (tmp_path / "grid.png").stat().st_mode & 0o777


def test_next_save_removes_temp_files_left_by_a_killed_write(tmp_path):
    stale = tmp_path / ".last.ckpt.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.ones(2)}}, tmp_path / "last.ckpt")
    assert not stale.exists() and load(tmp_path / "last.ckpt")["state_dict"]["w"].sum() == 2


def test_non_finite_weights_are_never_written_over_a_good_checkpoint(tmp_path):
    path = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"G_AB.weight": torch.ones(3)}}, path)
    good = path.read_bytes()
    diverged = {
        "state_dict": {"G_AB.weight": torch.tensor([1.0, float("nan"), 1.0]), "D_A.bias": torch.ones(1)}
    }
    with pytest.raises(NonFiniteCheckpointError) as error:
        AtomicCheckpointIO().save_checkpoint(diverged, path)
    assert "1 weight tensors hold NaN or inf (G_AB.weight)" in str(error.value)
    assert "the previous last.ckpt is kept" in str(error.value)
    assert path.read_bytes() == good


def test_full_disk_while_saving_fails_with_a_clear_message_and_keeps_last_ckpt(
    compose_config, tmp_path, monkeypatch
):
    real_save = torch.save

    def save_until_the_disk_fills(obj, file, *args, **kwargs):
        if isinstance(obj, dict) and obj.get("epoch") == 1:  # the second epoch's checkpoint
            file.write(b"\0" * 4096)  # part of it reached the disk, as on a real full disk
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(obj, file, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_until_the_disk_fills)
    run_dir = tmp_path / "run"
    cfg = compose_config(
        *TINY, "trainer.max_epochs=2", "callbacks.model_checkpoint.save_top_k=0", output_dir=run_dir
    )
    with pytest.raises(CheckpointWriteError) as error:
        train(cfg)
    message = user_error_message(error.value)  # what train.py prints
    last = run_dir / "checkpoints" / "last.ckpt"
    assert f"Could not write the checkpoint {last}: the disk (or your quota) is full" in message
    assert "The previous last.ckpt is unchanged and still loads" in message and "ckpt_path=last" in message
    assert load(last)["epoch"] == 0
    assert not list(last.parent.glob("*.tmp"))


# --- numerical faults --------------------------------------------------------------------------
class BatchesWithNaN:
    """Real batches, replayed each epoch; ``poisoned(epoch, index)`` batches get NaN in domain A."""

    def __init__(self, batches: list[dict], poisoned, model: pl.LightningModule) -> None:
        self.batches, self.poisoned, self.model = batches, poisoned, model

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        for index, batch in enumerate(self.batches):
            if self.poisoned(self.model.current_epoch, index):
                batch = {**batch, "A": torch.full_like(batch["A"], float("nan"))}
            yield batch


class WeightChanges(pl.Callback):
    """Whether each training batch changed any weight."""

    def __init__(self) -> None:
        self.changed: list[bool] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._before = [p.detach().clone() for p in pl_module.parameters()]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        after = list(pl_module.parameters())
        self.changed.append(any(not torch.equal(a, b) for a, b in zip(self._before, after)))


def tiny_model_and_batches(compose_config, count: int = 4):
    cfg = compose_config(*TINY)
    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    datamodule.setup("fit")
    batches = [batch for _, batch in zip(range(count), datamodule.train_dataloader())]
    return build_model(cfg.model), batches


def tiny_trainer(tmp_path: Path, max_epochs: int, callbacks: list) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu",
        max_epochs=max_epochs,
        limit_val_batches=0,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
    )


def test_nan_batch_is_skipped_without_touching_weights_or_optimiser_and_counted(compose_config, tmp_path):
    model, batches = tiny_model_and_batches(compose_config)
    changes = WeightChanges()
    trainer = tiny_trainer(tmp_path, 1, [NanGuard(max_consecutive=3), changes])
    trainer.fit(model, train_dataloaders=BatchesWithNaN(batches, lambda epoch, index: index == 2, model))

    assert changes.changed == [True, True, False, True]
    # Both optimisers skipped batch 2 (NaN real_A reaches the G terms and D_A's loss alike).
    assert model.skipped_steps == 2 and trainer.callback_metrics["train/skipped_steps"] == 2
    adam_steps = {
        int(state["step"]) for optimizer in trainer.optimizers for state in optimizer.state.values()
    }
    assert adam_steps == {3}
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert all(torch.isfinite(image).all() for image in model.pool_A.images + model.pool_B.images)


def test_nan_streak_stops_the_run_naming_the_loss_term_and_the_last_good_checkpoint(compose_config, tmp_path):
    model, batches = tiny_model_and_batches(compose_config)
    checkpoints = ModelCheckpoint(dirpath=tmp_path / "checkpoints", save_last=True)
    trainer = tiny_trainer(tmp_path, 2, [NanGuard(max_consecutive=3), checkpoints])
    from_epoch_1 = BatchesWithNaN(batches, lambda epoch, index: epoch >= 1, model)
    with pytest.raises(NonFiniteLossError) as error:
        trainer.fit(model, train_dataloaders=from_epoch_1)

    last = tmp_path / "checkpoints" / "last.ckpt"
    message = str(error.value)
    assert "3 batches in a row had a non-finite loss" in message and "batch 2 of epoch 1" in message
    assert "generator step: " in message and "loss_cycle_A=nan" in message
    assert f"the last good checkpoint is {last}" in message
    saved = load(last)
    assert saved["epoch"] == 0 and all(torch.isfinite(w).all() for w in saved["state_dict"].values())


def test_non_finite_fakes_are_returned_but_never_stored_in_the_image_pool():
    pool = ImagePool(pool_size=4)
    fakes = torch.zeros(3, 3, 8, 8)
    fakes[1, 0, 0, 0] = float("inf")
    returned = pool.query(fakes)
    assert len(pool) == 2 and all(torch.isfinite(image).all() for image in pool.images)
    assert torch.equal(returned[1], fakes[1])


# --- Ctrl-C ------------------------------------------------------------------------------------
class CtrlCDuringBatch(pl.Callback):
    def __init__(self, batch: int) -> None:
        self.batch = batch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == self.batch:
            signal.raise_signal(signal.SIGINT)  # a real signal, delivered to this process


def test_first_ctrl_c_finishes_the_batch_and_saves_a_checkpoint(compose_config, tmp_path):
    model, batches = tiny_model_and_batches(compose_config)
    handler_before = signal.getsignal(signal.SIGINT)
    path = tmp_path / "checkpoints" / "last.ckpt"
    on_interrupt = CheckpointOnInterrupt(str(path))
    trainer = tiny_trainer(tmp_path, 1, [CtrlCDuringBatch(1), on_interrupt])
    with pytest.raises(SIGTERMException):  # Lightning's clean stop; train() exits 130 for Ctrl-C
        trainer.fit(model, train_dataloaders=BatchesWithNaN(batches, lambda epoch, index: False, model))
    assert on_interrupt.sigint_received and on_interrupt.saved_path == path
    assert load(path)["global_step"] == 2 * 2  # batches 0 and 1 completed, nothing half-done
    assert signal.getsignal(signal.SIGINT) is handler_before


# --- bad input ---------------------------------------------------------------------------------
def run_train_py(tmp_path: Path, cache_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, WANDB_MODE="offline", GANSTYLE_CACHE=str(cache_dir))
    # The embedded dataset's own keys (n_train, n_test) do not exist in other data configs.
    base = [arg for arg in TINY if not arg.startswith("data.n_")] if "data=unpaired" in overrides else TINY
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *base, *overrides, f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        pytest.param(
            "data.crop_size=64", "data.crop_size=64 is larger than data.load_size=32", marks=pytest.mark.slow
        ),
        pytest.param(  # the same path as tests/journeys/test_bad_paths.py's missing root
            "data=unpaired data.root={missing}",
            "The dataset root {missing} does not exist",
            marks=pytest.mark.slow,
        ),
    ],
    ids=["config", "dataset"],
)
def test_train_py_reports_bad_input_in_one_paragraph_and_exits_1(tmp_path, cache_dir, override, expected):
    missing = tmp_path / "no_such_dataset"
    result = run_train_py(tmp_path, cache_dir, *override.format(missing=missing).split())
    assert result.returncode == 1
    assert f"Error: {expected.format(missing=missing)}" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_train_py_with_a_diverging_learning_rate_stops_naming_the_loss_terms(tmp_path, cache_dir):
    result = run_train_py(
        tmp_path, cache_dir, "model.optimizer.lr=1.0e30", "callbacks.nan_guard.max_consecutive=2"
    )
    assert result.returncode == 1
    assert "Error: Training stopped: 2 batches in a row had a non-finite loss" in result.stderr
    assert "loss_D_A=nan" in result.stderr and "no checkpoint has been written yet" in result.stderr
    assert "Traceback" not in result.stderr


def still_running(process: subprocess.Popen, log_path: str) -> bool:
    assert process.poll() is None, Path(log_path).read_text()
    return True


@pytest.mark.slow
def test_training_process_killed_at_random_moments_leaves_a_loadable_last_ckpt(tmp_path, cache_dir):
    """SIGKILL a real train.py that checkpoints after every batch, once right as a write has begun and
    then at random moments; every time, last.ckpt loads and holds finite weights, and the next attempt
    resumes from it."""
    run_dir = tmp_path / "run"
    last = run_dir / "checkpoints" / "last.ckpt"
    env = dict(os.environ, WANDB_MODE="offline", GANSTYLE_CACHE=str(cache_dir))
    moments = random.Random(1)
    for attempt in range(3):
        command = [sys.executable, str(ROOT / "train.py"), *TINY, f"hydra.run.dir={run_dir}"]
        command += ["trainer.max_epochs=100", "+callbacks.model_checkpoint.every_n_train_steps=1"]
        command += [
            "callbacks.model_checkpoint.every_n_epochs=null",
            "callbacks.model_checkpoint.monitor=null",
        ]
        command += ["ckpt_path=last"] if attempt else []
        log = (tmp_path / f"attempt{attempt}.log").open("w")
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        step_before = load(last)["global_step"] if last.exists() else -1
        deadline = time.monotonic() + 300
        while still_running(process, log.name) and (
            not last.exists() or load(last)["global_step"] == step_before
        ):
            assert time.monotonic() < deadline, "no checkpoint written in 300 s"
            time.sleep(0.05)
        if attempt == 0:  # right as the next write starts: its temp file appears
            while still_running(process, log.name) and not list(last.parent.glob(".last.ckpt.*.tmp")):
                assert time.monotonic() < deadline, "no further checkpoint write in 300 s"
        else:
            time.sleep(moments.uniform(0.0, 1.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
        log.close()
        checkpoint = load(last)
        assert checkpoint["global_step"] > step_before
        assert all(torch.isfinite(weight).all() for weight in checkpoint["state_dict"].values())
