"""Where pretrained weight files come from: the one place that names, finds, checks and fetches them.

Three frozen networks need downloaded weights: VGG16 and VGG19 (ImageNet, torchvision's files) for the
perceptual losses, and torch-fidelity's port of the TensorFlow FID Inception for FID/KID. A file is
looked up, in order:

1. an explicit path (``loss.feature_net.weights_path=...``, ``metrics.fid_weights_path=...``,
   ``ganstyle fid --weights-path ...``);
2. the torch hub cache, ``$TORCH_HOME/hub/checkpoints/<official file name>`` (``TORCH_HOME`` defaults to
   ``~/.cache/torch``), the folder torchvision and torchmetrics read as well, so a file fetched by either
   is found here and vice versa;
3. a download into that cache, only when asked for (``download=True`` or ``ganstyle fetch-weights``).

Nothing is downloaded behind the user's back: on an offline machine a missing file is a
:class:`WeightsNotFoundError` raised while the networks are built, i.e. before training starts, and its
message says which file to put where. Every file is loaded with ``weights_only=True`` and checked against
the architecture's parameter names and shapes, so a wrong or truncated file fails loudly instead of
silently producing meaningless losses or metrics.
"""

from __future__ import annotations

import logging
import os
import re
import urllib.error
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WeightsSpec:
    """One downloadable weights file and how users point ganstyle at it."""

    kind: str
    description: str
    url: str
    config_key: str  # the config key (or CLI flag) that takes an explicit path
    check_hash: bool  # torchvision checks its files' SHA-256 prefix; torch-fidelity does not check its own

    @property
    def file_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def hash_prefix(self) -> str | None:
        # torch hub convention: `name-<first hex digits of the SHA-256>.pth`
        match = re.search(r"-([a-f0-9]{6,})\.", self.file_name)
        return match.group(1) if (match and self.check_hash) else None


# The official URLs (tests check they equal torchvision's and torch-fidelity's own constants).
WEIGHTS: dict[str, WeightsSpec] = {
    "vgg16": WeightsSpec(
        kind="vgg16",
        description="VGG16 ImageNet weights (torchvision VGG16_Weights.IMAGENET1K_V1)",
        url="https://download.pytorch.org/models/vgg16-397923af.pth",
        config_key="loss.feature_net.weights_path",
        check_hash=True,
    ),
    "vgg19": WeightsSpec(
        kind="vgg19",
        description="VGG19 ImageNet weights (torchvision VGG19_Weights.IMAGENET1K_V1)",
        url="https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
        config_key="loss.feature_net.weights_path",
        check_hash=True,
    ),
    "fid_inception": WeightsSpec(
        kind="fid_inception",
        description="FID Inception v3 weights (torch-fidelity's port of the TensorFlow 2015-12-05 graph)",
        url=(
            "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
            "weights-inception-2015-12-05-6726825d.pth"
        ),
        config_key="metrics.fid_weights_path",
        check_hash=False,
    ),
}


class WeightsNotFoundError(ValueError):
    """A weights file is neither at the explicit path nor in the cache (and was not downloaded)."""


class WeightsFileError(ValueError):
    """A weights file exists but is not what its name says (not a torch file, wrong architecture)."""


class WeightsDownloadError(RuntimeError):
    """Downloading a weights file failed (typically: no network)."""


def spec(kind: str) -> WeightsSpec:
    if kind not in WEIGHTS:
        raise ValueError(f"Unknown weights kind {kind!r}; expected one of {sorted(WEIGHTS)}.")
    return WEIGHTS[kind]


