"""The streams of one actor system, for draining it.

Every producer and consumer actor registers here while it runs. :func:`drain_streams` is the
streams' part of a node's drain: from then on no producer of the system accepts a new element
(``put`` raises :class:`~casty.errors.DrainingError`) or a new subscription, each producer that
streams to a consumer completes its stream once the consumer acknowledged everything it had
accepted, a producer nobody subscribed to is closed (its buffer cannot be delivered), and the
call returns once every producer and consumer of the system has stopped, or at the deadline.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from casty.actors.system import ActorSystem

__all__ = ["DrainOutcome", "StreamRegistry", "begin_drain", "drain_streams", "registry_of"]

log = logging.getLogger("casty.streams")


class _Drainable(Protocol):
    def drain(self, reason: str) -> None: ...


class StreamRegistry:
    """The running producers and consumers of one system, and whether it drains."""

    __slots__ = ("_changed", "consumers", "draining", "producers")

    def __init__(self) -> None:
        self.producers: set[_Drainable] = set()
        self.consumers: set[object] = set()
        self.draining: str | None = None
        """Why the system drains (None while it does not)."""
        self._changed: asyncio.Event | None = None

    def add_producer(self, core: _Drainable) -> None:
        self.producers.add(core)
        if self.draining is not None:
            core.drain(self.draining)

    def add_consumer(self, core: object) -> None:
        self.consumers.add(core)

    def remove(self, core: Any) -> None:
        self.producers.discard(core)
        self.consumers.discard(core)
        changed = self._changed
        if changed is not None:
            changed.set()

    async def wait_empty(self, group: set[Any], deadline: float) -> bool:
        """Wait until ``group`` (``producers`` or ``consumers``) is empty: True, or until the
        loop time ``deadline``: False."""
        loop = asyncio.get_running_loop()
        while group:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            changed = self._changed = asyncio.Event()
            try:
                async with asyncio.timeout(remaining):
                    await changed.wait()
            except TimeoutError:
                pass
        return True


_registries: weakref.WeakKeyDictionary[Any, StreamRegistry] = weakref.WeakKeyDictionary()


def registry_of(system: ActorSystem) -> StreamRegistry:
    """The stream registry of ``system`` (created on first use)."""
    found = _registries.get(system)
    if found is None:
        found = StreamRegistry()
        _registries[system] = found
    return found


@dataclass(frozen=True)
class DrainOutcome:
    """What a drain of the streams achieved."""

    producers: int
    """Producers running when the drain began."""
    consumers: int
    """Consumers running when the drain began."""
    unfinished: int
    """Producers and consumers still running at the deadline (stopped by the shutdown)."""


def begin_drain(system: ActorSystem, reason: str = "the node is draining") -> None:
    """From now on the producers of ``system`` accept no new element or subscription and
    complete their streams after what they accepted (idempotent)."""
    registry = registry_of(system)
    if registry.draining is None:
        registry.draining = reason
        for core in list(registry.producers):
            core.drain(reason)


async def drain_streams(system: ActorSystem, deadline: float, reason: str = "the node is draining") -> DrainOutcome:
    """Drain the streams of ``system`` until the loop time ``deadline`` (see the module doc)."""
    registry = registry_of(system)
    producers, consumers = len(registry.producers), len(registry.consumers)
    begin_drain(system, reason)
    await registry.wait_empty(registry.producers, deadline)
    await registry.wait_empty(registry.consumers, deadline)
    unfinished = len(registry.producers) + len(registry.consumers)
    if unfinished:
        log.warning(
            "drain deadline reached with %d producers and %d consumers still streaming; they are stopped",
            len(registry.producers),
            len(registry.consumers),
        )
    return DrainOutcome(producers, consumers, unfinished)
