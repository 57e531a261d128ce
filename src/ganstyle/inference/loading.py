"""Rebuild a trained model from its checkpoint file alone and take out the network that stylises.

A ganstyle checkpoint is a Lightning checkpoint whose ``hyper_parameters`` are plain data (network
configs with ``_target_``), plus ``ganstyle_model_class``, the model's class path, written by
``ImageModel.on_save_checkpoint``. The model is rebuilt as ``cls(**hyper_parameters)`` and its weights
loaded strictly, without Hydra or the run folder. For checkpoints written before the class path was
stored, it is read from the run's ``.hydra/config.yaml`` next to ``checkpoints/``, or given explicitly.

Models plug in through one method, ``inference_generator(direction=None, *, style_images=None,
alpha=None, ...)``, and the directions and conditioning they declare (``inference_directions``,
``inference_conditioning``; see :class:`ganstyle.models.base.ImageModel`); nothing here knows a
particular model.
"""

from __future__ import annotations

import importlib
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ganstyle.weights import torch_load_problem

if TYPE_CHECKING:  # Lightning is imported only once a model is loaded (see import_model_class)
    from ganstyle.models.base import ImageModel

MODEL_CLASS_KEY = "ganstyle_model_class"
# Written by `ganstyle import-reference` (ganstyle.reference.importing): where the weights came from and
# which directions they fill.
REFERENCE_IMPORT_KEY = "ganstyle_reference_import"


class CheckpointError(ValueError):
    """A checkpoint file cannot be used for inference; the message says why and what to do."""


@dataclass(frozen=True)
class GeneratorInfo:
    """What inference and export need to know about a generator besides its weights."""

    model_class: str
    direction: str | None
    size_multiple: int
    min_side: int
    dropout_layers: int  # nn.Dropout* modules in the generator
    dropout: bool  # whether they are active (sampling) at inference

    def describe(self) -> str:
        direction = f" {self.direction}" if self.direction else ""
        dropout = f", dropout {'on' if self.dropout else 'off'}" if self.dropout_layers else ""
        return (
            f"{self.model_class.rsplit('.', 1)[-1]}{direction} (multiple of {self.size_multiple} px{dropout})"
        )


def read_checkpoint(path: str | Path, trusted: bool = False) -> dict[str, Any]:
    """The checkpoint's contents, on the CPU. Tensors and plain data only unless ``trusted``."""
    path = Path(path).expanduser()
    if not path.exists():
        raise CheckpointError(
            f"Checkpoint {path} does not exist. Training writes them to "
            "outputs/<task>/runs/<run>/checkpoints/ (last.ckpt and the best epochNNN.ckpt)."
        )
    if not path.is_file():
        raise CheckpointError(
            f"Checkpoint {path} is a folder; pass a .ckpt file inside it, e.g. {path}/last.ckpt."
        )
    try:
        # weights_only: a checkpoint from elsewhere cannot run code while it is read.
        checkpoint = torch.load(path, map_location="cpu", weights_only=not trusted)
    except pickle.UnpicklingError as error:
        if not zipfile.is_zipfile(path):  # torch.save writes zip archives; this is something else
            raise CheckpointError(
                f"Cannot read {path} as a PyTorch checkpoint: it is not a torch.save archive. Pass a .ckpt "
                "file that training wrote."
            ) from error
        raise CheckpointError(
            f"Checkpoint {path} holds Python objects other than tensors and plain data, which are not "
            f"loaded by default because unpickling them can run code ({torch_load_problem(error)}). "
            "If you trust the file, load it with trusted=True (CLI: --trust-checkpoint)."
        ) from error
    except (RuntimeError, EOFError, OSError) as error:
        raise CheckpointError(
            f"Cannot read {path} as a PyTorch checkpoint: {error}. The file is truncated, still being "
            "written, or not a checkpoint; pass a .ckpt file that training wrote."
        ) from error
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        kind = (
            f"a dict with keys {sorted(checkpoint)[:6]}"
            if isinstance(checkpoint, dict)
            else type(checkpoint).__name__
        )
        raise CheckpointError(
            f"{path} is not a ganstyle (Lightning) checkpoint: it holds {kind}, without 'state_dict'. A bare "
            "state dict (e.g. the CycleGAN authors' latest_net_G_A.pth) has no model configuration: build "
            "the generator yourself, load_state_dict it, and wrap it in ganstyle.inference.Stylizer."
        )
    if "hyper_parameters" not in checkpoint:
        raise CheckpointError(
            f"{path} is a Lightning checkpoint without hyper_parameters, so the model cannot be rebuilt from "
            "it. ganstyle models call save_hyperparameters(); was it written by another project?"
        )
    return checkpoint


