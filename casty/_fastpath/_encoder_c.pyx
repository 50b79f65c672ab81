# cython: language_level=3, boundscheck=False, wraparound=False
"""Messages to msgpack with casty's ext codes, the hot half, compiled (twin of ``_encoder_py``;
same behaviour and bytes).

:class:`MessageWriter` owns one connection direction's packer and is its ``default`` hook: a
value msgpack cannot pack natively goes to the handler of its class in ``handlers`` (the serde
encoder's table, which it extends as it learns classes), a class without one to ``learn(obj)``.
An actor ref (of class ``ref_type`` exactly) is encoded here: its URI and incarnation come from
``wire_prefix(address)`` when that hook is set (``(prefix, incarnation)``: the URI is the prefix
and the ref's path, the incarnation None for "the ref's own ``uid``"; cached per address), else
from ``ref_to_wire(ref)`` and ``incarnation_of(ref)``. A short-lived ref (a URI containing
``/temp/``) is sent inline and never given an id; a known one is its mark in ``refs`` (keyed by
``(uri, incarnation)``); a new one is defined by ``define_ref(uri, incarnation)``.

:class:`RecordHandler` is the handler of a record class: ``[mark, *field values]``, the fields
read and the list built here, without a Python call.

:meth:`MessageWriter.encode` packs one message. When packing fails, or the message is longer
than ``max_size``, it calls ``failed(obj, error, types_before, refs_before)`` with the lengths
``learned`` and ``ref_order`` had before the call; ``failed`` rolls the tables back and raises.

The twin packs with ``msgpack.Packer(default=..., strict_types=True, use_bin_type=True)``; this
module packs the same bytes itself, into a buffer of its own, and calls the hook without a
Python call: None, bools, ints, floats, str, bytes, bytearray, dicts, lists and ``ExtType`` are
written here in msgpack's encodings (the same choice of the shortest form, the same limits,
errors and nesting limit); the rare rest msgpack packs natively (``Timestamp``, memoryviews) is
handed to a msgpack packer configured like the twin's.
"""

cimport cython
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItem, PyDict_Size
from cpython.exc cimport PyErr_Clear, PyErr_ExceptionMatches, PyErr_Occurred
from cpython.float cimport PyFloat_AS_DOUBLE
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE, PyList_New, PyList_SET_ITEM
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE
from libc.string cimport memcpy

cdef extern from "Python.h":
    bint PyLong_CheckExact(object o)
    bint PyFloat_CheckExact(object o)
    bint PyUnicode_CheckExact(object o)
    bint PyBytes_CheckExact(object o)
    bint PyByteArray_CheckExact(object o)
    bint PyDict_CheckExact(object o)
    bint PyList_CheckExact(object o)
    bint PyMemoryView_Check(object o)
    long long PyLong_AsLongLongAndOverflow(object o, int* overflow)
    unsigned long long PyLong_AsUnsignedLongLong(object o)
    const char* PyUnicode_AsUTF8AndSize(object o, Py_ssize_t* size) except NULL

import functools

import msgpack

from casty.errors import FrameTooLarge, SerializationError

__all__ = ["MessageWriter", "RecordHandler"]

include "_source.pxi"

cdef int _EXT_REF_INLINE = 10
cdef int _EXT_REF_INLINE_INC = 12
cdef object _U64_END = 1 << 64
cdef object _new_ext = functools.partial(tuple.__new__, msgpack.ExtType)
cdef Py_ssize_t _PREFIX_LIMIT = 1024

# msgpack's limits: a str, bytes, list, dict or ext body of at most 2**32 - 1 items or bytes, and
# containers nested at most _NEST_LIMIT deep, which msgpack does not expose and which changed
# between its versions (511 before 1.1, 1024 since): found once, by packing nested lists
cdef Py_ssize_t _ITEM_LIMIT = 0xFFFFFFFF


