"""Checks of a whole composed run config, before any dataset is read or any network is built.

:func:`validate_config` runs them in this order: the quick start against the model, required values and
named images, argument types (``data.batch_size=two``), each group's own ranges (:mod:`ganstyle.config`),
the trainer (``max_epochs``, the device it asks for), the schedule against the run's length, the data
the model can train on (``model=pix2pix data=unpaired``), and the image size the generator and
discriminator accept (``data.crop_size=32`` with ``unet_64``). Each failure is one
paragraph: the key, its value, what is allowed, and the override that fixes it.
"""

from __future__ import annotations

import logging
import typing
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from ganstyle.config import ConfigError, validate_data_config, validate_model_config
from ganstyle.run.argument_types import check_argument_types, nearest_argument_hint, target_class

log = logging.getLogger(__name__)

# What each kind of data module holds, and the data option (with the keys to set) that gives it.
DATA_KINDS: dict[str, tuple[str, str]] = {
    "unpaired": (
        "two sets of images, A and B, that need not correspond",
        "data=unpaired data.root=<folder with trainA/ trainB/ testA/ testB/>",
    ),
    "paired": (
        "A and B images that correspond one to one",
        "data=paired data.root=<folder with train/ and val/ (A|B side by side), or trainA/ trainB/ "
        "testA/ testB/ with matching file names>",
    ),
    "content_style": (
        "content photos and style image(s)",
        "data=content_style data.content_root=<folder of photos> data.style=<style image>",
    ),
    "single_image_style": (
        "one content image and its style image(s)",
        "data=embedded_gatys data.content=<photo> data.style=<style image>",
    ),
    "image_folder": ("one folder of images", "data=image_folder data.root=<folder of images>"),
}


def validate_config(cfg: DictConfig) -> None:
    """All checks that need only the config; run before anything is instantiated.

    Types first (a string where a number belongs would break the range checks), then values and
    ranges, then combinations: the trainer and its device, the schedule against the run's length, the
    data the model trains on, and the crop size its networks accept.
    """
    check_quick_start_matches_model(cfg)
    check_dataset_present(cfg)
    check_required_values(cfg)
    check_named_images_exist(cfg)
    for key in ("data", "model", "trainer"):
        check_argument_types(cfg.get(key), key)
    for key in ("generator", "discriminator"):
        check_argument_types((cfg.get("model") or {}).get(key), f"model.{key}")
    model_class = target_class(cfg.get("model"))
    if cfg.get("loss") is not None and model_class is not None:
        model_class.checked_loss_config(cfg.loss)  # the model's own check: keys, weights, its terms
    if cfg.get("model") is not None:
        validate_model_config(cfg.model)
    if cfg.get("data") is not None:
        validate_data_config(cfg.data)
    check_trainer(cfg)
    check_schedule(cfg)
    check_data_fits_model(cfg)
    check_networks_fit_size(cfg)


def check_dataset_present(cfg: DictConfig) -> None:
    """A dataset experiment (``dataset: horse2zebra``) whose folder is not there says how to fetch it."""
    name, root = cfg.get("dataset"), (cfg.get("data") or {}).get("root")
    if not name or not root or Path(str(root)).expanduser().exists():
        return
    folder = Path(str(root)).expanduser()
    experiment = choice(cfg, "experiment")
    raise ConfigError(
        f"{f'experiment={experiment}' if experiment else f'dataset={name}'} trains on the {name} dataset, which "
        f"is not at data.root={folder}. Fetch it with `ganstyle datasets fetch {name} --root {folder.parent}` "
        "(GANSTYLE_DATASETS=<folder> moves the default for both), or point `data.root=<your copy>` at it."
    )


def check_quick_start_matches_model(cfg: DictConfig) -> None:
    """``experiment=<name>_quickstart`` holds values for model <name> only (``model=<name>`` picks it)."""
    experiment, model = choice(cfg, "experiment"), choice(cfg, "model")
    if not experiment or not model or not str(experiment).endswith("_quickstart"):
        return
    owner = str(experiment).removesuffix("_quickstart")
    owner = {"wgangp": "dcgan"}.get(owner, owner)  # WGAN-GP is the DCGAN model with loss.gan_mode=wgangp
    if owner != model:
        raise ConfigError(
            f"experiment={experiment} holds the quick-start values of model={owner}, but the "
            f"configured model is {model}: its keys would land on the wrong networks and data. Run "
            f"`python train.py model={owner}` (each model picks its own quick start), or "
            "choose a dataset experiment such as experiment=horse2zebra."
        )


