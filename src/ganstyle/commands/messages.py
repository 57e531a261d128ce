"""Error messages of the Python API, reworded for the command line: flags instead of arguments.

The inference API's messages name its arguments (``style_images``, ``tile=100``, ``trusted=True``);
a user of ``ganstyle stylize`` or ``export`` typed flags (``--style``, ``--tile 100``,
``--trust-checkpoint``), so the commands print the message through :func:`for_cli`.
"""

from __future__ import annotations

import re

# Longest first: an API phrase followed by its CLI form in brackets keeps the CLI form only.
_REWRITES: tuple[tuple[str, str], ...] = (
    (r"\S+=\S+ \(CLI: ([^)]+)\)", r"\1"),
    (r" \(API: [^)]*\)", ""),
    (r"the generator's size_multiple=(\d+)", r"the generator's size multiple (\1 px)"),
    (r"size_multiple=(\d+)", r"a multiple of \1 px"),
    (
        r"pass style_images \(one or more style images; several are interpolated with style_weights\)",
        "pass --style <image> (several images are blended)",
    ),
    (r"(?<![\w.-])style_images\b", "--style"),
    (r"(?<![\w.-])stats_size=(\S+)", r"--stats-size \1"),
    (r"(?<![\w.-])batch_size=(\S+)", r"--batch-size \1"),
    (r"(?<![\w.-])model_class=(\S+)", r"--model-class \1"),
    (r"(?<![\w.-])trusted=True", "--trust-checkpoint"),
    (r"(?<![\w.-])dropout=True / False", "--dropout on / off"),
    (r"(?<![\w.-])(tile|size|overlap|alpha|direction)=(\S+)", r"--\1 \2"),
)


def for_cli(message: object) -> str:
    """``message`` with the API's argument names replaced by the flags of the ganstyle commands."""
    text = str(message)
    for pattern, replacement in _REWRITES:
        text = re.sub(pattern, replacement, text)
    return text
