# cython: language_level=3, boundscheck=False, wraparound=False
"""Record runs column-wise, and the wire scan for msgpack timestamps, compiled (twin of
``_runcodec_py``; same behaviour, same lists, same records).

Fields are read and set through the C API (``PyObject_GetAttr`` / ``PyObject_GenericSetAttr``,
tuple items), so neither taking a run apart nor building one back makes a Python-level call
per record; only a class built through its constructor (:data:`KIND_CALL`) runs Python code
for each record, because that is what its constructor is.
"""

from cpython.list cimport PyList_New, PyList_SET_ITEM, PyList_GET_ITEM, PyList_GET_SIZE
from cpython.long cimport PyLong_AsSsize_t
from cpython.object cimport PyObject_GetAttr, PyObject_Call, PyTypeObject, Py_TYPE
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM, PyTuple_GET_ITEM, PyTuple_GET_SIZE
from libc.string cimport memchr

__all__ = [
    "KIND_CALL",
    "KIND_DICT",
    "KIND_SLOTS",
    "KIND_TUPLE",
    "MappedRecordBuilder",
    "RecordBuilder",
    "RunWriter",
    "has_timestamp_ext",
]

include "_source.pxi"

cdef extern from "Python.h":
    int PyObject_GenericSetAttr(object o, object name, object value) except -1
    object PyList_GetSlice(object p, Py_ssize_t low, Py_ssize_t high)

cdef extern from *:
    """
    static PyObject *casty_object_new(PyTypeObject *cls, PyObject *empty) {
        return PyBaseObject_Type.tp_new(cls, empty, NULL);
    }
    static PyObject *casty_tuple_new(PyTypeObject *cls, PyObject *args) {
        return PyTuple_Type.tp_new(cls, args, NULL);
    }
    """
    object casty_object_new(PyTypeObject* cls, object empty)
    object casty_tuple_new(PyTypeObject* cls, object args)

KIND_DICT = 0
KIND_SLOTS = 1
KIND_TUPLE = 2
KIND_CALL = 3

cdef tuple _EMPTY = ()


cdef tuple _check_names(object names):
    if type(names) is not tuple or not all(type(n) is str for n in names):
        raise TypeError("field names must be a tuple of str")
    return <tuple>names


cdef class RunWriter:
    """Takes runs of one record class apart, column-wise.

    ``names`` are the fields in wire order; ``by_index`` reads them as tuple items (a
    NamedTuple whose fields are its items) instead of as attributes.
    """

    cdef object _cls
    cdef tuple _names
    cdef Py_ssize_t _arity
    cdef bint _by_index
    cdef object _run_mark
    cdef object _type_mark

    def __init__(self, cls, names, run_mark, type_mark, by_index=False):
        if not isinstance(cls, type):
            raise TypeError("RunWriter needs a class")
        self._cls = cls
        self._names = _check_names(names)
        self._arity = len(names)
        if not names:
            raise ValueError("a record run needs a class with at least one field")
        self._by_index = bool(by_index)
        if self._by_index and not issubclass(cls, tuple):
            raise TypeError("by_index needs a tuple class")
        self._run_mark = run_mark
        self._type_mark = type_mark

    @property
    def record_class(self):
        """The class whose runs this writer takes apart."""
        return self._cls

    @property
    def arity(self):
        """Values per record."""
        return self._arity

    def flatten(self, object items):
        """``[run mark, type mark, len(run), *fields of every item]``, or None when an item is
        not exactly of the record class (a subclass is not the class). ``run`` is a list."""
        if not isinstance(items, list):
            raise TypeError("a record run is a list")
        cdef list run = <list>items
        cdef Py_ssize_t n = PyList_GET_SIZE(run)
        cdef Py_ssize_t arity = self._arity
        cdef Py_ssize_t i, k, pos
        cdef PyTypeObject* cls = <PyTypeObject*>self._cls
        cdef object item, value
        cdef list flat
        cdef tuple names = self._names
        for i in range(n):
            if Py_TYPE(<object>PyList_GET_ITEM(run, i)) is not cls:
                return None
        flat = PyList_New(3 + n * arity)
        # PyList_New leaves NULL slots; fill every one before anything can see the list
        Py_INCREF(self._run_mark)
        PyList_SET_ITEM(flat, 0, self._run_mark)
        Py_INCREF(self._type_mark)
        PyList_SET_ITEM(flat, 1, self._type_mark)
        value = n
        Py_INCREF(value)
        PyList_SET_ITEM(flat, 2, value)
        pos = 3
        if self._by_index:
            for i in range(n):
                item = <object>PyList_GET_ITEM(run, i)
                if PyTuple_GET_SIZE(item) != arity:
                    _fill_none(flat, pos)
                    raise ValueError(f"{self._cls.__qualname__} has {len(item)} items, not {arity}")
                for k in range(arity):
                    value = <object>PyTuple_GET_ITEM(item, k)
                    Py_INCREF(value)
                    PyList_SET_ITEM(flat, pos, value)
                    pos += 1
        else:
            try:
                for i in range(n):
                    item = <object>PyList_GET_ITEM(run, i)
                    for k in range(arity):
                        value = PyObject_GetAttr(item, <object>PyTuple_GET_ITEM(names, k))
                        Py_INCREF(value)
                        PyList_SET_ITEM(flat, pos, value)
                        pos += 1
            except BaseException:
                _fill_none(flat, pos)
                raise
        return flat


