"""Hand-written subscribers, written as a casty 0.21 program writes them: ``Subscribe(consumer,
demand=n)``, then ``StreamDemand(n)`` as elements are consumed, matching on ``StreamElement`` and
``StreamCompleted``. Each element must arrive exactly once and in order, and the producer must hold
no more than its buffer plus the demand outstanding."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from casty import ActorRef, ActorSystem, Behavior, Behaviors, CastyConfig
from casty.actors.context import ActorContext
from casty.config import StreamsConfig
from casty.streams import (
    GetSink,
    GetSource,
    SinkRef,
    SourceRef,
    StreamCancel,
    StreamCompleted,
    StreamDemand,
    StreamElement,
    Subscribe,
    stream_consumer,
    stream_producer,
)

pytestmark = pytest.mark.timeout(60)


@dataclass
class Received:
    elements: list[Any] = field(default_factory=list)
    completed: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)


def subscriber(producer: ActorRef[Any], demand: int, got: Received, delay: float = 0.0) -> Behavior[Any]:
    """The 0.21 way: subscribe with a demand, take elements one by one, ask for more in batches."""

    async def setup(ctx: ActorContext[Any]) -> Behavior[Any]:
        producer.tell(Subscribe(ctx.self, demand=demand))
        taken = 0

        async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
            nonlocal taken
            match msg:
                case StreamElement(element=element):
                    got.elements.append(element)
                    if delay:
                        await asyncio.sleep(delay)
                    taken += 1
                    if taken == demand:
                        taken = 0
                        producer.tell(StreamDemand(demand))
                case StreamCompleted():
                    got.completed = True
                    got.done.set()
            return Behaviors.same()

        return Behaviors.receive(receive)

    return Behaviors.setup(setup)


def held(sink: SinkRef[Any]) -> tuple[int, int]:
    """What the producer keeps: (buffered, sent but kept for resending)."""
    core = sink._core
    return len(core.buffer), len(core.unacked)


@pytest.mark.parametrize(
    ("count", "buffer_size", "demand", "delay"),
    [(20_000, 64, 16, 0.0), (20_000, 16, 1, 0.0), (600, 8, 4, 0.002)],
    ids=["batched", "one-by-one", "slow"],
)
async def test_a_hand_written_subscriber_gets_every_element_once_in_order(
    count: int, buffer_size: int, demand: int, delay: float
) -> None:
    async with ActorSystem("plain") as system:
        producer = system.spawn(stream_producer(buffer_size=buffer_size), "producer")
        sink: SinkRef[int] = await system.ask(producer, lambda r: GetSink(r))
        got = Received()
        system.spawn(subscriber(producer, demand, got, delay), "subscriber")
        most = 0
        for i in range(count):
            await sink.put(i)
            buffered, kept = held(sink)
            assert kept == 0, "a plain subscriber's elements are never kept for resending"
            most = max(most, buffered + kept)
        sink.complete()
        await asyncio.wait_for(got.done.wait(), 30)
        assert got.elements == list(range(count))
        assert got.completed
        assert most <= buffer_size + demand
        # the stream is over for the producer once the end was sent: it stopped, holding nothing
        await asyncio.wait_for(asyncio.shield(producer._target.stopped), 5)  # type: ignore[attr-defined]
        assert held(sink) == (0, 0)


async def test_nothing_beyond_the_demand_is_sent_and_nothing_is_resent() -> None:
    async with ActorSystem("exact", CastyConfig(streams=StreamsConfig(resend_interval=0.1))) as system:
        producer = system.spawn(stream_producer(buffer_size=0), "producer")  # 0: unbounded
        sink: SinkRef[int] = await system.ask(producer, lambda r: GetSink(r))
        for i in range(100):
            assert sink.offer(i)
        elements: list[int] = []
        arrived = asyncio.Event()

        async def setup(ctx: ActorContext[Any]) -> Behavior[Any]:
            producer.tell(Subscribe(ctx.self, demand=10))

            async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
                if isinstance(msg, StreamElement):
                    elements.append(msg.element)
                    arrived.set()
                return Behaviors.same()

            return Behaviors.receive(receive)

        system.spawn(Behaviors.setup(setup), "subscriber")
        while len(elements) < 10:
            arrived.clear()
            await asyncio.wait_for(arrived.wait(), 5)
        # longer than the resend interval: nothing more may come without demand
        await asyncio.sleep(system.config.streams.resend_interval * 1.5)
        assert elements == list(range(10))
        assert held(sink) == (90, 0)
        producer.tell(StreamDemand(5))
        while len(elements) < 15:
            arrived.clear()
            await asyncio.wait_for(arrived.wait(), 5)
        assert elements == list(range(15))
        producer.tell(StreamCancel())
        await asyncio.wait_for(asyncio.shield(producer._target.stopped), 5)  # type: ignore[attr-defined]


async def test_the_0_21_constructors_and_field_names() -> None:
    async with ActorSystem("forms") as system:
        ref = system.spawn(Behaviors.ignore(), "x")
        assert Subscribe(ref, demand=16) == Subscribe(consumer=ref, requested_total=16) == Subscribe(ref, 16)
        assert Subscribe(ref).demand == 0 and Subscribe(ref, demand=5).requested_total == 5
        assert not Subscribe(ref, demand=5).reliable
        with pytest.raises(TypeError):
            Subscribe(ref, demand=1, requested_total=2)
        assert StreamDemand(3).n == 3 and StreamElement("e").element == "e"
        assert StreamCompleted() == StreamCompleted() and StreamCancel() == StreamCancel()
        with pytest.raises(ValueError):
            stream_producer(buffer_size=-1)
        with pytest.raises(TypeError):
            stream_consumer(ref, 30.0)  # type: ignore[call-arg]
        stream_consumer(ref, timeout=30.0, initial_demand=16)


async def test_the_consumer_forwards_stream_cancel_and_demand_to_its_producer() -> None:
    async with ActorSystem("forward") as system:
        producer = system.spawn(stream_producer(), "producer")
        sink: SinkRef[int] = await system.ask(producer, lambda r: GetSink(r))
        consumer = system.spawn(stream_consumer(producer, initial_demand=4), "consumer")
        source: SourceRef[int] = await system.ask(consumer, lambda r: GetSource(r))
        for i in range(3):
            await sink.put(i)
        it = source.__aiter__()
        assert [await it.__anext__() for _ in range(3)] == [0, 1, 2]
        consumer.tell(StreamDemand(8))  # eight more elements upstream; the stream goes on
        await sink.put(3)
        assert await it.__anext__() == 3
        consumer.tell(StreamCancel())
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(it.__anext__(), 5)
        await asyncio.wait_for(asyncio.shield(producer._target.stopped), 5)  # type: ignore[attr-defined]
        assert sink.closed
