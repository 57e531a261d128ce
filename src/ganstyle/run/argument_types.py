"""Values checked against the signature of the ``_target_`` they are passed to, before it is built.

``data.batch_size=two`` or ``model.optimizer.lr=2e-4`` written in YAML (a string there) fails with
one paragraph naming the key, what the target's annotation allows and an override that fixes it;
an unexpected keyword gets the nearest argument the target takes ("Did you mean ...?").
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from ganstyle.config import ConfigError

_SIMPLE_TYPES = (bool, int, float, str, type(None))


def target_class(node: Any) -> Any:
    """The class or function a ``_target_`` node names, or None when it cannot be imported."""
    if not isinstance(node, DictConfig) or "_target_" not in node:
        return None
    try:
        return hydra.utils.get_object(str(node._target_))
    except Exception:  # an unknown target fails at instantiation with Hydra's own message
        return None


def declared_types(target: Any) -> dict[str, tuple[type, ...]]:
    """Argument name -> the plain types its annotation allows, for arguments of simple types only."""
    functions = (
        [klass.__init__ for klass in reversed(target.__mro__)] if inspect.isclass(target) else [target]
    )
    declared: dict[str, tuple[type, ...]] = {}
    for function in functions:
        try:
            hints = typing.get_type_hints(function)
        except Exception:  # annotations naming types this module cannot resolve: not checked
            continue
        for name, hint in hints.items():
            allowed = (
                typing.get_args(hint)
                if typing.get_origin(hint) in (typing.Union, types.UnionType)
                else (hint,)
            )
            if allowed and all(kind in _SIMPLE_TYPES for kind in allowed):
                declared[name] = allowed
            else:
                declared.pop(name, None)
    return declared


def fits(value: Any, allowed: tuple[type, ...]) -> bool:
    if value is None:  # many arguments take None without saying so in their annotation
        return True
    if isinstance(value, bool):
        return bool in allowed
    if isinstance(value, int):
        return int in allowed or float in allowed
    return isinstance(value, tuple(kind for kind in allowed if kind is not type(None)))


def nearest_argument_hint(target: str, cause: str) -> str:
    """ " Did you mean <argument>?" for an unexpected keyword close to one the target takes."""
    import difflib

    unexpected = re.search(r"unexpected keyword argument '([^']+)'", cause)
    if not unexpected:
        return ""
    try:
        built = hydra.utils.get_object(target)
        functions = [klass.__init__ for klass in built.__mro__] if inspect.isclass(built) else [built]
        names = {name for function in functions for name in inspect.signature(function).parameters}
    except Exception:  # a target that cannot be inspected: the plain message stands
        return ""
    near = difflib.get_close_matches(unexpected.group(1), sorted(names - {"self", "args", "kwargs"}), n=1)
    return f" Did you mean {near[0]}?" if near else ""


def check_argument_types(node: Any, key: str) -> None:
    """Every value of a ``_target_`` node has a type its target's signature accepts."""
    target = target_class(node)
    if target is None:
        return
    declared = declared_types(target)
    for name in node:
        if name.startswith("_") or name not in declared or OmegaConf.is_missing(node, name):
            continue
        try:
            value = node[name]
        except Exception:  # an interpolation that cannot resolve: reported where it is used
            continue
        allowed = declared[name]
        if OmegaConf.is_config(value) or fits(value, allowed):
            continue
        names = " or ".join("null" if kind is type(None) else kind.__name__ for kind in allowed)
        example = {int: "4", float: "2.0e-4", bool: "true"}.get(allowed[0], "<value>")
        yaml_hint = (
            " In YAML files write numbers like 2.0e-4: plain 2e-4 is read as a string."
            if float in allowed
            else ""
        )
        raise ConfigError(
            f"{key}.{name}={value!r} is not a valid value: {getattr(target, '__name__', target)} takes "
            f"{name} as {names}. Pass one, e.g. `{key}.{name}={example}`.{yaml_hint}"
        )