cdef void _fill_none(list flat, Py_ssize_t pos) noexcept:
    # a half-filled list must hold no NULL slots when it is freed
    cdef Py_ssize_t n = PyList_GET_SIZE(flat)
    while pos < n:
        Py_INCREF(None)
        PyList_SET_ITEM(flat, pos, None)
        pos += 1


cdef class RecordBuilder:
    """Builds records of one class from their field values (in wire order).

    ``npos`` of the ``names`` are positional, the rest keyword-only (they matter only when the
    class is called). ``kind`` is one of the ``KIND_*`` constants.
    """

    cdef object _cls
    cdef tuple _names
    cdef Py_ssize_t _npos
    cdef tuple _kw_names
    cdef int _kind
    cdef Py_ssize_t _arity

    def __init__(self, cls, names, npos, kind):
        if not isinstance(cls, type):
            raise TypeError("RecordBuilder needs a class")
        names = _check_names(names)
        if type(npos) is not int or not 0 <= npos <= len(names):
            raise ValueError("npos must be between 0 and the number of fields")
        if kind not in (KIND_DICT, KIND_SLOTS, KIND_TUPLE, KIND_CALL):
            raise ValueError(f"unknown record kind {kind!r}")
        if kind == KIND_TUPLE and not issubclass(cls, tuple):
            raise TypeError("KIND_TUPLE needs a tuple class")
        if kind != KIND_CALL and npos != len(names):
            raise ValueError("records built without a call have positional fields only")
        self._cls = cls
        self._names = names
        self._npos = npos
        self._kw_names = names[npos:]
        self._kind = kind
        self._arity = len(names)

    @property
    def record_class(self):
        """The class this builder builds."""
        return self._cls

    @property
    def arity(self):
        """Values per record."""
        return self._arity

    @property
    def kind(self):
        """How records are built (a ``KIND_*`` constant)."""
        return self._kind

    cdef object _call(self, list values):
        cdef Py_ssize_t npos = self._npos
        cdef Py_ssize_t n = PyList_GET_SIZE(values)
        if not self._kw_names:
            return PyObject_Call(self._cls, tuple(values), None)
        if n > self._arity:
            raise TypeError(f"{n} values for {self._arity} fields")
        kwargs = dict(zip(self._kw_names, values[npos:]))
        return PyObject_Call(self._cls, tuple(values[:npos]), kwargs)

    cdef object _fill(self, list items, Py_ssize_t start):
        """One record from ``items[start:start + arity]`` (bounds checked by the caller)."""
        cdef Py_ssize_t k
        cdef Py_ssize_t arity = self._arity
        cdef tuple names = self._names
        cdef object obj
        if self._kind == KIND_TUPLE:
            args = PyTuple_New(1)
            values = PyList_GetSlice(items, start, start + arity)
            Py_INCREF(values)
            PyTuple_SET_ITEM(args, 0, values)
            return casty_tuple_new(<PyTypeObject*>self._cls, args)
        obj = casty_object_new(<PyTypeObject*>self._cls, _EMPTY)
        for k in range(arity):
            PyObject_GenericSetAttr(obj, <object>PyTuple_GET_ITEM(names, k), <object>PyList_GET_ITEM(items, start + k))
        return obj

    def make(self, values):
        """One record from exactly its field values (a list)."""
        if type(values) is not list:
            raise TypeError("record values must be a list")
        if self._kind == KIND_CALL or PyList_GET_SIZE(values) != self._arity:
            return self._call(<list>values)
        return self._fill(<list>values, 0)

    def build(self, items):
        """One record from its message array ``[tag, *field values]``."""
        if type(items) is not list or not items:
            raise TypeError("a record is sent as [tag, *field values]")
        if self._kind == KIND_CALL or PyList_GET_SIZE(items) - 1 != self._arity:
            return self._call(items[1:])
        return self._fill(<list>items, 1)

    def run(self, items, start, count):
        """``count`` records from ``items[start:]``, ``arity`` values each."""
        cdef Py_ssize_t arity = self._arity
        cdef Py_ssize_t first, n, i, pos
        cdef list out, values
        cdef object obj
        if type(items) is not list:
            raise TypeError("record values must be a list")
        if type(start) is not int or type(count) is not int:
            raise TypeError("start and count must be int")
        values = <list>items
        if start < 0 or count < 0 or start + count * arity > PyList_GET_SIZE(values):
            raise ValueError(f"{count} records of {arity} values do not fit in {len(items) - start} values")
        if arity == 0:
            raise ValueError(f"{self._cls.__qualname__} has no fields: its records do not travel in runs")
        first = start
        n = count
        out = PyList_New(n)
        for i in range(n):
            Py_INCREF(None)
            PyList_SET_ITEM(out, i, None)
        if n == 0:
            return out
        pos = first
        if self._kind == KIND_CALL:
            for i in range(n):
                obj = self._call(PyList_GetSlice(values, pos, pos + arity))
                out[i] = obj
                pos += arity
            return out
        for i in range(n):
            out[i] = self._fill(values, pos)
            pos += arity
        return out


