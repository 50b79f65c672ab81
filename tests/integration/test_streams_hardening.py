"""Streams under misuse: abandoned puts, a flood of Push into a full buffer, a stalled stream whose
end signal keeps being repeated, and ``complete()`` called with or without ``await``."""

from __future__ import annotations

import asyncio
import gc
import random
import tracemalloc
import warnings
from typing import Any

import pytest

from casty import ActorSystem, Behavior, Behaviors, CastyConfig
from casty.actors.context import ActorContext
from casty.config import StreamsConfig
from casty.errors import StreamTimeoutError
from casty.streams import (
    GetSink,
    GetSource,
    Push,
    SinkRef,
    SourceRef,
    StreamCompleted,
    Subscribe,
    Subscribed,
    stream_consumer,
    stream_producer,
)
from tests.conftest import eventually

pytestmark = pytest.mark.timeout(60)


def _traced_bytes() -> int:
    gc.collect()
    current, _peak = tracemalloc.get_traced_memory()
    return current


async def _abandon_puts(sink: SinkRef[int], n: int) -> None:
    """``n`` puts on a full buffer abandoned by a timeout, then ``n`` cancelled by hand."""
    results = await asyncio.gather(*(asyncio.wait_for(sink.put(-1), 0.01) for _ in range(n)), return_exceptions=True)
    assert all(isinstance(r, TimeoutError) for r in results)
    tasks = [asyncio.create_task(sink.put(-1)) for _ in range(n)]
    await asyncio.sleep(0)  # every put is now waiting for room
    assert len(sink._core.put_waiters) == n
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_timed_out_and_cancelled_puts_leave_nothing_behind() -> None:
    n = 10_000
    async with ActorSystem("abandoned") as system:
        producer = system.spawn(stream_producer(4), "producer")
        sink: SinkRef[int] = await system.ask(producer, lambda r: GetSink(reply_to=r))
        for i in range(4):
            assert sink.offer(i)
        # a first round grows the event loop's and the allocator's own structures once
        await asyncio.create_task(_abandon_puts(sink, n))
        assert len(sink._core.put_waiters) == 0
        tracemalloc.start()
        try:
            before = _traced_bytes()
            await asyncio.create_task(_abandon_puts(sink, n))
            growth = _traced_bytes() - before
        finally:
            tracemalloc.stop()
        waiters = len(sink._core.put_waiters)
        print(f"\n{2 * n} abandoned puts: {waiters} waiters left, traced growth {growth} bytes")
        assert waiters == 0
        # a waiter left behind costs over 100 bytes (its future and callback): over 2 MB here
        assert growth < 256 * 1024, f"{2 * n} abandoned puts left {growth} bytes behind"
        # the stream still works: the four buffered elements, then one more put, then the end
        consumer = system.spawn(stream_consumer(producer), "consumer")
        source: SourceRef[int] = await system.ask(consumer, lambda r: GetSource(reply_to=r))
        await sink.put(4)
        sink.complete()
        assert [x async for x in source] == [0, 1, 2, 3, 4]


async def test_push_into_a_full_producer_is_counted_not_kept() -> None:
    n = 200_000
    async with ActorSystem("flood") as system:
        producer = system.spawn(stream_producer(8), "producer")
        for i in range(8):
            producer.tell(Push(i))
        sink: SinkRef[int] = await system.ask(producer, lambda r: GetSink(reply_to=r))
        assert len(sink) == 8
        tracemalloc.start()
        try:
            before = _traced_bytes()
            dead_before = system.dead_letters
            for start in range(0, n, 1000):
                for i in range(start, start + 1000):
                    producer.tell(Push(i))
                await asyncio.sleep(0)
            await eventually(lambda: system.dead_letters - dead_before == n, timeout=20)
            growth = _traced_bytes() - before
        finally:
            tracemalloc.stop()
        print(
            f"\n{n} Push into a full producer: {system.dead_letters - dead_before} dead letters, growth {growth} bytes"
        )
        assert len(sink) == 8
        # a dead letter kept (message + event) would cost well over 100 bytes each
        assert growth < 512 * 1024, f"{n} dropped Push messages left {growth} bytes behind"
        consumer = system.spawn(stream_consumer(producer), "consumer")
        source: SourceRef[int] = await system.ask(consumer, lambda r: GetSource(reply_to=r))
        sink.complete()
        assert [x async for x in source] == list(range(8))


def _stalled_producer(repeat_every: float) -> Behavior[Any]:
    """Confirms the subscription, then keeps repeating an end signal for 5 elements it never sends."""

    async def setup(ctx: ActorContext[Any]) -> Behavior[Any]:
        tasks: set[asyncio.Task[None]] = set()

        async def repeat(consumer: Any) -> None:
            while True:
                consumer.tell(StreamCompleted(5))
                await asyncio.sleep(repeat_every)

        async def receive(ctx: ActorContext[Any], msg: Any) -> None:
            if isinstance(msg, Subscribe):
                msg.consumer.tell(Subscribed(ctx.self))
                if not tasks:
                    task = asyncio.get_running_loop().create_task(repeat(msg.consumer))
                    tasks.add(task)

        async def stop(ctx: ActorContext[Any]) -> None:
            for task in tasks:
                task.cancel()

        return Behaviors.with_lifecycle(Behaviors.receive(receive), post_stop=stop)

    return Behaviors.setup(setup)