def hydra_node(cfg: DictConfig) -> Any:
    """Hydra's own node: in ``cfg`` when composed with it (tests), else the running app's."""
    if "hydra" in cfg:
        return cfg.hydra
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get() if HydraConfig.initialized() else None


def choice(cfg: DictConfig, group: str) -> str | None:
    """The option chosen for a config group (``data=unpaired``), when Hydra composed the config."""
    try:
        return hydra_node(cfg).runtime.choices.get(group)
    except Exception:  # composed without Hydra
        return None


def command_line_overrides(cfg: DictConfig) -> list[str]:
    """The overrides the user typed for this run (``loss.style_weight=1e4``), when Hydra composed it."""
    try:
        return [str(item) for item in hydra_node(cfg).overrides.task]
    except Exception:  # composed without Hydra
        return []


def model_data_kinds(node: Any) -> tuple[str, ...]:
    """The ``data_kinds`` a ``model`` config node's class declares; () when it cannot be imported."""
    model_class = target_class(node)
    return tuple(model_class.data_kinds) if model_class is not None else ()


def check_required_values(cfg: DictConfig) -> None:
    """A ``???`` value (required, no default) is named with the override that sets it."""
    for group in ("data", "model"):
        node = cfg.get(group)
        if not isinstance(node, DictConfig):
            continue
        for name in node:
            if OmegaConf.is_missing(node, name):
                raise ConfigError(
                    f"{group}.{name} is required by data={choice(cfg, group) or cfg[group].get('_target_')} "
                    f"and has no default. Set it on the command line, e.g. `{group}.{name}=<value>` "
                    f"(see the comments in conf/{group}/{choice(cfg, group) or '<option>'}.yaml)."
                )


def check_named_images_exist(cfg: DictConfig) -> None:
    """``data.content`` / ``data.style`` files the user named exist, before a network (and the VGG
    weights they need) is built: a typo in a path is the first thing to hear about."""
    from pathlib import Path

    from ganstyle.data.images import IMAGE_EXTENSIONS, DatasetError

    data = cfg.get("data")
    if not isinstance(data, DictConfig):
        return
    for key, role in (("content", "content image"), ("style", "style image")):
        if key not in data or OmegaConf.is_missing(data, key) or data.get(key) is None:
            continue
        value = data.get(key)
        entries = list(value) if OmegaConf.is_list(value) or isinstance(value, list) else [value]
        for entry in entries:
            path = Path(str(entry)).expanduser()
            if not path.exists():
                raise DatasetError(
                    f"The {role} {path.absolute()} does not exist. data.{key} must name image files "
                    f"({', '.join(sorted(IMAGE_EXTENSIONS))}) or folders of them, e.g. "
                    f"`data.{key}=/path/to/image.jpg` or `data.{key}=[a.jpg,b.jpg]`."
                )


