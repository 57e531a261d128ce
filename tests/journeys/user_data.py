"""Datasets shaped the way users' own data is: JPEG and PNG files of mixed sizes and aspect ratios,
some smaller than the load size, one grayscale and one RGBA image among them, no ground truth.

Pixels come from scikit-image's sample photographs (available offline). Every builder takes the
folder to write into and returns the paths a user would type on the command line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# (width, height): landscape, portrait, square; two are smaller than the journeys' load size (36 px).
SIZES: tuple[tuple[int, int], ...] = ((90, 60), (30, 44), (120, 120), (70, 100), (33, 28))


def _photos() -> list[np.ndarray]:
    from skimage import data

    return [data.astronaut(), data.coffee(), data.chelsea(), data.rocket(), data.immunohistochemistry()]


def user_image(index: int, size: tuple[int, int] | None = None) -> Image.Image:
    """Sample photo ``index`` (cycling) resized to ``size`` (default: the index-th of SIZES)."""
    photos = _photos()
    return Image.fromarray(photos[index % len(photos)]).resize(size or SIZES[index % len(SIZES)])


def write_images(
    folder: Path, count: int, offset: int = 0, grayscale: int | None = None, rgba: int | None = None
) -> Path:
    """``count`` images in ``folder``: even ones JPEG, odd ones PNG; image ``grayscale`` in mode L and
    image ``rgba`` with an alpha channel (a PNG, as JPEG has no alpha)."""
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        image = user_image(index + offset)
        if index == grayscale:
            image = image.convert("L")
        if index == rgba:
            image = image.convert("RGBA")
            image.putalpha(Image.linear_gradient("L").resize(image.size))
        as_png = index % 2 == 1 or image.mode == "RGBA"
        image.save(folder / f"photo_{index:02d}.{'png' if as_png else 'jpg'}")
    return folder


def unpaired_dataset(root: Path) -> Path:
    """trainA/ trainB/ testA/ testB/ as a downloaded CycleGAN dataset, without testA2B/; trainA also
    holds what users leave there: a subfolder of sorted photos and an animated GIF (neither is read)."""
    write_images(root / "trainA", 4, grayscale=1)
    write_images(root / "trainA" / "sorted", 2, offset=5)
    frames = [user_image(index, (40, 40)) for index in range(2)]
    frames[0].save(root / "trainA" / "animation.gif", save_all=True, append_images=frames[1:])
    write_images(root / "trainB", 4, offset=2, rgba=2)
    write_images(root / "testA", 2, offset=1)
    write_images(root / "testB", 2, offset=3)
    return root


def paired_folders(root: Path) -> Path:
    """trainA/ trainB/ testA/ testB/ whose files pair up by name; each B is a recoloured A."""
    for split, count in (("train", 4), ("test", 2)):
        write_images(root / f"{split}A", count, grayscale=1 if split == "train" else None)
        folder_b = root / f"{split}B"
        folder_b.mkdir(parents=True)
        for path in sorted((root / f"{split}A").iterdir()):
            target = Image.open(path).convert("RGB")
            Image.fromarray(255 - np.asarray(target)).save(folder_b / f"{path.stem}.png")
    return root


def paired_aligned(root: Path) -> Path:
    """train/ and test/ with each A|B pair side by side in one image, as the public pix2pix datasets."""
    for split, count in (("train", 4), ("test", 2)):
        folder = root / split
        folder.mkdir(parents=True)
        for index in range(count):
            a = user_image(index).convert("RGB")
            b = Image.fromarray(255 - np.asarray(a))
            pair = Image.new("RGB", (a.width * 2, a.height))
            pair.paste(a, (0, 0))
            pair.paste(b, (a.width, 0))
            pair.save(folder / f"{index}.{'png' if index % 2 else 'jpg'}")
    return root


def style_images(folder: Path, count: int) -> Path:
    """A folder of ``count`` "paintings" (one grayscale, one RGBA when there are enough)."""
    return write_images(
        folder, count, offset=3, grayscale=0 if count > 2 else None, rgba=2 if count > 2 else None
    )


def one_image(path: Path, index: int, size: tuple[int, int]) -> Path:
    """A single photo at ``size``, saved in the format its suffix names."""
    path.parent.mkdir(parents=True, exist_ok=True)
    user_image(index, size).save(path)
    return path


def stylize_inputs(folder: Path) -> Path:
    """What users hand to `ganstyle stylize`: a large photo, a small odd-sized one and a broken file."""
    one_image(folder / "large.jpg", 0, (1700, 1500))
    one_image(folder / "small.png", 1, (75, 53))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated download")
    return folder


# The README's CycleGAN own-data command at tiny sizes, without its data.root (the tests add theirs).
CYCLEGAN_OWN_DATA_TINY = (
    "data=unpaired",
    "model.generator.netG=resnet_1blocks",
    "model.generator.ngf=4",
    "model.discriminator.ndf=4",
    "data.load_size=36",
    "data.crop_size=32",
    "data.num_workers=0",
    "logger=csv",
)