def _msgpack_nest_limit():
    """The deepest nesting of lists msgpack packs (the lists around the innermost value)."""
    def packs(depth):
        value = None
        for _ in range(depth):
            value = [value]
        try:
            msgpack.packb(value)
        except ValueError:
            return False
        return True

    for known in (1024, 511):  # the limits of the msgpack versions so far: two probes each
        if packs(known) and not packs(known + 1):
            return known
    lo, hi = 1, 4096  # the deepest that packs is in lo..hi
    if packs(hi):
        return hi
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if packs(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


cdef int _NEST_LIMIT = -1  # found when the first writer is made (a few ms: not at import)
# the pack buffer: allocated at this size; grown for larger messages and kept at that size
# until _SHRINK_AFTER messages in a row fit in _KEEP bytes (a stream of large messages neither
# reallocates nor faults its pages in again for each one)
cdef Py_ssize_t _INITIAL = 16 * 1024
cdef Py_ssize_t _KEEP = 1024 * 1024
cdef int _SHRINK_AFTER = 32
cdef object _ExtType = msgpack.ExtType
cdef object _Timestamp = msgpack.Timestamp


cdef inline void _be16(char* p, unsigned long long v) noexcept nogil:
    p[0] = <char>((v >> 8) & 0xFF)
    p[1] = <char>(v & 0xFF)


cdef inline void _be32(char* p, unsigned long long v) noexcept nogil:
    p[0] = <char>((v >> 24) & 0xFF)
    p[1] = <char>((v >> 16) & 0xFF)
    p[2] = <char>((v >> 8) & 0xFF)
    p[3] = <char>(v & 0xFF)


cdef inline void _be64(char* p, unsigned long long v) noexcept nogil:
    _be32(p, v >> 32)
    _be32(p + 4, v & 0xFFFFFFFFULL)


cdef class RecordHandler:
    """``[mark, *values of names]`` for a record: the handler of one record class."""

    cdef readonly object mark
    cdef readonly tuple names

    def __init__(self, mark, names):
        if type(names) is not tuple or not all(type(n) is str for n in names):
            raise TypeError("names must be a tuple of str")
        self.mark = mark
        self.names = names

    cdef list build(self, object obj):
        cdef tuple names = self.names
        cdef Py_ssize_t i, n = PyTuple_GET_SIZE(names)
        cdef list out = PyList_New(n + 1)
        cdef object value
        value = self.mark
        Py_INCREF(value)
        PyList_SET_ITEM(out, 0, value)
        for i in range(n):
            value = getattr(obj, <str>PyTuple_GET_ITEM(names, i))
            Py_INCREF(value)
            PyList_SET_ITEM(out, i + 1, value)
        return out

    def __call__(self, obj):
        return self.build(obj)


cdef bytes _inline_inc(unsigned long long incarnation, bytes raw):
    cdef Py_ssize_t n = PyBytes_GET_SIZE(raw)
    cdef bytes out = PyBytes_FromStringAndSize(NULL, 8 + n)
    cdef char* p = PyBytes_AS_STRING(out)
    cdef int i
    for i in range(8):
        p[7 - i] = <char>((incarnation >> (8 * i)) & 0xFF)
    memcpy(p + 8, PyBytes_AS_STRING(raw), n)
    return out


@cython.final
cdef class MessageWriter:
    """Packs the messages of one connection direction."""

    cdef dict _handlers
    cdef object _learn
    cdef object _ref_type
    cdef dict _refs
    cdef object _define_ref
    cdef object _ref_to_wire
    cdef list _learned
    cdef list _ref_order
    cdef object _failed
    cdef dict _prefixes
    cdef object _pack
    cdef char* _buf
    cdef Py_ssize_t _len
    cdef Py_ssize_t _cap
    cdef int _small
    cdef public object max_size
    cdef public object incarnation_of
    cdef public object wire_prefix

    def __init__(self, handlers, learn, ref_type, refs, define_ref, ref_to_wire, incarnation_of, learned, ref_order,
                 failed):
        if type(handlers) is not dict or type(refs) is not dict:
            raise TypeError("handlers and refs must be dicts")
        if type(learned) is not list or type(ref_order) is not list:
            raise TypeError("learned and ref_order must be lists")
        self._handlers = handlers
        self._learn = learn
        self._ref_type = ref_type
        self._refs = refs
        self._define_ref = define_ref
        self._ref_to_wire = ref_to_wire
        self._learned = learned
        self._ref_order = ref_order
        self._failed = failed
        self._prefixes = {}
        self.max_size = 0xFFFFFFFF
        self.incarnation_of = incarnation_of
        self.wire_prefix = None
        global _NEST_LIMIT
        if _NEST_LIMIT < 0:
            _NEST_LIMIT = _msgpack_nest_limit()
        # packs what this writer leaves to msgpack (see the module's docstring), as the twin
        # does; made when first needed
        self._pack = None

    def __cinit__(self, *args, **kwargs):
        self._buf = <char*>PyMem_Malloc(_INITIAL)
        if self._buf == NULL:
            raise MemoryError("cannot allocate a pack buffer")
        self._cap = _INITIAL
        self._len = 0

    def __dealloc__(self):
        PyMem_Free(self._buf)
        self._buf = NULL

    def default(self, obj):
        """The packer's hook for a value it cannot pack natively."""
        return self._hook(obj)

    cdef object _hook(self, object obj):
        cdef object cls = type(obj)
        cdef PyObject* found
        if cls is self._ref_type:
            return self.encode_ref(obj)
        found = PyDict_GetItem(self._handlers, cls)
        if found == NULL:
            return self._learn(obj)
        if type(<object>found) is RecordHandler:
            return (<RecordHandler>found).build(obj)
        return (<object>found)(obj)

    cpdef object encode_ref(self, object ref):
        """An actor ref's wire form (an ext value)."""
        cdef object wire_prefix = self.wire_prefix
        cdef object uri, incarnation, address, known
        cdef PyObject* found
        if wire_prefix is not None:
            address = ref.system_address
            found = PyDict_GetItem(self._prefixes, address)
            if found == NULL:
                known = wire_prefix(address)
                if type(known) is not tuple or len(<tuple>known) != 2 or type((<tuple>known)[0]) is not str:
                    raise SerializationError(f"wire_prefix returned {known!r}, not (str, incarnation)")
                if len(self._prefixes) >= _PREFIX_LIMIT:
                    self._prefixes.clear()
                self._prefixes[address] = known
            else:
                known = <object>found
            uri = <str>PyTuple_GET_ITEM(known, 0) + ref.path
            incarnation = <object>PyTuple_GET_ITEM(known, 1)
            if incarnation is None:
                incarnation = ref.uid
        else:
            uri = self._ref_to_wire(ref)
            incarnation = self.incarnation_of(ref)
        if type(uri) is str and "/temp/" in <str>uri:
            # short-lived (an ask's reply, a probe): sent in full, so the tables of a
            # long-lived connection do not grow with every ask
            if type(incarnation) is int and 0 < incarnation < _U64_END:
                return _new_ext((_EXT_REF_INLINE_INC, _inline_inc(incarnation, (<str>uri).encode("utf-8"))))
            if type(incarnation) is int and incarnation == 0:
                return _new_ext((_EXT_REF_INLINE, (<str>uri).encode("utf-8")))
            raise SerializationError(f"the incarnation of {uri} is not a 64-bit unsigned int: {incarnation!r}")
        known = self._refs.get((uri, incarnation))
        if known is not None:
            return known
        return self._define_ref(uri, incarnation)

    # -- packing -------------------------------------------------------------------------
    cdef inline char* _room(self, Py_ssize_t n) except NULL:
        """``n`` more bytes at the end of the buffer (grown as needed): where to write them."""
        cdef Py_ssize_t need = self._len + n
        cdef char* at
        if need > self._cap:
            self._grow(need)
        at = self._buf + self._len
        self._len = need
        return at

    cdef int _grow(self, Py_ssize_t need) except -1:
        cdef Py_ssize_t cap = self._cap
        cdef char* grown
        while cap < need:
            cap *= 2
        grown = <char*>PyMem_Realloc(self._buf, cap)
        if grown == NULL:
            raise MemoryError(f"cannot grow the pack buffer to {cap} bytes")
        self._buf = grown
        self._cap = cap
        return 0

    cdef inline int _put(self, const char* data, Py_ssize_t n) except -1:
        memcpy(self._room(n), data, n)
        return 0

    cdef inline int _header(self, Py_ssize_t n, unsigned char fix, Py_ssize_t fix_limit, unsigned char c8,
                     unsigned char c16, unsigned char c32) except -1:
        """A length header: ``fix | n`` below ``fix_limit`` (none if 0), else the 8-bit form
        (none if 0), the 16-bit or the 32-bit one."""
        cdef char* p
        if n < fix_limit:
            p = self._room(1)
            p[0] = <char>(fix | n)
        elif c8 and n < 0x100:
            p = self._room(2)
            p[0] = <char>c8
            p[1] = <char>n
        elif n < 0x10000:
            p = self._room(3)
            p[0] = <char>c16
            _be16(p + 1, n)
        else:
            p = self._room(5)
            p[0] = <char>c32
            _be32(p + 1, n)
        return 0

    cdef inline int _uint(self, unsigned long long d) except -1:
        cdef char* p
        if d < 0x80:
            p = self._room(1)
            p[0] = <char>d
        elif d < 0x100:
            p = self._room(2)
            p[0] = <char>0xcc
            p[1] = <char>d
        elif d < 0x10000:
            p = self._room(3)
            p[0] = <char>0xcd
            _be16(p + 1, d)
        elif d < 0x100000000ULL:
            p = self._room(5)
            p[0] = <char>0xce
            _be32(p + 1, d)
        else:
            p = self._room(9)
            p[0] = <char>0xcf
            _be64(p + 1, d)
        return 0

    cdef inline int _nonpositive(self, long long d) except -1:
        """An int <= 0 (msgpack packs those through its signed path)."""
        cdef char* p
        if d >= -32:
            p = self._room(1)
            p[0] = <char>d
        elif d >= -128:
            p = self._room(2)
            p[0] = <char>0xd0
            p[1] = <char>d
        elif d >= -32768:
            p = self._room(3)
            p[0] = <char>0xd1
            _be16(p + 1, <unsigned long long>d)
        elif d >= -2147483648LL:
            p = self._room(5)
            p[0] = <char>0xd2
            _be32(p + 1, <unsigned long long>d)
        else:
            p = self._room(9)
            p[0] = <char>0xd3
            _be64(p + 1, <unsigned long long>d)
        return 0

    cdef int _ext(self, object o) except -1:
        cdef object code = <object>PyTuple_GET_ITEM(o, 0)
        cdef object data = <object>PyTuple_GET_ITEM(o, 1)
        cdef Py_ssize_t n
        cdef char* p
        if not PyBytes_CheckExact(data) or not PyLong_CheckExact(code):
            self._put_bytes(self._msgpack(o))  # an ExtType made without its checks: msgpack decides
            return 0
        n = PyBytes_GET_SIZE(data)
        if n > _ITEM_LIMIT:
            raise ValueError("EXT data is too large")
        if n == 1 or n == 2 or n == 4 or n == 8 or n == 16:
            p = self._room(2)
            p[0] = <char>(0xd4 if n == 1 else 0xd5 if n == 2 else 0xd6 if n == 4 else 0xd7 if n == 8 else 0xd8)
        elif n < 0x100:
            p = self._room(3)
            p[0] = <char>0xc7
            p[1] = <char>n
            p += 1
        elif n < 0x10000:
            p = self._room(4)
            p[0] = <char>0xc8
            _be16(p + 1, n)
            p += 2
        else:
            p = self._room(6)
            p[0] = <char>0xc9
            _be32(p + 1, n)
            p += 4
        p[1] = <char><long>code
        self._put(PyBytes_AS_STRING(data), n)
        return 0

    cdef bytes _msgpack(self, object o):
        """``o`` packed by msgpack, configured as the twin's packer."""
        if self._pack is None:
            self._pack = msgpack.Packer(default=self.default, strict_types=True, use_bin_type=True).pack
        return self._pack(o)

    cdef inline int _put_bytes(self, bytes data) except -1:
        self._put(PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
        return 0

    cdef int _value(self, object o, bint hook, int nest) except -2:
        """Packs ``o``; -1 (nothing written) when ``hook`` and msgpack would call the hook."""
        cdef int overflow = 0
        cdef long long ll
        cdef unsigned long long ull
        cdef double dv
        cdef Py_ssize_t n, i
        cdef const char* raw
        cdef char* p
        cdef object item, key
        if o is None:
            self._room(1)[0] = <char>0xc0
        elif o is True:
            self._room(1)[0] = <char>0xc3
        elif o is False:
            self._room(1)[0] = <char>0xc2
        elif PyLong_CheckExact(o):
            ll = PyLong_AsLongLongAndOverflow(o, &overflow)
            if overflow == 0:
                if ll > 0:
                    self._uint(<unsigned long long>ll)
                else:
                    self._nonpositive(ll)
            else:
                ull = 0
                if overflow > 0:
                    ull = PyLong_AsUnsignedLongLong(o)
                    if ull == <unsigned long long>-1 and PyErr_Occurred():
                        if not PyErr_ExceptionMatches(OverflowError):
                            return -2
                        PyErr_Clear()
                        overflow = -1
                if overflow < 0:
                    if hook:
                        return -1
                    raise OverflowError("Integer value out of range")
                self._uint(ull)
        elif PyFloat_CheckExact(o):
            dv = PyFloat_AS_DOUBLE(o)
            memcpy(&ull, &dv, 8)
            p = self._room(9)
            p[0] = <char>0xcb
            _be64(p + 1, ull)
        elif PyUnicode_CheckExact(o):
            raw = PyUnicode_AsUTF8AndSize(o, &n)
            if n > _ITEM_LIMIT:
                raise ValueError("unicode string is too large")
            self._header(n, 0xa0, 32, 0xd9, 0xda, 0xdb)
            self._put(raw, n)
        elif PyBytes_CheckExact(o) or PyByteArray_CheckExact(o):
            if PyBytes_CheckExact(o):
                raw = PyBytes_AS_STRING(o)
                n = PyBytes_GET_SIZE(o)
            else:
                raw = PyByteArray_AS_STRING(o)
                n = PyByteArray_GET_SIZE(o)
            if n > _ITEM_LIMIT:
                raise ValueError(f"{type(o).__name__} object is too large")
            self._header(n, 0, 0, 0xc4, 0xc5, 0xc6)
            self._put(raw, n)
        elif PyDict_CheckExact(o):
            n = PyDict_Size(o)
            if n > _ITEM_LIMIT:
                raise ValueError("dict is too large")
            self._header(n, 0x80, 16, 0, 0xde, 0xdf)
            for key, item in (<dict>o).items():
                self._pack_one(key, nest)
                self._pack_one(item, nest)
        elif type(o) is _ExtType:
            self._ext(o)
        elif PyList_CheckExact(o):
            n = PyList_GET_SIZE(o)
            if n > _ITEM_LIMIT:
                raise ValueError("list is too large")
            self._header(n, 0x90, 16, 0, 0xdc, 0xdd)
            i = 0
            while i < PyList_GET_SIZE(o):
                item = <object>PyList_GET_ITEM(o, i)
                self._pack_one(item, nest)
                i += 1
        elif type(o) is _Timestamp or PyMemoryView_Check(o):
            self._put_bytes(self._msgpack(o))
        elif hook:
            return -1
        else:
            raise TypeError(f"can not serialize {type(o).__name__!r} object")
        return 0

    cdef int _pack_one(self, object o, int nest) except -1:
        if nest < 0:
            raise ValueError("recursion limit exceeded.")
        nest -= 1
        if self._value(o, True, nest) == -1:
            self._value(self._hook(o), False, nest)
        return 0

    def encode(self, obj):
        """One message's bytes."""
        cdef Py_ssize_t types_before = PyList_GET_SIZE(self._learned)
        cdef Py_ssize_t refs_before = PyList_GET_SIZE(self._ref_order)
        cdef object data
        cdef bint too_large
        self._len = 0
        try:
            self._pack_one(obj, _NEST_LIMIT)
            data = PyBytes_FromStringAndSize(self._buf, self._len)
        except BaseException as exc:
            self._release(True)
            self._failed(obj, exc, types_before, refs_before)
            raise  # failed() raises; this is for a failed() that returned
        too_large = PyBytes_GET_SIZE(data) > self.max_size
        self._release(too_large)
        if too_large:
            self._failed(obj, FrameTooLarge(len(data), self.max_size), types_before, refs_before)
        return data

    cdef void _release(self, bint failed) noexcept:
        """Empty the buffer; one grown for large messages goes back to its first size once
        ``_SHRINK_AFTER`` messages in a row fit in ``_KEEP`` bytes, or at once after a message
        that failed (or was too large to send)."""
        cdef char* smaller
        if failed:
            self._small = _SHRINK_AFTER
        elif self._len > _KEEP:
            self._small = 0
        else:
            self._small += 1
        self._len = 0
        if self._cap > _KEEP and self._small >= _SHRINK_AFTER:
            smaller = <char*>PyMem_Realloc(self._buf, _INITIAL)
            if smaller != NULL:
                self._buf = smaller
                self._cap = _INITIAL
