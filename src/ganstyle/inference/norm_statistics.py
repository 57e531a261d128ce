"""Whole-image statistics for the normalisation layers of a generator that runs tile by tile.

Instance norm (and group/layer norm) normalise each image by its own per-channel mean and variance.
A tile has other statistics than the whole image (a tile of sky is darker and flatter than the
photo), so tiles normalised by their own come out in different tones, which no blending hides.
:class:`NormStatistics` replaces those statistics with whole-image ones, in one of two ways:

- **from a downscaled copy** (default): :meth:`NormStatistics.recording` during one pass over the
  image shrunk to ``stats_size``; every tile then uses them (:meth:`NormStatistics.frozen`). One extra
  pass, no seams; the tone can differ from a whole-image pass because shrinking removes fine detail,
  which lowers the variance of the features that respond to it (more so the more the image shrinks).
- **exact** (:meth:`NormStatistics.measuring`): layer by layer in execution order, all tiles run up
  to the next layer with the statistics found so far, and that layer's input is summed over each
  tile's core (each image pixel once). Each layer then has the statistics of a whole-image pass, in
  the memory of one tile, at the cost of one partial pass per layer (about 10 full passes for the
  ResNet-9 generator, whose late layers dominate the count).

Batch norm in eval mode uses fixed running statistics and needs neither.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn

_INSTANCE_NORMS = (nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)
Core = tuple[int, int, int, int]  # top, bottom, left, right in tile pixels


class StopForward(Exception):
    """Raised inside a measuring pass once the measured layer has run: later layers are not needed."""


def uses_image_statistics(module: nn.Module) -> bool:
    """Whether ``module`` normalises with statistics of the input it is given."""
    if isinstance(module, _INSTANCE_NORMS):
        return module.training or not module.track_running_stats
    return isinstance(module, nn.GroupNorm)


class NormStatistics:
    """Per-call mean and variance of each per-image normalisation layer of ``generator``.

    Layers are patched only inside the context managers below; a layer called several times in one
    forward pass gets one entry per call.
    """

    def __init__(self, generator: nn.Module) -> None:
        self.generator = generator
        self.layers = [module for module in generator.modules() if uses_image_statistics(module)]
        # values[layer][call] = (mean, variance), each (1, groups); groups are channels for instance norm.
        self.values: list[list[tuple[Tensor, Tensor]]] = [[] for _ in self.layers]
        self.order: list[tuple[int, int]] = []  # (layer, call) in the order a forward pass runs them
        # Set before each forward of a measuring pass: the tile size, and per tile of the batch its core.
        self.tile_size: tuple[int, int] = (0, 0)
        self.cores: list[Core] = []
        self._calls = [0] * len(self.layers)
        self._position = 0
        self._sums: list = []

    def __bool__(self) -> bool:
        return bool(self.layers)

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        """Forward passes inside this block (one image) store each layer's statistics."""
        self.values = [[] for _ in self.layers]
        self.order = []
        with self._patched(self._recording_forward):
            yield

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """Forward passes inside this block normalise with the stored statistics."""
        self._require_values("frozen")
        with self._patched(self._frozen_forward):
            yield

    @contextlib.contextmanager
    def measuring(self, step: int) -> Iterator[None]:
        """Measure the ``step``-th normalisation (in execution order) over all tiles run inside this
        block; earlier ones use the stored statistics. Forward passes end with :class:`StopForward`
        right after it. On exit its statistics are replaced by the measured ones."""
        self._require_values("measuring")
        self._sums = [0, 0.0, 0.0]  # pixel count, sum, sum of squares (float64)
        with self._patched(lambda index, layer, x: self._measuring_forward(step, index, layer, x)):
            yield
        count, total, squares = self._sums
        index, call = self.order[step]
        mean_before = self.values[index][call][0]
        mean = total / count
        variance = (squares / count - mean * mean).clamp_min(0.0)
        self.values[index][call] = (
            mean.view_as(mean_before).to(mean_before.dtype),
            variance.view_as(mean_before).to(mean_before.dtype),
        )

    def _require_values(self, mode: str) -> None:
        if self.layers and not self.order:
            raise RuntimeError(
                f"NormStatistics.{mode}() needs statistics: run a forward pass in recording() first."
            )

    @contextlib.contextmanager
    def _patched(self, forward: Callable[[int, nn.Module, Tensor], Tensor]) -> Iterator[None]:
        def new_forward_pass(*_) -> None:
            self._calls = [0] * len(self.layers)
            self._position = 0

        handle = self.generator.register_forward_pre_hook(new_forward_pass)
        for index, layer in enumerate(self.layers):
            # An instance attribute shadows the class's forward; deleting it restores the original.
            layer.forward = lambda x, index=index, layer=layer: forward(index, layer, x)
        try:
            yield
        finally:
            handle.remove()
            for layer in self.layers:
                del layer.forward

    def _next_call(self, index: int) -> int:
        call = self._calls[index]
        self._calls[index] += 1
        self._position += 1
        return call

    @staticmethod
    def _grouped(layer: nn.Module, x: Tensor) -> Tensor:
        """``(N, groups, -1)``: the values each statistic is taken over."""
        groups = layer.num_groups if isinstance(layer, nn.GroupNorm) else x.shape[1]
        return x.reshape(x.shape[0], groups, -1)

    def _recording_forward(self, index: int, layer: nn.Module, x: Tensor) -> Tensor:
        self.order.append((index, self._next_call(index)))
        grouped = self._grouped(layer, x)
        self.values[index].append((grouped.mean(-1), grouped.var(-1, unbiased=False)))
        return type(layer).forward(layer, x)

    def _frozen_forward(self, index: int, layer: nn.Module, x: Tensor) -> Tensor:
        call = self._next_call(index)
        recorded = self.values[index]
        if call >= len(recorded):
            raise RuntimeError(
                f"{type(layer).__name__} layer {index} ran {call + 1} times in one forward pass but "
                f"statistics were recorded for {len(recorded)}: the generator's structure depends on its "
                "input, so tiles cannot share whole-image statistics. Run it without tiles (tile=None)."
            )
        mean, var = recorded[call]
        grouped = self._grouped(layer, x)
        normalised = ((grouped - mean[..., None]) * torch.rsqrt(var[..., None] + layer.eps)).reshape(x.shape)
        if getattr(layer, "weight", None) is not None:
            shape = (1, -1) + (1,) * (x.dim() - 2)
            normalised = normalised * layer.weight.view(shape) + layer.bias.view(shape)
        return normalised

    def _measuring_forward(self, step: int, index: int, layer: nn.Module, x: Tensor) -> Tensor:
        if self._position < step:
            return self._frozen_forward(index, layer, x)
        if x.dim() != 4:
            raise RuntimeError(
                f"Exact statistics need (N, C, H, W) feature maps; {type(layer).__name__} got {x.dim()}-D."
            )
        feature_h, feature_w = x.shape[-2:]
        tile_h, tile_w = self.tile_size
        for sample, (top, bottom, left, right) in zip(x, self.cores):
            # The core at this layer's resolution (a quarter of the image's at the ResNet bottleneck);
            # cores start at multiples of size_multiple, so the rows and columns map exactly.
            core = sample[
                :,
                round(top * feature_h / tile_h) : round(bottom * feature_h / tile_h),
                round(left * feature_w / tile_w) : round(right * feature_w / tile_w),
            ].double()
            grouped = self._grouped(layer, core[None])[0]
            self._sums[0] += grouped.shape[-1]
            self._sums[1] = self._sums[1] + grouped.sum(-1)
            self._sums[2] = self._sums[2] + (grouped * grouped).sum(-1)
        raise StopForward
