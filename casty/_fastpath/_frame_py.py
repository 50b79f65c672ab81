"""Length-prefixed framing of a TCP byte stream (pure-Python twin of ``_frame_c``).

Each frame is a 4-byte big-endian unsigned length followed by that many body bytes.
Zero-length bodies are allowed.
"""

from __future__ import annotations

from struct import Struct

from casty.errors import FrameError, FrameTooLarge

__all__ = ["MAX_FRAME_LIMIT", "FrameDecoder", "FrameEncoder", "encode_frame"]

MAX_FRAME_LIMIT = 0xFFFFFFFF
"""The largest body a 4-byte length prefix can describe."""

_HEADER = Struct(">I")
_HEADER_SIZE = 4
_pack_header = _HEADER.pack
_unpack_header = _HEADER.unpack_from


def _check_limit(max_frame_size: int) -> int:
    limit = int(max_frame_size)
    if limit < 0 or limit > MAX_FRAME_LIMIT:
        raise ValueError(f"max_frame_size must be between 0 and {MAX_FRAME_LIMIT}, got {max_frame_size}")
    return limit


def _byte_length(body: bytes | bytearray | memoryview) -> int:
    """Size in bytes of a bytes-like ``body``; TypeError (before anything is written) for anything else."""
    if type(body) is bytes:
        return len(body)
    return memoryview(body).nbytes


def encode_frame(body: bytes | bytearray | memoryview) -> bytes:
    """Return ``body`` with its 4-byte big-endian length prefix."""
    size = _byte_length(body)
    if size > MAX_FRAME_LIMIT:
        raise FrameTooLarge(size, MAX_FRAME_LIMIT)
    return _pack_header(size) + bytes(body)


class FrameEncoder:
    """Collects frames into one buffer so a batch goes out in a single write.

    ``add`` appends a length prefix and the body (and says how many bytes are pending);
    ``take`` returns everything pending and
    empties the encoder.
    """

    __slots__ = ("_buf", "_frames", "_max")

    def __init__(self, max_frame_size: int) -> None:
        self._max = _check_limit(max_frame_size)
        self._buf = bytearray()
        self._frames = 0

    def add(self, body: bytes | bytearray | memoryview) -> int:
        """Append one frame and return the bytes now pending; raises :class:`FrameTooLarge`
        (appending nothing) when too big."""
        size = _byte_length(body)
        if size > self._max:
            raise FrameTooLarge(size, self._max)
        buf = self._buf
        buf += _pack_header(size)
        buf += body
        self._frames += 1
        return len(buf)

    def take(self) -> bytes:
        """Return all pending bytes (``b""`` when none) and reset the encoder."""
        if not self._frames:
            return b""
        out = bytes(self._buf)
        self._buf.clear()
        self._frames = 0
        return out

    @property
    def pending_bytes(self) -> int:
        """Bytes waiting to be taken, prefixes included."""
        return len(self._buf)

    @property
    def pending_frames(self) -> int:
        """Frames waiting to be taken."""
        return self._frames


class FrameDecoder:
    """Splits a byte stream, fed in chunks of any size, back into frame bodies.

    ``feed`` returns the bodies completed by the chunk, in order, and keeps any partial
    frame for the next call. A length prefix larger than ``max_frame_size`` raises
    :class:`FrameTooLarge` as soon as its four bytes are read, without buffering the body.

    Error rule: when bodies were completed earlier in the same ``feed`` call, that call
    returns them and the error is stored; the *next* ``feed`` raises it. Once an error has
    been raised the decoder is failed, and every later ``feed`` raises
    ``FrameError("decoder failed: ...")``. A failed decoder holds no buffered bytes.
    """

    __slots__ = ("_buf", "_failure", "_max", "_pending_error")

    def __init__(self, max_frame_size: int) -> None:
        self._max = _check_limit(max_frame_size)
        # Only the bytes of one incomplete frame are ever held here: complete frames are
        # sliced straight out of the fed chunk, so nothing consumed needs compacting.
        self._buf = bytearray()
        self._pending_error: FrameError | None = None
        self._failure: str | None = None

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete frame held for the next ``feed``."""
        return len(self._buf)

    @property
    def failure(self) -> str | None:
        """Why the decoder failed (also while its error waits for the next ``feed``), else None."""
        return self._failure

    def _fail(self, error: FrameError, out: list[bytes]) -> list[bytes]:
        self._failure = str(error)
        self._buf = bytearray()
        if out:
            self._pending_error = error
            return out
        raise error

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Add ``data`` to the stream; return the bodies it completes, in order."""
        if self._failure is not None:
            pending = self._pending_error
            if pending is not None:
                self._pending_error = None
                raise pending
            raise FrameError(f"decoder failed: {self._failure}")
        src: bytes | memoryview
        if type(data) is bytes:
            src = data
        else:
            src = memoryview(data)
            if src.format != "B" or src.ndim != 1:
                src = src.cast("B")
        end = len(src)
        pos = 0
        out: list[bytes] = []
        limit = self._max
        buf = self._buf

        held = len(buf)
        if held:
            # Finish the partial frame from the front of ``data``; the rest is read in place.
            if held < _HEADER_SIZE:
                take = min(_HEADER_SIZE - held, end)
                buf += src[:take]
                pos = take
                held += take
                if held < _HEADER_SIZE:
                    return out
            size = _unpack_header(buf)[0]
            if size > limit:
                return self._fail(FrameTooLarge(size, limit), out)
            need = _HEADER_SIZE + size - held
            if end - pos < need:
                buf += src[pos:]
                return out
            buf += src[pos : pos + need]
            pos += need
            out.append(bytes(buf[_HEADER_SIZE:]))
            buf.clear()

        while end - pos >= _HEADER_SIZE:
            size = _unpack_header(src, pos)[0]
            if size > limit:
                return self._fail(FrameTooLarge(size, limit), out)
            stop = pos + _HEADER_SIZE + size
            if stop > end:
                break
            out.append(bytes(src[pos + _HEADER_SIZE : stop]))
            pos = stop
        if pos < end:
            buf += src[pos:]
        return out
