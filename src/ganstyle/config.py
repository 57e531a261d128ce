"""Typed schemas for the config groups and the checks that run before anything is built.

Hydra composes YAML files; the dataclasses here are registered with its ConfigStore so a wrong type
(`loss.style_weight=abc`) fails at composition with the key's full name. The ``validate_*_config``
functions then check each group's ranges and combinations (negative weights, a crop larger than the load
size) with one-paragraph messages, before any dataset is read or any network is built; the checks of a
whole run's config, across groups, are :func:`ganstyle.run.config_checks.validate_config`.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

GAN_MODES = ("vanilla", "lsgan", "hinge", "wgangp")


class ConfigError(ValueError):
    """A configuration value is out of range or inconsistent; the message says how to fix it."""


MAX_LISTED = 10  # names listed in one message; the rest are counted


def listed(items: Sequence[str], separator: str = ", ") -> str:
    """The first MAX_LISTED items joined, and how many more there are."""
    shown = separator.join(items[:MAX_LISTED])
    return shown + (f"{separator}and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")


@dataclass
class FeatureNetConfig:
    """The frozen network that content and style losses compare features in."""

    arch: str = "vgg19"  # vgg19 (Gatys et al.) or vgg16 (Johnson et al.)
    # imagenet: torchvision's ImageNet weights from the torch hub cache or weights_path;
    # random: an explicit opt-in for smoke tests; losses are then not comparable across runs.
    weights: str = "imagenet"
    weights_path: str | None = None
    # null: the paper's layers for the arch (VGG19: Gatys; VGG16: Johnson).
    content_layers: list[str] | None = None
    style_layers: list[str] | None = None
    style_layer_weights: list[float] | None = None  # null: equal weights, averaged over layers
    pooling: str = "max"  # max, or avg as some Gatys implementations use


@dataclass
class LossConfig:
    """Every loss weight any model may turn on. A weight of 0 means the term is not computed."""

    gan_mode: str = "lsgan"  # vanilla | lsgan | hinge | wgangp
    gan_weight: float = 1.0
    gp_weight: float = 10.0  # WGAN-GP gradient penalty (Gulrajani et al. 2017), used with gan_mode=wgangp
    cycle_weight: float = 0.0  # L1 between an image and its reconstruction, images in [-1, 1]
    identity_weight: float = 0.0  # multiplies cycle_weight, as in the CycleGAN reference code
    l1_weight: float = 0.0  # L1 to a paired target (pix2pix uses 100)
    reconstruction: str = "l1"  # l1 | l2 for the cycle, identity and paired terms
    content_weight: float = 0.0  # perceptual content term on the feature network
    style_weight: float = 0.0  # Gram-matrix style term on the feature network
    tv_weight: float = 0.0  # total variation of the generated image
    # CUT's PatchNCE (lambda_NCE): 1 for CUT, 10 for FastCUT (see ganstyle.losses.patchnce).
    nce_weight: float = 0.0
    # Identity PatchNCE on (y, G(y)) relative to the NCE on (x, G(x)): the NCE term is
    # nce_weight * (NCE_X + nce_idt_weight * NCE_Y) / (1 + nce_idt_weight); CUT's nce_idt is 1, FastCUT's 0.
    nce_idt_weight: float = 0.0
    feature_net: FeatureNetConfig = field(default_factory=FeatureNetConfig)


def register_schemas() -> None:
    """Register the schemas with Hydra; config files extend them via `/schema/<group>@_here_`."""
    store = ConfigStore.instance()
    store.store(group="schema", name="loss", node=LossConfig)


register_schemas()

CUT_MODES = ("cut", "fastcut")


def cut_mode_default(mode: str, cut_value: Any, fastcut_value: Any) -> Any:
    """``${cut_mode_default:${model.mode},<CUT value>,<FastCUT value>}``: a default that follows CUT's mode.

    The CUT configs use it for the values the reference sets per mode (``--CUT_mode``), so
    ``model.mode=fastcut`` switches them all while an explicit override of one of them still wins.
    """
    if str(mode).lower() not in CUT_MODES:
        raise ConfigError(
            f"model.mode={mode!r} is not a CUT mode. Use model.mode=cut (CUT: identity NCE, NCE weight 1) "
            "or model.mode=fastcut (FastCUT: NCE weight 10, flip equivariance, no identity NCE)."
        )
    return cut_value if str(mode).lower() == "cut" else fastcut_value


OmegaConf.register_new_resolver("cut_mode_default", cut_mode_default, replace=True)

# Epochs of each model's reference training where it is not 200 (CycleGAN's and pix2pix's 100 + 100):
# CUT trains 200 + 200 epochs, FastCUT 150 + 50 (the reference's --CUT_mode, train_options.py).
REFERENCE_EPOCHS = {("ganstyle.models.cut.CUT", "cut"): 400, ("ganstyle.models.cut.CUT", "fastcut"): 200}
DEFAULT_EPOCHS = 200


def reference_epochs(model_target: str, mode: Any = None) -> int:
    """``${reference_epochs:${model._target_},${oc.select:model.mode,null}}``: trainer.max_epochs
    unless set, the run length of the model's reference training (``REFERENCE_EPOCHS``, else 200)."""
    return REFERENCE_EPOCHS.get((str(model_target), str(mode).lower()), DEFAULT_EPOCHS)


