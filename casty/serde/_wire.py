"""The msgpack wire layout: ext codes, the marks built from them, and id encoding.

Wire layout of one encoded message: a single msgpack value. Primitives (None, bool, int
within 64 bits, float, str, bytes, list, dict) are plain msgpack. Everything else is an
ext value or an array whose first element is an ext *tag*:

================  ============================================  ==============================
ext code          payload                                       meaning
================  ============================================  ==============================
1 TYPE_DEF        u32 big-endian id + UTF-8 type name           tag; defines id for this stream
2 TYPE_REF        id, big-endian, minimal length (>= 1 byte)    tag of an already defined type
3 REF_DEF         u32 big-endian id + UTF-8 actor URI           an ActorRef; defines the URI id
4 REF_REF         id, big-endian, minimal length (>= 1 byte)    an ActorRef already defined
5 TUPLE           empty                                         tag: ``[TUPLE, *items]``
6 SET             empty                                         tag: ``[SET, *items]``
7 FROZENSET       empty                                         tag: ``[FROZENSET, *items]``
8 BIGINT          signed big-endian two's complement            an int beyond 64 bits
9 RUN             empty                                         tag: a record run (below)
10 REF_INLINE     UTF-8 actor URI                               an ActorRef given no id
11 REF_DEF_INC    u32 id + u64 incarnation + UTF-8 actor URI    REF_DEF of a ref that knows the
                                                                incarnation of its process
12 REF_INLINE_INC u64 incarnation + UTF-8 actor URI             REF_INLINE, likewise
13 RECORD_DEF     u32 id + u16 field count + per field: u16     tag of a record type (protocol
                  length + UTF-8 field name; then UTF-8 type    3 on): TYPE_DEF with the
                  name                                          sender's field names
================  ============================================  ==============================

A type tag heads an array: ``[tag, *init_field_values]`` for a dataclass (positional
fields, then keyword-only ones; ``init=False`` fields are not sent), ``[tag, value]`` for an
Enum member, ``[tag, encode(obj)]`` for a registered type with its own codec.

From protocol version 3 (:data:`RECORD_FIELDS_VERSION`) a record type (dataclass or
NamedTuple) is defined by RECORD_DEF, which names its fields in the order the sender sends
them; the receiver maps them by name to its own class once per connection and class (a field
it lacks is ignored, a field the sender lacks takes its default). Enums and registered types
with a codec of their own keep TYPE_DEF. On a connection at an older version every type is
defined by TYPE_DEF and records are read positionally. A record run is
``[RUN, type tag, count, fields of item 0, fields of item 1, ...]`` (see ``_records``). Ids
count up from 0 per encoder, separately for types and refs; the decoder learns them in stream
order. A ref that knows the incarnation (the process uid exchanged in the handshake) of the
process its actor lives in carries it beside the URI, so the URI itself keeps its textual
``casty://system@host:port/path`` form; the id of REF_DEF_INC counts in the same table as
REF_DEF's. Short-lived refs (URIs containing ``/temp/``) travel as REF_INLINE so they never grow
the tables of a long-lived connection.
"""

from __future__ import annotations

from struct import Struct

import msgpack  # type: ignore[import-untyped, unused-ignore]

__all__ = [
    "EXT_BIGINT",
    "EXT_FROZENSET",
    "EXT_REF_DEF",
    "EXT_REF_DEF_INC",
    "EXT_REF_INLINE",
    "EXT_REF_INLINE_INC",
    "EXT_REF_REF",
    "EXT_RECORD_DEF",
    "EXT_RUN",
    "EXT_SET",
    "EXT_TUPLE",
    "EXT_TYPE_DEF",
    "EXT_TYPE_REF",
    "FROZENSET_MARK",
    "MAX_ID",
    "RECORD_FIELDS_VERSION",
    "RUN_MARK",
    "SET_MARK",
    "TUPLE_MARK",
    "ExtType",
    "id_bytes",
    "pack_u32",
    "pack_u64",
    "pack_record_def",
    "unpack_record_def",
    "unpack_u32",
    "unpack_u64",
]

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
EXT_REF_DEF_INC = 11
EXT_REF_INLINE_INC = 12
EXT_RECORD_DEF = 13

#: the first protocol version whose record definitions carry the sender's field names
RECORD_FIELDS_VERSION = 3

ExtType = msgpack.ExtType

_U32 = Struct(">I")
pack_u32 = _U32.pack
unpack_u32 = _U32.unpack_from
_U16 = Struct(">H")
_U64 = Struct(">Q")
pack_u64 = _U64.pack
unpack_u64 = _U64.unpack_from

#: the largest type or ref id a definition can carry (u32)
MAX_ID = 0xFFFFFFFF

TUPLE_MARK = ExtType(EXT_TUPLE, b"")
SET_MARK = ExtType(EXT_SET, b"")
FROZENSET_MARK = ExtType(EXT_FROZENSET, b"")
RUN_MARK = ExtType(EXT_RUN, b"")


def id_bytes(ident: int) -> bytes:
    """The short form of an id: big-endian, minimal length, at least one byte."""
    return ident.to_bytes((ident.bit_length() + 7) // 8 or 1, "big")


def pack_record_def(ident: int, name: str, fields: tuple[str, ...]) -> bytes:
    """The payload of a RECORD_DEF: ``ident``, the ``fields`` in the sender's order, ``name``.
    Raises ``ValueError`` for more than 65535 fields or a field name over 65535 bytes."""
    if len(fields) > 0xFFFF:
        raise ValueError(f"{len(fields)} fields: a record definition names at most 65535")
    parts = [pack_u32(ident), _U16.pack(len(fields))]
    for field in fields:
        raw = field.encode("utf-8")
        if len(raw) > 0xFFFF:
            raise ValueError("a field name longer than 65535 bytes")
        parts.append(_U16.pack(len(raw)))
        parts.append(raw)
    parts.append(name.encode("utf-8"))
    return b"".join(parts)


def unpack_record_def(data: bytes) -> tuple[int, str, tuple[str, ...]]:
    """``(ident, name, fields)`` of a RECORD_DEF payload; ``ValueError`` when it is malformed
    (too short, not UTF-8, no type name, a field named twice)."""
    if len(data) < 6:
        raise ValueError("too short")
    ident = unpack_u32(data)[0]
    count = _U16.unpack_from(data, 4)[0]
    pos = 6
    fields: list[str] = []
    for _ in range(count):
        if pos + 2 > len(data):
            raise ValueError("truncated field names")
        size = _U16.unpack_from(data, pos)[0]
        pos += 2
        if pos + size > len(data):
            raise ValueError("truncated field names")
        fields.append(data[pos : pos + size].decode("utf-8"))
        pos += size
    if len(set(fields)) != len(fields):
        raise ValueError("a field named twice")
    name = data[pos:].decode("utf-8")
    if not name:
        raise ValueError("no type name")
    return ident, name, tuple(fields)
