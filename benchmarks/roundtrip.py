"""What one ask costs in CPU, without the scheduler in the figure.

    python -m benchmarks.roundtrip [--n 20000]

Both ends run in this one process and event loop, over a real loopback TCP connection: a
``RemoteActorSystem`` asking a counting actor in a second ``RemoteActorSystem``, then a raw
uvloop + msgpack ping-pong (the ``raw_pingpong`` design). A round trip here is the CPU both
sides spend (encode, write, read, decode, dispatch, the reply and the wake-up), with no
cross-process wake-up in it, so the difference is casty's own cost per ask.

Then the same two without sockets ("in memory"): each side's socket writes are replaced by a
pipe that hands the written bytes straight to the other side's ``data_received``, so a round trip
is only the Python and compiled code of both ends (the reply is complete before the ask awaits
it). This is the steadiest figure of casty's own CPU per ask on a noisy machine.

Prints the best of five blocks for each, in microseconds, and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import sys
import time
import types
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgpack  # type: ignore[import-untyped, unused-ignore]

import casty
from benchmarks import remote_app
from benchmarks.remote_app import RawPinger, RawSender
from casty.remote import RemoteActorSystem

BLOCKS = 5


async def _best_block(n: int, one: Callable[[int], Awaitable[Any]]) -> float:
    """Seconds per ``await one(i)``, the best of ``BLOCKS`` blocks of ``n // BLOCKS``."""
    best = float("inf")
    for _ in range(BLOCKS):
        start = time.perf_counter()
        for i in range(n // BLOCKS):
            await one(i)
        best = min(best, (time.perf_counter() - start) / (n // BLOCKS))
    return best


class _Pipe:
    """Stands in for a connection's transport: what is written goes straight to ``peer``."""

    def __init__(self, peer: Any) -> None:
        self.peer = peer

    def write(self, data: bytes) -> None:
        self.peer.data_received(data)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


@contextlib.asynccontextmanager
async def _ask_pair(in_memory: bool) -> AsyncIterator[Callable[[int], Awaitable[Any]]]:
    """Two systems, the second asking a counter in the first, warmed up; yields one ask.
    ``in_memory``: each connection's envelope writer then writes to the other side's
    ``data_received`` instead of its socket."""
    async with (
        RemoteActorSystem(remote_app.SYSTEM_NAME, host="127.0.0.1", port=0) as a,
        RemoteActorSystem(remote_app.SYSTEM_NAME, host="127.0.0.1", port=0) as b,
    ):
        counter = a.spawn(remote_app.counting_actor(), "counter")
        ref = b.ref(counter.uri)
        ask = b.ask

        def one(_: int) -> Awaitable[Any]:
            return ask(ref, remote_app.Count, timeout=30)

        for i in range(1000):  # warm-up, also opens the connection
            await one(i)
        if not in_memory:
            yield one
            return
        assert a.transport is not None and b.transport is not None
        asking = next(iter(b.transport.associations.values())).conn
        answering = next(iter(a.transport.associations.values())).conn
        assert asking is not None and answering is not None
        assert asking.envelopes_out is not None and answering.envelopes_out is not None
        sockets = asking.envelopes_out.write, answering.envelopes_out.write
        asking.envelopes_out.write = _Pipe(answering).write
        answering.envelopes_out.write = _Pipe(asking).write
        try:
            yield one
        finally:
            asking.envelopes_out.write, answering.envelopes_out.write = sockets


async def casty_round_trip(n: int, in_memory: bool = False) -> float:
    """Seconds per ask, best block; ``in_memory``: both connections' writes replaced by pipes
    after the warm-up."""
    async with _ask_pair(in_memory) as one:
        return await _best_block(n, one)


async def ask_opcodes(n: int) -> tuple[float, float, list[tuple[str, float, float]]]:
    """Python bytecodes and calls per in-memory ask (``sys.settrace`` with opcode events over
    ``n`` asks): the total per ask, and per function (opcodes, calls) the largest first."""
    opcodes: collections.Counter[str] = collections.Counter()
    calls: collections.Counter[str] = collections.Counter()

    def tracer(frame: types.FrameType, event: str, arg: Any) -> Any:
        frame.f_trace_opcodes = True
        code = frame.f_code
        key = f"{'/'.join(code.co_filename.rsplit('/', 2)[-2:])}:{code.co_firstlineno}:{code.co_qualname}"
        if event == "call":
            calls[key] += 1
        elif event == "opcode":
            opcodes[key] += 1
        return tracer

    async with _ask_pair(True) as one:
        sys.settrace(tracer)
        try:
            for i in range(n):
                await one(i)
        finally:
            sys.settrace(None)
    rows = [(key, count / n, calls[key] / n) for key, count in opcodes.most_common()]
    return sum(opcodes.values()) / n, sum(calls.values()) / n, rows


async def raw_round_trip(n: int) -> float:
    """Seconds per ping-pong, best block."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(RawSender, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    tcp, pinger = await loop.create_connection(RawPinger, "127.0.0.1", port)
    try:
        for i in range(1000):
            await pinger.ping(i)
        return await _best_block(n, pinger.ping)
    finally:
        tcp.close()
        server.close()


async def raw_in_memory(n: int) -> float:
    """Seconds per ping-pong with the two protocol objects wired by pipes, best block."""
    sender, pinger = RawSender(), RawPinger()
    sender.connection_made(_Pipe(pinger))  # type: ignore[arg-type]
    sender.data_received(msgpack.packb(["pingpong", 0, 0]))
    pinger.tcp = _Pipe(sender)  # type: ignore[assignment]
    return await _best_block(n, pinger.ping)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.roundtrip")
    parser.add_argument("--n", type=int, default=20_000, help="round trips of each kind")
    parser.add_argument(
        "--only",
        choices=("ask-in-memory",),
        help="just the in-memory ask (for instruction counts: run it under callgrind with two values of --n)",
    )
    parser.add_argument("--opcodes", action="store_true", help="Python bytecodes and calls per in-memory ask")
    args = parser.parse_args(argv)
    if args.opcodes:
        total, calls, rows = casty.run(ask_opcodes(args.n))
        print(f"{casty.IMPLEMENTATION}: {total:.0f} Python bytecodes and {calls:.0f} Python calls per in-memory ask")
        for key, count, per_ask in rows[:25]:
            print(f"{count:8.1f} {per_ask:5.1f}  {key}")
        return
    if args.only == "ask-in-memory":
        print(f"{casty.IMPLEMENTATION}: in memory, no sockets: ask {casty.run(casty_round_trip(args.n, True)) * 1e6:.1f} us")
        return
    ask = casty.run(casty_round_trip(args.n))
    ping = casty.run(raw_round_trip(args.n))
    ask_mem = casty.run(casty_round_trip(args.n, in_memory=True))
    ping_mem = casty.run(raw_in_memory(args.n))
    print(
        f"{casty.IMPLEMENTATION}: one process, loopback: ask {ask * 1e6:.1f} us, raw ping-pong {ping * 1e6:.1f} us,"
        f" casty's own cost {(ask - ping) * 1e6:.1f} us per round trip"
    )
    print(
        f"{casty.IMPLEMENTATION}: in memory, no sockets: ask {ask_mem * 1e6:.1f} us, raw ping-pong"
        f" {ping_mem * 1e6:.1f} us"
    )
    print(
        json.dumps(
            {
                "implementation": casty.IMPLEMENTATION,
                "ask_us": ask * 1e6,
                "pingpong_us": ping * 1e6,
                "extra_us": (ask - ping) * 1e6,
                "ask_in_memory_us": ask_mem * 1e6,
                "pingpong_in_memory_us": ping_mem * 1e6,
            }
        )
    )


if __name__ == "__main__":
    main()