cdef class MappedRecordBuilder(RecordBuilder):
    """Builds records of one class from the field values of another definition of it, by name
    (see ``_runcodec_py``): ``wire_arity`` values a record on the wire, ``sources``,
    ``defaults`` and ``factories`` one entry per field of ``names``."""

    cdef Py_ssize_t _wire_arity
    cdef tuple _sources
    cdef tuple _defaults
    cdef tuple _factories

    def __init__(self, cls, names, npos, kind, wire_arity, sources, defaults, factories):
        RecordBuilder.__init__(self, cls, names, npos, kind)
        if type(wire_arity) is not int or wire_arity < 0:
            raise ValueError("wire_arity must be an int >= 0")
        if type(sources) is not tuple or type(defaults) is not tuple or type(factories) is not tuple:
            raise TypeError("sources, defaults and factories must be tuples")
        if not len(sources) == len(defaults) == len(factories) == len(names):
            raise ValueError("a mapping has one source, default and factory per field")
        seen = set()
        for src in sources:
            if type(src) is not int or not -1 <= src < wire_arity or src in seen:
                raise ValueError(f"bad source index {src!r} for {wire_arity} values on the wire")
            if src >= 0:
                seen.add(src)
        for factory in factories:
            if factory is not None and not callable(factory):
                raise TypeError("a factory must be callable or None")
        self._wire_arity = wire_arity
        self._sources = sources
        self._defaults = defaults
        self._factories = factories

    @property
    def arity(self):
        """Values per record on the wire (the sender's fields)."""
        return self._wire_arity

    @property
    def sources(self):
        """For each field, the index of its value among a record's wire values, or -1."""
        return self._sources

    cdef object _mapped(self, list items, Py_ssize_t start):
        """One record from its wire values at ``items[start:]`` (bounds checked by the caller)."""
        cdef Py_ssize_t k, src
        cdef Py_ssize_t n = self._arity
        cdef object value, factory
        cdef list values = PyList_New(n)
        for k in range(n):
            Py_INCREF(None)
            PyList_SET_ITEM(values, k, None)
        for k in range(n):
            src = PyLong_AsSsize_t(<object>PyTuple_GET_ITEM(self._sources, k))
            if src >= 0:
                value = <object>PyList_GET_ITEM(items, start + src)
            else:
                factory = <object>PyTuple_GET_ITEM(self._factories, k)
                if factory is None:
                    value = <object>PyTuple_GET_ITEM(self._defaults, k)
                else:
                    value = factory()
            values[k] = value
        if self._kind == KIND_CALL:
            return self._call(values)
        return self._fill(values, 0)

    cdef object _checked(self, list items, Py_ssize_t start):
        cdef Py_ssize_t n = PyList_GET_SIZE(items) - start
        if n != self._wire_arity:
            raise TypeError(f"{n} values for the {self._wire_arity} fields the sender defined")
        return self._mapped(items, start)

    def make(self, values):
        """One record from exactly its wire values (a list)."""
        if type(values) is not list:
            raise TypeError("record values must be a list")
        return self._checked(<list>values, 0)

    def build(self, items):
        """One record from its message array ``[tag, *wire values]``."""
        if type(items) is not list or not items:
            raise TypeError("a record is sent as [tag, *field values]")
        return self._checked(<list>items, 1)

    def run(self, items, start, count):
        """``count`` records from ``items[start:]``, ``arity`` wire values each."""
        cdef Py_ssize_t arity = self._wire_arity
        cdef Py_ssize_t n, i, pos
        cdef list out, values
        if type(items) is not list:
            raise TypeError("record values must be a list")
        if type(start) is not int or type(count) is not int:
            raise TypeError("start and count must be int")
        values = <list>items
        if start < 0 or count < 0 or start + count * arity > PyList_GET_SIZE(values):
            raise ValueError(f"{count} records of {arity} values do not fit in {len(items) - start} values")
        if arity == 0:
            raise ValueError(f"the sender's {self._cls.__qualname__} has no fields: its records do not travel in runs")
        n = count
        out = PyList_New(n)
        for i in range(n):
            Py_INCREF(None)
            PyList_SET_ITEM(out, i, None)
        pos = start
        for i in range(n):
            out[i] = self._mapped(values, pos)
            pos += arity
        return out


