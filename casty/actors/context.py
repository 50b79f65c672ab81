"""ActorContext: what a behavior sees of its actor and of the system."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from casty.actors.behaviors import Behavior
from casty.actors.ref import ActorRef

if TYPE_CHECKING:
    from casty.actors.cell import ActorCell
    from casty.actors.mailbox import Mailbox
    from casty.actors.system import ActorSystem

__all__ = ["ActorContext", "Interceptor", "TimerScheduler"]

#: Sees every message before the handler; returning True consumes it (the handler never sees it).
Interceptor = Callable[[object], bool]

M = TypeVar("M")
C = TypeVar("C")
T = TypeVar("T")
R = TypeVar("R")


class TimerScheduler(Generic[M]):
    """Named single and periodic timers that tell messages to the owning actor.

    Starting a timer with a key that is already active replaces it. All timers are cancelled
    when the actor stops or restarts.
    """

    __slots__ = ("_cell", "_timers")

    def __init__(self, cell: ActorCell) -> None:
        self._cell = cell
        self._timers: dict[object, asyncio.TimerHandle] = {}

    def start_single_timer(self, key: object, msg: M, delay: float) -> None:
        """Tell ``msg`` to this actor once, after ``delay`` seconds."""
        self.cancel(key)
        loop = self._cell.system.loop

        def fire() -> None:
            self._timers.pop(key, None)
            self._cell.ref.tell(msg)

        self._timers[key] = loop.call_later(delay, fire)

    def start_periodic_timer(self, key: object, msg: M, interval: float, initial_delay: float | None = None) -> None:
        """Tell ``msg`` to this actor every ``interval`` seconds (at a fixed rate)."""
        if interval <= 0:
            raise ValueError("timer interval must be > 0")
        self.cancel(key)
        loop = self._cell.system.loop
        first = interval if initial_delay is None else initial_delay
        due = loop.time() + first

        def fire() -> None:
            nonlocal due
            self._cell.ref.tell(msg)
            now = loop.time()
            due += interval
            if due < now:  # fell behind (a blocked loop): skip the missed ticks
                due = now + interval
            self._timers[key] = loop.call_at(due, fire)

        self._timers[key] = loop.call_at(due, fire)

    def is_active(self, key: object) -> bool:
        return key in self._timers

    def cancel(self, key: object) -> None:
        handle = self._timers.pop(key, None)
        if handle is not None:
            handle.cancel()

    def cancel_all(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()


class ActorContext(Generic[M]):
    """Handed to every behavior: the actor's own ref, its system, children, watches and timers."""

    __slots__ = ("_cell", "log", "timers")

    def __init__(self, cell: ActorCell) -> None:
        self._cell = cell
        self.log: logging.LoggerAdapter[logging.Logger] = logging.LoggerAdapter(
            logging.getLogger("casty.actor"), {"actor": cell.path}
        )
        self.timers: TimerScheduler[M] = TimerScheduler(cell)

    @property
    def self(self) -> ActorRef[M]:
        return self._cell.ref

    @property
    def system(self) -> ActorSystem:
        return self._cell.system

    @property
    def parent(self) -> ActorRef[Any] | None:
        parent = self._cell.parent
        return parent.ref if parent is not None else None

    @property
    def children(self) -> list[ActorRef[Any]]:
        return [c.ref for c in self._cell.children.values()]

    def child(self, name: str) -> ActorRef[Any] | None:
        cell = self._cell.children.get(name)
        return cell.ref if cell is not None else None

    def spawn(self, behavior: Behavior[C], name: str, *, mailbox: Mailbox[Any] | None = None) -> ActorRef[C]:
        """Start a child actor; it is stopped when this actor stops."""
        return self._cell.system._spawn_cell(behavior, name, self._cell, mailbox)

    def stop(self, ref: ActorRef[Any]) -> None:
        """Stop this actor or one of its children (after the message being handled, for self)."""
        self._cell.system._stop_ref(ref, requester=self._cell)

    def watch(self, ref: ActorRef[Any]) -> None:
        """Get ``Terminated(ref)`` when ``ref`` stops (or its process is lost for good)."""
        self._cell.watch(ref)

    def unwatch(self, ref: ActorRef[Any]) -> None:
        self._cell.unwatch(ref)

    @overload
    def pipe_to_self(
        self, awaitable: Awaitable[M], *, on_failure: Callable[[BaseException], M] | None = None
    ) -> None: ...

    @overload
    def pipe_to_self(
        self,
        awaitable: Awaitable[T],
        mapper: Callable[[T], M],
        on_failure: Callable[[BaseException], M] | None = None,
    ) -> None: ...

    def pipe_to_self(
        self,
        awaitable: Awaitable[Any],
        mapper: Callable[[Any], M] | None = None,
        on_failure: Callable[[BaseException], M] | None = None,
    ) -> None:
        """Await ``awaitable`` outside the actor and tell ``mapper(result)`` to self (the result
        itself without a ``mapper``).

        A failure is told as ``on_failure(exc)``; without ``on_failure`` it fails the actor
        (its supervision strategy decides what happens).
        """
        self._cell.pipe_to_self(awaitable, mapper, on_failure)

    def on_stop(self, callback: Callable[[], Awaitable[None] | None]) -> None:
        """Run ``callback()`` (sync or async) when this incarnation of the actor ends: when it
        stops, after ``post_stop``, and before a restart (``setup`` registers it again)."""
        self._cell.stop_callbacks.append(callback)

    def register_interceptor(self, interceptor: Interceptor) -> None:
        """Put ``interceptor(msg)`` in front of the handler: a message it returns True for is
        consumed and never reaches the handler. Interceptors belong to the current incarnation
        (a restart drops them; ``setup`` registers them again)."""
        self._cell.add_interceptor(interceptor)

    def schedule_once(self, delay: float, msg: M) -> asyncio.TimerHandle:
        """Tell ``msg`` to self after ``delay`` seconds; the handle cancels it."""
        ref = self._cell.ref
        return self._cell.system.loop.call_later(delay, ref.tell, msg)

    async def ask(
        self, ref: ActorRef[Any], factory: Callable[[ActorRef[R]], Any], timeout: float | None = None
    ) -> R:
        return await self._cell.system.ask(ref, factory, timeout=timeout)

    async def ask_or_none(
        self, ref: ActorRef[Any], factory: Callable[[ActorRef[R]], Any], timeout: float | None = None
    ) -> R | None:
        """Like :meth:`ask`, but None when no reply arrives in time."""
        return await self._cell.system.ask_or_none(ref, factory, timeout=timeout)
