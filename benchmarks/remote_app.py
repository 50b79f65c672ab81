"""What the cross-process benchmarks share: the wire types, the node's actors, the raw baseline
and a launcher for node processes.

Types that travel between processes must live in an importable module (not ``__main__``):
casty's msgpack serde names a dataclass by ``module:qualname`` and only builds classes that
are loaded in the receiving process.

The node program is ``python -m benchmarks.node ROLE``; it prints one JSON line when ready
(``{"port": ..., ...}``) and runs until SIGTERM, SIGINT or ``--max-seconds``:

``casty``
    A :class:`~casty.RemoteActorSystem` named ``bench`` with a counting actor at
    ``/user/counter`` and a stream service at ``/user/streams``: ``OpenStream`` spawns a
    ``stream_producer``, feeds it from a task in the node (``await sink.put(...)``) and answers
    with the producer's ref; ``GetFeedStats`` answers once that feeding ended.
``raw``
    The sender half of the raw asyncio + msgpack baseline (no casty at all).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import selectors
import signal
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import msgpack  # type: ignore[import-untyped, unused-ignore]

import casty
from casty import (
    ActorContext,
    ActorRef,
    Behavior,
    Behaviors,
    ClusteredActorSystem,
    GetSink,
    GetSource,
    SinkRef,
    SourceRef,
    StreamCancelled,
    stream_consumer,
    stream_producer,
)

ROOT = Path(__file__).resolve().parent.parent
SYSTEM_NAME = "bench"


# -- wire types ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SensorReading:
    """The element of every stream benchmark (the one of the network streams guide)."""

    sensor: str
    value: float
    timestamp: float
    node: str


@dataclass(frozen=True)
class Count:
    reply_to: ActorRef[int]


@dataclass(frozen=True)
class Tick:
    """The small record ``remote_tell_records`` tells: one field, like a command with an id."""

    seq: int


@dataclass(frozen=True)
class OpenStream:
    """Ask the stream service for a new producer.

    ``mode``: ``burst`` puts ``n`` readings as fast as ``put`` allows, then completes;
    ``paced`` puts ``n`` readings at ``rate`` per second, each stamped with ``time.time()``
    when it is put, then completes; ``endless`` puts until the consumer cancels, sampling the
    producer's outstanding elements and the process RSS every ``sample_ms``.
    """

    mode: str
    n: int
    rate: float
    reply_to: ActorRef[StreamOpened]
    sample_ms: float = 5.0


@dataclass(frozen=True)
class StreamOpened:
    producer: ActorRef[Any]
    name: str
    buffer_size: int


@dataclass(frozen=True)
class ConsumeStream:
    """Ask the stream service to consume ``producer``'s stream (``n`` elements expected) with a
    ``stream_consumer`` and ``async for`` in the node, and answer with ``ConsumeStats``."""

    producer: ActorRef[Any]
    n: int
    reply_to: ActorRef[ConsumeStats]


@dataclass(frozen=True)
class ConsumeStats:
    """Elements consumed, how many arrived in the first delivery, and the seconds from the first
    to the last element (measured in the consuming node)."""

    count: int
    first_len: int
    seconds: float
    error: str


@dataclass(frozen=True)
class GetFeedStats:
    name: str
    reply_to: ActorRef[FeedStats]


@dataclass(frozen=True)
class FeedStats:
    """How feeding one producer went, measured in the producer's process.

    ``max_outstanding`` is the largest ``buffered + unacked`` seen (elements the producer
    holds: put but not sent, and sent but not acknowledged); the RSS figures are in KiB.
    """

    put: int
    seconds: float
    error: str
    max_outstanding: int
    max_buffered: int
    max_unacked: int
    rss_start_kb: int
    rss_max_kb: int
    rss_end_kb: int
    samples: int


# -- measuring helpers -----------------------------------------------------------------------
def rss_kb() -> int:
    """Resident set size of this process in KiB (VmRSS of /proc/self/status)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, int(len(sorted_values) * fraction))
    return sorted_values[index]


# -- node actors -----------------------------------------------------------------------------
def counting_actor() -> Behavior[Any]:
    """Counts every message that is not a ``Count``; ``Count`` is answered with the count."""

    async def setup(ctx: ActorContext[Any]) -> Behavior[Any]:
        count = 0

        async def receive(ctx: ActorContext[Any], msg: Any) -> None:
            nonlocal count
            if type(msg) is Count:
                msg.reply_to.tell(count)
            else:
                count += 1

        return Behaviors.receive(receive)

    return Behaviors.setup(setup)


def _outstanding(sink: SinkRef[Any]) -> tuple[int, int]:
    """(buffered, unacked) of the producer behind ``sink``, from its public stats."""
    stats = sink.stats()
    return stats.buffered, stats.unacked


