"""The fault-injecting TCP proxy used by the cross-process stream tests, against plain echo servers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from tests.chaos_proxy import ChaosProxy

pytestmark = pytest.mark.timeout(30)


class EchoServer:
    """A TCP server that echoes every byte back; counts its connections."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.connections = 0
        self.received = 0

    async def __aenter__(self) -> EchoServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while data := await reader.read(65536):
                self.received += len(data)
                writer.write(data)
                await writer.drain()
            writer.close()
        except (ConnectionError, OSError):
            writer.transport.abort()


@contextlib.asynccontextmanager
async def echo_through_proxy() -> AsyncIterator[tuple[EchoServer, ChaosProxy]]:
    async with EchoServer() as echo, ChaosProxy("127.0.0.1", echo.port) as proxy:
        yield echo, proxy


async def roundtrip(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes, timeout: float = 5.0
) -> bytes:
    writer.write(data)
    await writer.drain()
    return await asyncio.wait_for(reader.readexactly(len(data)), timeout)


async def test_forwards_both_ways_and_counts_bytes() -> None:
    async with echo_through_proxy() as (echo, proxy):
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        payload = bytes(range(256)) * 4096  # 1 MiB, many chunks
        assert await roundtrip(reader, writer, payload) == payload
        await proxy.wait_for(lambda p: p.bytes_down == len(payload))
        assert proxy.bytes_up == len(payload)
        assert (proxy.accepted, proxy.active, echo.connections) == (1, 1, 1)
        # several clients at once, each with its own target connection
        others = [await asyncio.open_connection("127.0.0.1", proxy.port) for _ in range(3)]
        replies = await asyncio.gather(*(roundtrip(r, w, f"client {i}".encode()) for i, (r, w) in enumerate(others)))
        assert replies == [f"client {i}".encode() for i in range(3)]
        assert proxy.accepted == 4
        for _, w in [(reader, writer), *others]:
            w.close()
        await proxy.wait_for(lambda p: p.active == 0)


async def test_half_close_is_forwarded() -> None:
    async with echo_through_proxy() as (_echo, proxy):
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"last words")
        writer.write_eof()
        # the echo server sees EOF through the proxy, answers, and closes its side
        assert await asyncio.wait_for(reader.read(), 5) == b"last words"
        await proxy.wait_for(lambda p: p.active == 0)
        assert proxy.aborted == 0


async def test_cut_aborts_current_connections_and_accepts_new_ones() -> None:
    async with echo_through_proxy() as (echo, proxy):
        conns = [await asyncio.open_connection("127.0.0.1", proxy.port) for _ in range(2)]
        for r, w in conns:
            assert await roundtrip(r, w, b"ping") == b"ping"
        assert proxy.cut() == 2
        assert (proxy.active, proxy.aborted, proxy.cuts) == (0, 2, 1)
        for r, _w in conns:
            # an abort reaches the client as a reset or as an end of stream, never as data
            with contextlib.suppress(ConnectionError):
                assert await asyncio.wait_for(r.read(), 5) == b""
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        assert await roundtrip(reader, writer, b"again") == b"again"
        assert proxy.accepted == 3 and echo.connections == 3
        assert proxy.cut() == 1
        assert proxy.cut() == 0  # nothing left to cut
        writer.close()


async def test_blackhole_drops_bytes_both_ways_and_resets_on_lift() -> None:
    async with echo_through_proxy() as (echo, proxy):
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        assert await roundtrip(reader, writer, b"before") == b"before"
        proxy.blackhole(True)
        writer.write(b"into the void")
        await writer.drain()
        await proxy.wait_for(lambda p: p.bytes_dropped == len(b"into the void"))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(1), 0.2)
        assert echo.received == len(b"before")  # nothing reached the target
        assert proxy.active == 1  # the connection stays open while blackholed
        # lifting the blackhole resets the connection that lost bytes
        proxy.blackhole(False)
        assert proxy.active == 0 and proxy.aborted == 1
        reader2, writer2 = await asyncio.open_connection("127.0.0.1", proxy.port)
        assert await roundtrip(reader2, writer2, b"after") == b"after"
        writer2.close()


