"""The ``ganstyle`` command line: one subcommand per module in ``ganstyle.commands``.

Each command module defines ``register(subparsers)`` which adds its parser and sets ``func`` to a
callable taking the parsed ``argparse.Namespace`` and returning an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules in ganstyle.commands, in the order `ganstyle --help` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "fid",
    "weights",
    "stylize",
    "export",
    "report",
    "datasets",
    "models",
    "import_reference",
    "evaluate",
    "serve",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ganstyle", description="Train, apply and evaluate GAN-based style transfer models."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"ganstyle.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
