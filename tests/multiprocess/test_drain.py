"""Graceful drain on SIGTERM across processes: a producer node under ``casty.run`` delivers
every element a ``put`` accepted, completes its stream, leaves the cluster and exits 0."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from casty import ClusterClient, GetSource, SourceRef
from casty.streams import stream_consumer
from tests.conftest import eventually
from tests.drain_app import READINGS
from tests.procs import NodeProcess

NODE = "tests.drain_node"
DRAIN_TIMEOUT = 10.0

CONFIG = """
[system]
name = "drain-test"

[cluster]
retry_join_interval = 0.2
down_after = 3.0

[cluster.gossip]
interval = 0.2

[cluster.heartbeat]
interval = 0.2
availability_check_interval = 0.2

[remote]
reconnect_backoff_max = 0.3

[streams]
buffer_size = 1024
initial_demand = 256
"""


async def read_until(proc: NodeProcess, key: str, seen: list[dict[str, Any]], timeout: float = 30.0) -> dict[str, Any]:
    """Lines of ``proc`` up to the first with ``key``; every line read is kept in ``seen``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        line = await proc.read_line(timeout=max(0.01, deadline - loop.time()))
        seen.append(line)
        if key in line:
            return line


@pytest.mark.timeout(90)
async def test_sigterm_drains_a_producer_node_mid_stream(tmp_path: Path) -> None:
    config = tmp_path / "casty.toml"
    config.write_text(CONFIG)
    env = {"CASTY_SHUTDOWN__DRAIN_TIMEOUT": str(DRAIN_TIMEOUT)}
    consumer_lines: list[dict[str, Any]] = []
    async with NodeProcess(NODE, "--role", "consumer", "--config", str(config), env=env) as consumer:
        seed = f"127.0.0.1:{consumer.port}"
        producer = NodeProcess(NODE, "--role", "producer", "--config", str(config), "--seed", seed, env=env)
        async with producer:
            producer_node = f"127.0.0.1:{producer.port}"
            await read_until(consumer, "received", consumer_lines)  # mid-stream
            assert producer.proc is not None
            started = time.monotonic()
            producer.proc.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(producer.wait(), DRAIN_TIMEOUT + 5)
            drain_time = time.monotonic() - started
            producer_lines: list[dict[str, Any]] = []
            final = await read_until(producer, "accepted", producer_lines, timeout=5)
        assert code == 0
        assert drain_time < DRAIN_TIMEOUT
        assert final["refused"] == "DrainingError", "the feeding put after the drain began got a clear error"
        done = await read_until(consumer, "done", consumer_lines)
        assert done["outcome"] == "completed"
        assert done["in_order"] is True
        assert done["received"] == final["accepted"] > 200
        await read_until(consumer, "event", consumer_lines)
        while not any(line.get("event") == "MemberRemoved" for line in consumer_lines):
            await read_until(consumer, "event", consumer_lines)
        about_producer = [line["event"] for line in consumer_lines if line.get("node") == producer_node]
        assert "MemberLeft" in about_producer
        assert "UnreachableMember" not in about_producer and "MemberDowned" not in about_producer
    print(
        f"drain of a producer node mid-stream: {drain_time:.2f}s from SIGTERM to exit 0, {final['accepted']} elements"
    )


@pytest.mark.timeout(60)
async def test_a_drain_ends_at_its_timeout_and_a_second_signal_exits_at_once(tmp_path: Path) -> None:
    config = tmp_path / "casty.toml"
    config.write_text(CONFIG)
    # a stream that cannot finish: the drain lasts its whole timeout, then the process exits 0
    async with NodeProcess(
        NODE, "--role", "stuck", "--config", str(config), env={"CASTY_SHUTDOWN__DRAIN_TIMEOUT": "2"}
    ) as node:
        assert node.proc is not None
        started = time.monotonic()
        node.proc.send_signal(signal.SIGTERM)
        assert await read_until(node, "draining", []) == {"draining": True}
        assert await asyncio.wait_for(node.wait(), 10) == 0
        elapsed = time.monotonic() - started
        assert 1.5 <= elapsed < 5.0
    # the same with a long timeout: a second signal does not wait for it
    async with NodeProcess(
        NODE, "--role", "stuck", "--config", str(config), env={"CASTY_SHUTDOWN__DRAIN_TIMEOUT": "30"}
    ) as node:
        assert node.proc is not None
        node.proc.send_signal(signal.SIGTERM)
        await read_until(node, "draining", [])
        started = time.monotonic()
        node.proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(node.wait(), 5) == 128 + signal.SIGINT
        assert time.monotonic() - started < 2.0


@pytest.mark.timeout(90)
async def test_a_client_streaming_from_a_draining_node_gets_everything_then_moves_on(tmp_path: Path) -> None:
    config = tmp_path / "casty.toml"
    config.write_text(CONFIG)
    env = {"CASTY_SHUTDOWN__DRAIN_TIMEOUT": str(DRAIN_TIMEOUT)}
    async with NodeProcess(NODE, "--role", "member", "--config", str(config), env=env) as other:
        seed = f"127.0.0.1:{other.port}"
        producer = NodeProcess(NODE, "--role", "producer", "--config", str(config), "--seed", seed, env=env)
        async with producer:
            client = ClusterClient(contact_points=[("127.0.0.1", producer.port)], system_name="drain-test")
            async with client:
                listing = await client.wait_for_service(READINGS, timeout=30)
                producer_ref = next(iter(listing.instances)).ref
                consumer = client.spawn(stream_consumer(producer_ref), "reader")
                source: SourceRef[int] = await client.ask(consumer, lambda r: GetSource(reply_to=r), timeout=10)
                received: list[int] = []
                mid_stream = asyncio.Event()

                async def read() -> None:
                    async for value in source:
                        received.append(value)
                        if len(received) == 200:
                            mid_stream.set()
                        if len(received) % 50 == 0:
                            await asyncio.sleep(0.005)  # slow: the producer's buffer stays full

                reading = asyncio.ensure_future(read())
                await asyncio.wait_for(mid_stream.wait(), 30)
                assert producer.proc is not None
                started = time.monotonic()
                producer.proc.send_signal(signal.SIGTERM)
                await asyncio.wait_for(reading, DRAIN_TIMEOUT)  # ends without an error: completed
                code = await asyncio.wait_for(producer.wait(), DRAIN_TIMEOUT + 5)
                drain_time = time.monotonic() - started
                final = await read_until(producer, "accepted", [], timeout=5)
                assert code == 0 and drain_time < DRAIN_TIMEOUT
                assert received == list(range(final["accepted"]))
                other_node = ("127.0.0.1", other.port)
                await eventually(
                    lambda: client.connected and client.contact == other_node,
                    timeout=15,
                    what="the client to move to the remaining member",
                )
    print(f"client stream from a draining node: {len(received)} elements, drain {drain_time:.2f}s")
