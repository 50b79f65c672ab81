"""Benchmark scenarios. Each runs in its own process (the implementation is picked at import):

    python -m benchmarks.scenarios local_tell [--n N]

and prints one JSON object with its figures on the last line of stdout. A scenario that needs
a second process starts a node (``benchmarks.node``) itself and always ends it; the node
inherits the environment, so both processes run the same implementation. Every scenario is
bounded in time (``SCENARIO_TIMEOUT``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import casty
from benchmarks import remote_app
from benchmarks.remote_app import (
    SYSTEM_NAME,
    FeedStats,
    GetFeedStats,
    Node,
    OpenStream,
    RawPinger,
    RawReceiver,
    SensorReading,
    StreamOpened,
    percentile,
)
from casty import (
    ActorContext,
    ActorRef,
    ActorSystem,
    Behavior,
    Behaviors,
    ClusterClient,
    GetSink,
    GetSource,
    RemoteActorSystem,
    SinkRef,
    SourceRef,
    stream_consumer,
    stream_producer,
)

SCENARIO_TIMEOUT = 150.0


@dataclass(frozen=True)
class Count:
    reply_to: ActorRef[int]


def counting_actor() -> Behavior[Any]:
    async def setup(ctx: ActorContext[Any]) -> Behavior[Any]:
        count = 0

        async def receive(ctx: ActorContext[Any], msg: Any) -> None:
            nonlocal count
            if type(msg) is int:
                count += 1
            else:
                msg.reply_to.tell(count)

        return Behaviors.receive(receive)

    return Behaviors.setup(setup)


async def local_tell(n: int) -> dict[str, Any]:
    """Tell throughput to one counting actor (messages/s), sender and actor in one process."""
    async with ActorSystem("bench") as system:
        ref = system.spawn(counting_actor(), "counter")
        tell = ref.tell
        for i in range(1000):  # warm-up
            tell(i)
        await system.ask(ref, Count)
        start = time.perf_counter()
        for i in range(n):
            tell(i)
        got: int = await system.ask(ref, Count, timeout=60)
        elapsed = time.perf_counter() - start
        assert got == n + 1000
    return {"rate": n / elapsed, "unit": "msg/s"}


async def local_ask(n: int) -> dict[str, Any]:
    """Sequential ask round trips to a local actor: rate and latency percentiles."""
    async with ActorSystem("bench") as system:
        ref = system.spawn(counting_actor(), "counter")
        ask = system.ask
        samples: list[float] = []
        for _ in range(200):
            await ask(ref, Count)
        start = time.perf_counter()
        for _ in range(n):
            t0 = time.perf_counter()
            await ask(ref, Count)
            samples.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - start
    samples.sort()
    return {
        "rate": n / elapsed,
        "unit": "asks/s",
        "p50_us": samples[len(samples) // 2] * 1e6,
        "p99_us": samples[int(len(samples) * 0.99)] * 1e6,
    }


async def stream_local(n: int) -> dict[str, Any]:
    """Producer and consumer in one process: elements/s through ``async for`` (no network)."""
    async with ActorSystem("bench") as system:
        producer = system.spawn(stream_producer(), "producer")
        sink = await system.ask(producer, lambda r: GetSink(reply_to=r))
        consumer = system.spawn(stream_consumer(producer), "consumer")
        source = await system.ask(consumer, lambda r: GetSource(reply_to=r))

        async def feed() -> None:
            for i in range(n):
                await sink.put(i)
            await sink.complete()

        start = time.perf_counter()
        feeder = asyncio.create_task(feed())
        count = 0
        async for _ in source:
            count += 1
        elapsed = time.perf_counter() - start
        await feeder
        assert count == n
    return {"rate": n / elapsed, "unit": "el/s"}


# -- cross-process scenarios ------------------------------------------------------------------
async def _raw_stream(n: int, mode: str) -> dict[str, Any]:
    with Node("raw") as node:
        loop = asyncio.get_running_loop()
        tcp, receiver = await loop.create_connection(lambda: RawReceiver(n, mode), "127.0.0.1", node.port)
        try:
            await receiver.done
        finally:
            tcp.close()
    return {
        "rate": (receiver.count - 1) / (receiver.last - receiver.first),
        "unit": "records/s",
        "implementation": "raw",
    }


async def raw_baseline(n: int) -> dict[str, Any]:
    """The strongest plain design for the stream job, no casty (records/s at the receiver).

    A node process packs msgpack ``[sensor, value, timestamp, node]`` records back to back and
    writes everything its credit allows in one ``write()`` per loop turn; this process feeds a
    streaming ``msgpack.Unpacker``, builds one ``SensorReading`` per record and grants 1024
    more per 1024 consumed (window 2048), on uvloop. The denominator of every ``*_over_raw``.
    """
    return await _raw_stream(n, "stream")


async def raw_framed(n: int) -> dict[str, Any]:
    """The same job with one length-prefixed frame per record (a weaker second reference)."""
    return await _raw_stream(n, "framed")


def pin_self() -> None:
    """Run this process on its CPU of ``pinned_cpus`` (nodes started with ``pinned=True`` go to
    the other one)."""
    pins = remote_app.pinned_cpus()
    if pins is not None:
        os.sched_setaffinity(0, {pins[0]})


async def raw_pingpong(n: int) -> dict[str, Any]:
    """Sequential msgpack request/response over one uvloop connection: the floor under ``ask``
    (both ends pinned, see ``pinned_cpus``)."""
    pin_self()
    with Node("raw", pinned=True) as node:
        loop = asyncio.get_running_loop()
        tcp, pinger = await loop.create_connection(RawPinger, "127.0.0.1", node.port)
        try:
            for i in range(200):  # warm-up
                await pinger.ping(i)
            samples: list[float] = []
            start = time.perf_counter()
            for i in range(n):
                t0 = time.perf_counter()
                await pinger.ping(i)
                samples.append(time.perf_counter() - t0)
            elapsed = time.perf_counter() - start
        finally:
            tcp.close()
    samples.sort()
    return {
        "rate": n / elapsed,
        "unit": "rtt/s",
        "implementation": "raw",
        "p50_us": samples[len(samples) // 2] * 1e6,
        "p99_us": samples[int(len(samples) * 0.99)] * 1e6,
    }


@contextlib.asynccontextmanager
async def local_end(kind: str, node_port: int | None = None) -> AsyncIterator[RemoteActorSystem]:
    """The actor system this process runs for a cross-process scenario.

    ``node``: a RemoteActorSystem that reaches the node process by URI; ``client``: a
    ClusterClient connected to the node (a one-member cluster), whose ``spawn``, ``ask`` and
    ``ref`` are all the scenarios below use.
    """
    if kind == "client":
        if node_port is None:
            raise ValueError("a client end needs the node's port")
        async with ClusterClient([("127.0.0.1", node_port)], SYSTEM_NAME) as client:
            yield client  # type: ignore[misc]  # spawn/ask/ref are all the scenarios use
        return
    if kind != "node":
        raise ValueError(f"no {kind!r} end: 'node' or 'client'")
    system = RemoteActorSystem(SYSTEM_NAME, host="127.0.0.1", port=0)
    async with system:
        yield system


async def tell_burst(
    system: RemoteActorSystem,
    ref: ActorRef[Any],
    n: int,
    chunk: int = 1000,
    window: int = 50_000,
    make: Callable[[int], Any] = int,
) -> None:
    """Tell ``n`` messages (``make(i)``: ints by default) to a counting actor and wait until it
    counted them all.

    Yields to the loop every ``chunk`` messages (so the transport can flush) and keeps at
    most two ``window``s unconfirmed: after each window it sends a ``Count`` ask and awaits
    the previous one, which bounds the outbound queue without stopping the pipeline.
    """
    base: int = await system.ask(ref, remote_app.Count, timeout=30)
    tell = ref.tell
    pending: asyncio.Future[int] | None = None
    sent = 0
    while sent < n:
        k = min(chunk, n - sent)
        if make is int:
            for i in range(sent, sent + k):
                tell(i)
        else:
            for i in range(sent, sent + k):
                tell(make(i))
        sent += k
        if sent % window == 0 or sent == n:
            if pending is not None:
                await pending
            pending = asyncio.ensure_future(system.ask(ref, remote_app.Count, timeout=60))
        else:
            await asyncio.sleep(0)
    got = await pending if pending is not None else base
    if got != base + n:
        raise AssertionError(f"the counter saw {got - base} of {n} messages")


async def remote_tell(n: int) -> dict[str, Any]:
    """Cross-process tell throughput to a counting actor (msgs/s): ints, sender here, actor in a
    node; the time runs until the actor confirmed the last one (see ``tell_burst``)."""
    with Node("casty") as node:
        async with local_end("node") as system:
            ref = system.ref(node.info["counter"])
            await tell_burst(system, ref, 1000)  # warm-up, also opens the connection
            start = time.perf_counter()
            await tell_burst(system, ref, n)
            elapsed = time.perf_counter() - start
    return {"rate": n / elapsed, "unit": "msg/s"}


async def remote_tell_records(n: int) -> dict[str, Any]:
    """As ``remote_tell``, but each message is a small frozen dataclass (``Tick(seq)``): the
    record path (type tag, generated builder) rather than a bare int."""
    with Node("casty") as node:
        async with local_end("node") as system:
            ref = system.ref(node.info["counter"])
            await tell_burst(system, ref, 1000, make=remote_app.Tick)
            start = time.perf_counter()
            await tell_burst(system, ref, n, make=remote_app.Tick)
            elapsed = time.perf_counter() - start
    return {"rate": n / elapsed, "unit": "msg/s"}


async def remote_ask(n: int, block: int = 100) -> dict[str, Any]:
    """Sequential cross-process asks to a counting actor: asks/s and latency percentiles.

    A raw ping-pong node (see ``raw_pingpong``) runs beside the casty node and the two are
    measured in alternating blocks of ``block`` round trips, so both see the same machine
    noise, with both ends pinned (see ``pinned_cpus``): ``p50_over_pingpong`` is the ask's p50
    over the ping-pong's p50 of this one run.
    """
    pin_self()
    with Node("casty", pinned=True) as node, Node("raw", pinned=True) as raw:
        loop = asyncio.get_running_loop()
        tcp, pinger = await loop.create_connection(RawPinger, "127.0.0.1", raw.port)
        try:
            async with local_end("node") as system:
                ref = system.ref(node.info["counter"])
                ask = system.ask
                ping = pinger.ping
                for i in range(200):  # warm-up, also opens the connection
                    await ask(ref, remote_app.Count, timeout=30)
                    await ping(i)
                samples: list[float] = []
                pings: list[float] = []
                asking = 0.0
                perf = time.perf_counter
                done = 0
                while done < n:
                    k = min(block, n - done)
                    start = perf()
                    for _ in range(k):
                        t0 = perf()
                        await ask(ref, remote_app.Count, timeout=30)
                        samples.append(perf() - t0)
                    asking += perf() - start
                    for i in range(k):
                        t0 = perf()
                        await ping(i)
                        pings.append(perf() - t0)
                    done += k
        finally:
            tcp.close()
    samples.sort()
    pings.sort()
    p50 = percentile(samples, 0.50)
    ping_p50 = percentile(pings, 0.50)
    return {
        "rate": n / asking,
        "unit": "asks/s",
        "p50_us": p50 * 1e6,
        "p99_us": percentile(samples, 0.99) * 1e6,
        "pingpong_p50_us": ping_p50 * 1e6,
        "p50_over_pingpong": p50 / ping_p50,
    }


async def open_stream(
    system: ActorSystem, service: ActorRef[Any], mode: str, n: int, rate: float = 0.0
) -> StreamOpened:
    opened: StreamOpened = await system.ask(service, lambda r: OpenStream(mode, n, rate, r), timeout=30)
    return opened


async def open_source(system: ActorSystem, producer: ActorRef[Any], name: str) -> SourceRef[SensorReading]:
    consumer = system.spawn(stream_consumer(producer, timeout=30.0), name)
    source: SourceRef[SensorReading] = await system.ask(consumer, lambda r: GetSource(r), timeout=30)
    return source


async def drain(source: SourceRef[SensorReading], batch: int) -> tuple[int, int, float, float]:
    """Consume a whole stream: (elements, elements in the first delivery, first time, last time)."""
    count = first_len = 0
    first = 0.0
    if batch:
        async for items in source.batches(batch):
            if not count:
                first, first_len = time.perf_counter(), len(items)
                if type(items[0]) is not SensorReading:
                    raise AssertionError(f"got {items[0]!r}")
            count += len(items)
    else:
        async for reading in source:
            if not count:
                first, first_len = time.perf_counter(), 1
                if type(reading) is not SensorReading:
                    raise AssertionError(f"got {reading!r}")
            count += 1
    return count, first_len, first, time.perf_counter()


async def _stream_throughput(n: int, batch: int, local: str = "node") -> dict[str, Any]:
    """A producer in a node fed with ``await sink.put(SensorReading(...))`` as fast as it goes;
    the consumer here, wired to the producer's URI. Elements/s from first to last element."""
    with Node("casty") as node:
        async with local_end(local, node.port) as system:
            service = system.ref(node.info["streams"])
            warm = await open_stream(system, service, "burst", 2000)
            await drain(await open_source(system, system.ref(warm.producer.uri), "warm-up"), batch)
            opened = await open_stream(system, service, "burst", n)
            source = await open_source(system, system.ref(opened.producer.uri), "consumer")
            count, first_len, first, last = await drain(source, batch)
            stats: FeedStats = await system.ask(service, lambda r: GetFeedStats(opened.name, r), timeout=30)
    if count != n or stats.error:
        raise AssertionError(f"consumed {count} of {n} elements; producer side: {stats.error or 'ok'}")
    return {
        "rate": (count - first_len) / (last - first),
        "unit": "elem/s",
        "producer_put_per_s": stats.put / stats.seconds,
    }


