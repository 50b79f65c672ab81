"""User-facing mailbox settings (the run loop itself lives in ``casty._fastpath``)."""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from typing import Any, Generic, TypeVar

from casty._fastpath import DROP_NEW, DROP_OLDEST, REJECT
from casty.errors import MailboxFull

__all__ = ["Mailbox", "MailboxOverflowStrategy"]

M = TypeVar("M")


class MailboxOverflowStrategy(enum.Enum):
    """What a bounded mailbox does with a message that does not fit."""

    drop_new = "drop_new"
    """The new message becomes a dead letter."""
    drop_oldest = "drop_oldest"
    """The oldest queued message becomes a dead letter; the new one is queued."""
    reject = "reject"
    """``tell`` raises :class:`~casty.MailboxFull` (an ``asyncio.QueueFull``) to a local sender (a
    remote one gets a dead letter)."""

    # upper-case aliases of the same members
    DROP_NEW = "drop_new"
    DROP_OLDEST = "drop_oldest"
    REJECT = "reject"

    @property
    def code(self) -> int:
        return _CODES[self.value]


_CODES: dict[str, int] = {
    "drop_new": DROP_NEW,
    "drop_oldest": DROP_OLDEST,
    "reject": REJECT,
}


class Mailbox(Generic[M]):
    """An actor's mailbox: its capacity, what happens when it is full, and its throughput.

    ``Mailbox[M](capacity=None, overflow=MailboxOverflowStrategy.drop_new)``: ``capacity`` None
    (or 0) means unbounded; ``overflow`` (also accepted as ``strategy``) applies when a bounded
    mailbox is full; ``throughput`` is how many messages the actor handles per event-loop turn
    before it lets other actors run (None: the system default).

    It is also a queue of its own: ``put(msg)`` applies the overflow strategy (``reject`` raises
    :class:`~casty.MailboxFull`, an ``asyncio.QueueFull``), ``await get()`` takes the oldest
    message, ``size()`` and ``empty()`` tell how many are queued. Given to ``spawn`` it becomes
    that actor's mailbox: messages already queued are delivered to the actor first, ``put``
    is then a ``tell`` and ``size()``/``empty()`` report the actor's queue (``get`` refuses:
    the actor consumes it). A mailbox already serving an actor given to another spawn only lends
    its settings.
    """

    __slots__ = ("_items", "_runner", "_waiters", "capacity", "strategy", "throughput")

    def __init__(
        self,
        capacity: int | None = None,
        overflow: MailboxOverflowStrategy | str | None = None,
        throughput: int | None = None,
        *,
        strategy: MailboxOverflowStrategy | str | None = None,
    ) -> None:
        if (
            overflow is not None
            and strategy is not None
            and MailboxOverflowStrategy(overflow) is not (MailboxOverflowStrategy(strategy))
        ):
            raise TypeError("give the overflow strategy once (overflow= or strategy=)")
        chosen = overflow if overflow is not None else strategy
        if capacity is None:
            capacity = 0
        if capacity < 0:
            raise ValueError("mailbox capacity must be >= 0 (0 or None means unbounded)")
        if throughput is not None and throughput < 1:
            raise ValueError("mailbox throughput must be >= 1")
        self.capacity: int = capacity
        self.strategy: MailboxOverflowStrategy = (
            MailboxOverflowStrategy.drop_new if chosen is None else MailboxOverflowStrategy(chosen)
        )
        self.throughput: int | None = throughput
        self._items: deque[M] = deque()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._runner: Any = None

    @property
    def overflow(self) -> MailboxOverflowStrategy:
        """Another name of ``strategy``."""
        return self.strategy

    def __repr__(self) -> str:
        cap = self.capacity or None
        return f"Mailbox(capacity={cap}, overflow={self.strategy.name}, throughput={self.throughput})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mailbox):
            return NotImplemented
        return (self.capacity, self.strategy, self.throughput) == (other.capacity, other.strategy, other.throughput)

    def __hash__(self) -> int:
        return hash((self.capacity, self.strategy, self.throughput))

    # -- the queue ---------------------------------------------------------------------------
    def put(self, msg: M) -> None:
        """Queue ``msg``, applying the overflow strategy when the mailbox is full."""
        runner = self._runner
        if runner is not None:
            runner.put(msg)
            return
        items = self._items
        if self.capacity and len(items) >= self.capacity:
            if self.strategy is MailboxOverflowStrategy.drop_new:
                return
            if self.strategy is MailboxOverflowStrategy.drop_oldest:
                items.popleft()
            else:
                raise MailboxFull(f"mailbox full ({self.capacity} messages)")
        items.append(msg)
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break

    async def get(self) -> M:
        """Take the oldest message, waiting for one if the mailbox is empty."""
        if self._runner is not None:
            raise RuntimeError("this mailbox belongs to an actor, which consumes its messages")
        while not self._items:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                waiter.cancel()
                if self._items and self._waiters:
                    # pass the wake-up on to the next waiter
                    nxt = self._waiters.popleft()
                    if not nxt.done():
                        nxt.set_result(None)
                raise
        return self._items.popleft()

    def size(self) -> int:
        """How many messages are queued."""
        runner = self._runner
        return int(runner.size) if runner is not None else len(self._items)

    def empty(self) -> bool:
        return self.size() == 0

    def _attach(self, runner: Any) -> bool:
        """Become the queue of the actor behind ``runner``; False if already serving one."""
        if self._runner is not None:
            return False
        pending = list(self._items)
        self._items.clear()
        self._runner = runner
        for msg in pending:
            runner.put(msg)
        return True
