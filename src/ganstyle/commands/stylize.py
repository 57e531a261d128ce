"""``ganstyle stylize CHECKPOINT INPUT... --output DIR``: apply a trained generator to image files.

INPUT may be files, folders (their images, not subfolders) or quoted globs (``"photos/**/*.jpg"``).
Every output keeps its input's size (or gets ``--size`` on the shorter side) and file name, as PNG
unless ``--format same``. Images are padded to what the network needs and cropped back, never
stretched; large ones run in overlapping tiles (``--tile auto``) so memory stays bounded. Unreadable
files are skipped with a warning and listed at the end; the exit code is 1 only when no image could
be stylised.

Examples::

    ganstyle stylize outputs/train/runs/<run>/checkpoints/last.ckpt photos/ --output stylized/
    ganstyle stylize last.ckpt "scans/*.tif" --output out --direction BtoA --size 1024 --format same
    ganstyle stylize last.ckpt huge.jpg --output out --tile 512 --overlap 128 --device cuda
"""

from __future__ import annotations

import argparse
import glob
from collections import defaultdict
from pathlib import Path

from ganstyle.commands.arguments import count_argument, overlap_argument, pixels_argument
from ganstyle.data.images import IMAGE_EXTENSIONS, image_size, list_images, load_rgb

GLOB_CHARACTERS = set("*?[")


