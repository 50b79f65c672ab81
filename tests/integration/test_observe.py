"""system.stats(), the metrics endpoint's bounds and the inspection protocol, in one process."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from casty import (
    ActorContext,
    Behaviors,
    CastyConfig,
    ClusteredActorSystem,
    ConfigError,
    GetSink,
    GetSource,
    RemoteActorSystem,
    SinkRef,
    SourceRef,
    stream_consumer,
    stream_producer,
)
from casty.cli import InspectionFailed, Inspector
from tests.conftest import eventually
from tests.observing import http_get
from tests.ports import free_port

pytestmark = pytest.mark.timeout(30)


def metrics_config(port: int, **metrics: Any) -> CastyConfig:
    return CastyConfig.from_dict({"system": {"name": "obs"}, "metrics": {"port": port, **metrics}})


async def raw(port: int, data: bytes, read_timeout: float = 5.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(65536), read_timeout)
    except ConnectionError:
        return b""
    finally:
        writer.transport.abort()


async def test_system_stats_count_dead_letters_by_kind_asks_and_mailboxes() -> None:
    async with RemoteActorSystem("obs", port=0) as system:
        async def slow(ctx: ActorContext[Any], msg: Any) -> None:
            if msg == "wait":
                await asyncio.sleep(0.5)
            elif hasattr(msg, "reply_to"):
                msg.reply_to.tell("pong")

        ref = system.spawn(Behaviors.receive(slow), "slow")
        system.ref(f"{system.address}/user/nobody").tell("lost")
        for _ in range(5):
            ref.tell("wait")
        await eventually(lambda: system.stats().dead_letters == 1, what="the dead letter")
        stats = system.stats()
        assert stats.dead_letters_by_reason == {"no_actor": 1}
        assert stats.actors >= 1
        assert stats.busiest_mailboxes and stats.busiest_mailboxes[0][0] == "/user/slow"
        assert stats.busiest_mailboxes[0][1] >= 3
        assert stats.to_dict()["busiest_mailboxes"][0][0] == "/user/slow"


async def test_endpoint_serves_metrics_alive_ready_and_refuses_the_rest() -> None:
    port = free_port()
    async with RemoteActorSystem("obs", port=0, config=metrics_config(port)):
        status, text = await http_get(port, "/metrics")
        assert status == 200
        names = {f.name for f in text_string_to_metric_families(text)}
        assert {"casty_actors", "casty_dead_letters", "casty_remote_bytes", "casty_ask_latency_seconds"} <= names
        assert (await http_get(port, "/alive"))[0] == 200
        assert (await http_get(port, "/ready"))[0] == 200
        assert (await http_get(port, "/nothing"))[0] == 404
        assert (await raw(port, b"POST /metrics HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 405")
        assert (await raw(port, b"garbage\r\n\r\n")).startswith(b"HTTP/1.1 400")
        assert (await raw(port, b"GET /" + b"x" * 20000 + b" HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 413")
        head = await raw(port, b"HEAD /alive HTTP/1.1\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and head.endswith(b"\r\n\r\n")


async def test_endpoint_bounds_connections_and_slow_requests() -> None:
    port = free_port()
    config = metrics_config(port, max_connections=2, request_timeout=0.5)
    async with RemoteActorSystem("obs", port=0, config=config):
        loop = asyncio.get_running_loop()
        idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
        try:
            await asyncio.sleep(0.05)  # let the server take both
            # a third connection is closed at once, without an answer
            assert await raw(port, b"GET /alive HTTP/1.1\r\n\r\n", read_timeout=2) == b""
            # the idle ones are dropped after request_timeout
            started = loop.time()
            for reader, _ in idle:
                with contextlib.suppress(ConnectionError):
                    assert await asyncio.wait_for(reader.read(100), 3) == b""
            assert loop.time() - started < 2
        finally:
            for _, writer in idle:
                writer.transport.abort()
        assert (await http_get(port, "/alive"))[0] == 200


async def test_ready_waits_for_min_members_and_inspection_answers_members() -> None:
    config = CastyConfig.from_dict({"system": {"name": "obs"}, "cluster": {"min_members": 2, "retry_join_interval": 0.1}})
    port = free_port()
    config_m = CastyConfig.from_dict(
        {"system": {"name": "obs"}, "cluster": {"min_members": 2, "retry_join_interval": 0.1}, "metrics": {"port": port}}
    )
    async with ClusteredActorSystem("obs", "127.0.0.1", 0, config=config_m) as first:
        await first.wait_for(1)
        status, body = await http_get(port, "/ready")
        assert status == 503 and "min_members" in body
        async with ClusteredActorSystem("obs", "127.0.0.1", 0, seed_nodes=[("127.0.0.1", first.port)], config=config):
            await first.wait_for(2, timeout=10)
            await eventually(lambda: first.stats().members_by_status == {"up": 2}, timeout=10, what="both up")
            assert (await http_get(port, "/ready"))[0] == 200
            inspector = Inspector(CastyConfig(), None, None, 5.0)
            try:
                view = await inspector.inspect("127.0.0.1", first.port)
            finally:
                await inspector.close()
            assert view["system"] == "obs" and view["ready"] is True
            assert sorted(m["status"] for m in view["members"]) == ["up", "up"]
            assert any(c["kind"] == "node" and c["state"] == "open" for c in view["connections"])


async def test_inspection_is_refused_to_a_stranger_without_the_secret() -> None:
    config = CastyConfig.from_dict({"system": {"name": "obs"}, "security": {"cluster_secret": "s3cret"}})
    async with RemoteActorSystem("obs", port=0, config=config) as node:
        inspector = Inspector(CastyConfig(), "obs", None, 3.0)
        try:
            with pytest.raises(InspectionFailed, match="secret"):
                await inspector.inspect("127.0.0.1", node.port)
        finally:
            await inspector.close()
        trusted = Inspector(config, "obs", None, 3.0)
        try:
            assert (await trusted.inspect("127.0.0.1", node.port))["system"] == "obs"
        finally:
            await trusted.close()


async def test_a_metrics_port_in_use_is_a_config_error_and_leaves_nothing_open() -> None:
    port = free_port()
    async with RemoteActorSystem("obs", port=0, config=metrics_config(port)):
        other = RemoteActorSystem("obs", port=0, config=metrics_config(port))
        with pytest.raises(ConfigError, match=r"metrics\.port"):
            await other.start()
        assert other.transport is None


async def test_streams_beyond_max_streams_are_summed_under_other() -> None:
    port = free_port()
    async with RemoteActorSystem("obs", port=0, config=metrics_config(port, max_streams=2)) as system:
        sources, sinks = [], []  # kept: a stream end drops out of the figures once collected
        for i in range(3):
            producer = system.spawn(stream_producer(), f"p{i}")
            sink: SinkRef[int] = await system.ask(producer, lambda r: GetSink(r))
            for x in range(100 * (i + 1)):
                await sink.put(x)
            await sink.complete()
            sinks.append(sink)
            consumer = system.spawn(stream_consumer(producer), f"c{i}")
            source: SourceRef[int] = await system.ask(consumer, lambda r: GetSource(r))
            assert [x async for x in source] == list(range(100 * (i + 1)))
            sources.append(source)
        status, text = await http_get(port, "/metrics")
        assert status == 200
        out: dict[tuple[str, str], float] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == "casty_stream_elements_total" and s.labels["direction"] == "out":
                    out[(s.labels["stream"], s.labels["role"])] = s.value
        streams = {stream for stream, _ in out}
        assert len(streams) == 3 and "other" in streams  # two streams by name, the rest summed
        # every element is counted once on each side, named or not
        assert sum(v for (_, role), v in out.items() if role == "consumer") == 600
        assert sum(v for (_, role), v in out.items() if role == "producer") == 600
        assert [s.stats().delivered for s in sources] == [100, 200, 300]
