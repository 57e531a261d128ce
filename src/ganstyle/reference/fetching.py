"""Downloads that cannot half-fail: resumable, tried address by address, verified, moved into place whole.

:func:`download` writes ``<file>.part`` and asks for the rest of it with an HTTP ``Range`` header when
one is already there (a dropped connection, Ctrl-C, a killed job), so a second run continues where the
first stopped; a server that ignores ``Range`` sends the whole file again, which replaces the partial.
When an address fails the next is tried. Only a complete download (the length the server announced)
is renamed to ``<file>``.

:func:`install_dataset` unpacks an archive into a temporary folder beside the target, checks its
layout and the image counts the reference states, and renames the folder into place only then:
``datasets/NAME/`` is either absent or whole. A corrupt archive is deleted (downloading it again is
the fix); a partial download is kept for the next run to resume.
"""

from __future__ import annotations

import os
import shutil
import sys
import tarfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ganstyle.data.images import list_images
from ganstyle.reference.catalogue import Dataset

CHUNK_BYTES = 1 << 20
TIMEOUT_SECONDS = 60.0  # per socket operation: a stalled server fails the address, it does not hang
USER_AGENT = "ganstyle-downloader"
PARTIAL_SUFFIX = ".part"
# An archive unpacks to about its own size again; the check asks for this multiple of it free.
SPACE_FACTOR = 2.2
# Folders each kind of dataset must have after unpacking (paired: test/ is optional).
REQUIRED_FOLDERS = {
    "unpaired": ("trainA", "trainB", "testA", "testB"),
    "paired": ("train", "val"),
    "photos": (),
}


class DownloadError(RuntimeError):
    """A download, archive or target folder problem; the message says what happened and what to do."""


def _megabytes(count: int | None) -> str:
    return "unknown size" if count is None else f"{count / 1e6:.1f} MB"


def _progress(total: int | None, start: int, label: str) -> Any:
    """A progress bar on stderr (tqdm; ``update(bytes)``, ``close()``), off when stderr is no terminal."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=start,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=label,
        file=sys.stderr,
        disable=None,
    )


def _fetch_one(url: str, partial: Path, label: str, timeout: float) -> None:
    """Complete ``partial`` from ``url``, resuming from its current size; raises on any failure."""
    have = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:  # nothing left to send: the partial file is the whole file
            return
        raise
    with response:
        status = getattr(response, "status", 200)
        length = response.headers.get("Content-Length")
        remaining = int(length) if length is not None and length.isdigit() else None
        if status == 206:
            mode, start = "ab", have
        else:  # 200: the server sends the whole file (it ignores Range, or nothing was there yet)
            mode, start = "wb", 0
        total = None if remaining is None else start + remaining
        check_space(partial.parent, None if remaining is None else remaining)
        bar = _progress(total, start, label)
        received = 0
        try:
            with partial.open(mode) as handle:
                while True:
                    chunk = response.read(CHUNK_BYTES)
                    if not chunk:
                        break
                    handle.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
                handle.flush()
                os.fsync(handle.fileno())
        finally:
            bar.close()
        if remaining is not None and received < remaining:
            raise DownloadError(
                f"the connection closed after {_megabytes(start + received)} of {_megabytes(total)}"
            )


def check_space(folder: Path, incoming: int | None) -> None:
    """Refuse a download or unpacking that would not fit on the disk, before it starts."""
    if incoming is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    needed = int(incoming * SPACE_FACTOR)
    if free < needed:
        raise DownloadError(
            f"not enough free disk space in {folder}: {_megabytes(free)} free, about {_megabytes(needed)} "
            "needed for the archive and its unpacked images. Free some space or pass --root on another disk"
        )


def describe_failure(error: BaseException) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return f"no connection ({error.reason})"
    if isinstance(error, TimeoutError):
        return f"no answer within {TIMEOUT_SECONDS:.0f} s"
    return str(error) or type(error).__name__


def download(urls: Sequence[str], destination: Path, label: str, timeout: float = TIMEOUT_SECONDS) -> str:
    """Download ``destination`` from the first of ``urls`` that works; return that URL.

    The bytes go to ``<destination>.part`` first (resumed if present); ``destination`` appears only
    once complete. Raises :class:`DownloadError` listing each address and why it failed.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + PARTIAL_SUFFIX)
    failures = []
    for url in urls:
        try:
            _fetch_one(url, partial, label, timeout)
        except (OSError, DownloadError, ValueError) as error:  # URLError and HTTPError are OSErrors
            if isinstance(error, DownloadError) and str(error).startswith("not enough free disk space"):
                raise DownloadError(f"Cannot download {label}: {error}.") from error
            if isinstance(error, OSError) and error.errno == 28:  # ENOSPC while writing the partial file
                raise DownloadError(
                    f"The disk filled up while downloading {label} into {partial.parent} ({error}); the part "
                    f"received is kept in {partial}. Free some space and run the same command to resume."
                ) from error
            failures.append(f"{url}: {describe_failure(error)}")
            continue
        partial.replace(destination)
        return url
    kept = (
        f" The {_megabytes(partial.stat().st_size)} received so far are kept in {partial}: run the same "
        "command again to resume from there."
        if partial.exists() and partial.stat().st_size
        else ""
    )
    raise DownloadError(
        f"Could not download {label} from any of its {len(failures)} address(es): {'; '.join(failures)}."
        f"{kept} Check the connection, pass a mirror with --url URL, or download the archive by hand "
        "and pass --archive FILE."
    )


