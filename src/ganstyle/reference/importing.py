"""Generators saved by the reference code, turned into ganstyle checkpoints.

The reference repositories save a generator as a bare state dict (``latest_net_G.pth``,
``latest_net_G_A.pth``; the published models are such files). ganstyle's networks use the reference's
module layout, so the parameter names are the same; what the file does not say is the architecture.
:func:`infer_generator` reads it from the tensors: each candidate the reference can build (ResNet
with 1..12 blocks, U-Net 32..512, instance or batch norm, CUT's anti-aliased resampling) is built on
the meta device and compared name by name and shape by shape with the file; exactly one must fit.

:func:`import_reference` then builds the ganstyle model around it (the reference's defaults for the
rest: PatchGAN, Adam 2e-4, the paper's loss) and writes a checkpoint that ``ganstyle stylize``,
``export``, ``evaluate`` and ``ganstyle.load`` take. It records where the weights came from and which
directions hold imported weights: a CycleGAN file is one generator, so the other direction is refused
at inference unless its file was imported too.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

MODEL_CLASSES = {
    "cyclegan": "ganstyle.models.cyclegan.CycleGAN",
    "cut": "ganstyle.models.cut.CUT",
    "pix2pix": "ganstyle.models.pix2pix.Pix2Pix",
}
# InstanceNorm layers of PyTorch < 0.4 saved running statistics; the reference deletes them on load
# (BaseModel.__patch_instance_norm_state_dict), and so does the import.
STALE_INSTANCE_NORM_KEYS = ("running_mean", "running_var", "num_batches_tracked")
# CUT's fixed blur filters: buffers of constant values, saved by some versions and not others.
BLUR_FILTER_KEYS = ("filt",)


class ReferenceImportError(ValueError):
    """A reference file that cannot be imported; the message says what the tensors show."""


@dataclass(frozen=True)
class GeneratorGuess:
    config: dict[str, Any]  # the generator's plain config (``_target_`` and arguments)
    description: str


def read_reference_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a reference ``.pth`` (``module.`` prefixes of DataParallel runs removed)."""
    if not path.is_file():
        raise ReferenceImportError(
            f"{path} is not a file; pass the reference's .pth (e.g. latest_net_G_A.pth)."
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as error:
        raise ReferenceImportError(
            f"Cannot read {path} as a PyTorch state dict ({error}). Pass the .pth file the reference code "
            "saved (checkpoints/<name>/latest_net_G.pth), not a truncated download."
        ) from error
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ReferenceImportError(
            f"{path} does not hold a state dict of tensors (found {type(state).__name__}); a ganstyle .ckpt "
            "needs no import: pass it to ganstyle stylize directly."
        )
    return {key.removeprefix("module."): value for key, value in state.items()}


def _candidate_configs(model: str, ngf: int, in_channels: int, out_channels: int) -> list[GeneratorGuess]:
    shared = {"in_channels": in_channels, "out_channels": out_channels, "ngf": ngf}
    guesses = []
    for norm in ("instance", "batch"):
        for blocks in range(1, 13):
            resnet = {"n_blocks": blocks, "norm": norm, "use_dropout": False}
            if model == "cut":
                for antialias in (True, False):
                    guesses.append(
                        GeneratorGuess(
                            {
                                "_target_": "ganstyle.networks.ResnetGenerator",
                                **shared,
                                **resnet,
                                "antialias": antialias,
                                "antialias_up": antialias,
                                "init_type": "xavier",
                                "init_gain": 0.02,
                            },
                            f"resnet_{blocks}blocks, {norm} norm, anti-aliasing {'on' if antialias else 'off'}",
                        )
                    )
            else:
                guesses.append(
                    GeneratorGuess(
                        {
                            "_target_": "ganstyle.networks.define_generator",
                            "netG": f"resnet_{blocks}blocks",
                            **shared,
                            "norm": norm,
                            "use_dropout": False,
                            "init_type": "normal",
                            "init_gain": 0.02,
                        },
                        f"resnet_{blocks}blocks, {norm} norm",
                    )
                )
        if model != "cut":
            for downs in range(5, 10):
                guesses.append(
                    GeneratorGuess(
                        {
                            "_target_": "ganstyle.networks.define_generator",
                            "netG": f"unet_{2**downs}",
                            **shared,
                            "norm": norm,
                            # pix2pix trains with dropout; CycleGAN's U-Net option without (--no_dropout).
                            "use_dropout": model == "pix2pix",
                            "init_type": "normal",
                            "init_gain": 0.02,
                        },
                        f"unet_{2**downs}, {norm} norm",
                    )
                )
    return guesses


def _shapes(state: dict[str, torch.Tensor], drop_stale: bool) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for key, value in state.items():
        if key.rpartition(".")[2] in BLUR_FILTER_KEYS:
            continue
        if drop_stale and key.rpartition(".")[2] in STALE_INSTANCE_NORM_KEYS:
            continue
        shapes[key] = tuple(value.shape)
    return shapes


def _first_conv(state: dict[str, torch.Tensor]) -> torch.Tensor:
    for key in ("model.1.weight", "model.model.0.weight"):  # ResNet (after its pad), U-Net
        if key in state and state[key].dim() == 4:
            return state[key]
    raise ReferenceImportError(
        "The file's tensors are not a reference generator: neither model.1.weight (ResNet) nor "
        f"model.model.0.weight (U-Net) is there (first keys: {', '.join(list(state)[:5])})."
    )


def _last_conv(state: dict[str, torch.Tensor]) -> torch.Tensor:
    convs = [key for key, value in state.items() if key.endswith("weight") and value.dim() == 4]
    return state[convs[-1]]


def infer_generator(state: dict[str, torch.Tensor], model: str) -> GeneratorGuess:
    """The one generator config whose parameters have exactly the file's names and shapes."""
    from ganstyle.models.base import build

    first = _first_conv(state)
    ngf, in_channels = int(first.shape[0]), int(first.shape[1])
    last = _last_conv(state)
    # ResNet's output conv is Conv2d(ngf, out, 7): weight (out, ngf, 7, 7); U-Net's is ConvTranspose2d(
    # 2 ngf, out, 4): weight (2 ngf, out, 4, 4).
    out_channels = int(last.shape[1] if "model.model." in next(iter(state)) else last.shape[0])
    matches, nearest = [], None
    for guess in _candidate_configs(model, ngf, in_channels, out_channels):
        with torch.device("meta"):
            try:
                network = build(guess.config)
            except (ValueError, TypeError):
                continue
        ours = _shapes(network.state_dict(), drop_stale=False)
        theirs = _shapes(state, drop_stale=guess.config["norm"] == "instance")
        if ours == theirs:
            matches.append(guess)
        else:
            differences = len(set(ours.items()) ^ set(theirs.items()))
            if nearest is None or differences < nearest[0]:
                nearest = (
                    differences,
                    guess,
                    sorted(set(theirs) - set(ours))[:3],
                    sorted(set(ours) - set(theirs))[:3],
                )
    if not matches:
        detail = ""
        if nearest is not None:
            _, guess, extra, missing = nearest
            detail = (
                f" The nearest is {guess.description}, which lacks {extra or 'nothing'} and has "
                f"{missing or 'nothing more'}."
            )
        raise ReferenceImportError(
            f"No {model} generator the reference code builds has exactly this file's tensors (ngf {ngf}, "
            f"{in_channels} -> {out_channels} channels).{detail} Is it a generator of --model {model}, saved "
            "by the reference code (not a discriminator, net_F, or a modified architecture)?"
        )
    # Norm layers with and without parameters can leave two configs equal in tensors (instance norm has
    # none; batch norm has some): the first, in candidate order, is the reference's default.
    return matches[0]


def _reference_hyperparameters(model: str, generator: dict[str, Any], mode: str) -> dict[str, Any]:
    """The reference's defaults around an imported generator (conf/model/<model>.yaml)."""
    norm = "batch" if model == "pix2pix" else "instance"
    discriminator = {
        "_target_": "ganstyle.networks.NLayerDiscriminator",
        # pix2pix's discriminator judges the (input, output) pair stacked on channels.
        "in_channels": generator["out_channels"] + (generator["in_channels"] if model == "pix2pix" else 0),
        "ndf": 64,
        "n_layers": 3,
        "norm": norm,
        "init_type": generator.get("init_type", "normal"),
        "init_gain": 0.02,
    }
    if model == "cut":
        discriminator["antialias"] = bool(generator.get("antialias", True))
    optimizer = {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 2.0e-4, "betas": [0.5, 0.999]}
    losses = {
        "cyclegan": {"gan_mode": "lsgan", "cycle_weight": 10.0, "identity_weight": 0.5},
        "cut": {
            "gan_mode": "lsgan",
            "nce_weight": 1.0 if mode == "cut" else 10.0,
            "nce_idt_weight": 1.0 if mode == "cut" else 0.0,
        },
        "pix2pix": {"gan_mode": "vanilla", "l1_weight": 100.0},
    }
    hyper_parameters: dict[str, Any] = {
        "generator": generator,
        "discriminator": discriminator,
        "optimizer": optimizer,
        "scheduler": None,
        "loss": losses[model],
    }
    if model == "cut":
        hyper_parameters["mode"] = mode
    return hyper_parameters


def import_reference(
    weights: Path,
    model: str,
    output: Path,
    weights_ba: Path | None = None,
    mode: str = "cut",
    source: str | None = None,
    direction: str = "AtoB",
) -> Path:
    """Write ``output``: a ganstyle checkpoint of ``model`` whose generator(s) carry the reference file's
    weights (``weights`` as ``direction``, AtoB unless a CycleGAN file translates the dataset's B to A,
    as zebra2horse does; for CycleGAN ``weights_ba`` as BtoA). Returns ``output``."""
    from ganstyle.inference.loading import MODEL_CLASS_KEY, REFERENCE_IMPORT_KEY, import_model_class
    from ganstyle.run.checkpointing import atomic_torch_save

    if model not in MODEL_CLASSES:
        raise ReferenceImportError(f"--model {model!r}: use one of {', '.join(MODEL_CLASSES)}.")
    if weights_ba is not None and model != "cyclegan":
        raise ReferenceImportError(f"--generator-ba applies to CycleGAN only; {model} has one generator.")
    if direction not in ("AtoB", "BtoA") or (direction == "BtoA" and (model != "cyclegan" or weights_ba)):
        raise ReferenceImportError(
            f"direction={direction!r}: a CycleGAN file alone may fill BtoA; every other import is AtoB."
        )
    state = read_reference_state_dict(weights)
    guess = infer_generator(state, model)
    files = {direction: (weights, state)}
    if weights_ba is not None:
        state_ba = read_reference_state_dict(weights_ba)
        guess_ba = infer_generator(state_ba, model)
        if guess_ba.config != guess.config:
            raise ReferenceImportError(
                f"{weights} is {guess.description} but {weights_ba} is {guess_ba.description}; CycleGAN's two "
                "generators share one architecture."
            )
        files["BtoA"] = (weights_ba, state_ba)
    cls = import_model_class(MODEL_CLASSES[model])
    hyper_parameters = _reference_hyperparameters(model, guess.config, mode)
    network_model = cls(**hyper_parameters)
    for filled, (path, tensors) in files.items():
        generator = network_model.inference_generator(filled if model == "cyclegan" else None)
        expected = generator.state_dict()
        loadable = {key: value for key, value in tensors.items() if key in expected}
        missing = [key for key in expected if key not in loadable]
        if missing and not all(key.rpartition(".")[2] in BLUR_FILTER_KEYS for key in missing):
            raise ReferenceImportError(f"{path} lacks {missing[:3]} for {guess.description}.")
        generator.load_state_dict(loadable, strict=False)
    import lightning

    checkpoint = {
        "state_dict": network_model.state_dict(),
        "hyper_parameters": dict(network_model.hparams),
        MODEL_CLASS_KEY: MODEL_CLASSES[model],
        "epoch": 0,
        "global_step": 0,
        "pytorch-lightning_version": lightning.__version__,
        REFERENCE_IMPORT_KEY: {
            "directions": list(files),
            "files": {filled: str(path) for filled, (path, _) in files.items()},
            "source": source or str(weights),
            "generator": guess.description,
        },
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    atomic_torch_save(checkpoint, output)
    return output


__all__ = [
    "ReferenceImportError",
    "import_reference",
    "infer_generator",
    "read_reference_state_dict",
]
