# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Demand accounting of a backpressured stream (compiled implementation).

Same behaviour as ``_demand_py.py``: see that module for the protocol.  Counters are
``long long`` and saturate at MAX_DEMAND = 2**62.  Arguments arrive as Python ints of
any size; they are clamped into [-(MAX_DEMAND + 1), MAX_DEMAND + 1] before any
arithmetic, which keeps every comparison exact and every sum below 2**63, while error
messages still show the value the caller passed.
"""

import operator
from collections.abc import Coroutine

cimport cython
from cpython.list cimport PyList_GET_SIZE
from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_CheckExact

from casty.errors import ProtocolError

__all__ = ["DONE", "MAX_DEMAND", "ConsumerWindow", "Done", "ProducerLedger", "RunStore", "SinkBuffer"]

include "_source.pxi"

cdef long long _MAX = 4611686018427387904  # 2**62
cdef long long _ABOVE = _MAX + 1
cdef long long _BELOW = -_MAX - 1

MAX_DEMAND = _MAX


cdef object _index(object value, str name):
    """``value`` as an exact Python int (``True`` becomes 1), or TypeError naming ``name``."""
    if PyLong_CheckExact(value):
        return value
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}") from None


cdef inline long long _clamp(object value) except? -1:
    """An int clamped into [_BELOW, _ABOVE]."""
    cdef int overflow = 0
    cdef long long v = PyLong_AsLongLongAndOverflow(value, &overflow)
    if overflow > 0 or v > _ABOVE:
        return _ABOVE
    if overflow < 0 or v < _BELOW:
        return _BELOW
    return v


@cython.final
cdef class ProducerLedger:
    """Producer side: which sequence numbers may be sent and which were acknowledged.

    Invariant: ``acked <= next_seq <= limit <= MAX_DEMAND``.
    """

    cdef readonly long long next_seq
    cdef readonly long long acked
    cdef readonly long long limit

    def __init__(self):
        self.next_seq = 0
        self.acked = 0
        self.limit = 0

    cpdef void request(self, object n):
        """Add ``n`` elements of incremental demand (saturating at MAX_DEMAND)."""
        n = _index(n, "demand")
        cdef long long v = _clamp(n)
        if v <= 0:
            raise ProtocolError(f"demand must be positive, got {n}")
        if v >= _MAX - self.limit:
            self.limit = _MAX
        else:
            self.limit += v

    cpdef void update(self, object requested_total, object received_total):
        """Apply the consumer's cumulative state: total demand granted, total elements received."""
        requested_total = _index(requested_total, "requested_total")
        received_total = _index(received_total, "received_total")
        cdef long long req = _clamp(requested_total)
        cdef long long rec = _clamp(received_total)
        if req < 0:
            raise ProtocolError(f"requested_total must not be negative, got {requested_total}")
        if rec < 0:
            raise ProtocolError(f"received_total must not be negative, got {received_total}")
        if rec > self.next_seq:
            raise ProtocolError(
                f"consumer acknowledged {received_total} elements but only {self.next_seq} were sent"
            )
        if req > self.limit:
            self.limit = req if req < _MAX else _MAX
        if rec > self.acked:
            self.acked = rec

    cpdef long long sendable(self):
        """How many new elements may be sent now."""
        return self.limit - self.next_seq

    cpdef long long take(self) except -1:
        """Assign the next sequence number to a new element; there must be demand for it."""
        cdef long long seq = self.next_seq
        if seq >= self.limit:
            raise ProtocolError(f"no demand for element {seq}: the consumer allows elements below {self.limit}")
        self.next_seq = seq + 1
        return seq

    cpdef long long take_many(self, object k) except -1:
        """Assign ``k`` consecutive sequence numbers; return the first. There must be demand for all."""
        k = _index(k, "k")
        cdef long long n = _clamp(k)
        cdef long long seq = self.next_seq
        if n < 1:
            raise ProtocolError(f"take_many needs k >= 1, got {k}")
        if n > self.limit - seq:
            raise ProtocolError(f"no demand for {k} elements from {seq}: the consumer allows elements below {self.limit}")
        self.next_seq = seq + n
        return seq

    cpdef long long unacked(self):
        """Elements sent but not yet acknowledged (to resend after a lost connection)."""
        return self.next_seq - self.acked

    def __repr__(self):
        return f"ProducerLedger(next_seq={self.next_seq}, acked={self.acked}, limit={self.limit})"


