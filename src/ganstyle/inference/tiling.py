"""Any image size, in bounded memory, without seams: padding, overlapping tiles and frozen norm statistics.

Three problems and how they are solved here:

1. **Sizes.** Generators downsample by a stride (4 for the ResNet generator, 2**num_downs for the U-Net),
   so H and W must be multiples of it. Images are mirror-padded (:func:`reflect_pad`) to the next
   multiple and the output is cropped back: nothing is resized, so nothing is distorted.
2. **Memory and seams.** A large image is cut into overlapping tiles whose outputs are blended with a
   separable window. Each overlap is split in thirds: in the outer third a tile's weight is 0 (its
   pixels there see mirrored context instead of the real neighbourhood, so they only serve as
   context), in the middle third one tile's weight falls along a raised cosine while its neighbour's
   rises, and weights are normalised by their sum. A pixel thus comes from tiles in which it lies at
   least ``overlap / 3`` from the edge: once that exceeds the generator's receptive-field radius, the
   tiled result equals the whole-image one; below it, the cross-fade hides what differs. Only one band
   of tile rows is held in floating point at a time (:func:`tiled_forward`), so memory is set by the
   tile size, not the image size.
   Tiles start at multiples of ``size_multiple``: a strided network is only shift-equivariant for
   shifts by its stride, so aligned tiles compute the same function as the whole-image pass.
3. **Instance norm.** Per-image normalisation would give each tile its own tone; the tiles share
   whole-image statistics instead (:mod:`ganstyle.inference.norm_statistics`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganstyle.inference.norm_statistics import NormStatistics, StopForward

Padding = tuple[int, int, int, int]  # top, bottom, left, right


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def reflect_indices(length: int, before: int, after: int, device: torch.device | None = None) -> Tensor:
    """Source indices of a mirror padding (edge pixel not repeated, as ``F.pad(mode="reflect")``).

    Padding longer than the side keeps reflecting back and forth, so a 5-pixel side can be padded
    to 256; a side of one pixel is repeated.
    """
    positions = torch.arange(-before, length + after, device=device)
    if length == 1:
        return torch.zeros_like(positions)
    period = 2 * (length - 1)
    positions = positions.remainder(period)
    return torch.where(positions < length, positions, period - positions)


def reflect_pad(images: Tensor, padding: Padding) -> Tensor:
    """Mirror-pad the last two dimensions by ``(top, bottom, left, right)``; any dtype, any amount."""
    top, bottom, left, right = padding
    if not any(padding):
        return images
    height, width = images.shape[-2:]
    rows = reflect_indices(height, top, bottom, images.device)
    cols = reflect_indices(width, left, right, images.device)
    return images.index_select(-2, rows).index_select(-1, cols)


def pad_to_multiple(images: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflection-pad H and W up to multiples of ``multiple``; returns the padded images and (H, W)."""
    height, width = images.shape[-2:]
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    if pad_h or pad_w:
        mode = "reflect" if pad_h < height and pad_w < width else "replicate"
        images = F.pad(images, (0, pad_w, 0, pad_h), mode=mode)
    return images, (height, width)


def padding_for(height: int, width: int, size_multiple: int, min_side: int) -> Padding:
    """Padding that makes both sides multiples of ``size_multiple`` and at least ``min_side``.

    Added at the bottom and right only, as the exported graphs do (:mod:`ganstyle.inference.export`):
    the crop back then starts at 0, which lets ``torch.export`` prove the output size for any input.
    """
    target_h = max(round_up(height, size_multiple), round_up(min_side, size_multiple))
    target_w = max(round_up(width, size_multiple), round_up(min_side, size_multiple))
    return 0, target_h - height, 0, target_w - width