async def feed(sink: SinkRef[SensorReading], mode: str, n: int, rate: float, sample_ms: float) -> FeedStats:
    """Feed ``sink`` as ``OpenStream.mode`` says; returns what was measured in this process."""
    put = sink.put
    count = 0
    error = ""
    max_buffered = max_unacked = max_outstanding = samples = 0
    rss_start = rss_kb()
    rss_max = rss_start
    sampler: asyncio.Task[None] | None = None

    async def sample() -> None:
        nonlocal max_buffered, max_unacked, max_outstanding, samples, rss_max
        while True:
            buffered, unacked = _outstanding(sink)
            max_buffered = max(max_buffered, buffered)
            max_unacked = max(max_unacked, unacked)
            max_outstanding = max(max_outstanding, buffered + unacked)
            rss_max = max(rss_max, rss_kb())
            samples += 1
            await asyncio.sleep(sample_ms / 1000)

    started = time.perf_counter()
    try:
        if mode == "burst":
            stamp = time.time()
            for i in range(n):
                await put(SensorReading("temp-1", float(i), stamp, "node-a"))
                count += 1
        elif mode == "paced":
            start = time.perf_counter()
            while count < n:
                due = min(n, int((time.perf_counter() - start) * rate) + 1)
                while count < due:
                    await put(SensorReading("temp-1", float(count), time.time(), "node-a"))
                    count += 1
                await asyncio.sleep(0.0005)
        elif mode == "endless":
            sampler = asyncio.get_running_loop().create_task(sample())
            stamp = time.time()
            while True:
                await put(SensorReading("temp-1", float(count), stamp, "node-a"))
                count += 1
        else:
            raise ValueError(f"unknown feed mode {mode!r}")
        await sink.complete()
    except StreamCancelled as exc:
        error = "" if mode == "endless" else f"StreamCancelled: {exc}"
    finally:
        if sampler is not None:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
    return FeedStats(
        put=count,
        seconds=time.perf_counter() - started,
        error=error,
        max_outstanding=max_outstanding,
        max_buffered=max_buffered,
        max_unacked=max_unacked,
        rss_start_kb=rss_start,
        rss_max_kb=rss_max,
        rss_end_kb=rss_kb(),
        samples=samples,
    )


def stream_service() -> Behavior[Any]:
    """Spawns fed producers on request (``OpenStream``) and reports how feeding went."""

    async def setup(ctx: ActorContext[Any]) -> Behavior[Any]:
        feeds: dict[str, asyncio.Task[FeedStats]] = {}
        opened = 0

        async def receive(ctx: ActorContext[Any], msg: Any) -> None:
            nonlocal opened
            if isinstance(msg, OpenStream):
                opened += 1
                name = f"producer-{opened}"
                producer = ctx.spawn(stream_producer(), name)
                sink: SinkRef[SensorReading] = await ctx.system.ask(producer, lambda r: GetSink(r), timeout=10)
                feeds[name] = ctx.system.loop.create_task(feed(sink, msg.mode, msg.n, msg.rate, msg.sample_ms))
                msg.reply_to.tell(StreamOpened(producer, name, ctx.system.config.streams.buffer_size))
            elif isinstance(msg, ConsumeStream):
                opened += 1
                consumer = ctx.spawn(stream_consumer(msg.producer, timeout=30.0), f"consumer-{opened}")
                source: SourceRef[SensorReading] = await ctx.system.ask(consumer, lambda r: GetSource(r), timeout=10)
                reply = msg.reply_to
                ctx.system.loop.create_task(_consume_and_report(source, reply))
            elif isinstance(msg, GetFeedStats):
                task = feeds.pop(msg.name)
                reply_to = msg.reply_to

                def answer(done: asyncio.Task[FeedStats]) -> None:
                    reply_to.tell(done.result())

                task.add_done_callback(answer)

        return Behaviors.receive(receive)

    return Behaviors.setup(setup)


async def _consume_and_report(source: SourceRef[SensorReading], reply_to: ActorRef[ConsumeStats]) -> None:
    count = 0
    first = last = 0.0
    error = ""
    try:
        async for _reading in source:
            if not count:
                first = time.perf_counter()
            count += 1
        last = time.perf_counter()
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        last = time.perf_counter()
    reply_to.tell(ConsumeStats(count, 1, last - first, error))


async def run_casty_node(max_seconds: float) -> None:
    # a one-member cluster: remote refs work as with a RemoteActorSystem, and a ClusterClient
    # can connect to it for the client-side scenarios
    system = ClusteredActorSystem(SYSTEM_NAME, host="127.0.0.1", port=0)
    async with system:
        counter = system.spawn(counting_actor(), "counter")
        streams = system.spawn(stream_service(), "streams")
        ready = {
            "port": system.port,
            "pid": os.getpid(),
            "implementation": casty.IMPLEMENTATION,
            "counter": counter.uri,
            "streams": streams.uri,
        }
        await _serve(ready, max_seconds)


