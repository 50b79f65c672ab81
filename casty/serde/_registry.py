"""Type registry and per-class metadata shared by the serializers."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from enum import Enum
from types import ModuleType
from typing import Any

__all__ = [
    "DataclassInfo",
    "TypeEntry",
    "TypeRegistry",
    "dataclass_info",
    "is_dataclass_type",
    "is_enum_type",
    "is_namedtuple_type",
    "lookup_loaded_class",
    "type_name",
]


def type_name(cls: type) -> str:
    """``module:qualname`` of a class: the name used on the wire when none is registered."""
    return f"{cls.__module__}:{cls.__qualname__}"


def _is_namedtuple_type(cls: type) -> bool:
    fields = getattr(cls, "_fields", None) if isinstance(cls, type) and issubclass(cls, tuple) else None
    return isinstance(fields, tuple) and all(isinstance(f, str) for f in fields)


def _is_dataclass_type(cls: type) -> bool:
    """Record types sent field by field: dataclasses and NamedTuples."""
    return isinstance(cls, type) and (dataclasses.is_dataclass(cls) or _is_namedtuple_type(cls))


def _is_enum_type(cls: type) -> bool:
    return isinstance(cls, type) and issubclass(cls, Enum)


class TypeEntry:
    """One registered class: its wire name and, for non-dataclass/enum types, its codec."""

    __slots__ = ("cls", "decode", "encode", "name")

    def __init__(
        self,
        cls: type,
        name: str,
        encode: Callable[[Any], Any] | None,
        decode: Callable[[Any], Any] | None,
    ) -> None:
        self.cls = cls
        self.name = name
        self.encode = encode
        self.decode = decode

    def __repr__(self) -> str:
        return f"TypeEntry({self.name!r})"


class TypeRegistry:
    """Classes a serializer may put on (and accept from) the wire by name.

    Dataclasses and enums need no codec; any other class must be registered with both
    ``encode`` (object to msgpack-able value) and ``decode`` (that value back to an object).
    ``name`` defaults to ``module:qualname``. Register types before the first connection
    uses them: encoders remember how they encoded a class.
    """

    __slots__ = ("_by_class", "_by_name")

    def __init__(self) -> None:
        self._by_class: dict[type, TypeEntry] = {}
        self._by_name: dict[str, TypeEntry] = {}

    def register(
        self,
        cls: type,
        *,
        name: str | None = None,
        encode: Callable[[Any], Any] | None = None,
        decode: Callable[[Any], Any] | None = None,
    ) -> None:
        """Register ``cls``; raises ``TypeError`` for a bad codec and ``ValueError`` for a name clash."""
        if not isinstance(cls, type):
            raise TypeError(f"register() needs a class, got {cls!r}")
        if (encode is None) != (decode is None):
            raise TypeError(f"{type_name(cls)}: give both encode and decode, or neither")
        if encode is None and not (_is_dataclass_type(cls) or _is_enum_type(cls)):
            raise TypeError(
                f"{type_name(cls)} is neither a dataclass nor an Enum: register it with encode= and decode="
            )
        wire_name = type_name(cls) if name is None else name
        if not isinstance(wire_name, str) or not wire_name:
            raise ValueError("a registered type name must be a non-empty string")
        other = self._by_name.get(wire_name)
        if other is not None and other.cls is not cls:
            raise ValueError(f"type name {wire_name!r} is already registered for {type_name(other.cls)}")
        previous = self._by_class.get(cls)
        if previous is not None and previous.name != wire_name:
            del self._by_name[previous.name]
        entry = TypeEntry(cls, wire_name, encode, decode)
        self._by_class[cls] = entry
        self._by_name[wire_name] = entry

    def entry_for_class(self, cls: type) -> TypeEntry | None:
        """The entry of ``cls`` itself (subclasses are not matched), or None."""
        return self._by_class.get(cls)

    def entry_for_name(self, name: str) -> TypeEntry | None:
        """The entry registered under wire name ``name``, or None."""
        return self._by_name.get(name)

    def __contains__(self, cls: object) -> bool:
        return cls in self._by_class

    def __len__(self) -> int:
        return len(self._by_class)


class DataclassInfo:
    """What the codec needs of a dataclass, computed once per class.

    ``names`` are the ``init=True`` fields: positional ones first, then keyword-only ones,
    which is the order of the generated ``__init__`` and of the values on the wire.
    """

    __slots__ = ("cls", "kw_names", "names", "positional")

    def __init__(self, cls: type) -> None:
        positional: list[str] = []
        kw_only: list[str] = []
        if _is_namedtuple_type(cls) and not dataclasses.is_dataclass(cls):
            positional.extend(cls._fields)  # type: ignore[attr-defined]
        for f in dataclasses.fields(cls) if dataclasses.is_dataclass(cls) else ():
            if not f.init:
                continue
            (kw_only if f.kw_only else positional).append(f.name)
        self.cls = cls
        self.positional = len(positional)
        self.kw_names = tuple(kw_only)
        self.names = (*positional, *kw_only)


_DATACLASS_INFO: dict[type, DataclassInfo] = {}


def dataclass_info(cls: type) -> DataclassInfo:
    """Cached :class:`DataclassInfo` of ``cls``."""
    info = _DATACLASS_INFO.get(cls)
    if info is None:
        info = _DATACLASS_INFO[cls] = DataclassInfo(cls)
    return info


def lookup_loaded_class(name: str) -> type | None:
    """Find ``module:qualname`` among already imported modules, without importing anything.

    Only plain dictionary lookups are made (no ``getattr``, so no descriptors or module
    ``__getattr__`` run). Names with ``<locals>``, dunder parts or non-identifier parts give
    None, as does anything that is not a class.
    """
    module_name, sep, qualname = name.partition(":")
    if not sep or not module_name or not qualname or "<locals>" in qualname:
        return None
    module = sys.modules.get(module_name)
    if module is None:
        return None
    obj: object = module
    for part in qualname.split("."):
        if not part.isidentifier() or part.startswith("__"):
            return None
        if not isinstance(obj, (ModuleType, type)):
            return None
        namespace = vars(obj)
        if part not in namespace:
            return None
        obj = namespace[part]
    return obj if isinstance(obj, type) else None


def is_dataclass_type(cls: type) -> bool:
    """True for a dataclass or NamedTuple class (not an instance)."""
    return _is_dataclass_type(cls)


def is_namedtuple_type(cls: type) -> bool:
    """True for a NamedTuple class (a tuple subclass with string ``_fields``)."""
    return _is_namedtuple_type(cls)


def is_enum_type(cls: type) -> bool:
    """True for an Enum subclass."""
    return _is_enum_type(cls)
