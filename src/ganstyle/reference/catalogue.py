"""The catalogue of the papers' datasets and published generators: data, not code.

``catalogue.yaml`` beside this file lists what the reference download scripts offer, with their
addresses. ``GANSTYLE_CATALOGUE`` names further YAML files of the same shape (``:``-separated), merged
over it entry by entry: a user adds a dataset, or a mirror (``mirrors:``, tried before the built-in
``urls:``), without touching code.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CATALOGUE_FILE = Path(__file__).with_name("catalogue.yaml")
CATALOGUE_ENV = "GANSTYLE_CATALOGUE"
DATASETS_ENV = "GANSTYLE_DATASETS"
ARCHIVE_FORMATS = ("zip", "tar.gz", "tar")
DATASET_KINDS = ("unpaired", "paired", "photos")


class CatalogueError(ValueError):
    """An unknown name, or a catalogue file that cannot be read; the message says what to do."""


@dataclass(frozen=True)
class Dataset:
    name: str
    kind: str
    archive: str
    urls: tuple[str, ...]
    top: str
    counts: dict[str, int] = field(default_factory=dict)
    model: str | None = None
    experiment: str | None = None
    note: str | None = None
    published: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def training_command(self, root: Path) -> str | None:
        if not self.experiment:
            return None
        default = default_datasets_dir()
        where = "" if root.resolve() == default.resolve() else f" data.root={root / self.top}"
        return f"python train.py experiment={self.experiment}{where} trainer=gpu"


@dataclass(frozen=True)
class PublishedModel:
    name: str
    model: str
    urls: tuple[str, ...]
    direction: str = "AtoB"
    dataset: str | None = None
    member: str | None = None  # the file inside an archive, when the URL is one


def default_datasets_dir() -> Path:
    """Where datasets are fetched, and where the dataset experiments read them: ``$GANSTYLE_DATASETS``,
    else ``datasets/`` in the project (``$GANSTYLE_ROOT``, or the nearest folder at or above the
    working directory that holds ``conf/train.yaml``), else ``./datasets``. The experiments' default
    (``paths.datasets_dir``) is the same folder."""
    if os.environ.get(DATASETS_ENV):
        return Path(os.environ[DATASETS_ENV]).expanduser()
    if os.environ.get("GANSTYLE_ROOT"):
        return Path(os.environ["GANSTYLE_ROOT"]) / "datasets"
    here = Path.cwd()
    for folder in (here, *here.parents):
        if (folder / "conf" / "train.yaml").is_file() and (folder / "train.py").is_file():
            return folder / "datasets"
    return here / "datasets"


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise CatalogueError(f"Cannot read the catalogue file {path}: {error}. Fix or remove it.") from error
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CatalogueError(
            f"The catalogue file {path} must map 'datasets:' and 'models:' to entries, got {type(data).__name__}."
        )
    return data


def catalogue_files() -> list[Path]:
    extra = [Path(item).expanduser() for item in os.environ.get(CATALOGUE_ENV, "").split(":") if item]
    for path in extra:
        if not path.is_file():
            raise CatalogueError(
                f"{CATALOGUE_ENV} names {path}, which is not a file. Point it at a YAML catalogue of the "
                f"shape of {CATALOGUE_FILE}, or unset it."
            )
    return [CATALOGUE_FILE, *extra]


def load_catalogue() -> dict[str, dict[str, dict[str, Any]]]:
    """``{"datasets": {name: entry}, "models": {name: entry}}``, the user's files merged over ours."""
    merged: dict[str, dict[str, dict[str, Any]]] = {"datasets": {}, "models": {}}
    for path in catalogue_files():
        data = _read(path)
        for section in merged:
            for name, entry in (data.get(section) or {}).items():
                if not isinstance(entry, dict):
                    raise CatalogueError(f"{path}: {section}.{name} must be a mapping of its fields.")
                base = dict(merged[section].get(name, {}))
                mirrors = list(entry.get("mirrors") or [])
                base.update({key: value for key, value in entry.items() if key != "mirrors"})
                base["urls"] = mirrors + list(base.get("urls") or [])
                merged[section][name] = base
    return merged


def _unknown(kind: str, name: str, known: list[str], command: str) -> CatalogueError:
    near = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(near)}?" if near else ""
    return CatalogueError(
        f"{name!r} is not a {kind} of the catalogue.{hint} `ganstyle {command} list` shows them all; to add "
        f"your own, write it in a YAML file and point {CATALOGUE_ENV} at it (see {CATALOGUE_FILE})."
    )


def _check_dataset_entry(name: str, entry: dict[str, Any]) -> None:
    kind, archive = entry.get("kind"), entry.get("archive")
    if kind not in DATASET_KINDS:
        raise CatalogueError(
            f"Catalogue dataset {name}: kind must be one of {', '.join(DATASET_KINDS)}, got {kind!r}."
        )
    if archive not in ARCHIVE_FORMATS:
        raise CatalogueError(
            f"Catalogue dataset {name}: archive must be one of {', '.join(ARCHIVE_FORMATS)}, got {archive!r}."
        )


def datasets() -> dict[str, Dataset]:
    found = {}
    for name, entry in load_catalogue()["datasets"].items():
        _check_dataset_entry(name, entry)
        found[name] = Dataset(
            name=name,
            kind=entry["kind"],
            archive=entry["archive"],
            urls=tuple(str(url).format(name=name) for url in entry.get("urls") or ()),
            top=str(entry.get("top") or name),
            counts={str(k): int(v) for k, v in (entry.get("counts") or {}).items()},
            model=entry.get("model"),
            experiment=entry.get("experiment"),
            note=entry.get("note"),
            published=dict(entry.get("published") or {}),
        )
    return found


def dataset(name: str) -> Dataset:
    known = datasets()
    if name not in known:
        raise _unknown("dataset", name, sorted(known), "datasets")
    return known[name]


def models() -> dict[str, PublishedModel]:
    found = {}
    for name, entry in load_catalogue()["models"].items():
        if entry.get("model") not in ("cyclegan", "cut", "pix2pix"):
            raise CatalogueError(
                f"Catalogue model {name}: model must be cyclegan, cut or pix2pix, got {entry.get('model')!r}."
            )
        file = entry.get("file") or name
        found[name] = PublishedModel(
            name=name,
            model=entry["model"],
            urls=tuple(str(url).format(name=name, file=file) for url in entry.get("urls") or ()),
            direction=str(entry.get("direction") or "AtoB"),
            dataset=entry.get("dataset"),
            member=entry.get("member"),
        )
    return found


def published_model(name: str) -> PublishedModel:
    known = models()
    if name not in known:
        raise _unknown("model", name, sorted(known), "models")
    return known[name]