async def stream_node_client(n: int) -> dict[str, Any]:
    """Node-to-client stream throughput: the producer in the node, the consumer in a
    ClusterClient here, consumed with ``async for``."""
    return await _stream_throughput(n, 0, "client")


async def stream_client_node(n: int) -> dict[str, Any]:
    """Client-to-node stream throughput: a producer in a ClusterClient here, fed as fast as
    ``put`` allows; the node consumes it with ``async for`` and reports elements/s."""
    with Node("casty") as node:
        async with local_end("client", node.port) as client:
            service = client.ref(node.info["streams"])

            async def one(count: int, name: str) -> tuple[remote_app.ConsumeStats, float]:
                producer = client.spawn(stream_producer(), name)
                sink: SinkRef[SensorReading] = await client.ask(producer, lambda r: GetSink(r), timeout=30)

                def request(reply_to: ActorRef[remote_app.ConsumeStats]) -> remote_app.ConsumeStream:
                    return remote_app.ConsumeStream(producer, count, reply_to)

                task: asyncio.Future[remote_app.ConsumeStats] = asyncio.ensure_future(
                    client.ask(service, request, timeout=300)
                )
                started = time.perf_counter()
                for i in range(count):
                    await sink.put(SensorReading("temp", 20.0 + (i % 100) / 10, time.time(), "client"))
                await sink.complete()
                stats: remote_app.ConsumeStats = await task
                return stats, count / (time.perf_counter() - started)

            await one(2000, "warm-up")
            stats, put_rate = await one(n, "producer")
    if stats.count != n or stats.error:
        raise AssertionError(f"node consumed {stats.count} of {n}: {stats.error or 'ok'}")
    return {"rate": (stats.count - stats.first_len) / stats.seconds, "unit": "elem/s", "producer_put_per_s": put_rate}