# --- trainer -------------------------------------------------------------------------------------
def check_trainer(cfg: DictConfig) -> None:
    """A run of at least one epoch, on a device this machine has."""
    trainer = cfg.get("trainer")
    if trainer is None:
        return
    max_epochs, max_steps = trainer.get("max_epochs"), trainer.get("max_steps")
    # An iteration-counted reference (AdaIN: 160k iterations) ends on max_steps with max_epochs=-1.
    bounded_by_steps = isinstance(max_steps, int) and not isinstance(max_steps, bool) and max_steps > 0
    whole_epochs = isinstance(max_epochs, int) and not isinstance(max_epochs, bool) and max_epochs >= 1
    if not whole_epochs and not (bounded_by_steps and max_epochs in (-1, None)):
        raise ConfigError(
            f"trainer.max_epochs={max_epochs} is not a run length: it must be a whole number of at least "
            "1 (0 would save an untrained network as if it were a result, -1 or null would train without "
            "end). Set e.g. `trainer.max_epochs=10`; schedules and checkpoints follow it (or bound the run by "
            "iterations with `trainer.max_epochs=-1 trainer.max_steps=<n>`)."
        )
    check_trains_something(trainer)
    accelerator = str(trainer.get("accelerator", "cpu")).lower()
    check_precision_and_accelerator(trainer.get("precision"), accelerator)
    check_precision_runs_as_named(trainer.get("precision"), accelerator)
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        build = f"torch {torch.__version__} " + (
            "with CUDA, but no GPU is visible" if torch.version.cuda else "without CUDA"
        )
        raise ConfigError(
            f"trainer.accelerator={accelerator} (trainer={choice(cfg, 'trainer') or 'gpu'}) asks for a CUDA GPU, but this machine has "
            f"none for torch ({build}). Train on the CPU with `trainer=cpu` (the default), or run on a "
            "machine where `python -c 'import torch; print(torch.cuda.is_available())'` prints True."
        )
    if accelerator == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(
            "trainer.accelerator=mps asks for Apple's GPU, which this machine does not have; use trainer=cpu."
        )
    devices = trainer.get("devices")
    if accelerator in ("gpu", "cuda") and isinstance(devices, int) and devices > torch.cuda.device_count():
        raise ConfigError(
            f"trainer.devices={devices} but this machine has {torch.cuda.device_count()} GPU(s). Set "
            f"trainer.devices to at most {torch.cuda.device_count()} (or -1 for all of them)."
        )


def check_precision_and_accelerator(precision: Any, accelerator: str) -> None:
    """Values Lightning's Trainer accepts, named before the model is built (Lightning checks them last)."""
    from lightning.fabric.plugins.precision.precision import _PRECISION_INPUT_STR, _PRECISION_INPUT_STR_ALIAS
    from lightning.pytorch.accelerators import AcceleratorRegistry

    precisions = typing.get_args(_PRECISION_INPUT_STR) + typing.get_args(_PRECISION_INPUT_STR_ALIAS)
    if precision is not None and str(precision) not in precisions:
        raise ConfigError(
            f"trainer.precision={precision} is not a precision Lightning knows: use one of "
            f"{', '.join(precisions)}, e.g. `trainer.precision=32-true` (the default) or "
            "`trainer.precision=bf16-mixed` on a recent GPU."
        )
    accelerators = sorted({*AcceleratorRegistry.available_accelerators(), "gpu", "auto"})
    here = ", ".join(machine_accelerators())
    if accelerator not in accelerators:
        raise ConfigError(
            f"trainer.accelerator={accelerator} is not a device type: use one of {', '.join(accelerators)}, "
            f"or pick the hardware with `trainer=cpu` / `trainer=gpu` (this machine has: {here})."
        )
    # Device types Lightning knows but this machine lacks (a TPU, Habana's HPU): said here in one line,
    # rather than in Lightning's error and its install hint for a package that would not help.
    if accelerator not in ("auto", "cpu", "gpu", "cuda", "mps") and accelerator not in machine_accelerators():
        raise ConfigError(
            f"trainer.accelerator={accelerator} asks for a device this machine does not have: its "
            f"accelerators are {here}. Train with `trainer=cpu`"
            + (" or `trainer=gpu`" if "gpu" in machine_accelerators() else "")
            + ", or run on a machine with that device and its PyTorch support installed."
        )


def machine_accelerators() -> list[str]:
    """The device types usable in this process: cpu, plus gpu (CUDA), mps and any other accelerator
    Lightning has registered whose ``is_available()`` says so."""
    from lightning.pytorch.accelerators import AcceleratorRegistry

    found = ["cpu"]
    if torch.cuda.is_available():
        found.append("gpu")
    if torch.backends.mps.is_available():
        found.append("mps")
    for name in AcceleratorRegistry.available_accelerators():
        if name in ("cpu", "cuda", "gpu", "mps", "auto"):
            continue
        try:
            if AcceleratorRegistry[name]["accelerator"].is_available():
                found.append(name)
        except Exception:  # its package is missing or broken: not usable here
            continue
    return found


