"""The msgpack decoder: one per connection direction, learning its id tables in order.

Decoding never imports a module: a type name becomes a *tag* (:class:`_Tag`) that builds
dataclasses and NamedTuples (through ``_records``), Enum members by value and registered
types, or refuses with a :class:`~casty.errors.DeserializationError` naming the type.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any

from casty._fastpath import MessageReader, has_timestamp_ext
from casty.actors.ref import ActorRef
from casty.errors import DeserializationError

from ._records import RecordBuilder, record_builder
from ._registry import TypeRegistry, is_dataclass_type, is_enum_type, lookup_loaded_class
from ._wire import (
    id_bytes,
    unpack_u32,
)

__all__ = ["MsgpackDecoder"]

# Messages up to this size are decoded with one reused Unpacker.
_SMALL_MESSAGE = 64 * 1024


class _Tag:
    """What a type tag decodes to: knows how to build the value from its array.

    Record types (dataclasses, NamedTuples) also have ``records``, the builder of their
    records, which builds every item of a record run in one loop: that is what a RecordRun
    needs."""

    __slots__ = ("build", "name", "records")

    def __init__(self, name: str, build: Callable[[list[Any]], Any], records: RecordBuilder | None = None) -> None:
        self.name = name
        self.build = build
        self.records = records

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


def _dataclass_tag(name: str, cls: type) -> _Tag:
    records = record_builder(cls)
    return _Tag(name, records.build, records)


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


class MsgpackDecoder:
    """Decodes messages of one connection direction; learns its id tables in order.

    Definitions in a message are learned even when the message as a whole is refused (for
    instance because it names a type this process may not build), so later messages that
    use them by id still decode. The decoding loop itself is ``casty._fastpath``'s
    :class:`~casty._fastpath.MessageReader` (compiled, with its pure twin); this class owns
    the tables and decides which types may be built.
    """

    __slots__ = ("_reader", "_ref_uris", "_registry", "_strict", "_tags")

    def __init__(self, registry: TypeRegistry, strict: bool, resolve_ref: Callable[[str], ActorRef[Any]]) -> None:
        self._registry = registry
        self._strict = strict
        self._tags: dict[bytes, _Tag] = {}
        self._ref_uris: dict[bytes, str] = {}
        self._reader = MessageReader(
            _Tag,
            self._tags,
            self._ref_uris,
            self._define_type,
            self._define_ref,
            resolve_ref,
            (_TUPLE_TAG, _SET_TAG, _FROZENSET_TAG),
            _Tag,
            has_timestamp_ext,
        )

    @property
    def known_types(self) -> int:
        """Types defined on this connection so far."""
        return len(self._tags)

    @property
    def known_refs(self) -> int:
        """Actor URIs defined on this connection so far."""
        return len(self._ref_uris)

    def _define_ref(self, data: bytes) -> str:
        if len(data) < 4:
            raise DeserializationError("malformed actor ref definition")
        ident = unpack_u32(data)[0]
        if ident != len(self._ref_uris):
            raise DeserializationError(f"actor ref id {ident} defined out of order")
        uri = data[4:].decode("utf-8")
        self._ref_uris[id_bytes(ident)] = uri
        return uri

    def _define_type(self, data: bytes) -> _Tag:
        if len(data) < 5:
            raise DeserializationError("malformed type definition")
        ident = unpack_u32(data)[0]
        if ident != len(self._tags):
            raise DeserializationError(f"type id {ident} defined out of order")
        name = data[4:].decode("utf-8")
        tag = self._make_tag(name)
        self._tags[id_bytes(ident)] = tag
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
        return self._reader.decode(data)
