"""Files replaced all at once or not at all: checkpoints, metrics.csv, report pages, evaluations.

Each write goes to a temporary file in the destination folder (``os.replace`` is atomic only within
one filesystem), is fsynced, and is renamed over the destination; the folder is fsynced after the
rename, so the name never points at unwritten blocks. A process killed at any moment leaves the
previous file or the new one, never a truncated file, and a reader (a browser, a resumed run) never
sees a half-written one.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

# What open() gives a new file before the umask applies.
FILE_MODE = 0o666


def current_umask() -> int:
    """The process umask (reading it means setting it; it is set back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[IO[Any]], None], text: bool = False) -> Path:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it over ``path``.

    ``text`` opens the file as UTF-8 text (newlines untranslated, as the csv module needs), else
    binary. Errors propagate with ``path`` unchanged and the temporary file removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    temp: Path | None = Path(temp_name)
    try:
        # mkstemp creates 0600; the file gets the mode any other output file gets (0666 less the
        # umask), so colleagues sharing a cluster folder can read it.
        os.fchmod(handle, FILE_MODE & ~current_umask())
        mode = {"mode": "w", "encoding": "utf-8", "newline": ""} if text else {"mode": "wb"}
        with os.fdopen(handle, **mode) as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
        temp = None
        fsync_folder(path.parent)
        # Temporary files of writes a SIGKILL cut short: nothing else writes this name, so they are stale.
        for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
            stale.unlink(missing_ok=True)
    finally:
        if temp is not None:
            temp.unlink(missing_ok=True)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """``path.write_text(text)`` (UTF-8) that replaces ``path`` all at once."""
    return atomic_write(path, lambda file: file.write(text), text=True)


def atomic_hard_link(source: str | os.PathLike, path: str | os.PathLike) -> None:
    """Make ``path`` name the same file as ``source``, replacing ``path`` all at once.

    The link is made under a temporary name and renamed over ``path``, so ``path`` is never missing
    or partial. Where the filesystem has no hard links, ``source`` is copied instead (same atomic
    rename). Later writes to either name go through :func:`atomic_write`, which replaces that name
    with a new file, so the other one keeps its contents.
    """
    source, path = Path(source), Path(path)
    temp = path.parent / f".{path.name}.{os.getpid()}.link.tmp"
    try:
        temp.unlink(missing_ok=True)
        try:
            os.link(source, temp)
        except OSError:  # no hard links here (some network and FAT filesystems): copy
            shutil.copyfile(source, temp)
            with open(temp, "rb+") as file:
                os.fsync(file.fileno())
        os.replace(temp, path)
        fsync_folder(path.parent)
    finally:
        temp.unlink(missing_ok=True)


def fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where the filesystem lets a folder be opened)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # some filesystems do not open folders; the rename itself has happened
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
