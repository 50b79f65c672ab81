"""``casty.run``: run a coroutine on uvloop, draining the cluster nodes on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["new_event_loop", "run"]

log = logging.getLogger("casty")

_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_DRAIN_GRACE = 2.0
"""Seconds past the longest ``drain_timeout`` after which ``run`` stops waiting for drains."""


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new uvloop event loop (asyncio's default loop when uvloop is not installed)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


class _Drained(Exception):
    """``main`` was ended by a drain after a signal: the process exits 0."""


async def _drain_all() -> None:
    from casty.cluster.system import ClusteredActorSystem

    systems = ClusteredActorSystem.running()
    if not systems:
        return
    limit = max(s.config.shutdown.drain_timeout for s in systems) + _DRAIN_GRACE
    for system in systems:
        system.begin_drain()  # at once: nothing new is accepted from here on
    drains = [asyncio.ensure_future(s.drain()) for s in systems]
    done, pending = await asyncio.wait(drains, timeout=limit)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            log.error("drain failed: %r", task.exception())
    if pending:
        log.error("%d drains did not end within %.1fs; exiting anyway", len(pending), limit)
        _log_waiting_tasks()
        for task in pending:
            task.cancel()


def _log_waiting_tasks(limit: int = 20) -> None:
    """Name, at WARNING, the tasks still waiting and where each one waits (its innermost
    awaiting frame): what kept a drain from ending."""
    current = asyncio.current_task()
    shown = 0
    for task in asyncio.all_tasks():
        if task is current or task.done():
            continue
        if shown == limit:
            log.warning("(and more tasks)")
            break
        shown += 1
        coro: Any = task.get_coro()
        where = "?"
        while coro is not None:
            frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
            if frame is not None:
                where = f"{frame.f_code.co_qualname} ({frame.f_code.co_filename}:{frame.f_lineno})"
            coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        log.warning("still waiting: task %s in %s", task.get_name(), where)


async def _supervise(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main``; on the first SIGTERM/SIGINT drain every running cluster node, then cancel
    ``main`` (unless it ended by itself) and raise ``_Drained``; a second signal exits at once."""
    from casty.errors import DrainingError

    loop = asyncio.get_running_loop()
    task: asyncio.Task[T] = asyncio.ensure_future(main)
    received: list[int] = []
    drain: asyncio.Task[None] | None = None

    def on_drained(_: object) -> None:
        if not task.done():
            task.cancel()

    def on_signal(signum: int) -> None:
        nonlocal drain
        received.append(signum)
        if len(received) > 1:
            log.warning("second signal (%s): exiting at once", signal.Signals(signum).name)
            os._exit(128 + signum)
        log.warning("%s received: draining (a second signal exits at once)", signal.Signals(signum).name)
        drain = loop.create_task(_drain_all())
        drain.add_done_callback(on_drained)

    installed: list[int] = []
    if threading.current_thread() is threading.main_thread():
        for sig in _SIGNALS:
            try:
                loop.add_signal_handler(sig, on_signal, sig)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - platforms without them
                continue
            installed.append(sig)
    try:
        try:
            result = await task
        except asyncio.CancelledError:
            if received:
                raise _Drained from None
            raise
        except DrainingError as exc:
            if received:
                log.info("main ended by the drain: %s", exc)
                raise _Drained from None
            raise
        if drain is not None:
            await drain
        return result
    finally:
        for installed_sig in installed:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(installed_sig)


def run(main: Coroutine[Any, Any, T], *, debug: bool | None = None, drain_on_signal: bool = True) -> T:
    """Run ``main`` to completion on a new uvloop event loop and return its result.

    Like :func:`asyncio.run`, it refuses to run inside an already running loop: casty never
    replaces a loop the application already runs (use ``await`` there instead).

    With ``drain_on_signal`` (the default, in the main thread) the first SIGTERM or SIGINT
    drains every running :class:`~casty.ClusteredActorSystem` (``system.drain()``: streams
    deliver what they accepted and complete, the node leaves the cluster, within
    ``[shutdown] drain_timeout``), then cancels ``main`` if it has not ended by itself, and the
    process exits with status 0 (``SystemExit(0)``); a ``DrainingError`` that ends ``main``
    during the drain counts as that clean end. A second signal exits at once with status
    128 + the signal number. A program that installs its own handlers (``loop.add_signal_handler``)
    replaces these.
    """
    with asyncio.Runner(debug=debug, loop_factory=new_event_loop) as runner:
        if not drain_on_signal:
            return runner.run(main)
        try:
            return runner.run(_supervise(main))
        except _Drained:
            pass
    raise SystemExit(0)
