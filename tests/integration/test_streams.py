"""Backpressured streams: ordering, credit, resend, completion, failure, cancellation, timeouts."""

from __future__ import annotations

import asyncio
import pickle
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from casty import ActorRef, ActorSystem, Behavior, Behaviors, CastyConfig, ServiceKey, Terminated
from casty.actors.context import ActorContext
from casty.actors.events import DeadLetter, EventStreamSubscribe
from casty.config import StreamsConfig
from casty.errors import StreamCancelled, StreamFailed, StreamTimeoutError
from casty.streams import (
    CompleteStream,
    FailStream,
    GetSink,
    GetSource,
    Push,
    SinkRef,
    SourceRef,
    StreamCancel,
    StreamCompleted,
    StreamConsumerMsg,
    StreamDemand,
    StreamElement,
    StreamError,
    StreamProducerMsg,
    Subscribe,
    Subscribed,
    SubscriptionRefused,
    stream_consumer,
    stream_producer,
)
from casty.testkit import TestProbe

pytestmark = pytest.mark.timeout(60)


@dataclass(frozen=True)
class Reading:
    sensor: str
    value: int


def _config(**streams: Any) -> CastyConfig:
    return CastyConfig(streams=StreamsConfig(**streams))


async def _stopped(ref: ActorRef[Any]) -> None:
    """Wait until a local actor stopped (shielded: a timeout must not cancel the cell's future)."""
    await asyncio.shield(ref._target.stopped)  # type: ignore[attr-defined]


async def _until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Await a condition that has no event of its own to await."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.001)


async def _pipeline(
    system: ActorSystem,
    name: str = "s",
    *,
    buffer_size: int | None = None,
    timeout: float | None = None,
    initial_demand: int | None = None,
) -> tuple[ActorRef[Any], SinkRef[Any], ActorRef[Any], SourceRef[Any]]:
    producer = system.spawn(stream_producer(buffer_size), f"{name}-producer")
    sink: SinkRef[Any] = await system.ask(producer, lambda r: GetSink(reply_to=r), timeout=5.0)
    consumer = system.spawn(
        stream_consumer(producer, timeout=timeout, initial_demand=initial_demand), f"{name}-consumer"
    )
    source: SourceRef[Any] = await system.ask(consumer, lambda r: GetSource(reply_to=r), timeout=5.0)
    return producer, sink, consumer, source


async def _feed(sink: SinkRef[Any], items: Any, *, complete: bool = True) -> None:
    for item in items:
        await sink.put(item)
    if complete:
        await sink.complete()


# -- the guide's flow ------------------------------------------------------------------------


async def test_guide_flow_with_discoverable_producer() -> None:
    key: ServiceKey[StreamProducerMsg[Reading]] = ServiceKey("sensor")
    async with ActorSystem("guide") as system:
        producer_ref = system.spawn(Behaviors.discoverable(stream_producer(), key=key), "sensor-temp")
        sink: SinkRef[Reading] = await system.ask(producer_ref, lambda r: GetSink(reply_to=r), timeout=5.0)
        readings = [Reading("temp", i) for i in range(20)]
        for reading in readings:
            await sink.put(reading)  # nobody subscribed yet: buffered
        await sink.complete()
        listing = await system.lookup(key)
        assert listing.refs == (producer_ref,)
        consumer_ref = system.spawn(stream_consumer(listing.refs[0], timeout=10.0), "consumer")
        source: SourceRef[Reading] = await system.ask(consumer_ref, lambda r: GetSource(reply_to=r), timeout=5.0)
        got = [x async for x in source]
        assert got == readings
        await asyncio.wait_for(_stopped(producer_ref), 5)
        await asyncio.wait_for(_stopped(consumer_ref), 5)


async def test_ordered_delivery_of_100k_elements_and_completion_after_the_last() -> None:
    n = 100_000
    async with ActorSystem("order") as system:
        producer, sink, _consumer, source = await _pipeline(system)
        feeder = asyncio.create_task(_feed(sink, range(n)))
        expected = 0
        async for x in source:
            assert x == expected
            expected += 1
        assert expected == n
        assert source.done
        await feeder
        await asyncio.wait_for(_stopped(producer), 5)


async def test_get_sink_and_get_source_answer_the_same_handles_every_time() -> None:
    async with ActorSystem("handles") as system:
        producer, sink, consumer, source = await _pipeline(system)
        for _ in range(3):
            assert await system.ask(producer, lambda r: GetSink(reply_to=r)) is sink
            assert await system.ask(consumer, lambda r: GetSource(reply_to=r)) is source
        assert sink.producer == producer
        assert source.consumer == consumer


