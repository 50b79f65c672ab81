"""A fault-injecting TCP proxy for tests: put it in front of a node and break the network at will.

``ChaosProxy(target_host, target_port)`` listens on ``proxy.port`` and forwards every accepted
connection to the target, both directions.  While it runs, a test can

* ``cut()``: abort every current connection (both sides see a reset); new ones are accepted;
* ``blackhole(True)``: keep the connections open but silently drop every byte, both ways;
  ``blackhole(False)`` lets bytes through again and, by default, resets the connections that
  lost bytes meanwhile (their byte streams have a hole a TCP peer could never see; pass
  ``reset=False`` to keep them anyway);
* ``delay(seconds)``: hold every chunk that long before forwarding it (order preserved);
* ``drop_new(True)``: accept and immediately abort new connections, as an unreachable peer.

Counters (``accepted``, ``refused``, ``aborted``, ``bytes_up``, ``bytes_down``, ``bytes_dropped``,
``active``) say what happened; ``await proxy.wait_for(predicate)`` waits until one of them
reaches a state.  ``target_port`` may be changed while the proxy runs (new connections use it),
so a proxy can be started before the node it fronts, whose advertised port is the proxy's.
"""

from __future__ import annotations

import asyncio
import contextlib

from tests.proxy_base import ProxyBase

__all__ = ["ChaosProxy"]

_CHUNK = 1 << 16


class _Link:
    """One proxied connection: the client side, the target side and a pump per direction."""

    __slots__ = ("client", "lost_bytes", "proxy", "target", "tasks")

    def __init__(self, proxy: ChaosProxy, client: asyncio.StreamWriter, target: asyncio.StreamWriter) -> None:
        self.proxy = proxy
        self.client = client
        self.target = target
        self.lost_bytes = False
        self.tasks: list[asyncio.Task[None]] = []

    def abort(self) -> None:
        for writer in (self.client, self.target):
            with contextlib.suppress(Exception):
                writer.transport.abort()
        for task in self.tasks:
            task.cancel()


class ChaosProxy(ProxyBase):
    """Forward TCP connections to ``target_host:target_port`` and inject faults on demand."""

    STATS = ("accepted", "refused", "aborted", "cuts", "active", "bytes_up", "bytes_down", "bytes_dropped")

    def __init__(
        self, target_host: str, target_port: int, listen_port: int = 0, listen_host: str = "127.0.0.1"
    ) -> None:
        super().__init__(listen_host, listen_port)
        self.target_host = target_host
        self.target_port = target_port
        self._links: set[_Link] = set()
        self._blackhole = False
        self._delay = 0.0
        self._drop_new = False
        self.accepted = 0
        """Connections accepted and forwarded to the target."""
        self.refused = 0
        """Connections aborted on arrival (``drop_new``) or because the target was unreachable."""
        self.aborted = 0
        """Forwarded connections ended by ``cut()`` or by lifting a blackhole."""
        self.cuts = 0
        """Calls to ``cut()``."""
        self.bytes_up = 0
        """Bytes forwarded from clients to the target."""
        self.bytes_down = 0
        """Bytes forwarded from the target to clients."""
        self.bytes_dropped = 0
        """Bytes read while blackholed and thrown away (both directions)."""

    # -- faults ------------------------------------------------------------------------------
    def cut(self) -> int:
        """Abort every current connection; return how many were cut.  New ones are accepted."""
        self.cuts += 1
        links = list(self._links)
        for link in links:
            self._end(link, aborted=True)
        self._notify()
        return len(links)

    def blackhole(self, on: bool, *, reset: bool = True) -> None:
        """Drop every byte both ways while ``on``; lifting it resets connections that lost bytes
        (unless ``reset=False``)."""
        self._blackhole = on
        if not on and reset:
            for link in [link for link in self._links if link.lost_bytes]:
                self._end(link, aborted=True)
        self._notify()

    def delay(self, seconds: float) -> None:
        """Forward each chunk ``seconds`` after it was read (0 for none); order is preserved."""
        if seconds < 0:
            raise ValueError(f"delay must not be negative, got {seconds!r}")
        self._delay = float(seconds)

    def drop_new(self, on: bool) -> None:
        """Abort new connections on arrival while ``on`` (existing ones are untouched)."""
        self._drop_new = on

    @property
    def blackholed(self) -> bool:
        return self._blackhole

    # -- forwarding --------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client_reader, client_writer = reader, writer
        if self._drop_new or self._server is None:
            self.refused += 1
            client_writer.transport.abort()
            self._notify()
            return
        try:
            target_reader, target_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            self.refused += 1
            client_writer.transport.abort()
            self._notify()
            return
        link = _Link(self, client_writer, target_writer)
        self._links.add(link)
        self.accepted += 1
        self._notify()
        link.tasks = [
            asyncio.create_task(self._pump(link, client_reader, target_writer, upstream=True)),
            asyncio.create_task(self._pump(link, target_reader, client_writer, upstream=False)),
        ]
        try:
            await asyncio.gather(*link.tasks, return_exceptions=True)
        finally:
            self._end(link, aborted=False)

    def _end(self, link: _Link, aborted: bool) -> None:
        if link not in self._links:
            return
        self._links.discard(link)
        if aborted:
            self.aborted += 1
            link.abort()
        else:
            for writer in (link.client, link.target):
                with contextlib.suppress(Exception):
                    writer.close()
        self._notify()

    async def _pump(
        self, link: _Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: bool
    ) -> None:
        """Copy ``reader`` to ``writer`` through a queue that applies the delay in order."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        sender = asyncio.create_task(self._send(link, queue, writer, upstream))
        try:
            while True:
                try:
                    data = await reader.read(_CHUNK)
                except (ConnectionError, OSError):
                    break
                if not data:
                    break
                if self._blackhole:
                    self.bytes_dropped += len(data)
                    link.lost_bytes = True
                    self._notify()
                    continue
                queue.put_nowait((loop.time() + self._delay, data))
            queue.put_nowait((0.0, b""))  # end of stream: half-close the other side once sent
            await sender
        finally:
            sender.cancel()

    async def _send(
        self, link: _Link, queue: asyncio.Queue[tuple[float, bytes]], writer: asyncio.StreamWriter, upstream: bool
    ) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due, data = await queue.get()
            if not data:
                with contextlib.suppress(Exception):
                    if writer.can_write_eof():
                        writer.write_eof()
                return
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if self._blackhole:
                # a chunk held by the delay when the blackhole began is lost like the others
                self.bytes_dropped += len(data)
                link.lost_bytes = True
                self._notify()
                continue
            try:
                writer.write(data)
                await writer.drain()
            except (ConnectionError, OSError):
                return
            if upstream:
                self.bytes_up += len(data)
            else:
                self.bytes_down += len(data)
            self._notify()
