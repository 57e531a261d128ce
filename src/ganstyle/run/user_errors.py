"""Errors the user can fix (a bad config, data, checkpoint, disk or a diverged run), told in one paragraph.

``train.py`` prints that paragraph instead of a traceback; in a multirun the failing job's log and
``FAILED`` file carry it (:mod:`ganstyle.run.sweeps`). Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import re

from ganstyle.config import ConfigError
from ganstyle.run.argument_types import nearest_argument_hint


def user_error_message(error: BaseException) -> str | None:
    """The one-paragraph message of an error the user can fix (bad config, data, checkpoint, disk,
    diverged run), also when Hydra's instantiate wrapped it; None for anything else (a bug: keep the
    traceback)."""
    from ganstyle.callbacks.nan_guard import NonFiniteLossError
    from ganstyle.data.images import DatasetError
    from ganstyle.run.checkpointing import CheckpointWriteError, NonFiniteCheckpointError
    from ganstyle.weights import WeightsFileError, WeightsNotFoundError

    explained = (
        ConfigError,
        DatasetError,
        WeightsNotFoundError,
        WeightsFileError,
        NonFiniteLossError,
        NonFiniteCheckpointError,
        CheckpointWriteError,
    )
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, explained):
            return str(seen)
        if isinstance(seen, MisconfigurationException):  # Lightning's word on a trainer setting
            return (
                f"Lightning cannot run these trainer settings: {str(seen).rstrip('.')}. Change that "
                "`trainer.<argument>` on the command line (see conf/trainer/default.yaml)."
            )
        seen = seen.__cause__ or seen.__context__
    return argument_error_message(error)


def argument_error_message(error: BaseException) -> str | None:
    """A ValueError (a class's own argument check) or a TypeError about the arguments themselves
    (unexpected or missing keyword) raised while Hydra built a config node: its own message, naming
    the config key and target instead of Hydra's wrapper text."""
    from hydra.errors import InstantiationException

    if not isinstance(error, InstantiationException):
        return None
    while isinstance(error.__cause__, InstantiationException):  # a network built inside a model
        error = error.__cause__
    cause = error.__cause__
    about_arguments = isinstance(cause, TypeError) and re.search(
        r"unexpected keyword|missing \d+ required", str(cause)
    )
    if not (isinstance(cause, ValueError) or about_arguments):
        return None
    found = re.search(r"full_key: (\S+)", str(error))
    target = re.search(r"target '([^']+)'", str(error))
    what = target.group(1) if target else "an object"
    where = f"{found.group(1)} ({what})" if found else what
    return f"{where} could not be built from its config: {str(cause).rstrip('.')}.{nearest_argument_hint(what, str(cause))}"