def model_class_path(checkpoint: dict[str, Any], path: Path, model_class: str | None = None) -> str:
    """The model's import path: explicit, from the checkpoint, or from the run's Hydra config."""
    if model_class:
        return model_class
    if checkpoint.get(MODEL_CLASS_KEY):
        return str(checkpoint[MODEL_CLASS_KEY])
    hydra_config = path.resolve().parent.parent / ".hydra" / "config.yaml"
    if hydra_config.is_file():
        from omegaconf import OmegaConf

        target = OmegaConf.select(OmegaConf.load(hydra_config), "model._target_")
        if target:
            return str(target)
    raise CheckpointError(
        f"{path} does not say which model class wrote it (no '{MODEL_CLASS_KEY}' entry and no "
        f"{hydra_config}). Pass it explicitly: model_class='ganstyle.models.cyclegan.CycleGAN' "
        "(CLI: --model-class ganstyle.models.cyclegan.CycleGAN)."
    )


def import_model_class(class_path: str) -> type:
    module_name, _, class_name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as error:
        raise CheckpointError(
            f"The checkpoint's model class {class_path!r} cannot be imported ({error}). It was written by a "
            "ganstyle version that has this model; install that version, or pass the class that replaced "
            "it with model_class=... (CLI: --model-class)."
        ) from error
    import lightning.pytorch as pl

    from ganstyle.models.base import ImageModel

    if not (isinstance(cls, type) and issubclass(cls, pl.LightningModule)):
        raise CheckpointError(
            f"{class_path!r} is not a LightningModule class, so it cannot load a checkpoint."
        )
    if not issubclass(cls, ImageModel):
        raise CheckpointError(
            f"{class_path!r} is a LightningModule but not a ganstyle model (a subclass of "
            "ganstyle.models.base.ImageModel), so ganstyle cannot take a generator out of it."
        )
    return cls


def load_model(
    checkpoint_path: str | Path, model_class: str | None = None, trusted: bool = False
) -> nn.Module:
    """The trained LightningModule of a checkpoint, on the CPU, in eval mode, without Hydra."""
    path = Path(checkpoint_path).expanduser()
    checkpoint = read_checkpoint(path, trusted=trusted)
    class_path = model_class_path(checkpoint, path, model_class)
    cls = import_model_class(class_path)
    hyper_parameters = dict(checkpoint["hyper_parameters"])
    try:
        model = cls(**hyper_parameters)
    except TypeError as error:
        raise CheckpointError(
            f"{class_path} cannot be built from the hyperparameters in {path} ({error}). The checkpoint was "
            "written by a different version of the model; use the ganstyle version that trained it."
        ) from error
    missing, unexpected = model.load_state_dict(checkpoint["state_dict"], strict=False)
    if missing or unexpected:
        # A model with no network to apply (Gatys optimises one image, stored as a tensor the fresh
        # model lacks) says so, and where its result is, instead of listing tensors.
        explained = no_network_message(model, path)
        if explained:
            raise CheckpointError(explained)
        raise CheckpointError(
            f"The weights in {path} do not fit {class_path} built from its own hyperparameters: "
            f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, unexpected "
            f"{unexpected[:5]}{'...' if len(unexpected) > 5 else ''}. Was the file edited, or written by "
            "another model class (check --model-class)?"
        )
    # A reference import fills some generators only (one CycleGAN file is one direction).
    model.imported_directions = imported_directions(checkpoint)
    return model.eval()


