# cython: language_level=3, boundscheck=False, wraparound=False
"""Envelopes in and out, compiled (twin of ``_envelope_py``; same behaviour): frame bodies to
(target path, message) handed on in order, and queued (path, message) pairs to frames.

An envelope is ``[target, message]``. ``target`` is ``[id, path]`` the first time a path is
used on a connection (ids count up from 0 per connection), the bare ``id`` afterwards, and the
full path (a str) for a short-lived target that is never given an id.

:meth:`EnvelopeReader.dispatch` decodes each body with the connection's decoder, resolves the
target and calls ``deliver(path, message)``; a message for ``special_path`` or of
``special_type`` goes to ``on_special(path, message)`` instead, which returns False to stop
reading (it has closed the connection). A target path holding ``"\x00"`` (one that names the
incarnation of its process) is passed through ``marked(path)``, which gives the path to use,
except that a path ending in ``own_mark`` (this process's own incarnation mark) with no other
``"\x00"`` is taken without the call, the mark dropped; a message for a path in the set ``gone`` goes to ``on_special`` too. A body that is not a
well-formed envelope raises :class:`~casty.errors.DeserializationError` and nothing after it
is delivered; ``taken`` then tells how many bodies were taken, the failing one included.

:meth:`EnvelopeWriter.write_queue` is the other direction: it takes (path, message) pairs from
a queue, encodes each envelope, adds it to the connection's frame encoder and hands the
framed bytes to ``write`` (at most ``chunk`` bytes and more at once), until the queue is empty
or the writer is paused; ``bytes_written`` and ``writes`` count what it handed over. A message
that cannot be encoded goes to ``on_error(path, message, error)`` and is not sent.
"""

from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE

from cpython.dict cimport PyDict_GetItem
from cpython.object cimport PyObject

from casty.errors import DeserializationError, FrameTooLarge, SerializationError

__all__ = ["EnvelopeReader", "EnvelopeWriter"]

include "_source.pxi"


cdef class EnvelopeReader:
    """Reads the envelopes of one connection direction and hands each one on."""

    cdef object _decode
    cdef object _deliver
    cdef object _on_special
    cdef str _special_path
    cdef object _special_type
    cdef object _marked
    cdef object _gone
    cdef object _own_mark
    cdef public list paths
    cdef public bint closed
    cdef public Py_ssize_t taken

    def __init__(self, decode, deliver, on_special, special_path, special_type, marked=None, gone=None,
                 own_mark=None):
        if not isinstance(special_path, str) or not isinstance(special_type, type):
            raise TypeError("special_path must be a str and special_type a class")
        if own_mark is not None and (type(own_mark) is not str or not own_mark.startswith("\x00")):
            raise TypeError("own_mark must be None or a str starting with NUL")
        self._decode = decode
        self._deliver = deliver
        self._on_special = on_special
        self._special_path = special_path
        self._special_type = special_type
        self._marked = marked
        self._gone = gone
        self._own_mark = own_mark
        self.paths = []
        self.closed = False
        self.taken = 0

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
            if self._marked is not None and "\x00" in <str>target:
                return self._unmark(<str>target)
            return <str>target
        if type(target) is not list or PyList_GET_SIZE(target) != 2:
            raise DeserializationError("an envelope target must be an id, a path or [id, path]")
        ident = <object>PyList_GET_ITEM(target, 0)
        path = <object>PyList_GET_ITEM(target, 1)
        if type(ident) is not int or ident != PyList_GET_SIZE(paths) or type(path) is not str:
            raise DeserializationError("out-of-order path definition")
        if self._marked is not None and "\x00" in <str>path:
            path = self._unmark(<str>path)
        paths.append(path)
        return <str>path

    cdef str _unmark(self, str key):
        cdef object mark = self._own_mark
        cdef str path
        if mark is not None and key.endswith(<str>mark):
            path = key[:len(key) - len(<str>mark)]
            if "\x00" not in path:
                return path
        return self._marked(key)

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
        cdef object gone = self._gone
        self.taken = 0
        for i in range(n):
            if self.closed:
                break
            self.taken = i + 1
            envelope = decode(<object>PyList_GET_ITEM(bodies, i))
            if type(envelope) is not list or PyList_GET_SIZE(envelope) != 2:
                raise DeserializationError("an envelope must be [target, message]")
            path = self.target(<object>PyList_GET_ITEM(envelope, 0))
            msg = <object>PyList_GET_ITEM(envelope, 1)
            done += 1
            if type(msg) is special_type or path == special_path or (gone and path in gone):
                if not self._on_special(path, msg):
                    break
            else:
                deliver(path, msg)
        return done


cdef class EnvelopeWriter:
    """Writes the envelopes of one connection direction: ``[target, message]`` per message."""

    cdef object _encode
    cdef object _frames
    cdef object _add
    cdef object _take
    cdef object _queue
    cdef object _popleft
    cdef public object write
    cdef object _on_error
    cdef Py_ssize_t _chunk
    cdef public dict paths
    cdef public bint paused
    cdef public Py_ssize_t bytes_written
    cdef public Py_ssize_t writes

    def __init__(self, encode, frames, write, on_error, chunk):
        if type(chunk) is not int or chunk < 1:
            raise ValueError("chunk must be a positive int")
        self._encode = encode
        self._frames = frames
        self._add = frames.add
        self._take = frames.take
        self._queue = None
        self._popleft = None
        self.write = write
        self._on_error = on_error
        self._chunk = chunk
        self.bytes_written = 0
        self.writes = 0
        self.paths = {}
        self.paused = False

    def write_queue(self, queue):
        """Encode and write queued (path, message) pairs until the queue is empty or the writer
        is paused; returns how many were taken from the queue."""
        cdef object encode = self._encode
        cdef object add = self._add
        cdef object popleft
        cdef dict paths = self.paths
        cdef Py_ssize_t taken = 0
        cdef Py_ssize_t pending = self._frames.pending_bytes
        cdef PyObject* found
        cdef object target, path, msg
        cdef bint defines
        if queue is not self._queue:
            # a connection writes one queue (its peer's): its popleft is looked up once
            self._queue = queue
            self._popleft = queue.popleft
        popleft = self._popleft
        while queue and not self.paused:
            path, msg = popleft()
            taken += 1
            found = PyDict_GetItem(paths, path)
            defines = False
            if found != NULL:
                target = <object>found
            elif (<str>path).startswith("/temp/") if type(path) is str else path.startswith("/temp/"):
                target = path  # short-lived (an ask's reply): sent in full, not given an id
            else:
                target = [len(paths), path]
                defines = True
            try:
                pending = add(encode([target, msg]))
            except (SerializationError, FrameTooLarge) as exc:
                self._on_error(path, msg, exc)
                continue
            if defines:
                paths[path] = len(paths)
            if pending >= self._chunk:
                self._put(self._take())
                pending = 0
        if pending:
            self._put(self._take())
        return taken

    cdef _put(self, object data):
        self.bytes_written += len(data)
        self.writes += 1
        self.write(data)
