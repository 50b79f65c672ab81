"""Records on the wire: taking them apart into field values and building them back.

A record is a dataclass or a NamedTuple. One record travels as ``[type tag, *field values]``;
a :class:`RecordRun` of records of one class travels column-wise as ``[RUN, type tag, count,
fields of item 0, fields of item 1, ...]``, the type named once for the whole run.

This module decides, once per class, how its records may be read and built (see
:func:`record_kind`); the loops that do it are the run codec in ``casty._fastpath``
(compiled, with its pure twin), which touches a run's values one by one without a Python
call per record. Its interface to the encoder and decoder is narrow:

- encoding: :func:`run_writer` (takes runs of one class apart into the flat list that
  follows the run tag);
- decoding: :func:`record_builder` (builds one record from ``[tag, *values]``, from exactly
  its values, or every record of a run from a slice of the flat list), and
  :func:`mapped_record_builder` for records whose sender defined the class with other fields
  (protocol 3 on: definitions name the fields), which maps them by name.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from casty._fastpath import (
    KIND_CALL,
    KIND_DICT,
    KIND_SLOTS,
    KIND_TUPLE,
    MappedRecordBuilder,
    RecordBuilder,
    RunWriter,
)

from ._registry import dataclass_info, is_namedtuple_type
from ._wire import RUN_MARK

__all__ = [
    "MappedRecordBuilder",
    "MissingField",
    "RecordBuilder",
    "RecordRun",
    "RunWriter",
    "mapped_record_builder",
    "record_builder",
    "record_kind",
    "run_writer",
]


class RecordRun(list):  # type: ignore[type-arg]
    """A list that is sent column-wise when its items are all records (dataclasses or
    NamedTuples) of one class: ``[run-tag, type-tag, count, fields of item 0, fields of item 1,
    ...]``. The type is named once for the whole run and the decoder builds the items in one
    loop, instead of handling every item as a message of its own. It decodes as a plain list;
    a run of mixed or non-record items is sent as an ordinary list."""

    __slots__ = ()


# --------------------------------------------------------------------------- classification


def _generated(func: object, name: str) -> bool:
    """True for a method the dataclass or namedtuple machinery generated (not user code)."""
    code = getattr(func, "__code__", None)
    return code is not None and code.co_filename == "<string>" and getattr(func, "__name__", None) == name


def _fill_is_construction(cls: type) -> bool:
    """True when setting a dataclass's fields on ``object.__new__(cls)`` makes exactly the
    object ``cls(*values)`` would.

    That is: ``__init__`` is the one ``@dataclass`` generated for this class, every field is
    an ``init=True`` positional field without a ``default_factory``, there is no
    ``__post_init__``, ``__new__`` is ``object.__new__``, and ``__setattr__`` is either
    ``object.__setattr__`` or the one a frozen dataclass generates (whose ``__init__`` sets
    fields through ``object.__setattr__``). No field name may be shadowed by a descriptor other
    than a slot.
    """
    if not dataclasses.is_dataclass(cls) or hasattr(cls, "__post_init__"):
        return False
    if cls.__new__ is not object.__new__:
        return False
    if not _generated(vars(cls).get("__init__"), "__init__"):
        return False
    setattr_ = cls.__setattr__
    if setattr_ is not object.__setattr__:
        params = getattr(cls, "__dataclass_params__", None)
        if not (params is not None and params.frozen and _generated(setattr_, "__setattr__")):
            return False
    for f in dataclasses.fields(cls):
        if not f.init or f.default_factory is not dataclasses.MISSING or f.kw_only:
            return False
        if not f.name.isidentifier():
            return False
        for klass in cls.__mro__:
            attr = vars(klass).get(f.name)
            if attr is None:
                continue
            if hasattr(type(attr), "__set__") and type(attr).__name__ != "member_descriptor":
                return False
            break
    return True


def _plain_namedtuple(cls: type) -> bool:
    """True for a NamedTuple whose ``__new__`` is the generated one (``tuple.__new__`` of its
    values), so ``tuple.__new__(cls, values)`` is what ``cls(*values)`` makes."""
    if not is_namedtuple_type(cls) or dataclasses.is_dataclass(cls):
        return False
    new = cls.__new__
    func_globals = getattr(new, "__globals__", None)
    return (
        isinstance(func_globals, dict)
        and func_globals.get("_tuple_new") is tuple.__new__
        and getattr(new, "__name__", None) == "__new__"
        and cls.__init__ is object.__init__  # type: ignore[misc]
    )


_KINDS: dict[type, int] = {}


def record_kind(cls: type) -> int:
    """How records of ``cls`` are built (cached per class): by filling their fields
    (``KIND_DICT``, ``KIND_SLOTS``), as a tuple (``KIND_TUPLE``) or by calling the class
    (``KIND_CALL``)."""
    kind = _KINDS.get(cls)
    if kind is None:
        if _plain_namedtuple(cls):
            kind = KIND_TUPLE
        elif _fill_is_construction(cls):
            kind = KIND_SLOTS if "__slots__" in vars(cls) else KIND_DICT
        else:
            kind = KIND_CALL
        _KINDS[cls] = kind
    return kind


# --------------------------------------------------------------------------- encoding


def run_writer(cls: type, type_mark: Any) -> RunWriter | None:
    """The writer of runs of ``cls`` under ``type_mark``; None for a record without fields."""
    names = dataclass_info(cls).names
    if not names:
        return None
    by_index = is_namedtuple_type(cls) and not dataclasses.is_dataclass(cls)
    return RunWriter(cls, names, RUN_MARK, type_mark, by_index)


# --------------------------------------------------------------------------- decoding


def record_builder(cls: type) -> RecordBuilder:
    """The builder of records of ``cls``: one from ``[tag, *values]`` (``build``), one from
    exactly its values (``make``) or a run's worth from a flat list (``run``)."""
    info = dataclass_info(cls)
    return RecordBuilder(cls, info.names, info.positional, record_kind(cls))


