"""One TCP connection: frames in, envelopes delivered; queued messages out, one write per batch.

After the handshake (:mod:`casty.remote.handshake`) every frame body is an envelope encoded by
the connection's serde encoder: ``[target, message]`` where ``target`` is ``[id, path]`` the
first time a path is used on the connection, the bare ``id`` afterwards, and the full path for
short-lived ``/temp/`` targets. Envelopes for ``CONTROL_PATH`` go to the transport; all others
are handed to the actor system's delivery API.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections import deque
from typing import TYPE_CHECKING, Any

from casty._fastpath import FrameDecoder, FrameEncoder
from casty.actors.events import Terminated
from casty.actors.ref import ActorRef
from casty.errors import DeserializationError, FrameError, FrameTooLarge, HandshakeError, SerializationError
from casty.remote.control import CONTROL_PATH
from casty.remote.handshake import HANDSHAKE_LIMIT, Handshake
from casty.serde import MessageDecoder, MessageEncoder

if TYPE_CHECKING:
    from casty.remote.association import Association
    from casty.remote.transport import RemoteTransport

__all__ = ["Connection"]

log = logging.getLogger("casty.remote")

#: encoded bytes written per ``write()`` at most while draining a long queue
_FLUSH_CHUNK = 1 << 20


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
        self.handshake = Handshake(self, transport)
        self.handshake_done: asyncio.Future[Association] = transport.loop.create_future()
        self.close_reason = ""
        self.last_received = transport.loop.time()
        #: bytes this connection received and wrote (handshake included)
        self.bytes_in = 0
        self.bytes_out = 0

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        tcp: asyncio.Transport = transport  # type: ignore[assignment]
        self.tcp = tcp
        owner = self.owner
        if self.handshake.tls_established():
            # second call, from the TLS layer: go on with the handshake over TLS
            tcp.set_write_buffer_limits(high=owner.config.outbound_buffer_size)
            return
        peer = transport.get_extra_info("peername")
        self.peer_label = f"{peer[0]}:{peer[1]}" if peer else "?"
        sock = transport.get_extra_info("socket")
        if sock is not None and owner.config.tcp_nodelay:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        tcp.set_write_buffer_limits(high=owner.config.outbound_buffer_size)
        if self.inbound:
            if len(owner._inbound) >= owner.config.max_connections:
                owner.refuse_excess(self.peer_label)
                tcp.abort()
                return
            owner._inbound.add(self)
        self.handshake.begin(tcp)

    def connection_lost(self, exc: Exception | None) -> None:
        prev = self.state
        self.state = "closed"
        self.handshake.finish()
        self.owner._inbound.discard(self)
        if self.assoc is not None:
            self.assoc.closed_bytes_in += self.bytes_in
            self.assoc.closed_bytes_out += self.bytes_out
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
        self.bytes_in += len(data)
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
                self.handshake.on_frame(bodies.pop(0))
            if self.state == "handshake" and self.frames_in.buffered > HANDSHAKE_LIMIT:
                self.abort(f"handshake from {self.peer_label} is larger than {HANDSHAKE_LIMIT} bytes")
                return
            if self.state != "open":
                return
        if bodies:
            self._dispatch(bodies)
        failure = self.frames_in.failure
        if failure is not None and self.state == "open":
            self.abort(f"bad frame from {self.peer_label}: {failure}")

    # -- envelopes in ------------------------------------------------------------------------
    def _dispatch(self, bodies: list[bytes]) -> None:
        decoder = self.decoder
        assert decoder is not None
        in_paths = self.in_paths
        owner = self.owner
        deliver = owner.system.deliver
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
            if type(msg) is Terminated:
                if not isinstance(msg.ref, ActorRef):
                    self.abort(f"refused a message from {self.peer_label}: Terminated without an actor ref")
                    return
                owner.watch.on_remote_terminated(path, msg)
            if path == CONTROL_PATH:
                try:
                    owner.on_control(self, msg)
                except Exception as exc:
                    self.abort(f"control message {type(msg).__name__} from {self.peer_label} failed: {exc!r}")
                    return
            else:
                deliver(path, msg)
            if self.state != "open":
                return

    # -- envelopes out -----------------------------------------------------------------------
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
                if type(exc) is FrameTooLarge and self._split_oversized(queue, path, msg, exc):
                    continue
                system.dead_letter(msg, assoc.ref(path) if assoc else None, f"not sent: {exc}")
                log.warning("message to %s%s not sent: %s", self.peer_label, path, exc)
                continue
            if ident is None and type(target) is list:
                out_paths[path] = len(out_paths)
            if frames.pending_bytes >= _FLUSH_CHUNK:
                self._write(tcp, frames.take())
        if frames.pending_bytes:
            self._write(tcp, frames.take())

    def _split_oversized(self, queue: deque[tuple[str, object]], path: str, msg: object, exc: FrameTooLarge) -> bool:
        """A message too large for one frame whose class defines ``split_for_frame(recipient,
        size, limit)`` (a run of stream elements) is replaced by the messages that method
        returns, sent in its place and in order; an empty list means the message was dropped
        and its sender told. Returns False when the message has no such method or declines
        (returns None): it then becomes a dead letter like any other."""
        split = getattr(msg, "split_for_frame", None)
        if split is None or self.assoc is None:
            return False
        parts = split(self.assoc.ref(path), exc.size, exc.limit)
        if parts is None:
            return False
        for part in reversed(parts):
            queue.appendleft((path, part))
        return True

    def _write(self, tcp: asyncio.Transport, data: bytes) -> None:
        owner = self.owner
        owner.bytes_sent += len(data)
        owner.writes += 1
        self.bytes_out += len(data)
        tcp.write(data)

    # -- life cycle --------------------------------------------------------------------------
    def open(self, assoc: Association) -> None:
        """The handshake is complete: switch to envelopes."""
        self.handshake.finish()
        self.assoc = assoc
        self.state = "open"
        owner = self.owner
        serializer = owner.serializer
        self.encoder = serializer.new_encoder(owner.ref_to_wire)
        if hasattr(self.encoder, "max_size"):
            # the encoder rolls back its type/ref tables when a message is too large to send
            self.encoder.max_size = owner.config.max_frame_size
        self.decoder = serializer.new_decoder(owner.resolve_ref)
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
