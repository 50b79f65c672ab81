# cython: language_level=3, boundscheck=False, wraparound=False
"""Per-actor mailbox and run loop, compiled (twin of ``_mailbox_py``; same behaviour).

Handler coroutines are driven with ``PyIter_Send``, which reports a finished coroutine by
return code instead of raising ``StopIteration``.
"""

from cpython.ref cimport PyObject, Py_XDECREF
from collections import deque

from casty.errors import MailboxFull

__all__ = ["DROP_NEW", "DROP_OLDEST", "REJECT", "MailboxRunner"]

include "_source.pxi"

cdef extern from "Python.h":
    int PyIter_Send(object iter, object arg, PyObject **presult) except -1
    bint PyCoro_CheckExact(object o)

cdef enum:
    _PYGEN_RETURN = 0
    _PYGEN_NEXT = 1

DROP_NEW = 0
DROP_OLDEST = 1
REJECT = 2


cdef class MailboxRunner:
    cdef object _queue
    cdef object _cell
    cdef object _call_soon
    cdef object _dead_letter
    cdef object _same
    cdef object _run_cb
    cdef Py_ssize_t _capacity
    cdef int _strategy
    cdef Py_ssize_t _throughput
    cdef bint _scheduled
    cdef bint _suspended
    cdef bint _closed
    cdef object _drained
    cdef Py_ssize_t _drain_low
    cdef public object receive
    cdef public object ctx

    def __init__(self, cell, loop, Py_ssize_t capacity, int strategy, Py_ssize_t throughput,
                 dead_letter, same):
        if throughput < 1:
            raise ValueError("throughput must be >= 1")
        if strategy not in (DROP_NEW, DROP_OLDEST, REJECT):
            raise ValueError(f"unknown overflow strategy {strategy}")
        self._queue = deque()
        self._cell = cell
        self._call_soon = loop.call_soon
        self._capacity = capacity
        self._strategy = strategy
        self._throughput = throughput
        self._dead_letter = dead_letter
        self._same = same
        self._scheduled = False
        self._suspended = True
        self._closed = False
        self._run_cb = self._run
        self.receive = None
        self.ctx = None
        self._drained = None
        self._drain_low = 0

    cpdef put(self, object msg):
        if self.offer(msg):
            self._call_soon(self._run_cb)

    cpdef bint offer(self, object msg) except -1:
        """Queue ``msg`` like :meth:`put`, but instead of scheduling the run loop when it must
        run, return True: the caller then calls :meth:`run` exactly once, soon, and never from
        inside an actor's turn (a transport runs the actors its batch woke at the batch's end)."""
        if self._closed:
            self._dead_letter(msg, "actor stopped")
            return False
        queue = self._queue
        if self._capacity > 0 and len(queue) >= self._capacity:
            if self._strategy == DROP_NEW:
                self._dead_letter(msg, "mailbox full (drop_new)")
                return False
            if self._strategy == DROP_OLDEST:
                self._dead_letter(queue.popleft(), "mailbox full (drop_oldest)")
            else:
                raise MailboxFull(f"mailbox full ({self._capacity} messages)")
        queue.append(msg)
        if not self._scheduled and not self._suspended:
            self._scheduled = True
            return True
        return False

    def run(self):
        """One turn of the run loop, owed after :meth:`offer` returned True."""
        self._run()

    @property
    def size(self):
        return len(self._queue)

    @property
    def closed(self):
        return self._closed

    @property
    def suspended(self):
        return self._suspended

    def suspend(self):
        self._suspended = True

    def resume(self):
        self._suspended = False
        if not self._scheduled and not self._closed and self._queue:
            self._scheduled = True
            self._call_soon(self._run_cb)

    def notify_below(self, Py_ssize_t low, object callback):
        """Call ``callback()`` once, the first time the run loop leaves at most ``low``
        messages queued (or the mailbox closes); replaces an earlier callback."""
        self._drain_low = low
        self._drained = callback
        if not self._scheduled and not self._suspended and len(self._queue) <= low:
            self._scheduled = True
            self._call_soon(self._run_cb)

    def close(self):
        self._closed = True
        self._suspended = True
        left = list(self._queue)
        self._queue.clear()
        drained = self._drained
        if drained is not None:
            self._drained = None
            drained()
        return left

    def _run(self):
        cdef Py_ssize_t n = self._throughput
        cdef PyObject *presult = NULL
        cdef int rc
        cdef object queue = self._queue
        cdef object same = self._same
        cdef object cell = self._cell
        cdef object msg, coro, result
        while n > 0 and queue and not self._suspended:
            n -= 1
            msg = queue.popleft()
            try:
                coro = self.receive(self.ctx, msg)
                if PyCoro_CheckExact(coro):
                    presult = NULL
                    rc = PyIter_Send(coro, None, &presult)
                    result = <object>presult
                    Py_XDECREF(presult)
                    if rc == _PYGEN_NEXT:
                        self._suspended = True
                        cell.on_suspend(coro, result, msg)
                        break
                else:
                    result = coro
            except BaseException as exc:
                cell.on_failure(exc, msg)
                continue
            if result is not None and result is not same:
                cell.on_result(result, msg)
        if queue and not self._suspended:
            self._call_soon(self._run_cb)
        else:
            self._scheduled = False
        if self._drained is not None and len(queue) <= self._drain_low:
            drained = self._drained
            self._drained = None
            drained()
