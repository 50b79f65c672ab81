"""The validation engine every configuration section is built on.

Validation is generic: :class:`Section` walks its dataclass fields, driven by their type
hints plus the declarative constraints kept in the field metadata (see ``_knobs``), so a new
knob is one new field. It runs in ``__post_init__``, which means values built with
``dataclasses.replace`` are checked (and normalised) exactly like values read from a file.
Every error is a :class:`~casty.errors.ConfigError` naming the dotted key, for example
``cluster.port: expected int, got str``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, TypeVar

from casty.errors import ConfigError

__all__ = ["HostPort", "Section", "all_sections", "fail", "hints", "is_section", "plain", "type_name"]

HostPort = tuple[str, int]

_S = TypeVar("_S", bound="Section")

_hints_cache: dict[type, dict[str, Any]] = {}


def hints(cls: type) -> dict[str, Any]:
    """The resolved type hints of a section class (cached)."""
    found = _hints_cache.get(cls)
    if found is None:
        found = typing.get_type_hints(cls)
        _hints_cache[cls] = found
    return found


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def type_name(tp: Any) -> str:
    """How a type hint is named to users: in error messages and in the reference."""
    if isinstance(tp, type):
        if dataclasses.is_dataclass(tp):
            return "table"
        return tp.__name__
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Literal:
        return "str"
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"list of {type_name(args[0])}"
        return "[" + ", ".join(type_name(a) for a in args) + "]"
    return str(tp)


def _got(value: Any) -> str:
    if isinstance(value, Mapping):
        return "table"
    if isinstance(value, (list, tuple)):
        return "list"
    return type(value).__name__


def fail(path: str, message: str) -> ConfigError:
    """The error for the key ``path``: ``path: message``."""
    return ConfigError(f"{path}: {message}")


def _parse_host_port(value: Any, path: str) -> Any:
    """Accept ``"host:port"`` (``"[v6]:port"`` for IPv6) as well as ``[host, port]``."""
    if not isinstance(value, str):
        return value
    host, sep, port_text = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit():
        raise fail(path, f"expected 'host:port' or [host, port], got {value!r}")
    return (host, int(port_text))


def _coerce(value: Any, tp: Any, path: str) -> Any:
    """Check ``value`` against the type hint ``tp``; return it normalised (lists to tuples,
    ints to floats).  Raises ConfigError naming ``path`` on mismatch."""
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise fail(path, f"expected bool, got {_got(value)}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise fail(path, f"expected int, got {_got(value)}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                result = float(value)
            except OverflowError:
                raise fail(path, f"number out of range: {value!r}") from None
            if math.isnan(result):
                raise fail(path, "must be a number, got nan")
            return result
        raise fail(path, f"expected float, got {_got(value)}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise fail(path, f"expected str, got {_got(value)}")
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        raise fail(path, f"expected {tp.__name__}, got {_got(value)}")
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Literal:
        if not isinstance(value, str):
            raise fail(path, f"expected str, got {_got(value)}")
        if value not in args:
            choices = ", ".join(str(a) for a in args)
            raise fail(path, f"must be one of {choices}, got {value!r}")
        return value
    if origin is tuple:
        if tp == HostPort:
            value = _parse_host_port(value, path)
        if len(args) == 2 and args[1] is Ellipsis and isinstance(value, (set, frozenset)):
            value = sorted(value, key=repr)  # a set (casty 0.21's roles) in a stable order
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise fail(path, f"expected {type_name(tp)}, got {_got(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(item, args[0], f"{path}[{i}]") for i, item in enumerate(value))
        if len(value) != len(args):
            raise fail(path, f"expected {type_name(tp)}, got a list of {len(value)} items")
        items = tuple(_coerce(item, a, f"{path}[{i}]") for i, (item, a) in enumerate(zip(value, args, strict=True)))
        if tp == HostPort and not 1 <= items[1] <= 65535:
            raise fail(f"{path}[1]", f"must be a port in 1..65535, got {items[1]!r}")
        return items
    raise TypeError(f"unsupported config type {tp!r} at {path}")


class Section:
    """Base of every section: validates and normalises its fields after construction.

    A subclass is a frozen dataclass with ``_path`` set to its dotted TOML table name; it
    may override ``_check_relations`` for constraints between several of its fields.
    """

    __slots__ = ()
    _path: ClassVar[str] = ""

    def __post_init__(self) -> None:
        types = hints(type(self))
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            path = _join(self._path, f.name)
            value = getattr(self, f.name)
            normalised = _coerce(value, types[f.name], path)
            for check in f.metadata.get("checks", ()):
                problem = check(normalised)
                if problem is not None:
                    raise fail(path, problem)
            if normalised is not value:
                object.__setattr__(self, f.name, normalised)
        self._check_relations()

    def _check_relations(self) -> None:
        """Constraints between several fields of one section (none by default)."""

    @classmethod
    def from_dict(cls: type[_S], data: Mapping[str, Any]) -> _S:
        """Build the section from a parsed TOML table; unknown keys are errors."""
        if not isinstance(data, Mapping):
            raise fail(cls._path or "config", f"expected table, got {_got(data)}")
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        types = hints(cls)
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            path = _join(cls._path, str(key))
            if key not in fields:
                close = difflib.get_close_matches(str(key), list(fields), n=1)
                hint = f" (did you mean '{_join(cls._path, close[0])}'?)" if close else ""
                raise ConfigError(f"unknown key '{path}'{hint}")
            tp = types[key]
            if isinstance(tp, type) and issubclass(tp, Section):
                kwargs[key] = tp.from_dict(value)
            else:
                kwargs[key] = value
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """The section as plain TOML-compatible data (tuples become lists)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            out[f.name] = plain(getattr(self, f.name))
        return out


def plain(value: Any) -> Any:
    """A setting's value as plain TOML-compatible data."""
    if isinstance(value, Section):
        return value.to_dict()
    if isinstance(value, tuple):
        return [plain(v) for v in value]
    return value


def is_section(tp: Any) -> bool:
    """True for a type hint naming a section class (a nested TOML table)."""
    return isinstance(tp, type) and issubclass(tp, Section)


def all_sections(root: type[Section]) -> list[type[Section]]:
    """``root`` and every section nested in it, depth first, in field order."""
    found: list[type[Section]] = [root]
    types = hints(root)
    for f in dataclasses.fields(root):  # type: ignore[arg-type]
        tp = types[f.name]
        if is_section(tp):
            found.extend(all_sections(tp))
    return found
