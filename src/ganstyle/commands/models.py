"""``ganstyle models list | fetch NAME``: the papers' published generators as ganstyle checkpoints.

Examples::

    ganstyle models list
    ganstyle models fetch horse2zebra                 # CycleGAN's horse -> zebra generator: horse2zebra.ckpt
    ganstyle models fetch horse2zebra_cut --output h2z_cut.ckpt
    ganstyle stylize horse2zebra.ckpt photos/ --output zebras/

Each file is downloaded (resumably, address by address) and imported with ``ganstyle import-reference``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path


def run_list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from ganstyle.reference.catalogue import CatalogueError, models

    try:
        known = models()
    except CatalogueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    table = Table(title="published generators")
    for column in ("name", "model", "direction", "dataset"):
        table.add_column(column)
    for name, entry in known.items():
        table.add_row(name, entry.model, entry.direction, entry.dataset or "-")
    Console().print(table)
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    from ganstyle.reference.catalogue import CatalogueError, published_model
    from ganstyle.reference.fetching import DownloadError, download
    from ganstyle.reference.importing import ReferenceImportError, import_reference

    output = Path(args.output or f"{args.name}.ckpt").expanduser()
    try:
        entry = published_model(args.name)
        with tempfile.TemporaryDirectory(dir=output.parent if output.parent.exists() else None) as scratch:
            # Downloads resume from the cache folder: a second run continues an interrupted one.
            cache = Path(args.cache).expanduser() if args.cache else output.parent
            file_name = Path(entry.urls[0]).name if entry.urls else f"{entry.name}.pth"
            downloaded = cache / f".{entry.name}.{file_name}"
            if not downloaded.is_file():
                download(args.url or entry.urls, downloaded, entry.name)
            weights = downloaded
            if entry.member:
                weights = extract_member(downloaded, entry.member, Path(scratch))
            source = f"{entry.name} ({(args.url or entry.urls)[0]})"
            mode = "fastcut" if "fastcut" in entry.name else "cut"
            # A CycleGAN file translating the dataset's B to A (zebra2horse, style_monet) fills BtoA, so
            # `ganstyle evaluate --dataset` scores it against the right domain.
            import_reference(
                weights, entry.model, output, mode=mode, source=source, direction=entry.direction
            )
            downloaded.unlink(missing_ok=True)
    except (CatalogueError, DownloadError, ReferenceImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{entry.name}: {entry.model} generator ({entry.direction}) written to {output}.")
    print(f"Apply it: ganstyle stylize {output} photos/ --output results/")
    return 0


def extract_member(archive: Path, member: str, into: Path) -> Path:
    """The file ``member`` (a path suffix) of a tar archive, extracted into ``into``."""
    from ganstyle.reference.fetching import DownloadError

    try:
        with tarfile.open(archive) as handle:
            found = [item for item in handle.getmembers() if item.isfile() and item.name.endswith(member)]
            if not found:
                raise DownloadError(
                    f"{archive} holds no {member}; the archive is not the one the catalogue names."
                )
            source = handle.extractfile(found[0])
            target = into / Path(member).name
            with source, target.open("wb") as handle_out:
                shutil.copyfileobj(source, handle_out)
    except (tarfile.TarError, EOFError, OSError) as error:
        archive.unlink(missing_ok=True)
        raise DownloadError(
            f"The archive {archive} is truncated or corrupt ({error}); fetch again."
        ) from error
    return target


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list or fetch the papers' published generators",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", help="every published generator of the catalogue").set_defaults(func=run_list)
    fetch = actions.add_parser("fetch", help="download a published generator and import it")
    fetch.add_argument("name", metavar="NAME", help="a model name from `ganstyle models list`")
    fetch.add_argument("--output", "-o", default=None, help="the checkpoint to write (default: NAME.ckpt)")
    fetch.add_argument("--url", action="append", default=None, help="download from this address instead")
    fetch.add_argument(
        "--cache", default=None, help="folder for the partial download (default: beside --output)"
    )
    fetch.set_defaults(func=run_fetch)
