"""``ganstyle datasets list | fetch NAME``: the papers' datasets, one command each.

Examples::

    ganstyle datasets list
    ganstyle datasets fetch horse2zebra                   # into datasets/horse2zebra (or $GANSTYLE_DATASETS)
    ganstyle datasets fetch facades --root /data          # pix2pix's facades tarball
    ganstyle datasets fetch horse2zebra --url https://mirror.example/horse2zebra.zip
    ganstyle datasets fetch horse2zebra --archive horse2zebra.zip   # copied by hand (no internet)

A download resumes after an interruption, tries the next address when one fails and is unpacked into
place only when whole: ``datasets/NAME/`` is either absent or complete.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _size(folder: Path) -> str:
    from ganstyle.reference.fetching import folder_size

    return f"{folder_size(folder) / 1e6:.0f} MB"


def run_list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from ganstyle.reference.catalogue import CatalogueError, datasets, default_datasets_dir
    from ganstyle.reference.fetching import check_layout

    root = Path(args.root) if args.root else default_datasets_dir()
    try:
        known = datasets()
    except CatalogueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    table = Table(title=f"datasets (present: in {root})")
    for column in ("name", "kind", "archive", "model", "experiment", "present"):
        table.add_column(column)
    for name, entry in known.items():
        folder = root / entry.top
        if folder.is_dir() and not check_layout(folder, entry):
            present = f"yes, {_size(folder)}"
        elif folder.exists():
            present = "incomplete"
        else:
            present = "no" if entry.urls else "no (not downloadable: see the note)"
        table.add_row(name, entry.kind, entry.archive, entry.model or "-", entry.experiment or "-", present)
    console = Console(width=None if sys.stdout.isatty() else 140)  # logs and pipes: no wrapped rows
    console.print(table)
    notes = [f"{name}: {entry.note}" for name, entry in known.items() if entry.note]
    for note in notes:
        console.print(f"  {note}", highlight=False)
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    from ganstyle.reference.catalogue import CatalogueError, dataset, default_datasets_dir
    from ganstyle.reference.fetching import DownloadError, fetch_dataset

    root = Path(args.root).expanduser() if args.root else default_datasets_dir()
    try:
        entry = dataset(args.name)
        folder, present = fetch_dataset(
            entry,
            root,
            urls=args.url or None,
            archive=Path(args.archive).expanduser() if args.archive else None,
        )
    except (CatalogueError, DownloadError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            f"\nInterrupted: the part downloaded so far is kept in {root}; run the same command to resume.",
            file=sys.stderr,
        )
        return 130
    print(f"{entry.name} {'was already' if present else 'is'} in {folder}.")
    command = entry.training_command(root)
    if command:
        print(f"Train on it: {command}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "datasets",
        help="list or fetch the papers' datasets (CycleGAN, pix2pix, CUT)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="every dataset of the catalogue, and which are present")
    listing.add_argument(
        "--root", default=None, help="the datasets folder (default: $GANSTYLE_DATASETS or datasets/)"
    )
    listing.set_defaults(func=run_list)
    fetch = actions.add_parser("fetch", help="download, verify and unpack one dataset")
    fetch.add_argument("name", metavar="NAME", help="a dataset name from `ganstyle datasets list`")
    fetch.add_argument(
        "--root", default=None, help="where to put it (default: $GANSTYLE_DATASETS or datasets/)"
    )
    fetch.add_argument(
        "--url", action="append", default=None, help="download from this address instead (repeat for several)"
    )
    fetch.add_argument(
        "--archive", default=None, help="unpack this archive (copied by hand) instead of downloading"
    )
    fetch.set_defaults(func=run_fetch)
