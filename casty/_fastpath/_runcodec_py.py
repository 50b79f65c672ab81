"""Record runs column-wise, and the wire scan for msgpack timestamps (pure twin of ``_runcodec_c``).

A record run travels as ``[run mark, type mark, count, fields of item 0, fields of item 1,
...]``. :class:`RunWriter` takes a run of one record class apart into that flat list;
:class:`RecordBuilder` builds records back from field values, one at a time or a whole run
in one loop. Which way a class may be built (its *kind*) is decided by the caller, who knows
the class:

- :data:`KIND_DICT`: a dataclass whose generated ``__init__`` does nothing but store its
  fields in the instance ``__dict__``; built by ``object.__new__`` and filling the fields.
- :data:`KIND_SLOTS`: the same for a dataclass with ``__slots__``; the fields are set as
  ``object.__setattr__`` sets them (which is what its generated ``__init__`` does).
- :data:`KIND_TUPLE`: a NamedTuple whose ``__new__`` is the generated one; built by
  ``tuple.__new__``.
- :data:`KIND_CALL`: anything else; built by calling the class, ``cls(*positional,
  **keywords)``, so ``__post_init__``, defaults and validation run.

A record given a different number of values than it has fields is built by calling the
class (defaults fill what is missing; too many values is the constructor's ``TypeError``).

:class:`MappedRecordBuilder` builds records whose sender defined the class with other fields
(added, removed or reordered ones): ``sources[k]`` is the index, among the ``wire_arity`` values
a record has on the wire, of the value of field ``names[k]``, or -1 when the sender has no such
field, which then takes ``factories[k]()`` when that is not None, else ``defaults[k]``. Each
record's values are put in field order, then the record is built as its ``kind`` says. The plain
:class:`RecordBuilder` (the sender's fields are the class's) is not touched by any of this.
"""

from __future__ import annotations

import re
from operator import attrgetter
from typing import Any

__all__ = [
    "KIND_CALL",
    "KIND_DICT",
    "KIND_SLOTS",
    "KIND_TUPLE",
    "MappedRecordBuilder",
    "RecordBuilder",
    "RunWriter",
    "has_timestamp_ext",
]

KIND_DICT = 0
KIND_SLOTS = 1
KIND_TUPLE = 2
KIND_CALL = 3


def _check_names(names: tuple[str, ...]) -> tuple[str, ...]:
    if type(names) is not tuple or not all(type(n) is str for n in names):
        raise TypeError("field names must be a tuple of str")
    return names


class RunWriter:
    """Takes runs of one record class apart, column-wise.

    ``names`` are the fields in wire order; ``by_index`` reads them as tuple items (a
    NamedTuple whose fields are its items) instead of as attributes.
    """

    __slots__ = ("_arity", "_cls", "_getter", "_head", "_names")

    def __init__(
        self, cls: type, names: tuple[str, ...], run_mark: Any, type_mark: Any, by_index: bool = False
    ) -> None:
        if not isinstance(cls, type):
            raise TypeError("RunWriter needs a class")
        self._cls = cls
        self._names = _check_names(names)
        self._arity = len(names)
        if not names:
            raise ValueError("a record run needs a class with at least one field")
        if by_index:
            if not issubclass(cls, tuple):
                raise TypeError("by_index needs a tuple class")
            self._getter: Any = None
        else:
            self._getter = attrgetter(*names)
        self._head = (run_mark, type_mark)

    @property
    def record_class(self) -> type:
        """The class whose runs this writer takes apart."""
        return self._cls

    @property
    def arity(self) -> int:
        """Values per record."""
        return self._arity

    def flatten(self, run: list[Any]) -> list[Any] | None:
        """``[run mark, type mark, len(run), *fields of every item]``, or None when an item is
        not exactly of the record class (a subclass is not the class). ``run`` is a list."""
        if not isinstance(run, list):
            raise TypeError("a record run is a list")
        cls = self._cls
        for item in run:
            if type(item) is not cls:
                return None
        flat: list[Any] = [*self._head, len(run)]
        getter = self._getter
        if getter is None:  # NamedTuple: its items are its fields
            arity = self._arity
            extend = flat.extend
            for item in run:
                if len(item) != arity:
                    raise ValueError(f"{cls.__qualname__} has {len(item)} items, not {arity}")
                extend(item)
        elif self._arity == 1:
            flat.extend([getter(item) for item in run])
        else:
            extend = flat.extend
            for item in run:
                extend(getter(item))
        return flat


