"""Resuming a run: which checkpoint, and whether it fits the configured model.

- :func:`check_resume_compatible` compares a checkpoint with the configured model before fitting, so
  resuming with a different model or config names the differing keys instead of failing inside
  ``load_state_dict`` or, worse, silently training a different experiment.
- :func:`check_run_dir_reuse` refuses to start a fresh run in a folder that already holds a run's
  outputs; :func:`slurm_requeue_checkpoint` lets a requeued SLURM job pick its own run up again, and
  :func:`latest_checkpoint` is what ``ckpt_path=last`` means.

The random states a resumed run restores travel in the checkpoint through the model
(:mod:`ganstyle.utils.random_states`).
"""

from __future__ import annotations

import logging
import os
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ganstyle.config import ConfigError, listed
from ganstyle.utils.schedulers import with_schedule_length_of_old_checkpoints

if TYPE_CHECKING:
    from ganstyle.models.base import ImageModel

log = logging.getLogger(__name__)

HPC_CHECKPOINT = re.compile(r"hpc_ckpt_(\d+)\.ckpt$")  # Lightning's SLURM requeue checkpoints


# Keys that follow the run rather than the model: `scheduler.total_epochs` is `trainer.max_epochs`, so
# resuming with a larger max_epochs extends the run and refits the schedule to its new length.
RUN_LENGTH_KEYS = ("scheduler.total_epochs",)
# Keys that choose how a result is computed, not what it is: a checkpoint resumes with either value,
# and one written before the key existed resumes too.
SPEED_KEYS = ("batch_shared_calls",)


class CheckpointMismatchError(ConfigError):
    """``ckpt_path`` names a checkpoint of another model or another configuration."""


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest resumable checkpoint of a run folder: ``checkpoints/last.ckpt`` or a SLURM
    ``hpc_ckpt_<n>.ckpt`` (Lightning writes those into the run folder on the requeue signal)."""
    run_dir = Path(run_dir)
    candidates = [run_dir / "checkpoints" / "last.ckpt"]
    if run_dir.is_dir():
        candidates += [path for path in run_dir.iterdir() if HPC_CHECKPOINT.match(path.name)]
    existing = [path for path in candidates if path.is_file()]
    return max(existing, key=lambda path: path.stat().st_mtime_ns) if existing else None


def previous_run_outputs(run_dir: str | os.PathLike) -> list[Path]:
    """Files a previous run left in ``run_dir`` that a fresh run there would overwrite."""
    run_dir = Path(run_dir)
    found: list[Path] = []
    for pattern in ("checkpoints/*.ckpt", "hpc_ckpt_*.ckpt", "images/*.png", "translations/*/*"):
        found += sorted(run_dir.glob(pattern))
    return found


def check_run_dir_reuse(run_dir: str | os.PathLike, ckpt_path: str | None) -> None:
    """Refuse a fresh run (no ``ckpt_path``) in a folder that already holds a run's outputs."""
    if ckpt_path:
        return
    outputs = previous_run_outputs(run_dir)
    if outputs:
        names = [str(path.relative_to(run_dir)) for path in outputs]
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more files" if len(names) > 3 else "")
        raise ConfigError(
            f"The run folder {run_dir} already holds the outputs of an earlier run ({shown}); starting a "
            "new run there would overwrite its checkpoints, images and translations. To continue that run "
            f"add `ckpt_path=last` (with `hydra.run.dir={run_dir}`); to start afresh leave hydra.run.dir "
            "unset (every run gets its own timestamped folder) or choose a new folder."
        )


def slurm_requeue_checkpoint(run_dir: str | os.PathLike) -> str | None:
    """On a SLURM job that finds checkpoints in its run folder, the newest one, else None.

    A requeued job restarts the same command with the same ``SLURM_JOB_ID``; with the run folder named
    after it (``hydra.run.dir=outputs/train/slurm/$SLURM_JOB_ID``) it finds what the first attempt
    saved before it was pre-empted and continues from there.
    """
    if not os.environ.get("SLURM_JOB_ID"):
        return None
    latest = latest_checkpoint(run_dir)
    return str(latest) if latest is not None else None


def check_reused_run_dir_in_argv(argv: Sequence[str]) -> None:
    """:func:`check_run_dir_reuse` on a ``hydra.run.dir=...`` given on the command line.

    train.py calls it before Hydra starts, because Hydra rewrites ``<run dir>/.hydra/*.yaml`` before
    any of our code runs: checking only inside ``train(cfg)`` would refuse the run after the earlier
    run's saved config had already been replaced.
    """
    if any(arg in ("-m", "--multirun") for arg in argv):
        return
    values = {}
    for arg in argv[1:]:
        key, sep, value = arg.lstrip("+").partition("=")
        if sep and key in ("hydra.run.dir", "ckpt_path"):
            values[key] = value
    run_dir = values.get("hydra.run.dir")
    if not run_dir or "${" in run_dir:
        return
    run_dir = os.path.abspath(os.path.expanduser(_unquote(run_dir)))
    ckpt_path = values.get("ckpt_path")
    ckpt_path = None if ckpt_path in (None, "", "null") else ckpt_path
    check_run_dir_reuse(run_dir, ckpt_path or slurm_requeue_checkpoint(run_dir))