def collect_inputs(patterns: list[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Image files named by ``patterns`` (files, folders, globs), in order, without repeats; plus
    ``(pattern, reason)`` for patterns that name nothing."""
    found: dict[Path, None] = {}
    missing: list[tuple[str, str]] = []
    for pattern in patterns:
        path = Path(pattern).expanduser()
        if path.is_dir():
            matches = list_images(path)
            if not matches:
                missing.append((pattern, "folder holds no image files (subfolders are not searched)"))
        elif path.is_file():
            matches = [path]
        elif GLOB_CHARACTERS & set(pattern):
            matches = [
                Path(match)
                for match in sorted(glob.glob(str(path), recursive=True))
                if Path(match).is_file() and Path(match).suffix.lower() in IMAGE_EXTENSIONS
            ]
            if not matches:
                missing.append((pattern, "the pattern matches no image files"))
        else:
            matches = []
            missing.append((pattern, "no such file or folder"))
        for match in matches:
            found.setdefault(match.resolve(), None)
    return list(found), missing


def output_path(source: Path, output_dir: Path, keep_format: bool) -> Path:
    return output_dir / (source.name if keep_format else f"{source.stem}.png")


def check_outputs(sources: list[Path], output_dir: Path, keep_format: bool) -> str | None:
    """A message when two inputs would write the same file or an output would overwrite an input."""
    by_target: dict[Path, list[Path]] = defaultdict(list)
    for source in sources:
        by_target[output_path(source, output_dir, keep_format).resolve()].append(source)
    clashes = [(target, group) for target, group in by_target.items() if len(group) > 1]
    if clashes:
        target, group = clashes[0]
        return (
            f"{len(clashes)} output file name(s) would be written by more than one input, e.g. {target.name} "
            f"from {', '.join(str(path) for path in group[:3])}. Stylise those folders into separate "
            "--output folders (or rename the files)."
        )
    overwritten = [
        source for source in sources if output_path(source, output_dir, keep_format).resolve() == source
    ]
    if overwritten:
        why = (
            "(--format same keeps each input's name and format)"
            if keep_format
            else "(results are written as <name>.png, the name of that input)"
        )
        fix = (
            "Choose another output folder, or drop --format same."
            if keep_format
            else "Choose another output folder."
        )
        return f"--output {output_dir} would overwrite the input {overwritten[0]} {why}. {fix}"
    return None


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    # soft_wrap: a long path is never broken across lines (Rich folds words at 80 columns off a terminal)
    console = Console(stderr=True, soft_wrap=True)
    sources, missing = collect_inputs(args.inputs)
    output_dir = Path(args.output).expanduser()
    keep_format = args.format == "same"
    problem = None
    if not sources:
        problem = "no input images: " + "; ".join(f"{pattern}: {reason}" for pattern, reason in missing)
    elif output_dir.exists() and not output_dir.is_dir():
        problem = f"--output {output_dir} is a file; pass a folder (it is created if missing)."
    else:
        problem = check_outputs(sources, output_dir, keep_format)
    if problem is None and args.alpha is not None and not 0.0 <= args.alpha <= 1.0:
        problem = f"--alpha {args.alpha} must lie in [0, 1] (0 keeps the content, 1 is the full style)."
    if problem:
        console.print(f"[red]error:[/red] {problem}")
        return 1

    from rich.markup import escape

    from ganstyle.commands.messages import for_cli
    from ganstyle.inference import CheckpointError, InferenceInputError, load

    try:
        styles = [load_rgb(path) for path in args.style] if args.style else None
        stylizer = load(
            args.checkpoint,
            direction=args.direction,
            device=args.device,
            size=args.size,
            tile=parse_tile(args.tile),
            overlap=args.overlap,
            stats_size=args.stats_size,
            exact_statistics=args.exact_stats,
            batch_size=args.batch_size,
            dropout=None if args.dropout is None else args.dropout == "on",
            style_images=styles,
            alpha=args.alpha,
            model_class=args.model_class,
            trusted=args.trust_checkpoint,
        )
    except (CheckpointError, InferenceInputError, ValueError) as error:
        console.print(f"[red]error:[/red] {escape(for_cli(error))}")
        return 1
    output_dir.mkdir(parents=True, exist_ok=True)
    console.print(f"{stylizer!r}: {len(sources)} image(s) -> {output_dir}")
    failures = [(Path(pattern), reason) for pattern, reason in missing]
    written = stylize_files(stylizer, sources, output_dir, keep_format, failures, console)
    if failures:
        console.print(f"[yellow]{len(failures)} input(s) skipped:[/yellow]")
        for path, reason in failures:
            console.print(f"  {path}: {reason}")
    console.print(f"{written} image(s) written to {output_dir}")
    return 0 if written else 1


def parse_tile(value: str) -> int | str | None:
    if value == "auto":
        return "auto"
    if value in ("off", "none", "0"):
        return None
    return int(value)


def tile_argument(value: str) -> str:
    if value in ("auto", "off", "none") or (value.isdigit() and int(value) >= 0):
        return value
    raise argparse.ArgumentTypeError(f"--tile {value!r}: use auto, off, or a tile size in pixels (e.g. 512)")


def stylize_files(
    stylizer, sources: list[Path], output_dir: Path, keep_format: bool, failures: list, console
) -> int:
    """Stylise ``sources`` in groups of one size (read from the headers first), write, return the count."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    groups: dict[tuple[int, int], list[Path]] = defaultdict(list)
    for source in sources:
        try:
            groups[image_size(source)].append(source)
        except Exception as error:  # Pillow raises many types for a file it cannot identify
            failures.append((source, f"not a readable image ({error})"))
    written = 0
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("stylizing", total=sum(len(group) for group in groups.values()))
        for group in groups.values():
            for start in range(0, len(group), stylizer.batch_size):
                chunk, images = [], []
                for source in group[start : start + stylizer.batch_size]:
                    try:
                        images.append(load_rgb(source))
                        chunk.append(source)
                    except ValueError as error:
                        failures.append((source, str(error).split(". ")[0]))
                        progress.console.print(f"[yellow]skipped[/yellow] {source}: unreadable")
                        progress.advance(task)
                for source, result in zip(chunk, stylizer.stylize_images(images) if images else []):
                    target = output_path(source, output_dir, keep_format)
                    try:
                        result.save(
                            target, **({"quality": 95} if target.suffix.lower() in (".jpg", ".jpeg") else {})
                        )
                        written += 1
                    except (OSError, ValueError, KeyError) as error:
                        failures.append((source, f"cannot write {target.name} ({error})"))
                    progress.advance(task)
    return written


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "stylize",
        help="apply a trained generator to image files, folders or globs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="a .ckpt file written by training")
    parser.add_argument("inputs", metavar="INPUT", nargs="+", help="image files, folders or quoted globs")
    parser.add_argument("--output", "-o", required=True, help="folder for the results (created if missing)")
    parser.add_argument(
        "--direction", default=None, help="AtoB or BtoA for two-way models (default: the model's first, AtoB)"
    )
    parser.add_argument(
        "--size", type=pixels_argument, default=None, help="resize so the shorter side is SIZE px first"
    )
    parser.add_argument(
        "--tile",
        type=tile_argument,
        default="auto",
        help="auto (default: tile images above about 2.4 MP), off, or a tile size in px",
    )
    parser.add_argument(
        "--overlap",
        type=overlap_argument,
        default=None,
        help="tile overlap in px (default: a quarter of the tile, 128)",
    )
    parser.add_argument(
        "--stats-size",
        type=pixels_argument,
        default=None,
        help="longer side of the downscaled copy that tiles take instance-norm statistics from (default 2 x tile)",
    )
    parser.add_argument(
        "--exact-stats",
        action="store_true",
        help="measure instance-norm statistics over all tiles at full resolution (exact, about 10x slower)",
    )
    parser.add_argument(
        "--batch-size", type=count_argument, default=4, help="same-size images (or tiles) per pass"
    )
    parser.add_argument(
        "--device", default="auto", choices=("auto", "cpu", "cuda", "mps"), help="default: auto"
    )
    parser.add_argument(
        "--format", choices=("png", "same"), default="png", help="png (default) or the input's own format"
    )
    parser.add_argument(
        "--style", nargs="+", default=None, help="style image(s) for models that take one (AdaIN)"
    )
    parser.add_argument("--alpha", type=float, default=None, help="style strength in [0, 1] (AdaIN)")
    parser.add_argument(
        "--dropout", choices=("on", "off"), default=None, help="dropout at inference (pix2pix); default off"
    )
    parser.add_argument("--model-class", default=None, help="the model class, for checkpoints that lack it")
    parser.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="allow Python objects beyond tensors in the checkpoint",
    )
    parser.set_defaults(func=run)