# --------------------------------------------------------------------------- timestamps

cdef inline Py_ssize_t _be(const unsigned char* p, Py_ssize_t width) noexcept nogil:
    cdef Py_ssize_t v = 0
    cdef Py_ssize_t i
    for i in range(width):
        v = (v << 8) | p[i]
    return v


cdef bint _walk(const unsigned char* data, Py_ssize_t end) noexcept nogil:
    cdef Py_ssize_t pos = 0
    cdef Py_ssize_t width, length
    cdef unsigned char b
    while pos < end:
        b = data[pos]
        pos += 1
        if b <= 0x9F or b >= 0xE0:  # fixint, fixmap, fixarray: no payload of their own
            continue
        if b <= 0xBF:
            pos += b & 0x1F
        elif b == 0xC0 or b == 0xC2 or b == 0xC3:
            pass
        elif b == 0xCC or b == 0xD0:
            pos += 1
        elif b == 0xCD or b == 0xD1 or b == 0xDC or b == 0xDE:
            pos += 2
        elif b == 0xCA or b == 0xCE or b == 0xD2 or b == 0xDD or b == 0xDF:
            pos += 4
        elif b == 0xCB or b == 0xCF or b == 0xD3:
            pos += 8
        elif b == 0xC4 or b == 0xD9 or b == 0xC5 or b == 0xDA or b == 0xC6 or b == 0xDB:
            width = 1 if (b == 0xC4 or b == 0xD9) else (2 if (b == 0xC5 or b == 0xDA) else 4)
            if pos + width > end:
                return False
            pos += width + _be(data + pos, width)
        elif b == 0xC7 or b == 0xC8 or b == 0xC9:
            width = 1 if b == 0xC7 else (2 if b == 0xC8 else 4)
            if pos + width > end:
                return False
            length = _be(data + pos, width)
            pos += width
            if pos < end and data[pos] == 0xFF:
                return True
            pos += 1 + length
        elif b >= 0xD4 and b <= 0xD8:
            if pos < end and data[pos] == 0xFF:
                return True
            pos += 1 + (1 << (b - 0xD4))
        else:
            return False
    return False


def has_timestamp_ext(data):
    """True when the msgpack tokens of ``data`` hold an ext of code -1.

    ``data`` is a message the unpacker accepted: the check runs after decoding, because
    msgpack decodes that ext itself instead of passing it to the ext hook. A byte search comes
    first; only a message holding a 0xff byte is walked token by token.
    """
    cdef bytes raw
    if type(data) is bytes:
        raw = <bytes>data
    else:
        raw = bytes(data)
    cdef const unsigned char* p = <const unsigned char*>raw
    cdef Py_ssize_t n = len(raw)
    if n == 0 or memchr(p, 0xFF, <size_t>n) == NULL:
        return False
    return _walk(p, n)