OmegaConf.register_new_resolver("reference_epochs", reference_epochs, replace=True)


def loader_workers(requested: int) -> int:
    """``${loader_workers:4}``: data loader processes, at most this machine's usable cores (more only
    compete for them, and PyTorch warns about it)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    return max(0, min(int(requested), cores))


OmegaConf.register_new_resolver("loader_workers", loader_workers, replace=True)

_WEIGHT_KEYS = tuple(name for name in LossConfig.__dataclass_fields__ if name.endswith("_weight"))


def validate_loss_config(loss: DictConfig | dict[str, Any]) -> None:
    """Check loss keys are the schema's, weights are non-negative and the GAN mode is known."""
    known = set(LossConfig.__dataclass_fields__)
    for key in loss:
        if key not in known:  # added with +loss.<key>=...: nothing would read it
            near = difflib.get_close_matches(str(key), sorted(known), n=1)
            raise ConfigError(
                f"loss.{key} is not a loss setting, so no model would read it"
                + (f". Did you mean loss.{near[0]}?" if near else "")
                + f" The loss keys are {', '.join(sorted(known))}; a new term needs a field in "
                "ganstyle.config.LossConfig."
            )
    for key in _WEIGHT_KEYS:
        value = loss.get(key, 0.0)
        if value is not None and not math.isfinite(float(value)):
            raise ConfigError(
                f"loss.{key}={value} is not a finite number; every loss and every step would be NaN or "
                f"inf. Use 0 to turn the term off or a positive value such as the paper's."
            )
        if value is not None and float(value) < 0:
            raise ConfigError(
                f"loss.{key}={value} is negative. Loss weights scale a term that is minimised, so a "
                f"negative weight would maximise it; use 0 to turn the term off or a positive value."
            )
    mode = loss.get("gan_mode", "lsgan")
    if mode not in GAN_MODES:
        raise ConfigError(
            f"loss.gan_mode={mode!r} is not a known adversarial loss. Choose one of "
            f"{', '.join(GAN_MODES)}, e.g. `loss.gan_mode=lsgan`."
        )
    if loss.get("reconstruction", "l1") not in ("l1", "l2"):
        raise ConfigError(f"loss.reconstruction={loss.get('reconstruction')!r} is not known; use l1 or l2.")


