"""The msgpack decoder: one per connection direction, learning its id tables in order.

Decoding never imports a module: a type name becomes a *tag* (:class:`_Tag`) that builds
dataclasses and NamedTuples (through ``_records``), Enum members by value and registered
types, or refuses with a :class:`~casty.errors.DeserializationError` naming the type.

A record definition that names the sender's fields (protocol 3 on) gets the class's own tag
when those fields are the class's, in its order (the common case: nothing changes per
message), and otherwise a tag mapping them by name, made once per (class, sender's fields) and
shared by every connection; a class field the sender lacks and that has no default makes a tag
refusing every message of that definition with an error naming the class and the field.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any

from casty._fastpath import MessageReader, has_timestamp_ext
from casty.actors.ref import ActorRef
from casty.errors import DeserializationError

from ._records import MissingField, RecordBuilder, mapped_record_builder, record_builder
from ._registry import TypeRegistry, dataclass_info, is_dataclass_type, is_enum_type, lookup_loaded_class, type_name
from ._wire import (
    RECORD_FIELDS_VERSION,
    id_bytes,
    unpack_record_def,
    unpack_u32,
    unpack_u64,
)

__all__ = ["MsgpackDecoder"]


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


# Refusing tags share one builder per reason: the array's head is the tag, which names the
# type, so a refused definition costs one small object and no closure.
def _refuse_unregistered(items: list[Any]) -> Any:
    name = items[0].name
    raise DeserializationError(f"type {name!r} is not registered (strict serializer)", name)


def _refuse_not_loaded(items: list[Any]) -> Any:
    name = items[0].name
    raise DeserializationError(f"type {name!r} is not a class loaded in this process", name)


def _refuse_kind(items: list[Any]) -> Any:
    name = items[0].name
    raise DeserializationError(
        f"refusing to build {name!r}: only dataclasses, enums and registered types are accepted", name
    )


#: tags built for a (name, class or decode function), shared by every decoder: a type defined
#: again and again, on one connection or many, is compiled once
_TAG_CACHE: dict[tuple[str, object], _Tag] = {}
_TAG_CACHE_LIMIT = 4096


def _cached_tag(name: str, target: object, make: Callable[[], _Tag]) -> _Tag:
    key = (name, target)
    tag = _TAG_CACHE.get(key)
    if tag is None:
        tag = make()
        if len(_TAG_CACHE) < _TAG_CACHE_LIMIT:
            _TAG_CACHE[key] = tag
    return tag


def _dataclass_tag(name: str, cls: type) -> _Tag:
    def make() -> _Tag:
        records = record_builder(cls)
        return _Tag(name, records.build, records)

    return _cached_tag(name, cls, make)


def _missing_field_builder(message: str, name: str) -> Callable[[list[Any]], Any]:
    def build(items: list[Any]) -> Any:
        raise DeserializationError(message, name)

    return build


def _fields_tag(name: str, tag: _Tag, fields: tuple[str, ...]) -> _Tag:
    """The tag of a record definition that named the sender's ``fields``: ``tag`` itself when
    they are the class's (or the tag builds no record), else one mapping them by name."""
    records = tag.records
    if records is None:
        return tag  # an enum, a registered codec or a refusal: the fields do not matter
    cls = records.record_class
    if dataclass_info(cls).names == fields:
        return tag

    def make() -> _Tag:
        try:
            mapped = mapped_record_builder(cls, fields)
        except MissingField as missing:
            here = "" if type_name(cls) == name else f" ({type_name(cls)} here)"
            message = (
                f"cannot build {name}{here}: its field {missing.field!r} has no default and the sender "
                f"does not send it (the sender's fields: {', '.join(fields) or 'none'})"
            )
            return _Tag(name, _missing_field_builder(message, name))
        return _Tag(name, mapped.build, mapped)

    return _cached_tag(name, (cls, fields), make)


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

    __slots__ = (
        "_reader",
        "_ref_uris",
        "_registry",
        "_strict",
        "_tags",
        "_tags_by_name",
        "max_refs",
        "max_types",
        "protocol_version",
    )

    def __init__(self, registry: TypeRegistry, strict: bool, resolve_ref: Callable[..., ActorRef[Any]]) -> None:
        """``resolve_ref(uri)`` turns a URI into a ref; for a ref that came with the incarnation
        of its process it is called as ``resolve_ref(uri, incarnation)``."""
        self._registry = registry
        self._strict = strict
        self._tags: dict[bytes, _Tag] = {}
        #: tags by type name (TYPE_DEF) or by (type name, the sender's fields) (RECORD_DEF)
        self._tags_by_name: dict[object, _Tag] = {}
        #: ref id -> (URI, incarnation; 0 when the sender did not know it)
        self._ref_uris: dict[bytes, tuple[str, int]] = {}
        #: definitions a peer may make (set by the transport from its configuration)
        self.max_types = 1 << 32
        self.max_refs = 1 << 32
        #: the protocol version of the connection (set by the transport from the handshake):
        #: record definitions naming their fields are accepted from RECORD_FIELDS_VERSION on
        self.protocol_version = RECORD_FIELDS_VERSION
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

    def _define_ref(self, data: bytes, with_incarnation: bool) -> tuple[str, int]:
        start = 12 if with_incarnation else 4
        if len(data) < start:
            raise DeserializationError("malformed actor ref definition")
        ident = unpack_u32(data)[0]
        if ident != len(self._ref_uris):
            raise DeserializationError(f"actor ref id {ident} defined out of order")
        if ident >= self.max_refs:
            raise DeserializationError(
                f"too many actor ref definitions on one connection (limit {self.max_refs}, remote.max_ref_definitions)"
            )
        known = (data[start:].decode("utf-8"), unpack_u64(data, 4)[0] if with_incarnation else 0)
        self._ref_uris[id_bytes(ident)] = known
        return known

    def _define_type(self, data: bytes, with_fields: bool) -> _Tag:
        fields: tuple[str, ...] = ()
        if with_fields:
            if self.protocol_version < RECORD_FIELDS_VERSION:
                raise DeserializationError(
                    f"record definition naming fields on a connection at protocol version {self.protocol_version}"
                )
            try:
                ident, name, fields = unpack_record_def(data)
            except ValueError as exc:
                raise DeserializationError(f"malformed record definition: {exc}") from None
        else:
            if len(data) < 5:
                raise DeserializationError("malformed type definition")
            ident = unpack_u32(data)[0]
            name = ""
        if ident != len(self._tags):
            raise DeserializationError(f"type id {ident} defined out of order")
        if ident >= self.max_types:
            raise DeserializationError(
                f"too many type definitions on one connection (limit {self.max_types}, remote.max_type_definitions)"
            )
        if not with_fields:
            name = data[4:].decode("utf-8")
        # a name (with the same fields) defined again, under another id, is resolved once per connection
        key: object = (name, fields) if with_fields else name
        by_name = self._tags_by_name
        tag = by_name.get(key)
        if tag is None:
            tag = self._make_tag(name)
            if with_fields:
                tag = _fields_tag(name, tag, fields)
            if len(by_name) < self.max_types:
                by_name[key] = tag
        self._tags[id_bytes(ident)] = tag
        return tag

    def _make_tag(self, name: str) -> _Tag:
        """The tag for a type name; a refusing tag when this process must not build it."""
        entry = self._registry.entry_for_name(name)
        if entry is not None:
            decode = entry.decode
            if decode is not None:
                return _cached_tag(name, decode, lambda: _Tag(name, _custom_builder(decode)))
            registered = entry.cls
            if is_enum_type(registered):
                return _cached_tag(name, registered, lambda: _Tag(name, _enum_builder(registered)))
            return _dataclass_tag(name, registered)
        if self._strict:
            return _Tag(name, _refuse_unregistered)
        cls = lookup_loaded_class(name)
        if cls is None:
            return _Tag(name, _refuse_not_loaded)
        if is_enum_type(cls):
            return _cached_tag(name, cls, lambda: _Tag(name, _enum_builder(cls)))
        if is_dataclass_type(cls):
            return _dataclass_tag(name, cls)
        return _Tag(name, _refuse_kind)

    @property
    def decode_function(self) -> Callable[[bytes], object]:
        """What :meth:`decode` calls, without the method in between: a transport that decodes
        every message calls it directly."""
        decode: Callable[[bytes], object] = self._reader.decode
        return decode

    def decode(self, data: bytes) -> object:
        """Decode one message; anything wrong raises :class:`DeserializationError`.

        A message that cannot be parsed contributes no definitions (it was not produced by
        a well-behaved encoder). A message that parses but is refused (a type this process
        may not build, a failing constructor, an unresolvable ref) keeps its definitions,
        because its encoder counts them as sent, and raises
        :class:`~casty.errors.MessageRefused` carrying what was decoded.
        """
        return self._reader.decode(data)
