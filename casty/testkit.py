"""TestProbe: a ref whose messages a test can await, for asserting what actors send."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any, TypeVar

from casty.actors.ref import ActorRef
from casty.actors.system import ActorSystem

__all__ = ["TestProbe"]

T = TypeVar("T")
_ids = itertools.count(1)


class _ProbeTarget:
    __slots__ = ("queue", "watchers")
    is_local = True

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()

    def tell(self, msg: object) -> None:
        self.queue.put_nowait(msg)

    def add_watcher(self, watcher: ActorRef[Any]) -> bool:
        return False  # like an ask's reply ref: nothing to watch

    def remove_watcher(self, watcher: ActorRef[Any]) -> None:
        return None


class TestProbe:
    """Collects every message told to ``probe.ref``; ``await probe.expect(Type)`` takes the next one.

    The probe's ref is addressable from other processes like an ask's reply ref.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, system: ActorSystem, name: str | None = None) -> None:
        self.system = system
        self._target = _ProbeTarget()
        path = f"/temp/probe-{name or next(_ids)}"
        self.ref: ActorRef[Any] = system.bind_temp(path, self._target)

    async def receive(self, timeout: float = 5.0) -> Any:
        """The next message, or AssertionError after ``timeout`` seconds."""
        try:
            async with asyncio.timeout(timeout):
                return await self._target.queue.get()
        except TimeoutError:
            raise AssertionError(f"probe got no message within {timeout}s") from None

    async def expect(self, cls: type[T], timeout: float = 5.0) -> T:
        """The next message, which must be an instance of ``cls``."""
        msg = await self.receive(timeout)
        if not isinstance(msg, cls):
            raise AssertionError(f"expected {cls.__name__}, got {msg!r}")
        return msg

    async def expect_no_message(self, within: float = 0.1) -> None:
        """Assert that nothing arrives for ``within`` seconds."""
        try:
            async with asyncio.timeout(within):
                msg = await self._target.queue.get()
        except TimeoutError:
            return
        raise AssertionError(f"expected no message, got {msg!r}")

    def pending(self) -> int:
        return self._target.queue.qsize()
