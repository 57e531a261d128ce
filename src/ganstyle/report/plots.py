"""Metric curves as PNG bytes (matplotlib without pyplot: no display, no global figure state).

One figure per group of metrics -- training losses, learning rates, validation metrics, the rest --
with one small panel per metric, since their scales differ by orders of magnitude. Noisy
per-batch curves get a moving average drawn over the raw values.
"""

from __future__ import annotations

import io
import math

from ganstyle.report.collect import Series

PANEL_COLUMNS = 3
SMOOTH_ABOVE = 50  # points; shorter curves are drawn as they are, with markers
SMOOTH_WINDOW_FRACTION = 0.05  # of the curve's length, for the moving average


# What ImageModel logs about each discriminator (ganstyle.models.base.record_real_scores): one panel.
DISCRIMINATOR_STATISTICS = ("r_t_", "ada_p_", "D_real_")


def group_metrics(names: list[str]) -> dict[str, list[str]]:
    """Metric names by panel group, in the order the report shows them."""
    groups: dict[str, list[str]] = {
        "Validation": [],
        "Training": [],
        "Discriminators: overfitting (r_t, ADA's p, held-out vs training reals)": [],
        "Learning rates": [],
        "Other": [],
    }
    for name in names:
        stage, _, rest = name.partition("/")
        if rest.startswith(DISCRIMINATOR_STATISTICS):
            groups["Discriminators: overfitting (r_t, ADA's p, held-out vs training reals)"].append(name)
        elif rest.startswith("lr"):
            groups["Learning rates"].append(name)
        elif stage == "train":
            groups["Training"].append(name)
        elif stage in ("val", "test"):
            groups["Validation"].append(name)
        else:
            groups["Other"].append(name)
    return {title: members for title, members in groups.items() if members}


def moving_average(values: list[float], window: int) -> list[float]:
    """Trailing mean over ``window`` points (fewer at the start); NaNs are skipped."""
    averaged, total, count, queue = [], 0.0, 0, []
    for value in values:
        queue.append(value)
        if math.isfinite(value):
            total, count = total + value, count + 1
        if len(queue) > window:
            dropped = queue.pop(0)
            if math.isfinite(dropped):
                total, count = total - dropped, count - 1
        averaged.append(total / count if count else math.nan)
    return averaged


def metric_figure(title: str, series: dict[str, Series], dpi: int = 80) -> bytes:
    """A grid of panels, one per metric (x: training step), as PNG bytes."""
    from matplotlib.figure import Figure

    names = list(series)
    columns = min(PANEL_COLUMNS, len(names))
    rows = math.ceil(len(names) / columns)
    figure = Figure(figsize=(4.2 * columns, 2.8 * rows), dpi=dpi, layout="constrained")
    figure.suptitle(title, fontsize=12, fontweight="bold")
    for index, name in enumerate(names):
        axes = figure.add_subplot(rows, columns, index + 1)
        data = series[name]
        if len(data.values) > SMOOTH_ABOVE:
            window = max(2, int(len(data.values) * SMOOTH_WINDOW_FRACTION))
            axes.plot(data.steps, data.values, color="#9ecae1", linewidth=0.8, label="logged")
            axes.plot(
                data.steps,
                moving_average(data.values, window),
                color="#08519c",
                linewidth=1.6,
                label=f"mean of {window}",
            )
            axes.legend(fontsize=7, loc="best")
        else:
            axes.plot(data.steps, data.values, color="#08519c", marker="o", markersize=3, linewidth=1.4)
        axes.set_title(name, fontsize=9)
        axes.set_xlabel("step", fontsize=8)
        axes.tick_params(labelsize=7)
        axes.grid(True, alpha=0.3)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def metric_figures(metrics: dict[str, Series]) -> list[tuple[str, bytes]]:
    """``[(group title, PNG bytes)]`` for every group that has metrics."""
    return [
        (title, metric_figure(title, {name: metrics[name] for name in names}))
        for title, names in group_metrics(list(metrics)).items()
    ]


def _numbers(values: list[str]) -> list[float] | None:
    try:
        return [float(value) for value in values]
    except ValueError:
        return None


def swept_value_figure(
    key: str, values: list[str], scores: list[float], metric: str, connect: bool = True, dpi: int = 80
) -> bytes:
    """The monitored metric of each job against its value of one swept key, as PNG bytes.

    Numeric values share a numeric axis (logarithmic when positive and spanning over a decade and a
    half, as learning rates do); other values are categories in the order the jobs ran. With
    ``connect`` a line joins the mean at each value (other swept keys spread the jobs of one value).
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4.6, 3.0), dpi=dpi, layout="constrained")
    axes = figure.add_subplot(1, 1, 1)
    numbers = _numbers(values)
    if numbers is None:
        categories = list(dict.fromkeys(values))
        numbers = [float(categories.index(value)) for value in values]
        axes.set_xticks(range(len(categories)), categories, rotation=20 if len(categories) > 4 else 0)
    elif min(numbers) > 0 and max(numbers) / min(numbers) >= 30:
        axes.set_xscale("log")
    axes.scatter(numbers, scores, color="#08519c", s=24, zorder=3)
    levels = sorted(set(numbers))
    if connect and len(levels) > 1:
        means = [
            sum(score for x, score in zip(numbers, scores) if x == level)
            / sum(1 for x in numbers if x == level)
            for level in levels
        ]
        axes.plot(levels, means, color="#9ecae1", linewidth=1.4, zorder=2)
    axes.set_xlabel(key, fontsize=9)
    axes.set_ylabel(metric, fontsize=9)
    axes.set_title(f"{metric} against {key}", fontsize=10)
    axes.tick_params(labelsize=7)
    axes.grid(True, alpha=0.3)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def trial_history_figure(
    trials: list[int], scores: list[float], metric: str, mode: str, dpi: int = 80
) -> bytes:
    """Each trial's objective in trial order and the best value so far (``mode``: min or max)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.0, 3.2), dpi=dpi, layout="constrained")
    axes = figure.add_subplot(1, 1, 1)
    pick = min if mode == "min" else max
    best_so_far = [pick(scores[: index + 1]) for index in range(len(scores))]
    axes.scatter(trials, scores, color="#08519c", s=24, zorder=3, label="trial")
    axes.step(
        trials, best_so_far, where="post", color="#d94801", linewidth=1.6, label=f"best so far ({mode})"
    )
    axes.set_xlabel("trial", fontsize=9)
    axes.set_ylabel(metric, fontsize=9)
    axes.set_title("Trial history", fontsize=10)
    axes.legend(fontsize=7, loc="best")
    axes.tick_params(labelsize=7)
    axes.grid(True, alpha=0.3)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
