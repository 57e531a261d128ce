"""``ganstyle export CHECKPOINT --format onnx|torchscript``: the generator as a standalone file.

The file takes ``(N, 3, H, W)`` float32 RGB in [0, 1] and returns the stylised images in [0, 1]
(``--range signed``: the generator's own [-1, 1]), for any H and W of at least the minimum recorded in
its metadata (5 px for the ResNet generator, 33 for unet_64): padding to the network's size multiple
happens inside.
After writing, the file is run once (onnxruntime, or torch.jit.load) on a random image and compared
with PyTorch; the largest difference is printed.

Examples::

    ganstyle export outputs/train/runs/<run>/checkpoints/last.ckpt --format onnx
    ganstyle export last.ckpt --format torchscript --direction BtoA --output g_ba.pt
    ganstyle export pix2pix.ckpt --format onnx --dropout off     # required when the generator has dropout
    ganstyle export adain.ckpt --format onnx --style starry.jpg   # AdaIN: the style is baked into the file
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PARITY_TOLERANCE = 1e-4  # float32 kernels of two runtimes differ by ~1e-6 on [0, 1] outputs


def run(args: argparse.Namespace) -> int:
    from ganstyle.commands.messages import for_cli
    from ganstyle.inference.export import (
        ExportError,
        check_dropout_choice,
        default_output_path,
        export_generator,
        parity_error,
    )
    from ganstyle.inference.loading import CheckpointError, inference_network, load_model, style_tensor

    height, width = args.size
    try:
        model = load_model(args.checkpoint, model_class=args.model_class, trusted=args.trust_checkpoint)
        dropout = None if args.dropout is None else args.dropout == "on"
        styles = [style_tensor(load_style(path)) for path in args.style] if args.style else None
        generator, info = inference_network(
            model, args.direction, dropout, style_images=styles, alpha=args.alpha
        )
        check_dropout_choice(info, dropout)
        output = (
            Path(args.output)
            if args.output
            else default_output_path(args.checkpoint, args.format, info.direction)
        )
        unit_range = args.range == "unit"
        path = export_generator(
            generator,
            info,
            output,
            args.format,
            example_size=(height, width),
            unit_range=unit_range,
            checkpoint=args.checkpoint,
        )
    except (CheckpointError, ExportError, ValueError) as error:
        print(f"error: {for_cli(error)}", file=sys.stderr)
        return 1
    print(f"wrote {path} ({info.describe()}, input range {'[0, 1]' if unit_range else '[-1, 1]'})")
    if args.no_check:
        return 0
    if info.dropout:
        print("check skipped: with dropout on, every run samples a different output")
        return 0
    try:
        error = parity_error(generator, info, path, (height + 1, width + 3), unit_range)
    except ImportError as missing:
        print(f"check skipped: {missing.name} is not installed (pip install 'ganstyle[export]')")
        return 0
    verdict = "ok" if error <= PARITY_TOLERANCE else "MISMATCH"
    print(f"check: max |exported - PyTorch| = {error:.2e} on a {height + 1}x{width + 3} image ({verdict})")
    return 0 if error <= PARITY_TOLERANCE else 1


def load_style(path: str):
    """A style image as RGB, with the data loader's checks (a missing or unreadable file is a ValueError)."""
    from ganstyle.data.images import load_rgb

    if not Path(path).is_file():
        raise ValueError(f"--style {path}: no such image file.")
    return load_rgb(path)


def positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {value}")
    return number


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a trained generator to ONNX or TorchScript",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="a .ckpt file written by training")
    parser.add_argument("--format", required=True, choices=("onnx", "torchscript"), help="the file format")
    parser.add_argument("--direction", default=None, help="AtoB or BtoA for two-way models (default: AtoB)")
    parser.add_argument(
        "--output",
        "-o",
        default=None,
        help="file to write (default: next to the checkpoint, <name>_<direction>.onnx|.pt)",
    )
    parser.add_argument(
        "--size",
        nargs=2,
        type=positive_int,
        default=(256, 256),
        metavar=("H", "W"),
        help="example input size for tracing and the check (default 256 256); the file takes any size",
    )
    parser.add_argument(
        "--dropout",
        choices=("on", "off"),
        default=None,
        help="required for generators with dropout (pix2pix): on samples like the paper, off is deterministic",
    )
    parser.add_argument(
        "--range",
        choices=("unit", "signed"),
        default="unit",
        help="pixel range in and out: unit [0, 1] (default) or signed [-1, 1]",
    )
    parser.add_argument(
        "--style",
        nargs="+",
        default=None,
        help="style image(s) baked into the file, for models that take one (AdaIN)",
    )
    parser.add_argument("--alpha", type=float, default=None, help="style strength in [0, 1] (AdaIN)")
    parser.add_argument("--no-check", action="store_true", help="skip running the file against PyTorch")
    parser.add_argument("--model-class", default=None, help="the model class, for checkpoints that lack it")
    parser.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="allow Python objects beyond tensors in the checkpoint",
    )
    parser.set_defaults(func=run)
