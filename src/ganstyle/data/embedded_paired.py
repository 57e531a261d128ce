"""The embedded dataset in pix2pix's paired form: each photo crop (A) with its exact rendering (B).

Derived from the unpaired embedded dataset (:mod:`ganstyle.data.embedded`), which is built first if
needed and shared with CycleGAN's default run:

- ``trainA/`` -- the embedded ``trainA`` photo crops, copied;
- ``trainB/`` -- :func:`~ganstyle.data.embedded.render_style` of each ``trainA`` crop, same file name;
- ``testA/`` -- the embedded ``testA`` crops; ``testB/`` -- the embedded ``testA2B`` (their renderings).

That is the two-folder layout :class:`~ganstyle.data.paired.PairedDataModule` reads, so pix2pix sees
pixel-aligned (photo, rendering) pairs and validation measures fake B against the true rendering.
The embedded ``trainB``/``testB`` (renderings of *other* crops) are not used: pairs need the same crop.

Cache: ``$GANSTYLE_CACHE/embedded-paired-v1-96px-320x16-seed0`` by default. A folder whose manifest
matches (parameters and the source dataset's checksum) is reused; a build writes a temporary sibling
folder and renames it into place when finished, so an interrupted build leaves nothing half-made.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from ganstyle.data.base import BuiltOnFirstUse, cache_folder, forwarded
from ganstyle.data.embedded import (
    MANIFEST,
    build_folder_atomically,
    default_cache_dir,
    materialize_embedded_dataset,
    render_style,
)
from ganstyle.data.images import DatasetError, list_images
from ganstyle.data.paired import PairedDataModule

VERSION = 1  # bump when the pairing changes: old caches rebuild
PAIRED_FOLDERS = ("trainA", "trainB", "testA", "testB")


def default_paired_cache_dir(
    image_size: int = 96, n_train: int = 320, n_test: int = 16, seed: int = 0
) -> Path:
    """``$GANSTYLE_CACHE`` (else ``~/.cache/ganstyle``) / ``embedded-paired-v1-...``."""
    unpaired = default_cache_dir(image_size, n_train, n_test, seed)
    return unpaired.parent / f"embedded-paired-v{VERSION}-{image_size}px-{n_train}x{n_test}-seed{seed}"


def materialize_embedded_pairs(
    cache_dir: str | os.PathLike | None = None,
    source_dir: str | os.PathLike | None = None,
    image_size: int = 96,
    n_train: int = 320,
    n_test: int = 16,
    seed: int = 0,
) -> Path:
    """Write the paired dataset into ``cache_dir`` unless it is already there; return the folder.

    ``source_dir`` is the unpaired embedded dataset folder (built by
    :func:`~ganstyle.data.embedded.materialize_embedded_dataset` with the same parameters if needed).
    A non-empty ``cache_dir`` without a manifest is never touched (:class:`DatasetError`).
    """
    source = materialize_embedded_dataset(source_dir, image_size, n_train, n_test, seed)
    source_manifest = json.loads((source / MANIFEST).read_text())
    params = {
        "version": VERSION,
        "image_size": image_size,
        "n_train": n_train,
        "n_test": n_test,
        "seed": seed,
        "source_sha256": source_manifest["sha256"],
    }
    root = (
        Path(cache_dir).expanduser()
        if cache_dir
        else default_paired_cache_dir(image_size, n_train, n_test, seed)
    )
    if _is_complete(root, params):
        return root
    if root.exists() and not (root / MANIFEST).is_file() and (not root.is_dir() or any(root.iterdir())):
        raise DatasetError(
            f"The paired embedded dataset folder {root} already exists and holds other files "
            f"(no {MANIFEST}), so it is not overwritten. Set `data.cache_dir` to a new or empty folder, "
            f"or leave it unset to use {default_paired_cache_dir(image_size, n_train, n_test, seed)}."
        )
    return build_folder_atomically(
        root,
        lambda building: _build(building, source, params),
        lambda folder: _is_complete(folder, params),
    )


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
        for folder in PAIRED_FOLDERS
    )


def _build(out: Path, source: Path, params: dict) -> None:
    for folder in PAIRED_FOLDERS:
        (out / folder).mkdir()
    for path in list_images(source / "trainA"):
        shutil.copyfile(path, out / "trainA" / path.name)
        crop = np.asarray(Image.open(path).convert("RGB"))
        Image.fromarray(render_style(crop)).save(out / "trainB" / path.name, compress_level=1)
    for path in list_images(source / "testA"):
        shutil.copyfile(path, out / "testA" / path.name)
        shutil.copyfile(source / "testA2B" / path.name, out / "testB" / path.name)
    manifest = {
        "params": params,
        "counts": {folder: len(list_images(out / folder)) for folder in PAIRED_FOLDERS},
        "source": str(source),
        "description": "A: embedded photo crops; B: render_style(A), same file names (pix2pix pairs).",
    }
    (out / MANIFEST).write_text(json.dumps(manifest, sort_keys=True) + "\n")  # written last: marks complete


class EmbeddedPairedDataModule(BuiltOnFirstUse, PairedDataModule):
    """:class:`PairedDataModule` over the paired embedded dataset, built on first use.

    ``image_size``/``n_train``/``n_test``/``dataset_seed`` define the stored dataset (the same defaults
    as CycleGAN's embedded data, so both share one unpaired source in the cache); the rest are
    :class:`PairedDataModule`'s. ``direction="BtoA"`` learns to undo the rendering instead.
    """

    def __init__(
        self,
        cache_dir: str | None = None,  # None: $GANSTYLE_CACHE or ~/.cache/ganstyle, named by the parameters
        source_dir: str | None = None,  # the unpaired embedded dataset it derives from; None: its default
        image_size: int = 96,
        n_train: int = 320,
        n_test: int = 16,
        dataset_seed: int = 0,  # which crops; kept apart from `seed` so every run sees the same data
        direction: str = "AtoB",  # AtoB: photo -> rendering
        load_size: int = 72,  # 96 -> 72 -> random 64 crop: pix2pix's 286/256 ratio, CPU-sized
        crop_size: int = 64,
        preprocess: str = "resize_and_crop",
        flip: bool = True,
        batch_size: int = 1,
        num_workers: int = 0,
        val_max_images: int | None = 16,
        skip_bad_images: bool = False,
        seed: int = 0,
        pin_memory: bool = False,
        test_max_images: int | None = None,
    ) -> None:
        root = cache_folder(cache_dir, default_paired_cache_dir(image_size, n_train, n_test, dataset_seed))
        super().__init__(**forwarded(PairedDataModule, locals(), root=str(root), layout="folders"))

    def _materialize(self) -> Path:
        hp = self.hparams
        return materialize_embedded_pairs(
            self.root, hp.source_dir, hp.image_size, hp.n_train, hp.n_test, hp.dataset_seed
        )
