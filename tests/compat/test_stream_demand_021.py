"""Programs written for casty 0.21: ``StreamDemand(n)`` and ``StreamCancel()`` told to a
``stream_consumer`` are forwarded to its producer, here across real sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from casty import (
    ActorRef,
    GetSink,
    GetSource,
    RemoteActorSystem,
    SinkRef,
    SourceRef,
    StreamCancel,
    StreamCancelled,
    StreamDemand,
    stream_consumer,
    stream_producer,
)
from tests.conftest import eventually

pytestmark = pytest.mark.timeout(60)


@dataclass
class Stream:
    producer_node: RemoteActorSystem
    producer: ActorRef[Any]
    sink: SinkRef[int]
    consumer: ActorRef[Any]
    source: SourceRef[int]


@asynccontextmanager
async def remote_stream(initial_demand: int) -> AsyncIterator[Stream]:
    """A producer on one node, its consumer on another, connected over TCP."""
    async with RemoteActorSystem("streams", port=0) as a, RemoteActorSystem("streams", port=0) as b:
        local_producer = b.spawn(stream_producer(), "producer")
        sink: SinkRef[int] = await b.ask(local_producer, lambda r: GetSink(r), timeout=5.0)
        producer = a.ref(local_producer.address.to_uri())
        assert not producer.is_local
        consumer = a.spawn(stream_consumer(producer, timeout=20.0, initial_demand=initial_demand), "consumer")
        source: SourceRef[int] = await a.ask(consumer, lambda r: GetSource(r), timeout=5.0)
        yield Stream(b, local_producer, sink, consumer, source)


async def test_a_demand_told_to_the_consumer_lets_exactly_n_more_elements_flow() -> None:
    async with remote_stream(initial_demand=4) as s:
        for i in range(20):
            await s.sink.put(i)
        # nobody iterates: only the consumer's own window arrives
        await eventually(lambda: len(s.source) == 4, timeout=10, what="the initial window")
        await eventually(lambda: s.source.stats().demand == 0, timeout=10, what="the window filled")
        assert len(s.source) == 4

        s.consumer.tell(StreamDemand(5))
        await eventually(lambda: len(s.source) == 9, timeout=10, what="five more elements")
        # the demand is used up: the consumer has granted no more than the 4 + 5 it holds, and the
        # producer's bookkeeping agrees (what it may still send is 0)
        await eventually(lambda: s.source.stats().demand == 0, timeout=10, what="the granted demand used")
        await eventually(lambda: s.sink.stats().demand == 0, timeout=10, what="the producer's demand used")
        assert len(s.source) == 9

        s.consumer.tell(StreamDemand(2))
        await eventually(lambda: len(s.source) == 11, timeout=10, what="two more elements")

        await s.sink.complete()
        # consuming the rest: every element exactly once, in order, the window resuming its top-ups
        received = [x async for x in s.source]
        assert received == list(range(20))


async def test_a_demand_before_anything_arrived_and_a_refused_demand() -> None:
    async with remote_stream(initial_demand=2) as s:
        s.consumer.tell(StreamDemand(3))  # possibly before the subscription is confirmed
        s.consumer.tell(StreamDemand(0))  # refused with a warning; the stream goes on
        for i in range(10):
            await s.sink.put(i)
        await eventually(lambda: len(s.source) == 5, timeout=10, what="window plus the told demand")
        await s.sink.complete()
        assert [x async for x in s.source] == list(range(10))


async def test_a_cancel_told_to_the_consumer_cancels_the_producer() -> None:
    async with remote_stream(initial_demand=4) as s:
        await s.sink.put(0)
        iterator = s.source.__aiter__()
        assert await asyncio.wait_for(iterator.__anext__(), 10) == 0

        s.consumer.tell(StreamCancel())
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(iterator.__anext__(), 10)
        await eventually(lambda: s.sink.closed, timeout=10, what="the producer cancelled")
        with pytest.raises(StreamCancelled):
            await s.sink.put(1)
        await eventually(lambda: s.producer_node.lookup("producer") is None, timeout=10, what="the producer stopped")
