"""Reading image files, and checking a folder of them once before training.

Every dataset in ``ganstyle.data`` reads pixels through :func:`load_rgb` and checks its folders at
``setup`` through :func:`scan_image_folder`, so a corrupt, truncated or empty file is reported, with
its name and the fix, before the first step -- not as a crash in a dataloader worker hours later.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ganstyle.config import listed

# Compared case-insensitively. The reference code's list plus webp and the netpbm greys.
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".pbm", ".tif", ".tiff", ".webp"}
)

# Transparent pixels are composited onto white: the colour under alpha=0 is undefined (often black
# or leftover paint), and white is what a viewer shows behind a transparent logo or cut-out.
ALPHA_BACKGROUND: tuple[int, int, int] = (255, 255, 255)

# Modes load_rgb turns into 8-bit RGB; anything else is reported as a bad file during the scan.
SUPPORTED_MODES: frozenset[str] = frozenset(
    {"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"}
    | {"I", "I;16", "I;16L", "I;16B", "I;16N", "F"}
)

log = logging.getLogger(__name__)

# EXIF orientations that rotate by 90 degrees, so width and height swap (see load_rgb).
_SWAPPING_ORIENTATIONS = {5, 6, 7, 8}
_EXIF_ORIENTATION = 0x0112

Size = tuple[int, int]  # (width, height), PIL's order


class DatasetError(ValueError):
    """A dataset folder or file cannot be used; the message says what, where and how to fix it."""


class DatasetWarning(UserWarning):
    """Part of a dataset was skipped (for example unreadable files with ``skip_bad_images=true``)."""


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert a PIL image of any common mode to 8-bit RGB.

    - 16-bit greys (``I;16*``, and ``I``, the mode older Pillow used for 16-bit PNGs) are scaled by
      255/65535, not clipped: clipping would turn almost every pixel of a 16-bit photo white.
      Values of an ``I`` image above 65535 clip.
    - ``F`` (32-bit float) is read as [0, 1] and clipped.
    - Alpha (``RGBA``, ``LA``, ``PA``, and palette images with a transparent colour) is composited
      onto :data:`ALPHA_BACKGROUND` (white).
    - ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``, palette and 1-bit images use Pillow's conversion (no ICC
      colour management).
    """
    mode = image.mode
    if mode == "RGB":
        return image
    if mode.startswith("I"):
        grey = np.asarray(image).astype(np.float64)
        grey = np.clip(np.rint(grey / 257.0), 0, 255).astype(np.uint8)  # 65535 / 257 = 255 exactly
        return Image.fromarray(grey, "L").convert("RGB")
    if mode == "F":
        grey = np.clip(np.rint(np.asarray(image, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    has_alpha = mode in ("RGBA", "RGBa", "LA", "La", "PA") or (mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*ALPHA_BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def load_rgb(path: str | os.PathLike) -> Image.Image:
    """Read an image file as an 8-bit RGB PIL image (see :func:`to_rgb` for the conversions).

    The EXIF orientation tag is applied, so a phone photo comes out the way viewers show it.
    Raises :class:`DatasetError` naming the file when it cannot be decoded.
    """
    try:
        with Image.open(path) as image:
            upright = ImageOps.exif_transpose(image)  # a loaded copy, detached from the file
            return to_rgb(upright)
    except (OSError, ValueError, SyntaxError) as error:
        raise DatasetError(
            f"Cannot read image {path}: {error}. The file is unreadable or changed after the dataset was "
            "checked at setup; replace or remove it and restart."
        ) from error


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files directly in ``folder`` (not in subfolders), sorted by name.

    Hidden files are skipped: macOS zips carry ``._name.jpg`` resource forks that look like images.
    """
    folder = Path(folder)
    return sorted(
        path
        for path in folder.iterdir()
        if path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".") and path.is_file()
    )


def image_size(path: str | os.PathLike) -> Size:
    """(width, height) as :func:`load_rgb` returns it, from the file's header only."""
    with Image.open(path) as image:
        return _oriented_size(image)


def _oriented_size(image: Image.Image) -> Size:
    width, height = image.size
    try:
        orientation = image.getexif().get(_EXIF_ORIENTATION)
    except Exception:  # a broken EXIF block: load_rgb's exif_transpose ignores it too
        orientation = None
    return (height, width) if orientation in _SWAPPING_ORIENTATIONS else (width, height)


def check_image(
    path: Path, min_size: int | Size | None = None, check: Callable[[Size], str | None] | None = None
) -> tuple[Size | None, str | None]:
    """Open one file the way training will and say what is wrong with it, if anything.

    Returns ``(size, problem)``: ``size`` is (width, height) when the file decodes; ``problem`` is a
    short reason, or None when the file is usable. ``verify()`` catches PNG checksum errors but reads
    no JPEG data, so the image is also fully decoded: that is what catches truncated files.
    ``check`` may add a dataset-specific rule (it gets the size and returns a reason or None).
    """
    try:
        if path.stat().st_size == 0:
            return None, "empty file (0 bytes)"
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            image.load()
            size, mode = _oriented_size(image), image.mode
    except Exception as error:  # Pillow raises many types on bad data; any of them means unusable
        reason = str(error) or type(error).__name__
        return None, f"cannot be decoded ({reason})"
    if mode not in SUPPORTED_MODES:
        return size, f"unsupported colour mode {mode!r}"
    if min_size is not None:
        min_w, min_h = (min_size, min_size) if isinstance(min_size, int) else min_size
        if size[0] < min_w or size[1] < min_h:
            return size, f"{size[0]}x{size[1]} px is smaller than the required {min_w}x{min_h}"
    if check is not None:
        problem = check(size)
        if problem:
            return size, problem
    return size, None


DEFAULT_EXPECTED = (
    f"Expected a folder of image files ({', '.join(sorted(IMAGE_EXTENSIONS))}); point the data config at it, "
    "e.g. `data.root=/path/to/dataset`."
)


def unread_entries(folder: Path) -> list[tuple[str, str]]:
    """What in ``folder`` is not read as a training image, with why: subfolders (only the images
    directly inside a folder are read) and files of other formats (an animated ``.gif``, a video, a
    text file). Hidden entries are not counted."""
    skipped = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            inside = sum(
                1 for path in entry.rglob("*") if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file()
            )
            skipped.append((f"{entry.name}/", f"a subfolder, not read ({inside} image files inside)"))
        elif entry.suffix.lower() not in IMAGE_EXTENSIONS:
            skipped.append((entry.name, f"{entry.suffix or 'no extension'} is not a format that is read"))
    return skipped


def describe_read(name: str, folder: Path, read: int, skipped: Sequence[tuple[str, str]]) -> str:
    """One line per folder: ``trainA (...): read 120 images from <folder>, skipped 3 (first few)``."""
    line = f"{name}: read {read} images from {folder}"
    if not skipped:
        return line
    shown = "; ".join(f"{entry}: {why}" for entry, why in skipped[:3])
    more = f"; and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    return f"{line}, skipped {len(skipped)} ({shown}{more})"


def scan_image_folder(
    folder: str | os.PathLike,
    name: str,
    min_size: int | Size | None = None,
    skip_bad: bool = False,
    expected: str | None = None,
    check: Callable[[Size], str | None] | None = None,
    counts: dict[str, dict] | None = None,
) -> dict[Path, Size]:
    """Check every image in ``folder`` once and return ``{path: (width, height)}`` of the usable ones.

    One log line says how many images were read and what was skipped (subfolders, files of formats
    that are not read, bad files with ``skip_bad``); ``counts``, when given, gets the same as
    ``counts[name] = {"folder", "read", "skipped": [[entry, reason], ...]}`` (the run report shows it).

    Args:
        folder: the folder to scan (not recursive).
        name: what the folder holds, for messages (``"trainA (domain A training images)"``).
        min_size: smallest usable size, an int for both sides or (width, height); smaller images are
            bad files.
        skip_bad: False raises one :class:`DatasetError` listing the bad files; True drops them with a
            :class:`DatasetWarning`. A folder with no usable image raises either way.
        expected: a sentence or two on the layout the caller expects and how to point at it, appended
            to the messages for a missing or empty folder.
        check: an extra per-image rule, given the size, returning a reason or None.
        counts: a mapping to record the folder's counts in (see above).
    """
    folder = Path(folder).expanduser()
    expected = expected or DEFAULT_EXPECTED
    if not folder.exists():
        raise DatasetError(f"The {name} folder {folder} does not exist. {expected}")
    if not folder.is_dir():
        raise DatasetError(f"The {name} path {folder} is a file, not a folder. {expected}")
    paths = list_images(folder)
    if not paths:
        raise DatasetError(
            f"The {name} folder {folder} contains no image files (looked for "
            f"{', '.join(sorted(IMAGE_EXTENSIONS))} directly inside it, not in subfolders)"
            f"{_describe_contents(folder)}. {expected}"
        )
    results = _check_all(paths, min_size, check)
    good = {path: size for path, (size, problem) in zip(paths, results) if problem is None}
    bad = [(path, problem) for path, (_, problem) in zip(paths, results) if problem is not None]
    if bad and (not skip_bad or not good):
        fix = (
            "Remove or replace them"
            if good
            else "No usable image is left, so skipping cannot help: replace the files"
        )
        raise DatasetError(
            f"{len(bad)} of {len(paths)} image files in the {name} folder {folder} cannot be used: "
            f"{_list_problems(bad)}. {fix}"
            + (", or set `data.skip_bad_images=true` to skip them with a warning." if good else ".")
        )
    if bad:
        warnings.warn(
            f"Skipping {len(bad)} of {len(paths)} image files in the {name} folder {folder} "
            f"(data.skip_bad_images=true): {_list_problems(bad)}.",
            DatasetWarning,
            stacklevel=2,
        )
    skipped = [*unread_entries(folder), *((path.name, problem) for path, problem in bad)]
    (log.warning if skipped else log.info)(describe_read(name, folder, len(good), skipped))
    if counts is not None:
        counts[name] = {
            "folder": str(folder),
            "read": len(good),
            "skipped": [[entry, why] for entry, why in skipped],
        }
    return good


def validate_image_folder(
    folder: str | os.PathLike,
    name: str,
    min_size: int | Size | None = None,
    skip_bad: bool = False,
    expected: str | None = None,
) -> list[Path]:
    """The usable images in ``folder``, sorted; see :func:`scan_image_folder` for the checks."""
    return list(scan_image_folder(folder, name, min_size=min_size, skip_bad=skip_bad, expected=expected))


def _check_all(
    paths: Sequence[Path], min_size: int | Size | None, check: Callable[[Size], str | None] | None
) -> list[tuple[Size | None, str | None]]:
    if len(paths) < 32:
        return [check_image(path, min_size, check) for path in paths]
    # Pillow releases the GIL while decoding: threads make the one-off scan of a large folder faster.
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        return list(pool.map(lambda path: check_image(path, min_size, check), paths))


def _list_problems(bad: Sequence[tuple[Path, str]]) -> str:
    return listed([f"{path.name}: {problem}" for path, problem in bad], separator="; ")


def _describe_contents(folder: Path) -> str:
    entries = [entry for entry in folder.iterdir() if not entry.name.startswith(".")]
    if not entries:
        return "; it is empty"
    subfolders = sorted(entry.name for entry in entries if entry.is_dir())
    if subfolders:
        shown = ", ".join(subfolders[:5]) + (", ..." if len(subfolders) > 5 else "")
        return f"; it holds {len(entries)} entries, including the subfolders {shown} (one level too high?)"
    return f"; it holds {len(entries)} other files, e.g. {sorted(entry.name for entry in entries)[0]}"