# -- the raw baselines: asyncio (uvloop) + msgpack, no casty ----------------------------------
# What a good engineer would write for the same jobs without casty. The receiver opens the
# connection and sends one msgpack header ``[mode, n, window]``; then, by mode:
#
# ``stream`` (the denominator of every ``*_over_raw`` ratio): the sender packs records
#     ``[sensor, value, timestamp, node]`` back to back into one buffer (no per-record framing)
#     and writes everything its credit allows once per loop turn; the receiver feeds a streaming
#     ``msgpack.Unpacker``, builds one ``SensorReading`` per record and grants RAW_GRANT more
#     credit (a msgpack int) per RAW_GRANT consumed (window RAW_WINDOW).
# ``framed``: the same with one 4-byte length prefix per record and one ``unpackb`` per frame
#     (the previous baseline, kept as a second reference).
# ``pingpong``: sequential request/response: the receiver sends ``[i]``, the sender echoes it;
#     the floor under ``ask``.
RAW_WINDOW = 2048
RAW_GRANT = 1024
_LEN = struct.Struct(">I")


def _frame(obj: Any) -> bytes:
    body: bytes = msgpack.packb(obj)
    return _LEN.pack(len(body)) + body


class _FrameReader:
    """Splits a byte stream of length-prefixed frames into msgpack bodies."""

    __slots__ = ("buffer",)

    def __init__(self) -> None:
        self.buffer = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        buf = self.buffer
        buf += data
        out: list[Any] = []
        unpack_from = _LEN.unpack_from
        unpackb = msgpack.unpackb
        pos = 0
        end = len(buf)
        with memoryview(buf) as view:
            while end - pos >= 4:
                (size,) = unpack_from(buf, pos)
                if end - pos - 4 < size:
                    break
                out.append(unpackb(view[pos + 4 : pos + 4 + size]))
                pos += 4 + size
        del buf[:pos]
        return out


class RawSender(asyncio.Protocol):
    """The node's half of every raw mode (see above)."""

    def __init__(self) -> None:
        self.unpacker = msgpack.Unpacker()
        self.packer = msgpack.Packer(autoreset=False)
        self.tcp: asyncio.Transport | None = None
        self.mode = ""
        self.credit = 0
        self.remaining = 0
        self.sent = 0
        self.scheduled = False
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.tcp = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it

    def data_received(self, data: bytes) -> None:
        self.unpacker.feed(data)
        for msg in self.unpacker:
            if not self.mode:
                self.mode, self.remaining, self.credit = msg
            elif self.mode == "pingpong":
                assert self.tcp is not None
                self.tcp.write(msgpack.packb(msg))
            else:
                self.credit += msg
        if self.mode != "pingpong" and not self.scheduled and self.credit and self.remaining:
            self.scheduled = True
            self.loop.call_soon(self.pump)

    def pump(self) -> None:
        self.scheduled = False
        k = min(self.credit, self.remaining)
        if k <= 0 or self.tcp is None:
            return
        stamp = time.time()
        seq = self.sent
        if self.mode == "stream":
            packer = self.packer
            pack = packer.pack
            for i in range(seq, seq + k):
                pack(["temp-1", float(i), stamp, "node-a"])
            self.tcp.write(packer.bytes())
            packer.reset()
        else:
            packb = msgpack.packb
            pack_len = _LEN.pack
            parts: list[bytes] = []
            append = parts.append
            for i in range(seq, seq + k):
                body = packb(["temp-1", float(i), stamp, "node-a"])
                append(pack_len(len(body)))
                append(body)
            self.tcp.write(b"".join(parts))
        self.credit -= k
        self.remaining -= k
        self.sent += k


class RawReceiver(asyncio.Protocol):
    """Receives n records (``stream`` or ``framed``), builds a ``SensorReading`` from each, grants
    RAW_GRANT more credit per RAW_GRANT consumed, and times the first to the last record."""

    def __init__(self, n: int, mode: str = "stream") -> None:
        if mode not in ("stream", "framed"):
            raise ValueError(f"no raw stream mode {mode!r}")
        self.n = n
        self.mode = mode
        self.unpacker = msgpack.Unpacker()
        self.reader = _FrameReader()
        self.tcp: asyncio.Transport | None = None
        self.count = 0
        self.since_grant = 0
        self.first = 0.0
        self.last = 0.0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.grant = msgpack.packb(RAW_GRANT)
        self.readings: list[SensorReading] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.tcp = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it
        self.tcp.write(msgpack.packb([self.mode, self.n, RAW_WINDOW]))

    def data_received(self, data: bytes) -> None:
        if self.count == 0:
            self.first = time.perf_counter()
        if self.mode == "stream":
            self.unpacker.feed(data)
            records: Any = self.unpacker
        else:
            records = self.reader.feed(data)
        reading = SensorReading
        keep = self.readings.append
        tcp = self.tcp
        assert tcp is not None
        for record in records:
            keep(reading(*record))  # one object per record, as a consumer would build
            self.count += 1
            self.since_grant += 1
            if self.since_grant == RAW_GRANT:
                self.since_grant = 0
                tcp.write(self.grant)
        if len(self.readings) >= RAW_GRANT:
            self.readings.clear()
        if self.count >= self.n and not self.done.done():
            self.last = time.perf_counter()
            self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError(f"sender closed after {self.count} records"))


