"""Style images and content photos for the neural-style models, rendered from packaged photos (no download).

Three style images, each a deterministic rendering of a whole photograph that ships with scikit-image
(sources and licences as listed in :mod:`ganstyle.data.embedded`), 256 px on the shorter side:

- ``cartoon``: :func:`ganstyle.data.embedded.render_style` (Kuwahara smoothing, cel shading, warm tint,
  dark edges) of ``skimage.data.coffee``, the rendering that defines CycleGAN's embedded domain B.
- ``mosaic``: :func:`render_stained_glass` of ``skimage.data.chelsea``: Voronoi cells filled with the
  photo's mean colour, brighter at their centres, separated by dark lead lines.
- ``pointillist``: :func:`render_pointillist` of ``skimage.data.rocket``: thousands of round dabs of
  saturated, jittered colour on a cream canvas, in the manner of Seurat.

Content: for the feed-forward models (fast style, AdaIN), the photo crops of the embedded dataset,
``trainA`` as ``content/train`` and ``testA`` as ``content/test`` (copied, so
:class:`~ganstyle.data.content_style.ContentStyleDataModule` reads its usual layout); for Gatys, a
head-and-shoulders crop of ``skimage.data.astronaut`` (``photos/astronaut.png``).

Cache: ``<cache_dir>/styles-v1/`` holds the styles and photos, ``<cache_dir>/content-v1-<params>/``
the content split; each has a ``manifest.json`` written last, is built in a temporary sibling folder
renamed into place when complete, and is reused afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage
from scipy.spatial import cKDTree

from ganstyle.data.base import BuiltOnFirstUse
from ganstyle.data.content_style import ContentStyleDataModule
from ganstyle.data.embedded import build_folder_atomically, materialize_embedded_dataset, render_style
from ganstyle.data.images import DatasetError, list_images
from ganstyle.data.single_image import SingleImageStyleDataModule

VERSION = 1  # bump when a rendering or a source crop changes: old caches are rebuilt
MANIFEST = "manifest.json"
STYLE_SIDE = 256  # shorter side of the rendered style images (px)
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _skimage_photo(name: str) -> np.ndarray:
    import skimage.data

    return getattr(skimage.data, name)()


def _scaled(photo: np.ndarray, shorter_side: int) -> np.ndarray:
    image = Image.fromarray(photo)
    scale = shorter_side / min(image.size)
    size = (round(image.width * scale), round(image.height * scale))
    return np.asarray(image.resize(size, Image.Resampling.LANCZOS))


def render_stained_glass(photo: np.ndarray, cells: int = 240, seed: int = 0) -> np.ndarray:
    """A stained-glass mosaic of a uint8 (H, W, 3) photo; same shape out.

    1. ``cells`` seeds on a jittered grid (uniform jitter of +-40% of the grid step, from ``seed``);
       every pixel belongs to its nearest seed (a Voronoi partition).
    2. Each cell takes the photo's mean colour over the cell, saturation raised 1.5x around its grey.
    3. Glass shading: brightness 1.15 at the seed falling to 0.85 at the cell's farthest pixel.
    4. Lead lines: pixels whose right or lower neighbour lies in another cell, dilated to 2 px,
       painted dark grey (35, 35, 40).
    """
    height, width = photo.shape[:2]
    rng = np.random.default_rng(seed)
    step = np.sqrt(height * width / cells)
    ys, xs = np.meshgrid(np.arange(step / 2, height, step), np.arange(step / 2, width, step), indexing="ij")
    seeds = np.stack([ys.ravel(), xs.ravel()], axis=1)
    seeds += rng.uniform(-0.4 * step, 0.4 * step, size=seeds.shape)
    pixels = np.stack(np.meshgrid(np.arange(height), np.arange(width), indexing="ij"), axis=-1).reshape(-1, 2)
    distance, label = cKDTree(seeds).query(pixels)
    rgb = photo.reshape(-1, 3).astype(np.float64) / 255.0
    count = np.bincount(label, minlength=len(seeds)).clip(min=1)[:, None]
    mean = np.stack([np.bincount(label, rgb[:, c], len(seeds)) for c in range(3)], axis=1) / count
    grey = mean.mean(axis=1, keepdims=True)
    colour = np.clip(grey + 1.5 * (mean - grey), 0.0, 1.0)[label]
    farthest = ndimage.maximum(distance, label, index=np.arange(len(seeds)))
    shade = 1.15 - 0.3 * distance / np.maximum(np.asarray(farthest)[label], 1e-6)
    out = (colour * shade[:, None]).reshape(height, width, 3)
    label = label.reshape(height, width)
    edges = np.zeros((height, width), dtype=bool)
    edges[:, :-1] |= label[:, :-1] != label[:, 1:]
    edges[:-1, :] |= label[:-1, :] != label[1:, :]
    edges = ndimage.binary_dilation(edges, iterations=1)
    out[edges] = np.array([35, 35, 40]) / 255.0
    return np.rint(np.clip(out, 0.0, 1.0) * 255.0).astype(np.uint8)


def render_pointillist(photo: np.ndarray, radius: int = 3, density: float = 1.2, seed: int = 0) -> np.ndarray:
    """A pointillist painting of a uint8 (H, W, 3) photo; same shape out.

    On a cream canvas (242, 235, 220), ``density * H * W / radius^2`` round dabs of the given radius
    are painted in random order at uniform random positions (from ``seed``). A dab's colour is the
    Gaussian-blurred (sigma 2 px) photo at its centre, saturation raised 1.6x, shadows lifted (gamma
    0.75), plus independent N(0, 0.08) noise per channel (on [0, 1]), so neighbouring dabs differ as in
    divisionist painting; at this density some canvas shows between the dabs.
    """
    height, width = photo.shape[:2]
    rng = np.random.default_rng(seed)
    smooth = ndimage.gaussian_filter(photo.astype(np.float64) / 255.0, sigma=(2, 2, 0))
    grey = smooth.mean(axis=2, keepdims=True)
    vivid = np.clip(grey + 1.6 * (smooth - grey), 0.0, 1.0) ** 0.75
    count = int(density * height * width / radius**2)
    ys = rng.integers(0, height, count)
    xs = rng.integers(0, width, count)
    colours = np.clip(vivid[ys, xs] + rng.normal(0.0, 0.08, (count, 3)), 0.0, 1.0)
    colours = np.rint(colours * 255.0).astype(np.uint8)
    canvas = Image.new("RGB", (width, height), (242, 235, 220))
    draw = ImageDraw.Draw(canvas)
    for y, x, colour in zip(ys.tolist(), xs.tolist(), colours.tolist()):
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=tuple(colour))
    return np.asarray(canvas)


def _cartoon() -> np.ndarray:
    return render_style(_scaled(_skimage_photo("coffee"), STYLE_SIDE))


def _mosaic() -> np.ndarray:
    return render_stained_glass(_scaled(_skimage_photo("chelsea"), STYLE_SIDE))


def _pointillist() -> np.ndarray:
    return render_pointillist(_scaled(_skimage_photo("rocket"), STYLE_SIDE))


def _astronaut() -> np.ndarray:
    # Head and shoulders of Eileen Collins (the 320 px square from x=64, y=0), at 256 px.
    photo = Image.fromarray(_skimage_photo("astronaut")).crop((64, 0, 384, 320))
    return np.asarray(photo.resize((256, 256), Image.Resampling.LANCZOS))


STYLES: dict[str, tuple[Callable[[], np.ndarray], str]] = {
    "cartoon": (_cartoon, "render_style(skimage.data.coffee at 256 px)"),
    "mosaic": (_mosaic, "render_stained_glass(skimage.data.chelsea at 256 px, cells=240, seed=0)"),
    "pointillist": (_pointillist, "render_pointillist(skimage.data.rocket at 256 px, radius=3, seed=0)"),
}
PHOTOS: dict[str, tuple[Callable[[], np.ndarray], str]] = {
    "astronaut": (_astronaut, "skimage.data.astronaut, crop (64, 0, 384, 320) resized to 256 px"),
}


def default_cache_dir() -> Path:
    """``$GANSTYLE_CACHE/embedded_styles`` (``~/.cache/ganstyle/embedded_styles`` without the variable)."""
    base = Path(os.environ.get("GANSTYLE_CACHE") or Path.home() / ".cache" / "ganstyle").expanduser()
    return base / "embedded_styles"


def check_style_names(names: Sequence[str]) -> list[str]:
    """The names, checked against :data:`STYLES` (a clear error names the known ones)."""
    names = [names] if isinstance(names, str) else list(names)
    unknown = [name for name in names if name not in STYLES]
    if not names or unknown:
        raise DatasetError(
            f"Unknown embedded style(s) {unknown or names!r}: the embedded styles are "
            f"{', '.join(STYLES)}. Choose some with `data.embedded_styles=[mosaic,cartoon]`, or use your "
            "own images with `data.style=/path/to/style.jpg`."
        )
    return names


def _atomic_build(root: Path, params: dict[str, Any], build: Callable[[Path], dict[str, Any]]) -> Path:
    """Reuse ``root`` when its manifest has ``params``; else build into a temporary sibling and rename."""

    def write(building: Path) -> None:
        contents = build(building)
        (building / MANIFEST).write_text(json.dumps({"params": params, **contents}, sort_keys=True) + "\n")

    def is_complete(folder: Path) -> bool:
        try:
            return json.loads((folder / MANIFEST).read_text()).get("params") == params
        except (OSError, ValueError):
            return False

    if is_complete(root):
        return root
    if root.exists() and not (root / MANIFEST).is_file() and any(root.iterdir()):
        raise DatasetError(
            f"The folder {root} exists and holds other files (no {MANIFEST}), so it is not overwritten. "
            "Point `data.cache_dir` at a new or empty folder."
        )
    return build_folder_atomically(root, write, is_complete)


def materialize_embedded_styles(cache_dir: str | os.PathLike | None = None) -> Path:
    """Render the style images and photos once; returns the folder holding ``styles/`` and ``photos/``."""
    root = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()

    def build(out: Path) -> dict[str, Any]:
        provenance = {}
        for folder, table in (("styles", STYLES), ("photos", PHOTOS)):
            (out / folder).mkdir()
            for name, (render, source) in table.items():
                Image.fromarray(render()).save(out / folder / f"{name}.png")
                provenance[f"{folder}/{name}.png"] = source
        return {"files": provenance}

    return _atomic_build(root / f"styles-v{VERSION}", {"version": VERSION, "style_side": STYLE_SIDE}, build)


def materialize_embedded_content(
    cache_dir: str | os.PathLike | None = None,
    content_dataset_dir: str | os.PathLike | None = None,
    image_size: int = 96,
    n_train: int = 320,
    n_test: int = 16,
    dataset_seed: int = 0,
) -> Path:
    """The embedded dataset's ``trainA``/``testA`` photo crops as a content folder with ``train/`` and ``test/``.

    The embedded dataset itself is built (or reused) in ``content_dataset_dir`` by
    :func:`ganstyle.data.embedded.materialize_embedded_dataset` with the same parameters.
    """
    root = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    source = materialize_embedded_dataset(content_dataset_dir, image_size, n_train, n_test, dataset_seed)
    params = {"version": VERSION, "image_size": image_size, "n_train": n_train, "n_test": n_test}
    params["dataset_seed"] = dataset_seed

    def build(out: Path) -> dict[str, Any]:
        for split, folder in (("train", "trainA"), ("test", "testA")):
            (out / split).mkdir()
            for path in list_images(source / folder):
                shutil.copyfile(path, out / split / path.name)
        return {"source": str(source), "description": "content/train = embedded trainA, content/test = testA"}

    name = f"content-v{VERSION}-{image_size}px-{n_train}x{n_test}-seed{dataset_seed}"
    return _atomic_build(root / name, params, build)


class EmbeddedContentStyleDataModule(BuiltOnFirstUse, ContentStyleDataModule):
    """:class:`ContentStyleDataModule` over the embedded content crops and rendered style images.

    Built on first use (``prepare_data``/``setup``). ``embedded_styles`` names the styles (see
    :data:`STYLES`); ``style`` (your own image files or folders) replaces them when given.
    ``image_size``/``n_train``/``n_test``/``dataset_seed`` select the embedded dataset, as for CycleGAN.
    Every other argument is :class:`ContentStyleDataModule`'s.
    """

    def __init__(
        self,
        cache_dir: str | None = None,  # None: $GANSTYLE_CACHE/embedded_styles
        content_dataset_dir: str | None = None,  # the embedded dataset; None: its default folder
        embedded_styles: Sequence[str] = ("mosaic",),
        style: str | list[str] | None = None,  # your own style image(s) instead of the embedded ones
        image_size: int = 96,
        n_train: int = 320,
        n_test: int = 16,
        dataset_seed: int = 0,
        **content_style_args: Any,
    ) -> None:
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        self.content_dataset_dir = content_dataset_dir
        self.embedded_styles = check_style_names(embedded_styles)
        self.embedded_dataset_args = (image_size, n_train, n_test, dataset_seed)
        self.own_style = style
        content = self.cache_dir / f"content-v{VERSION}-{image_size}px-{n_train}x{n_test}-seed{dataset_seed}"
        styles_dir = self.cache_dir / f"styles-v{VERSION}" / "styles"
        styles = style if style else [str(styles_dir / f"{name}.png") for name in self.embedded_styles]
        super().__init__(content_root=str(content), style=styles, **content_style_args)

    def _materialize(self) -> None:
        materialize_embedded_content(self.cache_dir, self.content_dataset_dir, *self.embedded_dataset_args)
        if not self.own_style:
            materialize_embedded_styles(self.cache_dir)


class EmbeddedSingleImageStyleDataModule(SingleImageStyleDataModule):
    """:class:`SingleImageStyleDataModule` whose defaults are embedded images (built on first use).

    ``content=None`` uses the embedded photo ``embedded_content`` (see :data:`PHOTOS`); ``style=None`` the
    rendered styles named by ``embedded_styles`` (see :data:`STYLES`). Your own files replace them.
    """

    def __init__(
        self,
        content: str | None = None,
        style: str | Sequence[str] | None = None,
        embedded_content: str = "astronaut",
        embedded_styles: Sequence[str] = ("mosaic",),
        cache_dir: str | None = None,  # None: $GANSTYLE_CACHE/embedded_styles
        **single_image_args: Any,
    ) -> None:
        if embedded_content not in PHOTOS:
            raise DatasetError(
                f"Unknown embedded photo {embedded_content!r}; the embedded photos are {', '.join(PHOTOS)}. "
                "Use your own with `data.content=/path/to/photo.jpg`."
            )
        embedded_styles = check_style_names(embedded_styles)
        if content is None or style is None:
            root = materialize_embedded_styles(cache_dir)
            content = content or str(root / "photos" / f"{embedded_content}.png")
            style = style or [str(root / "styles" / f"{name}.png") for name in embedded_styles]
        super().__init__(content=content, style=style, **single_image_args)