# --- unpacking -------------------------------------------------------------------------------------
def _safe_members(names: Sequence[str], archive: Path) -> None:
    for name in names:
        path = Path(name)
        if path.is_absolute() or ".." in path.parts:
            raise DownloadError(
                f"The archive {archive} holds a file outside its own folder ({name}); it is not a dataset "
                "archive ganstyle will unpack."
            )


def extract(archive: Path, fmt: str, into: Path) -> None:
    """Unpack every member of ``archive`` into ``into``, reading all data (CRCs checked for zip)."""
    try:
        if fmt == "zip":
            with zipfile.ZipFile(archive) as handle:
                _safe_members(handle.namelist(), archive)
                broken = handle.testzip()
                if broken is not None:
                    raise DownloadError(
                        f"The archive {archive} is truncated or corrupt: {broken} fails its checksum"
                    )
                handle.extractall(into)
        else:
            with tarfile.open(archive, "r:gz" if fmt == "tar.gz" else "r:") as handle:
                members = handle.getmembers()
                _safe_members([member.name for member in members], archive)
                handle.extractall(into, filter="data")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, ValueError) as error:
        if isinstance(error, OSError) and error.errno is not None and error.errno == 28:
            raise DownloadError(f"The disk filled up while unpacking {archive} ({error})") from error
        raise DownloadError(
            f"The archive {archive} is truncated or corrupt ({type(error).__name__}: {error})"
        ) from error


def count_images(folder: Path) -> int:
    """Image files directly in ``folder``, as training reads them (hidden files excluded)."""
    return len(list_images(folder))


def check_layout(folder: Path, dataset: Dataset) -> list[str]:
    """What is wrong with an unpacked (or present) dataset folder, as sentences; empty when whole."""
    problems = []
    for name in REQUIRED_FOLDERS[dataset.kind]:
        if not (folder / name).is_dir():
            problems.append(f"{name}/ is missing")
        elif not count_images(folder / name):
            problems.append(f"{name}/ holds no images")
    for split, expected in dataset.counts.items():
        if (folder / split).is_dir() and (found := count_images(folder / split)) != expected:
            problems.append(f"{split}/ holds {found} images where the reference has {expected}")
    return problems


