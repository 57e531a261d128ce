"""Which validation metric checkpointing keeps the best of, decided before training from what the run
will log.

A run logs a metric only if its model computes it on the data it is given: FID/KID when the FID
Inception weights are found (``metrics.fid``), PSNR/SSIM against ground truth only when the
validation batches carry targets (the embedded dataset, paired data, an unpaired ``testA2B/``),
perceptual distances only for the loss terms that are on. So the choice needs three facts:

- the model's :meth:`~ganstyle.models.validation_metrics.ValidationMetricsMixin.validation_metric_names`
  (what its ``validation_step`` logs, given whether there are targets),
- the data module's ``validation_has_targets`` (True, False, or None when only reading it would tell),
- whether FID runs.

``monitor.metric=auto`` then picks FID when it runs, else the model's ground-truth metric when the run
logs it, else nothing: ``last.ckpt`` every epoch and no "best" checkpoint, with one log line saying
why and how to get one. An explicit metric the run will not log stops the run before training; when
the metric list cannot be known beforehand, :class:`~ganstyle.run.checkpointing.LastAndBestCheckpoint`
stops it at the first validation, after writing ``last.ckpt``, with the same kind of paragraph.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ganstyle.config import ConfigError

FID_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"


class MonitoredMetricNotLoggedError(ConfigError):
    """``monitor.metric`` names a metric this run does not log."""


@dataclass(frozen=True)
class MonitorChoice:
    """What checkpointing watches: ``metric`` (None: no best checkpoint) in ``mode``, and why."""

    metric: str | None
    mode: str
    reason: str


def validation_has_targets(datamodule: Any) -> bool | None:
    """Whether the data module's validation batches carry ground truth; None when it cannot say."""
    return getattr(datamodule, "validation_has_targets", None)


def planned_validation_metrics(
    model_class: type, loss: dict[str, Any], has_targets: bool | None, fid_on: bool, kid_on: bool
) -> frozenset[str] | None:
    """Every ``val/`` metric the run will log, or None when the model cannot say beforehand."""
    names = model_class.validation_metric_names(loss, has_targets)
    if names is None:
        return None
    if fid_on:
        for domain in model_class.distribution_domains:
            names = names | {f"val/fid_{domain}", f"val/fid_{domain}_best"}
            if kid_on:
                names = names | {f"val/kid_{domain}", f"val/kid_{domain}_best", f"val/kid_std_{domain}"}
    return frozenset(names)


def choose_monitor(
    model_class: type, logged: frozenset[str] | None, fid_on: bool, has_targets: bool | None, fid_off_why: str
) -> MonitorChoice:
    """``monitor.metric=auto``: FID when it runs, else the ground-truth metric when logged, else none."""
    domains = model_class.distribution_domains
    if fid_on and domains:
        return MonitorChoice(f"val/fid_{domains[0]}", "min", "FID runs")
    ground_truth = model_class.ground_truth_monitor
    if ground_truth is not None and logged is not None and ground_truth[0] in logged:
        return MonitorChoice(ground_truth[0], ground_truth[1], fid_off_why)
    return MonitorChoice(None, "min", no_best_reason(model_class, logged, fid_off_why, has_targets))


def no_best_reason(
    model_class: type, logged: frozenset[str] | None, fid_off_why: str, has_targets: bool | None
) -> str:
    """One log line: why this run keeps no best checkpoint, and how to get one."""
    name = model_class.__name__
    causes = [fid_off_why] if model_class.distribution_domains else []
    ground_truth = model_class.ground_truth_monitor
    if logged is None:
        causes.append(f"{name} does not declare its validation metrics (validation_metric_names)")
    elif ground_truth is not None and has_targets is False:
        causes.append(f"the validation data has no ground truth for {ground_truth[0]}")
    elif ground_truth is None:
        causes.append(f"{name} has no ground-truth metric")
    fixes = []
    if model_class.distribution_domains:
        fixes.append(
            f"put the FID Inception weights ({FID_WEIGHTS_FILE}) in the torch hub cache "
            "(`ganstyle fetch-weights --kinds fid_inception`) or pass metrics.fid_weights_path=..."
        )
    if logged:
        metric = sorted(logged)[0]
        fixes.append(f"name a logged metric, e.g. `monitor.metric={metric} monitor.mode=min`")
    return (
        f"No best checkpoint for this run, only checkpoints/last.ckpt (written every epoch): "
        f"{'; '.join(causes) or 'nothing to rank epochs by'}. For a best checkpoint, {' or '.join(fixes)}."
    )


