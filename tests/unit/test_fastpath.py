"""The compiled/pure selection and the mailbox run loop, in both implementations."""

from __future__ import annotations

import asyncio
import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

import casty
from casty import _fastpath
from casty._fastpath import _mailbox_py
from casty._fastpath._env import EXPECT_COMPILED, NO_EXTENSIONS, env_flag
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
    if env_flag(NO_EXTENSIONS):
        assert not casty.COMPILED
        assert casty.IMPLEMENTATION == "pure"
        assert all(m.__name__.endswith("_py") for m in _fastpath.modules.values())
        return
    if env_flag(EXPECT_COMPILED):
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


def _import_casty(env_extra: dict[str, str], block_compiled: bool) -> subprocess.CompletedProcess[str]:
    """``import casty`` in a fresh interpreter, optionally as if no compiled module had been built."""
    block = "".join(f"sys.modules['casty._fastpath._{n}_c'] = None; " for n in _fastpath.FAST_PATHS)
    code = f"import sys; {block if block_compiled else ''}import casty; print(casty.IMPLEMENTATION)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASTY_")} | env_extra
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_missing_compiled_modules_log_one_warning() -> None:
    proc = _import_casty({}, block_compiled=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "pure"
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"compiled fast paths missing ({', '.join(_fastpath.FAST_PATHS)})" in lines[0]
    assert "2x slower" in lines[0] and "CASTY_REQUIRE_EXTENSIONS=1" in lines[0]


def test_a_stale_compiled_module_is_not_used() -> None:
    """A compiled module built from other sources than the Python beside it (here: a reply
    slot class without ``target``) is set aside for its twin, with one warning naming it,
    instead of failing at its first use."""
    stale = (
        "import sys, types; m = types.ModuleType('casty._fastpath._ask_c'); m.__all__ = ['ReplySlot']; "
        "m.ReplySlot = type('ReplySlot', (), {'future': None, 'late': None, 'is_local': True, "
        "'tell': None, 'add_watcher': None, 'remove_watcher': None}); "
        "sys.modules['casty._fastpath._ask_c'] = m; "
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASTY_")}
    code = (
        stale + "import casty; from casty import _fastpath; print(casty.IMPLEMENTATION, _fastpath.ReplySlot.__module__)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    implementation, module = proc.stdout.split()
    assert module == "casty._fastpath._ask_py"
    assert implementation in ("mixed", "pure")  # pure when nothing else is compiled here
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "ask (built from other sources, ReplySlot differs in target; rebuild it)" in lines[0]


def test_a_compiled_module_built_from_an_older_pyx_is_not_used(tmp_path: Any) -> None:
    """Same public API, other sources: the digest compiled into the module is not the digest of
    the .pyx beside it (edited, or another branch checked out, without a rebuild)."""
    (tmp_path / "_ask_c.pyx").write_text("# the source as it is now\n")
    from casty._fastpath import _ask_py

    public = sorted(n for n in dir(_ask_py.ReplySlot) if not n.startswith("_"))
    stale = (
        "import sys, types; m = types.ModuleType('casty._fastpath._ask_c'); m.__all__ = ['ReplySlot']; "
        f"m.ReplySlot = type('ReplySlot', (), dict.fromkeys({public!r})); m._SOURCE_DIGEST = '01234567'; "
        f"m.__file__ = {str(tmp_path / '_ask_c.cpython-311-x86_64-linux-gnu.so')!r}; "
        "sys.modules['casty._fastpath._ask_c'] = m; "
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASTY_")}
    code = stale + "import casty; from casty import _fastpath; print(_fastpath.ReplySlot.__module__)"
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["casty._fastpath._ask_py"]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "ask (built from other sources, _ask_c.pyx changed since it was built; rebuild it)" in lines[0]


@pytest.mark.skipif(not _fastpath.COMPILED, reason="needs the compiled build")
def test_every_compiled_module_carries_the_digest_of_its_pyx() -> None:
    import binascii
    from pathlib import Path

    for name in _fastpath.FAST_PATHS:
        module = importlib.import_module(f"casty._fastpath._{name}_c")
        assert module.__file__ is not None
        source = Path(module.__file__).with_name(f"_{name}_c.pyx").read_bytes()
        assert f"{binascii.crc32(source):08x}" == module._SOURCE_DIGEST, name


def test_pure_build_by_choice_is_silent() -> None:
    proc = _import_casty({"CASTY_NO_EXTENSIONS": "1"}, block_compiled=True)
    assert proc.returncode == 0, proc.stderr
    assert (proc.stdout.strip(), proc.stderr) == ("pure", "")


def test_bad_switch_value_is_a_config_error() -> None:
    proc = _import_casty({"CASTY_NO_EXTENSIONS": "sometimes"}, block_compiled=False)
    assert proc.returncode != 0
    assert "casty.errors.ConfigError: CASTY_NO_EXTENSIONS='sometimes' is not a switch value" in proc.stderr


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", False), ("0", False), (" off ", False), ("No", False), ("1", True), ("TRUE", True), ("on", True)],
)
def test_switch_values(value: str, expected: bool) -> None:
    assert env_flag("X", {"X": value}) is expected
    assert env_flag("X", {}) is False
    with pytest.raises(ValueError, match="X='2' is not a switch value"):
        env_flag("X", {"X": "2"})


@pytest.mark.parametrize("impl", MAILBOX_IMPLS)
def test_runner_notifies_once_when_drained_below_a_mark(impl: ModuleType, loop: asyncio.AbstractEventLoop) -> None:
    runner = impl.MailboxRunner(FakeCell(), loop, 0, impl.DROP_NEW, 2, lambda m, r: None, SAME)
    runner.receive = lambda ctx, msg: None
    calls: list[int] = []
    for i in range(7):
        runner.put(i)
    runner.notify_below(3, lambda: calls.append(runner.size))
    runner.resume()
    runner._run()  # 5 left: above the mark
    assert calls == []
    runner._run()  # 3 left: at the mark
    assert calls == [3]
    loop.run_until_complete(asyncio.sleep(0.01))
    assert calls == [3] and runner.size == 0  # once only
    # already below the mark: the next turn tells at once
    runner.notify_below(3, lambda: calls.append(-1))
    loop.run_until_complete(asyncio.sleep(0.01))
    assert calls == [3, -1]
    # a mailbox that closes tells too (its messages will never be processed)
    runner.suspend()
    for i in range(5):
        runner.put(i)
    runner.notify_below(1, lambda: calls.append(-2))
    runner.close()
    assert calls == [3, -1, -2]
