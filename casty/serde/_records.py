"""Records on the wire: taking them apart into field values and building them back.

A record is a dataclass or a NamedTuple. One record travels as ``[type tag, *field values]``;
a :class:`RecordRun` of records of one class travels column-wise as ``[RUN, type tag, count,
fields of item 0, fields of item 1, ...]``, the type named once for the whole run.

This module is the record-run codec and nothing else touches the run's values one by one.
Its interface to the encoder and decoder is narrow:

- encoding: :func:`run_class` (the class every item shares) and :func:`flatten_run` (the
  flat list that follows the run tag);
- decoding: :func:`record_builder` (one record from ``[tag, *values]``), :func:`record_maker`
  (one record from exactly its values) and :func:`run_builder` (every record of a run from a
  slice of the flat list).

The loops here are the hot part of sending and receiving runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from ._registry import dataclass_info
from ._wire import RUN_MARK

__all__ = [
    "RecordMaker",
    "RecordRun",
    "RunBuilder",
    "flatten_run",
    "plain_record_fields",
    "record_builder",
    "record_maker",
    "run_builder",
    "run_class",
]

#: builds one record from exactly its field values, in wire order
RecordMaker = Callable[[list[Any]], Any]
#: builds the records of a run from ``items[start:end]``, ``arity`` values each
RunBuilder = Callable[[list[Any], int, int], list[Any]]


class RecordRun(list):  # type: ignore[type-arg]
    """A list that is sent column-wise when its items are all records (dataclasses or
    NamedTuples) of one class: ``[run-tag, type-tag, count, fields of item 0, fields of item 1,
    ...]``. The type is named once for the whole run and the decoder builds the items in one
    loop, instead of handling every item as a message of its own. It decodes as a plain list;
    a run of mixed or non-record items is sent as an ordinary list."""

    __slots__ = ()


# --------------------------------------------------------------------------- encoding


def run_class(run: list[Any]) -> type | None:
    """The class every item of the non-empty ``run`` has, or None when the classes differ."""
    cls = type(run[0])
    for item in run:
        if type(item) is not cls:
            return None
    return cls


def flatten_run(type_mark: Any, getter: Callable[[Any], Any], arity: int, run: list[Any]) -> list[Any]:
    """``[RUN, type_mark, count, *fields of every item]``; ``getter`` returns an item's
    ``arity`` field values (the value itself when ``arity`` is 1, else a tuple)."""
    flat: list[Any] = [RUN_MARK, type_mark, len(run)]
    if arity == 1:
        flat.extend([getter(item) for item in run])
    else:
        extend = flat.extend
        for item in run:
            extend(getter(item))
    return flat


# --------------------------------------------------------------------------- decoding


def plain_record_fields(cls: type) -> tuple[str, ...] | None:
    """The field names of a dataclass whose construction is nothing but storing its fields.

    That is: the ``__init__`` is the one ``@dataclass`` generated, every field is an
    ``init=True`` field with no ``default_factory`` that ``__init__`` would run, there is no
    ``__post_init__``, and instances keep their fields in ``__dict__`` (no ``__slots__``).
    For such a class, filling ``__dict__`` gives exactly the object ``cls(*values)`` would,
    without the per-field ``object.__setattr__`` calls of a frozen dataclass's ``__init__``.
    Any other class (and every NamedTuple) is built through its constructor.
    """
    if not dataclasses.is_dataclass(cls) or "__slots__" in vars(cls) or hasattr(cls, "__post_init__"):
        return None
    init = vars(cls).get("__init__")
    code = getattr(init, "__code__", None)
    if code is None or code.co_filename != "<string>" or code.co_name != "__init__":
        return None
    names: list[str] = []
    for f in dataclasses.fields(cls):
        if not f.init or f.default_factory is not dataclasses.MISSING or f.kw_only:
            return None
        names.append(f.name)
    if any(not n.isidentifier() for n in names):
        return None
    return tuple(names)


def _fast_record_builder(cls: type, names: tuple[str, ...]) -> Callable[[list[Any]], Any]:
    count = len(names)
    new = object.__new__

    def build(items: list[Any]) -> Any:
        if len(items) - 1 != count:
            raise TypeError(f"{cls.__qualname__} takes {count} fields, got {len(items) - 1}")
        obj: Any = new(cls)
        obj.__dict__.update(zip(names, items[1:], strict=False))
        return obj

    return build


def record_builder(cls: type) -> Callable[[list[Any]], Any]:
    """Build one record of ``cls`` from its message array ``[tag, *field values]``."""
    info = dataclass_info(cls)
    plain = plain_record_fields(cls)
    if plain is not None:
        return _fast_record_builder(cls, plain)
    if not info.kw_names:

        def build_positional(items: list[Any]) -> Any:
            return cls(*items[1:])

        return build_positional
    npos = info.positional
    kw_names = info.kw_names
    total = npos + len(kw_names)

    def build_keywords(items: list[Any]) -> Any:
        if len(items) - 1 > total:
            raise TypeError(f"{len(items) - 1} values for {total} fields")
        return cls(*items[1 : npos + 1], **dict(zip(kw_names, items[npos + 1 :], strict=False)))

    return build_keywords


def record_maker(cls: type) -> tuple[RecordMaker, int]:
    """Build one record from exactly its field values (in wire order), and the field count."""
    info = dataclass_info(cls)
    names = info.names
    plain = plain_record_fields(cls)
    if plain is not None:
        new = object.__new__

        def make_plain(values: list[Any]) -> Any:
            obj: Any = new(cls)
            obj.__dict__.update(zip(plain, values, strict=False))
            return obj

        return make_plain, len(plain)
    npos = info.positional
    kw_names = info.kw_names
    if not kw_names:

        def make_positional(values: list[Any]) -> Any:
            return cls(*values)

        return make_positional, len(names)

    def make_keywords(values: list[Any]) -> Any:
        return cls(*values[:npos], **dict(zip(kw_names, values[npos:], strict=True)))

    return make_keywords, len(names)


def run_builder(cls: type, record: RecordMaker, arity: int) -> RunBuilder:
    """Build the items of a record run from ``items[start:end]`` (``arity`` values each).

    For a plain record class (see :func:`plain_record_fields`) the loop is generated with the
    field names as constant keys, which is several times faster than one call per item."""
    plain = plain_record_fields(cls)
    if plain is None:

        def build_generic(items: list[Any], start: int, end: int) -> list[Any]:
            return [record(items[i : i + arity]) for i in range(start, end, arity)]

        return build_generic
    pairs = ", ".join(f"{name!r}: items[i + {k}]" for k, name in enumerate(plain))
    source = (
        "def build_plain(items, start, end):\n"
        "    out = []\n"
        "    append = out.append\n"
        f"    for i in range(start, end, {len(plain)}):\n"
        "        obj = new(cls)\n"
        f"        obj.__dict__.update({{{pairs}}})\n"
        "        append(obj)\n"
        "    return out\n"
    )
    namespace: dict[str, Any] = {"new": object.__new__, "cls": cls}
    exec(compile(source, f"<casty record run of {cls.__qualname__}>", "exec"), namespace)
    built: RunBuilder = namespace["build_plain"]
    return built