async def stream_node_node(n: int) -> dict[str, Any]:
    """Node-to-node stream throughput, consumed element by element with ``async for``."""
    return await _stream_throughput(n, 0)


async def stream_node_node_batches(n: int) -> dict[str, Any]:
    """Node-to-node stream throughput, consumed with ``source.batches(1024)``."""
    return await _stream_throughput(n, 1024)


async def stream_latency(n: int, rate: float = 5000.0) -> dict[str, Any]:
    """Element latency at a moderate fixed rate: ``n`` elements at ``rate``/s, each stamped with
    ``time.time()`` when put in the node, the latency taken here on arrival (one machine, one
    clock). Elements put before the first one arrived (queued while subscribing) are left out.
    """
    with Node("casty") as node:
        async with local_end("node") as system:
            service = system.ref(node.info["streams"])
            warm = await open_stream(system, service, "burst", 2000)
            await drain(await open_source(system, system.ref(warm.producer.uri), "warm-up"), 0)
            opened = await open_stream(system, service, "paced", n, rate)
            source = await open_source(system, system.ref(opened.producer.uri), "consumer")
            latencies: list[float] = []
            flowing_since = 0.0
            count = 0
            wall = time.time
            async for reading in source:
                now = wall()
                if not count:
                    flowing_since = now
                count += 1
                if reading.timestamp >= flowing_since:
                    latencies.append(now - reading.timestamp)
            stats: FeedStats = await system.ask(service, lambda r: GetFeedStats(opened.name, r), timeout=30)
    if count != n or stats.error:
        raise AssertionError(f"consumed {count} of {n} elements; producer side: {stats.error or 'ok'}")
    latencies.sort()
    return {
        "rate": stats.put / stats.seconds,
        "unit": "elem/s",
        "p50_us": percentile(latencies, 0.50) * 1e6,
        "p99_us": percentile(latencies, 0.99) * 1e6,
        "max_us": latencies[-1] * 1e6,
        "measured": float(len(latencies)),
    }