async def test_handles_refuse_pickling() -> None:
    async with ActorSystem("pickle") as system:
        _, sink, _, source = await _pipeline(system)
        for handle in (sink, source):
            with pytest.raises(TypeError, match="local"):
                pickle.dumps(handle)
        source.cancel()


# -- credit -----------------------------------------------------------------------------------


def _raw_consumer(
    producer: ActorRef[Any],
    total: int,
    grant: int,
    result: asyncio.Future[dict[str, int]],
    cumulative: bool,
) -> Behavior[Any]:
    """A hand-written consumer speaking the raw protocol; it checks credit on every element."""

    async def setup(ctx: ActorContext[Any]) -> Behavior[Any]:
        state = {"granted": 0, "received": 0, "violations": 0, "out_of_order": 0, "demands": 0}

        def demand() -> None:
            state["granted"] += grant
            state["demands"] += 1
            if cumulative:
                producer.tell(StreamDemand(grant, state["granted"], state["received"]))
            else:
                producer.tell(StreamDemand(grant))

        producer.tell(Subscribe(ctx.self))

        async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any] | None:
            if isinstance(msg, Subscribed):
                demand()
            elif isinstance(msg, StreamElement):
                if msg.seq != state["received"]:
                    state["out_of_order"] += 1
                state["received"] += 1
                if state["received"] > state["granted"]:
                    state["violations"] += 1
                if state["received"] == state["granted"] and state["granted"] < total:
                    demand()
            elif isinstance(msg, StreamCompleted):
                state["total"] = msg.total
                producer.tell(StreamCancel("done"))
                if not result.done():
                    result.set_result(dict(state))
            return None

        return Behaviors.receive(receive)

    return Behaviors.setup(setup)


@pytest.mark.parametrize("cumulative", [False, True], ids=["plain", "cumulative"])
async def test_in_flight_never_exceeds_demand(cumulative: bool) -> None:
    total, grant = 2_000, 7
    async with ActorSystem("credit") as system:
        producer = system.spawn(stream_producer(64), "producer")
        sink: SinkRef[int] = await system.ask(producer, lambda r: GetSink(reply_to=r))
        result: asyncio.Future[dict[str, int]] = system.loop.create_future()
        system.spawn(_raw_consumer(producer, total, grant, result, cumulative), "raw")
        await _feed(sink, range(total))
        state = await asyncio.wait_for(result, 20)
        assert state["violations"] == 0
        assert state["out_of_order"] == 0
        assert state["received"] == total == state["total"]
        await asyncio.wait_for(_stopped(producer), 5)


async def test_producer_waits_for_demand() -> None:
    async with ActorSystem("wait") as system:
        producer = system.spawn(stream_producer(100), "producer")
        sink: SinkRef[int] = await system.ask(producer, lambda r: GetSink(reply_to=r))
        probe = TestProbe(system)
        producer.tell(Subscribe(probe.ref))
        await probe.expect(Subscribed)
        await _feed(sink, range(50), complete=False)
        await probe.expect_no_message(0.05)  # no demand yet: nothing may be sent
        producer.tell(StreamDemand(3))
        got = [await probe.expect(StreamElement) for _ in range(3)]
        assert [(e.element, e.seq) for e in got] == [(0, 0), (1, 1), (2, 2)]
        await probe.expect_no_message(0.05)
        assert len(sink) == 47
        producer.tell(StreamCancel())
        await asyncio.wait_for(_stopped(producer), 5)


# -- a relay between producer and consumer: counting, losing, duplicating, reordering ---------


@dataclass
class RelayStats:
    demands: int = 0
    elements: int = 0
    dropped_elements: int = 0
    duplicated_elements: int = 0
    reordered_elements: int = 0
    dropped_demands: int = 0
    dropped_terminals: int = 0


