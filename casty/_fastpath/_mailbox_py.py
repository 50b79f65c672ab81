"""Per-actor mailbox and run loop (pure-Python twin of ``_mailbox_c``).

The run loop drives each handler coroutine directly with ``send(None)``: a handler that
finishes without really awaiting costs no Task and no event-loop round trip. A handler that
does await is handed to the owning cell (``on_suspend``), which finishes it in a Task while
the mailbox stays suspended, so messages to one actor are still handled one at a time and in
arrival order. Each actor handles at most ``throughput`` messages per event-loop turn.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from types import CoroutineType
from typing import Any

from casty.errors import MailboxFull

__all__ = ["DROP_NEW", "DROP_OLDEST", "REJECT", "MailboxRunner"]

DROP_NEW = 0
DROP_OLDEST = 1
REJECT = 2


class MailboxRunner:
    __slots__ = (
        "_call_soon",
        "_capacity",
        "_cell",
        "_closed",
        "_dead_letter",
        "_drain_low",
        "_drained",
        "_queue",
        "_run_cb",
        "_same",
        "_scheduled",
        "_strategy",
        "_suspended",
        "_throughput",
        "ctx",
        "receive",
    )

    def __init__(
        self,
        cell: Any,
        loop: Any,
        capacity: int,
        strategy: int,
        throughput: int,
        dead_letter: Callable[[object, str], None],
        same: object,
    ) -> None:
        if throughput < 1:
            raise ValueError("throughput must be >= 1")
        if strategy not in (DROP_NEW, DROP_OLDEST, REJECT):
            raise ValueError(f"unknown overflow strategy {strategy}")
        self._queue: deque[object] = deque()
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
        self.receive: Any = None
        self.ctx: Any = None
        self._drained: Callable[[], None] | None = None
        self._drain_low = 0

    # -- producers -------------------------------------------------------------------------
    def put(self, msg: object) -> None:
        if self.offer(msg):
            self._call_soon(self._run_cb)

    def offer(self, msg: object) -> bool:
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

    def run(self) -> None:
        """One turn of the run loop, owed after :meth:`offer` returned True."""
        self._run()

    # -- state -----------------------------------------------------------------------------
    @property
    def size(self) -> int:
        return len(self._queue)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def suspended(self) -> bool:
        return self._suspended

    def suspend(self) -> None:
        self._suspended = True

    def resume(self) -> None:
        self._suspended = False
        if not self._scheduled and not self._closed and self._queue:
            self._scheduled = True
            self._call_soon(self._run_cb)

    def notify_below(self, low: int, callback: Callable[[], None]) -> None:
        """Call ``callback()`` once, the first time the run loop leaves at most ``low``
        messages queued (or the mailbox closes); replaces an earlier callback."""
        self._drain_low = low
        self._drained = callback
        if not self._scheduled and not self._suspended and len(self._queue) <= low:
            self._scheduled = True
            self._call_soon(self._run_cb)

    def close(self) -> list[object]:
        """Refuse further messages; return the ones still queued."""
        self._closed = True
        self._suspended = True
        left = list(self._queue)
        self._queue.clear()
        drained = self._drained
        if drained is not None:
            self._drained = None
            drained()
        return left

    # -- the run loop ----------------------------------------------------------------------
    def _run(self) -> None:
        queue = self._queue
        same = self._same
        cell = self._cell
        n = self._throughput
        while n > 0 and queue and not self._suspended:
            n -= 1
            msg = queue.popleft()
            try:
                coro = self.receive(self.ctx, msg)
                if type(coro) is CoroutineType:
                    try:
                        yielded = coro.send(None)
                    except StopIteration as stop:
                        result = stop.value
                    else:
                        self._suspended = True
                        cell.on_suspend(coro, yielded, msg)
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
        drained = self._drained
        if drained is not None and len(queue) <= self._drain_low:
            self._drained = None
            drained()
