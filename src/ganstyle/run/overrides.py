"""Command-line overrides Hydra could not apply, explained so a misspelt key gets "did you mean ...?".

Hydra answers ``loss.stlye_weight=1`` with "To append to your config use +loss.stlye_weight=1"; following
that hint adds a key nothing reads (or fails later with a traceback). :func:`check_overrides` composes
the config as ``train.py`` does, with the same overrides, and turns a composition error into one
paragraph: the key, the nearest valid names, and for ``data.root`` on a data config without a root,
the ``data=`` option that reads the user's folder. ``train.py`` calls it after Hydra's own composition
of a single run failed, and before a sweep starts (every job's overrides, before the sweep folder is
made). :func:`check_output_folder_in_argv` checks the folder Hydra will create, before Hydra starts.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import MissingConfigException
from omegaconf import DictConfig, OmegaConf

from ganstyle.config import ConfigError
from ganstyle.run.config_checks import DATA_KINDS, choice, model_data_kinds

# The one Hydra flag this check understands; any other (--cfg, --help, -cn, ...) leaves the command
# to Hydra, since it may not train or may read another config.
_HYDRA_FLAGS_WE_PASS = ("-m", "--multirun")
# Data keys that name the user's own folders: without them in the data config, the user needs another
# data= option (the one for the model's data kind), not a spelling.
_PATH_KEYS = ("root", "content_root", "val_root")


def single_run_overrides(args: Sequence[str]) -> list[Any] | None:
    """The overrides of one job of the command (a sweep's first value), or None when the command
    uses Hydra syntax this check does not model (it is then left to Hydra)."""
    try:
        parsed = OverridesParser.create().parse_overrides(list(args))
    except Exception:  # a syntax error: Hydra reports it with the position
        return None
    single = []
    for override in parsed:
        if override.key_or_group == "hydra.searchpath" and not override.is_sweep_override():
            # An added config folder holds configs the other overrides choose (model=minimal_gan in
            # docs/adding_a_model.md): first, so every shorter command line tried below has it too.
            single.insert(0, (override, override.input_line))
            continue
        if override.key_or_group.startswith(("hydra.", "hydra/")) or override.key_or_group == "hydra":
            continue
        if override.is_sweep_override():
            try:
                first = next(iter(override.sweep_string_iterator()))
            except Exception:  # interval sweeps (Optuna): any value in a range; the key is kept
                continue
            single.append((override, f"{override.get_key_element()}={first}"))
        else:
            single.append((override, override.input_line))
    return single


def other_sweep_values(single: list[Any]) -> list[tuple[int, str]]:
    """For each sweep override of ``single`` (see :func:`single_run_overrides`), its values after the
    first as ``(position, "key=value")``: a bad value anywhere in a sweep is found before the sweep
    folder is made, not when Hydra composes that job."""
    others = []
    for index, (override, _) in enumerate(single):
        if not override.is_sweep_override():
            continue
        try:
            values = list(override.sweep_string_iterator())
        except Exception:  # interval sweeps (Optuna) and glob(): left to Hydra
            continue
        others.extend((index, f"{override.get_key_element()}={value}") for value in values[1:])
    return others


def check_group_option_names(single: list[Any], config_dir: str) -> None:
    """``model=cyclegan.yaml``: group options are named without the file extension; and in a sweep
    (``-m model=cyclegan,cyclgan``), every option must exist before the sweep folder is made."""
    for override, line in single:
        group, _, value = line.partition("=")
        group_dir = Path(config_dir) / group.lstrip("+~")
        if not group_dir.is_dir() or "/" in group:
            continue
        options = sorted(path.stem for path in group_dir.glob("*.yaml"))
        if value.endswith((".yaml", ".yml")):
            raise ConfigError(
                f"{override.input_line}: config group options are named without .yaml: use "
                f"`{group}={value.rsplit('.', 1)[0]}`. The {group} options are: {', '.join(options)}."
            )
        if not override.is_sweep_override():
            continue  # a single unknown option: Hydra's own message lists the options
        try:
            values = [str(item) for item in override.sweep_string_iterator()]
        except Exception:  # glob() and other sweeps Hydra expands itself
            continue
        if "null" in values:
            raise ConfigError(
                f"{override.input_line}: `null` cannot be one value of a sweep over {group}: Hydra drops a "
                f"config group for a whole command, not for one job. Run the `{group}=null` job as its own "
                "command (without -m), and sweep the other values together."
            )
        unknown = [item for item in values if item not in options]
        if unknown:
            near = difflib.get_close_matches(unknown[0], options, n=1)
            hint = f" Did you mean {group}={near[0]}?" if near else ""
            raise ConfigError(
                f"{override.input_line}: {', '.join(repr(item) for item in unknown)} is not a {group} option, so "
                f"that job of the sweep could not start.{hint} The {group} options are: {', '.join(options)}."
            )


def compose_run(config_dir: str, overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
        return compose("train", overrides=overrides, return_hydra_config=True)


def all_keys(node: Any, prefix: str = "") -> list[str]:
    """Every dotted key of a config (``trainer.max_epochs``), containers included."""
    keys = []
    if isinstance(node, DictConfig):
        for name in node:
            key = f"{prefix}{name}"
            keys.append(key)
            try:
                child = node._get_node(name)
            except Exception:
                continue
            keys.extend(all_keys(child, f"{key}."))
    return keys


def nearest_keys(key: str, config: DictConfig, group_names: Sequence[str]) -> list[str]:
    """Valid keys closest to a misspelt one (at most three, the clearly best first): first among its
    siblings, then anywhere in the config."""
    keys = sorted({k for k in all_keys(config) if not k.startswith("hydra")} | set(group_names))
    parent = key.rpartition(".")[0]
    for candidates, cutoff in (([k for k in keys if k.rpartition(".")[0] == parent], 0.6), (keys, 0.75)):
        scored = sorted(
            ((difflib.SequenceMatcher(None, key, k).ratio(), k) for k in candidates), reverse=True
        )
        scored = [(score, k) for score, k in scored if score >= cutoff]
        if scored:
            best = scored[0][0]
            return [k for score, k in scored[:3] if score >= best - 0.05]
    return []


def data_option_hint(config: DictConfig, name: str) -> str:
    """For a path key the chosen data config lacks: the data options of this model that take it."""
    kinds = model_data_kinds(config.get("model"))
    options = [DATA_KINDS[kind][1] for kind in kinds if f"data.{name}=" in DATA_KINDS[kind][1]]
    data_option, model = choice(config, "data") or "this data config", choice(config, "model")
    if not options:
        return (
            f"data={data_option} has no data.{name} (its keys: {', '.join(sorted(config.data))}). "
            "Choose a data= option that reads your files (see conf/data/ and README.md)."
        )
    command = f"python train.py {f'model={model} ' if model else ''}{options[0]}"
    also = f" (or `{options[1]}`)" if len(options) > 1 else ""
    return (
        f"data={data_option} has no data.{name}: it builds its own images and reads no folder. To train "
        f"on your folder, choose the data option that reads it: `{command}`{also}."
    )


def explain_composition_error(
    error: Exception, override: Any, line: str, before: list[str], config_dir: str
) -> str | None:
    """One paragraph for an override Hydra could not apply; None when this is not about that key."""
    key = override.key_or_group
    cause = error.__cause__
    cause_text = str(cause).splitlines()[0] if cause is not None else str(error).splitlines()[0]
    try:
        base = compose_run(config_dir, before)
    except Exception:  # the other overrides fail too: let Hydra report the first
        return None
    try:
        exists = OmegaConf.select(base, key, throw_on_missing=False) is not None or key in all_keys(base)
    except Exception:
        exists = False
    if not exists:
        name = key.rpartition(".")[2]
        line = override.input_line  # as the user typed it (a sweep, not its first value)
        if key.startswith("data.") and name in _PATH_KEYS:
            return f"{line}: {data_option_hint(base, name)}"
        groups = sorted(
            str(group) for group in (base.hydra.runtime.choices.keys() if "hydra" in base else ())
        )
        near = nearest_keys(key, base, [g for g in groups if not g.startswith("hydra")])
        suggestion = f"Did you mean {' or '.join(near)}?" if near else "Nothing in it is spelt similarly."
        return (
            f"{line}: {key} is not a key of this run's config. {suggestion} `python train.py --cfg job` "
            "prints every key this run has."
        )
    line, value = override.input_line, line.partition("=")[2]
    return (
        f"{line}: {value!r} is not a valid value for {key} ({cause_text}). Pass a value of the key's type, "
        f"e.g. a number like 1.0e4 for a loss weight."
    )


def check_overrides(argv: Sequence[str], config_dir: str) -> None:
    """Raise a ConfigError naming the first override that cannot be applied, with the fix."""
    args = list(argv[1:])
    if any(arg.startswith("-") and arg not in _HYDRA_FLAGS_WE_PASS for arg in args):
        return  # --cfg, --help, -cn, ...: Hydra's own modes
    single = single_run_overrides([arg for arg in args if arg not in _HYDRA_FLAGS_WE_PASS])
    if not single:
        return
    check_group_option_names(single, config_dir)
    lines = [line for _, line in single]
    find_first_bad_override(single, lines, config_dir)
    for position, line in other_sweep_values(single):
        variant = [*lines[:position], line, *lines[position + 1 :]]
        find_first_bad_override([*single[:position], (single[position][0], line)], variant, config_dir)


def find_first_bad_override(single: list[Any], lines: list[str], config_dir: str) -> None:
    """Raise a ConfigError for the first of ``lines`` that Hydra cannot apply; nothing if all compose."""
    try:
        compose_run(config_dir, lines)
        return
    except MissingConfigException:  # an unknown config option: Hydra's message lists the options
        return
    except Exception:  # a key or value Hydra could not apply (ConfigCompositionException, ConfigKeyError)
        pass
    # The first override whose addition breaks composition is the one at fault.
    for index, (override, line) in enumerate(single):
        try:
            compose_run(config_dir, lines[: index + 1])
        except MissingConfigException:
            return
        except Exception as error:
            message = explain_composition_error(error, override, line, lines[:index], config_dir)
            if message:
                raise ConfigError(message) from None
            return


def check_output_folder_in_argv(argv: Sequence[str]) -> None:
    """The folder Hydra will create for this run (``hydra.run.dir``) or sweep (``hydra.sweep.dir``),
    or the folder holding it (``paths.log_dir``, by default ``outputs/`` beside train.py), can be made
    and written: otherwise Hydra's own folder creation fails with a traceback before any of ganstyle's
    code runs. Values with ``${...}`` are resolved by Hydra and not checked here."""
    multirun = any(arg in ("-m", "--multirun") for arg in argv)
    wanted = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    values = {}
    for arg in argv[1:]:
        key, sep, value = arg.lstrip("+").partition("=")
        if sep and key in (wanted, "paths.log_dir"):
            values[key] = value.strip("'\"")
    key = wanted if wanted in values else "paths.log_dir"
    folder = values.get(key)
    if folder is None:
        key, folder = "paths.log_dir", os.path.join(os.environ.get("GANSTYLE_ROOT", "."), "outputs")
    if "${" in folder:
        return
    problem = folder_problem(Path(folder).expanduser())
    if problem:
        setting = f"{key}={folder}" if key in values else f"the default output folder {folder}"
        fix = f"Pass a folder you can write to, e.g. `{wanted}=$HOME/ganstyle-runs/<name>`"
        if key == "paths.log_dir":
            fix = "Pass a folder you can write to with `paths.log_dir=<folder>` (runs go in <folder>/<task>/)"
        raise ConfigError(f"{setting}: the run's folder cannot be made there: {problem}. {fix}.")


def folder_problem(folder: Path) -> str | None:
    """Why ``folder`` could not be created (or written, if it exists), or None. Tried for real (a
    temporary folder made and removed in the nearest existing ancestor), since permission bits do not
    tell for root, read-only mounts or special filesystems."""
    import tempfile

    folder = folder.absolute()
    ancestor = folder
    while not ancestor.exists():
        if ancestor.is_symlink():
            return f"{ancestor} is a broken symbolic link"
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return (
            f"{ancestor} is a file, not a folder"
            if ancestor != folder
            else f"{folder} is a file, not a folder"
        )
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".ganstyle-write-test-", dir=ancestor))
    except OSError as error:
        return f"no folder can be created in {ancestor} ({error.strerror or error})"
    return None