async def test_a_repeated_end_signal_does_not_keep_a_stalled_stream_alive() -> None:
    timeout = 0.4
    async with ActorSystem("stalled", CastyConfig(streams=StreamsConfig(resend_interval=0.05))) as system:
        producer = system.spawn(_stalled_producer(0.02), "producer")
        consumer = system.spawn(stream_consumer(producer, timeout=timeout), "consumer")
        source: SourceRef[int] = await system.ask(consumer, lambda r: GetSource(reply_to=r))
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(StreamTimeoutError):
            await asyncio.wait_for(_drain(source), 10 * timeout)
        # noticed within 1.25 x timeout of the last real activity, plus scheduling slack
        assert loop.time() - started < 3 * timeout
        system.stop(producer)


async def _drain(source: SourceRef[int]) -> list[int]:
    return [x async for x in source]


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("awaited", [True, False], ids=["awaited", "not-awaited"])
async def test_complete_and_fail_work_awaited_or_not(awaited: bool) -> None:
    async with ActorSystem("complete") as system:
        for ending in ("complete", "fail"):
            producer = system.spawn(stream_producer(), f"{ending}-producer")
            sink: SinkRef[int] = await system.ask(producer, lambda r: GetSink(reply_to=r))
            consumer = system.spawn(stream_consumer(producer), f"{ending}-consumer")
            source: SourceRef[int] = await system.ask(consumer, lambda r: GetSource(reply_to=r))
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                await sink.put(1)
                if ending == "complete":
                    if awaited:
                        await sink.complete()
                    else:
                        sink.complete()
                elif awaited:
                    await sink.fail(ValueError("boom"))
                else:
                    sink.fail(ValueError("boom"))
                assert sink.closed  # takes effect at once, awaited or not
                got: list[int] = []
                try:
                    async for x in source:
                        got.append(x)
                    outcome = "completed"
                except Exception as exc:
                    outcome = type(exc).__name__
                gc.collect()
            assert [str(w.message) for w in caught] == []
            assert got == [1]
            assert outcome == ("completed" if ending == "complete" else "StreamFailed")


async def test_cancel_inside_the_loop_ends_it_with_elements_still_queued() -> None:
    async with ActorSystem("midchunk") as system:
        producer = system.spawn(stream_producer(), "producer")
        sink: SinkRef[int] = await system.ask(producer, lambda r: GetSink(reply_to=r))
        consumer = system.spawn(stream_consumer(producer, initial_demand=64), "consumer")
        source: SourceRef[int] = await system.ask(consumer, lambda r: GetSource(reply_to=r))
        for i in range(50):
            await sink.put(i)
        await eventually(lambda: len(source) == 50)
        got: list[int] = []
        async for x in source:  # cancelled in the middle of a chunk of queued elements
            got.append(x)
            if x == 2:
                source.cancel()
        assert got == [0, 1, 2]
        assert source.done and len(source) == 0
        await asyncio.wait_for(asyncio.shield(producer._target.stopped), 5)  # type: ignore[attr-defined]


@pytest.mark.parametrize("seed", range(8))
async def test_iteration_tops_up_demand_at_the_same_element_as_one_update_per_element(seed: int) -> None:
    """``async for`` accounts for the elements it hands out once per chunk; demand must still go
    out when the user takes the element that brings the open demand down to window - batch."""
    rng = random.Random(seed)
    n = 5_000
    async with ActorSystem("chunks") as system:
        producer = system.spawn(stream_producer(rng.choice([4, 64, 1024])), "producer")
        sink: SinkRef[int] = await system.ask(producer, lambda r: GetSink(reply_to=r))
        window_size = rng.choice([1, 2, 3, 8, 64, 1000])
        consumer = system.spawn(stream_consumer(producer, initial_demand=window_size), "consumer")
        source: SourceRef[int] = await system.ask(consumer, lambda r: GetSource(reply_to=r))

        async def feed() -> None:
            for i in range(n):
                await sink.put(i)
                if rng.random() < 0.01:
                    await asyncio.sleep(0)
            sink.complete()

        feeder = asyncio.create_task(feed())
        window = source._core.window
        batch = window.batch
        requested = window_size  # what one window update per element would have granted so far
        taken = 0
        async for x in source:
            assert x == taken
            taken += 1
            if not source.done and requested - taken <= window_size - batch:
                requested = taken + window_size
            assert window.requested_total == requested, (window, taken)
            if rng.random() < 0.05:
                await asyncio.sleep(0)
        await feeder
        assert taken == n
