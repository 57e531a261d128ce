"""``ganstyle fid DIR_A DIR_B``: FID (and KID) between two folders of images.

Uses the same code as the validation metrics (:class:`ganstyle.metrics.DistributionMetrics`), so the
numbers match what training logs for the same images. Needs the FID Inception weights (see
``ganstyle fetch-weights``); ``--weights random`` is a plumbing check whose values mean nothing.

Example::

    ganstyle fid results/horse2zebra/fake_B datasets/horse2zebra/testB --kid
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from ganstyle.commands.arguments import count_argument, pixels_argument
from ganstyle.data.images import DatasetError, list_images, load_rgb
from ganstyle.weights import WeightsFileError, WeightsNotFoundError

INCEPTION_FEATURES = (64, 192, 768, 2048)  # as in ganstyle.metrics.fid (not imported here: keeps --help fast)


def _load(path: Path, size: int | None) -> torch.Tensor:
    from ganstyle.reference.evaluation import square, to_metric_tensor

    image = load_rgb(path)
    return to_metric_tensor(image if size is None else square(image, size))


def folder_images(folder: Path) -> list[Path]:
    """The image files of one compared folder; a DatasetError when it cannot be compared."""
    if not folder.exists():
        raise DatasetError(f"{folder} does not exist; pass two folders of image files.")
    if not folder.is_dir():
        raise DatasetError(f"{folder} is a file, not a folder; pass two folders of image files.")
    paths = list_images(folder)
    if len(paths) < 2:
        raise DatasetError(
            f"{folder} holds {len(paths)} image file(s) directly inside it (subfolders are not read); FID "
            "compares two sets of at least 2 images each."
        )
    return paths


def _add_folder(metrics, paths: list[Path], real: bool, batch_size: int, size, device) -> int:
    for start in range(0, len(paths), batch_size):
        images = [_load(path, size) for path in paths[start : start + batch_size]]
        shapes = {tuple(image.shape) for image in images}
        # Images of different sizes cannot share a batch; the Inception resizes each to 299x299 anyway.
        groups = [torch.stack(images)] if len(shapes) == 1 else [image[None] for image in images]
        for group in groups:
            metrics.update(group.to(device), real=real)
    return len(paths)


def run(args: argparse.Namespace) -> int:
    from ganstyle.metrics.fid import DistributionMetrics  # torchmetrics: imported only when the command runs

    # The folders first: an empty or missing folder is the user's first problem, whatever the weights.
    problems, folders = [], []
    for folder in (Path(args.dir_a), Path(args.dir_b)):
        try:
            folders.append(folder_images(folder))
        except DatasetError as error:
            problems.append(str(error))
    if problems:
        print(f"error: {' '.join(problems)}", file=sys.stderr)
        return 1
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    try:
        metrics = DistributionMetrics(
            weights=args.weights,
            weights_path=args.weights_path,
            feature=args.feature,
            kid=args.kid,
            kid_subsets=args.kid_subsets,
            kid_subset_size=args.kid_subset_size,
            weights_config_key="--weights-path",
        ).to(device)
    except (WeightsNotFoundError, WeightsFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        n_a = _add_folder(metrics, folders[0], True, args.batch_size, args.size, device)
        n_b = _add_folder(metrics, folders[1], False, args.batch_size, args.size, device)
    except DatasetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    scores = metrics.compute()
    print(
        f"images: {n_a} in {args.dir_a}, {n_b} in {args.dir_b}; features: {args.feature}, weights: {args.weights}"
    )
    print(f"fid     {scores['fid']:.4f}")
    if "kid" in scores:
        print(f"kid     {scores['kid']:.6f} +- {scores['kid_std']:.6f}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "fid",
        help="FID/KID between two image folders",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("dir_a", metavar="DIR_A", help="first folder (treated as the real images)")
    parser.add_argument("dir_b", metavar="DIR_B", help="second folder (treated as the generated images)")
    parser.add_argument("--kid", action="store_true", help="also compute KID (mean +- std over subsets)")
    parser.add_argument("--kid-subsets", type=int, default=100, help="KID subsets (default 100)")
    parser.add_argument(
        "--kid-subset-size",
        type=int,
        default=1000,
        help="KID subset size, clamped to the image count (default 1000)",
    )
    parser.add_argument(
        "--weights",
        choices=("fid_inception", "random"),
        default="fid_inception",
        help="fid_inception (default): torch-fidelity's FID Inception file; random: smoke test, values meaningless",
    )
    parser.add_argument(
        "--weights-path", default=None, help="explicit path of the FID Inception weights file"
    )
    parser.add_argument(
        "--feature",
        type=int,
        choices=INCEPTION_FEATURES,
        default=2048,
        help="Inception feature size (default 2048)",
    )
    parser.add_argument(
        "--batch-size", type=count_argument, default=50, help="images per Inception batch (default 50)"
    )
    parser.add_argument(
        "--size",
        type=pixels_argument,
        default=None,
        help="resize every image to SIZE x SIZE first (default: keep sizes)",
    )
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.set_defaults(func=run)
