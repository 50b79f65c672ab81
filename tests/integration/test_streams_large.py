"""Large stream elements between two actor systems of one process (real sockets), and in one system.

A run of elements travels as one frame; the transport splits a run that does not fit in
``[remote] max_frame_size`` into runs that do, so large elements put back-to-back arrive
complete and in order. A single element that cannot fit fails the stream clearly
(:class:`~casty.ElementTooLarge` at the producer, :class:`~casty.StreamFailed` at the consumer)
while other traffic on the same connection goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from casty import (
    ActorSystem,
    CastyConfig,
    ElementTooLarge,
    GetSink,
    GetSource,
    SinkRef,
    SourceRef,
    StreamFailed,
    stream_consumer,
    stream_producer,
)
from casty.remote import RemoteActorSystem

pytestmark = pytest.mark.timeout(60)

MiB = 1 << 20
LIMIT = 4 * MiB  # the default [remote] max_frame_size


def blob(i: int, size: int) -> bytes:
    """Element ``i``: its index in the first 8 bytes, then ``size - 8`` bytes that depend on it."""
    return i.to_bytes(8, "big") + bytes([i % 251]) * (size - 8)


def check_blob(x: Any, i: int, size: int) -> None:
    assert isinstance(x, bytes) and len(x) == size, f"element {i}: {type(x).__name__} of {len(x)} bytes"
    assert int.from_bytes(x[:8], "big") == i, f"element {i} arrived as element {int.from_bytes(x[:8], 'big')}"
    assert x == blob(i, size), f"element {i} arrived damaged"


def _config() -> CastyConfig:
    return CastyConfig.from_dict({"streams": {"resend_interval": 0.3}})


@asynccontextmanager
async def two_systems() -> AsyncIterator[tuple[RemoteActorSystem, RemoteActorSystem]]:
    async with RemoteActorSystem("big", config=_config()) as a, RemoteActorSystem("big", config=_config()) as b:
        yield a, b


async def remote_stream(
    a: RemoteActorSystem, b: RemoteActorSystem, name: str, **producer: Any
) -> tuple[SinkRef[bytes], SourceRef[bytes]]:
    """A producer in ``a`` and its consumer in ``b`` (every element crosses a socket)."""
    ref = a.spawn(stream_producer(**producer), name)
    sink: SinkRef[bytes] = await a.ask(ref, lambda r: GetSink(r), timeout=5)
    remote_ref = b.ref(f"casty://big@127.0.0.1:{a.port}/user/{name}")
    consumer = b.spawn(stream_consumer(remote_ref, timeout=20.0), f"{name}-in")
    source: SourceRef[bytes] = await b.ask(consumer, lambda r: GetSource(r), timeout=5)
    return sink, source


async def put_all(sink: SinkRef[bytes], count: int, size: int) -> None:
    for i in range(count):
        await sink.put(blob(i, size))
    await sink.complete()


async def receive_all(source: SourceRef[bytes], size: int) -> int:
    n = 0
    async for x in source:
        check_blob(x, n, size)
        n += 1
    return n


@pytest.mark.parametrize(
    ("count", "size"),
    [(32, MiB), (2000, 32 * 1024)],
    ids=["32 x 1 MiB", "2000 x 32 KiB"],
)
async def test_large_elements_put_back_to_back_arrive_complete_and_in_order(count: int, size: int) -> None:
    async with two_systems() as (a, b):
        sink, source = await remote_stream(a, b, "blobs", buffer_size=0)
        feeder = asyncio.create_task(put_all(sink, count, size))
        assert await asyncio.wait_for(receive_all(source, size), 45) == count
        await asyncio.wait_for(feeder, 5)


async def test_an_element_of_exactly_what_fits_with_neighbours_arrives() -> None:
    # elements just under the limit each, put back-to-back: every frame carries one of them
    size = LIMIT - 4096
    async with two_systems() as (a, b):
        sink, source = await remote_stream(a, b, "edge", buffer_size=0)
        feeder = asyncio.create_task(put_all(sink, 3, size))
        assert await asyncio.wait_for(receive_all(source, size), 45) == 3
        await asyncio.wait_for(feeder, 5)


async def test_an_element_over_the_frame_limit_fails_the_stream_and_nothing_else() -> None:
    async with two_systems() as (a, b):
        sink, source = await remote_stream(a, b, "huge")
        # a second stream and asks on the same connection must not suffer
        other_sink, other_source = await remote_stream(a, b, "neighbour")
        for i in range(3):
            await sink.put(blob(i, 1024))
        await sink.put(blob(3, 5 * MiB))
        got: list[bytes] = []
        with pytest.raises(StreamFailed) as info:
            async with asyncio.timeout(10):
                async for x in source:
                    got.append(x)
        assert [int.from_bytes(x[:8], "big") for x in got] == [0, 1, 2]  # the elements before it arrived
        assert info.value.cause_type == "ElementTooLarge"
        text = str(info.value)
        assert "element 3" in text and str(LIMIT) in text and "max_frame_size" in text
        size = int(text.split(" encodes to ")[1].split(" bytes")[0])
        assert size > 5 * MiB
        # the producer learned it first (the consumer's failure came from it): its next put
        # (or complete) raises the same error
        with pytest.raises(ElementTooLarge) as raised:
            await asyncio.wait_for(sink.put(blob(4, 8)), 5)
        assert (raised.value.size, raised.value.limit, raised.value.seq) == (size, LIMIT, 3)
        with pytest.raises(ElementTooLarge):
            sink.complete()
        # the neighbouring stream on the same connection still works
        feeder = asyncio.create_task(put_all(other_sink, 100, 100))
        assert await asyncio.wait_for(receive_all(other_source, 100), 10) == 100
        await asyncio.wait_for(feeder, 5)


async def test_an_element_over_the_limit_put_then_complete_fails_the_consumer() -> None:
    # the case where put and complete() return before the transport sees the element
    async with two_systems() as (a, b):
        sink, source = await remote_stream(a, b, "single")
        await sink.put(blob(0, 5 * MiB))
        sink.complete()
        with pytest.raises(StreamFailed) as info:
            async with asyncio.timeout(10):
                async for _ in source:
                    raise AssertionError("nothing should arrive")
        assert info.value.cause_type == "ElementTooLarge"
        assert str(LIMIT) in str(info.value)


async def test_large_elements_within_one_system_need_no_frame() -> None:
    # a consumer in the producer's own system gets elements by reference: no frame, no limit
    async with ActorSystem("local", config=_config()) as system:
        ref = system.spawn(stream_producer(buffer_size=0), "blobs")
        sink: SinkRef[bytes] = await system.ask(ref, lambda r: GetSink(r))
        consumer = system.spawn(stream_consumer(ref), "blobs-in")
        source: SourceRef[bytes] = await system.ask(consumer, lambda r: GetSource(r))
        feeder = asyncio.create_task(put_all(sink, 32, MiB))
        assert await asyncio.wait_for(receive_all(source, MiB), 30) == 32
        await asyncio.wait_for(feeder, 5)
        ref = system.spawn(stream_producer(), "huge")
        sink = await system.ask(ref, lambda r: GetSink(r))
        consumer = system.spawn(stream_consumer(ref), "huge-in")
        source = await system.ask(consumer, lambda r: GetSource(r))
        await sink.put(blob(0, 5 * MiB))
        sink.complete()
        assert await asyncio.wait_for(receive_all(source, 5 * MiB), 10) == 1


async def test_a_plain_subscriber_gets_the_failure_of_an_element_over_the_limit() -> None:
    # a hand-written subscriber (plain protocol, one StreamElement per element) in another system
    from casty import StreamElement, StreamError, StreamSubscribe, Subscribed
    from casty.testkit import TestProbe

    async with two_systems() as (a, b):
        ref = a.spawn(stream_producer(), "plain")
        sink: SinkRef[bytes] = await a.ask(ref, lambda r: GetSink(r), timeout=5)
        probe = TestProbe(b)
        remote_ref = b.ref(f"casty://big@127.0.0.1:{a.port}/user/plain")
        remote_ref.tell(StreamSubscribe(probe.ref, demand=10))
        await probe.expect(Subscribed, timeout=5)
        await sink.put(blob(0, 100))
        await sink.put(blob(1, 5 * MiB))
        first = await probe.expect(StreamElement, timeout=5)
        assert (first.seq, first.element) == (0, blob(0, 100))
        error = await probe.expect(StreamError, timeout=5)
        assert (error.cause_type, error.total) == ("ElementTooLarge", 1)
        assert str(LIMIT) in error.cause_message
        with pytest.raises(ElementTooLarge):
            await asyncio.wait_for(sink.put(blob(2, 8)), 5)
