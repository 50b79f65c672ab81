"""``casty.run``: run a coroutine on uvloop."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["new_event_loop", "run"]


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new uvloop event loop (asyncio's default loop when uvloop is not installed)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def run(main: Coroutine[Any, Any, T], *, debug: bool | None = None) -> T:
    """Run ``main`` to completion on a new uvloop event loop and return its result.

    Like :func:`asyncio.run`, it refuses to run inside an already running loop: casty never
    replaces a loop the application already runs (use ``await`` there instead).
    """
    with asyncio.Runner(debug=debug, loop_factory=new_event_loop) as runner:
        return runner.run(main)