def cache_dir() -> Path:
    """``<torch hub dir>/checkpoints``: honours ``TORCH_HOME`` (and ``torch.hub.set_dir``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def cached_path(kind: str) -> Path:
    """Where the cache holds (or would hold) the file for ``kind``."""
    return cache_dir() / spec(kind).file_name


def not_found_message(
    kind: str,
    weights_path: str | os.PathLike | None = None,
    config_key: str | None = None,
    download_error: BaseException | None = None,
) -> str:
    """The one-paragraph explanation of a missing weights file: what, where, and the two ways to fix it."""
    s = spec(kind)
    key = config_key or s.config_key
    folder = cache_dir()
    where = (
        f"the explicit path {str(weights_path)!r} does not exist"
        if weights_path is not None
        else f"no file {s.file_name!r} in {str(folder)!r} (the torch hub cache; set TORCH_HOME to move it)"
    )
    download = (
        f"Downloading it failed ({download_error})."
        if download_error is not None
        else "Nothing is downloaded automatically."
    )
    return (
        f"{s.description} not found: {where}. {download} Provide the file in one of two ways: (1) run "
        f"`ganstyle fetch-weights --kinds {kind}` on a machine with internet access (it downloads {s.url}) "
        f"and copy {s.file_name} into {folder} on this machine, or run it here if this machine is online; "
        f"or (2) set the explicit path, e.g. `{key}=/path/to/{s.file_name}`."
    )


def resolve_weights(
    kind: str,
    weights_path: str | os.PathLike | None = None,
    download: bool = False,
    config_key: str | None = None,
) -> Path:
    """Return the path of the weights file for ``kind`` ("vgg16", "vgg19" or "fid_inception").

    An explicit ``weights_path`` wins and must exist. Otherwise the torch hub cache is used; when the file is
    not there it is downloaded if ``download`` is true, else :class:`WeightsNotFoundError` says what to do.
    ``config_key`` names the setting to mention in that message (defaults to the kind's config key).
    """
    spec(kind)  # an unknown kind fails here, whatever the path
    if weights_path is not None and str(weights_path) != "":
        path = Path(weights_path).expanduser()
        if not path.is_file():
            raise WeightsNotFoundError(not_found_message(kind, weights_path, config_key))
        return path
    path = cached_path(kind)
    if path.is_file():
        return path
    if download:
        try:
            return fetch_weights([kind])[0]
        except WeightsDownloadError as error:
            reason = error.__cause__ or error  # the network error itself, not the advice around it
            raise WeightsNotFoundError(not_found_message(kind, None, config_key, reason)) from error
    raise WeightsNotFoundError(not_found_message(kind, None, config_key))


def expected_shapes(kind: str) -> dict[str, tuple[int, ...]]:
    """Parameter/buffer names and shapes a valid file for ``kind`` must contain (built on the meta device)."""
    if kind in ("vgg16", "vgg19"):
        from torchvision.models.vgg import cfgs, make_layers

        with torch.device("meta"):
            features = make_layers(cfgs["D" if kind == "vgg16" else "E"])
        # Only the convolutional trunk is required: the classifier is never used for features.
        return {f"features.{name}": tuple(value.shape) for name, value in features.state_dict().items()}
    if kind == "fid_inception":
        from ganstyle.networks.fid_inception import inception_skeleton

        with torch.device("meta"):
            net = inception_skeleton()
        return {name: tuple(value.shape) for name, value in net.state_dict().items()}
    spec(kind)  # raises the "unknown kind" error
    raise AssertionError("unreachable")


def _file_error(kind: str, path: Path, problem: str) -> WeightsFileError:
    s = spec(kind)
    return WeightsFileError(
        f"{str(path)!r} is not the {s.description}: {problem}. The file is not what its name says; replace it "
        f"with the official file ({s.url}, e.g. via `ganstyle fetch-weights --kinds {kind}`) or correct "
        f"`{s.config_key}`."
    )


def torch_load_problem(error: BaseException) -> str:
    """What was wrong with a file ``torch.load`` refused, without torch's advice to re-run with
    ``weights_only=False`` (which would run the file's code) or to file an issue."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))
    unsupported = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if unsupported:
        return f"it holds a Python object of type {unsupported.group(1)}, not only tensors and plain data"
    first = text.strip().splitlines()[0] if text.strip() else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def load_checked_state_dict(kind: str, path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load ``path`` with ``weights_only=True`` and check it against the architecture of ``kind``.

    Raises :class:`WeightsFileError` when the file is not a torch file, not a state dict, or lacks / misshapes
    any tensor the architecture needs. Extra keys (e.g. VGG's classifier) are allowed and returned.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle, zip and weights-only errors all mean "not a weights file"
        raise _file_error(
            kind, path, f"it cannot be read as a PyTorch file ({torch_load_problem(error)})"
        ) from error
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]  # a checkpoint wrapping the state dict
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise _file_error(kind, path, f"it holds a {type(state).__name__}, not a state dict of tensors")
    expected = expected_shapes(kind)
    missing = [name for name in expected if name not in state]
    wrong = [
        f"{name} {tuple(state[name].shape)} instead of {shape}"
        for name, shape in expected.items()
        if name in state and tuple(state[name].shape) != shape
    ]
    prefix = "features." if kind in ("vgg16", "vgg19") else ""
    extra = [name for name in state if name.startswith(prefix) and name not in expected]
    if missing or wrong or extra:
        problems = []
        if missing:
            problems.append(
                f"{len(missing)} of {len(expected)} expected tensors missing (e.g. {missing[:3]})"
            )
        if wrong:
            problems.append(f"{len(wrong)} with the wrong shape (e.g. {wrong[:2]})")
        if extra:
            problems.append(f"{len(extra)} unexpected tensors (e.g. {extra[:3]})")
        raise _file_error(
            kind, path, "; ".join(problems) + " -- it looks like weights for another architecture"
        )
    return dict(state)


def load_weights(
    kind: str,
    weights_path: str | os.PathLike | None = None,
    download: bool = False,
    config_key: str | None = None,
) -> dict[str, torch.Tensor]:
    """:func:`resolve_weights` then :func:`load_checked_state_dict`: the checked state dict for ``kind``."""
    path = resolve_weights(kind, weights_path, download=download, config_key=config_key)
    log.info("Loading %s from %s", spec(kind).description, path)
    return load_checked_state_dict(kind, path)


def fetch_weights(
    kinds: Iterable[str] = tuple(WEIGHTS), directory: str | os.PathLike | None = None, force: bool = False
) -> list[Path]:
    """Download the official files for ``kinds`` into ``directory`` (default: the torch hub cache).

    A file already there and valid is kept unless ``force``. Each download is checked (hash prefix where the
    publisher provides one, then architecture) and removed again if it is not valid. Returns the paths.
    """
    target = Path(directory).expanduser() if directory is not None else cache_dir()
    paths = []
    for kind in kinds:
        s = spec(kind)
        path = target / s.file_name
        if path.is_file() and not force:
            try:
                load_checked_state_dict(kind, path)
                log.info("%s already present at %s", s.description, path)
                paths.append(path)
                continue
            except WeightsFileError:
                log.warning("%s exists but is invalid; downloading it again", path)
        target.mkdir(parents=True, exist_ok=True)
        log.info("Downloading %s from %s to %s", s.description, s.url, path)
        try:
            # Writes to a temporary file first and moves it into place, so no partial file is left behind.
            torch.hub.download_url_to_file(s.url, str(path), hash_prefix=s.hash_prefix, progress=True)
        except (urllib.error.URLError, OSError, TimeoutError) as error:
            raise WeightsDownloadError(
                f"Could not download {s.file_name} from {s.url}: {error}. This machine is probably offline: run "
                f"`ganstyle fetch-weights --kinds {kind}` on a machine with internet access and copy the file "
                f"into {target}, or set `{s.config_key}` to a copy of it."
            ) from error
        except RuntimeError as error:  # torch hub's hash mismatch
            raise WeightsDownloadError(
                f"Downloaded {s.file_name} from {s.url} but it is corrupt: {error}"
            ) from error
        try:
            load_checked_state_dict(kind, path)
        except WeightsFileError:
            path.unlink(missing_ok=True)
            raise
        paths.append(path)
    return paths


def keep_out_of_checkpoints(module: torch.nn.Module) -> torch.nn.Module:
    """Leave a frozen pretrained ``module``'s tensors out of every state dict that contains it.

    The frozen VGG / Inception weights come from their files (80-100 MB each), not from training, so saving
    them in every checkpoint only costs disk. Loading stays strict: a state dict without them is completed
    with the module's current tensors, and one that has them (an older checkpoint) is accepted as is.
    """

    excluding = [True]

    def drop(_module, state_dict, prefix, _local_metadata):
        if excluding[0]:
            for name in [name for name in state_dict if name.startswith(prefix)]:
                del state_dict[name]

    def complete(_module, state_dict, prefix, *_args):
        excluding[0] = False
        try:
            current = module.state_dict(prefix=prefix, keep_vars=True)
        finally:
            excluding[0] = True
        for name, value in current.items():
            state_dict.setdefault(name, value.detach())

    module.register_state_dict_post_hook(drop)
    module.register_load_state_dict_pre_hook(complete)
    return module