def imported_directions(checkpoint: dict[str, Any]) -> list[str] | None:
    """The directions whose weights ``ganstyle import-reference`` filled; None for a trained checkpoint."""
    record = checkpoint.get(REFERENCE_IMPORT_KEY)
    return list(record.get("directions") or []) if isinstance(record, dict) else None


def usable_directions(model: ImageModel) -> list[str]:
    """The directions ``model`` translates with trained weights: its ``inference_directions``, less
    those a reference import left untrained; empty for one-way models (they take no direction)."""
    imported = model.imported_directions
    return [
        direction for direction in model.inference_directions if imported is None or direction in imported
    ]


def no_network_message(model: ImageModel, path: Path) -> str | None:
    """The model's own explanation when it has no generator to apply to images, with the checkpoint's
    run folder result when one is there; None for models that have one."""
    try:
        model.inference_generator()
    except NotImplementedError as error:
        result = path.resolve().parent.parent / "stylized.png"
        found = f" This checkpoint's run saved its result as {result}." if result.is_file() else ""
        return f"{path} holds a {type(model).__name__}. {error}{found}"
    except Exception:  # a model that needs arguments (style images) has a generator
        return None
    return None


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/``"auto"``: CUDA when available, then Apple's MPS, else the CPU."""
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CheckpointError("device='cuda' was requested but torch sees no CUDA GPU; use 'cpu' or 'auto'.")
    return device


def count_dropout(module: nn.Module) -> int:
    return sum(isinstance(layer, nn.modules.dropout._DropoutNd) for layer in module.modules())


def set_dropout(module: nn.Module, active: bool) -> None:
    """Switch only the dropout layers between sampling (``active``) and identity; the rest stays in eval."""
    for layer in module.modules():
        if isinstance(layer, nn.modules.dropout._DropoutNd):
            layer.train(active)


def inference_network(
    model: ImageModel, direction: str | None = None, dropout: bool | None = None, **conditioning: Any
) -> tuple[nn.Module, GeneratorInfo]:
    """The model's inference generator in eval mode with frozen weights, and what to know about it.

    ``dropout=None`` leaves dropout layers off (deterministic output); pix2pix's paper keeps them on
    at test time as its noise source: pass ``dropout=True`` for that. ``conditioning`` (AdaIN's
    ``style_images``, ``alpha``) is passed on when the model lists it in ``inference_conditioning``;
    a value of None is not passed.
    """
    class_path = f"{type(model).__module__}.{type(model).__qualname__}"
    directions = model.inference_directions
    if direction is not None and directions and direction not in directions:
        raise CheckpointError(
            f"{class_path} translates in the directions {', '.join(directions)}; got {direction!r}."
        )
    if direction is not None and not directions:
        raise CheckpointError(
            f"{class_path} has one generator (its direction was fixed when it was trained), so direction="
            f"{direction!r} does not apply; leave the direction out."
        )
    usable = usable_directions(model)
    if direction is not None and directions and direction not in usable:
        raise CheckpointError(
            f"This checkpoint was imported from the reference code's generator file for "
            f"{', '.join(usable)} only, so {direction} has untrained weights. Import that direction's "
            "file too (`ganstyle import-reference A.pth --generator-ba B.pth ...`) or leave the direction out."
        )
    direction = direction or (usable[0] if usable else None)
    given = {name: value for name, value in conditioning.items() if value is not None}
    unknown = [name for name in given if name not in model.inference_conditioning]
    if unknown:
        raise CheckpointError(
            f"{class_path} takes no {', '.join(unknown)}: style images and alpha condition models that "
            "transfer an arbitrary style (AdaIN); this model's style was learnt in training."
        )
    try:
        generator = model.inference_generator(direction, **given)
    except (NotImplementedError, ValueError) as error:  # e.g. DCGAN, Gatys, AdaIN without a style
        raise CheckpointError(str(error)) from error
    generator.eval().requires_grad_(False)
    layers = count_dropout(generator)
    set_dropout(generator, bool(dropout) and layers > 0)
    size_multiple = int(getattr(generator, "size_multiple", 1))
    info = GeneratorInfo(
        model_class=class_path,
        direction=direction,
        size_multiple=size_multiple,
        min_side=int(getattr(generator, "min_side", 2 * size_multiple)),
        dropout_layers=layers,
        dropout=bool(dropout) and layers > 0,
    )
    return generator, info


