"""``ganstyle import-reference FILE.pth --model cyclegan|cut|pix2pix --output NAME.ckpt``.

Turns a generator saved by the reference code (``latest_net_G.pth``, ``latest_net_G_A.pth``, the
published ``.pth`` files) into a ganstyle checkpoint for ``ganstyle stylize``, ``export``,
``evaluate`` and ``ganstyle.load``. The architecture (ResNet blocks or U-Net depth, ngf, norm,
anti-aliasing) is read from the tensors. Example::

    ganstyle import-reference checkpoints/horse2zebra/latest_net_G_A.pth --model cyclegan \\
        --generator-ba checkpoints/horse2zebra/latest_net_G_B.pth --output horse2zebra.ckpt
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from ganstyle.inference.loading import CheckpointError
    from ganstyle.reference.importing import ReferenceImportError, import_reference

    try:
        output = import_reference(
            Path(args.weights).expanduser(),
            args.model,
            Path(args.output).expanduser(),
            weights_ba=Path(args.generator_ba).expanduser() if args.generator_ba else None,
            mode=args.mode,
            direction=args.direction,
        )
    except (ReferenceImportError, CheckpointError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {output}; apply it: ganstyle stylize {output} photos/ --output results/")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "import-reference",
        help="turn a reference code generator (.pth) into a ganstyle checkpoint",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("weights", metavar="FILE.pth", help="the generator the reference code saved (A -> B)")
    parser.add_argument("--model", required=True, choices=("cyclegan", "cut", "pix2pix"))
    parser.add_argument("--output", "-o", required=True, help="the ganstyle checkpoint to write")
    parser.add_argument(
        "--generator-ba", default=None, help="CycleGAN: the B -> A generator (latest_net_G_B.pth)"
    )
    parser.add_argument(
        "--mode", choices=("cut", "fastcut"), default="cut", help="CUT: which objective it had"
    )
    parser.add_argument(
        "--direction",
        choices=("AtoB", "BtoA"),
        default="AtoB",
        help="CycleGAN: the dataset direction FILE.pth translates (BtoA for e.g. zebra2horse); default AtoB",
    )
    parser.set_defaults(func=run)