class RecordBuilder:
    """Builds records of one class from their field values (in wire order).

    ``npos`` of the ``names`` are positional, the rest keyword-only (they matter only when the
    class is called). ``kind`` is one of the ``KIND_*`` constants.
    """

    __slots__ = ("_arity", "_cls", "_kind", "_kw_names", "_names", "_npos", "_run")

    def __init__(self, cls: type, names: tuple[str, ...], npos: int, kind: int) -> None:
        if not isinstance(cls, type):
            raise TypeError("RecordBuilder needs a class")
        names = _check_names(names)
        if type(npos) is not int or not 0 <= npos <= len(names):
            raise ValueError("npos must be between 0 and the number of fields")
        if kind not in (KIND_DICT, KIND_SLOTS, KIND_TUPLE, KIND_CALL):
            raise ValueError(f"unknown record kind {kind!r}")
        if kind == KIND_TUPLE and not issubclass(cls, tuple):
            raise TypeError("KIND_TUPLE needs a tuple class")
        if kind != KIND_CALL and npos != len(names):
            raise ValueError("records built without a call have positional fields only")
        self._cls = cls
        self._names = names
        self._npos = npos
        self._kw_names = names[npos:]
        self._kind = kind
        self._arity = len(names)
        self._run = self._generated_run() if kind in (KIND_DICT, KIND_SLOTS) and names else None

    @property
    def record_class(self) -> type:
        """The class this builder builds."""
        return self._cls

    @property
    def arity(self) -> int:
        """Values per record."""
        return self._arity

    @property
    def kind(self) -> int:
        """How records are built (a ``KIND_*`` constant)."""
        return self._kind

    def _generated_run(self) -> Any:
        # The run loop with the field names as constants: several times faster than a call
        # per item. Names are only ever used as string constants (repr), never as code.
        arity = self._arity
        if self._kind == KIND_DICT:
            pairs = ", ".join(f"{name!r}: items[i + {k}]" for k, name in enumerate(self._names))
            body = f"        obj.__dict__.update({{{pairs}}})\n"
        else:
            body = "".join(f"        setattr_(obj, {name!r}, items[i + {k}])\n" for k, name in enumerate(self._names))
        source = (
            "def build_run(items, start, end):\n"
            "    out = []\n"
            "    append = out.append\n"
            f"    for i in range(start, end, {arity}):\n"
            "        obj = new(cls)\n"
            f"{body}"
            "        append(obj)\n"
            "    return out\n"
        )
        namespace: dict[str, Any] = {"new": object.__new__, "cls": self._cls, "setattr_": object.__setattr__}
        exec(compile(source, f"<casty record run of {self._cls.__qualname__}>", "exec"), namespace)
        return namespace["build_run"]

    def _call(self, values: list[Any]) -> Any:
        npos = self._npos
        kw_names = self._kw_names
        if not kw_names:
            return self._cls(*values)
        if len(values) > self._arity:
            raise TypeError(f"{len(values)} values for {self._arity} fields")
        return self._cls(*values[:npos], **dict(zip(kw_names, values[npos:], strict=False)))

    def _exact(self, values: list[Any]) -> Any:
        """One record from exactly one value per field, in field order."""
        kind = self._kind
        if kind == KIND_CALL:
            return self._call(values)
        cls = self._cls
        if kind == KIND_TUPLE:
            return tuple.__new__(cls, values)
        obj: Any = object.__new__(cls)
        if kind == KIND_DICT:
            obj.__dict__.update(zip(self._names, values, strict=True))
        else:
            setattr_ = object.__setattr__
            for name, value in zip(self._names, values, strict=True):
                setattr_(obj, name, value)
        return obj

    def make(self, values: list[Any]) -> Any:
        """One record from exactly its field values (a list)."""
        if type(values) is not list:
            raise TypeError("record values must be a list")
        if len(values) != self._arity:
            return self._call(values)
        return self._exact(values)

    def build(self, items: list[Any]) -> Any:
        """One record from its message array ``[tag, *field values]``."""
        if type(items) is not list or not items:
            raise TypeError("a record is sent as [tag, *field values]")
        return self.make(items[1:])

    def run(self, items: list[Any], start: int, count: int) -> list[Any]:
        """``count`` records from ``items[start:]``, ``arity`` values each."""
        if type(items) is not list:
            raise TypeError("record values must be a list")
        arity = self._arity
        if type(start) is not int or type(count) is not int:
            raise TypeError("start and count must be int")
        if start < 0 or count < 0 or start + count * arity > len(items):
            raise ValueError(f"{count} records of {arity} values do not fit in {len(items) - start} values")
        if arity == 0:
            raise ValueError(f"{self._cls.__qualname__} has no fields: its records do not travel in runs")
        if count == 0:
            return []
        end = start + count * arity
        run = self._run
        if run is not None:
            built: list[Any] = run(items, start, end)
            return built
        if self._kind == KIND_TUPLE:
            new = tuple.__new__
            cls = self._cls
            return [new(cls, items[i : i + arity]) for i in range(start, end, arity)]
        call = self._call
        return [call(items[i : i + arity]) for i in range(start, end, arity)]


