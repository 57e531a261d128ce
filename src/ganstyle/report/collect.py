"""Gather what a run folder says about its run: config, command, metric history, images, checkpoints.

Each piece has a first source and a fallback, so a report can be written for any run folder, even
one whose run crashed or predates a file:

- config: ``.hydra/config.yaml`` resolved (``${hydra:...}`` from ``.hydra/hydra.yaml``), else the
  hyperparameters stored in ``checkpoints/last.ckpt``;
- command: ``.hydra/overrides.yaml``, else the overrides the training callback passes in (those of
  the Hydra job running in its process);
- metrics: ``metrics.csv`` (the MetricsHistory callback), else the CSV logger's ``csv/metrics.csv``;
- best checkpoint: the trainer's ModelCheckpoint, else its state saved inside ``last.ckpt``.
"""

from __future__ import annotations

import csv
import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

METRIC_FILES = ("metrics.csv", "csv/metrics.csv")
# Per scanned data folder: images read and entries skipped (written when training starts).
IMAGES_READ_FILE = "images_read.yaml"
# Name fragments of metrics where lower is better / higher is better; others show min and max.
LOWER_IS_BETTER = ("loss", "fid", "kid", "lpips", "mse", "mae", "error")
HIGHER_IS_BETTER = ("psnr", "ssim", "acc", "score")


@dataclass
class Series:
    """One metric over training: parallel lists of step, epoch and value."""

    steps: list[float] = field(default_factory=list)
    epochs: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)


@dataclass
class MetricSummary:
    name: str
    last: float
    best: float | None  # None when it is not known whether lower or higher is better
    best_step: float | None
    mode: str | None  # "min" or "max"
    minimum: float
    maximum: float


@dataclass
class CheckpointEntry:
    path: Path
    size_mb: float
    roles: list[str]  # "last", "best (val/psnr_B=...)"


@dataclass
class RunRecord:
    run_dir: Path
    config: dict[str, Any] | None = None
    config_source: str = ""
    overrides: list[str] | None = None
    metrics: dict[str, Series] = field(default_factory=dict)
    metrics_source: str = ""
    monitor: tuple[str, str] | None = None  # (metric, "min" | "max")
    grids: list[Path] = field(default_factory=list)
    translations: dict[str, list[Path]] = field(default_factory=dict)
    checkpoints: list[CheckpointEntry] = field(default_factory=list)
    # {folder description: {"folder", "read", "skipped": [[entry, reason], ...]}}
    images_read: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def command(self) -> str | None:
        if self.overrides is None:
            return None
        return " ".join(["python train.py", *(shlex.quote(override) for override in self.overrides)])

    @property
    def model_class(self) -> str | None:
        target = ((self.config or {}).get("model") or {}).get("_target_")
        return str(target) if target else None


def collect_run(
    run_dir: str | Path,
    best_checkpoint: tuple[str, float | None, str | None] | None = None,
    overrides: list[str] | None = None,
) -> RunRecord:
    """Everything the report shows about ``run_dir``. ``best_checkpoint`` ((path, score, monitor)) and
    ``overrides`` come from the training callback, which knows them; otherwise they are read from
    ``last.ckpt`` and ``.hydra/overrides.yaml``."""
    run_dir = Path(run_dir)
    record = RunRecord(run_dir=run_dir)
    record.config, record.config_source = read_config(run_dir)
    record.overrides = read_overrides(run_dir, overrides)
    record.metrics, record.metrics_source = read_metrics(run_dir)
    record.monitor = read_monitor(record.config, run_dir)
    record.grids = sorted((run_dir / "images").glob("*.png"))
    translations = run_dir / "translations"
    if translations.is_dir():
        record.translations = {
            folder.name: sorted(folder.glob("*.png"))
            for folder in sorted(translations.iterdir())
            if folder.is_dir()
        }
    record.checkpoints = read_checkpoints(run_dir, best_checkpoint)
    record.images_read = read_images_read(run_dir)
    return record


