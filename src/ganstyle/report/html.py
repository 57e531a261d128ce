"""``report.html``: one self-contained page per run that a browser opens from disk.

Everything is inline -- CSS, plots and images as base64 ``data:`` URIs -- and nothing refers to
another host, so the file can be mailed, archived or opened offline. Large image grids are shrunk
and only a sample of them is embedded (evenly spaced over training, always the latest); the page
says how many were left out.
"""

from __future__ import annotations

import base64
import datetime
import io
import math
from html import escape
from pathlib import Path

import yaml
from PIL import Image

from ganstyle.report.collect import RunRecord, collect_run, summarize
from ganstyle.report.plots import metric_figures

REPORT_NAME = "report.html"
MAX_GRIDS_PER_STAGE = 8  # image grids embedded per stage (train / val)
MAX_TRANSLATIONS = 8  # translated test images shown per folder
MAX_IMAGE_WIDTH = 1400  # px; wider images are shrunk before embedding
GRID_MIN_WIDTH = 640  # px; narrower grids are shown enlarged (see figure_html)
THUMBNAIL_MIN_WIDTH = 128  # px; the same for translated test images

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1b1f24; background: #f6f8fa; }
header { background: #24292f; color: #fff; padding: 18px 32px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; color: #c9d1d9; font-size: 14px; }
nav { padding: 8px 32px; background: #eaeef2; font-size: 14px; }
nav a { margin-right: 16px; color: #0969da; text-decoration: none; }
main { padding: 8px 32px 40px; max-width: 1400px; }
section { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 12px 20px; margin: 16px 0; }
h2 { font-size: 18px; border-bottom: 1px solid #d0d7de; padding-bottom: 6px; }
table { border-collapse: collapse; font-size: 14px; }
th, td { text-align: left; padding: 4px 12px 4px 0; border-bottom: 1px solid #eaeef2; }
td.number { font-variant-numeric: tabular-nums; text-align: right; }
pre { background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 6px; padding: 10px; overflow-x: auto; font-size: 13px; }
figure { margin: 10px 0 18px; }
figure img { max-width: 100%; border: 1px solid #d0d7de; }
figcaption { font-size: 13px; color: #57606a; }
.gallery { display: flex; flex-wrap: wrap; gap: 8px; }
.gallery figure { margin: 0; }
.gallery img { max-height: 180px; }
.note { color: #57606a; font-size: 13px; }
pre.wrap { white-space: pre-wrap; overflow-wrap: anywhere; }  /* commands: wrapped, all visible */
.status-failed { color: #ff8182; font-weight: bold; }
"""


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def image_png(path: Path, max_width: int = MAX_IMAGE_WIDTH) -> bytes:
    """The image as PNG bytes, shrunk to ``max_width`` if it is wider."""
    with Image.open(path) as image:
        if image.width <= max_width and path.suffix.lower() == ".png":
            return path.read_bytes()
        image = image.convert("RGB")
        if image.width > max_width:
            image = image.resize(
                (max_width, round(image.height * max_width / image.width)), Image.Resampling.LANCZOS
            )
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", optimize=True)
        return buffer.getvalue()


def evenly_spaced(items: list, count: int) -> list:
    """Up to ``count`` items spread over the list, always including the first and the last."""
    if len(items) <= count:
        return items
    indices = sorted({round(i * (len(items) - 1) / (count - 1)) for i in range(count)})
    return [items[i] for i in indices]


def _format(value: float | None) -> str:
    if value is None:
        return ""
    if not math.isfinite(value):
        return str(value)
    return f"{value:.0f}" if float(value).is_integer() and abs(value) >= 1 else f"{value:.4g}"


def metrics_section(record: RunRecord) -> str:
    rows = summarize(record.metrics, record.monitor)
    if not rows:
        return "<p class='note'>No metrics were recorded (no metrics.csv or csv/metrics.csv in the run folder).</p>"
    body = [
        "<table><tr><th>metric</th><th>last</th><th>best</th><th>best at step</th><th>min</th><th>max</th></tr>"
    ]
    for row in rows:
        monitored = " (monitored)" if record.monitor and row.name == record.monitor[0] else ""
        best = f"{_format(row.best)} ({row.mode})" if row.best is not None else "n/a"
        cells = [_format(row.last), best, _format(row.best_step), _format(row.minimum), _format(row.maximum)]
        body.append(
            f"<tr><td>{escape(row.name)}{monitored}</td>"
            + "".join(f"<td class='number'>{cell}</td>" for cell in cells)
            + "</tr>"
        )
    body.append(f"</table><p class='note'>From {escape(record.metrics_source)}.</p>")
    return "".join(body)


def figure_html(title: str, png: bytes, caption: bool = True, min_width: int = 0) -> str:
    """An embedded image; one narrower than ``min_width`` is shown enlarged by a whole factor with
    square pixels, so a grid of 64 px crops stays readable."""
    width = Image.open(io.BytesIO(png)).width
    scale = max(1, -(-min_width // width)) if min_width else 1
    size = f" width='{width * scale}' style='image-rendering: pixelated'" if scale > 1 else ""
    label = f"<figcaption>{escape(title)}</figcaption>" if caption else ""
    return f"<figure><img alt='{escape(title)}' src='{data_uri(png)}'{size}>{label}</figure>"


def grids_section(grids: list[Path]) -> str:
    """Grids per stage (validation first), a sample evenly spread over training."""
    parts = []
    for stage in sorted({path.name.split("_", 1)[0] for path in grids}, key=lambda name: name != "val"):
        paths = [path for path in grids if path.name.startswith(f"{stage}_")]
        shown = evenly_spaced(paths, MAX_GRIDS_PER_STAGE)
        parts.append(f"<h3>{escape(stage)} grids</h3>")
        if len(shown) < len(paths):
            parts.append(
                f"<p class='note'>{len(shown)} of {len(paths)} grids, evenly spaced over training; "
                "all are in images/.</p>"
            )
        parts.extend(figure_html(path.name, image_png(path), min_width=GRID_MIN_WIDTH) for path in shown)
    return "".join(parts)


def translations_section(translations: dict[str, list[Path]]) -> str:
    parts = []
    for folder, paths in translations.items():
        shown = paths[:MAX_TRANSLATIONS]
        parts.append(
            f"<h3>{escape(folder)}</h3><p class='note'>{len(shown)} of {len(paths)} files in "
            f"translations/{escape(folder)}/</p><div class='gallery'>"
        )
        parts.extend(
            figure_html(path.name, image_png(path, 512), min_width=THUMBNAIL_MIN_WIDTH) for path in shown
        )
        parts.append("</div>")
    return "".join(parts)


def command_section(record: RunRecord) -> str:
    if not record.command:
        return "<p class='note'>The command-line overrides were not recorded (.hydra/overrides.yaml is missing).</p>"
    return (
        f"<pre class='wrap'>{escape(record.command)}</pre><p class='note'>Run it from the project root; the seed is part of the config, so data order and "
        "initialisation repeat.</p>"
    )


def checkpoints_section(record: RunRecord) -> str:
    if not record.checkpoints:
        return "<p class='note'>No checkpoints in checkpoints/.</p>"
    body = ["<table><tr><th>checkpoint</th><th>size</th><th>role</th></tr>"]
    body.extend(
        f"<tr><td>{escape(str(entry.path))}</td><td class='number'>{entry.size_mb:.1f} MB</td>"
        f"<td>{escape(', '.join(entry.roles))}</td></tr>"
        for entry in record.checkpoints
    )
    last = next(
        (entry.path for entry in record.checkpoints if "last" in entry.roles), record.checkpoints[-1].path
    )
    usage = f"ganstyle stylize {last} photos/ --output stylized/"
    body.append(f"</table><p>Apply it to your own images:</p><pre class='wrap'>{escape(usage)}</pre>")
    return "".join(body)


def config_section(record: RunRecord) -> str:
    if record.config is None:
        return "<p class='note'>No config found (.hydra/config.yaml or checkpoint hyperparameters).</p>"
    text = yaml.safe_dump(record.config, sort_keys=False, default_flow_style=None, width=100)
    return f"<p class='note'>From {escape(record.config_source)}.</p><pre>{escape(text)}</pre>"


def render_html(record: RunRecord, status: str | None = None) -> str:
    """The report page for ``record``; ``status`` says how the run ended (finished, failed: ...)."""
    sections = [("metrics", "Best and last metric values", metrics_section(record))]
    figures = metric_figures(record.metrics)
    if figures:
        plots = "".join(figure_html(title, png, caption=False) for title, png in figures)
        sections.append(("curves", "Loss and metric curves", plots))
    if record.grids:
        sections.append(("images", "Image grids over training", grids_section(record.grids)))
    if any(record.translations.values()):
        sections.append(
            (
                "translations",
                "Test set translated at the end of training",
                translations_section(record.translations),
            )
        )
    sections += [
        ("command", "Reproduce this run", command_section(record)),
        ("checkpoints", "Checkpoints", checkpoints_section(record)),
        ("config", "Configuration", config_section(record)),
    ]
    title = f"ganstyle run {record.run_dir.name}"
    subtitle = [escape(str(record.run_dir))]
    if record.model_class:
        subtitle.append(escape(record.model_class.rsplit(".", 1)[-1]))
    subtitle.append(f"report written {datetime.datetime.now():%Y-%m-%d %H:%M}")
    if status:
        failed = status.startswith(("failed", "interrupted"))
        subtitle.append(f"<span class='{'status-failed' if failed else ''}'>{escape(status)}</span>")
    nav = "".join(f"<a href='#{anchor}'>{escape(name)}</a>" for anchor, name, _ in sections)
    content = "".join(
        f"<section id='{anchor}'><h2>{escape(name)}</h2>{body}</section>" for anchor, name, body in sections
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{escape(title)}</title>"
        f"<style>{CSS}</style></head><body><header><h1>{escape(title)}</h1>"
        f"<p>{' &middot; '.join(subtitle)}</p></header><nav>{nav}</nav><main>{content}</main></body></html>\n"
    )


def write_report(
    run_dir: str | Path,
    status: str | None = None,
    best_checkpoint: tuple[str, float | None, str | None] | None = None,
    output: str | Path | None = None,
    overrides: list[str] | None = None,
) -> Path:
    """Collect the run in ``run_dir`` and write its report (default ``<run_dir>/report.html``)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(
            f"Run folder {run_dir} does not exist. Reports are written for training run folders, e.g. "
            "outputs/train/runs/<timestamp>/ (they hold checkpoints/, images/ and .hydra/)."
        )
    record = collect_run(run_dir, best_checkpoint, overrides)
    path = Path(output) if output else run_dir / REPORT_NAME
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(render_html(record, status), encoding="utf-8")
    temporary.replace(path)  # a browser never sees a half-written page
    return path
