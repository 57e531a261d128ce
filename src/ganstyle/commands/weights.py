"""``ganstyle fetch-weights``: download the pretrained weights files into the torch hub cache.

Run it once on a machine with internet access. On an offline machine, copy the files it reports into
``$TORCH_HOME/hub/checkpoints`` (default ``~/.cache/torch/hub/checkpoints``), or pass ``--dir`` to write
them somewhere to carry over.
"""

from __future__ import annotations

import argparse
import sys

from ganstyle.weights import WEIGHTS, WeightsDownloadError, WeightsFileError, cache_dir, fetch_weights


def run(args: argparse.Namespace) -> int:
    target = args.dir or cache_dir()
    print(f"Fetching {', '.join(args.kinds)} into {target}")
    try:
        paths = fetch_weights(args.kinds, directory=args.dir, force=args.force)
    except (WeightsDownloadError, WeightsFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for kind, path in zip(args.kinds, paths):
        print(f"{kind:14s} {path}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "fetch-weights",
        help="download VGG16/VGG19 and FID Inception weights into the torch hub cache",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--kinds",
        nargs="+",
        choices=sorted(WEIGHTS),
        default=list(WEIGHTS),
        help="which files (default: all)",
    )
    parser.add_argument(
        "--dir", default=None, help="folder to write to (default: $TORCH_HOME/hub/checkpoints)"
    )
    parser.add_argument("--force", action="store_true", help="download again even when a valid file is there")
    parser.set_defaults(func=run)