def validate_data_config(data: DictConfig | dict[str, Any]) -> None:
    """Check sizes and counts of a data config before the dataset is touched."""
    for key in ("load_size", "crop_size", "batch_size", "image_size"):
        value = data.get(key)
        if value is not None and int(value) <= 0:
            raise ConfigError(f"data.{key}={value} must be a positive integer.")
    if (data.get("num_workers") or 0) < 0:
        raise ConfigError(f"data.num_workers={data.get('num_workers')} must be 0 or more.")
    load, crop = data.get("load_size"), data.get("crop_size")
    preprocess = str(data.get("preprocess", "resize_and_crop"))
    if load is not None and crop is not None and "crop" in preprocess and int(crop) > int(load):
        raise ConfigError(
            f"data.crop_size={crop} is larger than data.load_size={load}: with preprocess={preprocess} "
            f"images are resized to load_size and then cropped, so the crop must fit. Set "
            f"data.crop_size<={load} or raise data.load_size (the reference uses load 286, crop 256)."
        )


def validate_model_config(model: DictConfig | dict[str, Any]) -> None:
    """Check the optimiser's learning rate and the image-pool size, which models only meet mid-run."""
    optimizer = model.get("optimizer") or {}
    if isinstance(optimizer, str):  # a name choosing one of model.optimizers (Gatys: lbfgs | adam)
        optimizer = (model.get("optimizers") or {}).get(optimizer) or {}
    lr = optimizer.get("lr")
    if isinstance(lr, str) or (lr is not None and not (math.isfinite(float(lr)) and float(lr) > 0)):
        raise ConfigError(
            f"model.optimizer.lr={lr!r} must be a positive finite number (the GAN papers use 2.0e-4 with "
            "Adam). In YAML write 2.0e-4: plain 2e-4 is read as a string."
        )
    pool_size = model.get("pool_size")
    if pool_size is not None and int(pool_size) < 0:
        raise ConfigError(
            f"model.pool_size={pool_size} must be 0 or more: the number of past fakes shown to the "
            "discriminators (the reference uses 50; 0 turns the history off)."
        )


def _null_groups_removed(argv: list[str], config_dir: str) -> list[str]:
    """Turn ``group=null`` into Hydra's ``~group`` for config groups (e.g. ``experiment=null``).

    Hydra rejects a null choice for a group that has a default; users (and the README) write
    ``experiment=null`` to mean "no experiment", so it is translated before Hydra parses argv.
    """
    rewritten = []
    for arg in argv:
        group, sep, value = arg.partition("=")
        if (
            sep
            and value == "null"
            and group.isidentifier()
            and os.path.isdir(os.path.join(config_dir, group))
        ):
            rewritten.append(f"~{group}")
        else:
            rewritten.append(arg)
    return rewritten


EMBEDDED_DATA_PREFIX = "embedded"  # conf/data/embedded_<model>.yaml: the data the quick starts are sized for


def _quick_start_dropped_for_other_data(argv: list[str]) -> list[str]:
    """Add ``~experiment`` when ``data=`` names data other than the embedded dataset and no experiment
    is chosen: train.yaml's default experiment (``<model>_quickstart``, sizes for a CPU on the
    embedded data) is not for the user's data, which trains at the model's reference sizes."""
    data_values = [arg.partition("=")[2] for arg in argv if arg.startswith(("data=", "+data=", "++data="))]
    chooses_experiment = any(arg.lstrip("+~").partition("=")[0] == "experiment" for arg in argv)
    if not data_values or chooses_experiment:
        return argv
    choices = [choice.strip() for value in data_values for choice in value.split(",")]
    own_data = [choice for choice in choices if not choice.startswith(EMBEDDED_DATA_PREFIX)]
    if not own_data:
        return argv
    if len(own_data) < len(choices):
        raise ConfigError(
            f"This sweep mixes the embedded data and other data ({', '.join(choices)}): the embedded "
            "data trains at the quick start's sizes and other data at the model's reference sizes, so "
            "the jobs would differ in more than the data. Sweep them separately, or name the sizes for "
            "all of them with experiment=<name> (experiment=null: the reference sizes)."
        )
    return [*argv, "~experiment"]


def rewrite_command_line(argv: list[str], config_dir: str) -> list[str]:
    """The overrides Hydra gets for ``argv``: ``group=null`` as Hydra's ``~group``, and the quick
    start dropped when the data is the user's (see the two steps)."""
    return _quick_start_dropped_for_other_data(_null_groups_removed(argv, config_dir))
