"""The compiled/pure selection and the mailbox run loop, in both implementations."""

from __future__ import annotations

import asyncio
import importlib
import os
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

import casty
from casty import _fastpath
from casty._fastpath import _mailbox_py
from casty.errors import MailboxFull


def _compiled(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"casty._fastpath._{name}_c")
    except ImportError:
        return None


MAILBOX_IMPLS = [
    pytest.param(_mailbox_py, id="py"),
    pytest.param(
        _compiled("mailbox"),
        id="c",
        marks=pytest.mark.skipif(_compiled("mailbox") is None, reason="mailbox not compiled"),
    ),
]


def test_compiled_modules_loaded_when_expected() -> None:
    """A build that should have compiled the fast paths must not silently fall back."""
    if os.environ.get("CASTY_NO_EXTENSIONS", "") not in ("", "0"):
        assert not casty.COMPILED
        assert casty.IMPLEMENTATION == "pure"
        assert all(m.__name__.endswith("_py") for m in _fastpath.modules.values())
        return
    if os.environ.get("CASTY_EXPECT_COMPILED") == "1":
        assert casty.COMPILED, {k: m.__name__ for k, m in _fastpath.modules.items()}
        assert casty.IMPLEMENTATION == "compiled"
        assert all(m.__name__.endswith("_c") for m in _fastpath.modules.values())
    assert all(m.__name__.endswith("_c") for m in _fastpath.modules.values()) == casty.COMPILED


class FakeCell:
    def __init__(self) -> None:
        self.results: list[Any] = []
        self.failures: list[tuple[BaseException, Any]] = []
        self.suspended: list[Any] = []

    def on_result(self, result: Any, msg: Any) -> None:
        self.results.append((result, msg))

    def on_failure(self, exc: BaseException, msg: Any) -> None:
        self.failures.append((exc, msg))

    def on_suspend(self, coro: Any, yielded: Any, msg: Any) -> None:
        self.suspended.append((coro, yielded, msg))
        coro.close()


SAME = object()


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = casty._run.new_event_loop()
    yield loop
    loop.close()


@pytest.mark.parametrize("impl", MAILBOX_IMPLS)
def test_runner_handles_results_failures_and_suspension(impl: ModuleType, loop: asyncio.AbstractEventLoop) -> None:
    cell = FakeCell()
    dead: list[tuple[Any, str]] = []
    runner = impl.MailboxRunner(cell, loop, 0, impl.DROP_NEW, 64, lambda m, r: dead.append((m, r)), SAME)
    seen: list[Any] = []

    async def receive(ctx: Any, msg: Any) -> Any:
        seen.append(msg)
        if msg == "fail":
            raise ValueError("x")
        if msg == "wait":
            await asyncio.sleep(0.01)
        if msg == "same":
            return SAME
        if msg == "become":
            return "next-behavior"
        return None

    runner.receive = receive
    runner.ctx = "ctx"
    for m in ["a", "same", "become", "fail", "b", "wait", "after"]:
        runner.put(m)
    assert runner.size == 7
    runner.resume()
    loop.run_until_complete(asyncio.sleep(0))
    assert seen == ["a", "same", "become", "fail", "b", "wait"]
    assert cell.results == [("next-behavior", "become")]
    assert [str(e) for e, _ in cell.failures] == ["x"]
    assert runner.suspended and cell.suspended[0][2] == "wait"
    runner.resume()
    loop.run_until_complete(asyncio.sleep(0))
    assert seen[-1] == "after"
    assert runner.close() == []
    runner.put("late")
    assert dead == [("late", "actor stopped")]


@pytest.mark.parametrize("impl", MAILBOX_IMPLS)
def test_runner_batches_by_throughput(impl: ModuleType, loop: asyncio.AbstractEventLoop) -> None:
    cell = FakeCell()
    runner = impl.MailboxRunner(cell, loop, 0, impl.DROP_NEW, 3, lambda m, r: None, SAME)
    seen: list[Any] = []

    def receive(ctx: Any, msg: Any) -> None:
        seen.append(msg)

    runner.receive = receive
    for i in range(7):
        runner.put(i)
    runner.resume()  # schedules one run
    runner._run()  # one turn handles at most `throughput` messages
    assert seen == [0, 1, 2]
    loop.run_until_complete(asyncio.sleep(0.01))
    assert seen == list(range(7))


@pytest.mark.parametrize("impl", MAILBOX_IMPLS)
@pytest.mark.parametrize("strategy", ["DROP_NEW", "DROP_OLDEST", "REJECT"])
def test_runner_overflow(impl: ModuleType, strategy: str, loop: asyncio.AbstractEventLoop) -> None:
    dead: list[Any] = []
    runner = impl.MailboxRunner(FakeCell(), loop, 2, getattr(impl, strategy), 8, lambda m, r: dead.append(m), SAME)
    runner.put(1)
    runner.put(2)
    if strategy == "REJECT":
        with pytest.raises(MailboxFull):
            runner.put(3)
        assert dead == []
    else:
        runner.put(3)
        assert dead == ([3] if strategy == "DROP_NEW" else [1])
    assert runner.size == 2
    with pytest.raises(ValueError):
        impl.MailboxRunner(FakeCell(), loop, 0, 99, 8, lambda m, r: None, SAME)
