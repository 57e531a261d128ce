"""The default dataset: photo crops (A) and a known rendering of other crops (B), no download.

Built deterministically, in about two seconds, from real photographs shipped in installed packages
(source; licence as stated by the shipping package):

- ``astronaut``: ``skimage.data.astronaut``, Eileen Collins, NASA Great Images; public domain.
- ``coffee``: ``skimage.data.coffee``, Rachel Michetti for Pikolo Espresso Bar; CC0.
- ``chelsea``: ``skimage.data.chelsea``, Chelsea the cat, Stefan van der Walt; CC0.
- ``rocket``: ``skimage.data.rocket``, DSCOVR launch on Falcon 9, SpaceX; public domain.
- ``hubble_deep_field``: ``skimage.data.hubble_deep_field``, Hubble eXtreme Deep Field, NASA;
  public domain.
- ``immunohistochemistry``: ``skimage.data.immunohistochemistry``, colonic glands, Center for
  Microscopy And Molecular Imaging; no known copyright restrictions.
- ``stereo_motorcycle``: the left image of ``skimage.data.stereo_motorcycle``, Middlebury 2014
  stereo benchmark (Scharstein et al.), as redistributed by scikit-image.
- ``retina``: ``skimage.data.retina``, fundus photograph, Mikael Haggstrom via Wikimedia; CC0.
- ``grace_hopper``: ``matplotlib.cbook.get_sample_data("grace_hopper.jpg")``, US Navy portrait of
  Grace Hopper; public domain (work of the US government).

Domain B has two renderings (``data.rendering``): ``cel`` (:func:`render_style`, the cartoon that
pix2pix learns from pairs) and ``ink_grade`` (:func:`render_ink_grade`, a colour grade with ink
outlines that keeps the photo's information, for the unpaired quick starts).

Domain A is square crops of these photos at random positions and zooms (a window of 20-80% of the
photo's shorter side, resized to ``image_size``; nearly flat crops such as empty sky are redrawn).
Domain B is the rendering applied to a *different* set of crops, drawn from an independent
random stream; a B crop that lands close to an A crop (same photo, similar zoom, offset under a
quarter of the window) is redrawn, so no B image is the rendering of an A image and the domains are
unpaired, as CycleGAN assumes. The held-out ``testA`` crops (kept away from the training crops too)
come with their exact rendering in ``testA2B/`` under the same names, so validation can report
PSNR/SSIM of G_AB(A) against the truth. With nine photos the test crops are new views of the same
scenes, not new scenes. ``manifest.json`` records every crop window.

Cache: ``$GANSTYLE_CACHE/embedded-v1-96px-320x16-seed0`` (``embedded_ink_grade-v1-...`` for the other
rendering; ``~/.cache/ganstyle/...`` without the variable), with a ``manifest.json`` of the parameters; a complete folder is reused, and a build
writes into a temporary sibling folder that is renamed into place only when finished.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from ganstyle.data.base import BuiltOnFirstUse, cache_folder, forwarded
from ganstyle.data.images import DatasetError, list_images
from ganstyle.data.unpaired import UnpairedDataModule

VERSION = 1  # bump when the photos, the crop sampling or a rendering change: old caches rebuild
MANIFEST = "manifest.json"
FOLDERS = ("trainA", "trainB", "testA", "testB", "testA2B")
WORKING_SIDE = 512  # photos are first scaled so the shorter side is at most this (crops are <= 80% of it)
ZOOM_RANGE = (0.2, 0.8)  # crop window as a fraction of the shorter side, drawn log-uniformly
MIN_WINDOW = 0.75  # ... but at least this times image_size, so crops are never upsampled much
MIN_CONTRAST = 12.0  # luma standard deviation (0-255) below which a crop is too flat to keep

# --- render_style constants (the cel rendering; EDGE_* also draw the ink grade's outlines) ----------
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601 luma weights
KUWAHARA_RADIUS = 2  # 3x3 quadrants of a 5x5 window
KUWAHARA_PASSES = 2
TONE_LEVELS = 4  # luminance bands: 1/8, 3/8, 5/8, 7/8
SATURATION = 1.3
TINT_GAIN = np.array([1.08, 0.98, 0.80], dtype=np.float32)  # warm: more red, less blue
TINT_OFFSET = np.array([0.04, 0.02, 0.0], dtype=np.float32)
EDGE_SIGMA = 1.0  # Gaussian blur (px) before the Sobel edge detector
EDGE_LOW, EDGE_HIGH = 0.3, 0.6  # Sobel magnitude where ink starts and where it is full strength
INK_STRENGTH = 0.85  # full ink keeps 15% of the colour

# --- render_ink_grade constants (domain B of the unpaired quick starts) ----------------------------
# Per-channel gamma: red lifted, green slightly, blue pressed down: a strong golden grade that is
# monotone in each channel, so the photo's colours can be recovered from it. With the ink below, the
# untranslated validation crops are 13.7 dB / SSIM 0.53 from their rendering; the grade alone, without
# any ink, would reach 19.3 dB / 0.82, and the rest is the outlines.
GRADE_GAMMA = np.array([0.4, 0.8, 2.8], dtype=np.float32)
# Full ink keeps 40% of the colour: outlines plain to see, with the colour still under them.
GRADE_INK_STRENGTH = 0.6


def render_style(image: np.ndarray) -> np.ndarray:
    """The fixed "cartoon" (cel) rendering, pix2pix's domain B: uint8 (H, W, 3) RGB in, same shape out.

    Deterministic, pure numpy/scipy, about 5 ms for 96x96. In order, on [0, 1] floats:

    1. Kuwahara filter, radius 2, applied twice (edge-preserving smoothing that flattens texture
       into painted patches): each pixel takes the mean colour of whichever of the four 3x3
       quadrants of its 5x5 window has the lowest luma variance.
    2. Cel shading: the luma of the smoothed image is quantised into 4 bands (floor(4 * Y) + 0.5) / 4
       and the colour is rescaled to that luma (hue kept); then saturation is raised by 1.3x
       around the per-pixel grey.
    3. Warm tint: RGB times (1.08, 0.98, 0.80) plus (0.04, 0.02, 0).
    4. Dark edges: Sobel gradient magnitude of the Gaussian-blurred (sigma 1 px) luma of the *input*;
       ink = clip((magnitude - 0.3) / 0.3, 0, 1); the colour is multiplied by 1 - 0.85 * ink.
    5. Clip to [0, 1] and round to uint8.
    """
    rgb = _unit_rgb(image, "render_style")
    smooth = rgb
    for _ in range(KUWAHARA_PASSES):
        smooth = _kuwahara(smooth, KUWAHARA_RADIUS)
    luma = smooth @ _LUMA
    banded = (np.floor(luma * TONE_LEVELS) + 0.5) / TONE_LEVELS
    cel = smooth * (banded / np.maximum(luma, 1e-3))[..., None]
    grey = cel.mean(axis=-1, keepdims=True)
    cel = grey + SATURATION * (cel - grey)
    toned = cel * TINT_GAIN + TINT_OFFSET
    out = toned * (1.0 - INK_STRENGTH * _edge_ink(rgb))[..., None]
    return np.rint(np.clip(out, 0.0, 1.0) * 255.0).astype(np.uint8)


def render_ink_grade(image: np.ndarray) -> np.ndarray:
    """A near-invertible rendering: a colour grade and dark ink on edges. uint8 (H, W, 3) RGB in and out.

    Made for unpaired translation (CycleGAN, CUT): unlike :func:`render_style` it throws away
    little of the photo (no smoothing, no tone bands), so the way back is possible and a
    cycle-consistent model is not charged for detail no generator can restore. Deterministic, pure
    numpy/scipy, about 2 ms for 96x96. In order, on [0, 1] floats:

    1. Colour grade: each channel raised to its own power, R^0.4, G^0.8, B^2.8 (golden highlights,
       deep brown shadows); strictly monotone per channel, so it loses little beyond rounding.
    2. Ink: Sobel gradient magnitude of the Gaussian-blurred (sigma 1 px) luma of the input, as in
       :func:`render_style`; ink = clip((magnitude - 0.3) / 0.3, 0, 1); the graded colour is
       multiplied by 1 - 0.6 * ink, so strong edges get dark outlines.
    3. Clip to [0, 1] and round to uint8.
    """
    rgb = _unit_rgb(image, "render_ink_grade")
    graded = rgb**GRADE_GAMMA
    out = graded * (1.0 - GRADE_INK_STRENGTH * _edge_ink(rgb))[..., None]
    return np.rint(np.clip(out, 0.0, 1.0) * 255.0).astype(np.uint8)


def _unit_rgb(image: np.ndarray, renderer: str) -> np.ndarray:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{renderer} expects a uint8 (H, W, 3) RGB array, got {image.dtype} {image.shape}.")
    return image.astype(np.float32) / 255.0


def _edge_ink(rgb: np.ndarray) -> np.ndarray:
    """Ink strength in [0, 1] per pixel: the Sobel magnitude of the blurred luma between EDGE_LOW and EDGE_HIGH."""
    blurred = ndimage.gaussian_filter(rgb @ _LUMA, EDGE_SIGMA, mode="reflect")
    magnitude = np.hypot(ndimage.sobel(blurred, axis=0), ndimage.sobel(blurred, axis=1))
    return np.clip((magnitude - EDGE_LOW) / (EDGE_HIGH - EDGE_LOW), 0.0, 1.0)


# Domain B's rendering by name: `data.rendering` of the embedded data module.
RENDERING_NAMES = ("cel", "ink_grade")


def renderer(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """The rendering function called ``name`` (looked up at call time, so tests may replace it)."""
    if name not in RENDERING_NAMES:
        raise ValueError(
            f"Unknown embedded rendering {name!r}: data.rendering takes one of {', '.join(RENDERING_NAMES)} "
            "(cel: the cartoon rendering pix2pix learns; ink_grade: the colour grade with ink outlines "
            "the unpaired quick starts learn)."
        )
    return render_style if name == "cel" else render_ink_grade


def _kuwahara(rgb: np.ndarray, radius: int) -> np.ndarray:
    """Kuwahara filter: per pixel, the mean of the lowest-luma-variance quadrant of its window."""
    side = radius + 1  # each quadrant is (radius + 1) x (radius + 1) and includes the pixel
    shift = radius // 2  # a quadrant's centre is this far from the pixel in x and y
    luma = rgb @ _LUMA
    mean = ndimage.uniform_filter(rgb, size=(side, side, 1), mode="reflect")
    luma_mean = ndimage.uniform_filter(luma, size=side, mode="reflect")
    variance = ndimage.uniform_filter(luma * luma, size=side, mode="reflect") - luma_mean**2
    mean = np.pad(mean, ((shift, shift), (shift, shift), (0, 0)), mode="edge")
    variance = np.pad(variance, shift, mode="edge")
    height, width = luma.shape
    offsets = [(dy, dx) for dy in (0, 2 * shift) for dx in (0, 2 * shift)]
    means = np.stack([mean[dy : dy + height, dx : dx + width] for dy, dx in offsets])
    variances = np.stack([variance[dy : dy + height, dx : dx + width] for dy, dx in offsets])
    best = np.argmin(variances, axis=0)
    return np.take_along_axis(means, best[None, :, :, None], axis=0)[0]


def _grace_hopper() -> np.ndarray:
    from matplotlib import cbook

    with cbook.get_sample_data("grace_hopper.jpg") as file:
        return np.asarray(Image.open(file).convert("RGB"))


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        image = getattr(skimage.data, name)()
        return image[0] if name == "stereo_motorcycle" else image  # (left, right, disparity)

    return load


PHOTOS: dict[str, Callable[[], np.ndarray]] = {
    name: _skimage(name)
    for name in (
        "astronaut",
        "coffee",
        "chelsea",
        "rocket",
        "hubble_deep_field",
        "immunohistochemistry",
        "stereo_motorcycle",
        "retina",
    )
}
PHOTOS["grace_hopper"] = _grace_hopper


def default_cache_dir(
    image_size: int = 96, n_train: int = 320, n_test: int = 16, seed: int = 0, rendering: str = "cel"
) -> Path:
    """The dataset folder: ``$GANSTYLE_CACHE`` (else ``~/.cache/ganstyle``) / ``embedded-v1-...``
    (``embedded_ink_grade-v1-...`` for another rendering: no folder holds two renderings)."""
    base = Path(os.environ.get("GANSTYLE_CACHE") or Path.home() / ".cache" / "ganstyle").expanduser()
    name = "embedded" if rendering == "cel" else f"embedded_{rendering}"
    return base / f"{name}-v{VERSION}-{image_size}px-{n_train}x{n_test}-seed{seed}"


def materialize_embedded_dataset(
    cache_dir: str | os.PathLike | None = None,
    image_size: int = 96,  # stored size; training resizes to 72 and crops 64 (fast on a CPU)
    n_train: int = 320,  # crops per domain: enough variety for a small CycleGAN in minutes
    n_test: int = 16,  # held-out A and B crops, the default val_max_images
    seed: int = 0,
    rendering: str = "cel",  # domain B's rendering: "cel" (render_style) or "ink_grade" (render_ink_grade)
) -> Path:
    """Write the dataset (trainA/B, testA/B, testA2B PNGs) into ``cache_dir`` unless it is already there.

    ``cache_dir`` is the dataset folder itself (default :func:`default_cache_dir`). A folder whose
    manifest matches the parameters and version is reused; one built with other parameters is
    replaced. A non-empty folder without a manifest is never touched (:class:`DatasetError`).
    """
    if min(image_size, n_train, n_test) < 1:
        raise ValueError(
            f"image_size, n_train and n_test must be positive, got {image_size}, {n_train}, {n_test}."
        )
    params = {
        "version": VERSION,
        "image_size": image_size,
        "n_train": n_train,
        "n_test": n_test,
        "seed": seed,
        "rendering": rendering,
    }
    renderer(rendering)  # an unknown name stops here, before any folder is made
    root = (
        Path(cache_dir).expanduser()
        if cache_dir
        else default_cache_dir(image_size, n_train, n_test, seed, rendering)
    )
    if _is_complete(root, params):
        return root
    if root.exists() and not (root / MANIFEST).is_file() and (not root.is_dir() or any(root.iterdir())):
        raise DatasetError(
            f"The embedded dataset folder {root} already exists and holds other files (no {MANIFEST}), so it "
            "is not overwritten. Set `data.cache_dir` to a new or empty folder, or leave it unset to use "
            f"{default_cache_dir(image_size, n_train, n_test, seed, rendering)}."
        )
    return build_folder_atomically(
        root, lambda building: _build(building, params), lambda folder: _is_complete(folder, params)
    )


def build_folder_atomically(
    root: Path, build: Callable[[Path], object], is_complete: Callable[[Path], bool]
) -> Path:
    """Build into a temporary sibling of ``root``, then rename it into place.

    An interrupted build never leaves a half-written dataset at ``root``; a stale ``root`` (other
    parameters, or empty) is moved aside first; if a concurrent build renamed its folder into place
    first, that one is kept when ``is_complete`` accepts it.
    """
    root.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{root.name}.building-", dir=root.parent))
    try:
        build(building)
        if root.exists():  # empty, or built with other parameters: move it aside, then swap in
            stale = Path(tempfile.mkdtemp(prefix=f".{root.name}.stale-", dir=root.parent))
            with contextlib.suppress(FileNotFoundError):  # another process moved it first
                os.replace(root, stale / "old")
            shutil.rmtree(stale, ignore_errors=True)
        try:
            os.rename(building, root)
        except OSError:
            if not is_complete(root):  # not a concurrent build that finished first
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return root


def _is_complete(root: Path, params: dict) -> bool:
    try:
        manifest = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    if manifest.get("params") != params:
        return False
    counts = manifest.get("counts", {})
    return all(
        (root / folder).is_dir() and len(list_images(root / folder)) == counts.get(folder)
        for folder in FOLDERS
    )


def _build(out: Path, params: dict) -> None:
    size, n_train, n_test, seed = params["image_size"], params["n_train"], params["n_test"], params["seed"]
    render = renderer(params["rendering"])
    photos = [_working_copy(load()) for load in PHOTOS.values()]
    names = list(PHOTOS)
    streams = [np.random.default_rng([seed, stream]) for stream in range(4)]
    train_a = _sample_crops(streams[0], photos, n_train, size, avoid=None)
    train_b = _sample_crops(streams[1], photos, n_train, size, avoid=train_a[0])
    test_a = _sample_crops(streams[2], photos, n_test, size, avoid=np.concatenate([train_a[0], train_b[0]]))
    test_b = _sample_crops(streams[3], photos, n_test, size, avoid=np.concatenate([train_b[0], test_a[0]]))
    digest = hashlib.sha256()
    windows_by_folder = {}
    for folder, (windows, crops), rendered in (
        ("trainA", train_a, False),
        ("trainB", train_b, True),
        ("testA", test_a, False),
        ("testB", test_b, True),
    ):
        windows_by_folder[folder] = windows.tolist()
        (out / folder).mkdir()
        if folder == "testA":
            (out / "testA2B").mkdir()
        for index, (window, crop) in enumerate(zip(windows, crops)):
            name = f"{index:04d}_{names[window[0]]}.png"
            targets = [(folder, render(crop) if rendered else crop)]
            if folder == "testA":
                targets.append(("testA2B", render(crop)))
            for target_folder, pixels in targets:
                path = out / target_folder / name
                Image.fromarray(pixels).save(path, compress_level=1)  # fast; still lossless
                digest.update(f"{target_folder}/{name}".encode())
                digest.update(path.read_bytes())
    manifest = {
        "params": params,
        "counts": {folder: len(list_images(out / folder)) for folder in FOLDERS},
        "photos": names,
        "windows": windows_by_folder,  # per file, in name order: [photo index, top, left, side]
        "sha256": digest.hexdigest(),
        "description": f"A: photo crops; B: {render.__name__}() of other crops; testA2B: {render.__name__}(testA).",
    }
    (out / MANIFEST).write_text(json.dumps(manifest, sort_keys=True) + "\n")  # written last: marks complete


def _working_copy(photo: np.ndarray) -> Image.Image:
    image = Image.fromarray(photo)
    scale = WORKING_SIDE / min(image.size)
    if scale < 1:
        image = image.resize(
            (round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS
        )
    return image


def _sample_crops(
    rng: np.random.Generator, photos: list[Image.Image], count: int, size: int, avoid: np.ndarray | None
) -> tuple[np.ndarray, list[np.ndarray]]:
    """``count`` crops, photos balanced: windows (photo, top, left, side) and uint8 (size, size, 3) pixels.

    A window is redrawn (up to 100 times) when it nearly repeats one of ``avoid`` or when the crop is
    almost flat (luma standard deviation under :data:`MIN_CONTRAST`: empty sky, the dark rim of the
    retina), which would teach nothing and look alike in both domains.
    """
    photo_order = rng.permutation(np.resize(np.arange(len(photos)), count))
    windows = np.zeros((count, 4), dtype=np.int64)
    crops = []
    for index, photo in enumerate(photo_order):
        width, height = photos[photo].size
        short = min(height, width)
        for _attempt in range(100):
            fraction = np.exp(rng.uniform(np.log(ZOOM_RANGE[0]), np.log(ZOOM_RANGE[1])))
            side = int(min(short, max(fraction * short, MIN_WINDOW * size)))
            top = int(rng.integers(0, height - side + 1))
            left = int(rng.integers(0, width - side + 1))
            window = np.array([photo, top, left, side])
            if avoid is not None and _near(window, avoid):
                continue
            crop = _crop(photos[photo], window, size)
            if (crop @ _LUMA).std() >= MIN_CONTRAST:
                break
        else:  # 100 rejections (a tiny photo, a huge count): keep the last window anyway
            crop = _crop(photos[photo], window, size)
        windows[index] = window
        crops.append(crop)
    return windows, crops


def _crop(photo: Image.Image, window: np.ndarray, size: int) -> np.ndarray:
    _, top, left, side = (int(v) for v in window)
    return np.asarray(
        photo.resize((size, size), Image.Resampling.LANCZOS, box=(left, top, left + side, top + side))
    )


def _near(window: np.ndarray, others: np.ndarray) -> bool:
    """Whether any of ``others`` shows nearly the same view: same photo, zoom within 25%, offset < side/4."""
    same = others[others[:, 0] == window[0]]
    if not len(same):
        return False
    side = window[3]
    similar_zoom = np.abs(same[:, 3] - side) < 0.25 * side
    close = (np.abs(same[:, 1] - window[1]) < side / 4) & (np.abs(same[:, 2] - window[2]) < side / 4)
    return bool(np.any(similar_zoom & close))


class EmbeddedDataModule(BuiltOnFirstUse, UnpairedDataModule):
    """:class:`UnpairedDataModule` over the embedded dataset, built on first use (see module docstring).

    ``image_size``/``n_train``/``n_test``/``dataset_seed`` define the stored dataset;
    ``seed`` (data order, augmentation) and the rest are :class:`UnpairedDataModule`'s.
    """

    def __init__(
        self,
        cache_dir: str | None = None,  # None: $GANSTYLE_CACHE or ~/.cache/ganstyle, named by the parameters
        image_size: int = 96,
        n_train: int = 320,
        n_test: int = 16,
        dataset_seed: int = 0,  # which crops; kept apart from `seed` so every run sees the same data
        load_size: int = 72,  # 96 -> 72 -> random 64 crop: the CycleGAN 286/256 ratio, CPU-sized
        crop_size: int = 64,
        preprocess: str = "resize_and_crop",
        flip: bool = True,
        batch_size: int = 1,
        num_workers: int = 0,
        val_max_images: int | None = 16,
        serial_batches: bool = False,
        skip_bad_images: bool = False,
        seed: int = 0,
        pin_memory: bool = False,
        test_max_images: int | None = None,
        rendering: str = "cel",  # domain B: "cel" (render_style) or "ink_grade" (render_ink_grade)
    ) -> None:
        renderer(rendering)  # an unknown name is refused when the config is built, not at setup
        root = cache_folder(
            cache_dir, default_cache_dir(image_size, n_train, n_test, dataset_seed, rendering)
        )
        super().__init__(**forwarded(UnpairedDataModule, locals(), root=str(root)))

    @property
    def validation_has_targets(self) -> bool:
        return True  # testA2B/ is built with the dataset (it may not exist before the first setup)

    def _materialize(self) -> Path:
        hp = self.hparams
        return materialize_embedded_dataset(
            self.root, hp.image_size, hp.n_train, hp.n_test, hp.dataset_seed, hp.rendering
        )