def not_logged_message(metric: str, logged: Iterable[str], when: str, suggest_auto: bool = True) -> str:
    """The paragraph for an explicit ``monitor.metric`` the run does not log."""
    names = sorted(name for name in logged if name not in ("epoch", "step"))
    auto = (
        ", or to auto (FID when its weights are found, the ground-truth metric when the validation data "
        "has targets, else last.ckpt only)"
        if suggest_auto
        else ""
    )
    return (
        f"monitor.metric={metric} {when}, so it cannot rank epochs. The metrics logged are: "
        f"{', '.join(names) or 'none'}. Set monitor.metric to one of them (with monitor.mode=min or max){auto}."
    )


def check_explicit_monitor(metric: str, logged: frozenset[str] | None) -> None:
    """Refuse before training an explicit ``val/`` metric the run will not log (when that is known)."""
    if logged is None or not metric.startswith("val/") or metric in logged:
        return
    raise MonitoredMetricNotLoggedError(not_logged_message(metric, logged, "is not logged by this run"))


def fid_off_reason(metrics_cfg: dict[str, Any] | None, fid_on: bool) -> str:
    """Why FID does not run (for the log line of a run without a best checkpoint)."""
    if fid_on:
        return "FID runs"
    if not metrics_cfg or metrics_cfg.get("fid") is False:
        return "FID is off (metrics.fid=false)"
    return f"FID is off because its Inception weights ({FID_WEIGHTS_FILE}) are not in the torch hub cache"


def plan_monitor(
    monitor_cfg: dict[str, Any] | None,
    model_class: type,
    loss: dict[str, Any],
    datamodule: Any,
    metrics_cfg: dict[str, Any] | None,
    fid_on: bool,
) -> MonitorChoice | None:
    """The metric and mode checkpointing watches, checked against what the run will log.

    Returns None when there is no ``monitor`` config (nothing to decide). Raises
    :class:`MonitoredMetricNotLoggedError` for an explicit metric that will not be logged.
    """
    if not monitor_cfg:
        return None
    has_targets = validation_has_targets(datamodule)
    kid_on = bool((metrics_cfg or {}).get("kid", True))
    logged = planned_validation_metrics(model_class, loss, has_targets, fid_on, kid_on)
    metric = monitor_cfg.get("metric")
    if metric == "auto":
        return choose_monitor(model_class, logged, fid_on, has_targets, fid_off_reason(metrics_cfg, fid_on))
    if metric:
        check_explicit_monitor(str(metric), logged)
    return MonitorChoice(metric or None, str(monitor_cfg.get("mode", "min")), "named by monitor.metric")


def check_search_metric(cfg: Any) -> None:
    """Refuse, before any trial, a search whose objective (``monitor.metric``) no trial would log.

    ``cfg`` is the composed config of the sweep (the search's own parameters change loss weights and
    learning rates, not which metrics are logged). Reads only the config, the data folders' layout
    and whether the FID weights file exists; builds no network.
    """
    import hydra
    from omegaconf import OmegaConf

    from ganstyle.metrics.validation import fid_enabled
    from ganstyle.models.base import complete_loss_config

    metric = (cfg.get("monitor") or {}).get("metric")
    if metric == "auto":
        raise ConfigError(
            "This search optimises the monitored metric, but monitor.metric=auto is only resolved inside "
            "each trial (FID, minimised, when its weights are found; else the model's ground-truth metric, "
            "maximised; else nothing), after the search fixed its direction from monitor.mode. Name the "
            "objective: e.g. `monitor.metric=val/psnr_B monitor.mode=max` (data with ground truth) or "
            "`monitor.metric=val/fid_B monitor.mode=min` (with the FID weights)."
        )
    if not metric:
        raise ConfigError(
            "This search optimises the monitored metric, but monitor.metric is empty. Name the objective, "
            "e.g. `monitor.metric=val/fid_B monitor.mode=min`."
        )
    model_class = hydra.utils.get_class(cfg.model._target_)
    loss = complete_loss_config(OmegaConf.to_container(cfg.loss, resolve=True)) if cfg.get("loss") else {}
    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    metrics_cfg = OmegaConf.to_container(cfg.metrics, resolve=True) if cfg.get("metrics") else None
    fid_on = bool(model_class.distribution_domains) and fid_enabled(metrics_cfg)
    kid_on = bool((metrics_cfg or {}).get("kid", True))
    logged = planned_validation_metrics(model_class, loss, validation_has_targets(datamodule), fid_on, kid_on)
    if logged is not None and str(metric).startswith("val/") and metric not in logged:
        raise MonitoredMetricNotLoggedError(
            not_logged_message(
                str(metric), logged, "is the search's objective but no trial would log it", suggest_auto=False
            )
            + " Every trial would fail, so none was run. With the FID Inception weights in the torch hub "
            "cache, `monitor.metric=val/fid_<domain> monitor.mode=min` is an objective for any data."
        )