def _relay(
    producer: ActorRef[Any],
    stats: RelayStats,
    *,
    seed: int = 0,
    drop: float = 0.0,
    duplicate: float = 0.0,
    reorder: float = 0.0,
    drop_demand: float = 0.0,
    drop_terminals: int = 0,
) -> Behavior[Any]:
    """Stands between a consumer and ``producer``, forwarding the stream protocol both ways."""
    rng = random.Random(seed)

    async def setup(ctx: ActorContext[Any]) -> Behavior[Any]:
        consumer: list[ActorRef[Any]] = []
        held: list[Any] = []
        terminals_to_drop = [drop_terminals]

        def release() -> None:
            while held:
                consumer[0].tell(held.pop())

        async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any] | None:
            if isinstance(msg, Subscribe):
                consumer[:] = [msg.consumer]
                # keep the consumer's extensions: it acknowledges, and the producer resends
                producer.tell(Subscribe(ctx.self, msg.requested_total, reliable=msg.reliable))
            elif isinstance(msg, StreamDemand):
                stats.demands += 1
                if rng.random() < drop_demand:
                    stats.dropped_demands += 1
                else:
                    producer.tell(msg)
            elif isinstance(msg, StreamCancel):
                producer.tell(msg)
            elif isinstance(msg, StreamElement):
                stats.elements += 1
                r = rng.random()
                if r < drop:
                    stats.dropped_elements += 1
                elif r < drop + duplicate:
                    stats.duplicated_elements += 1
                    consumer[0].tell(msg)
                    consumer[0].tell(msg)
                    release()
                elif r < drop + duplicate + reorder and not held:
                    stats.reordered_elements += 1
                    held.append(msg)  # overtaken by the next element
                else:
                    consumer[0].tell(msg)
                    release()
            elif isinstance(msg, (StreamCompleted, StreamError)):
                if terminals_to_drop[0] > 0:
                    terminals_to_drop[0] -= 1
                    stats.dropped_terminals += 1
                else:
                    consumer[0].tell(msg)
            elif isinstance(msg, Terminated):
                return None
            elif consumer:
                consumer[0].tell(msg)
            return None

        return Behaviors.receive(receive)

    return Behaviors.setup(setup)