@cython.final
cdef class ConsumerWindow:
    """Consumer side: which element comes next and when to send more demand.

    At most ``window`` elements are granted beyond what the user consumed, and demand
    is topped up once ``batch`` of them were consumed, so about one demand message is
    sent per ``batch`` elements.  :meth:`grant` adds demand beyond the window; the top-ups
    then pause until consumption brings the outstanding demand back within it.  Invariant:
    ``consumed_total <= expected <= requested_total``, and
    ``requested_total <= consumed_total + window`` unless :meth:`grant` added more.
    """

    cdef readonly long long window
    cdef readonly long long batch
    cdef readonly long long expected
    cdef readonly long long requested_total
    cdef readonly long long consumed_total

    def __init__(self, object window, object batch=None):
        window = _index(window, "window")
        cdef long long w = _clamp(window)
        cdef long long b
        if w < 1 or w > _MAX:
            raise ValueError(f"window must be in 1..{_MAX}, got {window}")
        if batch is None:
            b = w // 2
            if b < 1:
                b = 1
        else:
            batch = _index(batch, "batch")
            b = _clamp(batch)
            if b < 1 or b > w:
                raise ValueError(f"batch must be in 1..{w}, got {batch}")
        self.window = w
        self.batch = b
        self.expected = 0
        self.requested_total = 0
        self.consumed_total = 0

    cpdef long long initial(self) except -1:
        """Demand to send with the subscription (the whole window); call once."""
        if self.requested_total != 0:
            raise ProtocolError("initial demand was already sent")
        self.requested_total = self.window
        return self.window

    cpdef int receive(self, object seq) except -2:
        """Classify an arriving element: 1 accept, 0 duplicate (ignore), -1 gap (ignore, ask for resend).

        An element the consumer never granted demand for is a ProtocolError."""
        seq = _index(seq, "seq")
        cdef long long s = _clamp(seq)
        cdef long long expected = self.expected
        if s == expected:
            if s >= self.requested_total:
                raise ProtocolError(
                    f"element {seq} exceeds the granted demand of {self.requested_total} elements"
                )
            self.expected = expected + 1
            return 1
        if s < 0:
            raise ProtocolError(f"sequence number must not be negative, got {seq}")
        if s < expected:
            return 0
        if s >= self.requested_total:
            raise ProtocolError(f"element {seq} exceeds the granted demand of {self.requested_total} elements")
        return -1

    cpdef long long grant(self, object n) except -1:
        """Grant ``n`` more elements beyond the window (saturating at MAX_DEMAND); return the
        demand actually added, to send to the producer (0 when already unbounded)."""
        n = _index(n, "demand")
        cdef long long v = _clamp(n)
        cdef long long requested = self.requested_total
        cdef long long target
        if v <= 0:
            raise ProtocolError(f"demand must be positive, got {n}")
        if v < _MAX - requested:
            target = requested + v
        else:
            target = _MAX
        self.requested_total = target
        return target - requested

    cpdef long long receive_many(self, object k) except -1:
        """Accept ``k`` consecutive elements starting at ``expected``; return the new ``expected``."""
        k = _index(k, "k")
        cdef long long n = _clamp(k)
        if n < 1:
            raise ProtocolError(f"receive_many needs k >= 1, got {k}")
        if n > self.requested_total - self.expected:
            raise ProtocolError(
                f"element {self.expected + k - 1} exceeds the granted demand of {self.requested_total} elements"
            )
        self.expected += n
        return self.expected

    cpdef long long consumed(self, object k=1) except -1:
        """Record that the user took ``k`` accepted elements; return the new demand to send (0 for none)."""
        k = _index(k, "k")
        cdef long long n = _clamp(k)
        cdef long long done
        cdef long long target
        cdef long long increment
        if n < 0:
            raise ProtocolError(f"consumed count must not be negative, got {k}")
        if n > self.expected - self.consumed_total:
            raise ProtocolError(
                f"consumed {k} elements but only {self.expected - self.consumed_total} are pending"
            )
        done = self.consumed_total + n
        self.consumed_total = done
        if self.requested_total - done > self.window - self.batch:
            return 0
        if done < _MAX - self.window:
            target = done + self.window
        else:
            target = _MAX
        increment = target - self.requested_total
        if increment <= 0:
            return 0
        self.requested_total = target
        return increment

    def __repr__(self):
        return (
            f"ConsumerWindow(window={self.window}, batch={self.batch}, expected={self.expected}, "
            f"requested_total={self.requested_total}, consumed_total={self.consumed_total})"
        )


