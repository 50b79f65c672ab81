"""Demand accounting of a backpressured stream (pure Python implementation).

Elements of a stream are numbered 0, 1, 2, ...  The consumer grants demand and
acknowledges cumulatively ("every element below ``n`` arrived"), so after a lost
connection the producer resends everything from ``acked`` on and the consumer drops
the duplicates.  All counters saturate at :data:`MAX_DEMAND`; no value a peer sends
can overflow them.  ``_demand_c.pyx`` implements exactly the same behaviour.
"""

from __future__ import annotations

import operator
from collections import deque
from collections.abc import Awaitable, Coroutine, Generator
from typing import Any, NoReturn, cast

from casty.errors import ProtocolError

__all__ = ["DONE", "MAX_DEMAND", "ConsumerWindow", "Done", "ProducerLedger", "RunStore", "SinkBuffer"]

MAX_DEMAND = 2**62
"""Saturation bound of every counter: demand beyond it is treated as unbounded."""


def _as_int(value: object, name: str) -> int:
    """``value`` as an exact int (``True`` becomes 1), or TypeError naming ``name``."""
    if type(value) is int:
        return value
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}") from None


class ProducerLedger:
    """Producer side: which sequence numbers may be sent and which were acknowledged.

    Invariant: ``acked <= next_seq <= limit <= MAX_DEMAND``.
    """

    __slots__ = ("_acked", "_limit", "_next_seq")

    def __init__(self) -> None:
        self._next_seq = 0
        self._acked = 0
        self._limit = 0

    @property
    def next_seq(self) -> int:
        """Sequence number the next new element gets."""
        return self._next_seq

    @property
    def acked(self) -> int:
        """Every sequence number below this one was acknowledged by the consumer."""
        return self._acked

    @property
    def limit(self) -> int:
        """The consumer allows sequence numbers below this one."""
        return self._limit

    def request(self, n: int) -> None:
        """Add ``n`` elements of incremental demand (saturating at MAX_DEMAND)."""
        n = _as_int(n, "demand")
        if n <= 0:
            raise ProtocolError(f"demand must be positive, got {n}")
        if n >= MAX_DEMAND - self._limit:
            self._limit = MAX_DEMAND
        else:
            self._limit += n

    def update(self, requested_total: int, received_total: int) -> None:
        """Apply the consumer's cumulative state: total demand granted, total elements received."""
        requested_total = _as_int(requested_total, "requested_total")
        received_total = _as_int(received_total, "received_total")
        if requested_total < 0:
            raise ProtocolError(f"requested_total must not be negative, got {requested_total}")
        if received_total < 0:
            raise ProtocolError(f"received_total must not be negative, got {received_total}")
        if received_total > self._next_seq:
            raise ProtocolError(
                f"consumer acknowledged {received_total} elements but only {self._next_seq} were sent"
            )
        if requested_total > self._limit:
            self._limit = requested_total if requested_total < MAX_DEMAND else MAX_DEMAND
        if received_total > self._acked:
            self._acked = received_total

    def sendable(self) -> int:
        """How many new elements may be sent now."""
        return self._limit - self._next_seq

    def take(self) -> int:
        """Assign the next sequence number to a new element; there must be demand for it."""
        seq = self._next_seq
        if seq >= self._limit:
            raise ProtocolError(
                f"no demand for element {seq}: the consumer allows elements below {self._limit}"
            )
        self._next_seq = seq + 1
        return seq

    def take_many(self, k: int) -> int:
        """Assign ``k`` consecutive sequence numbers; return the first. There must be demand for all."""
        k = _as_int(k, "k")
        seq = self._next_seq
        if k < 1:
            raise ProtocolError(f"take_many needs k >= 1, got {k}")
        if k > self._limit - seq:
            raise ProtocolError(
                f"no demand for {k} elements from {seq}: the consumer allows elements below {self._limit}"
            )
        self._next_seq = seq + k
        return seq

    def unacked(self) -> int:
        """Elements sent but not yet acknowledged (to resend after a lost connection)."""
        return self._next_seq - self._acked

    def __repr__(self) -> str:
        return f"ProducerLedger(next_seq={self._next_seq}, acked={self._acked}, limit={self._limit})"