async def test_demand_messages_are_sent_per_half_window() -> None:
    total, window = 20_000, 200
    stats = RelayStats()
    async with ActorSystem("batches", _config(resend_interval=30.0)) as system:
        producer = system.spawn(stream_producer(), "producer")
        sink: SinkRef[int] = await system.ask(producer, lambda r: GetSink(reply_to=r))
        relay = system.spawn(_relay(producer, stats), "relay")
        consumer = system.spawn(stream_consumer(relay, initial_demand=window), "consumer")
        source: SourceRef[int] = await system.ask(consumer, lambda r: GetSource(reply_to=r))
        feeder = asyncio.create_task(_feed(sink, range(total)))
        assert [x async for x in source] == list(range(total))
        await feeder
    expected = total / (window // 2)
    assert expected - 2 <= stats.demands <= expected + 5, stats
    assert stats.elements == total


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_lost_duplicated_and_reordered_messages_are_repaired_by_resend(seed: int) -> None:
    total = 3_000
    stats = RelayStats()
    async with ActorSystem("lossy", _config(resend_interval=0.02)) as system:
        producer = system.spawn(stream_producer(50), "producer")
        sink: SinkRef[int] = await system.ask(producer, lambda r: GetSink(reply_to=r))
        relay = system.spawn(
            _relay(
                producer,
                stats,
                seed=seed,
                drop=0.03,
                duplicate=0.03,
                reorder=0.03,
                drop_demand=0.2,
                drop_terminals=1,
            ),
            "relay",
        )
        consumer = system.spawn(stream_consumer(relay, initial_demand=64, timeout=10.0), "consumer")
        source: SourceRef[int] = await system.ask(consumer, lambda r: GetSource(reply_to=r))
        feeder = asyncio.create_task(_feed(sink, range(total)))
        got = [x async for x in source]
        await feeder
        assert got == list(range(total))  # every element exactly once, in order
        await asyncio.wait_for(_stopped(producer), 5)
    assert stats.dropped_elements > 10 and stats.duplicated_elements > 10 and stats.reordered_elements > 10
    assert stats.dropped_demands > 3 and stats.dropped_terminals == 1


async def test_lost_failure_signal_is_resent_and_waits_for_missing_elements() -> None:
    stats = RelayStats()
    async with ActorSystem("lossy-fail", _config(resend_interval=0.02)) as system:
        producer = system.spawn(stream_producer(), "producer")
        sink: SinkRef[int] = await system.ask(producer, lambda r: GetSink(reply_to=r))
        relay = system.spawn(_relay(producer, stats, seed=5, drop=0.2, drop_terminals=2), "relay")
        consumer = system.spawn(stream_consumer(relay, initial_demand=16), "consumer")
        source: SourceRef[int] = await system.ask(consumer, lambda r: GetSource(reply_to=r))
        await _feed(sink, range(100), complete=False)
        await sink.fail(ValueError("sensor broke"))
        got: list[int] = []
        with pytest.raises(StreamFailed) as info:
            async for x in source:
                got.append(x)
        assert got == list(range(100))
        assert info.value.cause_type == "ValueError"
        assert info.value.cause_message == "sensor broke"


# -- memory stays bounded with a slow consumer ----------------------------------------------------


async def test_slow_consumer_keeps_producer_memory_bounded() -> None:
    buffer_size, window = 16, 32
    async with ActorSystem("slow") as system:
        _producer, sink, _consumer, source = await _pipeline(system, buffer_size=buffer_size, initial_demand=window)
        core = sink._core  # the producer's state, shared with its SinkRef
        peak = 0
        puts_done = 0

        async def feed() -> None:
            nonlocal puts_done, peak
            for i in range(1_000):
                await sink.put(i)
                puts_done += 1
                peak = max(peak, core.ledger.unacked() + len(core.buffer))
            await sink.complete()

        feeder = asyncio.create_task(feed())
        n = 0
        async for x in source:
            assert x == n
            n += 1
            peak = max(peak, core.ledger.unacked() + len(core.buffer))
            assert puts_done <= n + buffer_size + window  # the feeder is held back
            if n % 10 == 0:
                await asyncio.sleep(0.001)  # a slow consumer
        await feeder
        assert n == 1_000
        assert 0 < peak <= buffer_size + window


# -- completion, failure, cancellation ---------------------------------------------------------


async def test_fail_raises_stream_failed_with_the_cause() -> None:
    async with ActorSystem("fail") as system:
        producer, sink, _consumer, source = await _pipeline(system)
        await _feed(sink, range(5), complete=False)
        await sink.fail(RuntimeError("disk on fire"))
        got: list[int] = []
        with pytest.raises(StreamFailed) as info:
            async for x in source:
                got.append(x)
        assert got == [0, 1, 2, 3, 4]
        assert info.value.cause_type == "RuntimeError"
        assert info.value.cause_message == "disk on fire"
        assert "disk on fire" in str(info.value)
        with pytest.raises(StreamCancelled):
            await sink.put(99)
        await asyncio.wait_for(_stopped(producer), 5)


async def test_producer_stop_fails_the_stream_promptly() -> None:
    async with ActorSystem("pstop") as system:
        producer, sink, _consumer, source = await _pipeline(system, timeout=30.0)
        await _feed(sink, range(3), complete=False)
        it = aiter(source)
        assert [await anext(it) for _ in range(3)] == [0, 1, 2]
        system.stop(producer)
        with pytest.raises(StreamFailed, match="terminated"):
            await asyncio.wait_for(anext(it), 5)  # far below the 30s stream timeout


async def test_consumer_stop_stops_the_producer_and_releases_a_pending_put() -> None:
    async with ActorSystem("cstop") as system:
        producer, sink, consumer, source = await _pipeline(system, buffer_size=4, initial_demand=4)
        await _feed(sink, range(8), complete=False)  # 4 sent (the demand), 4 buffered
        core = sink._core
        await _until(lambda: core.ledger.unacked() == 4)  # the first 4 elements were sent
        assert len(core.buffer) == 4
        pending = asyncio.create_task(sink.put(8))
        await asyncio.sleep(0)
        assert not pending.done()  # the buffer is full
        await system.stop(consumer)
        with pytest.raises(StreamCancelled, match="stopped"):
            await asyncio.wait_for(pending, 5)
        await asyncio.wait_for(_stopped(producer), 5)
        assert len(core.buffer) == 0 and len(core.unacked) == 0
        with pytest.raises(StreamCancelled):
            await sink.put(9)
        with pytest.raises(StreamCancelled, match="stopped"):
            async for _ in source:
                pass


async def test_break_cancels_upstream() -> None:
    async with ActorSystem("break") as system:
        producer, sink, consumer, source = await _pipeline(system, buffer_size=8, initial_demand=8)
        feeder = asyncio.create_task(_feed(sink, range(1_000)))
        async for x in source:
            if x == 20:
                break
        with pytest.raises(StreamCancelled, match="cancelled"):
            await asyncio.wait_for(feeder, 5)
        await asyncio.wait_for(_stopped(producer), 5)
        await asyncio.wait_for(_stopped(consumer), 5)


async def test_explicit_cancel_sends_stream_cancel() -> None:
    async with ActorSystem("cancel") as system:
        probe = TestProbe(system)  # plays the producer
        consumer = system.spawn(stream_consumer(probe.ref), "consumer")
        source: SourceRef[int] = await system.ask(consumer, lambda r: GetSource(reply_to=r))
        sub = await probe.expect(Subscribe)
        assert sub.consumer == consumer and sub.requested_total == 1024
        sub.consumer.tell(Subscribed(probe.ref))
        sub.consumer.tell(StreamElement(7, 0))
        it = aiter(source)
        assert await anext(it) == 7
        source.cancel()
        cancel = await probe.expect(StreamCancel)
        assert "cancel" in cancel.reason
        with pytest.raises(StopAsyncIteration):
            await anext(it)
        assert [x async for x in source] == []
        await asyncio.wait_for(_stopped(consumer), 5)


async def test_unconfirmed_consumer_never_cancels_someone_elses_stream() -> None:
    async with ActorSystem("unconfirmed") as system:
        probe = TestProbe(system)  # a producer that never answers
        consumer = system.spawn(stream_consumer(probe.ref, timeout=0.1), "consumer")
        source: SourceRef[int] = await system.ask(consumer, lambda r: GetSource(reply_to=r))
        await probe.expect(Subscribe)
        with pytest.raises(StreamTimeoutError):
            async for _ in source:
                pass
        await asyncio.wait_for(_stopped(consumer), 5)
        while probe.pending():
            assert not isinstance(await probe.receive(), StreamCancel)


async def test_timeout_without_subscription_confirmation() -> None:
    async with ActorSystem("timeout") as system:
        silent = system.spawn(Behaviors.ignore(), "silent")
        consumer = system.spawn(stream_consumer(silent, timeout=0.2), "consumer")
        source: SourceRef[int] = await system.ask(consumer, lambda r: GetSource(reply_to=r))
        with pytest.raises(StreamTimeoutError, match="subscription") as info:
            async for _ in source:
                pass
        assert isinstance(info.value, TimeoutError)


async def test_timeout_when_no_element_arrives() -> None:
    async with ActorSystem("idle") as system:
        producer, sink, _consumer, source = await _pipeline(system, timeout=0.3)
        await sink.put(1)
        got: list[int] = []
        with pytest.raises(StreamTimeoutError, match="element"):
            async for x in source:
                got.append(x)
        assert got == [1]
        await asyncio.wait_for(_stopped(producer), 5)  # the timeout cancelled the stream


async def test_second_subscriber_is_refused() -> None:
    async with ActorSystem("second") as system:
        producer, sink, _consumer, source = await _pipeline(system)
        other = system.spawn(stream_consumer(producer, timeout=5.0), "other")
        other_source: SourceRef[int] = await system.ask(other, lambda r: GetSource(reply_to=r))
        with pytest.raises(StreamFailed, match="refused") as info:
            async for _ in other_source:
                pass
        assert info.value.cause_type == "SubscriptionRefused"
        assert "single subscriber" in info.value.cause_message
        # the first subscription is untouched
        await _feed(sink, range(10))
        assert [x async for x in source] == list(range(10))


async def test_batches() -> None:
    async with ActorSystem("batches") as system:
        producer, sink, _consumer, source = await _pipeline(system, initial_demand=128)
        await _feed(sink, range(100))
        await asyncio.wait_for(_stopped(producer), 5)  # everything arrived and was acknowledged
        batches = [b async for b in source.batches(30)]
        assert [len(b) for b in batches] == [30, 30, 30, 10]
        assert [x for b in batches for x in b] == list(range(100))
        with pytest.raises(ValueError):
            async for _ in source.batches(0):
                pass


async def test_batches_waits_for_at_least_one_element() -> None:
    async with ActorSystem("batches-wait") as system:
        _producer, sink, _consumer, source = await _pipeline(system)
        it = aiter(source.batches(10))
        first = asyncio.create_task(anext(it))
        await asyncio.sleep(0.01)
        assert not first.done()
        await sink.put("a")
        assert await asyncio.wait_for(first, 5) == ["a"]
        await _feed(sink, ["b", "c"])
        rest = [b async for b in it]
        assert [x for b in rest for x in b] == ["b", "c"]


# -- protocol errors and feeding by message --------------------------------------------------------


async def test_zero_demand_fails_the_stream(caplog: pytest.LogCaptureFixture) -> None:
    async with ActorSystem("zero") as system:
        producer = system.spawn(stream_producer(), "producer")
        sink: SinkRef[int] = await system.ask(producer, lambda r: GetSink(reply_to=r))
        probe = TestProbe(system)
        producer.tell(Subscribe(probe.ref))
        await probe.expect(Subscribed)
        producer.tell(StreamDemand(0))
        error = await probe.expect(StreamError)
        assert error.cause_type == "ProtocolError"
        assert "positive" in error.cause_message
        await asyncio.wait_for(_stopped(producer), 5)
        with pytest.raises(StreamCancelled, match="failed"):
            await sink.put(1)
    assert sum("protocol error" in r.getMessage() for r in caplog.records) == 1


async def test_negative_demand_fails_a_real_consumer() -> None:
    async with ActorSystem("neg") as system:
        producer, _sink, _consumer, source = await _pipeline(system)
        producer.tell(StreamDemand(-5))
        with pytest.raises(StreamFailed) as info:
            async for _ in source:
                pass
        assert info.value.cause_type == "ProtocolError"


async def test_push_and_complete_stream_messages() -> None:
    async with ActorSystem("push") as system:
        producer = system.spawn(stream_producer(), "producer")
        for i in range(10):
            producer.tell(Push(i))
        producer.tell(CompleteStream())
        consumer = system.spawn(stream_consumer(producer), "consumer")
        source: SourceRef[int] = await system.ask(consumer, lambda r: GetSource(reply_to=r))
        assert [x async for x in source] == list(range(10))


async def test_fail_stream_message() -> None:
    async with ActorSystem("failmsg") as system:
        producer, _sink, _consumer, source = await _pipeline(system)
        producer.tell(Push("x"))
        producer.tell(FailStream("KeyError", "'k'"))
        got: list[str] = []
        with pytest.raises(StreamFailed) as info:
            async for x in source:
                got.append(x)
        assert got == ["x"] and info.value.cause_type == "KeyError"


async def test_push_into_a_full_buffer_is_a_dead_letter() -> None:
    async with ActorSystem("full") as system:
        probe = TestProbe(system)
        system.event_stream.tell(EventStreamSubscribe(DeadLetter, probe.ref))
        producer = system.spawn(stream_producer(2), "producer")
        for i in range(3):
            producer.tell(Push(i))
        dead = await probe.expect(DeadLetter)
        assert dead.message == Push(2)
        assert dead.reason == "stream buffer full"
        assert dead.recipient == producer


async def test_unbounded_producer_never_waits() -> None:
    async with ActorSystem("unbounded") as system:
        producer = system.spawn(stream_producer(unbounded=True), "producer")
        sink: SinkRef[int] = await system.ask(producer, lambda r: GetSink(reply_to=r))
        await _feed(sink, range(5_000))
        assert len(sink) == 5_000
        consumer = system.spawn(stream_consumer(producer), "consumer")
        source: SourceRef[int] = await system.ask(consumer, lambda r: GetSource(reply_to=r))
        assert [x async for x in source] == list(range(5_000))


# -- the messages travel ------------------------------------------------------------------------


async def test_messages_round_trip_through_the_msgpack_serde() -> None:
    serde = pytest.importorskip("casty.serde")
    async with ActorSystem("wire") as system:
        ref = system.spawn(Behaviors.ignore(), "x")
        encoder = serde.MsgpackSerializer().new_encoder(lambda r: r.uri)
        decoder = serde.MsgpackSerializer().new_decoder(lambda uri: ref)
        messages: list[Any] = [
            Subscribe(ref, 64),
            Subscribed(ref),
            SubscriptionRefused("taken"),
            StreamDemand(32, 96, 40, resend=True),
            StreamDemand(5),
            StreamElement(Reading("t", 1), 7),
            StreamCompleted(8),
            StreamError("ValueError", "bad", 8),
            StreamCancel("bye"),
            Push((1, "a")),
            CompleteStream(),
            FailStream("E", "m"),
            GetSink(ref),
            GetSource(ref),
        ]
        for msg in messages:
            assert decoder.decode(encoder.encode(msg)) == msg


def test_type_aliases_are_generic() -> None:
    producer_msg: Any = StreamProducerMsg[Reading]
    consumer_msg: Any = StreamConsumerMsg[Reading]
    assert Subscribe[Reading] in producer_msg.__args__
    assert StreamElement[Reading] in consumer_msg.__args__
