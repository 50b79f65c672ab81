"""system.drain(): what a draining node refuses, what it still delivers, and its deadline."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from casty import (
    Behaviors,
    ClusteredActorSystem,
    DrainingError,
    GetSink,
    GetSource,
    ServiceKey,
    SinkRef,
    SourceRef,
    StreamFailed,
)
from casty.streams import stream_consumer, stream_producer
from casty.streams._drain import StreamRegistry
from tests.cluster_app import fast_cluster_config
from tests.conftest import eventually


def single_node() -> ClusteredActorSystem:
    return ClusteredActorSystem(name="drain", host="127.0.0.1", port=0, config=fast_cluster_config("drain"))


async def sink_of(system: ClusteredActorSystem, name: str) -> SinkRef[int]:
    producer = system.spawn(stream_producer(), name)
    sink: SinkRef[int] = await system.ask(producer, lambda r: GetSink(reply_to=r), timeout=5.0)
    return sink


async def source_of(system: ClusteredActorSystem, sink: SinkRef[int], name: str) -> SourceRef[int]:
    consumer = system.spawn(stream_consumer(sink.producer), name)
    source: SourceRef[int] = await system.ask(consumer, lambda r: GetSource(reply_to=r), timeout=5.0)
    return source


@pytest.mark.timeout(30)
async def test_drain_delivers_what_was_accepted_and_refuses_the_rest() -> None:
    system = single_node()
    await system.start()
    try:
        await system.wait_for(1, timeout=10)
        sink = await sink_of(system, "readings")
        source = await source_of(system, sink, "reader")
        for i in range(500):
            await sink.put(i)
        orphan = await sink_of(system, "orphan")  # nobody subscribes: its buffer cannot be delivered
        await orphan.put(1)

        received: list[int] = []
        started = asyncio.Event()

        async def read() -> None:
            async for value in source:
                received.append(value)
                if len(received) == 10:
                    started.set()
                    await asyncio.sleep(0.01)

        reading = asyncio.ensure_future(read())
        await started.wait()
        system.begin_drain(timeout=10.0)
        assert system.draining
        with pytest.raises(DrainingError, match="is draining"):
            await sink.put(500)
        with pytest.raises(DrainingError):
            sink.offer(500)
        elapsed = await system.drain()
        await reading  # completed normally: the iteration ended without an error
        assert received == list(range(500))
        assert elapsed < 10.0
        await asyncio.wait_for(system.wait_for_termination(), 5)
        assert await system.drain() == elapsed  # a second call waits for the same drain
    finally:
        await system.shutdown()


@pytest.mark.timeout(30)
async def test_a_new_subscription_or_producer_is_refused_while_draining() -> None:
    system = single_node()
    await system.start()
    try:
        await system.wait_for(1, timeout=10)
        sink = await sink_of(system, "busy")
        source = await source_of(system, sink, "reader")  # a stream that never ends by itself
        await sink.put(0)
        first = asyncio.Event()
        release = asyncio.Event()
        received: list[int] = []

        async def read() -> None:
            async for value in source:
                received.append(value)
                first.set()
                await release.wait()  # the stream stays open (so does the drain) until released

        reading = asyncio.ensure_future(read())
        await first.wait()
        unsubscribed = await sink_of(system, "idle")
        key: ServiceKey[Any] = ServiceKey("readings")
        system.spawn(Behaviors.discoverable(stream_producer(), key=key), "listed")
        await eventually(lambda: len(system.listing(key).instances) == 1, what="the service listed")
        system.begin_drain(timeout=5.0)
        assert not system.listing(key).instances  # withdrawn at once
        late = await sink_of(system, "late")  # spawned during the drain
        with pytest.raises(DrainingError):
            await late.put(0)
        late_source = await source_of(system, unsubscribed, "late-reader")
        with pytest.raises(StreamFailed, match="refused"):
            async for _ in late_source:
                pass
        release.set()
        await reading  # the busy stream is completed by the drain
        assert received == [0]
        await system.drain()
    finally:
        await system.shutdown()


@pytest.mark.timeout(30)
async def test_drain_stops_what_is_unfinished_at_the_deadline() -> None:
    system = single_node()
    await system.start()
    try:
        await system.wait_for(1, timeout=10)
        sink = await sink_of(system, "readings")
        await source_of(system, sink, "never-reads")
        for i in range(2000):  # more than the consumer's window: the producer can never finish
            if not sink.offer(i):
                break
        loop = asyncio.get_running_loop()
        started = loop.time()
        elapsed = await system.drain(timeout=1.0)
        assert 0.5 <= elapsed <= 1.0 + 0.5
        assert loop.time() - started < 2.0
        await asyncio.wait_for(system.wait_for_termination(), 5)
    finally:
        await system.shutdown()


async def test_a_drain_wait_cancelled_as_a_stream_ends_is_cancelled() -> None:
    """The wait for a system's streams to end is cancelled in the very loop turn in which one of
    them ends (the race in which Python 3.11's ``asyncio.wait_for`` returns and loses the
    cancellation): the wait ends at once instead of waiting on for the other streams until its
    deadline."""
    registry = StreamRegistry()
    first, second = object(), object()
    registry.add_consumer(first)
    registry.add_consumer(second)
    loop = asyncio.get_running_loop()
    waiting = asyncio.create_task(registry.wait_empty(registry.consumers, loop.time() + 60))
    await asyncio.sleep(0)  # the wait has started
    registry.remove(first)  # wakes the wait...
    waiting.cancel()  # ...and cancels it in the same turn
    done, _ = await asyncio.wait({waiting}, timeout=5)
    assert done == {waiting} and waiting.cancelled()
