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
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItem
from cpython.list cimport PyList_GET_SIZE, PyList_New, PyList_SET_ITEM
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE
from libc.string cimport memcpy

import functools

import msgpack

from casty.errors import FrameTooLarge, SerializationError

__all__ = ["MessageWriter", "RecordHandler"]

cdef int _EXT_REF_INLINE = 10
cdef int _EXT_REF_INLINE_INC = 12
cdef object _U64_END = 1 << 64
cdef object _new_ext = functools.partial(tuple.__new__, msgpack.ExtType)
cdef Py_ssize_t _PREFIX_LIMIT = 1024


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
        self._pack = msgpack.Packer(default=self.default, strict_types=True, use_bin_type=True, autoreset=True).pack

    def default(self, obj):
        """The packer's hook for a value it cannot pack natively."""
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

    def encode(self, obj):
        """One message's bytes."""
        cdef Py_ssize_t types_before = PyList_GET_SIZE(self._learned)
        cdef Py_ssize_t refs_before = PyList_GET_SIZE(self._ref_order)
        cdef object data
        try:
            data = self._pack(obj)
        except BaseException as exc:
            self._failed(obj, exc, types_before, refs_before)
            raise  # failed() raises; this is for a failed() that returned
        if len(data) > self.max_size:
            self._failed(obj, FrameTooLarge(len(data), self.max_size), types_before, refs_before)
        return data