async def stream_memory(n: int) -> dict[str, Any]:
    """Producer memory under a slow consumer: the node puts as fast as it can while this
    process reads ``n`` elements, sleeping 1 ms after each, then cancels. The node samples its
    RSS and the producer's buffered + unacked elements every 5 ms; the latter must stay within
    ``buffer_size`` + the consumer's window."""
    with Node("casty") as node:
        async with local_end("node") as system:
            service = system.ref(node.info["streams"])
            opened = await open_stream(system, service, "endless", 0)
            source = await open_source(system, system.ref(opened.producer.uri), "consumer")
            count = 0
            start = time.perf_counter()
            async for _reading in source:
                count += 1
                await asyncio.sleep(0.001)
                if count >= n:
                    break
            elapsed = time.perf_counter() - start
            stats: FeedStats = await system.ask(service, lambda r: GetFeedStats(opened.name, r), timeout=30)
            bound = opened.buffer_size + system.config.streams.initial_demand
    if stats.error:
        raise AssertionError(f"producer side: {stats.error}")
    return {
        "rate": count / elapsed,
        "unit": "elem/s",
        "max_outstanding": float(stats.max_outstanding),
        "max_buffered": float(stats.max_buffered),
        "max_unacked": float(stats.max_unacked),
        "bound": float(bound),
        "within_bound": 1.0 if stats.max_outstanding <= bound else 0.0,
        "rss_growth_kb": float(stats.rss_max_kb - stats.rss_start_kb),
        "rss_start_kb": float(stats.rss_start_kb),
        "put": float(stats.put),
        "samples": float(stats.samples),
    }