class MappedRecordBuilder(RecordBuilder):
    """Builds records of one class from the field values of another definition of it, by name
    (see the module): ``wire_arity`` values a record on the wire, ``sources``, ``defaults`` and
    ``factories`` one entry per field of ``names``."""

    __slots__ = ("_defaults", "_factories", "_sources", "_wire_arity")

    def __init__(
        self,
        cls: type,
        names: tuple[str, ...],
        npos: int,
        kind: int,
        wire_arity: int,
        sources: tuple[int, ...],
        defaults: tuple[Any, ...],
        factories: tuple[Any, ...],
    ) -> None:
        RecordBuilder.__init__(self, cls, names, npos, kind)
        if type(wire_arity) is not int or wire_arity < 0:
            raise ValueError("wire_arity must be an int >= 0")
        if type(sources) is not tuple or type(defaults) is not tuple or type(factories) is not tuple:
            raise TypeError("sources, defaults and factories must be tuples")
        if not len(sources) == len(defaults) == len(factories) == len(names):
            raise ValueError("a mapping has one source, default and factory per field")
        seen: set[int] = set()
        for src in sources:
            if type(src) is not int or not -1 <= src < wire_arity or src in seen:
                raise ValueError(f"bad source index {src!r} for {wire_arity} values on the wire")
            if src >= 0:
                seen.add(src)
        for factory in factories:
            if factory is not None and not callable(factory):
                raise TypeError("a factory must be callable or None")
        self._wire_arity = wire_arity
        self._sources = sources
        self._defaults = defaults
        self._factories = factories
        self._run = None

    @property
    def arity(self) -> int:
        """Values per record on the wire (the sender's fields)."""
        return self._wire_arity

    @property
    def sources(self) -> tuple[int, ...]:
        """For each field, the index of its value among a record's wire values, or -1."""
        return self._sources

    def _values(self, items: list[Any], start: int) -> list[Any]:
        """One record's values in field order, from its wire values at ``items[start:]``."""
        defaults = self._defaults
        factories = self._factories
        values: list[Any] = []
        append = values.append
        for k, src in enumerate(self._sources):
            if src >= 0:
                append(items[start + src])
            else:
                factory = factories[k]
                append(defaults[k] if factory is None else factory())
        return values

    def _mapped(self, items: list[Any], start: int) -> Any:
        n = len(items) - start
        if n != self._wire_arity:
            raise TypeError(f"{n} values for the {self._wire_arity} fields the sender defined")
        return self._exact(self._values(items, start))

    def make(self, values: list[Any]) -> Any:
        """One record from exactly its wire values (a list)."""
        if type(values) is not list:
            raise TypeError("record values must be a list")
        return self._mapped(values, 0)

    def build(self, items: list[Any]) -> Any:
        """One record from its message array ``[tag, *wire values]``."""
        if type(items) is not list or not items:
            raise TypeError("a record is sent as [tag, *field values]")
        return self._mapped(items, 1)

    def run(self, items: list[Any], start: int, count: int) -> list[Any]:
        """``count`` records from ``items[start:]``, ``arity`` wire values each."""
        if type(items) is not list:
            raise TypeError("record values must be a list")
        arity = self._wire_arity
        if type(start) is not int or type(count) is not int:
            raise TypeError("start and count must be int")
        if start < 0 or count < 0 or start + count * arity > len(items):
            raise ValueError(f"{count} records of {arity} values do not fit in {len(items) - start} values")
        if arity == 0:
            raise ValueError(f"the sender's {self._cls.__qualname__} has no fields: its records do not travel in runs")
        exact = self._exact
        values = self._values
        return [exact(values(items, i)) for i in range(start, start + count * arity, arity)]


