"""The checkpoints a local page offers: found in run folders, labelled from their own files.

Each label says what a person picks by: the model, the run (its folder name), the epoch and the
monitored metric's best value when the run kept one, newest first. Labels come from the checkpoint
(read memory-mapped, tensors untouched) and the run's ``.hydra/config.yaml``; nothing is trained or
built to list them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ganstyle.inference.loading import MODEL_CLASS_KEY, REFERENCE_IMPORT_KEY


@dataclass(frozen=True)
class ServedCheckpoint:
    path: Path
    model: str  # the class name: CycleGAN, CUT, Pix2Pix, AdaIN, ...
    run: str
    epoch: int | None
    metric: str | None  # "val/psnr_B=16.21 (best)"
    modified: float
    report: Path | None

    @property
    def label(self) -> str:
        epoch = f"epoch {self.epoch}" if self.epoch is not None else "imported"
        metric = f", {self.metric}" if self.metric else ""
        return f"{self.model} · {self.run} · {self.path.name} · {epoch}{metric}"


def _candidates(source: Path) -> list[Path]:
    if source.is_file():
        return [source]
    if not source.is_dir():
        return []
    # Run folders keep checkpoints in <run>/checkpoints/; a folder of .ckpt files (imported ones) works too.
    return sorted(path for path in source.rglob("*.ckpt") if not path.name.startswith("."))


def _monitor(checkpoint: dict[str, Any]) -> str | None:
    # The checkpoint callback's state (ModelCheckpoint or ganstyle's LastAndBestCheckpoint).
    for state in (checkpoint.get("callbacks") or {}).values():
        if isinstance(state, dict) and state.get("best_model_score") is not None and state.get("monitor"):
            return f"{state.get('monitor')}={float(state['best_model_score']):.4g} (best)"
    return None


def describe(path: Path) -> ServedCheckpoint | None:
    """What the page shows for ``path``; None when it is not a ganstyle checkpoint."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # unreadable, truncated, or a bare state dict of another program: not offered
        return None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        return None
    model = str(checkpoint.get(MODEL_CLASS_KEY) or "unknown").rsplit(".", 1)[-1]
    run_dir = path.resolve().parent.parent if path.parent.name == "checkpoints" else path.resolve().parent
    imported = checkpoint.get(REFERENCE_IMPORT_KEY)
    epoch = None if imported else checkpoint.get("epoch")
    report = run_dir / "report.html"
    return ServedCheckpoint(
        path=path,
        model=model,
        run=run_dir.name,
        epoch=int(epoch) if isinstance(epoch, int) else None,
        metric=_monitor(checkpoint),
        modified=os.stat(path).st_mtime,
        report=report if report.is_file() else None,
    )


def find_checkpoints(sources: list[str | Path]) -> list[ServedCheckpoint]:
    """Every ganstyle checkpoint in ``sources`` (run folders, folders of runs, .ckpt files), newest
    first; hard links to one file (last.ckpt sharing the best epoch's file) are listed once."""
    found, seen = [], set()
    for source in sources:
        for path in _candidates(Path(source).expanduser()):
            identity = (path.stat().st_dev, path.stat().st_ino)
            if identity in seen:
                continue
            entry = describe(path)
            if entry is not None:
                seen.add(identity)
                found.append(entry)
    return sorted(found, key=lambda entry: entry.modified, reverse=True)