# --------------------------------------------------------------------------- producer buffers


@cython.final
@cython.auto_pickle(False)
cdef class Done:
    """An awaitable that is already done: ``await`` returns None without suspending. It is a
    coroutine to asyncio (``create_task`` and ``wait_for`` take it) and dropping it un-awaited is
    not an error."""

    def __await__(self):
        return _EXHAUSTED

    def send(self, value):
        raise StopIteration

    def throw(self, typ, val=None, tb=None):
        if val is None:
            raise typ
        raise val

    def close(self):
        return None


cdef object _EXHAUSTED = iter(())
Coroutine.register(Done)

cdef Done _DONE = Done()
DONE = _DONE

cdef Py_ssize_t _COMPACT_AT = 64
cdef Py_ssize_t _CHUNK = 256


@cython.auto_pickle(False)
cdef class SinkBuffer:
    """The elements a stream producer accepted and has not sent yet, in order (the base of the
    producer's ``SinkRef``). Same behaviour as the pure twin: see ``_demand_py.SinkBuffer``."""

    cdef list _items
    cdef public Py_ssize_t capacity
    cdef public bint unbounded
    cdef public bint accepting
    cdef public bint flush_pending
    cdef public object defer
    cdef public object flush_cb
    cdef public object run_type

    def __init__(self, object capacity, object unbounded, object run_type=list):
        capacity = _index(capacity, "capacity")
        if not 0 <= capacity <= _MAX:
            raise ValueError(f"capacity must be in 0..{_MAX}, got {capacity}")
        if not (isinstance(run_type, type) and issubclass(run_type, list)):
            raise TypeError("run_type must be list or a subclass of it")
        self.capacity = _clamp(capacity)
        self.unbounded = bool(unbounded)
        self.accepting = True
        self.flush_pending = False
        self.defer = None
        self.flush_cb = None
        self.run_type = run_type
        self._items = []

    # -- accepting -----------------------------------------------------------------------
    def put(self, element):
        """Append ``element`` when accepting with room (returns DONE); else the awaitable of
        ``_put_waiting(element)``."""
        cdef list items = self._items
        if self.accepting and (self.unbounded or PyList_GET_SIZE(items) < self.capacity):
            items.append(element)
            if not self.flush_pending:
                defer = self.defer
                if defer is not None:
                    self.flush_pending = True
                    defer(self.flush_cb)
            return _DONE
        return self._put_waiting(element)

    def _put_waiting(self, element):
        raise NotImplementedError("a SinkBuffer subclass defines how a put waits for room")

    def _refuse(self):
        raise NotImplementedError("a SinkBuffer subclass defines how a refused element is reported")

    def offer(self, element):
        """Append ``element`` if there is room (True) or refuse it (False) without waiting;
        ``_refuse()`` when not accepting."""
        if not self.accepting:
            self._refuse()
        cdef list items = self._items
        if not self.unbounded and PyList_GET_SIZE(items) >= self.capacity:
            return False
        items.append(element)
        self.schedule()
        return True

    def append(self, element):
        """Append ``element`` (room and acceptance are the caller's to check)."""
        self._items.append(element)

    def has_room(self):
        """True when one more element fits."""
        return self.unbounded or PyList_GET_SIZE(self._items) < self.capacity

    def schedule(self):
        """Ask for a flush (``defer(flush_cb)``) unless one is pending or nobody subscribed."""
        if not self.flush_pending:
            defer = self.defer
            if defer is not None:
                self.flush_pending = True
                defer(self.flush_cb)

    # -- sending -------------------------------------------------------------------------
    def __len__(self):
        return PyList_GET_SIZE(self._items)

    def take(self, object k):
        """The ``k`` oldest elements, removed, as a new ``run_type`` list (1 <= k <= len)."""
        k = _index(k, "k")
        cdef list items = self._items
        cdef Py_ssize_t size = PyList_GET_SIZE(items)
        cdef long long n = _clamp(k)
        if not 1 <= n <= size:
            raise ValueError(f"cannot take {k} of {size} elements")
        if n == size:
            self._items = []
            return items if self.run_type is list else self.run_type(items)
        run = self.run_type(items[:n])
        del items[:n]
        return run

    def clear(self):
        """Forget every element; return how many there were."""
        cdef Py_ssize_t n = PyList_GET_SIZE(self._items)
        self._items = []
        return n


