"""pytest-benchmark suite: local tell and ask, compiled and pure mailbox in one run.

    python -m pytest benchmarks/test_bench_local.py --benchmark-group-by=func

The mailbox implementation is swapped in-process for the comparison; the rest of the runtime
is the same, so the ratio isolates the compiled run loop.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

import casty.actors.cell as cell_module
from benchmarks.scenarios import Count, counting_actor
from casty import ActorSystem
from casty._fastpath import _mailbox_py
from casty._run import new_event_loop


def _compiled() -> ModuleType | None:
    try:
        return importlib.import_module("casty._fastpath._mailbox_c")
    except ImportError:
        return None


IMPLS = [
    pytest.param(_mailbox_py, id="pure"),
    pytest.param(_compiled(), id="compiled", marks=pytest.mark.skipif(_compiled() is None, reason="not compiled")),
]

N = 100_000


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = new_event_loop()
    yield loop
    loop.close()


@pytest.mark.parametrize("impl", IMPLS)
def test_local_tell(benchmark: Any, impl: ModuleType, loop: asyncio.AbstractEventLoop, monkeypatch: Any) -> None:
    monkeypatch.setattr(cell_module, "MailboxRunner", impl.MailboxRunner)

    async def make() -> tuple[ActorSystem, Any]:
        system = ActorSystem("bench")
        return system, system.spawn(counting_actor(), "counter")

    system, ref = loop.run_until_complete(make())

    async def burst() -> int:
        tell = ref.tell
        for i in range(N):
            tell(i)
        return await system.ask(ref, lambda r: Count(r), timeout=60)

    benchmark.extra_info["messages_per_round"] = N
    benchmark.pedantic(lambda: loop.run_until_complete(burst()), rounds=5, warmup_rounds=1)
    loop.run_until_complete(system.shutdown())


@pytest.mark.parametrize("impl", IMPLS)
def test_local_ask(benchmark: Any, impl: ModuleType, loop: asyncio.AbstractEventLoop, monkeypatch: Any) -> None:
    monkeypatch.setattr(cell_module, "MailboxRunner", impl.MailboxRunner)

    async def make() -> tuple[ActorSystem, Any]:
        system = ActorSystem("bench")
        return system, system.spawn(counting_actor(), "counter")

    system, ref = loop.run_until_complete(make())

    async def one() -> int:
        return await system.ask(ref, lambda r: Count(r))

    benchmark(lambda: loop.run_until_complete(one()))
    loop.run_until_complete(system.shutdown())