def tile_starts(length: int, tile: int, overlap: int, align: int) -> list[int]:
    """Start offsets of tiles of ``tile`` pixels covering ``length``, overlapping by at least ``overlap``.

    Starts are multiples of ``align`` (``length`` and ``tile`` must be too); the last tile ends at the
    border, so it may overlap its neighbour more than the others do.
    """
    if length <= tile:
        return [0]
    stride = max(align, (tile - overlap) // align * align)
    starts = list(range(0, length - tile, stride))
    return [*starts, length - tile]


def ramp(length: int) -> Tensor:
    """Weights of a tile across an overlap of ``length`` pixels, from its edge inwards: 0 over the
    outer third (context only), a raised-cosine rise over the middle third, 1 over the inner third.

    ``ramp(n) + ramp(n).flip(0) == 1`` everywhere, so two neighbours' weights always sum to one.
    """
    margin = length // 3
    blend = length - 2 * margin
    weights = torch.zeros(length)
    position = (torch.arange(blend, dtype=torch.float32) + 0.5) / blend
    weights[margin : margin + blend] = torch.sin(position * (math.pi / 2)) ** 2
    weights[margin + blend :] = 1.0
    return weights


def blend_windows(starts: list[int], tile: int) -> list[Tensor]:
    """1-D weights of each tile: ramps where it overlaps a neighbour, 1 elsewhere (image borders too)."""
    windows = []
    for index, start in enumerate(starts):
        window = torch.ones(tile)
        if index > 0:
            before = starts[index - 1] + tile - start
            window[:before] *= ramp(before)
        if index + 1 < len(starts):
            after = start + tile - starts[index + 1]
            window[tile - after :] *= ramp(after).flip(0)
        windows.append(window)
    return windows


def window_sum(starts: list[int], windows: list[Tensor], length: int) -> Tensor:
    """Total weight per position along one axis (the normaliser of the separable 2-D blend)."""
    total = torch.zeros(length)
    for start, window in zip(starts, windows):
        total[start : start + len(window)] += window
    return total


def to_signed(pixels: Tensor) -> Tensor:
    """uint8 [0, 255] or float [0, 1] pixels to float [-1, 1], the networks' range."""
    if pixels.dtype == torch.uint8:
        return pixels.float() / 127.5 - 1.0
    return pixels.float() * 2.0 - 1.0


def from_signed(images: Tensor, dtype: torch.dtype) -> Tensor:
    """Network output in [-1, 1] to uint8 [0, 255] or float [0, 1], clamped.

    One new tensor, then in place: at 4096 px each full-size float temporary is 200 MB.
    """
    unit = (images + 1.0).mul_(0.5).clamp_(0.0, 1.0)
    if dtype == torch.uint8:
        return unit.mul_(255.0).round_().to(torch.uint8)
    return unit.to(dtype)


def core_spans(starts: list[int], tile: int, length: int, align: int) -> list[tuple[int, int]]:
    """The part of the axis each tile accounts for, in tile coordinates: the axis split at the middle
    of every overlap (rounded to ``align``), so each position belongs to exactly one tile."""
    bounds = [0]
    for before, after in zip(starts, starts[1:]):
        middle = (after + before + tile) // 2 // align * align
        bounds.append(min(max(middle, after), before + tile))
    bounds.append(length)
    return [(bounds[i] - start, bounds[i + 1] - start) for i, start in enumerate(starts)]


@torch.inference_mode()
def tiled_forward(
    generator: nn.Module,
    image: Tensor,
    *,
    tile: int,
    overlap: int,
    size_multiple: int,
    min_side: int,
    device: torch.device,
    batch_size: int = 1,
    statistics: NormStatistics | None = None,
    exact_statistics: bool = False,
    out_dtype: torch.dtype = torch.uint8,
) -> Tensor:
    """Apply ``generator`` to one ``(C, H, W)`` CPU image (uint8, or float in [0, 1]) tile by tile.

    ``tile`` must be a multiple of ``size_multiple``. With ``statistics`` (recorded on a downscaled
    copy of the image) the normalisation layers use them instead of each tile's own; with
    ``exact_statistics`` too, they are first measured over all tiles at full resolution, layer by
    layer (:meth:`NormStatistics.measuring`). Returns ``(C_out, H, W)`` on the CPU: uint8, or float in
    [0, 1] for ``out_dtype=torch.float32``. Holds the padded input in its own dtype, the output, and
    one band of tile rows in float32.
    """
    if tile % size_multiple:
        raise ValueError(f"tile={tile} must be a multiple of the generator's size_multiple={size_multiple}.")
    height, width = image.shape[-2:]
    padding = padding_for(height, width, size_multiple, min_side)
    canvas = reflect_pad(image, padding)
    full_h, full_w = canvas.shape[-2:]
    tile_h, tile_w = min(tile, full_h), min(tile, full_w)
    ys = tile_starts(full_h, tile_h, overlap, size_multiple)
    xs = tile_starts(full_w, tile_w, overlap, size_multiple)

    def batches() -> Iterator[tuple[int, list[int], Tensor]]:
        """(row, columns, network input) for every batch of tiles, row by row."""
        for row, y in enumerate(ys):
            for first in range(0, len(xs), batch_size):
                columns = list(range(first, min(first + batch_size, len(xs))))
                tiles = torch.stack([canvas[:, y : y + tile_h, xs[c] : xs[c] + tile_w] for c in columns])
                yield row, columns, to_signed(tiles.to(device))

    if statistics and exact_statistics:
        cores_y = core_spans(ys, tile_h, full_h, size_multiple)
        cores_x = core_spans(xs, tile_w, full_w, size_multiple)
        statistics.tile_size = (tile_h, tile_w)
        for step in range(len(statistics.order)):
            with statistics.measuring(step):
                for row, columns, tiles in batches():
                    statistics.cores = [(*cores_y[row], *cores_x[column]) for column in columns]
                    with contextlib.suppress(StopForward):
                        generator(tiles)

    windows_y, windows_x = blend_windows(ys, tile_h), blend_windows(xs, tile_w)
    norm_y, norm_x = window_sum(ys, windows_y, full_h), window_sum(xs, windows_x, full_w)
    output: Tensor | None = None
    band: Tensor | None = None  # weighted sums of the rows [band_top, band_top + tile_h), float32
    band_top = 0

    def finish_rows(stop: int) -> None:
        """Normalise rows [band_top, stop) of the band and write them to the output (padding dropped)."""
        rows = slice(band_top, min(stop, height))
        if rows.start < rows.stop:
            values = band[:, : rows.stop - band_top, :width]
            weights = norm_y[rows, None] * norm_x[None, :width]
            output[:, rows] = from_signed(values / weights, out_dtype)

    with statistics.frozen() if statistics else contextlib.nullcontext():
        for row, columns, tiles in batches():
            y = ys[row]
            if band is not None and y > band_top:
                finish_rows(y)
                shift = y - band_top
                band = torch.cat([band[:, shift:], torch.zeros_like(band[:, :shift])], dim=1)
                band_top = y
            results = generator(tiles).float().cpu()
            if output is None:
                output = torch.empty(results.shape[1], height, width, dtype=out_dtype)
                band = torch.zeros(results.shape[1], tile_h, full_w)
            for result, column in zip(results, columns):
                weight = windows_y[row][:, None] * windows_x[column][None, :]
                band[:, :, xs[column] : xs[column] + tile_w] += result * weight
        finish_rows(full_h)
    return output
