"""The README's own-data journeys, one row per model: the command a user types, their data, and what
the run must leave behind. A new model is one more :class:`Journey` in :data:`JOURNEYS`.

``command`` is the README's (or docs/') own-data command with the user's paths filled in and
``trainer=gpu`` left out; ``tiny`` only shrinks networks and images so the run takes seconds on a CPU
(and, for the style models, opts in to the random VGG the README names for machines without weights).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import user_data

# Small images and no DataLoader workers: every journey's data is a handful of files.
SMALL_DATA = ("data.load_size=36", "data.crop_size=32", "data.num_workers=0")
RANDOM_VGG = "loss.feature_net.weights=random"  # the README's opt-in where no VGG file can be fetched


@dataclass(frozen=True)
class Journey:
    name: str
    # Writes the user's data under the given folder; returns the paths the command names.
    make_data: Callable[[Path], dict[str, Path]]
    # The overrides of the documented command, given those paths.
    command: Callable[[dict[str, Path]], tuple[str, ...]]
    tiny: tuple[str, ...]
    # Checkpoints apply to new images: `ganstyle stylize` and `ganstyle export` (steps 3 and 4).
    translates: bool = True
    # Files (relative to the run folder) the run must write besides checkpoints, report and metrics.
    outputs: tuple[str, ...] = ("images",)
    # One override with two values for the multirun step.
    sweep: str = "seed=1,2"
    # `ganstyle stylize` and `export` arguments the model needs, given the data paths (AdaIN: --style).
    inference_args: Callable[[dict[str, Path]], tuple[str, ...]] = lambda paths: ()
    # `ganstyle export` arguments the model needs (pix2pix: an explicit --dropout).
    export_args: tuple[str, ...] = field(default_factory=tuple)
    # The model config (conf/model/<name>.yaml) this journey trains; None: the journey's name.
    model_config: str | None = None

    @property
    def model(self) -> str:
        return self.model_config or self.name


def _unpaired(folder: Path) -> dict[str, Path]:
    return {"root": user_data.unpaired_dataset(folder / "horse2zebra")}


def _paired_folders(folder: Path) -> dict[str, Path]:
    return {"root": user_data.paired_folders(folder / "maps")}


def _paired_aligned(folder: Path) -> dict[str, Path]:
    return {"root": user_data.paired_aligned(folder / "facades")}


def _content_and_style_image(folder: Path) -> dict[str, Path]:
    return {
        "content_root": user_data.write_images(folder / "coco" / "train2014", 10, grayscale=3, rgba=4),
        "style": user_data.one_image(folder / "starry.jpg", 3, (80, 64)),
    }


def _content_and_style_folder(folder: Path) -> dict[str, Path]:
    return {
        "content_root": user_data.write_images(folder / "coco" / "train2014", 10, grayscale=3, rgba=4),
        "style": user_data.style_images(folder / "wikiart", 4),
    }


def _one_content_two_styles(folder: Path) -> dict[str, Path]:
    return {
        "content": user_data.one_image(folder / "me.jpg", 0, (60, 44)),
        "style_a": user_data.one_image(folder / "a.jpg", 3, (50, 50)),
        "style_b": user_data.one_image(folder / "b.png", 4, (40, 64)),
    }


def _artworks(folder: Path) -> dict[str, Path]:
    return {"root": user_data.write_images(folder / "monet", 12, grayscale=2, rgba=5)}


PIX2PIX_TINY = (
    "model.generator.num_downs=5",
    "model.generator.ngf=4",
    "model.discriminator.ndf=4",
    *SMALL_DATA,
)

JOURNEYS: tuple[Journey, ...] = (
    Journey(
        "cyclegan",
        _unpaired,
        lambda p: ("data=unpaired", f"data.root={p['root']}"),
        (
            "model.generator.netG=resnet_1blocks",
            "model.generator.ngf=4",
            "model.discriminator.ndf=4",
            *SMALL_DATA,
        ),
        outputs=("images", "translations/AtoB", "translations/BtoA"),
        sweep="loss.cycle_weight=5,10",
    ),
    Journey(
        "cut",
        _unpaired,
        lambda p: ("model=cut", "data=unpaired", f"data.root={p['root']}"),
        (
            "model.generator.n_blocks=5",  # nce_layers 0,4,8,12,16 reach residual block 5
            "model.generator.ngf=4",
            "model.discriminator.ndf=4",
            "model.num_patches=16",
            "model.head_width=8",
            *SMALL_DATA,
        ),
        outputs=("images", "translations/AtoB"),
    ),
    Journey(
        "pix2pix_folders",
        _paired_folders,
        lambda p: (
            "model=pix2pix",
            "data=paired",
            f"data.root={p['root']}",
            "data.direction=AtoB",
        ),
        PIX2PIX_TINY,
        outputs=("images", "translations"),
        export_args=("--dropout", "off"),
        model_config="pix2pix",
    ),
    Journey(
        "pix2pix_aligned",
        _paired_aligned,
        lambda p: (
            "model=pix2pix",
            "data=paired",
            f"data.root={p['root']}",
            "data.direction=BtoA",
        ),
        PIX2PIX_TINY,
        outputs=("images", "translations"),
        export_args=("--dropout", "off"),
        model_config="pix2pix",
    ),
    Journey(
        "fast_style",
        _content_and_style_image,
        lambda p: (
            "experiment=fast_style_coco",
            f"data.content_root={p['content_root']}",
            f"data.style={p['style']}",
        ),
        (RANDOM_VGG, *SMALL_DATA, "data.style_load_size=48", "data.batch_size=2"),
        outputs=("images", "translations"),
    ),
    Journey(
        "adain",
        _content_and_style_folder,
        lambda p: (
            "experiment=adain_wikiart",
            f"data.content_root={p['content_root']}",
            f"data.style={p['style']}",
        ),
        (RANDOM_VGG, *SMALL_DATA, "data.style_load_size=48", "data.batch_size=2"),
        outputs=("images", "translations"),
        inference_args=lambda p: ("--style", str(sorted(p["style"].iterdir())[0])),
    ),
    Journey(
        "gatys",
        _one_content_two_styles,
        lambda p: (
            "model=gatys",
            f"data.content={p['content']}",
            f"data.style=[{p['style_a']},{p['style_b']}]",
            "data.style_weights=[0.7,0.3]",
        ),
        (RANDOM_VGG, "data.image_size=32", "data.iterations_per_epoch=2"),
        translates=False,
        outputs=("stylized.png", "images"),
    ),
    Journey(
        "dcgan",
        _artworks,
        lambda p: ("experiment=dcgan_artworks", f"data.root={p['root']}"),
        (
            "model.generator.ngf=4",
            "model.discriminator.ndf=4",
            *SMALL_DATA,
            "data.batch_size=4",
            "data.held_out=4",
        ),
        translates=False,
        outputs=("images",),
    ),
)
