"""Streams between processes: ordering, completion, failure, process loss, refusal, memory bound,
and a stream that survives a network cut repeatedly (through a fault-injecting proxy).

The node processes run ``tests.stream_node``: a ``control`` actor that starts producers and
consumers on request (see ``tests.stream_app``).  The test process is a RemoteActorSystem of
its own and plays the other end of each stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from casty import (
    ActorContext,
    ActorRef,
    Behavior,
    Behaviors,
    GetSink,
    GetSource,
    SinkRef,
    SourceRef,
    StreamCancelled,
    StreamFailed,
    StreamTimeoutError,
    Terminated,
    stream_consumer,
    stream_producer,
)
from casty.config import CastyConfig
from casty.remote import RemoteActorSystem
from casty.testkit import TestProbe
from tests.chaos_proxy import ChaosProxy
from tests.procs import NodeProcess
from tests.stream_app import (
    ConsumerReport,
    GetProducerStats,
    ProducerDone,
    ProducerStats,
    StartConsumer,
    Started,
    StartProducer,
)

pytestmark = pytest.mark.timeout(90)

NODE = "tests.stream_node"


# -- configuration --------------------------------------------------------------------------------


def config_dict(**sections: dict[str, Any]) -> dict[str, Any]:
    """Fast reconnects and failure detection, short resend interval; ``sections`` override."""
    data: dict[str, Any] = {
        "remote": {
            "reconnect_backoff_min": 0.01,
            "reconnect_backoff_max": 0.2,
            "give_up_after": 1.0,
            "handshake_timeout": 1.0,
            "connect_timeout": 1.0,
        },
        "streams": {"resend_interval": 0.2},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return data


def to_toml(data: dict[str, Any]) -> str:
    lines: list[str] = []
    for section, values in data.items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            lines.append(f"{key} = {str(value).lower() if isinstance(value, bool) else repr(value)}")
    return "\n".join(lines) + "\n"


def write_config(tmp_path: Path, data: dict[str, Any], name: str = "casty.toml") -> str:
    path = tmp_path / name
    path.write_text(to_toml(data))
    return str(path)


def node_args(config_path: str, *extra: str) -> tuple[str, ...]:
    return ("--name", "test", "--config", config_path, *extra)


def control_of(system: RemoteActorSystem, port: int) -> ActorRef[Any]:
    return system.ref(f"casty://test@127.0.0.1:{port}/user/control")


# -- helpers ------------------------------------------------------------------------------------------


async def start_remote_producer(
    system: RemoteActorSystem, port: int, probe: TestProbe, name: str, count: int, **options: Any
) -> ActorRef[Any]:
    control_of(system, port).tell(StartProducer(name, count, probe.ref, **options))
    started = await probe.expect(Started, timeout=10)
    assert not started.ref.is_local
    return started.ref


async def local_source(system: RemoteActorSystem, producer: ActorRef[Any], name: str, **options: Any) -> SourceRef[int]:
    consumer = system.spawn(stream_consumer(producer, **options), name)
    source: SourceRef[int] = await system.ask(consumer, lambda r: GetSource(r), timeout=5)
    return source


async def local_sink(
    system: RemoteActorSystem, name: str, buffer_size: int | None = None
) -> tuple[ActorRef[Any], SinkRef[int]]:
    producer = system.spawn(stream_producer(buffer_size), name)
    sink: SinkRef[int] = await system.ask(producer, lambda r: GetSink(r), timeout=5)
    return producer, sink


async def check_sequence(source: SourceRef[int], progress: dict[str, int] | None = None) -> int:
    """Consume ``source``; every element must equal its position. Returns the count."""
    count = 0
    async for x in source:
        assert x == count, f"element {count} is {x}: the stream is out of order, duplicated or lossy"
        count += 1
        if progress is not None:
            progress["count"] = count
    return count


def watcher(target: ActorRef[Any], notify: ActorRef[Any]) -> Behavior[Any]:
    """Watch ``target`` and forward its Terminated to ``notify``."""

    async def setup(ctx: ActorContext[Any]) -> Behavior[Any]:
        ctx.watch(target)

        async def receive(ctx: ActorContext[Any], msg: Any) -> None:
            if isinstance(msg, Terminated):
                notify.tell(msg)

        return Behaviors.receive(receive)

    return Behaviors.setup(setup)


class Credit:
    """How far a test lets a stream go: ``wait(n)`` returns once element ``n`` is allowed."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._raised = asyncio.Event()

    def grant(self, n: int) -> None:
        self.limit += n
        self._raised.set()

    def open(self) -> None:
        self.grant(1 << 62)

    async def wait(self, n: int) -> None:
        while n >= self.limit:
            self._raised.clear()
            await self._raised.wait()