# --------------------------------------------------------------------------- timestamps

#: the only headers that can yield an ext of code -1 (msgpack's timestamp)
_TIMESTAMP_HEADER = re.compile(
    rb"[\xd6\xd7]\xff|\xc7[\x04\x08\x0c]\xff|\xc8\x00[\x04\x08\x0c]\xff|\xc9\x00\x00\x00[\x04\x08\x0c]\xff"
)

# Bytes following the first byte of a msgpack token, for fixed-size tokens.
_FIXED_TAIL = {0xC0: 0, 0xC2: 0, 0xC3: 0, 0xCA: 4, 0xCB: 8, 0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}
_FIXED_TAIL.update({0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8, 0xDC: 2, 0xDD: 4, 0xDE: 2, 0xDF: 4})
_SIZED = {0xC4: 1, 0xC5: 2, 0xC6: 4, 0xD9: 1, 0xDA: 2, 0xDB: 4}
_EXT_SIZED = {0xC7: 1, 0xC8: 2, 0xC9: 4}
_FIXEXT = {0xD4: 1, 0xD5: 2, 0xD6: 4, 0xD7: 8, 0xD8: 16}


def _walk_for_timestamp(data: bytes) -> bool:
    pos = 0
    end = len(data)
    while pos < end:
        b = data[pos]
        pos += 1
        if b <= 0x9F or b >= 0xE0:  # fixint, fixmap, fixarray: no payload of their own
            continue
        if b <= 0xBF:
            pos += b & 0x1F
        elif b in _FIXED_TAIL:
            pos += _FIXED_TAIL[b]
        elif b in _SIZED:
            width = _SIZED[b]
            pos += width + int.from_bytes(data[pos : pos + width], "big")
        elif b in _EXT_SIZED:
            width = _EXT_SIZED[b]
            length = int.from_bytes(data[pos : pos + width], "big")
            pos += width
            if pos < end and data[pos] == 0xFF:
                return True
            pos += 1 + length
        elif b in _FIXEXT:
            if pos < end and data[pos] == 0xFF:
                return True
            pos += 1 + _FIXEXT[b]
        else:
            return False
    return False


def has_timestamp_ext(data: bytes) -> bool:
    """True when the msgpack tokens of ``data`` hold an ext of code -1.

    ``data`` is a message the unpacker accepted: the check runs after decoding, because
    msgpack decodes that ext itself instead of passing it to the ext hook. A byte search comes
    first; only a message with a possible header is walked token by token.
    """
    if type(data) is not bytes:
        data = bytes(data)
    return b"\xff" in data and _TIMESTAMP_HEADER.search(data) is not None and _walk_for_timestamp(data)
