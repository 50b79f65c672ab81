# cython: language_level=3, boundscheck=False, wraparound=False
"""Envelopes in: frame bodies to (target path, message), handed on in order, compiled (twin of
``_envelope_py``; same behaviour).

An envelope is ``[target, message]``. ``target`` is ``[id, path]`` the first time a path is
used on a connection (ids count up from 0 per connection), the bare ``id`` afterwards, and the
full path (a str) for a short-lived target that is never given an id.

:meth:`EnvelopeReader.dispatch` decodes each body with the connection's decoder, resolves the
target and calls ``deliver(path, message)``; a message for ``special_path`` or of
``special_type`` goes to ``on_special(path, message)`` instead, which returns False to stop
reading (it has closed the connection). A body that is not a well-formed envelope raises
:class:`~casty.errors.DeserializationError` and nothing after it is delivered.
"""

from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE

from casty.errors import DeserializationError

__all__ = ["EnvelopeReader"]


cdef class EnvelopeReader:
    """Reads the envelopes of one connection direction and hands each one on."""

    cdef object _decode
    cdef object _deliver
    cdef object _on_special
    cdef str _special_path
    cdef object _special_type
    cdef public list paths
    cdef public bint closed

    def __init__(self, decode, deliver, on_special, special_path, special_type):
        if not isinstance(special_path, str) or not isinstance(special_type, type):
            raise TypeError("special_path must be a str and special_type a class")
        self._decode = decode
        self._deliver = deliver
        self._on_special = on_special
        self._special_path = special_path
        self._special_type = special_type
        self.paths = []
        self.closed = False

    cpdef str target(self, object target):
        """The path an envelope's target names; defines it when it is ``[id, path]``."""
        cdef Py_ssize_t index
        cdef list paths = self.paths
        if type(target) is int:
            if target < 0 or target >= PyList_GET_SIZE(paths):
                raise DeserializationError(f"unknown path id {target}")
            index = target
            return <str>PyList_GET_ITEM(paths, index)
        if type(target) is str:
            return <str>target
        if type(target) is not list or PyList_GET_SIZE(target) != 2:
            raise DeserializationError("an envelope target must be an id, a path or [id, path]")
        ident = <object>PyList_GET_ITEM(target, 0)
        path = <object>PyList_GET_ITEM(target, 1)
        if type(ident) is not int or ident != PyList_GET_SIZE(paths) or type(path) is not str:
            raise DeserializationError("out-of-order path definition")
        paths.append(path)
        return <str>path

    def dispatch(self, list bodies not None):
        """Decode and hand on every body in order; returns how many were handed on (fewer than
        ``len(bodies)`` when a special message stopped reading or the reader was closed)."""
        cdef Py_ssize_t i, n = PyList_GET_SIZE(bodies)
        cdef Py_ssize_t done = 0
        cdef object envelope, msg
        cdef str path
        cdef object decode = self._decode
        cdef object deliver = self._deliver
        cdef object special_type = self._special_type
        cdef str special_path = self._special_path
        for i in range(n):
            if self.closed:
                break
            envelope = decode(<object>PyList_GET_ITEM(bodies, i))
            if type(envelope) is not list or PyList_GET_SIZE(envelope) != 2:
                raise DeserializationError("an envelope must be [target, message]")
            path = self.target(<object>PyList_GET_ITEM(envelope, 0))
            msg = <object>PyList_GET_ITEM(envelope, 1)
            done += 1
            if type(msg) is special_type or path == special_path:
                if not self._on_special(path, msg):
                    break
            else:
                deliver(path, msg)
        return done
