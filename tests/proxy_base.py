"""What the test proxies (``tests/chaos_proxy.py``, ``tests/partition_proxy.py``) share: a
listening server on loopback, the links it forwards, the tasks serving them, and counters a
test can await with ``wait_for``."""

from __future__ import annotations

import abc
import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, ClassVar, Protocol, Self


class _Abortable(Protocol):
    def abort(self) -> None: ...


class ProxyBase(abc.ABC):
    """Listens on ``listen_host:listen_port`` (0: a free port) and hands each connection to
    ``_serve``; ``close()`` aborts every link and ends every serving task."""

    #: the counters ``stats()`` reports, by attribute name
    STATS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, listen_host: str, listen_port: int) -> None:
        self.listen_host = listen_host
        self.listen_port = listen_port
        self._server: asyncio.AbstractServer | None = None
        self._links: set[Any] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._changed: asyncio.Event | None = None

    # -- life cycle --------------------------------------------------------------------------
    async def start(self) -> Self:
        self._changed = asyncio.Event()
        self._server = await asyncio.start_server(self._on_client, self.listen_host, self.listen_port)
        sockets = self._server.sockets or ()
        self.listen_port = sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        server = self._server
        if server is None:
            return
        self._server = None
        server.close()
        links: list[_Abortable] = list(self._links)
        for link in links:
            link.abort()
        self._links.clear()
        for task in list(self._handlers):
            task.cancel()
        if self._handlers:
            await asyncio.gather(*self._handlers, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 1.0)

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def port(self) -> int:
        """The port the proxy listens on (the one the proxied node advertises)."""
        return self.listen_port

    @property
    def active(self) -> int:
        """Connections currently forwarded."""
        return len(self._links)

    # -- waiting for a state -----------------------------------------------------------------
    async def wait_for(self, predicate: Callable[[Self], bool], timeout: float = 10.0) -> None:
        """Wait until ``predicate(self)`` holds (re-checked whenever a counter changes)."""
        assert self._changed is not None, "start the proxy first"

        async def until() -> None:
            while not predicate(self):
                assert self._changed is not None
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(until(), timeout)

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()

    def stats(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.STATS}

    # -- serving -----------------------------------------------------------------------------
    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._serve(reader, writer)
        finally:
            self._handlers.discard(task)

    @abc.abstractmethod
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Forward one accepted connection."""