def find_top(unpacked: Path, dataset: Dataset) -> Path:
    """The dataset's folder inside an unpacked archive: ``<top>/``, or the archive's one folder, or the
    unpacked folder itself when the splits are at the archive's root."""
    if (unpacked / dataset.top).is_dir():
        return unpacked / dataset.top
    entries = [entry for entry in unpacked.iterdir() if not entry.name.startswith((".", "__MACOSX"))]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return unpacked


def install_dataset(archive: Path, dataset: Dataset, root: Path) -> Path:
    """Unpack ``archive`` as ``root/<top>`` only if it is whole; return that folder.

    The images are unpacked into ``root/.<top>.unpacking-<pid>/`` and checked (:func:`check_layout`);
    then one rename puts them in place. Anything failing removes the temporary folder. The caller has
    checked the target (:func:`check_target`); a folder that appears there meanwhile is not replaced.
    """
    target = root / dataset.top
    check_space(root, archive.stat().st_size)
    temporary = root / f".{dataset.top}.unpacking-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    try:
        extract(archive, dataset.archive, temporary)
        top = find_top(temporary, dataset)
        problems = check_layout(top, dataset)
        if problems:
            raise DownloadError(
                f"The archive {archive} does not hold the {dataset.name} dataset as the reference publishes "
                f"it: {'; '.join(problems)}"
            )
        try:
            top.replace(target)
        except OSError as error:  # something was put at the target while this archive was unpacked
            raise DownloadError(f"Could not move the unpacked images to {target} ({error})") from error
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return target


def check_target(target: Path, dataset: Dataset) -> None:
    """A target folder that exists must be this dataset, whole; anything else is refused untouched."""
    if not target.exists():
        return
    if not target.is_dir():
        raise DownloadError(f"{target} exists and is a file; move it away or pass another --root.")
    problems = check_layout(target, dataset)
    if problems:
        raise DownloadError(
            f"{target} exists but is not the whole {dataset.name} dataset ({'; '.join(problems)}). Nothing was "
            "changed in it: move it away (or delete it) and fetch again, or pass another --root."
        )
    raise DatasetPresent(target)


class DatasetPresent(Exception):
    """The dataset is already in place, whole: nothing to do."""

    def __init__(self, folder: Path) -> None:
        super().__init__(str(folder))
        self.folder = folder


def fetch_dataset(
    dataset: Dataset,
    root: Path,
    urls: Sequence[str] | None = None,
    archive: Path | None = None,
    timeout: float = TIMEOUT_SECONDS,
) -> tuple[Path, bool]:
    """Put ``dataset`` in ``root/<top>``: from ``archive`` (a local file, kept) or downloaded from
    ``urls`` (default: the catalogue's). Returns the folder and whether it was already there."""
    target = root / dataset.top
    try:
        check_target(target, dataset)
    except DatasetPresent:
        return target, True
    if archive is not None:
        if not archive.is_file():
            raise DownloadError(
                f"--archive {archive} is not a file; pass the {dataset.archive} archive you copied."
            )
        try:
            return install_dataset(archive, dataset, root), False
        except DownloadError as error:
            raise DownloadError(
                f"{error}. Nothing was unpacked; copy the archive again and retry."
            ) from error
    addresses = list(urls or dataset.urls)
    if not addresses:
        raise DownloadError(
            f"The {dataset.name} dataset has no download address: {dataset.note or 'none is published'}. "
            "Pass --url URL for a copy you can reach, or --archive FILE for one you have."
        )
    downloaded = root / f"{dataset.top}.{dataset.archive}"
    download(addresses, downloaded, dataset.name, timeout=timeout)
    try:
        folder = install_dataset(downloaded, dataset, root)
    except DownloadError as error:
        downloaded.unlink(missing_ok=True)  # a corrupt download is no use to resume: fetch it anew
        raise DownloadError(
            f"{error}. The download was deleted and nothing was unpacked: run the same command to download "
            "it again, or pass --url with another copy."
        ) from error
    downloaded.unlink(missing_ok=True)  # unpacked: the archive has done its work
    return folder, False


def folder_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
