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
from typing import TYPE_CHECKING

from casty._fastpath import EnvelopeReader, EnvelopeWriter, FrameDecoder, FrameEncoder
from casty.actors.events import Terminated
from casty.actors.ref import ActorRef
from casty.errors import DeserializationError, FrameError, FrameTooLarge, HandshakeError
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
        self.envelopes: EnvelopeReader | None = None
        self.envelopes_out: EnvelopeWriter | None = None
        self.paused = False
        self.handshake = Handshake(self, transport)
        self.handshake_done: asyncio.Future[Association] = transport.loop.create_future()
        self.close_reason = ""
        self.last_received = transport.loop.time()

    @property
    def in_paths(self) -> list[str]:
        """The paths the peer defined on this connection so far, by id."""
        return self.envelopes.paths if self.envelopes is not None else []

    @property
    def out_paths(self) -> dict[str, int]:
        """The paths this side defined on this connection so far, with their ids."""
        return self.envelopes_out.paths if self.envelopes_out is not None else {}

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
        if self.envelopes is not None:
            self.envelopes.closed = True
        self.handshake.finish()
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
        if self.envelopes_out is not None:
            self.envelopes_out.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.envelopes_out is not None:
            self.envelopes_out.paused = False
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
        envelopes = self.envelopes
        assert envelopes is not None
        try:
            envelopes.dispatch(bodies)
        except (DeserializationError, IndexError, TypeError, ValueError) as exc:
            self.abort(f"refused a message from {self.peer_label}: {exc}")

    def _on_special(self, path: str, msg: object) -> bool:
        """A Terminated, or a message for ``CONTROL_PATH``: False when the connection was closed."""
        owner = self.owner
        if type(msg) is Terminated:
            if not isinstance(msg.ref, ActorRef):
                self.abort(f"refused a message from {self.peer_label}: Terminated without an actor ref")
                return False
            owner.watch.on_remote_terminated(path, msg)
        if path == CONTROL_PATH:
            try:
                owner.on_control(self, msg)
            except Exception as exc:
                self.abort(f"control message {type(msg).__name__} from {self.peer_label} failed: {exc!r}")
                return False
        else:
            owner.system.deliver(path, msg)
        return self.state == "open"

    # -- envelopes out -----------------------------------------------------------------------
    def write_queue(self, queue: deque[tuple[str, object]]) -> None:
        """Encode queued messages into frames and write them, until the queue is empty or the
        socket's buffer is full."""
        writer = self.envelopes_out
        if self.tcp is None or writer is None or self.state != "open":
            return
        writer.write_queue(queue)

    def _write_out(self, data: bytes) -> None:
        tcp = self.tcp
        if tcp is not None:
            self._write(tcp, data)

    def _not_sent(self, path: str, msg: object, exc: Exception) -> None:
        assoc = self.assoc
        self.owner.system.dead_letter(msg, assoc.ref(path) if assoc else None, f"not sent: {exc}")
        log.warning("message to %s%s not sent: %s", self.peer_label, path, exc)

    def _write(self, tcp: asyncio.Transport, data: bytes) -> None:
        owner = self.owner
        owner.bytes_sent += len(data)
        owner.writes += 1
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
        self.envelopes_out = EnvelopeWriter(
            self.encoder.encode, self.frames_out, self._write_out, self._not_sent, _FLUSH_CHUNK
        )
        self.envelopes_out.paused = self.paused
        self.decoder = serializer.new_decoder(owner.resolve_ref)
        self.envelopes = EnvelopeReader(
            self.decoder.decode, owner.system.deliver, self._on_special, CONTROL_PATH, Terminated
        )
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
        if self.envelopes is not None:
            self.envelopes.closed = True  # nothing more from a peer whose message was refused
        if self.tcp is not None:
            self.tcp.abort()
