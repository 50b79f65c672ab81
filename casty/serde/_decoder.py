"""The msgpack decoder: one per connection direction, learning its id tables in order.

Decoding never imports a module: a type name becomes a *tag* (:class:`_Tag`) that builds
dataclasses and NamedTuples (through ``_records``), Enum members by value and registered
types, or refuses with a :class:`~casty.errors.DeserializationError` naming the type.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any

import msgpack  # type: ignore[import-untyped, unused-ignore]

from casty.actors.ref import ActorRef
from casty.errors import DeserializationError, MessageRefused

from ._records import RecordMaker, RunBuilder, record_builder, record_maker, run_builder
from ._registry import TypeRegistry, is_dataclass_type, is_enum_type, lookup_loaded_class
from ._timestamp import TIMESTAMP_HEADER, contains_timestamp
from ._wire import (
    EXT_BIGINT,
    EXT_FROZENSET,
    EXT_REF_DEF,
    EXT_REF_DEF_INC,
    EXT_REF_INLINE,
    EXT_REF_INLINE_INC,
    EXT_REF_REF,
    EXT_RUN,
    EXT_SET,
    EXT_TUPLE,
    EXT_TYPE_DEF,
    EXT_TYPE_REF,
    id_bytes,
    unpack_u32,
    unpack_u64,
)

__all__ = ["MsgpackDecoder"]

# Messages up to this size are decoded with one reused Unpacker.
_SMALL_MESSAGE = 64 * 1024


class _Tag:
    """What a type tag decodes to: knows how to build the value from its array.

    Record types (dataclasses, NamedTuples) also have ``record``, building one value from its
    field values, ``arity``, their number of fields, and ``run``, building every item of a
    record run: that is what a RecordRun needs."""

    __slots__ = ("arity", "build", "name", "record", "run")

    def __init__(
        self,
        name: str,
        build: Callable[[list[Any]], Any],
        record: RecordMaker | None = None,
        arity: int = 0,
        run: RunBuilder | None = None,
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
        record, arity = record_maker(cls)
        return _Tag(name, record_builder(cls), record, arity, run_builder(cls, record, arity))

    return _cached_tag(name, cls, make)


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
        "_tags_by_name",
        "_unpacker",
        "_unpacker_offset",
        "max_refs",
        "max_types",
    )

    def __init__(self, registry: TypeRegistry, strict: bool, resolve_ref: Callable[..., ActorRef[Any]]) -> None:
        """``resolve_ref(uri)`` turns a URI into a ref; for a ref that came with the incarnation
        of its process it is called as ``resolve_ref(uri, incarnation)``."""
        self._registry = registry
        self._strict = strict
        self._resolve_ref = resolve_ref
        self._tags: dict[bytes, _Tag] = {}
        self._tags_by_name: dict[str, _Tag] = {}
        #: ref id -> (URI, incarnation; 0 when the sender did not know it)
        self._ref_uris: dict[bytes, tuple[str, int]] = {}
        self._open_tags = 0
        self._error: DeserializationError | None = None
        #: definitions a peer may make (set by the transport from its configuration)
        self.max_types = 1 << 32
        self.max_refs = 1 << 32
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
                known = ref_uris.get(data)
                if known is None:
                    raise DeserializationError(f"unknown actor ref id {data.hex()}")
                return resolve(*known)
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
                return resolve(*define_ref(data, False))
            if code == EXT_REF_DEF_INC:
                return resolve(*define_ref(data, True))
            if code == EXT_REF_INLINE:
                try:
                    return resolve(data.decode("utf-8"), 0)
                except UnicodeDecodeError:
                    raise DeserializationError("actor ref URI is not UTF-8") from None
            if code == EXT_REF_INLINE_INC:
                if len(data) < 8:
                    raise DeserializationError("malformed actor ref")
                try:
                    return resolve(data[8:].decode("utf-8"), unpack_u64(data)[0])
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

    def _resolve(self, uri: str, incarnation: int) -> Any:
        try:
            if incarnation:
                return self._resolve_ref(uri, incarnation)
            return self._resolve_ref(uri)
        except Exception as exc:
            self._record(DeserializationError(f"cannot resolve actor ref {uri!r}: {exc}"))
            return None

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

    def _define_type(self, data: bytes) -> _Tag:
        if len(data) < 5:
            raise DeserializationError("malformed type definition")
        ident = unpack_u32(data)[0]
        if ident != len(self._tags):
            raise DeserializationError(f"type id {ident} defined out of order")
        if ident >= self.max_types:
            raise DeserializationError(
                f"too many type definitions on one connection (limit {self.max_types}, remote.max_type_definitions)"
            )
        name = data[4:].decode("utf-8")
        # a name defined again (under another id) is resolved once per connection
        by_name = self._tags_by_name
        tag = by_name.get(name)
        if tag is None:
            tag = self._make_tag(name)
            if len(by_name) < self.max_types:
                by_name[name] = tag
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
            if b"\xff" in data and TIMESTAMP_HEADER.search(data) is not None and contains_timestamp(data):
                raise DeserializationError("malformed message: unknown msgpack ext code -1")
        except BaseException as exc:
            self._forget(tags_before, refs_before)
            if isinstance(exc, DeserializationError) or not isinstance(exc, Exception):
                raise
            if self._error is not None:
                raise self._error from exc
            raise DeserializationError(f"malformed message: {type(exc).__name__}: {exc}") from exc
        error = self._error
        if error is not None:
            # parsed in full: the tables are in step, only this message is lost
            raise MessageRefused(str(error), error.type_name, obj) from error
        return obj

    def _forget(self, tags_before: int, refs_before: int) -> None:
        tags = self._tags
        while len(tags) > tags_before:
            tags.popitem()
        refs = self._ref_uris
        while len(refs) > refs_before:
            refs.popitem()