def write_images_read(run_dir: str | Path, counts: dict[str, dict[str, Any]]) -> Path:
    """Record the data module's per-folder counts in ``<run>/images_read.yaml``."""
    import yaml

    path = Path(run_dir) / IMAGES_READ_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(counts, sort_keys=False))
    return path


def read_images_read(run_dir: Path) -> dict[str, dict[str, Any]]:
    import yaml

    path = run_dir / IMAGES_READ_FILE
    try:
        counts = yaml.safe_load(path.read_text()) if path.is_file() else None
    except (OSError, yaml.YAMLError):
        return {}
    return counts if isinstance(counts, dict) else {}


def read_monitor(config: dict[str, Any] | None, run_dir: Path) -> tuple[str, str] | None:
    """The monitored metric and its direction. ``monitor.metric: auto`` is decided inside the run, so
    it is read back from the ModelCheckpoint state in ``last.ckpt``, with the metric's usual direction."""
    monitor = (config or {}).get("monitor") or {}
    metric = monitor.get("metric")
    if metric and metric != "auto":
        return str(metric), str(monitor.get("mode", "min"))
    saved = best_from_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    if saved and saved[2]:
        return saved[2], metric_mode(saved[2], None) or "max"
    return None


def read_config(run_dir: Path) -> tuple[dict[str, Any] | None, str]:
    path = run_dir / ".hydra" / "config.yaml"
    if path.is_file():
        return resolve_leniently(
            OmegaConf.load(path), run_dir / ".hydra" / "hydra.yaml"
        ), ".hydra/config.yaml (resolved)"
    checkpoint = load_checkpoint_quietly(run_dir / "checkpoints" / "last.ckpt")
    if checkpoint and "hyper_parameters" in checkpoint:
        config = {"model": dict(checkpoint["hyper_parameters"])}
        if checkpoint.get("ganstyle_model_class"):
            config["model"] = {"_target_": checkpoint["ganstyle_model_class"], **config["model"]}
        return (
            config,
            "model hyperparameters from checkpoints/last.ckpt (no .hydra/config.yaml in the run folder)",
        )
    return None, ""