def _unquote(value: str) -> str:
    try:
        parts = shlex.split(value)
    except ValueError:
        return value
    return parts[0] if len(parts) == 1 else value


def model_class_path(model: Any) -> str:
    return f"{type(model).__module__}.{type(model).__qualname__}"


def load_checkpoint_for_check(ckpt_path: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint's contents (memory-mapped, on the CPU), or a ConfigError saying why not."""
    try:
        checkpoint = torch.load(ckpt_path, map_location="cpu", mmap=True, weights_only=True)
    except Exception as error:  # torch raises RuntimeError, UnpicklingError, EOFError, ... on bad files
        raise ConfigError(
            f"ckpt_path={ckpt_path} is not a readable checkpoint ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else 'no detail'}). It may be truncated (copied "
            "while being written) or not a Lightning checkpoint; resume from the run's "
            "checkpoints/last.ckpt or an epochNNN.ckpt."
        ) from error
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ConfigError(
            f"ckpt_path={ckpt_path} is a torch file but not a Lightning training checkpoint (it has no "
            "'state_dict'); resume from a run's checkpoints/last.ckpt. Weights alone cannot resume a run."
        )
    return checkpoint


def check_resume_compatible(
    ckpt_path: str | os.PathLike, model: ImageModel, allow_changed: Iterable[str] = ()
) -> None:
    """Stop before fitting when ``ckpt_path`` was written by another model class or another model
    config (hyperparameters or weight shapes), naming what differs.

    ``allow_changed`` lists hyperparameter keys (or their prefixes, ``scheduler``) that may differ,
    e.g. a longer schedule when extending a finished run.
    """
    checkpoint = load_checkpoint_for_check(ckpt_path)
    written_by = checkpoint.get("ganstyle_model_class")  # set by ImageModel.on_save_checkpoint
    configured = model_class_path(model)
    if written_by and written_by != configured:
        raise CheckpointMismatchError(
            f"ckpt_path={ckpt_path} was written by {written_by}, but the configured model is {configured}. "
            f"Resume with the model that wrote it (model=<its config name>, as in that run's "
            ".hydra/overrides.yaml), or leave ckpt_path unset to train this model from scratch."
        )
    allowed = (*allow_changed, *RUN_LENGTH_KEYS, *SPEED_KEYS)
    saved_hparams = dict(checkpoint.get("hyper_parameters") or {})
    if "scheduler" in saved_hparams:  # older checkpoints' linear schedule, in today's keys
        saved_hparams["scheduler"] = with_schedule_length_of_old_checkpoints(saved_hparams["scheduler"])
    saved = _flatten(saved_hparams)
    current = _flatten(dict(model.hparams))
    for key in RUN_LENGTH_KEYS:
        if key in saved and key in current and saved[key] != current[key]:
            log.info(
                "resuming a %s-epoch run as a %s-epoch run: the learning-rate schedule is refitted to "
                "the new length from the checkpoint's epoch on",
                saved[key],
                current[key],
            )
    differences = [
        f"{key}: checkpoint {saved.get(key, '<absent>')!r}, configured {current.get(key, '<absent>')!r}"
        for key in sorted(set(saved) | set(current))
        if saved.get(key, _MISSING) != current.get(key, _MISSING)
        and not any(key == prefix or key.startswith(prefix + ".") for prefix in allowed)
    ]
    if differences:
        raise CheckpointMismatchError(
            f"ckpt_path={ckpt_path} was written with a different model config; {len(differences)} "
            f"hyperparameters differ ({listed(differences, separator='; ')}). Resuming would continue a "
            "different experiment from these weights. Pass the overrides of the run that wrote it (its "
            ".hydra/overrides.yaml), or list keys that may change on purpose in `resume_allow_changed`, "
            "e.g. `resume_allow_changed=[scheduler]` to extend a finished schedule."
        )
    saved_shapes = {k: tuple(v.shape) for k, v in checkpoint["state_dict"].items() if hasattr(v, "shape")}
    model_shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    # Weights a model builds from its data in setup (Gatys' image) do not exist before fitting.
    built_from_data = set(model.weights_built_from_data)
    mismatched = [
        f"{key}: checkpoint {saved_shapes.get(key, 'absent')}, model {model_shapes.get(key, 'absent')}"
        for key in sorted(set(saved_shapes) | set(model_shapes))
        if saved_shapes.get(key) != model_shapes.get(key)
        and not (key in built_from_data and key not in model_shapes)
    ]
    if mismatched:
        raise CheckpointMismatchError(
            f"ckpt_path={ckpt_path} does not fit the configured {type(model).__name__}: "
            f"{len(mismatched)} weights are missing or shaped differently ({listed(mismatched, separator='; ')}). "
            "It was written by another model or network config; resume with the overrides of the run "
            "that wrote it."
        )


_MISSING = object()


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}{key}."))
        return flat
    if isinstance(value, tuple):
        value = list(value)  # a list after a round trip through the checkpoint's yaml/pickle
    return {prefix[:-1]: value}