# Lightning runs these on the CPU as bf16-mixed (with a warning) while the saved config would say 16;
# float16 autocast is a CUDA feature.
_CUDA_ONLY_PRECISIONS = ("16-mixed", "16")


def check_precision_runs_as_named(precision: Any, accelerator: str) -> None:
    """A precision that would silently run as another one on this device is refused, so the run's saved
    config says what ran."""
    on_cpu = accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())
    if on_cpu and str(precision) in _CUDA_ONLY_PRECISIONS:
        raise ConfigError(
            f"trainer.precision={precision} is float16 autocast, which needs a CUDA GPU; on the CPU "
            f"Lightning would run bf16-mixed instead while this run's config recorded {precision}. Use "
            "`trainer.precision=bf16-mixed` (what the CPU supports) or `trainer.precision=32-true` (the "
            "default), or train on a GPU with `trainer=gpu`."
        )


def check_trains_something(trainer: DictConfig) -> None:
    """A run that would train no batch (its weights would be saved and used as if trained) is refused."""
    limit = trainer.get("limit_train_batches")
    if limit is None or isinstance(limit, bool) or not isinstance(limit, int | float):
        return
    if limit <= 0:
        raise ConfigError(
            f"trainer.limit_train_batches={limit} trains no batch: the run would end with untrained "
            "weights saved and translated as if they were a result. Leave it unset (every batch), or "
            "give a number of batches (e.g. `trainer.limit_train_batches=100`) or a fraction of the "
            "epoch above 0 (e.g. `trainer.limit_train_batches=0.25`)."
        )


def check_schedule(cfg: DictConfig) -> None:
    """A schedule that changes the rate within the run, and never raises it again at the end."""
    scheduler, trainer = cfg.get("scheduler"), cfg.get("trainer")
    if not isinstance(scheduler, DictConfig) or trainer is None:
        return
    max_epochs, target = trainer.get("max_epochs"), str(scheduler.get("_target_", ""))
    if target.endswith("StepLR") and int(scheduler.get("step_size", 1)) >= max_epochs:
        raise ConfigError(
            f"scheduler.step_size={scheduler.step_size} but the run has trainer.max_epochs={max_epochs}: "
            "the step schedule multiplies the rate by gamma every step_size epochs, so it would never "
            f"change. Set scheduler.step_size below {max_epochs} (e.g. {max(1, max_epochs // 2)}) or use "
            "scheduler=linear, which fits itself to the run."
        )
    if target.endswith("CosineAnnealingLR") and int(scheduler.get("T_max", max_epochs)) < max_epochs:
        raise ConfigError(
            f"scheduler.T_max={scheduler.T_max} is shorter than the run (trainer.max_epochs={max_epochs}): "
            "cosine annealing rises again after T_max epochs. Leave T_max at its default "
            "(${trainer.max_epochs}) or set it to the run's length."
        )


# --- data and sizes ------------------------------------------------------------------------------
def check_data_fits_model(cfg: DictConfig) -> None:
    """The data module gives the batches the model trains on."""
    model_class, data_class = target_class(cfg.get("model")), target_class(cfg.get("data"))
    needs, gives = model_data_kinds(cfg.get("model")), getattr(data_class, "data_kind", None)
    if not needs or not gives or gives in needs:
        return
    model_name = choice(cfg, "model") or model_class.__name__
    data_name = choice(cfg, "data") or data_class.__name__
    fixes = " or ".join(f"`{DATA_KINDS[kind][1]}`" for kind in needs)
    raise ConfigError(
        f"model={model_name} trains on {DATA_KINDS[needs[0]][0]}, but data={data_name} holds "
        f"{DATA_KINDS[gives][0]}: training would compare unrelated images or fail mid-step. Use "
        f"{fixes}, or leave data out for the embedded data of model={model_name} (data=embedded_{model_name})."
    )


def training_size(data: DictConfig) -> int | None:
    """The side of the square training crops, when the config fixes it."""
    crop = data.get("crop_size")
    if "crop" in str(data.get("preprocess", "")) and isinstance(crop, int) and not isinstance(crop, bool):
        return crop
    return None


