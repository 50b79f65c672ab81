"""Stream producers and consumers run inside a node process, driven by messages from a test.

Both the test process and the node processes import this module under the same name
(``tests.stream_app``), so the control messages below travel between them.  A node runs one
``control`` actor (``/user/control``) that starts producers and consumers on request:

* ``StartProducer`` spawns ``stream_producer()`` under a well-known name and feeds it the ints
  ``0 .. count-1`` through its SinkRef, then completes (or fails with ``ValueError(fail_with)``);
  it answers ``Started`` at once and ``ProducerDone`` when the feeding ended.
* ``StartConsumer`` spawns ``stream_consumer(producer)``, iterates its SourceRef and answers
  ``Started`` at once and ``ConsumerReport`` (count, sum, order violations, outcome) at the end.
* ``StartPlainSubscriber`` spawns a subscriber written as a casty 0.21 program writes one
  (``Subscribe(consumer, demand=n)``, ``StreamDemand(n)`` after every ``n`` elements taken) and
  answers ``SubscriberReport`` once the stream completed.
* ``GetProducerStats`` reports a producer's progress and the most elements it ever held
  (buffered, not sent yet + sent, not acknowledged yet): the memory a stream costs its producer.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from casty import (
    ActorContext,
    ActorRef,
    Behavior,
    Behaviors,
    CastyError,
    GetSink,
    GetSource,
    SinkRef,
    SourceRef,
    StreamCancelled,
    StreamCompleted,
    StreamDemand,
    StreamElement,
    StreamFailed,
    StreamSubscribe,
    stream_consumer,
    stream_producer,
)

# -- messages -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StartProducer:
    name: str
    count: int
    reply_to: ActorRef[Any]
    buffer_size: int = 0  # 0: the configured [streams] buffer_size
    fail_with: str = ""  # non-empty: end with sink.fail(ValueError(fail_with)) instead of complete()
    element_size: int = 0  # > 0: put blob(i, element_size) (bytes) instead of the int i


@dataclass(frozen=True)
class StartConsumer:
    producer: ActorRef[Any]
    reply_to: ActorRef[Any]
    name: str = "consumer"
    initial_demand: int = 0  # 0: the configured [streams] initial_demand
    timeout: float = 0.0  # 0: the configured [streams] timeout


@dataclass(frozen=True)
class StartPlainSubscriber:
    producer: ActorRef[Any]
    reply_to: ActorRef[Any]
    demand: int
    delay: float = 0.0  # seconds spent on each element (a slow subscriber)
    name: str = "plain-subscriber"


@dataclass(frozen=True)
class SubscriberReport:
    count: int
    violations: int  # elements that were not equal to their position (duplicates, gaps, reordering)
    last: int
    completed: bool


@dataclass(frozen=True)
class GetProducerStats:
    name: str
    reply_to: ActorRef[Any]


@dataclass(frozen=True)
class Started:
    ref: ActorRef[Any]


@dataclass(frozen=True)
class ProducerDone:
    name: str
    put: int
    outcome: str  # "completed", "failed" (sink.fail was called), "cancelled" (put raised StreamCancelled)
    # or the name of another casty error put / complete() raised (ElementTooLarge)
    detail: str = ""


@dataclass(frozen=True)
class ProducerStats:
    name: str
    put: int
    buffered: int
    unacked: int
    max_held: int
    capacity: int
    done: bool


@dataclass(frozen=True)
class ConsumerReport:
    count: int
    total: int  # sum of the elements
    violations: int  # elements that were not equal to their position (0, 1, 2, ...)
    last: int
    outcome: str  # "completed" or the name of the exception the iteration raised
    cause_type: str = ""
    cause_message: str = ""
    message: str = ""


# -- the node side ------------------------------------------------------------------------------


@dataclass
class _Producer:
    name: str
    sink: SinkRef[int]
    put: int = 0
    max_held: int = 0
    done: bool = False
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def held(self) -> int:
        # buffered + sent-but-unacknowledged: every element the producer keeps in memory.
        # Only a put makes this sum grow (sending moves an element from one part to the other),
        # so sampling it after each put sees its maximum.
        core = self.sink._core
        return len(core.buffer) + len(core.unacked)


def blob(i: int, size: int) -> bytes:
    """Element ``i`` of a stream of ``size``-byte elements: its index in the first 8 bytes, then
    ``size - 8`` bytes that depend on it (a damaged or misplaced element does not compare equal)."""
    return i.to_bytes(8, "big") + bytes([i % 251]) * (size - 8)


async def feed(
    state: _Producer, count: int, fail_with: str, reply_to: ActorRef[Any], element_size: int = 0
) -> None:
    sink = state.sink
    outcome, detail = "completed", ""
    try:
        for i in range(count):
            await sink.put(blob(i, element_size) if element_size else i)  # type: ignore[arg-type]
            state.put += 1
            held = state.held()
            if held > state.max_held:
                state.max_held = held
        if fail_with:
            await sink.fail(ValueError(fail_with))
            outcome = "failed"
        else:
            await sink.complete()
    except StreamCancelled as exc:
        outcome, detail = "cancelled", str(exc)
    except CastyError as exc:
        outcome, detail = type(exc).__name__, str(exc)
    state.done = True
    reply_to.tell(ProducerDone(state.name, state.put, outcome, detail))


async def drain(source: SourceRef[int], reply_to: ActorRef[Any]) -> None:
    count = total = violations = 0
    last = -1
    outcome, cause_type, cause_message, message = "completed", "", "", ""
    try:
        async for x in source:
            if x != count:
                violations += 1
            count += 1
            total += x
            last = x
    except StreamFailed as exc:
        outcome, cause_type, cause_message, message = type(exc).__name__, exc.cause_type, exc.cause_message, str(exc)
    except Exception as exc:
        outcome, message = type(exc).__name__, str(exc)
    reply_to.tell(ConsumerReport(count, total, violations, last, outcome, cause_type, cause_message, message))


def plain_subscriber(producer: ActorRef[Any], demand: int, delay: float, reply_to: ActorRef[Any]) -> Behavior[Any]:
    """A subscriber speaking only the plain protocol, the way a casty 0.21 program writes it."""

    async def setup(ctx: ActorContext[Any]) -> Behavior[Any]:
        producer.tell(StreamSubscribe(ctx.self, demand=demand))
        count = violations = taken = 0
        last = -1

        async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
            nonlocal count, violations, taken, last
            match msg:
                case StreamElement(element=element):
                    if element != count:
                        violations += 1
                    count += 1
                    last = element
                    if delay:
                        await asyncio.sleep(delay)
                    taken += 1
                    if taken == demand:
                        taken = 0
                        producer.tell(StreamDemand(demand))
                case StreamCompleted():
                    reply_to.tell(SubscriberReport(count, violations, last, True))
                    return Behaviors.stopped()
            return Behaviors.same()

        return Behaviors.receive(receive)

    return Behaviors.setup(setup)


def control() -> Behavior[Any]:
    async def setup(ctx: ActorContext[Any]) -> Behavior[Any]:
        producers: dict[str, _Producer] = {}
        tasks: set[asyncio.Task[None]] = set()

        def run(coro: Any) -> asyncio.Task[None]:
            task = asyncio.get_running_loop().create_task(coro)
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            return task

        async def receive(ctx: ActorContext[Any], msg: Any) -> None:
            if isinstance(msg, StartProducer):
                ref = ctx.system.spawn(stream_producer(msg.buffer_size or None), msg.name)
                sink: SinkRef[int] = await ctx.system.ask(ref, lambda r: GetSink(r), timeout=10)
                if len(producers) >= 256:
                    # keep the stats of recent producers only (a soak run starts thousands)
                    for name in [n for n, p in producers.items() if p.done][: len(producers) - 255]:
                        del producers[name]
                state = producers[msg.name] = _Producer(msg.name, sink)
                state.task = run(feed(state, msg.count, msg.fail_with, msg.reply_to, msg.element_size))
                msg.reply_to.tell(Started(ref))
            elif isinstance(msg, StartConsumer):
                consumer = ctx.system.spawn(
                    stream_consumer(
                        msg.producer, timeout=msg.timeout or None, initial_demand=msg.initial_demand or None
                    ),
                    msg.name,
                )
                source: SourceRef[int] = await ctx.system.ask(consumer, lambda r: GetSource(r), timeout=10)
                run(drain(source, msg.reply_to))
                msg.reply_to.tell(Started(consumer))
            elif isinstance(msg, StartPlainSubscriber):
                ref = ctx.system.spawn(plain_subscriber(msg.producer, msg.demand, msg.delay, msg.reply_to), msg.name)
                msg.reply_to.tell(Started(ref))
            elif isinstance(msg, GetProducerStats):
                state = producers[msg.name]
                core = state.sink._core
                msg.reply_to.tell(
                    ProducerStats(
                        state.name,
                        state.put,
                        len(core.buffer),
                        len(core.unacked),
                        state.max_held,
                        core.capacity,
                        state.done,
                    )
                )

        return Behaviors.receive(receive)

    return Behaviors.setup(setup)
