"""A stream whose other end's process dies fails fast; one whose other end goes silent resumes.

When the peer's process is gone, its connection is reset and a redial is refused: nothing of
that incarnation can come back, so streams to and from it fail within a reconnect delay
(well under 2 s on loopback) with the default configuration, in and out of a cluster. A peer
that is merely silent (a partition) is not refused, and keeps the resume-then-timeout
behaviour (see the partition tests in ``test_streams_remote`` and ``tests/faults``).
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from casty import ClusteredActorSystem, StreamCancelled, StreamFailed, Terminated
from casty.config import CastyConfig
from casty.testkit import TestProbe
from tests.chaos_proxy import ChaosProxy
from tests.multiprocess.test_streams_remote import (
    NODE,
    Feeder,
    control_of,
    local_sink,
    local_source,
    node_args,
    start_remote_producer,
    system_with,
    watcher,
    write_config,
)
from tests.procs import NodeProcess
from tests.stream_app import StartConsumer, Started

pytestmark = pytest.mark.timeout(120)

CLUSTER_NODE = "tests.stream_cluster_node"
FAST = 2.0  # seconds within which a dead peer's streams must fail


def defaults() -> dict[str, dict[str, Any]]:
    """The default configuration ([remote] give_up_after 30 s, [streams] timeout 30 s)."""
    return {"streams": {"resend_interval": 1.0}}


async def consume_until_killed(source: Any, node: NodeProcess, after: int = 20_000) -> tuple[StreamFailed, float]:
    """Consume ``source``; kill -9 ``node`` after ``after`` elements; the failure and how long it took."""
    loop = asyncio.get_running_loop()
    count = 0
    killed_at = 0.0
    with pytest.raises(StreamFailed) as info:
        async with asyncio.timeout(60):
            async for x in source:
                assert x == count
                count += 1
                if count == after:
                    await node.kill()  # SIGKILL: no goodbye on the wire
                    killed_at = loop.time()
    assert killed_at > 0, f"the stream failed after {count} elements, before the producer was killed"
    return info.value, loop.time() - killed_at


async def put_until_cancelled(system: Any, node: NodeProcess, sink: Any, producer: Any) -> float:
    """Feed ``sink`` until the remote consumer took 20,000 elements, kill -9 ``node``; the time
    until the pending put raised StreamCancelled."""
    deaths = TestProbe(system)
    system.spawn(watcher(producer, deaths.ref), "producer-watcher")
    feeder = Feeder(sink, 10**12)
    await feeder.reached(20_000)
    loop = asyncio.get_running_loop()
    await node.kill()
    killed_at = loop.time()
    with pytest.raises(StreamCancelled):
        await asyncio.wait_for(feeder.task, 40)
    elapsed = loop.time() - killed_at
    assert sink.closed
    assert (await deaths.expect(Terminated, timeout=10)).ref == producer
    return elapsed


# -- two processes, no cluster ----------------------------------------------------------------------


async def test_producer_process_killed_fails_the_consumer_within_2s(tmp_path: Path) -> None:
    cfg = defaults()
    async with NodeProcess(NODE, *node_args(write_config(tmp_path, cfg))) as node, system_with(cfg) as system:
        probe = TestProbe(system)
        producer = await start_remote_producer(system, node.port, probe, "endless", 10**12)
        source = await local_source(system, producer, "endless-in")
        failure, elapsed = await consume_until_killed(source, node)
        assert failure.cause_type == "Terminated", failure
        assert "process gone" in str(failure)
        assert elapsed < FAST, f"the consumer noticed the dead producer after {elapsed:.2f}s"


async def test_consumer_process_killed_cancels_the_pending_put_within_2s(tmp_path: Path) -> None:
    cfg = defaults()
    async with NodeProcess(NODE, *node_args(write_config(tmp_path, cfg))) as node, system_with(cfg) as system:
        probe = TestProbe(system)
        producer, sink = await local_sink(system, "to-doomed", buffer_size=256)
        control_of(system, node.port).tell(StartConsumer(producer, probe.ref, name="doomed"))
        await probe.expect(Started, timeout=10)
        elapsed = await put_until_cancelled(system, node, sink, producer)
        assert elapsed < FAST, f"the producer noticed the dead consumer after {elapsed:.2f}s"


# -- in a cluster -------------------------------------------------------------------------------------------


async def cluster_member(stack: AsyncExitStack) -> tuple[ClusteredActorSystem, NodeProcess]:
    """This process as the seed of a two-member cluster (defaults), the other member in a process."""
    config = CastyConfig.from_dict({"system": {"name": "test"}})
    seed = await stack.enter_async_context(ClusteredActorSystem("test", "127.0.0.1", 0, config=config))
    node = await stack.enter_async_context(
        NodeProcess(CLUSTER_NODE, "--name", "test", "--seed", f"127.0.0.1:{seed.port}", ready_timeout=40)
    )
    await seed.wait_for(2, timeout=30)
    return seed, node


async def test_in_a_cluster_a_killed_producer_fails_the_consumer_within_2s() -> None:
    async with AsyncExitStack() as stack:
        seed, node = await cluster_member(stack)
        probe = TestProbe(seed)
        producer = await start_remote_producer(seed, node.port, probe, "endless", 10**12)  # type: ignore[arg-type]
        # the guide's timeout: the death is reported before it could expire
        source = await local_source(seed, producer, "endless-in", timeout=10.0)  # type: ignore[arg-type]
        failure, elapsed = await consume_until_killed(source, node)
        assert failure.cause_type == "Terminated", failure
        assert elapsed < FAST, f"the consumer noticed the dead producer after {elapsed:.2f}s"


async def test_in_a_cluster_a_killed_consumer_cancels_the_pending_put_within_2s() -> None:
    async with AsyncExitStack() as stack:
        seed, node = await cluster_member(stack)
        probe = TestProbe(seed)
        producer, sink = await local_sink(seed, "to-doomed", buffer_size=256)  # type: ignore[arg-type]
        control_of(seed, node.port).tell(StartConsumer(producer, probe.ref, name="doomed"))  # type: ignore[arg-type]
        await probe.expect(Started, timeout=10)
        elapsed = await put_until_cancelled(seed, node, sink, producer)
        assert elapsed < FAST, f"the producer noticed the dead consumer after {elapsed:.2f}s"


# -- silence is not death ------------------------------------------------------------------------------------


async def test_a_stream_through_a_blackhole_resumes_with_the_defaults(tmp_path: Path) -> None:
    """A partition shorter than the timeouts: the connection is reset by the proxy, the redial
    reaches the proxy (not refused) and hangs; once the partition heals the stream resumes."""
    cfg = defaults()
    cfg["remote"] = {"handshake_timeout": 1.0, "connect_timeout": 1.0, "reconnect_backoff_max": 0.5}
    async with ChaosProxy("127.0.0.1", 0) as proxy:
        args = node_args(write_config(tmp_path, cfg), "--port", str(proxy.port), "--bind-port", "0")
        async with NodeProcess(NODE, *args) as node, system_with(cfg) as system:
            proxy.target_port = int(node.info["bind_port"])
            probe = TestProbe(system)
            producer = await start_remote_producer(system, node.port, probe, "numbers", 60_000)
            source = await local_source(system, producer, "numbers-in")
            count = 0
            async with asyncio.timeout(60):
                async for x in source:
                    assert x == count
                    count += 1
                    if count == 20_000:
                        proxy.blackhole(True)
                        await asyncio.sleep(3.0)  # the partition lasts 3 s (a duration, not a condition)
                        proxy.blackhole(False)
            assert count == 60_000
