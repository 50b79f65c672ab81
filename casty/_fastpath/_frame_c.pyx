# cython: language_level=3, boundscheck=False, wraparound=False
"""Length-prefixed framing of a TCP byte stream, compiled (twin of ``_frame_py``; same behaviour).

Each frame is a 4-byte big-endian unsigned length followed by that many body bytes.
Zero-length bodies are allowed. Input is read through the buffer protocol; complete
frames are copied straight from the fed chunk into their ``bytes`` bodies, and only the
bytes of one incomplete frame are ever held between calls, so nothing consumed needs
compacting and a frame arriving in many small chunks is appended with amortised growth.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE, PyByteArray_Resize
from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.string cimport memcpy

from casty.errors import FrameError, FrameTooLarge

__all__ = ["MAX_FRAME_LIMIT", "FrameDecoder", "FrameEncoder", "encode_frame"]

include "_source.pxi"

MAX_FRAME_LIMIT = 0xFFFFFFFF

cdef Py_ssize_t _HEADER_SIZE = 4
cdef Py_ssize_t _LIMIT = 0xFFFFFFFF


cdef inline Py_ssize_t _read_header(const unsigned char* p) noexcept nogil:
    return ((<Py_ssize_t>p[0]) << 24) | ((<Py_ssize_t>p[1]) << 16) | ((<Py_ssize_t>p[2]) << 8) | (<Py_ssize_t>p[3])


cdef inline void _write_header(unsigned char* p, Py_ssize_t size) noexcept nogil:
    p[0] = <unsigned char>((size >> 24) & 0xFF)
    p[1] = <unsigned char>((size >> 16) & 0xFF)
    p[2] = <unsigned char>((size >> 8) & 0xFF)
    p[3] = <unsigned char>(size & 0xFF)


cdef Py_ssize_t _check_limit(object max_frame_size) except -1:
    limit = int(max_frame_size)
    if limit < 0 or limit > MAX_FRAME_LIMIT:
        raise ValueError(f"max_frame_size must be between 0 and {MAX_FRAME_LIMIT}, got {max_frame_size}")
    return <Py_ssize_t>limit


cdef int _append(bytearray buf, const unsigned char* src, Py_ssize_t n) except -1:
    cdef Py_ssize_t old
    if n <= 0:
        return 0
    old = PyByteArray_GET_SIZE(buf)
    PyByteArray_Resize(buf, old + n)
    memcpy(PyByteArray_AS_STRING(buf) + old, src, <size_t>n)
    return 0


def encode_frame(body):
    """Return ``body`` with its 4-byte big-endian length prefix."""
    cdef Py_buffer view
    cdef bytes out
    cdef unsigned char* dst
    PyObject_GetBuffer(body, &view, PyBUF_SIMPLE)
    try:
        if view.len > _LIMIT:
            raise FrameTooLarge(view.len, MAX_FRAME_LIMIT)
        out = PyBytes_FromStringAndSize(NULL, _HEADER_SIZE + view.len)
        dst = <unsigned char*><char*>out
        _write_header(dst, view.len)
        if view.len:
            memcpy(dst + _HEADER_SIZE, view.buf, <size_t>view.len)
        return out
    finally:
        PyBuffer_Release(&view)


cdef class FrameEncoder:
    """Collects frames into one buffer so a batch goes out in a single write.

    ``add`` appends a length prefix and the body (and says how many bytes are pending);
    ``take`` returns everything pending and
    empties the encoder.
    """

    cdef bytearray _buf
    cdef Py_ssize_t _frames
    cdef Py_ssize_t _max

    def __init__(self, max_frame_size):
        self._max = _check_limit(max_frame_size)
        self._buf = bytearray()
        self._frames = 0

    def add(self, body):
        """Append one frame and return the bytes now pending; raises :class:`FrameTooLarge`
        (appending nothing) when too big."""
        cdef Py_buffer view
        cdef Py_ssize_t old
        cdef unsigned char* dst
        PyObject_GetBuffer(body, &view, PyBUF_SIMPLE)
        try:
            if view.len > self._max:
                raise FrameTooLarge(view.len, self._max)
            old = PyByteArray_GET_SIZE(self._buf)
            PyByteArray_Resize(self._buf, old + _HEADER_SIZE + view.len)
            dst = <unsigned char*>PyByteArray_AS_STRING(self._buf) + old
            _write_header(dst, view.len)
            if view.len:
                memcpy(dst + _HEADER_SIZE, view.buf, <size_t>view.len)
            self._frames += 1
        finally:
            PyBuffer_Release(&view)
        return PyByteArray_GET_SIZE(self._buf)

    def take(self):
        """Return all pending bytes (``b""`` when none) and reset the encoder."""
        cdef bytes out
        if self._frames == 0:
            return b""
        out = PyBytes_FromStringAndSize(PyByteArray_AS_STRING(self._buf), PyByteArray_GET_SIZE(self._buf))
        PyByteArray_Resize(self._buf, 0)
        self._frames = 0
        return out

    @property
    def pending_bytes(self):
        """Bytes waiting to be taken, prefixes included."""
        return PyByteArray_GET_SIZE(self._buf)

    @property
    def pending_frames(self):
        """Frames waiting to be taken."""
        return self._frames


cdef class FrameDecoder:
    """Splits a byte stream, fed in chunks of any size, back into frame bodies.

    ``feed`` returns the bodies completed by the chunk, in order, and keeps any partial
    frame for the next call. A length prefix larger than ``max_frame_size`` raises
    :class:`FrameTooLarge` as soon as its four bytes are read, without buffering the body.

    Error rule: when bodies were completed earlier in the same ``feed`` call, that call
    returns them and the error is stored; the *next* ``feed`` raises it. Once an error has
    been raised the decoder is failed, and every later ``feed`` raises
    ``FrameError("decoder failed: ...")``. A failed decoder holds no buffered bytes.
    """

    cdef bytearray _buf
    cdef Py_ssize_t _max
    cdef object _pending_error
    cdef object _failure

    def __init__(self, max_frame_size):
        self._max = _check_limit(max_frame_size)
        self._buf = bytearray()
        self._pending_error = None
        self._failure = None

    @property
    def buffered(self):
        """Bytes of an incomplete frame held for the next ``feed``."""
        return PyByteArray_GET_SIZE(self._buf)

    @property
    def failure(self):
        """Why the decoder failed (also while its error waits for the next ``feed``), else None."""
        return self._failure

    cdef list _fail(self, object error, list out):
        self._failure = str(error)
        self._buf = bytearray()
        if out:
            self._pending_error = error
            return out
        raise error

    def feed(self, data):
        """Add ``data`` to the stream; return the bodies it completes, in order."""
        cdef Py_buffer view
        cdef const unsigned char* src
        cdef Py_ssize_t end, pos, held, take, size, need, stop
        cdef Py_ssize_t limit = self._max
        cdef list out
        cdef bytearray buf
        if self._failure is not None:
            pending = self._pending_error
            if pending is not None:
                self._pending_error = None
                raise pending
            raise FrameError(f"decoder failed: {self._failure}")
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            src = <const unsigned char*>view.buf
            end = view.len
            pos = 0
            out = []
            buf = self._buf
            held = PyByteArray_GET_SIZE(buf)
            if held:
                # Finish the partial frame from the front of ``data``; the rest is read in place.
                if held < _HEADER_SIZE:
                    take = _HEADER_SIZE - held
                    if take > end:
                        take = end
                    _append(buf, src, take)
                    pos = take
                    held += take
                    if held < _HEADER_SIZE:
                        return out
                size = _read_header(<const unsigned char*>PyByteArray_AS_STRING(buf))
                if size > limit:
                    return self._fail(FrameTooLarge(size, limit), out)
                need = _HEADER_SIZE + size - held
                if end - pos < need:
                    _append(buf, src + pos, end - pos)
                    return out
                _append(buf, src + pos, need)
                pos += need
                out.append(PyBytes_FromStringAndSize(PyByteArray_AS_STRING(buf) + _HEADER_SIZE, size))
                PyByteArray_Resize(buf, 0)

            while end - pos >= _HEADER_SIZE:
                size = _read_header(src + pos)
                if size > limit:
                    return self._fail(FrameTooLarge(size, limit), out)
                stop = pos + _HEADER_SIZE + size
                if stop > end:
                    break
                out.append(PyBytes_FromStringAndSize(<const char*>(src + pos + _HEADER_SIZE), size))
                pos = stop
            if pos < end:
                _append(buf, src + pos, end - pos)
            return out
        finally:
            PyBuffer_Release(&view)
