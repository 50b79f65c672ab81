"""Environment variables that override ``casty.toml``.

A variable ``CASTY_<SECTION>__<KEY>`` sets the knob ``<section>.<key>``: the name after
``CASTY_`` is the knob's dotted path written in upper case with a double underscore for each
dot, so nested tables take one more ``__`` per level::

    CASTY_REMOTE__PORT=0                                  -> remote.port
    CASTY_CLUSTER__SEED_NODES=node-1:25520,node-2:25520   -> cluster.seed_nodes
    CASTY_CLUSTER__FAILURE_DETECTOR__THRESHOLD=12         -> cluster.failure_detector.threshold

Only names with a double underscore after ``CASTY_`` are read here (``CASTY_NO_EXTENSIONS``
and the like are not configuration). The text of a variable is read by the type of its knob:
``true``/``false`` (also ``1``/``0``, ``yes``/``no``, ``on``/``off``, any case) for a bool, a
decimal number for int and float, the text as it is for a string, and a comma-separated list
for a list (``host:port`` items for addresses; an empty value is the empty list). The value
then goes through the same validation as the file, so every constraint holds; an error names
the variable, for example ``CASTY_REMOTE__PORT (remote.port): expected int, got 'abc'``.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import typing
from collections.abc import Mapping
from typing import Any, Literal

from casty.errors import ConfigError

from ._validation import HostPort, Section, hints, is_section

__all__ = ["ENV_PREFIX", "apply_environment", "environment_overrides", "variable_name"]

ENV_PREFIX = "CASTY_"
"""Prefix of every configuration variable."""

_SEPARATOR = "__"
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
_INT = re.compile(r"[+-]?\d+")


def variable_name(path: str) -> str:
    """The environment variable that sets the knob at dotted ``path``."""
    return ENV_PREFIX + path.replace(".", _SEPARATOR).upper()


def _is_override(name: str) -> bool:
    return name.startswith(ENV_PREFIX) and _SEPARATOR in name[len(ENV_PREFIX) :]


def _fail(var: str, path: str, message: str) -> ConfigError:
    return ConfigError(f"{var} ({path}): {message}")


def _from_text(text: str, tp: Any, var: str, path: str) -> Any:
    """``text`` read as a value of the type hint ``tp`` (in its TOML form)."""
    if tp is bool:
        word = text.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise _fail(var, path, f"expected bool (true or false), got {text!r}")
    if tp is int:
        if not _INT.fullmatch(text.strip()):
            raise _fail(var, path, f"expected int, got {text!r}")
        return int(text.strip())
    if tp is float:
        stripped = text.strip()
        if _INT.fullmatch(stripped):
            return int(stripped)
        try:
            return float(stripped)
        except ValueError:
            raise _fail(var, path, f"expected float, got {text!r}") from None
    if tp is str or typing.get_origin(tp) is Literal:
        return text
    if tp == HostPort:
        return text.strip()
    if typing.get_origin(tp) is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            items = [item.strip() for item in text.split(",")]
            if items == [""]:
                return []
            for i, item in enumerate(items):
                if not item:
                    raise _fail(var, path, f"empty item {i} in the comma-separated list {text!r}")
            return [_from_text(item, args[0], var, f"{path}[{i}]") for i, item in enumerate(items)]
    raise _fail(var, path, "cannot be set from the environment")


def _leaf_paths(cls: type[Section], prefix: str = "") -> list[str]:
    found: list[str] = []
    types = hints(cls)
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        tp = types[f.name]
        if is_section(tp):
            found.extend(_leaf_paths(tp, f"{prefix}{f.name}."))
        else:
            found.append(f"{prefix}{f.name}")
    return found


def _field_at(root: type[Section], parts: list[str], var: str) -> tuple[str, Any]:
    """The dotted path and type hint of the knob named by ``parts``; a ConfigError naming
    ``var`` when there is no such knob (with the closest variable name when there is one)."""
    cls: type[Section] = root
    walked: list[str] = []
    for index, part in enumerate(parts):
        types = hints(cls)
        names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        if part not in types:
            close = difflib.get_close_matches(part, names, n=1)
            hint = ""
            elsewhere = [p for p in _leaf_paths(root) if p.rsplit(".", 1)[-1] == part]
            if elsewhere and index == len(parts) - 1:
                hint = f" (did you mean {variable_name(elsewhere[0])}?)"
            elif close:
                tail = "__<KEY>" if is_section(types[close[0]]) else ""
                hint = f" (did you mean {variable_name('.'.join([*walked, close[0]]))}{tail}?)"
            raise ConfigError(f"{var}: no configuration key '{'.'.join([*walked, part])}'{hint}")
        walked.append(part)
        tp = types[part]
        last = index == len(parts) - 1
        if is_section(tp):
            if last:
                raise ConfigError(f"{var}: '{'.'.join(walked)}' is a table; set its keys one by one")
            cls = tp
        elif not last:
            raise ConfigError(f"{var}: '{'.'.join(walked)}' is not a table")
        else:
            return ".".join(walked), tp
    raise ConfigError(f"{var}: names no configuration key")  # pragma: no cover - parts is never empty


def environment_overrides(root: type[Section], env: Mapping[str, str] | None = None) -> dict[str, tuple[str, Any]]:
    """``dotted path -> (variable, value)`` for every ``CASTY_*__*`` variable in ``env``
    (default: ``os.environ``), each value read by its knob's type but not yet validated."""
    environ = os.environ if env is None else env
    found: dict[str, tuple[str, Any]] = {}
    for var in sorted(environ):
        if not _is_override(var):
            continue
        parts = [p.lower() for p in var[len(ENV_PREFIX) :].split(_SEPARATOR)]
        if any(not p for p in parts):
            raise ConfigError(f"{var}: malformed name: use CASTY_<SECTION>__<KEY>, '__' between levels")
        path, tp = _field_at(root, parts, var)
        found[path] = (var, _from_text(environ[var], tp, var, path))
    return found


def _overlay(data: dict[str, Any], path: str, value: Any) -> None:
    table = data
    *tables, key = path.split(".")
    for name in tables:
        inner = table.get(name)
        if not isinstance(inner, dict):
            inner = {}
            table[name] = inner
        table = inner
    table[key] = value


_ERROR_PATH = re.compile(r"^([a-z_][a-z0-9_.]*)(?:\[\d+\])*: ")


def apply_environment(root: type[Section], data: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Any:
    """``root`` built from the parsed file ``data`` overlaid with the environment's overrides,
    validated once as a whole; an error about a key a variable set names that variable."""
    overrides = environment_overrides(root, env)
    merged: dict[str, Any] = _deep_copy(data)
    for path, (_, value) in overrides.items():
        _overlay(merged, path, value)
    try:
        return root.from_dict(merged)
    except ConfigError as exc:
        raise _naming_variable(exc, overrides) from None


def _naming_variable(exc: ConfigError, overrides: Mapping[str, tuple[str, Any]]) -> ConfigError:
    """``exc`` reworded to name the variable that set the key it is about (or that set another
    key it mentions); ``exc`` itself when no variable is involved."""
    message = str(exc)
    match = _ERROR_PATH.match(message)
    if match is not None and match.group(1) in overrides:
        key, _, problem = message.partition(": ")
        return ConfigError(f"{overrides[match.group(1)][0]} ({key}): {problem}")
    mentioned = [var for path, (var, _) in overrides.items() if path in message]
    if mentioned:
        return ConfigError(f"{message} (set by {', '.join(mentioned)})")
    return exc


def _deep_copy(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in data.items()}
