"""A TCP proxy in front of one casty node that can cut it off from chosen peers (network partitions).

The proxy listens on the node's *advertised* port and forwards to the node's *bind* port. A casty
dialer's first frame is its ``hello`` handshake (4-byte big-endian length, then a msgpack map)
carrying the dialer's own advertised ``port``; the proxy reads that frame, learns which node is
dialing, and then either replays it to the node and forwards bytes both ways, or aborts the
connection when that dialer is blocked.

Since casty keeps one TCP connection per pair of nodes, dialed by whichever side needed it first,
every connection between two nodes goes through exactly one proxy: the one in front of the node
that was dialed. A partition of the nodes into sides is therefore: each node's proxy blocks the
advertised ports of the nodes on the other sides (``block(ports)``), which aborts the current
connections from those dialers and refuses their new ones right after their hello. ``unblock()``
heals it. Dialers whose port is not listed (a test's own system, say) always get through.

``target_port`` may be set after ``start()``: connections accepted before it is known wait for
it (at most ``target_timeout`` seconds), so the proxy can start before the node behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Iterable
from typing import Self

import msgpack  # type: ignore[import-untyped, unused-ignore]

from tests.proxy_base import ProxyBase

__all__ = ["PartitionProxy", "read_hello"]

_CHUNK = 1 << 16
_HELLO_LIMIT = 64 * 1024
"""A first frame announced larger than this is not a casty hello (TLS, garbage): forwarded as is."""


async def read_hello(reader: asyncio.StreamReader) -> tuple[bytes, int | None]:
    """Read the dialer's first frame; return the bytes read (to replay) and its advertised port.

    The port is None when the first frame is not a casty hello map with an int ``port``; the
    bytes read so far are returned either way. Raises ``asyncio.IncompleteReadError`` when the
    dialer closes before sending a whole frame."""
    header = await reader.readexactly(4)
    size = int.from_bytes(header, "big")
    if size > _HELLO_LIMIT:
        return header, None
    body = await reader.readexactly(size)
    try:
        msg = msgpack.unpackb(body, raw=False)
    except Exception:
        return header + body, None
    port = msg.get("port") if isinstance(msg, dict) and msg.get("t") == "hello" else None
    return header + body, port if isinstance(port, int) and not isinstance(port, bool) else None


class _Link:
    """One forwarded connection: the dialer side, the node side and a pump per direction."""

    __slots__ = ("client", "dialer_port", "target", "tasks")

    def __init__(self, dialer_port: int | None, client: asyncio.StreamWriter) -> None:
        self.dialer_port = dialer_port
        self.client = client
        self.target: asyncio.StreamWriter | None = None
        self.tasks: list[asyncio.Task[None]] = []

    def abort(self) -> None:
        for writer in (self.client, self.target):
            if writer is not None:
                with contextlib.suppress(Exception):
                    writer.transport.abort()
        for task in self.tasks:
            task.cancel()


class PartitionProxy(ProxyBase):
    """Forward connections to one node; cut the dialers whose advertised port is blocked."""

    STATS = ("accepted", "forwarded", "refused", "aborted", "failed", "active")

    def __init__(
        self,
        target_port: int | None = None,
        *,
        target_host: str = "127.0.0.1",
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        hello_timeout: float = 5.0,
        target_timeout: float = 10.0,
    ) -> None:
        super().__init__(listen_host, listen_port)
        self.target_host = target_host
        self.hello_timeout = hello_timeout
        self.target_timeout = target_timeout
        self._target_port = target_port
        self._target_known: asyncio.Event | None = None
        self._blocked: frozenset[int] = frozenset()
        self._links: set[_Link] = set()
        self.accepted = 0
        """Connections accepted from dialers."""
        self.forwarded = 0
        """Connections forwarded to the node (after their hello)."""
        self.refused = 0
        """Connections aborted right after their hello because the dialer is blocked."""
        self.aborted = 0
        """Forwarded connections aborted by ``block()``."""
        self.failed = 0
        """Connections dropped because the dialer sent no whole first frame in time or the node
        could not be reached."""
        self.hellos: Counter[int | None] = Counter()
        """First frames seen, by the dialer's advertised port (None: not a casty hello)."""

    # -- life cycle ----------------------------------------------------------------------------
    async def start(self) -> Self:
        self._target_known = asyncio.Event()
        if self._target_port is not None:
            self._target_known.set()
        return await super().start()

    @property
    def target_port(self) -> int | None:
        return self._target_port

    @target_port.setter
    def target_port(self, port: int) -> None:
        """Where the node listens; connections waiting for it proceed."""
        self._target_port = port
        if self._target_known is not None:
            self._target_known.set()

    @property
    def blocked(self) -> frozenset[int]:
        return self._blocked

    # -- partitions ----------------------------------------------------------------------------
    def block(self, ports: Iterable[int]) -> int:
        """Cut off the dialers advertising one of ``ports``: abort their connections now and
        refuse their new ones. Replaces the previous set. Returns how many connections it aborted."""
        self._blocked = frozenset(ports)
        doomed = [link for link in self._links if link.dialer_port in self._blocked]
        for link in doomed:
            self._links.discard(link)
            link.abort()
        self.aborted += len(doomed)
        self._notify()
        return len(doomed)

    def unblock(self) -> None:
        """Let every dialer through again (they reconnect by themselves)."""
        self._blocked = frozenset()
        self._notify()

    def dialers(self) -> frozenset[int | None]:
        """Advertised ports of the dialers currently forwarded."""
        return frozenset(link.dialer_port for link in self._links)

    # -- forwarding ----------------------------------------------------------------------------
    def _drop(self, writer: asyncio.StreamWriter, counter: str) -> None:
        setattr(self, counter, getattr(self, counter) + 1)
        with contextlib.suppress(Exception):
            writer.transport.abort()
        self._notify()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self._notify()
        try:
            first, dialer_port = await asyncio.wait_for(read_hello(client_reader), self.hello_timeout)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, OSError):
            self._drop(client_writer, "failed")
            return
        self.hellos[dialer_port] += 1
        self._notify()
        if dialer_port in self._blocked:
            self._drop(client_writer, "refused")
            return
        link = _Link(dialer_port, client_writer)
        self._links.add(link)  # from here on block() can abort it
        try:
            assert self._target_known is not None
            await asyncio.wait_for(self._target_known.wait(), self.target_timeout)
            assert self._target_port is not None
            target_reader, target_writer = await asyncio.open_connection(self.target_host, self._target_port)
        except (TimeoutError, OSError):
            if link in self._links:
                self._links.discard(link)
                self._drop(client_writer, "failed")
            return
        link.target = target_writer
        if link not in self._links:  # blocked while connecting to the node
            link.abort()
            return
        target_writer.write(first)
        self.forwarded += 1
        self._notify()
        link.tasks = [
            asyncio.create_task(self._pump(client_reader, target_writer)),
            asyncio.create_task(self._pump(target_reader, client_writer)),
        ]
        try:
            await asyncio.gather(*link.tasks, return_exceptions=True)
        finally:
            if link in self._links:
                self._links.discard(link)
                for w in (client_writer, target_writer):
                    with contextlib.suppress(Exception):
                        w.close()
                self._notify()

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(_CHUNK):
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            with contextlib.suppress(Exception):
                writer.transport.abort()