SCENARIOS: dict[str, tuple[Callable[[int], Awaitable[dict[str, Any]]], int]] = {
    "local_tell": (local_tell, 1_000_000),
    "local_ask": (local_ask, 20_000),
    "stream_local": (stream_local, 200_000),
    "raw_baseline": (raw_baseline, 500_000),
    "raw_framed": (raw_framed, 500_000),
    "raw_pingpong": (raw_pingpong, 5_000),
    "remote_tell": (remote_tell, 500_000),
    "remote_tell_records": (remote_tell_records, 500_000),
    "remote_ask": (remote_ask, 5_000),
    "stream_node_node": (stream_node_node, 200_000),
    "stream_node_node_batches": (stream_node_node_batches, 200_000),
    "stream_node_client": (stream_node_client, 200_000),
    "stream_client_node": (stream_client_node, 200_000),
    "stream_latency": (stream_latency, 10_000),
    "stream_memory": (stream_memory, 2_000),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--n", type=int, default=0, help="operations (default: the scenario's own)")
    args = parser.parse_args(argv)
    fn, default_n = SCENARIOS[args.scenario]

    async def bounded() -> dict[str, Any]:
        return await asyncio.wait_for(fn(args.n or default_n), SCENARIO_TIMEOUT)

    result = casty.run(bounded())
    result.setdefault("implementation", casty.IMPLEMENTATION)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    main()
