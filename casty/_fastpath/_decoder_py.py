"""Whole msgpack messages with casty's ext codes, decoded (pure twin of ``_decoder_c``).

:class:`MessageReader` is the hot part of the serde decoder: it drives msgpack's unpacker with
the ext and array hooks that turn casty's ext codes into values (type tags build records,
enums and registered types; actor refs are resolved; tuples, sets, frozensets, big ints and
record runs are rebuilt). The per-connection tables are the caller's dicts; learning a new
type or actor URI (rare) calls back into the caller. See ``casty.serde._wire`` for the layout.

A *tag* is any object of ``tag_type`` with ``name``, ``build`` (one value from its array
``[tag, *items]``) and ``records`` (a record builder, or None when the type is no record).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack  # type: ignore[import-untyped, unused-ignore]

from casty.errors import DeserializationError, MessageRefused

__all__ = ["SMALL_MESSAGE", "MessageReader"]

#: messages up to this size are decoded with one reused unpacker
SMALL_MESSAGE = 64 * 1024

_EXT_TYPE_DEF = 1
_EXT_TYPE_REF = 2
_EXT_REF_DEF = 3
_EXT_REF_REF = 4
_EXT_TUPLE = 5
_EXT_SET = 6
_EXT_FROZENSET = 7
_EXT_BIGINT = 8
_EXT_RUN = 9
_EXT_REF_INLINE = 10
_EXT_REF_DEF_INC = 11
_EXT_REF_INLINE_INC = 12
_EXT_RECORD_DEF = 13


class MessageReader:
    """Decodes the messages of one connection direction, in order.

    ``tags`` (id bytes to tag) and ``ref_uris`` (id bytes to (URI, incarnation)) are the
    connection's tables; ``define_type(data, with_fields)`` / ``define_ref(data,
    with_incarnation)`` learn a definition (``with_fields``: a record definition naming the
    sender's fields) and return its tag / (URI, incarnation); ``resolve_ref(uri)`` makes an actor ref
    (``resolve_ref(uri, incarnation)`` for a ref that came with its process incarnation); ``builtins`` are the tags of tuple, set and
    frozenset; ``make_tag(name, build)`` makes the tag of a record run; ``has_timestamp(data)``
    tells whether a decoded message held msgpack's timestamp ext.
    """

    __slots__ = (
        "_define_ref",
        "_define_type",
        "_ext_hook",
        "_frozenset_tag",
        "_has_timestamp",
        "_list_hook",
        "_ref_uris",
        "_replies",
        "_resolve_ref",
        "_run_tag",
        "_set_tag",
        "_tag_type",
        "_tags",
        "_tuple_tag",
        "_unpacker",
        "_unpacker_offset",
        "error",
        "open_tags",
    )

    def __init__(
        self,
        tag_type: type,
        tags: dict[bytes, Any],
        ref_uris: dict[bytes, tuple[str, int]],
        define_type: Callable[[bytes, bool], Any],
        define_ref: Callable[[bytes, bool], tuple[str, int]],
        resolve_ref: Callable[..., Any],
        builtins: tuple[Any, Any, Any],
        make_tag: Callable[[str, Callable[[list[Any]], Any]], Any],
        has_timestamp: Callable[[bytes], bool],
    ) -> None:
        self._tag_type = tag_type
        self._tags = tags
        self._ref_uris = ref_uris
        self._define_type = define_type
        self._define_ref = define_ref
        self._resolve_ref = resolve_ref
        self._tuple_tag, self._set_tag, self._frozenset_tag = builtins
        self._run_tag = make_tag("record run", self.build_run)
        self._has_timestamp = has_timestamp
        #: array tags seen and not yet closed by their array, in the message being decoded
        self.open_tags = 0
        #: the first refusal recorded while decoding the current message
        self.error: DeserializationError | None = None
        #: URIs of the short-lived refs in the current message
        self._replies: list[str] = []
        self._ext_hook = self.ext_hook
        self._list_hook = self.list_hook
        self._unpacker = self._new_unpacker()
        self._unpacker_offset = 0

    def _new_unpacker(self) -> Any:
        # Reused for small messages (its size limits all derive from SMALL_MESSAGE, so a short
        # message cannot announce a huge array); larger ones go through ``unpackb``, whose
        # limits derive from the message's own length.
        return msgpack.Unpacker(
            ext_hook=self._ext_hook,
            list_hook=self._list_hook,
            raw=False,
            strict_map_key=False,
            max_buffer_size=SMALL_MESSAGE,
        )

    def record(self, error: DeserializationError) -> None:
        """Keep ``error`` as the refusal of the current message (the first one wins)."""
        if self.error is None:
            self.error = error

    def resolve(self, uri: str, incarnation: int) -> Any:
        """The actor ref for ``uri`` (of the process ``incarnation``, 0 when not known); a
        failure is recorded and gives None. A short-lived ref's URI is remembered until the
        next message (a refused message names them: their asks fail at once)."""
        if "/temp/" in uri:
            self._replies.append(uri)
        try:
            if incarnation:
                return self._resolve_ref(uri, incarnation)
            return self._resolve_ref(uri)
        except Exception as exc:
            self.record(DeserializationError(f"cannot resolve actor ref {uri!r}: {exc}"))
            return None

    def ext_hook(self, code: int, data: bytes) -> Any:
        if code == _EXT_TYPE_REF:
            tag = self._tags.get(data)
            if tag is None:
                raise DeserializationError(f"unknown type id {data.hex()}")
            self.open_tags += 1
            return tag
        if code == _EXT_REF_REF:
            known = self._ref_uris.get(data)
            if known is None:
                raise DeserializationError(f"unknown actor ref id {data.hex()}")
            return self.resolve(known[0], known[1])
        if code == _EXT_TUPLE:
            self.open_tags += 1
            return self._tuple_tag
        if code == _EXT_RUN:
            self.open_tags += 1
            return self._run_tag
        if code == _EXT_TYPE_DEF:
            self.open_tags += 1
            return self._define_type(data, False)
        if code == _EXT_RECORD_DEF:
            self.open_tags += 1
            return self._define_type(data, True)
        if code == _EXT_REF_DEF:
            known = self._define_ref(data, False)
            return self.resolve(known[0], known[1])
        if code == _EXT_REF_DEF_INC:
            known = self._define_ref(data, True)
            return self.resolve(known[0], known[1])
        if code == _EXT_REF_INLINE:
            try:
                uri = data.decode("utf-8")
            except UnicodeDecodeError:
                raise DeserializationError("actor ref URI is not UTF-8") from None
            return self.resolve(uri, 0)
        if code == _EXT_REF_INLINE_INC:
            if len(data) < 8:
                raise DeserializationError("malformed actor ref")
            try:
                uri = data[8:].decode("utf-8")
            except UnicodeDecodeError:
                raise DeserializationError("actor ref URI is not UTF-8") from None
            return self.resolve(uri, int.from_bytes(data[:8], "big"))
        if code == _EXT_BIGINT:
            if not data:
                raise DeserializationError("empty big integer")
            return int.from_bytes(data, "big", signed=True)
        if code == _EXT_SET:
            self.open_tags += 1
            return self._set_tag
        if code == _EXT_FROZENSET:
            self.open_tags += 1
            return self._frozenset_tag
        raise DeserializationError(f"unknown msgpack ext code {code}")

    def build_run(self, items: list[Any]) -> Any:
        """Every record of ``[run-tag, type-tag, count, fields...]`` (the type tag is consumed too)."""
        if type(items) is not list:
            raise TypeError("a record run is a list")
        if len(items) < 3 or type(items[1]) is not self._tag_type or type(items[2]) is not int:
            raise DeserializationError("malformed record run")
        self.open_tags -= 1
        tag: Any = items[1]
        count: int = items[2]
        records = tag.records
        if records is None:
            tag.build([tag])  # a refused type raises its own error here
            raise DeserializationError(f"{tag.name} cannot travel in a record run", tag.name)
        if count < 0 or len(items) != 3 + count * records.arity:
            raise DeserializationError(f"record run of {tag.name}: {len(items) - 3} values for {count} items")
        return records.run(items, 3, count)

    def list_hook(self, items: list[Any]) -> Any:
        if items:
            head: Any = items[0]
            tag_type: Any = self._tag_type
            if type(head) is tag_type:
                self.open_tags -= 1
                try:
                    return head.build(items)
                except DeserializationError as exc:
                    self.record(exc)
                except Exception as exc:
                    self.record(DeserializationError(f"cannot build {head.name}: {exc}", head.name))
                return None
        return items

    def decode(self, data: bytes) -> object:
        """Decode one message; malformed bytes raise :class:`DeserializationError`, a message
        that parsed but could not be built raises :class:`MessageRefused` with what was decoded.

        A message that cannot be parsed contributes no definitions (it was not produced by
        a well-behaved encoder). A message that parses but is refused (a type this process
        may not build, a failing constructor, an unresolvable ref) keeps its definitions,
        because its encoder counts them as sent.
        """
        self.open_tags = 0
        self.error = None
        if self._replies:
            self._replies.clear()
        tags_before = len(self._tags)
        refs_before = len(self._ref_uris)
        try:
            size = len(data)
            if size <= SMALL_MESSAGE:
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
            if self.open_tags:
                raise DeserializationError("malformed message: a type tag outside its array")
            if self._has_timestamp(data):
                raise DeserializationError("malformed message: unknown msgpack ext code -1")
        except BaseException as exc:
            self._forget(tags_before, refs_before)
            if isinstance(exc, DeserializationError) or not isinstance(exc, Exception):
                raise
            if self.error is not None:
                raise self.error from exc
            raise DeserializationError(f"malformed message: {type(exc).__name__}: {exc}") from exc
        error = self.error
        if error is not None:
            # parsed in full: the tables are in step, only this message is lost
            raise MessageRefused(str(error), error.type_name, obj, tuple(self._replies)) from error
        return obj

    def _forget(self, tags_before: int, refs_before: int) -> None:
        tags = self._tags
        while len(tags) > tags_before:
            tags.popitem()
        refs = self._ref_uris
        while len(refs) > refs_before:
            refs.popitem()
