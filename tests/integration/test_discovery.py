"""DNS discovery in one process, through a resolver given to the node."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from casty import ClusteredActorSystem
from casty.config import CastyConfig


async def test_a_lookup_ending_as_its_loop_is_cancelled_still_ends_the_loop() -> None:
    """The node's refresh loop is cancelled in the very loop turn in which its lookup ends (the
    race in which Python 3.11's ``asyncio.wait_for`` returns the result and loses the
    cancellation): the loop still ends, so a node shutting down does not wait for it forever."""
    armed = asyncio.Event()
    lookups_after = 0

    class CancellingResolver:
        async def resolve(self, name: str) -> Sequence[str]:
            nonlocal lookups_after
            if armed.is_set():
                lookups_after += 1
                loop = asyncio.get_running_loop()
                for task in asyncio.all_tasks():
                    coro: Any = task.get_coro()
                    if getattr(coro, "__qualname__", "") == "ClusteredActorSystem._join_loop":
                        loop.call_soon(task.cancel)  # runs in the turn this lookup's end wakes its caller
            return ["127.0.0.1"]

    config = CastyConfig.from_dict(
        {
            "cluster": {
                "discovery": "dns",
                "service_name": "casty.test",
                "resolve_interval": 0.05,
                "refresh_interval": 0.05,
                "stable_after": 0.1,
            }
        }
    )
    async with ClusteredActorSystem("cluster", "127.0.0.1", 0, config=config, resolver=CancellingResolver()) as node:
        await node.wait_for(1, timeout=10)
        (join_loop,) = [
            t for t in asyncio.all_tasks() if getattr(t.get_coro(), "__qualname__", "") == "ClusteredActorSystem._join_loop"
        ]
        armed.set()
        done, _ = await asyncio.wait({join_loop}, timeout=5)
        assert done == {join_loop} and join_loop.cancelled(), f"the refresh loop went on after {lookups_after} lookups"
