"""Hand-written subscribers across processes, written as a casty 0.21 program writes them: every
element exactly once and in order, and the producer holds no more than its buffer plus the demand
outstanding. Both directions: the subscriber here and the producer in a node, and the reverse."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from casty import (
    ActorContext,
    ActorRef,
    Behavior,
    Behaviors,
    GetSink,
    SinkRef,
    StreamCompleted,
    StreamDemand,
    StreamElement,
    StreamSubscribe,
    stream_producer,
)
from casty.config import CastyConfig
from casty.remote import RemoteActorSystem
from casty.testkit import TestProbe
from tests.multiprocess.test_streams_remote import NODE, config_dict, control_of, node_args, write_config
from tests.procs import NodeProcess
from tests.stream_app import (
    GetProducerStats,
    ProducerDone,
    ProducerStats,
    Started,
    StartPlainSubscriber,
    StartProducer,
    SubscriberReport,
)

pytestmark = pytest.mark.timeout(90)


def subscriber(producer: ActorRef[Any], demand: int, delay: float, done: asyncio.Future[list[int]]) -> Behavior[Any]:
    """The 0.21 way: subscribe with a demand, take elements one by one, ask for more in batches."""

    async def setup(ctx: ActorContext[Any]) -> Behavior[Any]:
        producer.tell(StreamSubscribe(ctx.self, demand=demand))
        got: list[int] = []
        taken = 0

        async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
            nonlocal taken
            match msg:
                case StreamElement(element=element):
                    got.append(element)
                    if delay:
                        await asyncio.sleep(delay)
                    taken += 1
                    if taken == demand:
                        taken = 0
                        producer.tell(StreamDemand(demand))
                case StreamCompleted():
                    if not done.done():
                        done.set_result(got)
            return Behaviors.same()

        return Behaviors.receive(receive)

    return Behaviors.setup(setup)


@pytest.mark.parametrize(
    ("count", "buffer_size", "demand", "delay"),
    [(20_000, 64, 32, 0.0), (1_000, 16, 4, 0.002)],
    ids=["fast", "slow"],
)
async def test_a_hand_written_subscriber_here_and_a_producer_in_a_node(
    tmp_path: Path, count: int, buffer_size: int, demand: int, delay: float
) -> None:
    cfg = config_dict()
    async with (
        NodeProcess(NODE, *node_args(write_config(tmp_path, cfg))) as node,
        RemoteActorSystem("test", config=CastyConfig.from_dict(cfg)) as system,
    ):
        probe = TestProbe(system)
        control = control_of(system, node.port)
        control.tell(StartProducer("numbers", count, probe.ref, buffer_size=buffer_size))
        producer = (await probe.expect(Started, timeout=10)).ref
        done: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        system.spawn(subscriber(producer, demand, delay, done), "subscriber")
        got = await asyncio.wait_for(done, 60)
        assert got == list(range(count)), "elements lost, duplicated or out of order"
        finished = await probe.expect(ProducerDone, timeout=10)
        assert (finished.put, finished.outcome) == (count, "completed")
        stats: ProducerStats = await system.ask(control, lambda r: GetProducerStats("numbers", r), timeout=5)
        assert stats.unacked == 0 and stats.buffered == 0, stats
        assert stats.max_held <= buffer_size + demand, stats


@pytest.mark.parametrize(
    ("count", "buffer_size", "demand", "delay"),
    [(20_000, 64, 32, 0.0), (1_000, 16, 4, 0.002)],
    ids=["fast", "slow"],
)
async def test_a_hand_written_subscriber_in_a_node_and_a_producer_here(
    tmp_path: Path, count: int, buffer_size: int, demand: int, delay: float
) -> None:
    cfg = config_dict()
    async with (
        NodeProcess(NODE, *node_args(write_config(tmp_path, cfg))) as node,
        RemoteActorSystem("test", config=CastyConfig.from_dict(cfg)) as system,
    ):
        probe = TestProbe(system)
        producer = system.spawn(stream_producer(buffer_size=buffer_size), "numbers")
        sink: SinkRef[int] = await system.ask(producer, lambda r: GetSink(r), timeout=5)
        control_of(system, node.port).tell(StartPlainSubscriber(producer, probe.ref, demand, delay))
        await probe.expect(Started, timeout=10)
        most = 0
        for i in range(count):
            await sink.put(i)
            core = sink._core
            assert not core.unacked, "a plain subscriber's elements are never kept for resending"
            most = max(most, len(core.buffer))
        sink.complete()
        report = await probe.expect(SubscriberReport, timeout=60)
        assert report == SubscriberReport(count, 0, count - 1, True)
        assert most <= buffer_size + demand
