"""What one ask costs in CPU, without the scheduler in the figure.

    python -m benchmarks.roundtrip [--n 20000]

Both ends run in this one process and event loop, over a real loopback TCP connection: a
``RemoteActorSystem`` asking a counting actor in a second ``RemoteActorSystem``, then a raw
uvloop + msgpack ping-pong (the ``raw_pingpong`` design). A round trip here is the CPU both
sides spend (encode, write, read, decode, dispatch, the reply and the wake-up), with no
cross-process wake-up in it, so the difference is casty's own cost per ask. Prints the best of
five blocks for each, in microseconds, and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import casty
from benchmarks import remote_app
from benchmarks.remote_app import RawPinger, RawSender
from casty.remote import RemoteActorSystem

BLOCKS = 5


async def casty_round_trip(n: int) -> float:
    """Seconds per ask, best block."""
    async with (
        RemoteActorSystem(remote_app.SYSTEM_NAME, host="127.0.0.1", port=0) as a,
        RemoteActorSystem(remote_app.SYSTEM_NAME, host="127.0.0.1", port=0) as b,
    ):
        counter = a.spawn(remote_app.counting_actor(), "counter")
        ref = b.ref(counter.uri)
        ask = b.ask
        for _ in range(1000):  # warm-up, also opens the connection
            await ask(ref, remote_app.Count, timeout=30)
        best = float("inf")
        for _ in range(BLOCKS):
            start = time.perf_counter()
            for _ in range(n // BLOCKS):
                await ask(ref, remote_app.Count, timeout=30)
            best = min(best, (time.perf_counter() - start) / (n // BLOCKS))
    return best


async def raw_round_trip(n: int) -> float:
    """Seconds per ping-pong, best block."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(RawSender, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    tcp, pinger = await loop.create_connection(RawPinger, "127.0.0.1", port)
    try:
        for i in range(1000):
            await pinger.ping(i)
        best = float("inf")
        for _ in range(BLOCKS):
            start = time.perf_counter()
            for i in range(n // BLOCKS):
                await pinger.ping(i)
            best = min(best, (time.perf_counter() - start) / (n // BLOCKS))
    finally:
        tcp.close()
        server.close()
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.roundtrip")
    parser.add_argument("--n", type=int, default=20_000, help="round trips of each kind")
    args = parser.parse_args(argv)
    ask = casty.run(casty_round_trip(args.n))
    ping = casty.run(raw_round_trip(args.n))
    print(
        f"{casty.IMPLEMENTATION}: one process, loopback: ask {ask * 1e6:.1f} us, raw ping-pong {ping * 1e6:.1f} us,"
        f" casty's own cost {(ask - ping) * 1e6:.1f} us per round trip"
    )
    print(
        json.dumps(
            {
                "implementation": casty.IMPLEMENTATION,
                "ask_us": ask * 1e6,
                "pingpong_us": ping * 1e6,
                "extra_us": (ask - ping) * 1e6,
            }
        )
    )


if __name__ == "__main__":
    main()
