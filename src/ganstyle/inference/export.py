"""Export a trained generator to ONNX or TorchScript, ready for any image size.

The exported graph is :class:`ExportedGenerator`: the generator plus mirror padding to its size
multiple and the crop back, so the file takes any H and W of at least :func:`smallest_input_side`
(5 px for the ResNet generator, 33 for unet_64) with no preprocessing beyond the pixel range. ``unit_range=True`` (the default)
makes that range [0, 1] in and out, like image libraries; ``False`` exposes the generator's own
[-1, 1]. Batch, height and width are dynamic axes. The file records what a user needs to know
(range, size multiple, direction, dropout) as ONNX metadata properties or a TorchScript extra file
``ganstyle.json``.

Dropout: generators trained with dropout (pix2pix's U-Net) can keep it at inference, as the paper
does, to sample varied outputs, or turn it off for deterministic ones. The export must say which:
``dropout`` is required when the generator has dropout layers.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganstyle.inference.loading import GeneratorInfo

log = logging.getLogger(__name__)

FORMATS = ("onnx", "torchscript")
ONNX_OPSET = 18
METADATA_FILE = "ganstyle.json"  # TorchScript extra file with the metadata


class ExportError(ValueError):
    """The export cannot be made as asked; the message says why and how to ask differently."""


class ExportedGenerator(nn.Module):
    """``(N, 3, H, W)`` images -> stylised images of the same size; pads to ``size_multiple`` inside."""

    def __init__(self, generator: nn.Module, size_multiple: int, unit_range: bool = True) -> None:
        super().__init__()
        self.generator = generator
        self.size_multiple = size_multiple
        self.unit_range = unit_range

    def forward(self, images: Tensor) -> Tensor:
        height, width = images.shape[-2], images.shape[-1]
        extra_h = (self.size_multiple - height % self.size_multiple) % self.size_multiple
        extra_w = (self.size_multiple - width % self.size_multiple) % self.size_multiple
        x = images * 2.0 - 1.0 if self.unit_range else images
        # Bottom and right, like ganstyle.inference.tiling.padding_for, so the file matches
        # `ganstyle stylize`; a crop from 0 also lets torch.export prove the output size symbolically.
        x = F.pad(x, (0, extra_w, 0, extra_h), mode="reflect")
        y = self.generator(x)[..., :height, :width]
        return ((y + 1.0) / 2.0).clamp(0.0, 1.0) if self.unit_range else y


class SampledDropout(nn.Module):
    """Dropout that keeps sampling in an exported inference graph.

    Exporters remove ``nn.Dropout`` from inference graphs whatever its mode, so active dropout is
    written out with ``rand_like``: each call draws a new mask, as ``nn.Dropout`` in training mode
    does (``channels``: one draw per channel, as ``nn.Dropout2d``).
    """

    def __init__(self, p: float, channels: bool = False) -> None:
        super().__init__()
        self.p = p
        self.channels = channels
        self.scale = 0.0 if p >= 1.0 else 1.0 / (1.0 - p)

    def forward(self, x: Tensor) -> Tensor:
        noise = torch.rand_like(x[:, :, :1, :1] if self.channels and x.dim() == 4 else x)
        return x * (noise >= self.p).to(x.dtype) * self.scale


def with_sampled_dropout(generator: nn.Module) -> nn.Module:
    """A copy of ``generator`` whose active dropout layers are :class:`SampledDropout`."""
    generator = copy.deepcopy(generator)
    for name, module in list(generator.named_modules()):
        if isinstance(module, nn.modules.dropout._DropoutNd) and module.training:
            if type(module) not in (nn.Dropout, nn.Dropout2d):
                raise ExportError(
                    f"Exporting active {type(module).__name__} layers is not supported; use --dropout off."
                )
            parent_name, _, child = name.rpartition(".")
            parent = generator.get_submodule(parent_name) if parent_name else generator
            setattr(parent, child, SampledDropout(module.p, channels=isinstance(module, nn.Dropout2d)))
    return generator


def default_output_path(checkpoint: str | Path, fmt: str, direction: str | None) -> Path:
    """``<checkpoint folder>/<checkpoint name>_<direction>.onnx`` (``.pt`` for TorchScript)."""
    checkpoint = Path(checkpoint)
    suffix = ".onnx" if fmt == "onnx" else ".pt"
    return checkpoint.with_name(f"{checkpoint.stem}_{direction or 'generator'}{suffix}")


def smallest_input_side(info: GeneratorInfo) -> int:
    """The smallest image side the exported file takes: :class:`ExportedGenerator` reflect-pads it up
    to a multiple of ``size_multiple``, which must reach the generator's ``min_side``, and a
    reflection pad must be shorter than the side it mirrors."""
    multiple = max(1, info.size_multiple)
    side = 1
    while True:
        padded = -(-side // multiple) * multiple
        if padded >= info.min_side and padded - side < side:
            return side
        side += 1


def export_metadata(info: GeneratorInfo, unit_range: bool, checkpoint: str | Path | None) -> dict[str, str]:
    return {
        "ganstyle.model_class": info.model_class,
        "ganstyle.direction": info.direction or "",
        "ganstyle.input_range": "[0, 1]" if unit_range else "[-1, 1]",
        "ganstyle.output_range": "[0, 1]" if unit_range else "[-1, 1]",
        "ganstyle.layout": "NCHW, RGB, float32",
        "ganstyle.size_multiple": str(info.size_multiple),
        "ganstyle.min_side": str(smallest_input_side(info)),
        "ganstyle.dropout": "on" if info.dropout else ("off" if info.dropout_layers else "none"),
        "ganstyle.checkpoint": Path(checkpoint).name if checkpoint else "",
    }


def check_dropout_choice(info: GeneratorInfo, dropout: bool | None) -> None:
    """Refuse an export of a generator with dropout layers unless the choice was made explicitly."""
    if info.dropout_layers and dropout is None:
        raise ExportError(
            f"The {info.model_class.rsplit('.', 1)[-1]} generator has {info.dropout_layers} dropout layer(s), "
            "so the export must say whether they stay active: --dropout on keeps them sampling, as "
            "pix2pix does at test time (varied outputs, its noise source), --dropout off makes the "
            "output deterministic (API: dropout=True / False)."
        )


def export_generator(
    generator: nn.Module,
    info: GeneratorInfo,
    path: str | Path,
    fmt: str,
    *,
    example_size: tuple[int, int] = (256, 256),
    unit_range: bool = True,
    checkpoint: str | Path | None = None,
) -> Path:
    """Write ``generator`` (configured as ``info`` describes) to ``path`` as ONNX or TorchScript."""
    if fmt not in FORMATS:
        raise ExportError(f"format {fmt!r} is not supported; choose one of {', '.join(FORMATS)}.")
    min_side = smallest_input_side(info)
    if min(example_size) < min_side:
        raise ExportError(
            f"The example size {example_size[0]}x{example_size[1]} is smaller than the exported file takes "
            f"({min_side} px per side: it pads to multiples of {info.size_multiple} px and the generator "
            f"needs at least {info.min_side}); pass --size of at least {min_side} {min_side}."
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if info.dropout:
        generator = with_sampled_dropout(generator)
    wrapper = ExportedGenerator(generator, info.size_multiple, unit_range).eval()
    # Batch 2: an example batch of 1 would let the exporter specialise the batch axis to 1.
    example = torch.rand(2, 3, *example_size)
    example = example if unit_range else example * 2.0 - 1.0
    metadata = export_metadata(info, unit_range, checkpoint)
    with torch.no_grad():
        if fmt == "onnx":
            export_onnx(wrapper, example, path, metadata)
        else:
            export_torchscript(wrapper, example, path, metadata)
    return path


def export_onnx(wrapper: nn.Module, example: Tensor, path: Path, metadata: dict[str, str]) -> None:
    """torch.export-based ONNX with dynamic batch, height and width."""
    from torch.export import Dim

    # Dim.DYNAMIC rather than named ranges: the padding's size arithmetic creates guards torch.export
    # cannot prove for a range, and named dims turn those into errors; min_side is in the metadata.
    shapes = ({0: Dim.DYNAMIC, 2: Dim.DYNAMIC, 3: Dim.DYNAMIC},)
    # The exporter prints its progress and deprecation chatter; a failure raises with the details.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            wrapper,
            (example,),
            dynamo=True,
            dynamic_shapes=shapes,
            input_names=["images"],
            output_names=["stylized"],
            opset_version=ONNX_OPSET,
            verbose=False,
        )
    for key, value in metadata.items():
        program.model.metadata_props[key] = value
    program.save(str(path))


def export_torchscript(wrapper: nn.Module, example: Tensor, path: Path, metadata: dict[str, str]) -> None:
    """Scripted when the generator allows it (exact control flow), traced otherwise."""
    try:
        module = torch.jit.script(wrapper)
    except Exception as error:  # scripting rejects some Python constructs; tracing records one run
        log.info("torch.jit.script failed (%s); tracing instead", str(error).splitlines()[0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = torch.jit.trace(wrapper, example, check_trace=False)
    module.save(str(path), _extra_files={METADATA_FILE: json.dumps(metadata, indent=1)})


def run_exported(path: str | Path, images: Tensor) -> Tensor:
    """Run an exported file on ``images``: onnxruntime for ``.onnx``, torch.jit for TorchScript."""
    path = Path(path)
    if path.suffix == ".onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (output,) = session.run(None, {session.get_inputs()[0].name: images.cpu().numpy()})
        return torch.from_numpy(output)
    return torch.jit.load(str(path), map_location="cpu")(images.cpu())


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The ganstyle metadata stored in an exported file."""
    path = Path(path)
    if path.suffix == ".onnx":
        import onnx

        model = onnx.load(str(path), load_external_data=False)
        return {prop.key: prop.value for prop in model.metadata_props if prop.key.startswith("ganstyle.")}
    extra = {METADATA_FILE: ""}
    torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    return json.loads(extra[METADATA_FILE])


def parity_error(
    generator: nn.Module, info: GeneratorInfo, path: str | Path, size: tuple[int, int], unit_range: bool
) -> float:
    """Largest absolute difference between the file and PyTorch on one random image of ``size``."""
    images = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(0))
    images = images if unit_range else images * 2.0 - 1.0
    with torch.no_grad():
        expected = ExportedGenerator(generator, info.size_multiple, unit_range)(images)
        return float((run_exported(path, images) - expected).abs().max())
