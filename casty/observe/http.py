"""The metrics and health endpoint: a small HTTP/1.1 server on the node's own event loop.

Served when ``[metrics] port`` is set:

* ``GET /metrics`` -- the Prometheus text (``casty[metrics]``; 501 without it)
* ``GET /alive`` -- 200 while the event loop keeps up with its timers (it has not lagged
  ``[metrics] alive_timeout`` behind), 503 otherwise
* ``GET /ready`` -- 200 while :func:`casty.observe.view.readiness` holds, 503 otherwise; the
  body says why

It is bounded like every other listener: at most ``max_connections`` connections at once
(further ones are closed at once), a request head of at most ``max_request_size`` bytes, and
``request_timeout`` seconds to send it. Every answer closes its connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import TYPE_CHECKING

from casty.errors import ConfigError
from casty.observe.view import readiness

if TYPE_CHECKING:
    from casty.actors.system import ActorSystem
    from casty.observe.metrics import Exposition

__all__ = ["Observer", "start_observer"]

log = logging.getLogger("casty.observe")

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 413: "Content Too Large",
            500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable"}
_PROBE_INTERVAL = 0.25


class Observer:
    """The running endpoint of one system (see the module docstring)."""

    def __init__(self, system: ActorSystem) -> None:
        self.system = system
        self.config = system.config.metrics
        self.server: asyncio.Server | None = None
        self.port = 0
        self.active = 0
        self.refused = 0
        self._lag = 0.0
        self._probe: asyncio.TimerHandle | None = None
        self._expected = 0.0
        self._exposition: Exposition | None = None
        self._exposition_error = ""
        self._handlers: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        cfg = self.config
        loop = self.system.loop
        try:
            from casty.observe.metrics import Exposition, MetricsUnavailable

            try:
                self._exposition = Exposition(self.system)
            except MetricsUnavailable as exc:
                self._exposition_error = str(exc)
                log.warning("%s; /metrics answers 501, /alive and /ready are served", exc)
        except ImportError as exc:  # pragma: no cover - a broken installation
            self._exposition_error = str(exc)
        try:
            self.server = await asyncio.start_server(
                self._serve, cfg.host, cfg.port, limit=cfg.max_request_size, reuse_address=True, backlog=64
            )
        except OSError as exc:
            raise ConfigError(f"metrics.port: cannot listen on {cfg.host}:{cfg.port}: {exc.strerror or exc}") from exc
        self.port = self.server.sockets[0].getsockname()[1]
        self._expected = loop.time() + _PROBE_INTERVAL
        self._probe = loop.call_later(_PROBE_INTERVAL, self._on_probe)
        log.info("metrics and health endpoint on http://%s:%d/", cfg.host, self.port)

    def _on_probe(self) -> None:
        loop = self.system.loop
        now = loop.time()
        self._lag = max(0.0, now - self._expected)
        self._expected = now + _PROBE_INTERVAL
        self._probe = loop.call_later(_PROBE_INTERVAL, self._on_probe)

    def alive(self) -> tuple[bool, str]:
        """The loop answers: its timers fire within ``alive_timeout`` of when they were due."""
        now = self.system.loop.time()
        lag = max(self._lag, now - self._expected)
        if lag >= self.config.alive_timeout:
            return False, f"event loop lagging {lag:.2f}s behind its timers"
        return True, "alive"

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            self._probe = None
        if self.server is not None:
            self.server.close()
            for task in list(self._handlers):
                task.cancel()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await self.server.wait_closed()
            self.server = None

    # -- one connection ------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.active >= self.config.max_connections:
            self.refused += 1
            writer.transport.abort()
            return
        self.active += 1
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            async with asyncio.timeout(self.config.request_timeout):
                await self._answer(reader, writer)
        except (TimeoutError, ConnectionError, OSError, asyncio.IncompleteReadError):
            writer.transport.abort()
        except asyncio.CancelledError:
            writer.transport.abort()
        finally:
            self.active -= 1
            if task is not None:
                self._handlers.discard(task)
            if not writer.transport.is_closing():
                writer.close()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            await self._respond(writer, 413, b"request too large\n")
            return
        except asyncio.IncompleteReadError:
            writer.transport.abort()
            return
        if len(head) > self.config.max_request_size:
            await self._respond(writer, 413, b"request too large\n")
            return
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            await self._respond(writer, 400, b"bad request\n")
            return
        method, target = parts[0], parts[1].split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            await self._respond(writer, 405, b"only GET and HEAD\n", extra=b"Allow: GET, HEAD\r\n")
            return
        status, body, ctype = self._route(target)
        await self._respond(writer, status, b"" if method == "HEAD" else body, ctype=ctype, length=len(body))

    def _route(self, target: str) -> tuple[int, bytes, str]:
        text = "text/plain; charset=utf-8"
        if target == "/metrics":
            if self._exposition is None:
                return 501, (self._exposition_error + "\n").encode(), text
            try:
                from casty.observe.metrics import CONTENT_TYPE

                return 200, self._exposition.render(), CONTENT_TYPE
            except Exception:
                log.exception("rendering the metrics failed")
                return 500, b"rendering the metrics failed\n", text
        if target in ("/alive", "/ready"):
            ok, why = self.alive() if target == "/alive" else readiness(self.system)
            body = json.dumps({"status": "ok" if ok else "unavailable", "reason": why}).encode() + b"\n"
            return (200 if ok else 503), body, "application/json"
        return 404, b"not found: try /metrics, /alive or /ready\n", text

    async def _respond(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes,
        *,
        ctype: str = "text/plain; charset=utf-8",
        length: int | None = None,
        extra: bytes = b"",
    ) -> None:
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\n"
            f"Content-Type: {ctype}\r\n"
            f"Content-Length: {len(body) if length is None else length}\r\n"
            "Cache-Control: no-store\r\n"
            "Connection: close\r\n"
        ).encode() + extra + b"\r\n"
        writer.write(head + body)
        await writer.drain()
        writer.close()


async def start_observer(system: ActorSystem) -> Observer | None:
    """Apply ``[logging]``, and start the endpoint when ``[metrics] port`` is set
    (:class:`~casty.errors.ConfigError` when it cannot listen there)."""
    from casty.observe.logs import configure_logging

    configure_logging(system)
    if not system.config.metrics.port:
        return None
    observer = Observer(system)
    await observer.start()
    return observer
