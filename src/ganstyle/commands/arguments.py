"""Argument types shared by the commands: a bad number is refused by argparse with one sentence
saying what the option takes, before any checkpoint or image is read."""

from __future__ import annotations

import argparse


def pixels_argument(value: str) -> int:
    """A number of pixels: a whole number of at least 1."""
    if value.isdigit() and int(value) >= 1:
        return int(value)
    raise argparse.ArgumentTypeError(
        f"{value!r} is not a number of pixels: give a whole number of at least 1"
    )


def count_argument(value: str) -> int:
    """How many images go through the network at once: a whole number of at least 1."""
    if value.isdigit() and int(value) >= 1:
        return int(value)
    raise argparse.ArgumentTypeError(
        f"{value!r} is not a batch size: give how many images go through the network at once, "
        "a whole number of at least 1"
    )


def overlap_argument(value: str) -> int:
    """A tile overlap in pixels: a whole number, 0 allowed."""
    if value.isdigit():
        return int(value)
    raise argparse.ArgumentTypeError(f"{value!r} is not an overlap in pixels: give a whole number, 0 or more")
