"""``report.html``: one self-contained page per run that a browser opens from disk.

Built from ``templates/run.html.j2`` (see :mod:`ganstyle.report.templating`). Everything is inline --
CSS, plots and images as base64 ``data:`` URIs -- and nothing refers to another host, so the file can
be mailed, archived or opened offline. Large image grids are shrunk and only a sample of them is
embedded (evenly spaced over training, always the latest); the page says how many were left out.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from types import SimpleNamespace

import yaml

from ganstyle.report.collect import RunRecord, collect_run, summarize
from ganstyle.report.plots import metric_figures
from ganstyle.report.templating import image_png, picture, render
from ganstyle.utils.atomic_files import atomic_write_text

REPORT_NAME = "report.html"
MAX_GRIDS_PER_STAGE = 8  # image grids embedded per stage (train / val)
MAX_TRANSLATIONS = 8  # translated test images shown per folder
GRID_MIN_WIDTH = 640  # px; narrower grids are shown enlarged (see templating.picture)
THUMBNAIL_MIN_WIDTH = 128  # px; the same for translated test images


def evenly_spaced(items: list, count: int) -> list:
    """Up to ``count`` items spread over the list, always including the first and the last."""
    if len(items) <= count:
        return items
    indices = sorted({round(i * (len(items) - 1) / (count - 1)) for i in range(count)})
    return [items[i] for i in indices]


def grid_stages(grids: list[Path]) -> list[SimpleNamespace]:
    """Grids per stage (validation first), a sample evenly spread over training."""
    stages = []
    for stage in sorted({path.name.split("_", 1)[0] for path in grids}, key=lambda name: name != "val"):
        paths = [path for path in grids if path.name.startswith(f"{stage}_")]
        shown = [
            picture(path.name, image_png(path), min_width=GRID_MIN_WIDTH)
            for path in evenly_spaced(paths, MAX_GRIDS_PER_STAGE)
        ]
        stages.append(SimpleNamespace(name=stage, shown=shown, total=len(paths)))
    return stages


def translation_folders(translations: dict[str, list[Path]]) -> list[SimpleNamespace]:
    return [
        SimpleNamespace(
            name=folder,
            shown=[
                picture(path.name, image_png(path, 512), min_width=THUMBNAIL_MIN_WIDTH)
                for path in paths[:MAX_TRANSLATIONS]
            ],
            total=len(paths),
        )
        for folder, paths in translations.items()
        if paths
    ]


def render_html(record: RunRecord, status: str | None = None) -> str:
    """The report page for ``record``; ``status`` says how the run ended (finished, failed: ...)."""
    plots = [picture(title, png) for title, png in metric_figures(record.metrics)]
    grids = grid_stages(record.grids)
    translations = translation_folders(record.translations)
    sections = {"metrics": "Best and last metric values"}
    if plots:
        sections["curves"] = "Loss and metric curves"
    if grids:
        sections["images"] = "Image grids over training"
    if translations:
        sections["translations"] = "Test set translated at the end of training"
    if record.images_read:
        sections["data"] = "Images read"
    sections |= {"command": "Reproduce this run", "checkpoints": "Checkpoints", "config": "Configuration"}
    subtitle = [str(record.run_dir)]
    if record.model_class:
        subtitle.append(record.model_class.rsplit(".", 1)[-1])
    subtitle.append(f"report written {datetime.datetime.now():%Y-%m-%d %H:%M}")
    last = next((entry.path for entry in record.checkpoints if "last" in entry.roles), None)
    config_text = None
    if record.config is not None:
        config_text = yaml.safe_dump(record.config, sort_keys=False, default_flow_style=None, width=100)
    return render(
        "run.html.j2",
        title=f"ganstyle run {record.run_dir.name}",
        subtitle=subtitle,
        status=status,
        status_failed=bool(status and status.startswith(("failed", "interrupted"))),
        sections=sections,
        record=record,
        monitored=record.monitor[0] if record.monitor else None,
        metric_rows=summarize(record.metrics, record.monitor),
        plots=plots,
        grid_stages=grids,
        translation_folders=translations,
        last_checkpoint=last or (record.checkpoints[-1].path if record.checkpoints else None),
        config_text=config_text,
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
    return atomic_write_text(path, render_html(record, status))  # a browser never sees half a page