@cython.final
@cython.auto_pickle(False)
cdef class RunStore:
    """Elements sent and not acknowledged yet, in order, held as the runs they were sent in.
    Same behaviour as the pure twin: see ``_demand_py.RunStore``."""

    cdef list _runs
    cdef Py_ssize_t _first  # index in _runs of the oldest run still held
    cdef Py_ssize_t _offset  # elements of that run already forgotten
    cdef Py_ssize_t _count
    cdef bint _own  # the last run is the store's own chunk (add appends to it)

    def __init__(self):
        self._runs = []
        self._first = 0
        self._offset = 0
        self._count = 0
        self._own = False

    def __len__(self):
        return self._count

    cpdef void add(self, object element):
        """Append one element."""
        cdef list runs = self._runs
        cdef list last
        if self._own:
            last = <list>runs[PyList_GET_SIZE(runs) - 1]
            if PyList_GET_SIZE(last) < _CHUNK:
                last.append(element)
                self._count += 1
                return
        runs.append([element])
        self._own = True
        self._count += 1

    cpdef void add_run(self, object run):
        """Append the elements of ``run`` (kept as it is, not copied)."""
        if not isinstance(run, list):
            raise TypeError("a run is a list")
        cdef Py_ssize_t n = len(run)
        if n:
            self._runs.append(run)
            self._own = False
            self._count += n

    cpdef void trim(self, object n):
        """Forget the ``n`` oldest elements (0 <= n <= len)."""
        n = _index(n, "n")
        cdef long long k = _clamp(n)
        if not 0 <= k <= self._count:
            raise ValueError(f"cannot trim {n} of {self._count} elements")
        self._count -= k
        cdef list runs = self._runs
        cdef Py_ssize_t total = PyList_GET_SIZE(runs)
        cdef Py_ssize_t first = self._first
        cdef Py_ssize_t offset = self._offset + k
        cdef Py_ssize_t size
        while first < total:
            size = len(runs[first])
            if offset < size:
                break
            offset -= size
            runs[first] = None
            first += 1
        if first == total:
            del runs[:]
            first = 0
            self._own = False
        elif first >= _COMPACT_AT and first * 2 >= total:
            del runs[:first]
            first = 0
        self._first = first
        self._offset = offset

    def truncate(self, object keep):
        """Forget every element after the ``keep`` oldest (0 <= keep <= len)."""
        keep = _index(keep, "keep")
        cdef long long k = _clamp(keep)
        if not 0 <= k <= self._count:
            raise ValueError(f"cannot keep {keep} of {self._count} elements")
        if k == self._count:
            return
        items = self.items()[:k]
        self.clear()
        if items:
            self._runs.append(items)
            self._own = True
            self._count = k

    def get(self, object k):
        """The element ``k`` places after the oldest (IndexError out of range)."""
        k = _index(k, "k")
        cdef long long i = _clamp(k)
        if not 0 <= i < self._count:
            raise IndexError("RunStore index out of range")
        i += self._offset
        cdef Py_ssize_t r
        cdef Py_ssize_t size
        for r in range(self._first, PyList_GET_SIZE(self._runs)):
            run = self._runs[r]
            size = len(run)
            if i < size:
                return run[i]
            i -= size
        raise IndexError("RunStore index out of range")

    def items(self):
        """Every element, oldest first, as a new list."""
        cdef list out = []
        cdef Py_ssize_t r
        for r in range(self._first, PyList_GET_SIZE(self._runs)):
            run = self._runs[r]
            if r == self._first and self._offset:
                out.extend(run[self._offset:])
            else:
                out.extend(run)
        return out

    def chunks(self, object size):
        """Every element, oldest first, cut into lists of ``size`` (the last one shorter)."""
        size = _index(size, "size")
        if size < 1:
            raise ValueError(f"chunk size must be >= 1, got {size}")
        items = self.items()
        return [items[i : i + size] for i in range(0, len(items), size)]

    def clear(self):
        """Forget every element."""
        self._runs = []
        self._first = 0
        self._offset = 0
        self._count = 0
        self._own = False

    def __repr__(self):
        return f"RunStore(count={self._count}, runs={PyList_GET_SIZE(self._runs) - self._first}, offset={self._offset})"