def load(
    checkpoint: str | Path,
    direction: str | None = None,
    device: str | torch.device | None = None,
    *,
    size: int | None = None,
    tile: int | str | None = "auto",
    overlap: int | None = None,
    stats_size: int | None = None,
    exact_statistics: bool = False,
    batch_size: int = 4,
    dropout: bool | None = None,
    style_images: list | None = None,
    alpha: float | None = None,
    model_class: str | None = None,
    trusted: bool = False,
):
    """A :class:`~ganstyle.inference.Stylizer` for a checkpoint: ``stylizer(image) -> image``.

    Args:
        checkpoint: a ``.ckpt`` file written by ganstyle training.
        direction: "AtoB" or "BtoA" for two-way models (CycleGAN); None picks the model's first
            (AtoB). One-way models take None.
        device: "cpu", "cuda", or None/"auto" for the GPU when there is one.
        size, tile, overlap, stats_size, exact_statistics, batch_size: see
            :class:`~ganstyle.inference.Stylizer`.
        dropout: dropout layers on at inference (pix2pix's test-time noise); default off.
        style_images, alpha: for models that take a style per call (AdaIN): PIL images or
            ``(3, H, W)`` tensors in [0, 1], and the content/style blend in [0, 1].
        model_class: the model's class path, for checkpoints that do not store it.
        trusted: also unpickle Python objects other than tensors and plain data.
    """
    model = load_model(checkpoint, model_class=model_class, trusted=trusted)
    return model_stylizer(
        model,
        Path(checkpoint).name,
        direction=direction,
        device=device,
        size=size,
        tile=tile,
        overlap=overlap,
        stats_size=stats_size,
        exact_statistics=exact_statistics,
        batch_size=batch_size,
        dropout=dropout,
        style_images=style_images,
        alpha=alpha,
    )


def model_stylizer(
    model: ImageModel,
    name: str,
    direction: str | None = None,
    device: str | torch.device | None = None,
    *,
    size: int | None = None,
    tile: int | str | None = "auto",
    overlap: int | None = None,
    stats_size: int | None = None,
    exact_statistics: bool = False,
    batch_size: int = 4,
    dropout: bool | None = None,
    style_images: list | None = None,
    alpha: float | None = None,
    style_weights: list[float] | None = None,
    preserve_color: bool | None = None,
):
    """:func:`load` for a model already loaded (``load_model``): what a server that keeps models in
    memory uses, so it applies them exactly as ``ganstyle stylize`` does. ``name`` labels it."""
    from ganstyle.inference.stylize import Stylizer

    target = resolve_device(device)
    styles = [style_tensor(image) for image in style_images] if style_images else None
    generator, info = inference_network(
        model,
        direction,
        dropout,
        style_images=styles,
        alpha=alpha,
        style_weights=style_weights,
        preserve_color=preserve_color or None,
    )
    return Stylizer(
        generator.to(target),
        size_multiple=info.size_multiple,
        min_side=info.min_side,
        device=target,
        size=size,
        tile=tile,
        overlap=overlap,
        stats_size=stats_size,
        exact_statistics=exact_statistics,
        batch_size=batch_size,
        description=f"{info.describe()} from {name}",
    )


def style_tensor(image: Any) -> torch.Tensor:
    """A style image (PIL, or ``(3, H, W)`` in [0, 1]) as ``(1, 3, H, W)`` in [-1, 1]."""
    from ganstyle.inference.stylize import pil_to_tensor

    if isinstance(image, torch.Tensor):
        return (image.float() * 2.0 - 1.0)[None] if image.dim() == 3 else image.float() * 2.0 - 1.0
    return pil_to_tensor(image)[None].float() / 127.5 - 1.0