async def test_blackhole_drops_the_target_direction_too() -> None:
    # a target that speaks first, when told to: its bytes must not reach the client
    speak = asyncio.Event()
    spoke = asyncio.Event()

    async def talker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await speak.wait()
        writer.write(b"unsolicited")
        await writer.drain()
        spoke.set()
        await reader.read()
        writer.close()

    server = await asyncio.start_server(talker, "127.0.0.1", 0)
    try:
        async with ChaosProxy("127.0.0.1", server.sockets[0].getsockname()[1]) as proxy:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            await proxy.wait_for(lambda p: p.accepted == 1)
            proxy.blackhole(True)
            speak.set()
            await spoke.wait()
            await proxy.wait_for(lambda p: p.bytes_dropped == len(b"unsolicited"))
            assert proxy.bytes_down == 0
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(reader.read(1), 0.2)
            proxy.blackhole(False)
            assert proxy.aborted == 1
            writer.close()
    finally:
        server.close()


async def test_blackhole_lift_without_reset_keeps_the_connection() -> None:
    async with echo_through_proxy() as (_echo, proxy):
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        proxy.blackhole(True)
        writer.write(b"lost")
        await writer.drain()
        await proxy.wait_for(lambda p: p.bytes_dropped == 4)
        proxy.blackhole(False, reset=False)
        assert proxy.active == 1
        assert await roundtrip(reader, writer, b"kept") == b"kept"
        writer.close()


async def test_delay_adds_latency_and_preserves_order() -> None:
    async with echo_through_proxy() as (_echo, proxy):
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        assert await roundtrip(reader, writer, b"warm") == b"warm"
        proxy.delay(0.1)
        loop = asyncio.get_running_loop()
        started = loop.time()
        parts = [f"{i:04d}".encode() for i in range(50)]
        for part in parts:
            writer.write(part)
            await writer.drain()
        data = await asyncio.wait_for(reader.readexactly(4 * len(parts)), 5)
        elapsed = loop.time() - started
        assert data == b"".join(parts)
        assert elapsed >= 0.19  # 0.1 s each way
        proxy.delay(0)
        started = loop.time()
        assert await roundtrip(reader, writer, b"fast") == b"fast"
        assert loop.time() - started < 0.1
        with pytest.raises(ValueError):
            proxy.delay(-1)
        writer.close()


async def test_drop_new_refuses_new_connections_only() -> None:
    async with echo_through_proxy() as (echo, proxy):
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        assert await roundtrip(reader, writer, b"old") == b"old"
        proxy.drop_new(True)
        r2, _w2 = await asyncio.open_connection("127.0.0.1", proxy.port)
        with contextlib.suppress(ConnectionError):
            assert await asyncio.wait_for(r2.read(), 5) == b""
        assert proxy.refused == 1 and echo.connections == 1
        assert await roundtrip(reader, writer, b"still here") == b"still here"
        proxy.drop_new(False)
        r3, w3 = await asyncio.open_connection("127.0.0.1", proxy.port)
        assert await roundtrip(r3, w3, b"new") == b"new"
        assert proxy.accepted == 2
        writer.close()
        w3.close()


async def test_unreachable_target_is_refused_and_target_port_can_change() -> None:
    async with EchoServer() as echo:
        # a port nobody listens on: take one and release it
        probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        dead_port = probe.sockets[0].getsockname()[1]
        probe.close()
        await probe.wait_closed()
        async with ChaosProxy("127.0.0.1", dead_port) as proxy:
            reader, _writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            with contextlib.suppress(ConnectionError):
                assert await asyncio.wait_for(reader.read(), 5) == b""
            assert proxy.refused == 1
            proxy.target_port = echo.port
            r2, w2 = await asyncio.open_connection("127.0.0.1", proxy.port)
            assert await roundtrip(r2, w2, b"found") == b"found"
            w2.close()


async def test_close_ends_everything() -> None:
    async with EchoServer() as echo:
        proxy = await ChaosProxy("127.0.0.1", echo.port).start()
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        assert await roundtrip(reader, writer, b"x") == b"x"
        await proxy.close()
        assert proxy.active == 0
        with contextlib.suppress(ConnectionError):
            assert await asyncio.wait_for(reader.read(), 5) == b""
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", proxy.port)
        await proxy.close()  # idempotent
