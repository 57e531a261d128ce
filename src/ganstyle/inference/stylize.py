"""`Stylizer`: a trained generator as a function from images to images, at any size.

    stylizer = ganstyle.load("outputs/train/runs/<run>/checkpoints/last.ckpt", direction="AtoB")
    stylizer(Image.open("photo.jpg")).save("photo_stylized.png")   # PIL in, PIL out
    stylizer(batch)                                                # (N, 3, H, W) in [0, 1] -> same

Small images run whole, several of one size per batch; large ones (over ``auto_tile_pixels`` with
``tile="auto"``, or larger than an explicit ``tile``) run in overlapping tiles with whole-image
normalisation statistics (see :mod:`ganstyle.inference.tiling`). The ``ganstyle stylize`` command is
a loop over files around this class, so both behave the same.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from ganstyle.inference.norm_statistics import NormStatistics
from ganstyle.inference.tiling import (
    from_signed,
    padding_for,
    reflect_pad,
    round_up,
    tiled_forward,
    to_signed,
)

DEFAULT_TILE = 512  # px; a ResNet-9 tile at ngf 64 holds 64 MB per full-resolution activation
# Default overlap: a quarter of the tile, 128 px for 512. A pixel is taken from tiles where it lies at
# least overlap / 3 (about 43 px) from the edge, which covers most of a ResNet generator's effective
# receptive field; it costs (512 / 384)^2 = 1.8x the compute of a single pass.
DEFAULT_OVERLAP_FRACTION = 4
# tile="auto" tiles images above this many pixels (about 2.4 MP, e.g. 1536 x 1536); smaller ones run
# whole, which is exact and, on a GPU, faster.
AUTO_TILE_PIXELS = 1536 * 1536


class InferenceInputError(ValueError):
    """An image or option given to a Stylizer cannot be used; the message says why and what to pass."""


def pil_to_tensor(image: Image.Image) -> Tensor:
    """An RGB PIL image as a ``(3, H, W)`` uint8 tensor (no float copy: large images stay small)."""
    return torch.from_numpy(np.array(image.convert("RGB"), dtype=np.uint8)).permute(2, 0, 1).contiguous()


def tensor_to_pil(pixels: Tensor) -> Image.Image:
    """A ``(C, H, W)`` uint8 tensor as a PIL image (RGB for 3 channels, L for 1)."""
    array = pixels.permute(1, 2, 0).numpy()
    return Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)


def resized_size(width: int, height: int, shorter_side: int) -> tuple[int, int]:
    """(width, height) with the shorter side ``shorter_side`` and the aspect ratio kept."""
    scale = shorter_side / min(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


class Stylizer:
    """Apply a generator to PIL images or ``[0, 1]`` tensors of any size.

    Args:
        generator: ``(N, 3, H, W)`` in [-1, 1] -> same; usually from ``model.inference_generator()``.
        size_multiple: H and W the generator needs are multiples of this (its attribute of that name).
        min_side: smallest side the generator accepts (default ``2 * size_multiple``: the ResNet
            generator's reflection padding needs a bottleneck of at least 2 x 2).
        device: where the generator runs; images stay on the CPU between tiles.
        size: resize each input so its shorter side is ``size`` first (None: keep the input size).
        tile: ``"auto"`` (tile above ``auto_tile_pixels``), an int (tile images larger than it, with
            tiles of that size, rounded up to ``size_multiple``) or None (never tile).
        overlap: minimum overlap of neighbouring tiles in pixels (default a quarter of the tile).
        stats_size: longer side of the downscaled copy that normalisation statistics come from when
            tiling (default: twice the tile size, so that pass costs what four tiles cost); images no
            larger get exact statistics this way.
        exact_statistics: measure the statistics over all tiles at full resolution instead, layer by
            layer (:mod:`ganstyle.inference.norm_statistics`): the tiled result then matches a
            whole-image pass, for about ten times the compute of a ResNet generator's plain pass.
        batch_size: images of one size (or tiles of one image) per forward pass.
        description: a line saying what this stylizer is (model, checkpoint, direction), for messages.
    """

    def __init__(
        self,
        generator: nn.Module,
        *,
        size_multiple: int = 1,
        min_side: int | None = None,
        device: str | torch.device = "cpu",
        size: int | None = None,
        tile: int | str | None = "auto",
        overlap: int | None = None,
        stats_size: int | None = None,
        batch_size: int = 4,
        exact_statistics: bool = False,
        auto_tile_pixels: int = AUTO_TILE_PIXELS,
        description: str = "",
    ) -> None:
        if tile != "auto" and tile is not None and (not isinstance(tile, int) or tile <= 0):
            raise InferenceInputError(f"tile={tile!r}: use 'auto', a positive number of pixels, or None.")
        for name, value in (("size", size), ("stats_size", stats_size)):
            if value is not None and value <= 0:
                raise InferenceInputError(f"{name}={value} must be a positive number of pixels (or None).")
        if batch_size <= 0 or size_multiple <= 0:
            raise InferenceInputError(
                f"batch_size={batch_size} and size_multiple={size_multiple} must be >= 1."
            )
        self.generator = generator
        self.size_multiple = size_multiple
        self.min_side = min_side or 2 * size_multiple
        self.device = torch.device(device)
        self.size = size
        self.tile_setting = tile
        tile_px = DEFAULT_TILE if tile in ("auto", None) else tile
        self.tile = max(round_up(tile_px, size_multiple), round_up(self.min_side, size_multiple))
        overlap = self.tile // DEFAULT_OVERLAP_FRACTION if overlap is None else overlap
        if not 0 <= overlap < self.tile:
            raise InferenceInputError(
                f"overlap={overlap} must be at least 0 and smaller than the tile ({self.tile})."
            )
        self.overlap = overlap
        self.stats_size = stats_size or 2 * self.tile
        self.batch_size = batch_size
        self.exact_statistics = exact_statistics
        self.auto_tile_pixels = auto_tile_pixels
        self.description = description
        self.statistics = NormStatistics(generator)
        # A generator that normalises by image statistics outside norm layers (a functional AdaIN)
        # says so with `tileable = False`: its tiles cannot share statistics, so it always runs whole.
        self.tileable = bool(getattr(generator, "tileable", True))

    def __repr__(self) -> str:
        return f"Stylizer({self.description or type(self.generator).__name__}, device={self.device})"

    def uses_tiles(self, height: int, width: int) -> bool:
        """Whether an image of this size (after ``size`` resizing) runs in tiles."""
        if self.tile_setting is None or not self.tileable:
            return False
        if self.tile_setting == "auto":
            return height * width > self.auto_tile_pixels
        return height > self.tile or width > self.tile

    @torch.inference_mode()
    def __call__(self, image: Image.Image | Tensor) -> Image.Image | Tensor:
        """PIL image -> PIL image (RGB); tensor ``(3, H, W)`` or ``(N, 3, H, W)`` in [0, 1] -> same shape."""
        if isinstance(image, Image.Image):
            return self.stylize_images([image])[0]
        if isinstance(image, Tensor):
            return self.stylize_tensor(image)
        raise InferenceInputError(
            f"Stylizer takes a PIL image or a torch tensor in [0, 1], got {type(image).__name__}. Open files "
            "with PIL (ganstyle.data.images.load_rgb reads any mode as RGB) or convert arrays with "
            "torch.from_numpy(array).permute(2, 0, 1) / 255."
        )

    # --- PIL images ----------------------------------------------------------------------------
    @torch.inference_mode()
    def stylize_images(self, images: Sequence[Image.Image]) -> list[Image.Image]:
        """Stylise PIL images (any mode is converted to RGB); same-size small ones share batches."""
        images = [self._resized_pil(image) for image in images]
        results: list[Image.Image | None] = [None] * len(images)
        by_size: dict[tuple[int, int], list[int]] = {}
        for index, image in enumerate(images):
            if self.uses_tiles(image.height, image.width):
                results[index] = tensor_to_pil(self._tiled(pil_to_tensor(image), image, torch.uint8))
            else:
                by_size.setdefault(image.size, []).append(index)
        for indices in by_size.values():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                pixels = torch.stack([pil_to_tensor(images[index]) for index in chunk])
                for index, result in zip(chunk, self._whole(pixels, torch.uint8)):
                    results[index] = tensor_to_pil(result)
        return results

    def _resized_pil(self, image: Image.Image) -> Image.Image:
        image = image if image.mode == "RGB" else _to_rgb(image)
        if self.size is None:
            return image
        target = resized_size(image.width, image.height, self.size)
        return image if target == image.size else image.resize(target, Image.Resampling.LANCZOS)

    # --- tensors -------------------------------------------------------------------------------
    @torch.inference_mode()
    def stylize_tensor(self, images: Tensor) -> Tensor:
        """``(3, H, W)`` or ``(N, 3, H, W)`` floats in [0, 1] -> the same shape, on the input's device."""
        batched = self._check_tensor(images)
        source_device = batched.device
        batched = batched.detach().float().cpu()
        if self.size is not None:
            height, width = batched.shape[-2:]
            new_w, new_h = resized_size(width, height, self.size)
            if (new_h, new_w) != (height, width):
                batched = F.interpolate(
                    batched, size=(new_h, new_w), mode="bicubic", antialias=True, align_corners=False
                ).clamp(0.0, 1.0)
        height, width = batched.shape[-2:]
        if self.uses_tiles(height, width):
            outputs = torch.stack([self._tiled(image, None, torch.float32) for image in batched])
        else:
            outputs = torch.cat(
                [self._whole(chunk, torch.float32) for chunk in batched.split(self.batch_size)]
            )
        outputs = outputs.to(source_device)
        return outputs if images.dim() == 4 else outputs[0]

    @staticmethod
    def _check_tensor(images: Tensor) -> Tensor:
        if images.dim() not in (3, 4) or images.shape[-3] not in (1, 3):
            raise InferenceInputError(
                f"Expected an image tensor of shape (3, H, W) or (N, 3, H, W) (1 channel is repeated), got "
                f"{tuple(images.shape)}. Channels come first: convert an (H, W, 3) array with "
                ".permute(2, 0, 1)."
            )
        if not images.is_floating_point():
            raise InferenceInputError(
                f"Expected a float tensor in [0, 1], got dtype {images.dtype}. Divide 8-bit pixels by 255."
            )
        low, high = float(images.min()), float(images.max())
        if low < -1e-3 or high > 1 + 1e-3:
            raise InferenceInputError(
                f"Expected pixel values in [0, 1], got values from {low:.3g} to {high:.3g}. Divide 0-255 "
                "pixels by 255; map network-range images from [-1, 1] with (x + 1) / 2."
            )
        batched = images if images.dim() == 4 else images[None]
        return batched.expand(-1, 3, -1, -1) if batched.shape[1] == 1 else batched

    # --- the two ways to run -------------------------------------------------------------------
    def _whole(self, pixels: Tensor, out_dtype: torch.dtype) -> Tensor:
        """``(N, C, H, W)`` uint8 or [0, 1] pixels, one forward pass, padded and cropped back."""
        height, width = pixels.shape[-2:]
        padding = padding_for(height, width, self.size_multiple, self.min_side)
        signed = reflect_pad(to_signed(pixels.to(self.device)), padding)
        outputs = self.generator(signed)[
            ..., padding[0] : padding[0] + height, padding[2] : padding[2] + width
        ]
        return from_signed(outputs.float(), out_dtype).cpu()

    def _tiled(self, pixels: Tensor, pil_image: Image.Image | None, out_dtype: torch.dtype) -> Tensor:
        """One ``(C, H, W)`` image in tiles, normalisation statistics from a downscaled copy."""
        if self.statistics:
            thumbnail = self._thumbnail(pixels, pil_image)
            padding = padding_for(*thumbnail.shape[-2:], self.size_multiple, self.min_side)
            with self.statistics.recording():
                self.generator(reflect_pad(to_signed(thumbnail.to(self.device)), padding))
        return tiled_forward(
            self.generator,
            pixels,
            tile=self.tile,
            overlap=self.overlap,
            size_multiple=self.size_multiple,
            min_side=self.min_side,
            device=self.device,
            batch_size=self.batch_size,
            statistics=self.statistics or None,
            exact_statistics=self.exact_statistics,
            out_dtype=out_dtype,
        )

    def _thumbnail(self, pixels: Tensor, pil_image: Image.Image | None) -> Tensor:
        """The image with its longer side at most ``stats_size``, as ``(1, C, h, w)``."""
        height, width = pixels.shape[-2:]
        scale = min(1.0, self.stats_size / max(height, width))
        if scale == 1.0:
            return pixels[None]
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        if pil_image is not None:  # PIL downsamples 8-bit images without a float copy of the original
            return pil_to_tensor(pil_image.resize(size, Image.Resampling.BOX))[None]
        return F.interpolate(pixels[None], size=size[::-1], mode="area").clamp(0.0, 1.0)


def _to_rgb(image: Image.Image) -> Image.Image:
    """Grey, 16-bit, alpha (composited onto white), CMYK and palette images as 8-bit RGB."""
    # Imported here: the ganstyle.data package loads Lightning, which a bare Stylizer does not need.
    from ganstyle.data.images import to_rgb

    return to_rgb(image)
