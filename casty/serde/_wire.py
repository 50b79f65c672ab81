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
================  ============================================  ==============================

A type tag heads an array: ``[tag, *init_field_values]`` for a dataclass (positional
fields, then keyword-only ones; ``init=False`` fields are not sent), ``[tag, value]`` for an
Enum member, ``[tag, encode(obj)]`` for a registered type with its own codec. A record run is
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
    "EXT_RUN",
    "EXT_SET",
    "EXT_TUPLE",
    "EXT_TYPE_DEF",
    "EXT_TYPE_REF",
    "FROZENSET_MARK",
    "MAX_ID",
    "RUN_MARK",
    "SET_MARK",
    "TUPLE_MARK",
    "ExtType",
    "id_bytes",
    "pack_u32",
    "pack_u64",
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

ExtType = msgpack.ExtType

_U32 = Struct(">I")
pack_u32 = _U32.pack
unpack_u32 = _U32.unpack_from
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
