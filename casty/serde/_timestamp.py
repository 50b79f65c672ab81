"""The guard against msgpack's built-in timestamp ext, which casty never sends.

An ext of code -1 is msgpack's timestamp: the unpacker decodes it itself instead of passing
it to ``ext_hook``, so the decoder cannot refuse it there. :func:`contains_timestamp` finds
one after the fact. A cheap byte search (:data:`TIMESTAMP_HEADER`) comes first; only when a
message contains such a byte pattern does a token walk decide whether it really is an ext
header and not, say, part of a string.
"""

from __future__ import annotations

import re

__all__ = ["TIMESTAMP_HEADER", "contains_timestamp"]

#: the only headers that can yield an ext of code -1
TIMESTAMP_HEADER = re.compile(
    rb"[\xd6\xd7]\xff|\xc7\x0c\xff|\xc8\x00[\x04\x08\x0c]\xff|\xc9\x00\x00\x00[\x04\x08\x0c]\xff"
)

# Bytes following the first byte of a msgpack token, for fixed-size tokens.
_FIXED_TAIL = {0xC0: 0, 0xC2: 0, 0xC3: 0, 0xCA: 4, 0xCB: 8, 0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}
_FIXED_TAIL.update({0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8, 0xDC: 2, 0xDD: 4, 0xDE: 2, 0xDF: 4})
_SIZED = {0xC4: 1, 0xC5: 2, 0xC6: 4, 0xD9: 1, 0xDA: 2, 0xDB: 4}
_EXT_SIZED = {0xC7: 1, 0xC8: 2, 0xC9: 4}
_FIXEXT = {0xD4: 1, 0xD5: 2, 0xD6: 4, 0xD7: 8, 0xD8: 16}


def contains_timestamp(data: bytes) -> bool:
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