class Feeder:
    """Puts 0, 1, 2, ... into a sink from a task; ``reached(n)`` waits for n puts; with a
    ``credit``, element ``i`` is put only once the credit allows it."""

    def __init__(
        self, sink: SinkRef[int], count: int, fail_with: BaseException | None = None, credit: Credit | None = None
    ) -> None:
        self.sink = sink
        self.count = count
        self.fail_with = fail_with
        self.credit = credit
        self.put = 0
        self._progress = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        for i in range(self.count):
            if self.credit is not None and i >= self.credit.limit:
                await self.credit.wait(i)
            await self.sink.put(i)
            self.put = i + 1
            if i & 255 == 0:
                self._progress.set()
        if self.fail_with is not None:
            await self.sink.fail(self.fail_with)
        else:
            await self.sink.complete()
        self._progress.set()

    async def reached(self, n: int, timeout: float = 20.0) -> None:
        async def until() -> None:
            while self.put < n:
                if self.task.done():
                    self.task.result()
                    raise AssertionError(f"the feeder ended after {self.put} puts")
                self._progress.clear()
                await self._progress.wait()

        await asyncio.wait_for(until(), timeout)


def diagnose(
    system: RemoteActorSystem,
    source: SourceRef[Any] | None,
    sink: SinkRef[Any] | None,
    proxies: tuple[ChaosProxy, ...],
    events: list[Any],
) -> str:
    """The state of the streams, associations and proxies, for an assertion message."""
    lines = [f"events: {events}"]
    for p in proxies:
        lines.append(f"proxy :{p.port} -> :{p.target_port}: {p.stats()}")
    transport = system.transport
    if transport is not None:
        for assoc in transport.associations.values():
            conn = assoc.conn
            lines.append(
                f"{assoc!r} conn={conn and conn.state} queue={len(assoc.queue)} dialing={assoc.dialing is not None} "
                f"retry={assoc.retry_handle is not None} watches={ {k: len(v) for k, v in assoc.watches.items()} }"
            )
    if source is not None:
        core = source._core
        lines.append(
            f"consumer: {core.window!r} subscribed={core.subscribed} outcome={core.outcome} "
            f"queued={len(core.queue)} pending_terminal={core.pending_terminal} tick={core.tick_handle is not None}"
        )
    if sink is not None:
        pcore = sink._core
        lines.append(
            f"producer: {pcore.ledger!r} buffered={len(pcore.buffer)} unacked={len(pcore.unacked)} "
            f"closed={pcore.closed_reason} terminal_sent={pcore.terminal_sent} resend_armed={pcore.resend_handle is not None}"
        )
    return "\n".join(lines)


@contextlib.asynccontextmanager
async def system_with(config: dict[str, Any], **kwargs: Any) -> AsyncIterator[RemoteActorSystem]:
    system = RemoteActorSystem("test", config=CastyConfig.from_dict(config), **kwargs)
    async with system:
        yield system


# -- ordering, exactly once ------------------------------------------------------------------------------

N = 100_000


