"""Benchmark scenarios. Each runs in its own process (the implementation is picked at import):

    python -m benchmarks.scenarios local_tell [--n N]

and prints one JSON object with its figures on the last line of stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import casty
from casty import ActorContext, ActorRef, ActorSystem, Behavior, Behaviors


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
        await system.ask(ref, lambda r: Count(r))
        start = time.perf_counter()
        for i in range(n):
            tell(i)
        got = await system.ask(ref, lambda r: Count(r), timeout=60)
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
            await ask(ref, lambda r: Count(r))
        start = time.perf_counter()
        for _ in range(n):
            t0 = time.perf_counter()
            await ask(ref, lambda r: Count(r))
            samples.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - start
    samples.sort()
    return {
        "rate": n / elapsed,
        "unit": "asks/s",
        "p50_us": samples[len(samples) // 2] * 1e6,
        "p99_us": samples[int(len(samples) * 0.99)] * 1e6,
    }


SCENARIOS: dict[str, tuple[Callable[[int], Awaitable[dict[str, Any]]], int]] = {
    "local_tell": (local_tell, 1_000_000),
    "local_ask": (local_ask, 20_000),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--n", type=int, default=0, help="operations (default: the scenario's own)")
    args = parser.parse_args(argv)
    fn, default_n = SCENARIOS[args.scenario]
    result = casty.run(fn(args.n or default_n))
    result["implementation"] = casty.IMPLEMENTATION
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    main()
