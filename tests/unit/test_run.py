"""``casty.run``'s helpers that need no node."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from casty._run import _log_waiting_tasks


async def test_a_drain_that_overran_names_the_tasks_still_waiting(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)

    async def parked() -> None:
        await asyncio.sleep(30)

    task = asyncio.ensure_future(parked())
    task.set_name("parked-task")
    await asyncio.sleep(0)
    try:
        _log_waiting_tasks()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    lines = [r.getMessage() for r in caplog.records]
    assert any("still waiting: task parked-task in sleep" in line for line in lines), lines