async def test_100k_elements_from_a_node_producer_arrive_in_order_exactly_once(tmp_path: Path) -> None:
    cfg = config_dict()
    async with NodeProcess(NODE, *node_args(write_config(tmp_path, cfg))) as node, system_with(cfg) as system:
        probe = TestProbe(system)
        producer = await start_remote_producer(system, node.port, probe, "numbers", N)
        source = await local_source(system, producer, "numbers-in")
        assert await asyncio.wait_for(check_sequence(source), 60) == N
        done = await probe.expect(ProducerDone, timeout=10)
        assert (done.put, done.outcome) == (N, "completed")


async def test_100k_elements_to_a_node_consumer_arrive_in_order_exactly_once(tmp_path: Path) -> None:
    cfg = config_dict()
    async with NodeProcess(NODE, *node_args(write_config(tmp_path, cfg))) as node, system_with(cfg) as system:
        probe = TestProbe(system)
        producer, sink = await local_sink(system, "numbers-out")
        control_of(system, node.port).tell(StartConsumer(producer, probe.ref))
        await probe.expect(Started, timeout=10)
        feeder = Feeder(sink, N)
        report = await probe.expect(ConsumerReport, timeout=60)
        await asyncio.wait_for(feeder.task, 5)
        assert report == ConsumerReport(N, N * (N - 1) // 2, 0, N - 1, "completed")


# -- completion and failure ------------------------------------------------------------------------------


async def test_completion_comes_after_the_last_element_and_failure_carries_its_cause(tmp_path: Path) -> None:
    cfg = config_dict()
    async with NodeProcess(NODE, *node_args(write_config(tmp_path, cfg))) as node, system_with(cfg) as system:
        probe = TestProbe(system)
        # node -> us: a short stream completes right after its last element
        producer = await start_remote_producer(system, node.port, probe, "short", 3)
        source = await local_source(system, producer, "short-in")
        assert [x async for x in source] == [0, 1, 2]
        assert source.done
        assert (await probe.expect(ProducerDone, timeout=10)).outcome == "completed"

        # node -> us: sink.fail(ValueError("x")) after 1000 elements
        producer = await start_remote_producer(system, node.port, probe, "failing", 1000, fail_with="x")
        source = await local_source(system, producer, "failing-in")
        got: list[int] = []
        with pytest.raises(StreamFailed) as info:
            async for x in source:
                got.append(x)
        assert got == list(range(1000))  # the failure is delivered after every element before it
        assert (info.value.cause_type, info.value.cause_message) == ("ValueError", "x")
        assert "ValueError: x" in str(info.value)
        assert (await probe.expect(ProducerDone, timeout=10)).outcome == "failed"

        # us -> node: the same failure, seen by a consumer in the node process
        local_producer, sink = await local_sink(system, "failing-out")
        control_of(system, node.port).tell(StartConsumer(local_producer, probe.ref, name="failing-consumer"))
        await probe.expect(Started, timeout=10)
        feeder = Feeder(sink, 1000, fail_with=ValueError("x"))
        report = await probe.expect(ConsumerReport, timeout=20)
        await asyncio.wait_for(feeder.task, 5)
        assert (report.count, report.violations, report.last) == (1000, 0, 999)
        assert (report.outcome, report.cause_type, report.cause_message) == ("StreamFailed", "ValueError", "x")


# -- process loss --------------------------------------------------------------------------------------------


async def test_producer_process_killed_mid_stream_fails_the_consumer_promptly(tmp_path: Path) -> None:
    cfg = config_dict(remote={"give_up_after": 1.0}, streams={"timeout": 60.0})
    async with NodeProcess(NODE, *node_args(write_config(tmp_path, cfg))) as node, system_with(cfg) as system:
        probe = TestProbe(system)
        producer = await start_remote_producer(system, node.port, probe, "endless", 10**12)
        source = await local_source(system, producer, "endless-in")
        loop = asyncio.get_running_loop()
        count = 0
        killed_at = 0.0
        with pytest.raises(StreamFailed) as info:
            async for x in source:
                assert x == count
                count += 1
                if count == 20_000:
                    await node.kill()  # SIGKILL: no goodbye on the wire
                    killed_at = loop.time()
        elapsed = loop.time() - killed_at
        assert killed_at > 0, "the stream failed before the producer was killed"
        # the death watch noticed the lost node (not the 60 s stream timeout)
        assert info.value.cause_type == "Terminated"
        assert elapsed < 15.0, f"the consumer noticed the lost producer only after {elapsed:.1f}s"


async def test_consumer_process_killed_mid_stream_stops_the_producer_and_cancels_put(tmp_path: Path) -> None:
    cfg = config_dict(remote={"give_up_after": 1.0})
    async with NodeProcess(NODE, *node_args(write_config(tmp_path, cfg))) as node, system_with(cfg) as system:
        probe = TestProbe(system)
        producer, sink = await local_sink(system, "to-doomed", buffer_size=256)
        deaths = TestProbe(system)
        system.spawn(watcher(producer, deaths.ref), "producer-watcher")
        control_of(system, node.port).tell(StartConsumer(producer, probe.ref, name="doomed"))
        await probe.expect(Started, timeout=10)
        feeder = Feeder(sink, 10**12)
        await feeder.reached(20_000)
        loop = asyncio.get_running_loop()
        await node.kill()
        killed_at = loop.time()
        # the feeder's pending put (the buffer fills without demand) raises StreamCancelled
        with pytest.raises(StreamCancelled):
            await asyncio.wait_for(feeder.task, 20)
        elapsed = loop.time() - killed_at
        assert elapsed < 15.0, f"the producer noticed the lost consumer only after {elapsed:.1f}s"
        assert sink.closed
        terminated = await deaths.expect(Terminated, timeout=10)
        assert terminated.ref == producer
        with pytest.raises(StreamCancelled):
            await sink.put(-1)


# -- a single subscriber ------------------------------------------------------------------------------------


async def test_a_second_subscriber_from_another_process_is_refused(tmp_path: Path) -> None:
    cfg = config_dict()
    config_path = write_config(tmp_path, cfg)
    async with (
        NodeProcess(NODE, *node_args(config_path)) as node1,
        NodeProcess(NODE, *node_args(config_path)) as node2,
        system_with(cfg) as system,
    ):
        probe = TestProbe(system)
        producer = await start_remote_producer(system, node1.port, probe, "single", 50_000)
        source = await local_source(system, producer, "first-subscriber")
        elements = aiter(source)
        assert await anext(elements) == 0  # our subscription is in place

        # node2 -> node1: refused, with a reason that says why
        other = TestProbe(system)
        control_of(system, node2.port).tell(StartConsumer(producer, other.ref, name="second-subscriber"))
        await other.expect(Started, timeout=10)
        report = await other.expect(ConsumerReport, timeout=20)
        assert (report.outcome, report.cause_type, report.count) == ("StreamFailed", "SubscriptionRefused", 0)
        assert "single subscriber" in report.cause_message
        assert "refused" in report.message

        # the first subscriber is undisturbed
        count = 1
        async for x in elements:
            assert x == count
            count += 1
        assert count == 50_000
        assert (await probe.expect(ProducerDone, timeout=10)).outcome == "completed"


# -- memory bound -------------------------------------------------------------------------------------------


async def test_slow_consumer_bounds_what_a_remote_producer_holds(tmp_path: Path) -> None:
    buffer_size, window, count = 64, 128, 4000
    cfg = config_dict()
    async with NodeProcess(NODE, *node_args(write_config(tmp_path, cfg))) as node, system_with(cfg) as system:
        probe = TestProbe(system)
        producer = await start_remote_producer(system, node.port, probe, "bounded", count, buffer_size=buffer_size)
        source = await local_source(system, producer, "slow", initial_demand=window)
        control = control_of(system, node.port)
        samples: list[ProducerStats] = []
        received = 0
        async for x in source:
            assert x == received
            received += 1
            if received % 16 == 0:
                await asyncio.sleep(0.001)  # a slow consumer
            if received % 500 == 0:
                samples.append(await system.ask(control, lambda r: GetProducerStats("bounded", r), timeout=5))
        assert received == count
        final: ProducerStats = await system.ask(control, lambda r: GetProducerStats("bounded", r), timeout=5)
        assert final.capacity == buffer_size and final.put == count
        for s in samples:
            assert s.buffered <= buffer_size and s.unacked <= window, s
            assert s.buffered + s.unacked <= buffer_size + window, s
        # the producer outran the consumer: its buffer was full while it waited for demand
        assert any(s.buffered == buffer_size for s in samples), samples
        assert buffer_size <= final.max_held <= buffer_size + window, final


async def test_a_subscription_lost_in_a_blackhole_is_retried(tmp_path: Path) -> None:
    """The Subscribe (and everything else) vanishes on an open connection; once the blackhole
    lifts, the consumer's retried subscription gets the whole stream."""
    cfg = config_dict(remote={"give_up_after": 5.0})
    async with ChaosProxy("127.0.0.1", 0) as to_node:
        args = node_args(write_config(tmp_path, cfg), "--port", str(to_node.port), "--bind-port", "0")
        async with NodeProcess(NODE, *args) as node, system_with(cfg, listen=False, kind="client") as system:
            to_node.target_port = int(node.info["bind_port"])
            probe = TestProbe(system)
            producer = await start_remote_producer(system, node.port, probe, "late", 5000)
            to_node.blackhole(True)
            source = await local_source(system, producer, "late-in")
            await to_node.wait_for(lambda p: p.bytes_dropped > 0)
            to_node.blackhole(False)
            assert to_node.aborted == 1
            assert await asyncio.wait_for(check_sequence(source), 30) == 5000
            assert (await probe.expect(ProducerDone, timeout=10)).outcome == "completed"


# -- a partition: the connection stays open, nothing gets through -----------------------------------------


async def test_a_partitioned_producer_fails_the_consumer_with_a_timeout(tmp_path: Path) -> None:
    """A blackhole that never lifts (a partition, or a host that vanished without a reset): no
    connection is lost, so only the consumer's stream timeout can end its wait."""
    cfg = config_dict(remote={"give_up_after": 1.0}, streams={"timeout": 2.0, "resend_interval": 0.2})
    async with ChaosProxy("127.0.0.1", 0) as to_node:
        args = node_args(write_config(tmp_path, cfg), "--port", str(to_node.port), "--bind-port", "0")
        async with NodeProcess(NODE, *args) as node, system_with(cfg, listen=False, kind="client") as system:
            to_node.target_port = int(node.info["bind_port"])
            probe = TestProbe(system)
            producer = await start_remote_producer(system, node.port, probe, "partitioned", 10**12)
            source = await local_source(system, producer, "partitioned-in")
            loop = asyncio.get_running_loop()
            cut_off_at = 0.0

            async def consume() -> BaseException | None:
                nonlocal cut_off_at
                count = 0
                try:
                    async for x in source:
                        assert x == count
                        count += 1
                        if count == 5000:
                            to_node.blackhole(True)
                            cut_off_at = loop.time()
                except StreamTimeoutError as exc:
                    return exc
                return None

            try:
                outcome = await asyncio.wait_for(consume(), 10.0)
            except TimeoutError:
                core = source._core
                raise AssertionError(
                    f"no StreamTimeoutError {loop.time() - cut_off_at:.1f}s into the partition (stream timeout 2 s): "
                    f"{core.window!r}, last heard {loop.time() - core.last_heard:.1f}s ago, "
                    f"last sent {loop.time() - core.last_sent:.1f}s ago"
                ) from None
            finally:
                source.cancel()
            elapsed = loop.time() - cut_off_at
            assert isinstance(outcome, StreamTimeoutError), outcome
            assert cut_off_at > 0 and to_node.bytes_dropped > 0
            assert elapsed < 8.0, f"the consumer waited {elapsed:.1f}s (stream timeout 2 s)"


async def test_a_partitioned_consumer_releases_the_producer(tmp_path: Path) -> None:
    cfg = config_dict(remote={"give_up_after": 1.0}, streams={"timeout": 2.0})
    async with ChaosProxy("127.0.0.1", 0) as to_node:
        args = node_args(write_config(tmp_path, cfg), "--port", str(to_node.port), "--bind-port", "0")
        async with NodeProcess(NODE, *args) as node, system_with(cfg, listen=False, kind="client") as system:
            to_node.target_port = int(node.info["bind_port"])
            probe = TestProbe(system)
            producer, sink = await local_sink(system, "to-partitioned", buffer_size=256)
            control_of(system, node.port).tell(StartConsumer(producer, probe.ref, name="partitioned"))
            await probe.expect(Started, timeout=10)
            feeder = Feeder(sink, 10**12)
            await feeder.reached(5000)
            to_node.blackhole(True)
            # the consumer's side gave up after its 2 s timeout; the producer should follow
            # within a bound of the same order (give_up_after 1 s, stream timeout 2 s)
            try:
                await asyncio.wait_for(asyncio.shield(feeder.task), 8.0)
            except StreamCancelled:
                pass
            except TimeoutError:
                raise AssertionError(
                    f"after 8 s of partition the producer still waits: {feeder.put} put, "
                    f"sink closed={sink.closed}, buffered={len(sink)}"
                ) from None
            finally:
                feeder.task.cancel()
            assert sink.closed


# -- network faults: a stream through a proxy that cuts and blackholes ------------------------------------------

CHAOS_N = 200_000
CUTS = 8


async def test_streams_survive_repeated_cuts_and_a_blackhole_both_directions(tmp_path: Path) -> None:
    """Both ends advertise a ChaosProxy, so every connection between them crosses one (a dial in
    either direction).  While a stream runs each way, the test cuts both proxies 8 times
    100-300 ms apart, blackholes them for 0.6 s (less than give_up_after), cuts once more and
    refuses reconnects for 0.5 s, then cuts twice more.  The streams advance by credit, a slice
    of 1/16 of each stream per fault, so no stream ends before the chaos does and most faults
    hit elements in flight."""
    cfg = config_dict(remote={"give_up_after": 5.0}, streams={"timeout": 60.0})
    rng = random.Random(20240611)
    loop = asyncio.get_running_loop()
    async with ChaosProxy("127.0.0.1", 0) as to_node, ChaosProxy("127.0.0.1", 0) as to_us:
        args = node_args(write_config(tmp_path, cfg), "--port", str(to_node.port), "--bind-port", "0")
        async with (
            NodeProcess(NODE, *args) as node,
            system_with(cfg, port=to_us.port, bind_port=0) as system,
        ):
            assert node.port == to_node.port and node.info["bind_port"] != to_node.port
            to_node.target_port = int(node.info["bind_port"])
            assert system.transport is not None and system.port == to_us.port
            to_us.target_port = system.transport.bind_port
            probe = TestProbe(system)
            # each fault gets a fresh slice of both streams to hit, and no stream can end early
            step = CHAOS_N // 16
            credit_in, credit_out = Credit(step), Credit(step)

            # node -> us
            producer = await start_remote_producer(system, node.port, probe, "chaos-down", CHAOS_N)
            source = await local_source(system, producer, "chaos-down-in")
            inbound = {"count": 0}
            inbound_started = asyncio.Event()
            inbound_progress = asyncio.Event()

            async def consume() -> int:
                count = 0
                async for x in source:
                    assert x == count, f"element {count} is {x}"
                    count += 1
                    inbound["count"] = count
                    if count & 255 == 0:
                        inbound_progress.set()
                    if count == 1000:
                        inbound_started.set()
                    if count >= credit_in.limit:
                        await credit_in.wait(count)
                return count

            consuming = loop.create_task(consume())

            # us -> node
            out_producer, sink = await local_sink(system, "chaos-up")
            deaths = TestProbe(system)
            system.spawn(watcher(out_producer, deaths.ref), "chaos-up-watcher")
            reports = TestProbe(system)
            control_of(system, node.port).tell(StartConsumer(out_producer, reports.ref, name="chaos-up-in"))
            await reports.expect(Started, timeout=10)
            feeder = Feeder(sink, CHAOS_N, credit=credit_out)

            await asyncio.wait_for(inbound_started.wait(), 20)
            await feeder.reached(5000)
            proxies = (to_node, to_us)
            progress: list[tuple[str, int, int, int]] = []

            def cut_all(label: str) -> int:
                cut = sum(p.cut() for p in proxies)
                progress.append((label, cut, inbound["count"], feeder.put))
                return cut

            def grant() -> None:
                credit_in.grant(step)
                credit_out.grant(step)

            async def both_flowing() -> None:
                grant()
                start_in, start_out = inbound["count"], feeder.put

                async def flowing() -> None:
                    while inbound["count"] < start_in + 2000:
                        inbound_progress.clear()
                        await inbound_progress.wait()
                    await feeder.reached(start_out + 2000)

                try:
                    await asyncio.wait_for(flowing(), 20)
                except TimeoutError:
                    raise AssertionError(
                        f"the streams stopped: in {start_in}->{inbound['count']}, out {start_out}->{feeder.put}\n"
                        + diagnose(system, source, sink, proxies, progress)
                    ) from None

            cut_connections = 0
            for i in range(CUTS):
                grant()
                await asyncio.sleep(rng.uniform(0.1, 0.3))
                cut_connections += cut_all(f"cut {i}")
            # a blackhole shorter than give_up_after, once both streams flow again over a
            # re-established connection: it stays up while the bytes vanish
            await both_flowing()
            for p in proxies:
                p.blackhole(True)
            dropped_before = sum(p.bytes_dropped for p in proxies)
            await asyncio.sleep(0.6)
            dropped = sum(p.bytes_dropped for p in proxies) - dropped_before
            for p in proxies:
                p.blackhole(False)  # resets the connections that lost bytes
            # a cut followed by 0.5 s of refused reconnects (less than give_up_after)
            await both_flowing()
            for p in proxies:
                p.drop_new(True)
            cut_connections += cut_all("cut, then refuse")
            await asyncio.sleep(0.5)
            for p in proxies:
                p.drop_new(False)
            refused = sum(p.refused for p in proxies)
            for i in range(2):
                grant()
                await asyncio.sleep(rng.uniform(0.1, 0.3))
                cut_connections += cut_all(f"late cut {i}")
            credit_in.open()
            credit_out.open()

            count = await asyncio.wait_for(consuming, 60)
            report = await reports.expect(ConsumerReport, timeout=60)
            await asyncio.wait_for(feeder.task, 10)
            stats = [p.stats() for p in proxies]
            print(f"chaos: {progress}, dropped={dropped}, refused={refused}, proxies={stats}")
            assert count == CHAOS_N
            assert report == ConsumerReport(CHAOS_N, CHAOS_N * (CHAOS_N - 1) // 2, 0, CHAOS_N - 1, "completed")
            assert (await probe.expect(ProducerDone, timeout=10)).outcome == "completed"
            # the completion was acknowledged: our producer stopped
            assert (await deaths.expect(Terminated, timeout=10)).ref == out_producer
            # the faults really hit live connections
            assert cut_connections >= CUTS // 2, progress
            assert dropped > 1000, "the blackhole hit an idle connection"
            assert refused > 0, "no reconnect was refused"
            assert sum(p.accepted for p in proxies) > CUTS // 2