def check_networks_fit_size(cfg: DictConfig) -> None:
    """Build the generator and discriminator on the meta device (no memory, no weights) and run one
    forward pass at the training crop size, so a crop too small for them, or an unknown network
    option, is named here instead of failing in the first step."""
    model, data = cfg.get("model"), cfg.get("data")
    if not isinstance(model, DictConfig) or not isinstance(data, DictConfig):
        return
    # Image-to-image models build their networks from these configs as they are; DCGAN completes
    # its configs first (norm by loss, size by data), so its nodes alone would not build.
    kinds = set(model_data_kinds(model))
    if not kinds or not kinds <= {"unpaired", "paired", "content_style"}:
        return
    size = training_size(data)
    batch = data.get("batch_size") if isinstance(data.get("batch_size"), int) else 1
    for name in ("generator", "discriminator"):
        node = model.get(name)
        if target_class(node) is None:
            continue
        config = OmegaConf.to_container(node, resolve=True)
        try:
            with torch.device("meta"):
                network = hydra.utils.instantiate(config)
        except Exception as error:
            cause = error.__cause__ or error
            if isinstance(cause, (ValueError, TypeError)):
                hint = nearest_argument_hint(str(config.get("_target_")), str(cause))
                raise ConfigError(f"model.{name} cannot be built: {str(cause).rstrip('.')}.{hint}") from None
            return  # anything else is not the config's fault: let the real build report it
        if size is None:
            continue
        channels = int(config.get("in_channels", 3))
        try:
            network.train()(torch.empty(batch, channels, size, size, device="meta"))
        except Exception as error:
            multiple = getattr(network, "size_multiple", None)
            what = (
                f"netG={config['netG']}"
                if "netG" in config
                else str(config.get("_target_")).rsplit(".", 1)[-1]
            )
            need = f" ({what} needs sides that are multiples of {multiple})" if multiple else ""
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            larger = multiple * max(1, -(-size // multiple)) if multiple else 2 * size
            smaller = {
                "generator": "model.generator.netG=resnet_6blocks",
                "discriminator": "model.discriminator.n_layers=2",
            }[name]
            raise ConfigError(
                f"data.crop_size={size} does not fit model.{name} ({what}): one training step at "
                f"{size}x{size} px would fail ({reason}){need}. Use a crop the network takes, e.g. "
                f"`data.crop_size={larger} data.load_size={max(larger, int(data.get('load_size') or 0))}`, "
                f"or a network for small images (e.g. `{smaller}`)."
            ) from None


# --- the quick starts' random-weights opt-in ------------------------------------------------------
def own_images(cfg: DictConfig) -> bool:
    """The user named their own content or style images, or chose a data option that reads them."""
    data = cfg.get("data") or {}
    data_option = choice(cfg, "data")
    return bool(data.get("content") or data.get("style")) or (
        data_option is not None and not str(data_option).startswith("embedded_")
    )


def drop_quick_start_random_weights(cfg: DictConfig) -> None:
    """A user's own images switch off the quick start's random-VGG opt-in.

    The quick starts of gatys, fast_style and adain opt in to a random VGG so the embedded demo runs
    without the ImageNet file; its output is not a stylisation. With the user's own images they want
    the real thing, so the loss goes back to ImageNet weights (a missing file then says how to fetch
    it). Passing ``loss.feature_net.weights=random`` on the command line keeps the random network.
    """
    feature_net = (cfg.get("loss") or {}).get("feature_net") or {}
    experiment = choice(cfg, "experiment")
    if feature_net.get("weights") != "random" or not str(experiment or "").endswith("_quickstart"):
        return
    if any(item.lstrip("+").startswith("loss.feature_net.weights=") for item in command_line_overrides(cfg)):
        return  # the user's own explicit choice
    if not own_images(cfg):
        return
    with open_dict(cfg):
        cfg.loss.feature_net.weights = "imagenet"
    log.info(
        "your own images: the quick start's random VGG (experiment=%s) is off and the loss uses ImageNet "
        "weights; `loss.feature_net.weights=random` keeps the random network (output is not a stylisation)",
        experiment,
    )
