"""``ganstyle evaluate RUN_OR_CHECKPOINT [--dataset NAME]``: FID/KID on the test split, as the papers do.

Every test image resized to 256x256, no flips, FID and KID against the other domain's test images
with the FID Inception (``ganstyle fetch-weights --kinds fid_inception``); paired data adds PSNR/SSIM.
The table (printed, and written to ``<run>/evaluation.md`` or ``--output``) places the run beside
the papers' published numbers for that dataset. Examples::

    ganstyle evaluate outputs/train/runs/<run>                     # its last.ckpt, on its own data.root
    ganstyle evaluate outputs/train/runs/<run> --every-checkpoint  # every saved epoch; best and last marked
    ganstyle evaluate horse2zebra.ckpt --dataset horse2zebra       # an imported published generator
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ganstyle.commands.arguments import pixels_argument


def run(args: argparse.Namespace) -> int:
    from ganstyle.inference.loading import CheckpointError
    from ganstyle.reference.catalogue import CatalogueError, dataset, default_datasets_dir
    from ganstyle.reference.evaluation import (
        EvaluationError,
        dataset_of_run,
        evaluate,
        markdown_table,
        run_checkpoints,
        write_evaluation,
    )
    from ganstyle.weights import WeightsFileError, WeightsNotFoundError

    target = Path(args.target).expanduser()
    try:
        entry = dataset(args.dataset) if args.dataset else None
        if args.data_root:
            root = Path(args.data_root).expanduser()
        elif entry is not None:
            root = default_datasets_dir() / entry.top
        else:
            first = run_checkpoints(target, False)[0] if target.exists() else None
            root, name = dataset_of_run(first) if first is not None else (None, None)
            if name is not None and entry is None:  # a dataset experiment's run: the papers' numbers too
                try:
                    entry = dataset(name)
                except CatalogueError:
                    entry = None
            if root is None:
                raise EvaluationError(
                    f"Which test set? {target} does not record its data.root; pass --dataset NAME (see "
                    "`ganstyle datasets list`) or --data-root DIR."
                )
        if not root.is_dir():
            fetch = f" Fetch it with `ganstyle datasets fetch {entry.name}`." if entry is not None else ""
            raise EvaluationError(f"The dataset folder {root} does not exist.{fetch}")
        evaluation = evaluate(
            target,
            root,
            dataset_name=entry.name if entry else root.name,
            every_checkpoint=args.every_checkpoint,
            directions=[args.direction] if args.direction else None,
            size=args.size,
            weights=args.weights,
            weights_path=args.weights_path,
            device=args.device,
            published=entry.published if entry else None,
            paired_direction=args.paired_direction,
        )
    except (
        CatalogueError,
        EvaluationError,
        CheckpointError,
        WeightsNotFoundError,
        WeightsFileError,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    table = markdown_table(evaluation)
    print(table)
    if args.output:
        output = Path(args.output).expanduser()
    elif target.is_dir():
        output = target / "evaluation.md"
    else:
        output = target.with_name(f"{target.stem}_evaluation.md")
    print(f"written to {write_evaluation(evaluation, output)}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="FID/KID of a run or checkpoint on a test split, beside the papers' numbers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("target", metavar="RUN_OR_CHECKPOINT", help="a run folder or a .ckpt file")
    parser.add_argument("--dataset", default=None, help="a catalogue dataset (`ganstyle datasets list`)")
    parser.add_argument("--data-root", default=None, help="the dataset folder (default: the run's data.root)")
    parser.add_argument(
        "--every-checkpoint",
        action="store_true",
        help="score every checkpoint of the run; mark the best and last",
    )
    parser.add_argument(
        "--direction", choices=("AtoB", "BtoA"), default=None, help="default: every direction"
    )
    parser.add_argument(
        "--paired-direction",
        choices=("AtoB", "BtoA"),
        default="AtoB",
        help="paired data: which half is the input",
    )
    parser.add_argument(
        "--size", type=pixels_argument, default=256, help="square test size in px (papers: 256)"
    )
    parser.add_argument(
        "--weights",
        choices=("fid_inception", "random"),
        default="fid_inception",
        help="fid_inception (default); random: a plumbing check, values meaningless",
    )
    parser.add_argument("--weights-path", default=None, help="explicit FID Inception weights file")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--output", default=None, help="the Markdown table (default: <run>/evaluation.md)")
    parser.set_defaults(func=run)
