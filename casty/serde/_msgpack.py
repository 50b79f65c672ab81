"""The default serializer: msgpack with per-connection type and actor-ref tables.

Wire layout of one encoded message: a single msgpack value. Primitives (None, bool, int
within 64 bits, float, str, bytes, list, dict) are plain msgpack. Everything else is an
ext value or an array whose first element is an ext *tag*:

=============  ============================================  =================================
ext code       payload                                       meaning
=============  ============================================  =================================
1 TYPE_DEF     u32 big-endian id + UTF-8 type name           tag; defines id for this stream
2 TYPE_REF     id, big-endian, minimal length (>= 1 byte)    tag of an already defined type
3 REF_DEF      u32 big-endian id + UTF-8 actor URI           an ActorRef; defines the URI id
4 REF_REF      id, big-endian, minimal length (>= 1 byte)    an ActorRef already defined
5 TUPLE        empty                                         tag: ``[TUPLE, *items]``
6 SET          empty                                         tag: ``[SET, *items]``
7 FROZENSET    empty                                         tag: ``[FROZENSET, *items]``
8 BIGINT       signed big-endian two's complement            an int beyond 64 bits
=============  ============================================  =================================

A type tag heads an array: ``[tag, *init_field_values]`` for a dataclass (positional
fields, then keyword-only ones; ``init=False`` fields are not sent), ``[tag, value]`` for an
Enum member, ``[tag, encode(obj)]`` for a registered type with its own codec. Ids count up
from 0 per encoder, separately for types and refs; the decoder learns them in stream order.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import Enum
from operator import attrgetter
from struct import Struct
from typing import Any

import msgpack  # type: ignore[import-untyped, unused-ignore]

from casty.actors.ref import ActorRef
from casty.errors import DeserializationError, FrameTooLarge, SerializationError

from ._registry import (
    TypeEntry,
    TypeRegistry,
    dataclass_info,
    is_dataclass_type,
    is_enum_type,
    lookup_loaded_class,
    type_name,
)

__all__ = ["MsgpackDecoder", "MsgpackEncoder", "MsgpackSerializer", "RecordRun"]

EXT_TYPE_DEF = 1
EXT_TYPE_REF = 2
EXT_REF_DEF = 3
EXT_REF_REF = 4
EXT_TUPLE = 5
EXT_SET = 6
EXT_FROZENSET = 7
EXT_BIGINT = 8
EXT_RUN = 9
EXT_REF_INLINE = 10

_ExtType = msgpack.ExtType
_U32 = Struct(">I")
_pack_u32 = _U32.pack
_unpack_u32 = _U32.unpack_from
_MAX_ID = 0xFFFFFFFF

# Messages up to this size are decoded with one reused Unpacker.
_SMALL_MESSAGE = 64 * 1024

_TUPLE_MARK = _ExtType(EXT_TUPLE, b"")
_SET_MARK = _ExtType(EXT_SET, b"")
_FROZENSET_MARK = _ExtType(EXT_FROZENSET, b"")
_RUN_MARK = _ExtType(EXT_RUN, b"")


class RecordRun(list):  # type: ignore[type-arg]
    """A list that is sent column-wise when its items are all records (dataclasses or
    NamedTuples) of one class: ``[run-tag, type-tag, count, fields of item 0, fields of item 1,
    ...]``. The type is named once for the whole run and the decoder builds the items in one
    loop, instead of handling every item as a message of its own. It decodes as a plain list;
    a run of mixed or non-record items is sent as an ordinary list."""

    __slots__ = ()


def _id_bytes(ident: int) -> bytes:
    return ident.to_bytes((ident.bit_length() + 7) // 8 or 1, "big")


def _describe(obj: object) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


# --------------------------------------------------------------------------- encoding


def _encode_tuple(obj: tuple[Any, ...]) -> list[Any]:
    return [_TUPLE_MARK, *obj]


def _encode_set(obj: set[Any]) -> list[Any]:
    return [_SET_MARK, *obj]


def _encode_frozenset(obj: frozenset[Any]) -> list[Any]:
    return [_FROZENSET_MARK, *obj]


def _encode_bigint(obj: int) -> Any:
    # The packer hands exact ints to ``default`` only when they do not fit in 64 bits.
    return _ExtType(EXT_BIGINT, obj.to_bytes(obj.bit_length() // 8 + 1, "big", signed=True))


def _value_handler(mark: Any, names: tuple[str, ...]) -> Callable[[Any], list[Any]]:
    """A function turning a dataclass instance into ``[mark, *init field values]``."""
    if not names:
        return lambda obj: [mark]
    if len(names) == 1:
        get_one = attrgetter(names[0])
        return lambda obj: [mark, get_one(obj)]
    get_all = attrgetter(*names)
    return lambda obj: [mark, *get_all(obj)]


def _enum_handler(mark: Any) -> Callable[[Any], list[Any]]:
    return lambda obj: [mark, obj._value_]


def _custom_handler(mark: Any, encode: Callable[[Any], Any]) -> Callable[[Any], list[Any]]:
    return lambda obj: [mark, encode(obj)]


class MsgpackEncoder:
    """Encodes messages for one connection direction; keeps that direction's id tables.

    A failed ``encode`` leaves the tables exactly as they were before the call.
    """

    __slots__ = (
        "_handlers",
        "_learned",
        "_packer",
        "_ref_order",
        "_ref_to_wire",
        "_refs",
        "_registry",
        "_run_specs",
        "_strict",
        "max_size",
    )

    def __init__(self, registry: TypeRegistry, strict: bool, ref_to_wire: Callable[[ActorRef[Any]], str]) -> None:
        #: an encoded message longer than this raises FrameTooLarge (tables rolled back)
        self.max_size: int = 0xFFFFFFFF
        self._registry = registry
        self._strict = strict
        self._ref_to_wire = ref_to_wire
        self._refs: dict[str, Any] = {}
        self._ref_order: list[str] = []
        self._learned: list[type] = []
        #: record classes that can travel in a RecordRun: (type mark, field getter, field count)
        self._run_specs: dict[type, tuple[Any, Callable[[Any], Any], int]] = {}
        handlers: dict[type, Callable[[Any], Any]] = {
            RecordRun: self._encode_run,
            tuple: _encode_tuple,
            set: _encode_set,
            frozenset: _encode_frozenset,
            int: _encode_bigint,
            ActorRef: self._encode_ref,
        }
        self._handlers = handlers
        learn = self._learn

        def default(obj: Any) -> Any:
            handler = handlers.get(type(obj))
            if handler is None:
                return learn(obj)
            return handler(obj)

        self._packer = msgpack.Packer(default=default, strict_types=True, use_bin_type=True, autoreset=True)

    @property
    def known_types(self) -> int:
        """Types defined on this connection so far."""
        return len(self._learned)

    @property
    def known_refs(self) -> int:
        """Actor URIs defined on this connection so far."""
        return len(self._ref_order)

    def encode(self, obj: object) -> bytes:
        """Encode one message; raises :class:`SerializationError` naming an unsupported type."""
        types_before = len(self._learned)
        refs_before = len(self._ref_order)
        try:
            data: bytes = self._packer.pack(obj)
            if len(data) > self.max_size:
                raise FrameTooLarge(len(data), self.max_size)
            return data
        except BaseException as exc:
            self._rollback(types_before, refs_before)
            if isinstance(exc, (SerializationError, FrameTooLarge)) or not isinstance(exc, Exception):
                raise
            raise SerializationError(f"cannot serialize {_describe(obj)} message: {exc}") from exc

    def _rollback(self, types_before: int, refs_before: int) -> None:
        learned = self._learned
        while len(learned) > types_before:
            cls = learned.pop()
            del self._handlers[cls]
            self._run_specs.pop(cls, None)
        order = self._ref_order
        while len(order) > refs_before:
            del self._refs[order.pop()]

    def _encode_ref(self, ref: ActorRef[Any]) -> Any:
        uri = self._ref_to_wire(ref)
        mark = self._refs.get(uri)
        if mark is not None:
            return mark
        if not isinstance(uri, str):
            raise SerializationError(f"ref_to_wire returned {_describe(uri)}, not str")
        if "/temp/" in uri:
            # a short-lived ref (an ask's reply, a probe): sent in full, never given an id, so
            # the tables of a long-lived connection do not grow with every ask
            return _ExtType(EXT_REF_INLINE, uri.encode("utf-8"))
        ident = len(self._ref_order)
        if ident > _MAX_ID:
            raise SerializationError("too many distinct actor refs on one connection")
        self._refs[uri] = _ExtType(EXT_REF_REF, _id_bytes(ident))
        self._ref_order.append(uri)
        return _ExtType(EXT_REF_DEF, _pack_u32(ident) + uri.encode("utf-8"))

    def _encode_run(self, run: RecordRun) -> Any:
        """A RecordRun of one record class goes column-wise; anything else as a plain list."""
        if not run:
            return []
        cls = type(run[0])
        for item in run:
            if type(item) is not cls:
                return list(run)  # mixed classes: an ordinary list, item by item
        spec = self._run_specs.get(cls)
        mark: Any
        if spec is None:
            if cls in self._handlers or not is_dataclass_type(cls) or is_enum_type(cls):
                return list(run)
            first = self._learn(run[0])  # defines the type on this connection
            spec = self._run_specs.get(cls)
            if spec is None:  # a registered type with a codec of its own, or a record without fields
                return [first, *run[1:]]
            mark = first[0]
        else:
            mark = spec[0]
        getter, arity = spec[1], spec[2]
        flat: list[Any] = [_RUN_MARK, mark, len(run)]
        if arity == 1:
            flat.extend([getter(item) for item in run])
        else:
            extend = flat.extend
            for item in run:
                extend(getter(item))
        return flat

    def _learn(self, obj: Any) -> Any:
        """First use of a class on this encoder: define it inline, remember the short form."""
        cls = type(obj)
        if isinstance(obj, ActorRef):
            self._handlers[cls] = self._encode_ref
            return self._encode_ref(obj)
        entry: TypeEntry | None = self._registry.entry_for_class(cls)
        if entry is not None:
            name = entry.name
        elif self._strict:
            raise SerializationError(f"type {type_name(cls)} is not registered (strict serializer)")
        elif is_dataclass_type(cls) or is_enum_type(cls):
            name = type_name(cls)
            if "<locals>" in name:
                raise SerializationError(f"type {name} is local to a function; register it with an explicit name")
        else:
            raise SerializationError(f"cannot serialize an object of type {type_name(cls)}")
        ident = len(self._learned)
        if ident > _MAX_ID:
            raise SerializationError("too many distinct types on one connection")
        ref_mark = _ExtType(EXT_TYPE_REF, _id_bytes(ident))
        def_mark = _ExtType(EXT_TYPE_DEF, _pack_u32(ident) + name.encode("utf-8"))
        if entry is not None and entry.encode is not None:
            handler = _custom_handler(ref_mark, entry.encode)
            first = _custom_handler(def_mark, entry.encode)
        elif issubclass(cls, Enum):
            handler = _enum_handler(ref_mark)
            first = _enum_handler(def_mark)
        else:
            names = dataclass_info(cls).names
            handler = _value_handler(ref_mark, names)
            first = _value_handler(def_mark, names)
            if names:
                getter = attrgetter(*names)
                self._run_specs[cls] = (ref_mark, getter, len(names))
        self._handlers[cls] = handler
        self._learned.append(cls)
        return first(obj)


# --------------------------------------------------------------------------- decoding


class _Tag:
    """What a type tag decodes to: knows how to build the value from its array.

    Record types (dataclasses, NamedTuples) also have ``record``, building one value from its
    field values, and ``arity``, their number of fields: that is what a RecordRun needs."""

    __slots__ = ("arity", "build", "name", "record", "run")

    def __init__(
        self,
        name: str,
        build: Callable[[list[Any]], Any],
        record: Callable[[list[Any]], Any] | None = None,
        arity: int = 0,
        run: Callable[[list[Any], int, int], list[Any]] | None = None,
    ) -> None:
        self.name = name
        self.build = build
        self.record = record
        self.arity = arity
        self.run = run

    def __repr__(self) -> str:
        return f"<casty type tag {self.name}>"


def _build_tuple(items: list[Any]) -> Any:
    return tuple(items[1:])


def _build_set(items: list[Any]) -> Any:
    return set(items[1:])


def _build_frozenset(items: list[Any]) -> Any:
    return frozenset(items[1:])


_TUPLE_TAG = _Tag("tuple", _build_tuple)
_SET_TAG = _Tag("set", _build_set)
_FROZENSET_TAG = _Tag("frozenset", _build_frozenset)


def _refusal_builder(error: DeserializationError) -> Callable[[list[Any]], Any]:
    def build(items: list[Any]) -> Any:
        raise error

    return build


def _plain_record_fields(cls: type) -> tuple[str, ...] | None:
    """The field names of a dataclass whose construction is nothing but storing its fields.

    That is: the ``__init__`` is the one ``@dataclass`` generated, every field is an
    ``init=True`` field with no ``default_factory`` that ``__init__`` would run, there is no
    ``__post_init__``, and instances keep their fields in ``__dict__`` (no ``__slots__``).
    For such a class, filling ``__dict__`` gives exactly the object ``cls(*values)`` would,
    without the per-field ``object.__setattr__`` calls of a frozen dataclass's ``__init__``.
    Any other class (and every NamedTuple) is built through its constructor.
    """
    import dataclasses

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


def _record_maker(cls: type) -> tuple[Callable[[list[Any]], Any], int]:
    """Build one record from exactly its field values (in wire order), and the field count."""
    info = dataclass_info(cls)
    names = info.names
    plain = _plain_record_fields(cls)
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


def _run_builder(cls: type, record: Callable[[list[Any]], Any], arity: int) -> Callable[[list[Any], int, int], list[Any]]:
    """Build the items of a record run from ``items[start:end]`` (``arity`` values each).

    For a plain record class (see :func:`_plain_record_fields`) the loop is generated with the
    field names as constant keys, which is several times faster than one call per item."""
    plain = _plain_record_fields(cls)
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
    built: Callable[[list[Any], int, int], list[Any]] = namespace["build_plain"]
    return built


def _dataclass_tag(name: str, cls: type) -> _Tag:
    record, arity = _record_maker(cls)
    return _Tag(name, _dataclass_builder(cls), record, arity, _run_builder(cls, record, arity))


def _dataclass_builder(cls: type) -> Callable[[list[Any]], Any]:
    info = dataclass_info(cls)
    plain = _plain_record_fields(cls)
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


def _enum_builder(cls: type[Enum]) -> Callable[[list[Any]], Any]:
    by_value = cls._value2member_map_

    def build(items: list[Any]) -> Any:
        if len(items) != 2:
            raise TypeError("an enum member is sent as exactly one value")
        value = items[1]
        try:
            return by_value[value]
        except (KeyError, TypeError):
            return cls(value)

    return build


def _custom_builder(decode: Callable[[Any], Any]) -> Callable[[list[Any]], Any]:
    def build(items: list[Any]) -> Any:
        if len(items) != 2:
            raise TypeError("a registered type is sent as exactly one value")
        return decode(items[1])

    return build


# An ext of code -1 is msgpack's timestamp, which the unpacker decodes itself instead of
# passing it to ``ext_hook``. These are the only headers that can yield one; when a message
# contains such a byte pattern, a token walk decides whether it really is an ext header.
_TIMESTAMP_HEADER = re.compile(
    rb"[\xd6\xd7]\xff|\xc7\x0c\xff|\xc8\x00[\x04\x08\x0c]\xff|\xc9\x00\x00\x00[\x04\x08\x0c]\xff"
)

# Bytes following the first byte of a msgpack token, for fixed-size tokens.
_FIXED_TAIL = {0xC0: 0, 0xC2: 0, 0xC3: 0, 0xCA: 4, 0xCB: 8, 0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}
_FIXED_TAIL.update({0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8, 0xDC: 2, 0xDD: 4, 0xDE: 2, 0xDF: 4})
_SIZED = {0xC4: 1, 0xC5: 2, 0xC6: 4, 0xD9: 1, 0xDA: 2, 0xDB: 4}
_EXT_SIZED = {0xC7: 1, 0xC8: 2, 0xC9: 4}
_FIXEXT = {0xD4: 1, 0xD5: 2, 0xD6: 4, 0xD7: 8, 0xD8: 16}


def _contains_timestamp(data: bytes) -> bool:
    """Walk the msgpack tokens of ``data``; True when one is an ext of code -1."""
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


class MsgpackDecoder:
    """Decodes messages of one connection direction; learns its id tables in order.

    Definitions in a message are learned even when the message as a whole is refused (for
    instance because it names a type this process may not build), so later messages that
    use them by id still decode.
    """

    __slots__ = (
        "_error",
        "_ext_hook",
        "_list_hook",
        "_open_tags",
        "_ref_uris",
        "_registry",
        "_resolve_ref",
        "_strict",
        "_tags",
        "_unpacker",
        "_unpacker_offset",
    )

    def __init__(self, registry: TypeRegistry, strict: bool, resolve_ref: Callable[[str], ActorRef[Any]]) -> None:
        self._registry = registry
        self._strict = strict
        self._resolve_ref = resolve_ref
        self._tags: dict[bytes, _Tag] = {}
        self._ref_uris: dict[bytes, str] = {}
        self._open_tags = 0
        self._error: DeserializationError | None = None
        tags = self._tags
        ref_uris = self._ref_uris
        define_type = self._define_type
        define_ref = self._define_ref
        resolve = self._resolve

        def ext_hook(code: int, data: bytes) -> Any:
            if code == EXT_TYPE_REF:
                tag = tags.get(data)
                if tag is None:
                    raise DeserializationError(f"unknown type id {data.hex()}")
                self._open_tags += 1
                return tag
            if code == EXT_REF_REF:
                uri = ref_uris.get(data)
                if uri is None:
                    raise DeserializationError(f"unknown actor ref id {data.hex()}")
                return resolve(uri)
            if code == EXT_TUPLE:
                self._open_tags += 1
                return _TUPLE_TAG
            if code == EXT_RUN:
                self._open_tags += 1
                return run_tag
            if code == EXT_TYPE_DEF:
                self._open_tags += 1
                return define_type(data)
            if code == EXT_REF_DEF:
                return resolve(define_ref(data))
            if code == EXT_REF_INLINE:
                try:
                    return resolve(data.decode("utf-8"))
                except UnicodeDecodeError:
                    raise DeserializationError("actor ref URI is not UTF-8") from None
            if code == EXT_BIGINT:
                if not data:
                    raise DeserializationError("empty big integer")
                return int.from_bytes(data, "big", signed=True)
            if code == EXT_SET:
                self._open_tags += 1
                return _SET_TAG
            if code == EXT_FROZENSET:
                self._open_tags += 1
                return _FROZENSET_TAG
            raise DeserializationError(f"unknown msgpack ext code {code}")

        def build_run(items: list[Any]) -> Any:
            # [run-tag, type-tag, count, fields...]: the type tag is consumed here too
            if len(items) < 3 or type(items[1]) is not _Tag or type(items[2]) is not int:
                raise DeserializationError("malformed record run")
            self._open_tags -= 1
            tag: _Tag = items[1]
            count: int = items[2]
            run = tag.run
            if run is None:
                tag.build([tag])  # a refused type raises its own error here
                raise DeserializationError(f"{tag.name} cannot travel in a record run", tag.name)
            arity = tag.arity
            if count < 0 or len(items) != 3 + count * arity:
                raise DeserializationError(f"record run of {tag.name}: {len(items) - 3} values for {count} items")
            return run(items, 3, 3 + count * arity)

        run_tag = _Tag("record run", build_run)

        def list_hook(items: list[Any]) -> Any:
            if items:
                head = items[0]
                if type(head) is _Tag:
                    self._open_tags -= 1
                    try:
                        return head.build(items)
                    except DeserializationError as exc:
                        self._record(exc)
                    except Exception as exc:
                        self._record(DeserializationError(f"cannot build {head.name}: {exc}", head.name))
                    return None
            return items

        self._ext_hook = ext_hook
        self._list_hook = list_hook
        self._unpacker = self._new_unpacker()
        self._unpacker_offset = 0

    def _new_unpacker(self) -> Any:
        # Reused for small messages (its size limits all derive from _SMALL_MESSAGE, so a
        # short message cannot announce a huge array); larger ones go through ``unpackb``,
        # whose limits derive from the message's own length.
        return msgpack.Unpacker(
            ext_hook=self._ext_hook,
            list_hook=self._list_hook,
            raw=False,
            strict_map_key=False,
            max_buffer_size=_SMALL_MESSAGE,
        )

    @property
    def known_types(self) -> int:
        """Types defined on this connection so far."""
        return len(self._tags)

    @property
    def known_refs(self) -> int:
        """Actor URIs defined on this connection so far."""
        return len(self._ref_uris)

    def _record(self, error: DeserializationError) -> None:
        if self._error is None:
            self._error = error

    def _resolve(self, uri: str) -> Any:
        try:
            return self._resolve_ref(uri)
        except Exception as exc:
            self._record(DeserializationError(f"cannot resolve actor ref {uri!r}: {exc}"))
            return None

    def _define_ref(self, data: bytes) -> str:
        if len(data) < 4:
            raise DeserializationError("malformed actor ref definition")
        ident = _unpack_u32(data)[0]
        if ident != len(self._ref_uris):
            raise DeserializationError(f"actor ref id {ident} defined out of order")
        uri = data[4:].decode("utf-8")
        self._ref_uris[_id_bytes(ident)] = uri
        return uri

    def _define_type(self, data: bytes) -> _Tag:
        if len(data) < 5:
            raise DeserializationError("malformed type definition")
        ident = _unpack_u32(data)[0]
        if ident != len(self._tags):
            raise DeserializationError(f"type id {ident} defined out of order")
        name = data[4:].decode("utf-8")
        tag = self._make_tag(name)
        self._tags[_id_bytes(ident)] = tag
        return tag

    def _make_tag(self, name: str) -> _Tag:
        """The tag for a type name; a refusing tag when this process must not build it."""
        entry = self._registry.entry_for_name(name)
        if entry is not None:
            if entry.decode is not None:
                return _Tag(name, _custom_builder(entry.decode))
            if is_enum_type(entry.cls):
                return _Tag(name, _enum_builder(entry.cls))
            return _dataclass_tag(name, entry.cls)
        if self._strict:
            error = DeserializationError(f"type {name!r} is not registered (strict serializer)", name)
            return _Tag(name, _refusal_builder(error))
        cls = lookup_loaded_class(name)
        if cls is None:
            error = DeserializationError(f"type {name!r} is not a class loaded in this process", name)
            return _Tag(name, _refusal_builder(error))
        if is_enum_type(cls):
            return _Tag(name, _enum_builder(cls))
        if is_dataclass_type(cls):
            return _dataclass_tag(name, cls)
        error = DeserializationError(
            f"refusing to build {name!r}: only dataclasses, enums and registered types are accepted", name
        )
        return _Tag(name, _refusal_builder(error))

    def decode(self, data: bytes) -> object:
        """Decode one message; anything wrong raises :class:`DeserializationError`.

        A message that cannot be parsed contributes no definitions (it was not produced by
        a well-behaved encoder). A message that parses but is refused (a type this process
        may not build, a failing constructor, an unresolvable ref) keeps its definitions,
        because its encoder counts them as sent.
        """
        self._open_tags = 0
        self._error = None
        tags_before = len(self._tags)
        refs_before = len(self._ref_uris)
        try:
            size = len(data)
            if size <= _SMALL_MESSAGE:
                unpacker = self._unpacker
                try:
                    unpacker.feed(data)
                    obj = unpacker.unpack()
                    offset = unpacker.tell()
                    if offset - self._unpacker_offset != size:
                        raise DeserializationError("malformed message: trailing bytes after the message")
                    self._unpacker_offset = offset
                except BaseException:
                    self._unpacker = self._new_unpacker()
                    self._unpacker_offset = 0
                    raise
            else:
                obj = msgpack.unpackb(
                    data,
                    ext_hook=self._ext_hook,
                    list_hook=self._list_hook,
                    raw=False,
                    strict_map_key=False,
                )
            if self._open_tags:
                raise DeserializationError("malformed message: a type tag outside its array")
            if b"\xff" in data and _TIMESTAMP_HEADER.search(data) is not None and _contains_timestamp(data):
                raise DeserializationError("malformed message: unknown msgpack ext code -1")
        except BaseException as exc:
            self._forget(tags_before, refs_before)
            if isinstance(exc, DeserializationError) or not isinstance(exc, Exception):
                raise
            if self._error is not None:
                raise self._error from exc
            raise DeserializationError(f"malformed message: {type(exc).__name__}: {exc}") from exc
        if self._error is not None:
            raise self._error
        return obj

    def _forget(self, tags_before: int, refs_before: int) -> None:
        tags = self._tags
        while len(tags) > tags_before:
            tags.popitem()
        refs = self._ref_uris
        while len(refs) > refs_before:
            refs.popitem()


class MsgpackSerializer:
    """The default serializer (msgpack). See the module docstring for the wire layout.

    Without ``strict``, dataclasses and enums of classes loaded in the decoding process
    travel without registration; with ``strict=True`` every such type must be registered.
    """

    __slots__ = ("_registry", "_strict")

    def __init__(self, registry: TypeRegistry | None = None, *, strict: bool = False) -> None:
        self._registry = registry if registry is not None else TypeRegistry()
        self._strict = strict

    @property
    def registry(self) -> TypeRegistry:
        """The registry consulted by every encoder and decoder made by this serializer."""
        return self._registry

    @property
    def strict(self) -> bool:
        """True when only registered types are accepted."""
        return self._strict

    def new_encoder(self, ref_to_wire: Callable[[ActorRef[Any]], str]) -> MsgpackEncoder:
        """A fresh encoder (with empty tables) for one connection direction."""
        return MsgpackEncoder(self._registry, self._strict, ref_to_wire)

    def new_decoder(self, resolve_ref: Callable[[str], ActorRef[Any]]) -> MsgpackDecoder:
        """A fresh decoder (with empty tables) for one connection direction."""
        return MsgpackDecoder(self._registry, self._strict, resolve_ref)
