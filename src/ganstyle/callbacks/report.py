"""Write ``<run>/report.html`` when training ends, and also when it fails or is interrupted.

The report (see :mod:`ganstyle.report`) reads the run folder, so it runs last: after the test-set
translations and with the metric history flushed. A problem while writing it is logged as a warning:
the run's checkpoints and results are already saved, and a report bug must not turn a finished
training into a failed one. ``ganstyle report RUN_DIR`` writes it again at any time.
"""

from __future__ import annotations

import logging
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_only

log = logging.getLogger(__name__)


def job_overrides() -> list[str] | None:
    """The command-line overrides of the Hydra job this process runs, if it runs one."""
    from hydra.core.hydra_config import HydraConfig

    return [str(item) for item in HydraConfig.get().overrides.task] if HydraConfig.initialized() else None


class RunReport(pl.Callback):
    def __init__(self, run_dir: str) -> None:
        self.run_dir = Path(run_dir)
        self.path: Path | None = None

    @rank_zero_only
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # The data module has scanned its folders by now (setup runs before this hook): how many images
        # each folder gave and what was skipped go to the run folder, for this report and later ones.
        counts = getattr(trainer.datamodule, "image_counts", None)
        if counts and not trainer.fast_dev_run:
            from ganstyle.report import write_images_read

            try:
                write_images_read(self.run_dir, counts)
            except OSError as error:  # see the module docstring: never fail a run over its report
                log.warning("could not record the image counts in %s: %s", self.run_dir, error)

    @rank_zero_only
    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # fast_dev_run is a smoke test: it records no metrics and saves no checkpoints.
        if not trainer.fast_dev_run:
            if trainer.interrupted:
                status = "interrupted"
            elif trainer.global_step == 0:
                status = "failed: trained nothing (no optimisation step ran)"
            else:
                status = "finished"
            self.write(trainer, status)

    @rank_zero_only
    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        if not trainer.fast_dev_run:
            self.write(trainer, f"failed: {type(exception).__name__}: {exception}")

    def write(self, trainer: pl.Trainer, status: str) -> None:
        from ganstyle.report import write_report

        for logger in trainer.loggers:  # the metric history on disk must include the last values
            logger.save()
        checkpoint = trainer.checkpoint_callback
        best = None
        if checkpoint is not None and getattr(checkpoint, "best_model_path", ""):
            score = checkpoint.best_model_score
            best = (checkpoint.best_model_path, None if score is None else float(score), checkpoint.monitor)
        try:
            self.path = write_report(
                self.run_dir, status=status, best_checkpoint=best, overrides=job_overrides()
            )
        except Exception as error:  # see the module docstring: never fail a run over its report
            log.warning("could not write the run report in %s: %s", self.run_dir, error, exc_info=True)
            return
        log.info("run report: %s", self.path)