class RawPinger(asyncio.Protocol):
    """Sequential request/response: ``await ping(i)`` sends ``[i]`` and waits for its echo."""

    def __init__(self) -> None:
        self.unpacker = msgpack.Unpacker()
        self.tcp: asyncio.Transport | None = None
        self.waiter: asyncio.Future[Any] | None = None
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.tcp = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it
        self.tcp.write(msgpack.packb(["pingpong", 0, 0]))

    async def ping(self, i: int) -> Any:
        assert self.tcp is not None
        self.waiter = self.loop.create_future()
        self.tcp.write(msgpack.packb([i]))
        return await self.waiter

    def data_received(self, data: bytes) -> None:
        self.unpacker.feed(data)
        for msg in self.unpacker:
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(msg)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("sender closed"))


async def run_raw_node(max_seconds: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(RawSender, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        await _serve({"port": port, "pid": os.getpid(), "implementation": "raw"}, max_seconds)


# -- node program ----------------------------------------------------------------------------
async def _serve(ready: dict[str, Any], max_seconds: float) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    sys.stdout.write(json.dumps(ready) + "\n")
    sys.stdout.flush()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), max_seconds)


def pinned_cpus() -> tuple[int, int] | None:
    """(this process's CPU, the node processes' CPU) for the round-trip scenarios, else None.

    With two CPUs or more, ``remote_ask`` and ``raw_pingpong`` run their own process on the
    first CPU it may use and their nodes (``Node(..., pinned=True)``) on the last, as two
    machines would: left to the scheduler, both ends of a round trip sometimes share one CPU (a
    wake-up then costs a third of a cross-CPU one), so an ask and the ping-pong it is divided by
    could be measured in different placements. Throughput and stream-latency scenarios are not
    pinned: a pinned process cannot move away from a kernel thread that takes its CPU, which
    shows in their tails. ``CASTY_BENCH_PIN=0`` turns pinning off."""
    if os.environ.get("CASTY_BENCH_PIN", "1") == "0" or _CPUS is None or len(_CPUS) < 2:
        return None
    return _CPUS[0], _CPUS[-1]


#: the CPUs this process may use, read once, at import: after ``pin_self`` the process itself
#: may use one CPU only, and a node started then must still go to the other one (reading the
#: affinity again there found one CPU, so nodes were left on the pinned process's CPU)
_CPUS: list[int] | None = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None


class Node:
    """A node process: ``with Node("casty") as node`` starts ``python -m benchmarks.node casty``,
    waits for its ready line (``node.info``) and always ends it (SIGTERM, then SIGKILL).

    The node inherits the environment, so ``CASTY_NO_EXTENSIONS`` picks the same
    implementation on both sides.
    """

    def __init__(
        self, role: str, *, max_seconds: float = 240.0, ready_timeout: float = 30.0, pinned: bool = False
    ) -> None:
        self.args = [sys.executable, "-m", "benchmarks.node", role, "--max-seconds", str(max_seconds)]
        self.ready_timeout = ready_timeout
        self.pinned = pinned
        self.proc: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}

    @property
    def port(self) -> int:
        return int(self.info["port"])

    def start(self) -> Node:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        self.proc = subprocess.Popen(self.args, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        pins = pinned_cpus() if self.pinned else None
        if pins is not None:
            # a node that already exited is reported by the ready line below
            with contextlib.suppress(ProcessLookupError):
                os.sched_setaffinity(self.proc.pid, {pins[1]})
        try:
            self.info = json.loads(self._read_line())
        except BaseException:
            self.stop()
            raise
        return self

    def _read_line(self) -> bytes:
        assert self.proc is not None and self.proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if not sel.select(self.ready_timeout):
                raise TimeoutError(f"{' '.join(self.args)} was not ready within {self.ready_timeout}s")
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{' '.join(self.args)} exited before it was ready (code {self.proc.wait()})")
        return line

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def __enter__(self) -> Node:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
