"""The msgpack encoder: one per connection direction, with that direction's id tables.

The first use of a type or an actor URI on a connection defines it inline (TYPE_DEF,
REF_DEF; a record type at protocol 3 on: RECORD_DEF, naming its fields); later uses send its
short id. See ``_wire`` for the layout and ``_records`` for
how record runs are flattened.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any, NoReturn

from casty._fastpath import MessageWriter, RecordHandler
from casty.actors.ref import ActorRef
from casty.errors import FrameTooLarge, SerializationError

from ._records import RecordRun, RunWriter, run_writer
from ._registry import TypeEntry, TypeRegistry, dataclass_info, is_dataclass_type, is_enum_type, type_name
from ._wire import (
    EXT_BIGINT,
    EXT_RECORD_DEF,
    EXT_REF_DEF,
    EXT_REF_DEF_INC,
    EXT_REF_REF,
    EXT_TYPE_DEF,
    EXT_TYPE_REF,
    FROZENSET_MARK,
    MAX_ID,
    RECORD_FIELDS_VERSION,
    SET_MARK,
    TUPLE_MARK,
    ExtType,
    id_bytes,
    pack_record_def,
    pack_u32,
    pack_u64,
)

__all__ = ["MsgpackEncoder"]


def _describe(obj: object) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


#: one past the largest incarnation a ref can carry (u64)
_U64_END = 1 << 64


def _ref_uid(ref: ActorRef[Any]) -> int:
    return ref.uid


def _encode_tuple(obj: tuple[Any, ...]) -> list[Any]:
    return [TUPLE_MARK, *obj]


def _encode_set(obj: set[Any]) -> list[Any]:
    return [SET_MARK, *obj]


def _encode_frozenset(obj: frozenset[Any]) -> list[Any]:
    return [FROZENSET_MARK, *obj]


def _encode_bigint(obj: int) -> Any:
    # The packer hands exact ints to ``default`` only when they do not fit in 64 bits.
    return ExtType(EXT_BIGINT, obj.to_bytes(obj.bit_length() // 8 + 1, "big", signed=True))


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
        "_ref_order",
        "_refs",
        "_registry",
        "_run_specs",
        "_strict",
        "_writer",
        "encode",
        "protocol_version",
    )

    def __init__(self, registry: TypeRegistry, strict: bool, ref_to_wire: Callable[[ActorRef[Any]], str]) -> None:
        #: the protocol version of the connection (set by the transport from the handshake,
        #: before the first message): from RECORD_FIELDS_VERSION on, record definitions name
        #: their fields; below it they are positional (both sides need the same class shape)
        self.protocol_version: int = RECORD_FIELDS_VERSION
        self._registry = registry
        self._strict = strict
        self._refs: dict[tuple[str, int], Any] = {}
        self._ref_order: list[tuple[str, int]] = []
        self._learned: list[type] = []
        #: record classes that can travel in a RecordRun, with the writer taking their runs apart
        self._run_specs: dict[type, RunWriter] = {}
        handlers: dict[type, Callable[[Any], Any]] = {
            RecordRun: self._encode_run,
            tuple: _encode_tuple,
            set: _encode_set,
            frozenset: _encode_frozenset,
            int: _encode_bigint,
        }
        self._handlers = handlers
        # the packer, its hook and the ref encoding live in the fast path's writer
        self._writer = writer = MessageWriter(
            handlers,
            self._learn,
            ActorRef,
            self._refs,
            self._define_ref,
            ref_to_wire,
            _ref_uid,
            self._learned,
            self._ref_order,
            self._failed,
        )
        handlers[ActorRef] = writer.encode_ref
        #: ``encode(obj) -> bytes``: one message; raises :class:`SerializationError` naming an
        #: unsupported type, FrameTooLarge past ``max_size`` (the tables rolled back either way)
        self.encode: Callable[[object], bytes] = writer.encode

    @property
    def max_size(self) -> int:
        """An encoded message longer than this raises FrameTooLarge (tables rolled back)."""
        return self._writer.max_size

    @max_size.setter
    def max_size(self, value: int) -> None:
        self._writer.max_size = value

    @property
    def incarnation_of(self) -> Callable[[ActorRef[Any]], int]:
        """The incarnation of the process a ref's actor lives in (0: unknown), sent beside its
        URI (unused while ``wire_prefix`` is set)."""
        return self._writer.incarnation_of

    @incarnation_of.setter
    def incarnation_of(self, value: Callable[[ActorRef[Any]], int]) -> None:
        self._writer.incarnation_of = value

    @property
    def wire_prefix(self) -> Callable[[Any], tuple[str, int | None]] | None:
        """Optional: ``wire_prefix(system_address) -> (prefix, incarnation or None)``, what
        ``ref_to_wire`` and ``incarnation_of`` give for every ref of that address (the URI is
        the prefix and the path; None: the ref's own ``uid``), asked once per address instead
        of twice per ref."""
        return self._writer.wire_prefix

    @wire_prefix.setter
    def wire_prefix(self, value: Callable[[Any], tuple[str, int | None]] | None) -> None:
        self._writer.wire_prefix = value

    @property
    def known_types(self) -> int:
        """Types defined on this connection so far."""
        return len(self._learned)

    @property
    def known_refs(self) -> int:
        """Actor URIs defined on this connection so far."""
        return len(self._ref_order)

    def _failed(self, obj: object, exc: BaseException, types_before: int, refs_before: int) -> NoReturn:
        """The writer could not encode ``obj``: the tables go back to where they were, and
        the error is raised (as a SerializationError unless it is one already, a
        FrameTooLarge or not an Exception)."""
        self._rollback(types_before, refs_before)
        if isinstance(exc, (SerializationError, FrameTooLarge)) or not isinstance(exc, Exception):
            raise exc
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

    def _define_ref(self, uri: Any, incarnation: Any) -> Any:
        """A ref not sent on this connection before (the writer found no mark): defined now."""
        if not isinstance(uri, str):
            raise SerializationError(f"ref_to_wire returned {_describe(uri)}, not str")
        if type(incarnation) is not int or not 0 <= incarnation < _U64_END:
            raise SerializationError(f"the incarnation of {uri} is not a 64-bit unsigned int: {incarnation!r}")
        ident = len(self._ref_order)
        if ident > MAX_ID:
            raise SerializationError("too many distinct actor refs on one connection")
        key = (uri, incarnation)
        self._refs[key] = ExtType(EXT_REF_REF, id_bytes(ident))
        self._ref_order.append(key)
        if incarnation:
            return ExtType(EXT_REF_DEF_INC, pack_u32(ident) + pack_u64(incarnation) + uri.encode("utf-8"))
        return ExtType(EXT_REF_DEF, pack_u32(ident) + uri.encode("utf-8"))

    def _encode_run(self, run: RecordRun) -> Any:
        """A RecordRun of one record class goes column-wise; anything else as a plain list."""
        if not run:
            return []
        cls = type(run[0])
        writer = self._run_specs.get(cls)
        if writer is not None:
            flat = writer.flatten(run)
            return run[:] if flat is None else flat  # None: mixed classes, sent item by item
        if cls in self._handlers or not is_dataclass_type(cls) or is_enum_type(cls):
            return run[:]  # a run of primitives: a plain list (a slice of a list subclass is one)
        for item in run:
            if type(item) is not cls:
                return run[:]
        first = self._learn(run[0])  # defines the type on this connection
        writer = self._run_specs.get(cls)
        if writer is None:  # a registered type with a codec of its own, or a record without fields
            return [first, *run[1:]]
        flat = writer.flatten(run)
        assert flat is not None
        flat[1] = first[0]  # the first run of a class carries the type's definition
        return flat

    def _learn(self, obj: Any) -> Any:
        """First use of a class on this encoder: define it inline, remember the short form."""
        cls = type(obj)
        if isinstance(obj, ActorRef):
            self._handlers[cls] = self._writer.encode_ref
            return self._writer.encode_ref(obj)
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
        if ident > MAX_ID:
            raise SerializationError("too many distinct types on one connection")
        ref_mark = ExtType(EXT_TYPE_REF, id_bytes(ident))
        def_mark = ExtType(EXT_TYPE_DEF, pack_u32(ident) + name.encode("utf-8"))
        if entry is not None and entry.encode is not None:
            handler = _custom_handler(ref_mark, entry.encode)
            first = _custom_handler(def_mark, entry.encode)
        elif issubclass(cls, Enum):
            handler = _enum_handler(ref_mark)
            first = _enum_handler(def_mark)
        else:
            names = dataclass_info(cls).names
            if self.protocol_version >= RECORD_FIELDS_VERSION:
                try:
                    def_mark = ExtType(EXT_RECORD_DEF, pack_record_def(ident, name, names))
                except ValueError as exc:
                    raise SerializationError(f"cannot define {name}: {exc}") from None
            handler = RecordHandler(ref_mark, names)
            first = RecordHandler(def_mark, names)
            writer = run_writer(cls, ref_mark)
            if writer is not None:
                self._run_specs[cls] = writer
        self._handlers[cls] = handler
        self._learned.append(cls)
        return first(obj)
