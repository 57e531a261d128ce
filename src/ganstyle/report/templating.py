"""What both reports share: the jinja2 templates (packaged in ``templates/``) and embedded images.

The pages are built from templates -- ``layout.html.j2`` holds the shell (inline style, header,
navigation), ``run.html.j2`` and ``sweep.html.j2`` their sections -- with autoescaping on, so a
metric name or an override is always shown as text. Every image is a base64 ``data:`` URI: a page
needs no other file, no server and no network.
"""

from __future__ import annotations

import base64
import functools
import io
import math
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

MAX_IMAGE_WIDTH = 1400  # px; wider images are shrunk before embedding


@dataclass
class Picture:
    """An image ready for the page: its data URI and, when shown enlarged, its displayed width."""

    title: str
    uri: str
    width: int | None = None  # px; set when a small image is enlarged (drawn with square pixels)
    caption: str | None = None  # shown under the image instead of the title


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def image_png(path: Path, max_width: int = MAX_IMAGE_WIDTH) -> bytes:
    """The image as PNG bytes, shrunk to ``max_width`` if it is wider."""
    with Image.open(path) as image:
        if image.width <= max_width and path.suffix.lower() == ".png":
            return path.read_bytes()
        image = image.convert("RGB")
        if image.width > max_width:
            image = image.resize(
                (max_width, round(image.height * max_width / image.width)), Image.Resampling.LANCZOS
            )
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", optimize=True)
        return buffer.getvalue()


def picture(title: str, png: bytes, min_width: int = 0, caption: str | None = None) -> Picture:
    """An embedded image; one narrower than ``min_width`` is shown enlarged by a whole factor, so a
    grid of 64 px crops stays readable."""
    width = Image.open(io.BytesIO(png)).width
    scale = max(1, -(-min_width // width)) if min_width else 1
    return Picture(title, data_uri(png), width * scale if scale > 1 else None, caption)


def format_number(value: float | None) -> str:
    """Integers as integers, the rest to 4 significant digits; nothing for a missing value."""
    if value is None:
        return ""
    if not math.isfinite(value):
        return str(value)
    return f"{value:.0f}" if float(value).is_integer() and abs(value) >= 1 else f"{value:.4g}"


def format_value(text: str) -> str:
    """An override's value for display: a long decimal (an Optuna sample) to 4 significant digits."""
    try:
        number = float(text)
    except (TypeError, ValueError):
        return text
    return f"{number:.4g}" if len(text.lstrip("-").replace(".", "").lstrip("0")) > 6 else text


def format_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return ""
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


@functools.cache
def environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("ganstyle.report", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,  # a misspelt variable fails the test suite, not a user's page
    )
    env.filters["number"] = format_number
    env.filters["duration"] = format_duration
    env.filters["value"] = format_value
    return env


def render(template: str, **context) -> str:
    return environment().get_template(template).render(**context)