def resolve_leniently(config: DictConfig, hydra_yaml: Path) -> dict[str, Any]:
    """The config with interpolations resolved; a value that cannot be resolved here (an environment
    variable of the training machine, say) is shown as written instead of failing the whole report."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.utils import setup_globals

    # ${hydra:runtime.output_dir} and friends as they were during that run, also when this process
    # runs another Hydra job. The resolver reads HydraConfig's `cfg`; it is swapped directly because
    # set_config() insists on Hydra's structured schema, which a saved hydra.yaml is not.
    setup_globals()  # registers the hydra: resolver as Hydra's own launch does; idempotent
    instance = HydraConfig.instance()
    previous = instance.cfg
    if hydra_yaml.is_file():
        instance.cfg = OmegaConf.load(hydra_yaml)
    try:
        return _lenient_container(config)
    finally:
        instance.cfg = previous


def _lenient_container(node: DictConfig | ListConfig) -> Any:
    raw = OmegaConf.to_container(node, resolve=False)
    keys = list(node.keys()) if isinstance(node, DictConfig) else list(range(len(node)))
    result: Any = {} if isinstance(node, DictConfig) else []
    for key in keys:
        try:
            value = node[key]
            value = _lenient_container(value) if isinstance(value, DictConfig | ListConfig) else value
        except Exception:  # unresolvable interpolation or missing value: keep the text as written
            value = raw[key]
        if isinstance(result, dict):
            result[key] = value
        else:
            result.append(value)
    return result


def read_overrides(run_dir: Path, known: list[str] | None = None) -> list[str] | None:
    path = run_dir / ".hydra" / "overrides.yaml"
    if path.is_file():
        return [str(item) for item in OmegaConf.to_container(OmegaConf.load(path))]
    return known


def read_metrics(run_dir: Path) -> tuple[dict[str, Series], str]:
    for name in METRIC_FILES:
        path = run_dir / name
        if path.is_file():
            return parse_metrics_csv(path), name
    return {}, ""


def parse_metrics_csv(path: Path) -> dict[str, Series]:
    """``{metric: Series}`` from a CSV with ``step``, ``epoch`` and one column per metric."""
    series: dict[str, Series] = {}
    with path.open(newline="") as handle:
        for index, row in enumerate(csv.DictReader(handle)):
            step = _number(row.get("step"), float(index))
            epoch = _number(row.get("epoch"), math.nan)
            for key, text in row.items():
                if key in (None, "step", "epoch") or text in ("", None):
                    continue
                value = _number(text, None)
                if value is None:
                    continue
                entry = series.setdefault(key, Series())
                entry.steps.append(step)
                entry.epochs.append(epoch)
                entry.values.append(value)
    return dict(sorted(series.items()))


def _number(text: Any, default: Any) -> Any:
    try:
        return float(text)
    except (TypeError, ValueError):
        return default


def metric_mode(name: str, monitor: tuple[str, str] | None) -> str | None:
    if monitor and name == monitor[0]:
        return monitor[1]
    lowered = name.lower()
    if any(fragment in lowered for fragment in HIGHER_IS_BETTER):
        return "max"
    if any(fragment in lowered for fragment in LOWER_IS_BETTER):
        return "min"
    return None


def summarize(metrics: dict[str, Series], monitor: tuple[str, str] | None) -> list[MetricSummary]:
    """Last, best (where better is known) and range of every metric; the monitored one first."""
    rows = []
    for name, series in metrics.items():
        finite = [(value, step) for value, step in zip(series.values, series.steps) if math.isfinite(value)]
        if not finite:
            continue
        mode = metric_mode(name, monitor)
        best = (min if mode == "min" else max)(finite, key=lambda pair: pair[0]) if mode else None
        rows.append(
            MetricSummary(
                name=name,
                last=series.values[-1],
                best=best[0] if best else None,
                best_step=best[1] if best else None,
                mode=mode,
                minimum=min(value for value, _ in finite),
                maximum=max(value for value, _ in finite),
            )
        )
    first = monitor[0] if monitor else None
    return sorted(rows, key=lambda row: (row.name != first, not row.name.startswith("val/"), row.name))


def load_checkpoint_quietly(path: Path) -> dict[str, Any] | None:
    """A checkpoint memory-mapped (cheap even for large files), or None if it is absent or unreadable."""
    if not path.is_file():
        return None
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # the report describes the run; an unreadable checkpoint is listed, not fatal
        return None


def read_checkpoints(
    run_dir: Path, best: tuple[str, float | None, str | None] | None
) -> list[CheckpointEntry]:
    folder = run_dir / "checkpoints"
    paths = sorted(folder.glob("*.ckpt")) if folder.is_dir() else []
    if not paths:
        return []
    if best is None:
        best = best_from_checkpoint(folder / "last.ckpt")
    entries = []
    for path in paths:
        roles = ["last"] if path.name == "last.ckpt" else []
        if best and best[0] and Path(best[0]).name == path.name:
            score = f"{best[2]}={best[1]:.4g}" if best[1] is not None and best[2] else ""
            roles.append(f"best ({score})" if score else "best")
        shared = [other.name for other in paths if other != path and _same_file(other, path)]
        if shared:  # last.ckpt hard-linked to the best file: one copy on disk
            roles.append(f"same file as {', '.join(shared)}")
        entries.append(CheckpointEntry(path=path, size_mb=path.stat().st_size / 2**20, roles=roles))
    return entries


def _same_file(first: Path, second: Path) -> bool:
    try:
        return first.samefile(second)
    except OSError:
        return False


def best_from_checkpoint(last: Path) -> tuple[str, float | None, str | None] | None:
    """The best model path and score that ModelCheckpoint saved inside ``last.ckpt``."""
    checkpoint = load_checkpoint_quietly(last)
    for state in ((checkpoint or {}).get("callbacks") or {}).values():
        # Any ModelCheckpoint (subclasses too): the key is a class name plus settings; the state holds the path.
        if isinstance(state, dict) and state.get("best_model_path"):
            score = state.get("best_model_score")
            return (
                str(state["best_model_path"]),
                None if score is None else float(score),
                state.get("monitor"),
            )
    return None
