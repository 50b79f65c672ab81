"""pytest-benchmark suite: cross-process tell and stream throughput against one node process.

    python -m pytest benchmarks/test_bench_remote.py --benchmark-group-by=func
    CASTY_NO_EXTENSIONS=1 python -m pytest benchmarks/test_bench_remote.py   # the pure twins

A node (``python -m benchmarks.node casty``) is started once for the module and always ended;
it inherits the environment, so both processes run the implementation this process runs.
Each round is a burst of ``TELLS`` tells confirmed by the counting actor, or a whole stream
of ``ELEMENTS`` readings put in the node and drained here.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from typing import Any

import pytest

import casty
from benchmarks.remote_app import SYSTEM_NAME, Node
from benchmarks.scenarios import drain, open_source, open_stream, tell_burst
from casty import RemoteActorSystem
from casty._run import new_event_loop

TELLS = 50_000
ELEMENTS = 50_000


@pytest.fixture(scope="module")
def node() -> Iterator[Node]:
    with Node("casty", max_seconds=600) as started:
        assert started.info["implementation"] == casty.IMPLEMENTATION
        yield started


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def system(loop: asyncio.AbstractEventLoop) -> Iterator[RemoteActorSystem]:
    system = RemoteActorSystem(SYSTEM_NAME, host="127.0.0.1", port=0)
    loop.run_until_complete(system.start())
    yield system
    loop.run_until_complete(system.shutdown())


def test_remote_tell(benchmark: Any, node: Node, system: RemoteActorSystem, loop: asyncio.AbstractEventLoop) -> None:
    ref = system.ref(node.info["counter"])
    loop.run_until_complete(tell_burst(system, ref, 1000))
    benchmark.extra_info["messages_per_round"] = TELLS
    benchmark.extra_info["implementation"] = casty.IMPLEMENTATION
    benchmark.pedantic(lambda: loop.run_until_complete(tell_burst(system, ref, TELLS)), rounds=5, warmup_rounds=1)


@pytest.mark.parametrize("batch", [0, 1024], ids=["async_for", "batches_1024"])
def test_stream_node_node(
    benchmark: Any, batch: int, node: Node, system: RemoteActorSystem, loop: asyncio.AbstractEventLoop
) -> None:
    service = system.ref(node.info["streams"])
    names = itertools.count()

    async def one_stream() -> int:
        opened = await open_stream(system, service, "burst", ELEMENTS)
        source = await open_source(system, system.ref(opened.producer.uri), f"consumer-{batch}-{next(names)}")
        count, _, _, _ = await drain(source, batch)
        assert count == ELEMENTS
        return count

    benchmark.extra_info["elements_per_round"] = ELEMENTS
    benchmark.extra_info["implementation"] = casty.IMPLEMENTATION
    benchmark.pedantic(lambda: loop.run_until_complete(one_stream()), rounds=5, warmup_rounds=1)
