"""Callbacks: image grids, test-set translations and the end-of-run summary."""

from ganstyle.callbacks.image_grids import ImageGrids
from ganstyle.callbacks.summary import RunSummary
from ganstyle.callbacks.translate import TranslateTestSet

__all__ = ["ImageGrids", "RunSummary", "TranslateTestSet"]