class ConsumerWindow:
    """Consumer side: which element comes next and when to send more demand.

    At most ``window`` elements are granted beyond what the user consumed, and demand
    is topped up once ``batch`` of them were consumed, so about one demand message is
    sent per ``batch`` elements.  :meth:`grant` adds demand beyond the window; the top-ups
    then pause until consumption brings the outstanding demand back within it.  Invariant:
    ``consumed_total <= expected <= requested_total``, and
    ``requested_total <= consumed_total + window`` unless :meth:`grant` added more.
    """

    __slots__ = ("_batch", "_consumed_total", "_expected", "_requested_total", "_window")

    def __init__(self, window: int, batch: int | None = None) -> None:
        window = _as_int(window, "window")
        if not 1 <= window <= MAX_DEMAND:
            raise ValueError(f"window must be in 1..{MAX_DEMAND}, got {window}")
        if batch is None:
            batch = max(1, window // 2)
        else:
            batch = _as_int(batch, "batch")
            if not 1 <= batch <= window:
                raise ValueError(f"batch must be in 1..{window}, got {batch}")
        self._window = window
        self._batch = batch
        self._expected = 0
        self._requested_total = 0
        self._consumed_total = 0

    @property
    def window(self) -> int:
        """Most elements granted beyond what the user consumed."""
        return self._window

    @property
    def batch(self) -> int:
        """Consumed elements that trigger a new demand message."""
        return self._batch

    @property
    def expected(self) -> int:
        """Sequence number of the next element wanted (also the total received)."""
        return self._expected

    @property
    def requested_total(self) -> int:
        """Total demand granted so far."""
        return self._requested_total

    @property
    def consumed_total(self) -> int:
        """Total elements the user took."""
        return self._consumed_total

    def initial(self) -> int:
        """Demand to send with the subscription (the whole window); call once."""
        if self._requested_total != 0:
            raise ProtocolError("initial demand was already sent")
        self._requested_total = self._window
        return self._window

    def grant(self, n: int) -> int:
        """Grant ``n`` more elements beyond the window (saturating at MAX_DEMAND); return the
        demand actually added, to send to the producer (0 when already unbounded)."""
        n = _as_int(n, "demand")
        if n <= 0:
            raise ProtocolError(f"demand must be positive, got {n}")
        requested = self._requested_total
        target = requested + n if n < MAX_DEMAND - requested else MAX_DEMAND
        self._requested_total = target
        return target - requested

    def receive_many(self, k: int) -> int:
        """Accept ``k`` consecutive elements starting at ``expected``; return the new ``expected``."""
        k = _as_int(k, "k")
        if k < 1:
            raise ProtocolError(f"receive_many needs k >= 1, got {k}")
        if k > self._requested_total - self._expected:
            raise ProtocolError(
                f"element {self._expected + k - 1} exceeds the granted demand of {self._requested_total} elements"
            )
        self._expected += k
        return self._expected

    def receive(self, seq: int) -> int:
        """Classify an arriving element: 1 accept, 0 duplicate (ignore), -1 gap (ignore, ask for resend).

        An element the consumer never granted demand for is a ProtocolError."""
        seq = _as_int(seq, "seq")
        expected = self._expected
        if seq == expected:
            if seq >= self._requested_total:
                raise ProtocolError(
                    f"element {seq} exceeds the granted demand of {self._requested_total} elements"
                )
            self._expected = expected + 1
            return 1
        if seq < 0:
            raise ProtocolError(f"sequence number must not be negative, got {seq}")
        if seq < expected:
            return 0
        if seq >= self._requested_total:
            raise ProtocolError(
                f"element {seq} exceeds the granted demand of {self._requested_total} elements"
            )
        return -1

    def consumed(self, k: int = 1) -> int:
        """Record that the user took ``k`` accepted elements; return the new demand to send (0 for none)."""
        k = _as_int(k, "k")
        if k < 0:
            raise ProtocolError(f"consumed count must not be negative, got {k}")
        if k > self._expected - self._consumed_total:
            raise ProtocolError(
                f"consumed {k} elements but only {self._expected - self._consumed_total} are pending"
            )
        consumed = self._consumed_total + k
        self._consumed_total = consumed
        if self._requested_total - consumed > self._window - self._batch:
            return 0
        target = consumed + self._window if consumed < MAX_DEMAND - self._window else MAX_DEMAND
        increment = target - self._requested_total
        if increment <= 0:
            return 0
        self._requested_total = target
        return increment

    def __repr__(self) -> str:
        return (
            f"ConsumerWindow(window={self._window}, batch={self._batch}, expected={self._expected}, "
            f"requested_total={self._requested_total}, consumed_total={self._consumed_total})"
        )


# --------------------------------------------------------------------------- producer buffers


class Done:
    """An awaitable that is already done: ``await`` returns None without suspending. It is a
    coroutine to asyncio (``create_task`` and ``wait_for`` take it) and dropping it un-awaited is
    not an error."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, Any, None]:
        # an exhausted iterator: the await ends at once (typed as the generator it stands for)
        return _EXHAUSTED

    def send(self, value: object) -> NoReturn:
        raise StopIteration

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> NoReturn:
        if val is None:
            raise typ
        raise val

    def close(self) -> None:
        return None


_EXHAUSTED = cast("Generator[Any, Any, None]", iter(()))
Coroutine.register(Done)

DONE = Done()
"""The one :class:`Done` instance."""


class SinkBuffer:
    """The elements a stream producer accepted and has not sent yet, in order (the base of the
    producer's ``SinkRef``).

    ``put`` and ``offer`` accept an element while the buffer is ``accepting`` and has room (fewer
    than ``capacity`` elements, or ``unbounded``); the first element after a flush calls
    ``defer(flush_cb)`` once (``defer`` is None until the stream has a subscriber) and sets
    ``flush_pending``, which the flush clears. ``put`` returns :data:`DONE` for an accepted
    element and otherwise the awaitable of ``self._put_waiting(element)``, which a subclass
    defines; ``offer`` calls ``self._refuse()`` when not accepting. The sender takes elements
    from the front as runs of ``run_type`` (a list type).
    """

    __slots__ = ("_items", "accepting", "capacity", "defer", "flush_cb", "flush_pending", "run_type", "unbounded")

    def __init__(self, capacity: int, unbounded: bool, run_type: type[list[Any]] = list) -> None:
        capacity = _as_int(capacity, "capacity")
        if not 0 <= capacity <= MAX_DEMAND:
            raise ValueError(f"capacity must be in 0..{MAX_DEMAND}, got {capacity}")
        if not (isinstance(run_type, type) and issubclass(run_type, list)):
            raise TypeError("run_type must be list or a subclass of it")
        self.capacity = capacity
        self.unbounded = bool(unbounded)
        self.accepting = True
        self.flush_pending = False
        self.defer: Any = None
        self.flush_cb: Any = None
        self.run_type = run_type
        self._items: list[Any] = []

    # -- accepting -----------------------------------------------------------------------
    def put(self, element: Any) -> Awaitable[None]:
        """Append ``element`` when accepting with room (returns :data:`DONE`); else the
        awaitable of ``_put_waiting(element)``."""
        items = self._items
        if self.accepting and (self.unbounded or len(items) < self.capacity):
            items.append(element)
            if not self.flush_pending:
                defer = self.defer
                if defer is not None:
                    self.flush_pending = True
                    defer(self.flush_cb)
            return DONE
        waiting: Awaitable[None] = self._put_waiting(element)
        return waiting

    def _put_waiting(self, element: Any) -> Awaitable[None]:
        raise NotImplementedError("a SinkBuffer subclass defines how a put waits for room")

    def _refuse(self) -> NoReturn:
        raise NotImplementedError("a SinkBuffer subclass defines how a refused element is reported")

    def offer(self, element: Any) -> bool:
        """Append ``element`` if there is room (True) or refuse it (False) without waiting;
        ``_refuse()`` when not accepting."""
        if not self.accepting:
            self._refuse()
        items = self._items
        if not self.unbounded and len(items) >= self.capacity:
            return False
        items.append(element)
        self.schedule()
        return True

    def append(self, element: Any) -> None:
        """Append ``element`` (room and acceptance are the caller's to check)."""
        self._items.append(element)

    def has_room(self) -> bool:
        """True when one more element fits."""
        return self.unbounded or len(self._items) < self.capacity

    def schedule(self) -> None:
        """Ask for a flush (``defer(flush_cb)``) unless one is pending or nobody subscribed."""
        if not self.flush_pending:
            defer = self.defer
            if defer is not None:
                self.flush_pending = True
                defer(self.flush_cb)

    # -- sending -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._items)

    def take(self, k: int) -> list[Any]:
        """The ``k`` oldest elements, removed, as a new ``run_type`` list (1 <= k <= len)."""
        k = _as_int(k, "k")
        items = self._items
        if not 1 <= k <= len(items):
            raise ValueError(f"cannot take {k} of {len(items)} elements")
        if k == len(items):
            self._items = []
            return items if self.run_type is list else self.run_type(items)
        run = self.run_type(items[:k])
        del items[:k]
        return run

    def clear(self) -> int:
        """Forget every element; return how many there were."""
        n = len(self._items)
        self._items = []
        return n


_CHUNK = 256


class RunStore:
    """Elements sent and not acknowledged yet, in order, held as the runs they were sent in.

    ``add_run`` keeps the list it is given (it is not copied, and must not change afterwards);
    ``add`` appends single elements to chunks of the store's own. ``trim(n)`` forgets the ``n``
    oldest elements, a whole run at a time (a run partly acknowledged stays until its last
    element is).
    """

    __slots__ = ("_count", "_offset", "_own", "_runs")

    def __init__(self) -> None:
        self._runs: deque[list[Any]] = deque()
        self._offset = 0  # elements of the first run already forgotten
        self._count = 0
        self._own = False  # the last run is the store's own chunk (add appends to it)

    def __len__(self) -> int:
        return self._count

    def add(self, element: Any) -> None:
        """Append one element."""
        runs = self._runs
        if self._own and len(runs[-1]) < _CHUNK:
            runs[-1].append(element)
        else:
            runs.append([element])
            self._own = True
        self._count += 1

    def add_run(self, run: list[Any]) -> None:
        """Append the elements of ``run`` (kept as it is, not copied)."""
        if not isinstance(run, list):
            raise TypeError("a run is a list")
        if run:
            self._runs.append(run)
            self._own = False
            self._count += len(run)

    def trim(self, n: int) -> None:
        """Forget the ``n`` oldest elements (0 <= n <= len)."""
        n = _as_int(n, "n")
        if not 0 <= n <= self._count:
            raise ValueError(f"cannot trim {n} of {self._count} elements")
        self._count -= n
        runs = self._runs
        offset = self._offset + n
        while runs and offset >= len(runs[0]):
            offset -= len(runs.popleft())
        if not runs:
            self._own = False
        self._offset = offset

    def truncate(self, keep: int) -> None:
        """Forget every element after the ``keep`` oldest (0 <= keep <= len)."""
        keep = _as_int(keep, "keep")
        if not 0 <= keep <= self._count:
            raise ValueError(f"cannot keep {keep} of {self._count} elements")
        if keep == self._count:
            return
        items = self.items()[:keep]
        self.clear()
        if items:
            self._runs.append(items)
            self._own = True
            self._count = keep

    def get(self, k: int) -> Any:
        """The element ``k`` places after the oldest (IndexError out of range)."""
        k = _as_int(k, "k")
        if not 0 <= k < self._count:
            raise IndexError("RunStore index out of range")
        k += self._offset
        for run in self._runs:
            if k < len(run):
                return run[k]
            k -= len(run)
        raise IndexError("RunStore index out of range")  # unreachable: _count is kept exact

    def items(self) -> list[Any]:
        """Every element, oldest first, as a new list."""
        out: list[Any] = []
        first = True
        for run in self._runs:
            if first and self._offset:
                out.extend(run[self._offset :])
            else:
                out.extend(run)
            first = False
        return out

    def chunks(self, size: int) -> list[list[Any]]:
        """Every element, oldest first, cut into lists of ``size`` (the last one shorter)."""
        size = _as_int(size, "size")
        if size < 1:
            raise ValueError(f"chunk size must be >= 1, got {size}")
        items = self.items()
        return [items[i : i + size] for i in range(0, len(items), size)]

    def clear(self) -> None:
        """Forget every element."""
        self._runs.clear()
        self._offset = 0
        self._count = 0
        self._own = False

    def __repr__(self) -> str:
        return f"RunStore(count={self._count}, runs={len(self._runs)}, offset={self._offset})"
