"""TCP transport: one connection per pair of processes, msgpack frames, remote refs and watch.

Connection life cycle
    The dialer sends ``hello`` (protocol version, system name, advertised address, incarnation
    uid, kind, nonce); the acceptor answers ``welcome`` (its own identity, a nonce and, with a
    cluster secret, an HMAC over the dialer's nonce) or ``refused`` with a reason and closes;
    the dialer ends with ``confirm`` (its HMAC over the acceptor's nonce). Handshake frames are
    plain msgpack maps; everything after them is an envelope encoded by the connection's serde
    encoder: ``[target, message]`` where ``target`` is ``[id, path]`` the first time a path is
    used on the connection and the bare ``id`` afterwards.

One connection per pair
    A connection carries traffic both ways. When two processes dial each other at once, the
    connection dialed by the lower address wins: the other is refused during its handshake, so
    no message is ever written to a connection that is then dropped.

Outbound path
    ``tell`` on a remote ref appends ``(path, message)`` to the peer's queue and, once per
    event-loop turn, the queue is encoded into one buffer and written with one ``write()``.
    The queue is bounded (``remote.outbound_queue_size``); encoding stops while the socket's
    buffer is above ``remote.outbound_buffer_size``. A message that cannot be sent (queue full,
    not serializable, too large, peer gone) becomes a ``DeadLetter`` carrying the reason.
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import contextlib
import hashlib
import hmac
import logging
import os
import random
import socket
import ssl
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgpack  # type: ignore[import-untyped, unused-ignore]

from casty._fastpath import FrameDecoder, FrameEncoder
from casty.actors.cell import ActorCell
from casty.actors.events import Terminated
from casty.actors.ref import ActorAddress, ActorRef, parse_uri
from casty.errors import (
    CastyError,
    DeserializationError,
    FrameError,
    FrameTooLarge,
    HandshakeError,
    MailboxFull,
    SerializationError,
)
from casty.serde import MessageDecoder, MessageEncoder, MsgpackSerializer, PickleSerializer, Serializer

if TYPE_CHECKING:
    from casty.actors.system import ActorSystem
    from casty.config import RemoteConfig

__all__ = [
    "CONTROL_PATH",
    "PROTOCOL_VERSION",
    "Association",
    "Connection",
    "RemoteTarget",
    "RemoteTransport",
    "Unwatch",
    "Watch",
]

log = logging.getLogger("casty.remote")

PROTOCOL_VERSION = 1
CONTROL_PATH = "/system/remote"
_HANDSHAKE_LIMIT = 64 * 1024
_FLUSH_CHUNK = 1 << 20


@dataclass(frozen=True)
class Watch:
    """Control message: ``watcher`` (on the sender's node) watches the actor at ``path``."""

    path: str
    watcher: ActorRef[Any]


@dataclass(frozen=True)
class Unwatch:
    path: str
    watcher: ActorRef[Any]


@dataclass(frozen=True)
class Ping:
    """Control message: sent on a connection that has been silent; any answer proves it alive."""


@dataclass(frozen=True)
class Pong:
    pass


class RemoteTarget:
    """What a ref to an actor in another process points at.

    It binds to the peer's :class:`Association` on first use, and again if that association was
    dropped (the peer was declared gone, or it sat idle and was pruned): refs that arrive inside
    messages and are never used cost no association, so they cannot grow the transport's tables.
    """

    __slots__ = ("address", "assoc", "path", "transport")
    is_local = False

    def __init__(
        self, transport: RemoteTransport, address: ActorAddress, path: str, assoc: Association | None = None
    ) -> None:
        self.transport = transport
        self.address = address
        self.path = path
        self.assoc = assoc

    def bound(self) -> Association:
        assoc = self.assoc
        if assoc is None or assoc.gone:
            assoc = self.assoc = self.transport.association(self.address)
        return assoc

    def tell(self, msg: object) -> None:
        assoc = self.assoc
        if assoc is None or assoc.gone:
            assoc = self.bound()
        assoc.send(self.path, msg)

    def add_watcher(self, watcher: ActorRef[Any]) -> None:
        self.bound().add_watch(self.path, watcher)

    def remove_watcher(self, watcher: ActorRef[Any]) -> None:
        assoc = self.assoc
        if assoc is not None and not assoc.gone:
            assoc.remove_watch(self.path, watcher)


def _mac(secret: bytes, role: bytes, nonce: bytes, system: str) -> bytes:
    return hmac.new(secret, role + b"|" + system.encode() + b"|" + nonce, hashlib.sha256).digest()


class Connection(asyncio.Protocol):
    """One TCP connection: handshake, frame decoding, dispatch, and coalesced writes."""

    def __init__(self, transport: RemoteTransport, inbound: bool, assoc: Association | None = None) -> None:
        self.owner = transport
        self.inbound = inbound
        self.assoc: Association | None = assoc
        self.tcp: asyncio.Transport | None = None
        self.peer_label = "?"
        self.state = "handshake"  # handshake -> open -> closed
        limit = transport.config.max_frame_size
        # one decoder for the connection's whole life: bytes that arrive with the last
        # handshake frame belong to the envelopes that follow it
        self.frames_in = FrameDecoder(limit)
        self.frames_out = FrameEncoder(limit)
        self.encoder: MessageEncoder | None = None
        self.decoder: MessageDecoder | None = None
        self.out_paths: dict[str, int] = {}
        self.in_paths: list[str] = []
        self.paused = False
        self.nonce = os.urandom(16)
        self.peer_nonce = b""
        self.handshake_done: asyncio.Future[Association] = transport.loop.create_future()
        self._handshake_timer: asyncio.TimerHandle | None = None
        self.close_reason = ""
        self.last_received = transport.loop.time()
        self.pending_peer: tuple[ActorAddress, int, str] | None = None
        # inbound TLS: the accepted TCP transport while its TLS handshake runs
        self._tls_raw: asyncio.Transport | None = None

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        tcp: asyncio.Transport = transport  # type: ignore[assignment]
        self.tcp = tcp
        if self._tls_raw is not None:
            # second call, from the TLS layer: the TLS handshake is done
            tcp.set_write_buffer_limits(high=self.owner.config.outbound_buffer_size)
            self._tls_raw = None
            return
        peer = transport.get_extra_info("peername")
        self.peer_label = f"{peer[0]}:{peer[1]}" if peer else "?"
        sock = transport.get_extra_info("socket")
        if sock is not None and self.owner.config.tcp_nodelay:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        tcp.set_write_buffer_limits(high=self.owner.config.outbound_buffer_size)
        if self.inbound and len(self.owner._inbound) >= self.owner.config.max_connections:
            self.owner._refuse_excess(self.peer_label)
            tcp.abort()
            return
        # the timer also bounds an inbound TLS handshake: it starts before it
        self._handshake_timer = self.owner.loop.call_later(
            self.owner.config.handshake_timeout, self._handshake_timeout
        )
        if self.inbound:
            self.owner._inbound.add(self)
            if self.owner.ssl_server is not None:
                self._start_tls(tcp, self.owner.ssl_server)
        else:
            assert self.assoc is not None
            self._send_handshake(
                {
                    "t": "hello",
                    "v": PROTOCOL_VERSION,
                    "system": self.owner.system_name,
                    "host": self.owner.address.host,
                    "port": self.owner.address.port,
                    "uid": self.owner.uid,
                    "kind": self.owner.kind,
                    "to": [self.assoc.address.host, self.assoc.address.port],
                    "nonce": self.nonce,
                }
            )

    def _start_tls(self, raw: asyncio.Transport, context: ssl.SSLContext) -> None:
        """Wrap an accepted connection in TLS here rather than in the server, so that a failed
        TLS handshake is logged with the peer's address and counts toward ``max_connections``.
        The TLS layer calls ``connection_made`` again once its handshake is done."""
        loop = self.owner.loop
        done: asyncio.Future[None] = loop.create_future()
        done.add_done_callback(self._tls_handshake_done)
        # no timeout of its own: the handshake timer started in connection_made covers it
        layer = asyncio.sslproto.SSLProtocol(loop, self, context, done, server_side=True)
        self._tls_raw = raw
        raw.set_protocol(layer)
        layer.connection_made(raw)

    def _tls_handshake_done(self, done: asyncio.Future[None]) -> None:
        raw = self._tls_raw
        if raw is None:
            return  # the handshake succeeded: connection_made has run again
        exc = None if done.cancelled() else done.exception()
        if not self.close_reason and not self.owner.closing:
            reason = f"{exc}" if exc is not None else "connection closed"
            log.warning("refused connection from %s: TLS handshake failed: %s", self.peer_label, reason)
            self.close_reason = f"TLS handshake failed: {reason}"
        self._tls_raw = None
        raw.abort()
        self.connection_lost(None)

    def connection_lost(self, exc: Exception | None) -> None:
        prev = self.state
        self.state = "closed"
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
        self.owner._inbound.discard(self)
        if not self.handshake_done.done():
            self.handshake_done.set_exception(
                HandshakeError(self.close_reason or f"connection to {self.peer_label} closed during handshake")
            )
            self.handshake_done.exception()
        if prev == "open" and self.assoc is not None:
            self.assoc.on_connection_lost(self, self.close_reason or (str(exc) if exc else "closed by peer"))

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.assoc is not None and self.assoc.conn is self:
            self.assoc.schedule_flush()

    def data_received(self, data: bytes) -> None:
        if self.state == "closed":
            return
        self.owner.bytes_received += len(data)
        self.last_received = self.owner.loop.time()
        try:
            bodies = self.frames_in.feed(data)
        except FrameTooLarge as exc:
            self.abort(f"peer {self.peer_label} sent a frame of {exc.size} bytes (limit {exc.limit})")
            return
        except FrameError as exc:
            self.abort(f"malformed frame from {self.peer_label}: {exc}")
            return
        if self.state == "handshake":
            while bodies and self.state == "handshake":
                self._on_handshake_frame(bodies.pop(0))
            if self.state == "handshake" and self.frames_in.buffered > _HANDSHAKE_LIMIT:
                self.abort(f"handshake from {self.peer_label} is larger than {_HANDSHAKE_LIMIT} bytes")
                return
            if self.state != "open":
                return
        if bodies:
            self._dispatch(bodies)
        failure = self.frames_in.failure
        if failure is not None and self.state == "open":
            self.abort(f"bad frame from {self.peer_label}: {failure}")

    # -- envelopes ---------------------------------------------------------------------------
    def _dispatch(self, bodies: list[bytes]) -> None:
        decoder = self.decoder
        assert decoder is not None
        in_paths = self.in_paths
        owner = self.owner
        cells = owner.system._cells
        for body in bodies:
            try:
                envelope = decoder.decode(body)
                if type(envelope) is not list or len(envelope) != 2:
                    raise DeserializationError("an envelope must be [target, message]")
                target, msg = envelope
                if type(target) is int:
                    path = in_paths[target]
                elif type(target) is str:
                    path = target
                else:
                    ident, path = target
                    if ident != len(in_paths) or type(path) is not str:
                        raise DeserializationError("out-of-order path definition")
                    in_paths.append(path)
            except (DeserializationError, IndexError, TypeError, ValueError) as exc:
                self.abort(f"refused a message from {self.peer_label}: {exc}")
                return
            cell = cells.get(path)
            if type(msg) is Terminated:
                if not isinstance(msg.ref, ActorRef):
                    self.abort(f"refused a message from {self.peer_label}: Terminated without an actor ref")
                    return
                owner._on_remote_terminated(path, msg)
            if cell is not None:
                try:
                    cell.mailbox.put(msg)
                except MailboxFull:
                    owner.system._dead_letter(msg, cell.ref, "mailbox full (reject)")
            elif path == CONTROL_PATH:
                try:
                    owner._on_control(self, msg)
                except Exception as exc:
                    self.abort(f"control message {type(msg).__name__} from {self.peer_label} failed: {exc!r}")
                    return
            else:
                owner.system.resolve_local(path).tell(msg)
            if self.state != "open":
                return

    def write_queue(self, queue: deque[tuple[str, object]]) -> None:
        """Encode queued messages into frames and write them, until the queue is empty or the
        socket's buffer is full."""
        tcp = self.tcp
        encoder = self.encoder
        if tcp is None or encoder is None or self.state != "open":
            return
        frames = self.frames_out
        out_paths = self.out_paths
        system = self.owner.system
        assoc = self.assoc
        while queue and not self.paused:
            path, msg = queue.popleft()
            ident = out_paths.get(path)
            target: Any
            if ident is not None:
                target = ident
            elif path.startswith("/temp/"):
                target = path  # short-lived (an ask's reply): sent in full, not given an id
            else:
                target = [len(out_paths), path]
            try:
                body = encoder.encode([target, msg])
                frames.add(body)
            except (SerializationError, FrameTooLarge) as exc:
                system._dead_letter(msg, assoc.ref(path) if assoc else None, f"not sent: {exc}")
                log.warning("message to %s%s not sent: %s", self.peer_label, path, exc)
                continue
            if ident is None and type(target) is list:
                out_paths[path] = len(out_paths)
            if frames.pending_bytes >= _FLUSH_CHUNK:
                self._write(tcp, frames.take())
        if frames.pending_bytes:
            self._write(tcp, frames.take())

    def _write(self, tcp: asyncio.Transport, data: bytes) -> None:
        owner = self.owner
        owner.bytes_sent += len(data)
        owner.writes += 1
        tcp.write(data)

    # -- handshake -------------------------------------------------------------------------
    def _send_handshake(self, payload: dict[str, Any]) -> None:
        assert self.tcp is not None
        body = msgpack.packb(payload, use_bin_type=True)
        frames = FrameEncoder(_HANDSHAKE_LIMIT)
        frames.add(body)
        self.tcp.write(frames.take())

    def _handshake_timeout(self) -> None:
        if self.state == "handshake":
            self.abort(f"handshake with {self.peer_label} timed out")

    def _on_handshake_frame(self, body: bytes) -> None:
        if len(body) > _HANDSHAKE_LIMIT:
            self.abort(f"handshake frame of {len(body)} bytes from {self.peer_label}")
            return
        try:
            msg = msgpack.unpackb(body, raw=False, max_bin_len=1024, max_str_len=4096, max_array_len=16, max_map_len=32)
            if not isinstance(msg, dict):
                raise ValueError("handshake frame is not a map")
            kind = msg.get("t")
            if self.inbound and kind == "hello":
                self.owner._on_hello(self, msg)
            elif not self.inbound and kind == "welcome":
                self.owner._on_welcome(self, msg)
            elif self.inbound and kind == "confirm":
                self.owner._on_confirm(self, msg)
            elif kind == "refused":
                reason = str(msg.get("reason", "no reason given"))
                self.close_reason = f"refused by {self.peer_label}: {reason}"
                if self.inbound:
                    log.warning("connection from %s refused by the peer: %s", self.peer_label, reason[:200])
                elif reason.startswith("simultaneous"):
                    self.close_reason = "simultaneous"
                self.close()
            else:
                raise ValueError(f"unexpected handshake message {kind!r}")
        except HandshakeError as exc:
            self.refuse(str(exc))
        except (ValueError, TypeError, KeyError, msgpack.UnpackException) as exc:
            self.abort(f"bad handshake from {self.peer_label}: {exc}")

    def refuse(self, reason: str) -> None:
        # a simultaneous connect is resolved, not a fault: not worth a warning
        level = logging.DEBUG if reason.startswith("simultaneous") else logging.WARNING
        log.log(level, "refused connection from %s: %s", self.peer_label, reason)
        if self.tcp is not None and not self.tcp.is_closing():
            self._send_handshake({"t": "refused", "reason": reason})
        self.close_reason = reason
        self.close()

    def open(self, assoc: Association) -> None:
        """The handshake is complete: switch to envelopes."""
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
            self._handshake_timer = None
        self.assoc = assoc
        self.state = "open"
        serializer = self.owner.serializer
        self.encoder = serializer.new_encoder(self.owner.ref_to_wire)
        if hasattr(self.encoder, "max_size"):
            # the encoder rolls back its type/ref tables when a message is too large to send
            self.encoder.max_size = self.owner.config.max_frame_size
        self.decoder = serializer.new_decoder(self.owner.resolve_ref)
        if not self.handshake_done.done():
            self.handshake_done.set_result(assoc)

    def close(self) -> None:
        if self.tcp is not None and not self.tcp.is_closing():
            self.tcp.close()

    def abort(self, reason: str) -> None:
        """Drop the connection after a protocol violation (logged once)."""
        if self.state == "closed":
            return
        log.error("closing connection %s: %s", self.peer_label, reason)
        self.close_reason = reason
        if self.tcp is not None:
            self.tcp.abort()


class Association:
    """Everything this process knows about one peer process: connection, queue, watches."""

    def __init__(self, transport: RemoteTransport, address: ActorAddress, dialable: bool) -> None:
        self.transport = transport
        self.address = address
        self.dialable = dialable
        self.conn: Connection | None = None
        self.queue: deque[tuple[str, object]] = deque()
        self.flush_scheduled = False
        self.targets: dict[str, RemoteTarget] = {}
        self.refs: dict[str, ActorRef[Any]] = {}
        self.watches: dict[str, set[ActorRef[Any]]] = {}
        self.peer_uid: int | None = None
        self.dialing: asyncio.Task[None] | None = None
        self.retry_handle: asyncio.TimerHandle | None = None
        self.backoff = transport.config.reconnect_backoff_min
        self.failing_since: float | None = None
        self.gone = False
        self.idle_checks = 0
        self.keep_alive = False  # set by the cluster for members: never give up on our own
        self.simultaneous_wait: asyncio.TimerHandle | None = None
        self._flush_cb = self.flush

    def __repr__(self) -> str:
        state = "open" if self.conn else ("gone" if self.gone else "idle")
        return f"<Association {self.address} {state}>"

    def ref(self, path: str) -> ActorRef[Any]:
        ref = self.refs.get(path)
        if ref is None:
            if path.startswith("/temp/"):
                # short-lived refs are not cached: the association would grow with every ask
                temp = RemoteTarget(self.transport, self.address, path, self)
                return ActorRef(self.address, path, temp.tell, temp)
            if len(self.refs) >= 10_000:
                # a cache, not a registry: refs already handed out keep working without it
                self.refs.clear()
                self.targets.clear()
            target = self.targets.get(path)
            if target is None:
                target = self.targets[path] = RemoteTarget(self.transport, self.address, path, self)
            ref = self.refs[path] = ActorRef(self.address, path, target.tell, target)
        return ref

    # -- sending ---------------------------------------------------------------------------
    def send(self, path: str, msg: object) -> None:
        if self.gone:
            self.transport.system._dead_letter(msg, self.ref(path), f"{self.address} is gone")
            return
        queue = self.queue
        if len(queue) >= self.transport.config.outbound_queue_size:
            self.transport.system._dead_letter(msg, self.ref(path), f"outbound queue to {self.address} is full")
            return
        queue.append((path, msg))
        if type(msg) is Terminated:
            # a local actor this peer watched has stopped: the watch is over
            entries = self.transport.remote_watchers.get(self.address)
            if entries:
                entries.discard((msg.ref.path, self.ref(path)))
        if not self.flush_scheduled:
            if self.conn is not None:
                self.flush_scheduled = True
                self.transport.loop.call_soon(self._flush_cb)
            elif self.dialing is None and self.retry_handle is None:
                self.connect()

    def schedule_flush(self) -> None:
        if not self.flush_scheduled and self.queue and self.conn is not None:
            self.flush_scheduled = True
            self.transport.loop.call_soon(self._flush_cb)

    def flush(self) -> None:
        self.flush_scheduled = False
        conn = self.conn
        if conn is not None and self.queue:
            conn.write_queue(self.queue)

    # -- connecting ------------------------------------------------------------------------
    def connect(self) -> None:
        if self.gone or self.conn is not None or self.dialing is not None or self.transport.closing:
            return
        if not self.dialable:
            return  # a client without a listening port: wait for it to connect to us
        if self.retry_handle is not None:
            self.retry_handle.cancel()
            self.retry_handle = None
        self.dialing = self.transport.loop.create_task(self._dial())

    async def _dial(self) -> None:
        transport = self.transport
        cfg = transport.config
        host, port = self.address.host, self.address.port
        assert host is not None and port is not None
        dial_host, dial_port = (host, port) if transport.address_map is None else transport.address_map((host, port))
        try:
            conn = Connection(transport, inbound=False, assoc=self)
            await asyncio.wait_for(
                transport.loop.create_connection(
                    lambda: conn,
                    dial_host,
                    dial_port,
                    ssl=transport.ssl_client,
                    server_hostname=host if transport.ssl_client else None,
                ),
                cfg.connect_timeout,
            )
            await conn.handshake_done
        except asyncio.CancelledError:
            self.dialing = None
            raise
        except (OSError, TimeoutError, CastyError, ssl.SSLError) as exc:
            self.dialing = None
            if isinstance(exc, HandshakeError) and str(exc) == "simultaneous":
                # the peer dials us; its connection wins. Retry only if it never arrives.
                self._schedule_retry(reason=None, delay=cfg.handshake_timeout)
                return
            self._schedule_retry(reason=f"{type(exc).__name__}: {exc}")
            return
        self.dialing = None

    def _schedule_retry(self, reason: str | None, delay: float | None = None) -> None:
        if self.gone or self.conn is not None or self.transport.closing:
            return
        loop = self.transport.loop
        now = loop.time()
        if not self.queue and not self.watches and not self.keep_alive:
            self.failing_since = None
            return  # nothing to deliver: reconnect lazily on the next send
        if reason is not None:
            if self.failing_since is None:
                self.failing_since = now
                # a refused handshake is a configuration error worth a warning; a peer that is
                # merely gone is only worth one when someone waits on it
                refused = reason.startswith("HandshakeError")
                level = logging.WARNING if (self.keep_alive or self.watches or refused) else logging.INFO
                log.log(level, "cannot reach %s (%s); retrying with backoff", self.address, reason)
            else:
                log.debug("cannot reach %s (%s)", self.address, reason)
            give_up = self.transport.config.give_up_after
            if not self.keep_alive and now - self.failing_since >= give_up:
                self.transport.mark_gone(self, f"unreachable for {give_up:.0f}s")
                return
        if delay is None:
            delay = self.backoff * (0.8 + 0.4 * random.random())
            self.backoff = min(self.backoff * 2, self.transport.config.reconnect_backoff_max)
        self.retry_handle = loop.call_later(delay, self._retry)

    def _retry(self) -> None:
        self.retry_handle = None
        self.connect()

    def attach(self, conn: Connection, peer_uid: int) -> None:
        """A handshake completed on ``conn``: it becomes this association's connection."""
        old = self.conn
        if self.peer_uid is not None and peer_uid != self.peer_uid:
            self.transport._on_new_incarnation(self, self.peer_uid, peer_uid)
        self.peer_uid = peer_uid
        self.conn = conn
        self.failing_since = None
        self.backoff = self.transport.config.reconnect_backoff_min
        if self.retry_handle is not None:
            self.retry_handle.cancel()
            self.retry_handle = None
        if old is not None and old is not conn:
            old.assoc = None
            old.close()
        conn.open(self)
        # re-establish remote watches on the new connection
        for path, watchers in self.watches.items():
            for watcher in watchers:
                self.queue.appendleft((CONTROL_PATH, Watch(path, watcher)))
        self.transport._notify("connected", self)
        if self.queue:
            self.flush_scheduled = True
            self.transport.loop.call_soon(self._flush_cb)

    def on_connection_lost(self, conn: Connection, reason: str) -> None:
        if self.conn is not conn:
            return
        self.conn = None
        self.flush_scheduled = False
        if not self.transport.closing:
            log.info("connection to %s lost: %s", self.address, reason)
        self.transport._notify("disconnected", self)
        if self.dialable:
            self._schedule_retry(reason=reason, delay=self.transport.config.reconnect_backoff_min)
        elif not self.keep_alive:
            # a client that has no listening port: wait give_up_after for it to come back
            loop = self.transport.loop
            self.failing_since = loop.time()
            self.retry_handle = loop.call_later(self.transport.config.give_up_after, self._client_gone)

    def _client_gone(self) -> None:
        self.retry_handle = None
        if self.conn is None:
            self.transport.mark_gone(self, "client did not reconnect")

    # -- watching remote actors --------------------------------------------------------------
    def add_watch(self, path: str, watcher: ActorRef[Any]) -> None:
        if self.gone:
            watcher.tell(Terminated(self.ref(path), f"{self.address} is gone"))
            return
        watchers = self.watches.setdefault(path, set())
        if watcher not in watchers:
            watchers.add(watcher)
            self.send(CONTROL_PATH, Watch(path, watcher))

    def remove_watch(self, path: str, watcher: ActorRef[Any]) -> None:
        watchers = self.watches.get(path)
        if watchers is not None and watcher in watchers:
            watchers.discard(watcher)
            if not watchers:
                del self.watches[path]
            if not self.gone:
                self.send(CONTROL_PATH, Unwatch(path, watcher))


class RemoteTransport:
    """Listens for peers, dials them, and routes messages between this system and theirs."""

    def __init__(
        self,
        system: ActorSystem,
        config: RemoteConfig,
        *,
        host: str,
        port: int,
        bind_host: str | None = None,
        bind_port: int | None = None,
        serializer: Serializer | None = None,
        secret: bytes = b"",
        ssl_server: ssl.SSLContext | None = None,
        ssl_client: ssl.SSLContext | None = None,
        kind: str = "node",
        listen: bool = True,
    ) -> None:
        self.system = system
        self.config = config
        self.system_name = system.name
        self.host = host
        self.port = port
        self.bind_host = bind_host or host
        self.bind_port = port if bind_port is None else bind_port
        self.kind = kind
        self.listen = listen
        self.uid = random.getrandbits(63) or 1
        self.secret = secret
        self.ssl_server = ssl_server
        self.ssl_client = ssl_client
        #: maps a peer's advertised (host, port) to the address to dial (a client behind NAT)
        self.address_map: Callable[[tuple[str, int]], tuple[str, int]] | None = None
        if serializer is None:
            serializer = PickleSerializer() if config.allow_pickle else MsgpackSerializer(strict=config.strict_serialization)
        self.serializer: Serializer = serializer
        self.address = ActorAddress(system.name, host, port)
        self.associations: dict[ActorAddress, Association] = {}
        self.quarantined: set[int] = set()
        self._inbound: set[Connection] = set()
        self._excess_logged_at = float("-inf")
        self._excess_refused = 0
        self._server: asyncio.AbstractServer | None = None
        self.closing = False
        self.listeners: list[Callable[[str, Association], None]] = []
        self.remote_watchers: dict[ActorAddress, set[tuple[str, ActorRef[Any]]]] = {}
        self._ref_cache: dict[str, ActorRef[Any]] = {}
        self._address_cache: dict[str, ActorAddress] = {}
        self._keepalive: asyncio.TimerHandle | None = None
        self.control_handlers: dict[type, Callable[[Connection, Any], None]] = {}
        #: traffic counters (bytes on the wire after the handshake, and write() calls)
        self.bytes_sent = 0
        self.bytes_received = 0
        self.writes = 0

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self.system.loop

    async def start(self) -> ActorAddress:
        if self.listen:
            self._server = await self.loop.create_server(
                lambda: Connection(self, inbound=True),
                self.bind_host,
                self.bind_port,
                reuse_address=True,
                backlog=128,
            )
            sockets = self._server.sockets or ()
            if sockets:
                self.bind_port = sockets[0].getsockname()[1]
            if self.port == 0:
                self.port = self.bind_port
        self.address = ActorAddress(self.system_name, self.host, self.port)
        self._keepalive = self.loop.call_later(self._keepalive_interval(), self._check_liveness)
        return self.address

    def _keepalive_interval(self) -> float:
        return min(5.0, max(0.1, self.config.give_up_after / 4))

    def _check_liveness(self) -> None:
        """Probe connections that have been silent, and drop those silent for ``give_up_after``.

        A connection can stay open while nothing gets through (a partition, a host that
        vanished without a reset); outside a cluster nothing else would notice. Dropping it
        hands the peer to the reconnect logic, which declares it gone (watchers get
        ``Terminated``) after ``give_up_after`` more seconds of failed attempts."""
        if self.closing:
            return
        now = self.loop.time()
        interval = self._keepalive_interval()
        limit = self.config.give_up_after
        for assoc in list(self.associations.values()):
            conn = assoc.conn
            if conn is None:
                self._prune_if_idle(assoc)
                continue
            assoc.idle_checks = 0
            if conn.state != "open":
                continue
            silent = now - conn.last_received
            if silent >= limit:
                conn.abort(f"{assoc.address} sent nothing for {silent:.1f}s")
            elif silent >= interval:
                assoc.send(CONTROL_PATH, Ping())
        self._keepalive = self.loop.call_later(interval, self._check_liveness)

    def _prune_if_idle(self, assoc: Association) -> None:
        """Drop an association with nothing to do (no connection, queue, watch or reconnect) after
        two liveness rounds; its refs bind to a fresh one if they are used again."""
        if assoc.dialing is not None or assoc.retry_handle is not None or assoc.queue or assoc.watches:
            assoc.idle_checks = 0
            return
        if assoc.keep_alive:
            return
        assoc.idle_checks += 1
        if assoc.idle_checks >= 2 and self.associations.get(assoc.address) is assoc:
            del self.associations[assoc.address]
            assoc.gone = True
            for uri in [u for u, r in self._ref_cache.items() if r.address == assoc.address]:
                del self._ref_cache[uri]

    def _refuse_excess(self, peer_label: str) -> None:
        """An inbound connection beyond ``max_connections`` is closed at once; logged at most
        once per second, with the number refused since the last report."""
        self._excess_refused += 1
        now = self.loop.time()
        if now - self._excess_logged_at >= 1.0:
            log.warning(
                "refused connection from %s: too many connections (%d inbound, remote.max_connections = %d); "
                "%d refused since the last report",
                peer_label,
                len(self._inbound),
                self.config.max_connections,
                self._excess_refused,
            )
            self._excess_logged_at = now
            self._excess_refused = 0

    async def close(self) -> None:
        if self.closing:
            return
        # let queued messages (for example Terminated notices to remote watchers) go out
        for assoc in list(self.associations.values()):
            assoc.flush()
        self.closing = True
        if self._keepalive is not None:
            self._keepalive.cancel()
        if self._server is not None:
            self._server.close()
        conns: list[Connection] = list(self._inbound)
        for assoc in self.associations.values():
            if assoc.retry_handle is not None:
                assoc.retry_handle.cancel()
            if assoc.dialing is not None:
                assoc.dialing.cancel()
            if assoc.conn is not None:
                conns.append(assoc.conn)
        for conn in conns:
            conn.close()
        tasks = [a.dialing for a in self.associations.values() if a.dialing is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
        # give the closing transports one turn to call connection_lost
        await asyncio.sleep(0)

    # -- refs ------------------------------------------------------------------------------
    def is_self(self, address: ActorAddress) -> bool:
        return address.host == self.address.host and address.port == self.address.port and (
            address.system == self.system_name
        )

    def association(self, address: ActorAddress) -> Association:
        assoc = self.associations.get(address)
        if assoc is None:
            dialable = bool(address.port) and not str(address.host).startswith("client-")
            assoc = self.associations[address] = Association(self, address, dialable)
        return assoc

    def remote_ref(self, address: ActorAddress, path: str) -> ActorRef[Any]:
        return self.association(address).ref(path)

    def resolve_ref(self, uri: str) -> ActorRef[Any]:
        """Turn a URI from the wire into a ref: local actors resolve to themselves."""
        ref = self._ref_cache.get(uri)
        if ref is not None:
            return ref
        slash = uri.find("/", 8)
        address = self._address_cache.get(uri[:slash]) if slash > 8 else None
        if address is not None:
            path = uri[slash:]
        else:
            try:
                address, path = parse_uri(uri)
            except ValueError as exc:
                raise DeserializationError(str(exc), "ActorRef") from None
            if len(self._address_cache) < 10_000:
                self._address_cache[uri[:slash]] = address
        if address.host is None or self.is_self(address):
            ref = self.system.resolve_local(path)
            if not isinstance(ref._target, ActorCell):
                return ref  # asks and dead refs are not cached
        else:
            assoc = self.associations.get(address)
            if assoc is not None:
                ref = assoc.ref(path)
            else:
                # bound to an association only when used: a ref that is merely passed along
                # costs no association
                target = RemoteTarget(self, address, path)
                ref = ActorRef(address, path, target.tell, target)
            if path.startswith("/temp/"):
                return ref
        if len(self._ref_cache) > 100_000:
            self._ref_cache.clear()
        self._ref_cache[uri] = ref
        return ref

    def ref_to_wire(self, ref: ActorRef[Any]) -> str:
        address = ref.address
        if address.host is None:
            return f"{self.address}{ref.path}"
        return f"{address}{ref.path}"

    # -- events for the cluster ------------------------------------------------------------
    def _notify(self, event: str, assoc: Association) -> None:
        for listener in list(self.listeners):
            try:
                listener(event, assoc)
            except Exception:
                log.exception("transport listener failed on %s %s", event, assoc.address)

    def mark_gone(self, assoc: Association, reason: str, quarantine: bool = False) -> None:
        """The peer process is gone for good: watchers get Terminated, queued messages become
        dead letters, and the association is dropped (a later send starts afresh)."""
        if assoc.gone:
            return
        assoc.gone = True
        if quarantine and assoc.peer_uid is not None:
            self.quarantined.add(assoc.peer_uid)
        log.warning("%s is gone: %s", assoc.address, reason)
        if assoc.retry_handle is not None:
            assoc.retry_handle.cancel()
            assoc.retry_handle = None
        if assoc.dialing is not None:
            assoc.dialing.cancel()
            assoc.dialing = None
        conn = assoc.conn
        assoc.conn = None
        if conn is not None:
            conn.assoc = None
            conn.close()
        while assoc.queue:
            path, msg = assoc.queue.popleft()
            if path != CONTROL_PATH:
                self.system._dead_letter(msg, assoc.ref(path), f"{assoc.address} is gone: {reason}")
        watches = assoc.watches
        assoc.watches = {}
        for path, watchers in watches.items():
            terminated = Terminated(assoc.ref(path), f"node lost: {reason}")
            for watcher in watchers:
                watcher.tell(terminated)
        self._drop_remote_watchers(assoc.address)
        if self.associations.get(assoc.address) is assoc:
            del self.associations[assoc.address]
        for uri in [u for u, r in self._ref_cache.items() if r.address == assoc.address]:
            del self._ref_cache[uri]
        self._notify("gone", assoc)

    def _on_new_incarnation(self, assoc: Association, old_uid: int, new_uid: int) -> None:
        """The peer restarted: what we watched there is gone, and its watches on us too."""
        log.info("%s restarted (incarnation %x -> %x)", assoc.address, old_uid, new_uid)
        watches = assoc.watches
        assoc.watches = {}
        for path, watchers in watches.items():
            terminated = Terminated(assoc.ref(path), "node restarted")
            for watcher in watchers:
                watcher.tell(terminated)
        self._drop_remote_watchers(assoc.address)
        self._notify("restarted", assoc)

    def _drop_remote_watchers(self, address: ActorAddress) -> None:
        entries = self.remote_watchers.pop(address, set())
        for path, watcher in entries:
            target = self.system.resolve_local(path)._target
            remove = getattr(target, "remove_watcher", None)
            if remove is not None:
                remove(watcher)

    def _on_remote_terminated(self, watcher_path: str, msg: Terminated) -> None:
        """A remote actor we watched stopped: forget the watch on both ends of our bookkeeping."""
        ref = msg.ref
        target = ref._target
        if isinstance(target, RemoteTarget) and target.assoc is not None:
            watches = target.assoc.watches
            watchers = watches.get(target.path)
            if watchers is not None:
                for watcher in [w for w in watchers if w.path == watcher_path]:
                    watchers.discard(watcher)
                if not watchers:
                    del watches[target.path]
        cell = self.system._cells.get(watcher_path)
        if cell is not None:
            cell.watching.discard(ref)

    # -- control messages ------------------------------------------------------------------
    def _on_control(self, conn: Connection, msg: object) -> None:
        if isinstance(msg, (Watch, Unwatch)) and not (isinstance(msg.path, str) and isinstance(msg.watcher, ActorRef)):
            raise DeserializationError(f"malformed {type(msg).__name__}: needs a path and an actor ref")
        if isinstance(msg, Ping):
            if conn.assoc is not None:
                conn.assoc.send(CONTROL_PATH, Pong())
        elif isinstance(msg, Pong):
            pass  # its arrival already counted as a sign of life
        elif isinstance(msg, Watch):
            local = self.system.resolve_local(msg.path)
            add = getattr(local._target, "add_watcher", None)
            if add is not None:
                add(msg.watcher)
                self.remote_watchers.setdefault(msg.watcher.address, set()).add((msg.path, msg.watcher))
        elif isinstance(msg, Unwatch):
            local = self.system.resolve_local(msg.path)
            remove = getattr(local._target, "remove_watcher", None)
            if remove is not None:
                remove(msg.watcher)
            entries = self.remote_watchers.get(msg.watcher.address)
            if entries is not None:
                entries.discard((msg.path, msg.watcher))
        else:
            handler = self.control_handlers.get(type(msg))
            if handler is None:
                log.warning("unknown control message %s from %s", type(msg).__name__, conn.peer_label)
            else:
                handler(conn, msg)

    def add_control_handler(self, cls: type, handler: Callable[[Connection, Any], None]) -> None:
        """Route control messages of type ``cls`` (sent with ``send_control``) to ``handler``."""
        self.control_handlers[cls] = handler

    def send_control(self, address: ActorAddress, msg: object) -> None:
        self.association(address).send(CONTROL_PATH, msg)

    # -- handshake (acceptor side) -----------------------------------------------------------
    def _peer_identity(self, msg: dict[str, Any]) -> tuple[ActorAddress, int, str]:
        version = msg.get("v")
        if version != PROTOCOL_VERSION:
            raise HandshakeError(f"protocol version mismatch: peer speaks {version!r}, we speak {PROTOCOL_VERSION}")
        system = msg.get("system")
        if system != self.system_name:
            raise HandshakeError(f"system name mismatch: peer is {system!r}, this is {self.system_name!r}")
        host, port, uid, kind = msg.get("host"), msg.get("port"), msg.get("uid"), msg.get("kind", "node")
        if not isinstance(host, str) or not isinstance(port, int) or not isinstance(uid, int) or kind not in (
            "node",
            "client",
        ):
            raise HandshakeError("malformed identity in handshake")
        if uid in self.quarantined:
            raise HandshakeError(f"incarnation {uid:x} of {host}:{port} was removed from the cluster; restart it")
        return ActorAddress(system, host, port), uid, kind

    def _on_hello(self, conn: Connection, msg: dict[str, Any]) -> None:
        if self.closing:
            raise HandshakeError("shutting down")
        if len(self._inbound) > self.config.max_connections:
            raise HandshakeError("too many connections")
        address, uid, kind = self._peer_identity(msg)
        nonce = msg.get("nonce")
        if not isinstance(nonce, bytes) or len(nonce) < 16:
            raise HandshakeError("handshake without a valid nonce")
        if address == self.address and uid == self.uid:
            raise HandshakeError("connected to itself")
        # no association is made before the peer is authenticated (in _on_confirm)
        assoc = self.associations.get(address)
        # one connection per pair: when both sides dial at once, the lower address's dial wins
        if assoc is not None and assoc.dialing is not None and kind == "node":
            mine = (self.address.host or "", self.address.port or 0, self.uid)
            theirs = (address.host, address.port, uid)
            if mine < theirs:
                raise HandshakeError("simultaneous connect: using the connection dialed by the lower address")
            assoc.dialing.cancel()
            assoc.dialing = None
        conn.peer_nonce = nonce
        conn.pending_peer = (address, uid, kind)
        mac = _mac(self.secret, b"acceptor", nonce, self.system_name) if self.secret else b""
        conn._send_handshake(
            {
                "t": "welcome",
                "v": PROTOCOL_VERSION,
                "system": self.system_name,
                "host": self.address.host,
                "port": self.address.port,
                "uid": self.uid,
                "kind": self.kind,
                "nonce": conn.nonce,
                "mac": mac,
            }
        )

    def _on_confirm(self, conn: Connection, msg: dict[str, Any]) -> None:
        pending = conn.pending_peer
        if pending is None:
            raise HandshakeError("confirm before hello")
        address, uid, kind = pending
        if self.secret:
            mac = msg.get("mac")
            expected = _mac(self.secret, b"dialer", conn.nonce, self.system_name)
            if not isinstance(mac, bytes) or not hmac.compare_digest(mac, expected):
                raise HandshakeError("cluster secret mismatch")
        assoc = self.association(address)  # a peer we had given up on gets a fresh one
        if kind == "client":
            assoc.dialable = False
        assoc.attach(conn, uid)

    # -- handshake (dialer side) -------------------------------------------------------------
    def _on_welcome(self, conn: Connection, msg: dict[str, Any]) -> None:
        assoc = conn.assoc
        assert assoc is not None
        address, uid, _kind = self._peer_identity(msg)
        if (address.host, address.port) != (assoc.address.host, assoc.address.port):
            log.info("%s answers as %s:%s", assoc.address, address.host, address.port)
        nonce = msg.get("nonce")
        if not isinstance(nonce, bytes) or len(nonce) < 16:
            raise HandshakeError("welcome without a valid nonce")
        if self.secret:
            mac = msg.get("mac")
            expected = _mac(self.secret, b"acceptor", conn.nonce, self.system_name)
            if not isinstance(mac, bytes) or not hmac.compare_digest(mac, expected):
                raise HandshakeError("cluster secret mismatch (the peer does not know the secret)")
        elif msg.get("mac"):
            # it would refuse our confirm after we had started sending: refuse first
            raise HandshakeError("cluster secret mismatch (the peer requires a secret, this node has none)")
        mac_out = _mac(self.secret, b"dialer", nonce, self.system_name) if self.secret else b""
        conn._send_handshake({"t": "confirm", "mac": mac_out})
        assoc.attach(conn, uid)