class MissingField(Exception):
    """A field of the receiving class that the sender does not send and that has no default."""

    def __init__(self, cls: type, field: str) -> None:
        super().__init__(field)
        self.cls = cls
        self.field = field


def _field_defaults(cls: type) -> dict[str, tuple[Any, Any]]:
    """For each init field of ``cls`` with a default: ``(default, None)`` or ``(None, factory)``."""
    out: dict[str, tuple[Any, Any]] = {}
    if dataclasses.is_dataclass(cls):
        for f in dataclasses.fields(cls):
            if f.default_factory is not dataclasses.MISSING:
                out[f.name] = (None, f.default_factory)
            elif f.default is not dataclasses.MISSING:
                out[f.name] = (f.default, None)
    elif is_namedtuple_type(cls):
        for name, value in getattr(cls, "_field_defaults", {}).items():
            out[name] = (value, None)
    return out


def mapped_record_builder(cls: type, wire_fields: tuple[str, ...]) -> MappedRecordBuilder:
    """The builder of records of ``cls`` sent as values of ``wire_fields`` (the sender's
    fields, in its order, that differ from the class's): each field of ``cls`` takes the value
    of the sent field of the same name, or its default when none was sent; sent fields the
    class lacks are ignored. Raises :class:`MissingField` for a field of ``cls`` that was not
    sent and has no default. Build it once per connection and class: it holds the mapping."""
    info = dataclass_info(cls)
    position = {name: i for i, name in enumerate(wire_fields)}
    known = _field_defaults(cls)
    sources: list[int] = []
    defaults: list[Any] = []
    factories: list[Any] = []
    for name in info.names:
        src = position.get(name, -1)
        default, factory = None, None
        if src < 0:
            if name not in known:
                raise MissingField(cls, name)
            default, factory = known[name]
        sources.append(src)
        defaults.append(default)
        factories.append(factory)
    return MappedRecordBuilder(
        cls,
        info.names,
        info.positional,
        record_kind(cls),
        len(wire_fields),
        tuple(sources),
        tuple(defaults),
        tuple(factories),
    )
