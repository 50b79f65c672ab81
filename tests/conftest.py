"""Test helpers: every async test runs on a fresh uvloop loop, bounded by pytest-timeout."""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from casty._run import new_event_loop


def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests on a new uvloop loop (no plugin needed)."""
    func = pyfuncitem.obj
    if not inspect.iscoroutinefunction(func):
        return None
    funcargs = pyfuncitem.funcargs
    args = {name: funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    # Bound the test inside its own loop, a few seconds before pytest-timeout's hard limit
    # (whose signal cannot interrupt a loop waiting in C), so a stuck test fails with its own
    # stack and cleans up instead of hanging the run.
    marker = pyfuncitem.get_closest_marker("timeout")
    limit = float(marker.args[0]) if marker and marker.args else float(pyfuncitem.config.getini("timeout") or 120)
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(asyncio.wait_for(func(**args), max(1.0, limit - 5.0)))
    return True


async def eventually(
    predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.005, what: str = "condition"
) -> None:
    """Await until ``predicate()`` is true; fail with ``what`` after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


def run_async(coro_fn: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
    @functools.wraps(coro_fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            return runner.run(coro_fn(*args, **kwargs))

    return wrapper


# Tiers: tests/unit (no sockets), tests/integration (real sockets, one process),
# tests/multiprocess (several processes), tests/faults (fault injection, hostile input).
# Everything in the last two tiers is `slow`; `make test-fast` runs the rest. Tests of the
# multiprocess tier are also marked `multiprocess` (the matrix adds two of its files).
_SLOW_TIERS = ("multiprocess", "faults")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        tiers = item.path.parts[-3:-1]
        if any(part in _SLOW_TIERS for part in tiers):
            item.add_marker(pytest.mark.slow)
        if "multiprocess" in tiers:
            item.add_marker(pytest.mark.multiprocess)
