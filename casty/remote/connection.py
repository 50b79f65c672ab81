"""One TCP connection: frames in, envelopes delivered; queued messages out, one write per batch.

After the handshake (:mod:`casty.remote.handshake`) every frame body is an envelope encoded by
the connection's serde encoder: ``[target, message]`` where ``target`` is ``[id, path]`` the
first time a path is used on the connection, the bare ``id`` afterwards, and the full path for
short-lived ``/temp/`` targets. Envelopes for ``CONTROL_PATH`` go to the transport; all others
are handed to the actor system's delivery API.

Over 500 lines on purpose: the read path (admission, partial-frame budget, dispatch slices,
inbound backpressure) and the write path of one socket share its state and are read together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from casty._fastpath import EnvelopeReader, EnvelopeWriter, FrameDecoder, FrameEncoder
from casty.actors.events import Terminated
from casty.actors.ref import ActorRef
from casty.errors import DeserializationError, FrameError, FrameTooLarge, HandshakeError, MessageRefused
from casty.remote.control import CONTROL_PATH, DeserializationFailed, RepliesRefused
from casty.remote.handshake import HANDSHAKE_LIMIT, Handshake
from casty.serde import MessageDecoder, MessageEncoder

if TYPE_CHECKING:
    from casty.remote.association import Association
    from casty.remote.transport import RemoteTransport

__all__ = ["Connection"]

log = logging.getLogger("casty.remote")

#: the wire name of the refusal notice: a refused notice is not answered with another one
_NOTICE_TYPE = f"{DeserializationFailed.__module__}:{DeserializationFailed.__qualname__}"
#: the first protocol version whose peers know RepliesRefused
_REPLIES_REFUSED_VERSION = 3

#: targets of earlier incarnations (and refused types) remembered per connection; beyond it,
#: such targets are dead letters all the same (an unknown path has no actor) and refusals of
#: further types are no longer logged
_GONE_TARGETS_LIMIT = 10_000

#: encoded bytes written per ``write()`` at most while draining a long queue
_FLUSH_CHUNK = 1 << 20
#: frame bodies dispatched between two looks at the clock
_DISPATCH_SLICE = 16
#: seconds one connection may dispatch before it yields the event loop to others
_DISPATCH_QUANTUM = 0.005


class Connection(asyncio.Protocol):
    """One TCP connection: handshake, frame decoding, dispatch, and coalesced writes.

    Reading stops (``pause_reading``) while any of these holds, and resumes when none does:
    the connection waits for a handshake slot (``WAITING``), frames it already read wait for
    the next event-loop turn (``BACKLOG``), a mailbox it delivered to is too deep
    (``PRESSURE``), or incomplete frames of all connections use up their budget (``BUDGET``).
    """

    WAITING = 1
    BACKLOG = 2
    PRESSURE = 4
    BUDGET = 8

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
        #: the queue being written (a message split for the frame size goes back to its front)
        self._out_queue: deque[tuple[str, object]] = deque()
        self.paused = False
        self.handshake = Handshake(self, transport)
        #: the event loop (held here: the transport's ``loop`` is a property, read per message)
        self.loop = transport.loop
        self.handshake_done: asyncio.Future[Association] = self.loop.create_future()
        self.close_reason = ""
        self.last_received = transport.loop.time()
        # -- the guard's accounting (casty.remote.guard) --
        self.source = ""
        self.admitted = False
        self.handshake_started = 0.0
        self.wait_timer: asyncio.TimerHandle | None = None
        self.read_blocks = 0
        self.partial_held = 0
        self.pressured_by: list[Any] = []
        #: messages delivered to actors (counted by the actor system's delivery API)
        self.delivered = 0
        self.pressure_high = transport.config.inbound_high_watermark
        self.last_active = self.last_received
        self.sent_seen = 0
        self._backlog: list[bytes] = []
        self._early: list[bytes] = []
        self._backlog_pos = 0
        self._continue_cb = self._continue_backlog
        #: types of refused messages already logged on this connection
        self.refused_types: set[str] = set()
        #: envelope targets naming an actor of an earlier incarnation of this process
        self.gone_targets: set[str] = set()
        #: bytes this connection received (handshake included); see also ``bytes_out``
        self.bytes_in = 0
        self._first_bytes = b""  # the first frame header while it arrives in parts

    @property
    def bytes_out(self) -> int:
        """Bytes of envelopes this connection wrote (the handshake not included)."""
        writer = self.envelopes_out
        return writer.bytes_written if writer is not None else 0

    @property
    def writes_out(self) -> int:
        """``write()`` calls that carried them."""
        writer = self.envelopes_out
        return writer.writes if writer is not None else 0

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
        # the guard first: a connection it refuses costs nothing more
        if self.inbound and not owner.guard.arrive(self, peer[0] if peer else "?"):
            return
        sock = transport.get_extra_info("socket")
        if sock is not None and owner.config.tcp_nodelay:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        tcp.set_write_buffer_limits(high=owner.config.outbound_buffer_size)
        if self.inbound:
            owner.guard.start(self)
            return
        self.handshake.begin(tcp)

    # -- admission (inbound) ------------------------------------------------------------------
    def wait_for_admission(self, timeout: float) -> None:
        """Wait, unread, for a handshake slot; closed if none comes within ``timeout``."""
        self.block_reading(self.WAITING)
        self.wait_timer = self.owner.loop.call_later(timeout, self._waited_too_long)

    def _waited_too_long(self) -> None:
        self.wait_timer = None
        if self.state == "handshake" and not self.admitted:
            self.abort(f"connection from {self.peer_label} waited {self.owner.config.handshake_timeout}s for a handshake slot")

    def admit(self) -> None:
        """A handshake slot is ours: start reading and the handshake."""
        if self.wait_timer is not None:
            self.wait_timer.cancel()
            self.wait_timer = None
        tcp = self.tcp
        if tcp is None or self.state != "handshake" or tcp.is_closing():
            return
        self.handshake.begin(tcp)
        self.unblock_reading(self.WAITING)
        early = self._early
        if early:
            self._early = []
            for data in early:
                self.data_received(data)

    # -- reading on and off ----------------------------------------------------------------------
    def block_reading(self, reason: int) -> None:
        if not self.read_blocks and self.tcp is not None and self.state != "closed":
            with contextlib.suppress(RuntimeError):
                self.tcp.pause_reading()
        self.read_blocks |= reason

    def unblock_reading(self, reason: int) -> None:
        if not self.read_blocks & reason:
            return
        self.read_blocks &= ~reason
        if reason == self.PRESSURE and self._backlog:
            self.owner.loop.call_soon(self._continue_cb)
            return
        if not self.read_blocks and self.tcp is not None and self.state != "closed":
            with contextlib.suppress(RuntimeError):
                self.tcp.resume_reading()

    def congested(self, mailbox: Any) -> None:
        """The actor system's delivery API: a mailbox this connection delivered to is
        ``remote.inbound_high_watermark`` deep."""
        self.owner.guard.pressured(self, mailbox)

    def carries_nothing(self) -> bool:
        """True when the peer has nothing that keeps this connection (watches either way,
        queued messages, cluster membership); ``last_active`` says when it last carried a message to
        or from an actor."""
        assoc = self.assoc
        if assoc is None:
            return True
        if assoc.watches or assoc.queue or assoc.keep_alive:
            return False
        return not self.owner.watch.remote_watchers.get(assoc.address)

    def connection_lost(self, exc: Exception | None) -> None:
        prev = self.state
        self.state = "closed"
        if self.envelopes is not None:
            self.envelopes.closed = True
        self.handshake.finish()
        if self.wait_timer is not None:
            self.wait_timer.cancel()
            self.wait_timer = None
        self._backlog = []
        self.owner.guard.on_closed(self)
        self.owner.writer_closed(self)
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
        if self.envelopes_out is not None:
            self.envelopes_out.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.envelopes_out is not None:
            self.envelopes_out.paused = False
        if self.assoc is not None and self.assoc.conn is self:
            self.assoc.schedule_flush()

    def data_received(self, data: bytes) -> None:
        if self.state != "open" or self.read_blocks & self.WAITING:
            self._data_received_any(data)  # the handshake, a closed connection
            return
        # an open connection (``_data_received_any``'s last part, without its state checks)
        owner = self.owner
        size = len(data)
        owner.bytes_received += size
        self.bytes_in += size
        self.last_received = received = self.loop.time()
        frames_in = self.frames_in
        try:
            bodies = frames_in.feed(data)
        except FrameTooLarge as exc:
            self.abort(f"peer {self.peer_label} sent a frame of {exc.size} bytes (limit {exc.limit})")
            return
        except FrameError as exc:
            self.abort(f"malformed frame from {self.peer_label}: {exc}")
            return
        held = frames_in.buffered
        if held != self.partial_held:
            owner.guard.partial_changed(self, held - self.partial_held)
        if bodies:
            delivered = self.delivered
            if self._backlog:
                self._backlog.extend(bodies)  # read before the pause took effect
            elif len(bodies) > _DISPATCH_SLICE:
                self._run_bodies(bodies, 0)
            else:
                # the usual read, one slice: ``_run_bodies`` inline, without the slicing and
                # the clock (this runs for every read of a request/response exchange)
                system = owner.system
                owner.holding += 1  # hold_flushes(), inline
                system.inbound_source = self
                try:
                    self.envelopes.dispatch(bodies)  # type: ignore[union-attr]
                except (DeserializationError, IndexError, TypeError, ValueError) as exc:
                    self._dispatch_refused(bodies, exc)
                finally:
                    system.inbound_source = None
                    # the actors the batch woke run now, and what they send is written
                    try:
                        if system.woken:
                            system.run_delivered()
                    finally:
                        if owner.holding > 1 or not owner.held:
                            owner.holding -= 1  # release_flushes() with nothing to flush
                        else:
                            owner.release_flushes()
            if self.delivered != delivered:
                self.last_active = received
        if frames_in.failure is not None:
            self._check_failure()

    def _data_received_any(self, data: bytes) -> None:
        if self.state == "closed":
            return
        owner = self.owner
        if self.read_blocks & self.WAITING:
            # read before the pause took effect (an event loop may start reading after
            # connection_made): kept unprocessed until the handshake slot comes
            self._early.append(data)
            if sum(map(len, self._early)) > HANDSHAKE_LIMIT:
                self.abort(f"handshake from {self.peer_label} is larger than {HANDSHAKE_LIMIT} bytes")
            elif self.tcp is not None:
                with contextlib.suppress(RuntimeError):
                    self.tcp.pause_reading()
            return
        if self.bytes_in < 4 and self.state == "handshake" and not self._first_header_fits(data):
            return
        owner.bytes_received += len(data)
        self.bytes_in += len(data)
        self.last_received = self.loop.time()
        frames_in = self.frames_in
        try:
            bodies = frames_in.feed(data)
        except FrameTooLarge as exc:
            self.abort(f"peer {self.peer_label} sent a frame of {exc.size} bytes (limit {exc.limit})")
            return
        except FrameError as exc:
            self.abort(f"malformed frame from {self.peer_label}: {exc}")
            return
        held = frames_in.buffered
        if held != self.partial_held:
            owner.guard.partial_changed(self, held - self.partial_held)
        if self.state == "handshake":
            while bodies and self.state == "handshake":
                self.handshake.on_frame(bodies.pop(0))
            if self.state == "handshake" and self.frames_in.buffered > HANDSHAKE_LIMIT:
                self.abort(f"handshake from {self.peer_label} is larger than {HANDSHAKE_LIMIT} bytes")
                return
            if self.state != "open":
                return
        if bodies:
            delivered = self.delivered
            if self._backlog:
                self._backlog.extend(bodies)  # read before the pause took effect
            else:
                self._run_bodies(bodies, 0)
            if self.delivered != delivered:
                self.last_active = self.last_received
        if frames_in.failure is not None:
            self._check_failure()

    def _first_header_fits(self, data: bytes) -> bool:
        """The connection's first frame is a handshake message, at most ``HANDSHAKE_LIMIT``
        bytes: a first header that announces more (bytes that are not casty's, an HTTP request)
        closes the connection at once instead of holding a place in the unauthenticated pool
        until ``handshake_timeout``. False when it closed."""
        head = self._first_bytes + bytes(data[: 4 - self.bytes_in])
        if len(head) < 4:
            self._first_bytes = head  # the header arrives in parts: wait for the rest
            return True
        announced = int.from_bytes(head, "big")
        if announced <= HANDSHAKE_LIMIT:
            return True
        what = "a TLS handshake, and this node does not use TLS" if head[:2] == b"\x16\x03" else "not a casty peer"
        self.abort(
            f"{self.peer_label} opened with a frame of {announced} bytes, larger than a handshake "
            f"({HANDSHAKE_LIMIT} bytes): {what}"
        )
        return False

    def _check_failure(self) -> None:
        failure = self.frames_in.failure
        if failure is not None and self.state == "open" and not self._backlog:
            self.abort(f"bad frame from {self.peer_label}: {failure}")

    def _run_bodies(self, bodies: list[bytes], pos: int) -> None:
        """Dispatch ``bodies[pos:]`` in slices; stop (keeping the rest as a backlog, reading
        paused) when a mailbox it fed is too deep or this connection has had the loop for
        ``_DISPATCH_QUANTUM`` seconds. Then the actors the batch woke handle their messages,
        and what they sent to other processes is written."""
        owner = self.owner
        system = owner.system
        owner.holding += 1  # hold_flushes(), inline
        try:
            self._run_slices(bodies, pos)
        finally:
            # the actors the batch woke run now, and what they send is written right after
            try:
                if system.woken:
                    system.run_delivered()
            finally:
                if owner.holding > 1 or not owner.held:
                    owner.holding -= 1  # release_flushes() with nothing to flush, inline
                else:
                    owner.release_flushes()

    def _run_slices(self, bodies: list[bytes], pos: int) -> None:
        system = self.owner.system
        count = len(bodies)
        # a read of one slice (the usual small one) never checks the quantum: no clock for it
        started = time.perf_counter() if count - pos > _DISPATCH_SLICE else 0.0
        while pos < count:
            end = min(count, pos + _DISPATCH_SLICE)
            chunk = bodies if (pos == 0 and end == count) else bodies[pos:end]
            system.inbound_source = self
            try:
                self._dispatch(chunk)
            finally:
                system.inbound_source = None
            pos = end
            if self.state != "open":
                self._backlog = []
                return
            if pos < count and (self.read_blocks & self.PRESSURE or time.perf_counter() - started >= _DISPATCH_QUANTUM):
                self._backlog = bodies
                self._backlog_pos = pos
                self.block_reading(self.BACKLOG)
                if not self.read_blocks & self.PRESSURE:
                    self.owner.loop.call_soon(self._continue_cb)
                return
        self._backlog = []

    def _continue_backlog(self) -> None:
        bodies = self._backlog
        if not bodies or self.state != "open" or self.read_blocks & self.PRESSURE:
            return
        delivered = self.delivered
        self._run_bodies(bodies, self._backlog_pos)
        if self.delivered != delivered:
            self.last_active = self.owner.loop.time()
        if not self._backlog:
            self._check_failure()
            self.unblock_reading(self.BACKLOG)

    # -- envelopes in ------------------------------------------------------------------------
    def _dispatch(self, bodies: list[bytes]) -> None:
        try:
            self.envelopes.dispatch(bodies)  # type: ignore[union-attr]
        except (DeserializationError, IndexError, TypeError, ValueError) as exc:
            self._dispatch_refused(bodies, exc)

    def _dispatch_refused(self, bodies: list[bytes], exc: Exception) -> None:
        """The envelope reader stopped at a body it refused (``exc``): the message is dropped
        as :meth:`refuse_message` says (or the connection closed), and the bodies after it
        are dispatched."""
        envelopes = self.envelopes
        assert envelopes is not None
        pos = 0
        while True:
            if not self.refuse_message(exc):
                self.abort(f"refused a message from {self.peer_label}: {exc}")
                return
            pos += envelopes.taken
            if pos >= len(bodies) or self.state != "open":
                return
            try:
                envelopes.dispatch(bodies[pos:])
                return
            except (DeserializationError, IndexError, TypeError, ValueError) as refused:
                exc = refused

    def _on_special(self, path: str, msg: object) -> bool:
        """A Terminated, a message for ``CONTROL_PATH`` or one for a target of an earlier
        incarnation (a dead letter): False when the connection was closed."""
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
        elif path in self.gone_targets:
            owner.deliver_gone(path, msg)
        else:
            owner.system.deliver(path, msg)
        return self.state == "open"

    # -- targets that carry an incarnation ------------------------------------------------------
    def incarnation_target(self, key: str) -> str:
        """The path a target with an incarnation mark names, kept marked (and remembered in
        ``gone_targets``) when that incarnation is not this process's."""
        owner = self.owner
        mark = owner.own_mark
        if key.endswith(mark):  # the usual case, without a call (see inbound_target)
            path = key[: -len(mark)]
            if "\x00" not in path:
                return path
        try:
            path = owner.inbound_target(key)
        except ValueError:
            raise DeserializationError(f"malformed envelope target {key!r}") from None
        if path is key and len(self.gone_targets) < _GONE_TARGETS_LIMIT:
            self.gone_targets.add(key)
        return path

    # -- messages this process cannot build -------------------------------------------------
    def refuse_message(self, exc: Exception) -> bool:
        """A message parsed in full but could not be built here (a class this process has not
        loaded, a failing constructor): it becomes a dead letter with the reason, the sender is
        told with :class:`DeserializationFailed`, and the connection stays up. Returns False
        when the bytes themselves are bad (the connection's tables may be out of step with the
        sender's): then the connection must close."""
        if not isinstance(exc, MessageRefused):
            return False
        envelope = exc.value
        if type(envelope) is not list or len(envelope) != 2:
            return False
        path = self._refused_target(envelope[0])
        if path is None:
            return False
        type_name = exc.type_name or ""
        reason = f"cannot decode a message from {self.peer_label}: {exc}"
        system = self.owner.system
        system.dead_letter(None, None if path == CONTROL_PATH else system.resolve_local(path), reason)
        if type_name not in self.refused_types and len(self.refused_types) < _GONE_TARGETS_LIMIT:
            self.refused_types.add(type_name)
            log.warning("%s (a dead letter for %s; the connection stays up)", reason, path)
        assoc = self.assoc
        if assoc is not None and type_name != _NOTICE_TYPE:
            assoc.send(CONTROL_PATH, DeserializationFailed(path, type_name, str(exc)))
            if exc.replies and self.handshake.version >= _REPLIES_REFUSED_VERSION:
                # the reply slots of the sender's asks that this message carried: they fail
                # now instead of waiting out their timeout (peers before protocol 3 lack this)
                prefix = str(assoc.address)
                slots = tuple(uri[len(prefix) :] for uri in exc.replies if uri.startswith(prefix + "/temp/"))
                if slots:
                    assoc.send(CONTROL_PATH, RepliesRefused(slots, type_name, str(exc)))
        return True

    def _refused_target(self, target: object) -> str | None:
        """The path of a refused envelope's target, learning it when the envelope defined it
        (the sender counts it as defined either way); None when the target is malformed."""
        in_paths = self.in_paths
        if type(target) is int:
            return in_paths[target] if 0 <= target < len(in_paths) else None
        if type(target) is str:
            return target if "\x00" not in target else self.incarnation_target(target)
        if type(target) is list and len(target) == 2:
            ident, path = target
            if ident == len(in_paths) and type(path) is str:
                if "\x00" in path:
                    path = self.incarnation_target(path)
                in_paths.append(path)
                return path
        return None

    # -- envelopes out -----------------------------------------------------------------------
    def write_queue(self, queue: deque[tuple[str, object]]) -> None:
        """Encode queued messages into frames and write them, until the queue is empty or the
        socket's buffer is full."""
        writer = self.envelopes_out
        if self.tcp is None or writer is None or self.state != "open":
            return
        assoc = self.assoc
        if assoc is not None and assoc.sent != self.sent_seen:
            self.sent_seen = assoc.sent
            self.last_active = self.loop.time()
        self._out_queue = queue
        writer.write_queue(queue)

    def _not_sent(self, path: str, msg: object, exc: Exception) -> None:
        if type(exc) is FrameTooLarge and self._split_oversized(self._out_queue, path, msg, exc):
            return
        assoc = self.assoc
        system = self.owner.system
        system.dead_letter(msg, assoc.ref(path) if assoc else None, f"not sent: {exc}")
        system.not_sent(msg, exc)
        log.warning("message to %s%s not sent: %s", self.peer_label, path, exc)

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
        if hasattr(self.encoder, "incarnation_of"):
            # refs travel with the incarnation of the process their actor lives in
            self.encoder.incarnation_of = owner.ref_incarnation
        if hasattr(self.encoder, "wire_prefix"):
            # the same, asked once per address (the URI prefix and incarnation of its refs)
            self.encoder.wire_prefix = owner.wire_prefix
        if hasattr(self.encoder, "protocol_version"):
            # the version both sides agreed on decides how types are defined on the wire
            self.encoder.protocol_version = self.handshake.version
        assert self.tcp is not None  # open() follows a handshake over it
        # the writer writes to the socket itself and counts what it wrote (no Python call
        # between the encoder and the socket)
        self.envelopes_out = EnvelopeWriter(
            self.encoder.encode, self.frames_out, self.tcp.write, self._not_sent, _FLUSH_CHUNK
        )
        self.envelopes_out.paused = self.paused
        owner.writer_opened(self)
        self.decoder = serializer.new_decoder(owner.ref_resolver)
        decoder: Any = self.decoder
        if hasattr(decoder, "max_types"):
            # definitions a peer may make on this connection (its tables live as long as it)
            decoder.max_types = owner.config.max_type_definitions
            decoder.max_refs = owner.config.max_ref_definitions
        if hasattr(decoder, "protocol_version"):
            decoder.protocol_version = self.handshake.version
        self.envelopes = EnvelopeReader(
            # the compiled reader's own decode when the serializer offers it (one Python call
            # fewer per message)
            getattr(decoder, "decode_function", None) or decoder.decode,
            owner.system.deliver,
            self._on_special,
            CONTROL_PATH,
            Terminated,
            self.incarnation_target,
            self.gone_targets,
            owner.own_mark,  # a target of this incarnation is unmarked without a call
        )
        owner.guard.on_established(self)
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
