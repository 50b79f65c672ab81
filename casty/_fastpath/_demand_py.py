"""Demand accounting of a backpressured stream (pure Python implementation).

Elements of a stream are numbered 0, 1, 2, ...  The consumer grants demand and
acknowledges cumulatively ("every element below ``n`` arrived"), so after a lost
connection the producer resends everything from ``acked`` on and the consumer drops
the duplicates.  All counters saturate at :data:`MAX_DEMAND`; no value a peer sends
can overflow them.  ``_demand_c.pyx`` implements exactly the same behaviour.
"""

from __future__ import annotations

import operator

from casty.errors import ProtocolError

__all__ = ["MAX_DEMAND", "ConsumerWindow", "ProducerLedger"]

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
