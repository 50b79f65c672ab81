# cython: language_level=3, boundscheck=False, wraparound=False
"""Whole msgpack messages with casty's ext codes, decoded, compiled (twin of ``_decoder_py``;
same behaviour).

:class:`MessageReader` is the hot part of the serde decoder: it drives msgpack's unpacker with
the ext and array hooks that turn casty's ext codes into values (type tags build records,
enums and registered types; actor refs are resolved; tuples, sets, frozensets, big ints and
record runs are rebuilt). The per-connection tables are the caller's dicts; learning a new
type or actor URI (rare) calls back into the caller. See ``casty.serde._wire`` for the layout.

A *tag* is any object of ``tag_type`` with ``name``, ``build`` (one value from its array
``[tag, *items]``) and ``records`` (a record builder, or None when the type is no record).
Here the hooks, the message checks and the table rollback are C; only building a value of a
type whose constructor is Python code, and resolving an actor ref, call into Python.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItem
from cpython.unicode cimport PyUnicode_DecodeUTF8
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.object cimport PyObject

import msgpack

from casty.errors import DeserializationError, MessageRefused

__all__ = ["SMALL_MESSAGE", "MessageReader"]

include "_source.pxi"

SMALL_MESSAGE = 64 * 1024
cdef Py_ssize_t _SMALL = 64 * 1024

cdef enum:
    _EXT_TYPE_DEF = 1
    _EXT_TYPE_REF = 2
    _EXT_REF_DEF = 3
    _EXT_REF_REF = 4
    _EXT_TUPLE = 5
    _EXT_SET = 6
    _EXT_FROZENSET = 7
    _EXT_BIGINT = 8
    _EXT_RUN = 9
    _EXT_REF_INLINE = 10
    _EXT_REF_DEF_INC = 11
    _EXT_REF_INLINE_INC = 12
    _EXT_RECORD_DEF = 13


cdef class MessageReader:
    """Decodes the messages of one connection direction, in order.

    ``tags`` (id bytes to tag) and ``ref_uris`` (id bytes to (URI, incarnation)) are the
    connection's tables; ``define_type(data, with_fields)`` / ``define_ref(data,
    with_incarnation)`` learn a definition (``with_fields``: a record definition naming the
    sender's fields) and return its tag / (URI, incarnation); ``resolve_ref(uri)`` makes an actor ref
    (``resolve_ref(uri, incarnation)`` for a ref that came with its process incarnation); ``builtins`` are the tags of tuple, set and
    frozenset; ``make_tag(name, build)`` makes the tag of a record run; ``has_timestamp(data)``
    tells whether a decoded message held msgpack's timestamp ext.
    """

    cdef object _tag_type
    cdef dict _tags
    cdef dict _ref_uris
    cdef object _define_type
    cdef object _define_ref
    cdef object _resolve_ref
    cdef object _tuple_tag
    cdef object _set_tag
    cdef object _frozenset_tag
    cdef object _run_tag
    cdef object _has_timestamp
    cdef object _ext_hook
    cdef object _list_hook
    cdef list _replies
    cdef object _unpacker
    cdef object _feed
    cdef object _unpack
    cdef object _tell
    cdef Py_ssize_t _unpacker_offset
    cdef public Py_ssize_t open_tags
    cdef public object error

    def __init__(self, tag_type, dict tags not None, dict ref_uris not None, define_type, define_ref, resolve_ref,
                 builtins, make_tag, has_timestamp):
        self._tag_type = tag_type
        self._tags = tags
        self._ref_uris = ref_uris
        self._define_type = define_type
        self._define_ref = define_ref
        self._resolve_ref = resolve_ref
        self._tuple_tag, self._set_tag, self._frozenset_tag = builtins
        self._run_tag = make_tag("record run", self.build_run)
        self._has_timestamp = has_timestamp
        self.open_tags = 0
        self.error = None
        self._replies = []
        self._ext_hook = self.ext_hook
        self._list_hook = self.list_hook
        self._set_unpacker()

    cdef _set_unpacker(self):
        # its three methods are looked up once, not for every message
        unpacker = self._unpacker = self._new_unpacker()
        self._feed = unpacker.feed
        self._unpack = unpacker.unpack
        self._tell = unpacker.tell
        self._unpacker_offset = 0

    cdef object _new_unpacker(self):
        # Reused for small messages (its size limits all derive from SMALL_MESSAGE, so a short
        # message cannot announce a huge array); larger ones go through ``unpackb``, whose
        # limits derive from the message's own length.
        return msgpack.Unpacker(
            ext_hook=self._ext_hook,
            list_hook=self._list_hook,
            raw=False,
            strict_map_key=False,
            max_buffer_size=SMALL_MESSAGE,
        )

    def record(self, error):
        """Keep ``error`` as the refusal of the current message (the first one wins)."""
        if self.error is None:
            self.error = error

    cpdef object resolve(self, object uri, object incarnation):
        """The actor ref for ``uri`` (of the process ``incarnation``, 0 when not known); a
        failure is recorded and gives None. A short-lived ref's URI is remembered until the
        next message (a refused message names them: their asks fail at once)."""
        if "/temp/" in uri:
            self._replies.append(uri)
        try:
            if incarnation:
                return self._resolve_ref(uri, incarnation)
            return self._resolve_ref(uri)
        except Exception as exc:
            self.record(DeserializationError(f"cannot resolve actor ref {uri!r}: {exc}"))
            return None

    def ext_hook(self, int code, data):
        cdef PyObject* found
        cdef const char* buf
        cdef Py_ssize_t size, i
        cdef unsigned long long incarnation
        if code == _EXT_TYPE_REF:
            found = PyDict_GetItem(self._tags, data)
            if found == NULL:
                raise DeserializationError(f"unknown type id {data.hex()}")
            self.open_tags += 1
            return <object>found
        if code == _EXT_REF_REF:
            found = PyDict_GetItem(self._ref_uris, data)
            if found == NULL:
                raise DeserializationError(f"unknown actor ref id {data.hex()}")
            known = <tuple>found
            return self.resolve(known[0], known[1])
        if code == _EXT_TUPLE:
            self.open_tags += 1
            return self._tuple_tag
        if code == _EXT_RUN:
            self.open_tags += 1
            return self._run_tag
        if code == _EXT_TYPE_DEF:
            self.open_tags += 1
            return self._define_type(data, False)
        if code == _EXT_RECORD_DEF:
            self.open_tags += 1
            return self._define_type(data, True)
        if code == _EXT_REF_DEF:
            known = self._define_ref(data, False)
            return self.resolve(known[0], known[1])
        if code == _EXT_REF_DEF_INC:
            known = self._define_ref(data, True)
            return self.resolve(known[0], known[1])
        if code == _EXT_REF_INLINE:
            try:
                uri = data.decode("utf-8")
            except UnicodeDecodeError:
                raise DeserializationError("actor ref URI is not UTF-8") from None
            return self.resolve(uri, 0)
        if code == _EXT_REF_INLINE_INC:
            if type(data) is not bytes:
                data = bytes(data)
            buf = PyBytes_AS_STRING(data)
            size = PyBytes_GET_SIZE(data)
            if size < 8:
                raise DeserializationError("malformed actor ref")
            incarnation = 0
            for i in range(8):
                incarnation = (incarnation << 8) | <unsigned char>buf[i]
            try:
                uri = PyUnicode_DecodeUTF8(buf + 8, size - 8, NULL)
            except UnicodeDecodeError:
                raise DeserializationError("actor ref URI is not UTF-8") from None
            return self.resolve(uri, incarnation)
        if code == _EXT_BIGINT:
            if not data:
                raise DeserializationError("empty big integer")
            return int.from_bytes(data, "big", signed=True)
        if code == _EXT_SET:
            self.open_tags += 1
            return self._set_tag
        if code == _EXT_FROZENSET:
            self.open_tags += 1
            return self._frozenset_tag
        raise DeserializationError(f"unknown msgpack ext code {code}")

    def build_run(self, items):
        """Every record of ``[run-tag, type-tag, count, fields...]`` (the type tag is consumed too)."""
        if type(items) is not list:
            raise TypeError("a record run is a list")
        cdef list values = <list>items
        cdef Py_ssize_t n = PyList_GET_SIZE(values)
        if n < 3 or type(<object>PyList_GET_ITEM(values, 1)) is not self._tag_type \
                or type(<object>PyList_GET_ITEM(values, 2)) is not int:
            raise DeserializationError("malformed record run")
        self.open_tags -= 1
        tag = <object>PyList_GET_ITEM(values, 1)
        count = <object>PyList_GET_ITEM(values, 2)
        records = tag.records
        if records is None:
            tag.build([tag])  # a refused type raises its own error here
            raise DeserializationError(f"{tag.name} cannot travel in a record run", tag.name)
        if count < 0 or n != 3 + count * records.arity:
            raise DeserializationError(f"record run of {tag.name}: {n - 3} values for {count} items")
        return records.run(values, 3, count)

    def list_hook(self, items):
        cdef object head
        if type(items) is list and PyList_GET_SIZE(items) > 0:
            head = <object>PyList_GET_ITEM(items, 0)
        elif items:
            head = items[0]
        else:
            return items
        if type(head) is self._tag_type:
            self.open_tags -= 1
            try:
                return head.build(items)
            except DeserializationError as exc:
                self.record(exc)
            except Exception as exc:
                self.record(DeserializationError(f"cannot build {head.name}: {exc}", head.name))
            return None
        return items

    def decode(self, data):
        """Decode one message; malformed bytes raise :class:`DeserializationError`, a message
        that parsed but could not be built raises :class:`MessageRefused` with what was decoded.

        A message that cannot be parsed contributes no definitions (it was not produced by
        a well-behaved encoder). A message that parses but is refused (a type this process
        may not build, a failing constructor, an unresolvable ref) keeps its definitions,
        because its encoder counts them as sent.
        """
        cdef Py_ssize_t tags_before, refs_before, size, offset
        self.open_tags = 0
        self.error = None
        if PyList_GET_SIZE(self._replies):
            del self._replies[:]
        tags_before = len(self._tags)
        refs_before = len(self._ref_uris)
        try:
            size = len(data)
            if size <= _SMALL:
                try:
                    self._feed(data)
                    obj = self._unpack()
                    offset = self._tell()
                    if offset - self._unpacker_offset != size:
                        raise DeserializationError("malformed message: trailing bytes after the message")
                    self._unpacker_offset = offset
                except BaseException:
                    self._set_unpacker()
                    raise
            else:
                obj = msgpack.unpackb(
                    data,
                    ext_hook=self._ext_hook,
                    list_hook=self._list_hook,
                    raw=False,
                    strict_map_key=False,
                )
            if self.open_tags:
                raise DeserializationError("malformed message: a type tag outside its array")
            if self._has_timestamp(data):
                raise DeserializationError("malformed message: unknown msgpack ext code -1")
        except BaseException as exc:
            self._forget(tags_before, refs_before)
            if isinstance(exc, DeserializationError) or not isinstance(exc, Exception):
                raise
            if self.error is not None:
                raise self.error from exc
            raise DeserializationError(f"malformed message: {type(exc).__name__}: {exc}") from exc
        error = self.error
        if error is not None:
            # parsed in full: the tables are in step, only this message is lost
            raise MessageRefused(str(error), error.type_name, obj, tuple(self._replies)) from error
        return obj

    cdef _forget(self, Py_ssize_t tags_before, Py_ssize_t refs_before):
        cdef dict tags = self._tags
        cdef dict refs = self._ref_uris
        while len(tags) > tags_before:
            tags.popitem()
        while len(refs) > refs_before:
            refs.popitem()
