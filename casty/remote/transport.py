"""The transport facade: one object per actor system that owns every peer of the process.

casty/remote in modules of one job each:

* :mod:`casty.remote.handshake` -- the handshake (version, identity, HMAC, TLS), top to bottom
* :mod:`casty.remote.connection` -- one TCP connection: framing, the read path, batched writes
* :mod:`casty.remote.guard` -- admission of inbound connections, and the node-wide memory bounds
* :mod:`casty.remote.association` -- one peer: outbound queue and flush, dialing, reconnect
* :mod:`casty.remote.watch` -- death watch across processes
* :mod:`casty.remote.refs` -- refs to remote actors and the URI caches
* :mod:`casty.remote.control` -- the control messages peers exchange
* this module -- :class:`RemoteTransport`: listening, liveness, pruning, control routing,
  and the names other packages import (``PROTOCOL_VERSION``, ``RemoteTransport``, ...)

One connection per pair
    A connection carries traffic both ways. When two processes dial each other at once, the
    connection dialed by the lower address wins: the other is refused during its handshake, so
    no message is ever written to a connection that is then dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from casty.actors.events import Publish
from casty.actors.ref import ActorRef, SystemAddress
from casty.errors import DeserializationError, MessageRefused
from casty.remote.association import Association
from casty.remote.connection import Connection
from casty.remote.control import CONTROL_PATH, DeserializationFailed, Ping, Pong, RepliesRefused, Unwatch, Watch
from casty.remote.guard import ConnectionGuard
from casty.remote.handshake import MIN_PROTOCOL_VERSION, PROTOCOL_VERSION
from casty.remote.refs import GoneIncarnation, RefCache, RemoteTarget, split_target
from casty.remote.watch import RemoteWatch
from casty.serde import MsgpackSerializer, PickleSerializer, Serializer

if TYPE_CHECKING:
    from casty.actors.system import ActorSystem
    from casty.config import RemoteConfig

__all__ = [
    "CONTROL_PATH",
    "PROTOCOL_VERSION",
    "DeserializationFailed",
    "Association",
    "Connection",
    "Ping",
    "Pong",
    "RemoteTarget",
    "RemoteTransport",
    "RepliesRefused",
    "Unwatch",
    "Watch",
]

log = logging.getLogger("casty.remote")
#: system addresses whose URI prefix ``ref_to_wire`` keeps (a cache: cleared when full)
_WIRE_PREFIX_LIMIT = 4096
#: seconds during which the same refusal (host and reason) is logged at debug level only
REFUSAL_LOG_INTERVAL = 60.0
#: (host, reason) pairs whose last warning time is kept (a cache: cleared when full)
_REFUSALS_KEPT = 1024


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
        #: the protocol versions this transport speaks, lowest and highest (see casty.remote.handshake)
        self.protocol_versions: tuple[int, int] = (MIN_PROTOCOL_VERSION, PROTOCOL_VERSION)
        self.listen = listen
        self.uid = random.getrandbits(63) or 1
        #: how a target key of this very incarnation ends (see ``target_key``)
        self.own_mark = f"\x00{self.uid:x}"
        #: SystemAddress -> its URI prefix, for ``ref_to_wire``
        self._wire_prefixes: dict[SystemAddress, str] = {}
        self.secret = secret
        self.ssl_server = ssl_server
        self.ssl_client = ssl_client
        #: maps a peer's advertised (host, port) to the address to dial (a client behind NAT)
        self.address_map: Callable[[tuple[str, int]], tuple[str, int]] | None = None
        if serializer is None:
            serializer = PickleSerializer() if config.allow_pickle else MsgpackSerializer(strict=config.strict_serialization)
        self.serializer: Serializer = serializer
        self.address = SystemAddress(system.name, host, port)
        #: ``str(self.address)``, the URI prefix of this process's actors (set with the address)
        self.own_prefix = str(self.address)
        self.associations: dict[SystemAddress, Association] = {}
        self.quarantined: set[int] = set()
        #: per (host, refusal reason): when it was last logged as a warning, and repeats since
        self._refusal_warnings: dict[tuple[str, str], list[float]] = {}
        #: inbound connections not yet established (waiting for or running their handshake)
        self._inbound: set[Connection] = set()
        #: inbound connections whose handshake completed
        self._established: set[Connection] = set()
        self.guard = ConnectionGuard(self)
        self._excess_logged_at = float("-inf")
        self._excess_refused = 0
        self._server: asyncio.AbstractServer | None = None
        self.closing = False
        self.listeners: list[Callable[[str, Association], None]] = []
        self.watch = RemoteWatch(self)
        self._ref_cache = RefCache(self)
        #: what decoders call for every ref on the wire: ``resolve_ref`` without the method
        #: in between
        self.ref_resolver: Callable[..., ActorRef[Any]] = self._ref_cache.resolve
        self._keepalive: asyncio.TimerHandle | None = None
        self.control_handlers: dict[type, Callable[[Connection, Any], None]] = {}
        self.control_handlers[DeserializationFailed] = self._on_refused
        self.control_handlers[RepliesRefused] = self._on_replies_refused
        #: types whose refusal by a peer was logged (once per type)
        self._refusals_logged: set[str] = set()
        #: bytes received (handshake included); ``bytes_sent`` and ``writes`` (envelopes
        #: written, and the write() calls) are counted by each open connection's writer
        self.bytes_received = 0
        self._writing: set[Connection] = set()
        self._closed_bytes_sent = 0
        self._closed_writes = 0
        #: while above 0 a read batch is being handled: associations that get messages to
        #: send wait in ``held`` and are flushed when it is done (see ``hold_flushes``)
        self.holding = 0
        self.held: list[Association] = []

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self.system.loop

    async def start(self) -> SystemAddress:
        if self.listen:
            self._server = await self.loop.create_server(
                lambda: Connection(self, inbound=True),
                self.bind_host,
                self.bind_port,
                reuse_address=True,
                backlog=self.config.listen_backlog,
            )
            sockets = self._server.sockets or ()
            if sockets:
                self.bind_port = sockets[0].getsockname()[1]
            if self.port == 0:
                self.port = self.bind_port
        self.address = SystemAddress(self.system_name, self.host, self.port)
        self.own_prefix = str(self.address)
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
            if conn.read_blocks & (conn.PRESSURE | conn.BACKLOG):
                # we stopped reading it (backpressure): its silence is ours, not the peer's; and
                # its pings wait behind what we have not read, so tell it we are alive
                assoc.send(CONTROL_PATH, Ping())
            elif silent >= limit:
                conn.abort(f"{assoc.address} sent nothing for {silent:.1f}s")
            elif silent >= interval:
                assoc.send(CONTROL_PATH, Ping())
        self.guard.check_idle(now)
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
            self._ref_cache.forget(assoc.address)

    def refuse_excess(self, peer_label: str, reason: str = "too many connections") -> None:
        """An inbound connection beyond the guard's limits is closed at once; logged at most
        once per second, with the number refused since the last report."""
        self._excess_refused += 1
        now = self.loop.time()
        if now - self._excess_logged_at >= 1.0:
            log.warning(
                "refused connection from %s: %s (%d not yet authenticated, %d established, "
                "remote.max_connections = %d); %d refused since the last report",
                peer_label,
                reason,
                len(self._inbound),
                len(self._established),
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
        conns: list[Connection] = list(self._inbound) + list(self._established)
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
                async with asyncio.timeout(1.0):
                    await self._server.wait_closed()
        # give the closing transports one turn to call connection_lost
        await asyncio.sleep(0)

    # -- traffic counters ------------------------------------------------------------------
    @property
    def bytes_sent(self) -> int:
        """Bytes of envelopes written to every peer since start."""
        return self._closed_bytes_sent + sum(conn.bytes_out for conn in self._writing)

    @property
    def writes(self) -> int:
        """``write()`` calls that carried them."""
        return self._closed_writes + sum(conn.writes_out for conn in self._writing)

    def writer_opened(self, conn: Connection) -> None:
        """``conn`` is open and writes envelopes: its counts join the totals."""
        self._writing.add(conn)

    def writer_closed(self, conn: Connection) -> None:
        """``conn`` is closed: what it wrote stays in the totals (moved in one step)."""
        if conn in self._writing:
            self._writing.discard(conn)
            self._closed_bytes_sent += conn.bytes_out
            self._closed_writes += conn.writes_out

    # -- flushing after a read batch -------------------------------------------------------
    def hold_flushes(self) -> None:
        """A batch read from a connection is being handled: what it makes actors send is
        written when :meth:`release_flushes` ends it, not one loop turn later."""
        self.holding += 1

    def release_flushes(self) -> None:
        self.holding -= 1
        if self.holding or not self.held:
            return
        held = self.held
        self.held = []
        for assoc in held:
            if assoc.flush_scheduled:
                try:
                    assoc.flush()
                except Exception:
                    log.exception("flushing the queue to %s failed", assoc.address)

    def held_back(self, address: SystemAddress) -> bool:
        """True while this process does not read its open connection to ``address`` because
        of its own inbound backpressure (a mailbox it feeds is too deep) or a dispatch backlog:
        the peer's silence then is ours, not the peer's."""
        assoc = self.associations.get(address)
        conn = assoc.conn if assoc is not None else None
        return conn is not None and conn.state == "open" and bool(conn.read_blocks & (conn.PRESSURE | conn.BACKLOG))

    # -- refs ------------------------------------------------------------------------------
    def is_self(self, address: SystemAddress) -> bool:
        return address.host == self.address.host and address.port == self.address.port and (
            address.system == self.system_name
        )

    def association(self, address: SystemAddress) -> Association:
        assoc = self.associations.get(address)
        if assoc is None:
            # a peer without a port (a client) cannot be dialed; the handshake's kind settles
            # it for every peer that connects to us
            assoc = self.associations[address] = Association(self, address, dialable=bool(address.port))
        return assoc

    def remote_ref(self, address: SystemAddress, path: str) -> ActorRef[Any]:
        return self.association(address).ref(path)

    def resolve_ref(self, uri: str, incarnation: int = 0) -> ActorRef[Any]:
        """Turn a URI from the wire into a ref: local actors resolve to themselves. A ref that
        came with the incarnation of its process keeps it: messages to it reach that
        incarnation or become dead letters ("incarnation gone")."""
        return self._ref_cache.resolve(uri, incarnation)

    def ref_incarnation(self, ref: ActorRef[Any]) -> int:
        """The incarnation sent beside ``ref``'s URI: ours for a local actor, else the one the
        ref was obtained from (0: unknown). See :meth:`wire_prefix`."""
        incarnation = self.wire_prefix(ref.system_address)[1]
        return ref.uid if incarnation is None else incarnation

    def inbound_target(self, key: str) -> str:
        """The local path an envelope target names: a path, or a path with the incarnation its
        sender obtained it from. A target of an earlier incarnation of this process keeps its
        incarnation mark: :meth:`deliver_gone` makes messages to it dead letters."""
        mark = self.own_mark
        if key.endswith(mark):  # the usual case: a target of this incarnation
            path = key[: -len(mark)]
            if "\x00" not in path:
                return path
        path, incarnation = split_target(key)
        return path if incarnation == self.uid else key

    def deliver_gone(self, key: str, msg: object) -> None:
        """A message sent to an actor of an earlier incarnation of this process."""
        path, incarnation = split_target(key)
        GoneIncarnation(self, path, incarnation).tell(msg)

    def wire_prefix(self, address: SystemAddress) -> tuple[str, int | None]:
        """How refs of ``address`` travel: the URI prefix (a ref's URI is it and the path) and
        the incarnation sent beside it (ours for this process's actors; None: the ref's own).
        The msgpack encoders ask once per address; :meth:`ref_to_wire` and
        :meth:`ref_incarnation` (for other serializers) answer from it per ref."""
        if address.host is None:
            return self.own_prefix, self.uid
        prefix = self._wire_prefixes.get(address)
        if prefix is None:
            prefix = str(address)
            if len(self._wire_prefixes) >= _WIRE_PREFIX_LIMIT:
                self._wire_prefixes.clear()
            self._wire_prefixes[address] = prefix
        # ``is_self`` as a tuple comparison (system, host, port)
        return prefix, (self.uid if address == self.address else None)

    def ref_to_wire(self, ref: ActorRef[Any]) -> str:
        return self.wire_prefix(ref.system_address)[0] + ref.path

    # -- events for the cluster ------------------------------------------------------------
    def notify(self, event: str, assoc: Association) -> None:
        """Tell the listeners ``connected``, ``disconnected``, ``unreachable`` (dialing failed for
        the first time since the last connection), ``restarted`` or ``gone``."""
        for listener in list(self.listeners):
            try:
                listener(event, assoc)
            except Exception:
                log.exception("transport listener failed on %s %s", event, assoc.address)

    def mark_gone(self, assoc: Association, reason: str, quarantine: bool = False, level: int = logging.WARNING) -> None:
        """The peer process is gone for good: watchers get Terminated, queued messages become
        dead letters, and the association is dropped (a later send starts afresh). Logged at
        ``level``: an expected departure (a client saying goodbye) is no warning."""
        if assoc.gone:
            return
        assoc.gone = True
        if quarantine and assoc.peer_uid is not None:
            self.quarantined.add(assoc.peer_uid)
        log.log(level, "%s is gone: %s", assoc.address, reason)
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
                self.system.dead_letter(msg, assoc.ref(path), f"{assoc.address} is gone: {reason}")
        self.watch.on_peer_gone(assoc, reason)
        if self.associations.get(assoc.address) is assoc:
            del self.associations[assoc.address]
        self._ref_cache.forget(assoc.address)
        self.notify("gone", assoc)

    # -- control messages ------------------------------------------------------------------
    def on_control(self, conn: Connection, msg: object) -> None:
        """A message that arrived on ``conn`` for ``CONTROL_PATH``."""
        if isinstance(msg, (Watch, Unwatch)) and not (isinstance(msg.path, str) and isinstance(msg.watcher, ActorRef)):
            raise DeserializationError(f"malformed {type(msg).__name__}: needs a path and an actor ref")
        if isinstance(msg, Ping):
            if conn.assoc is not None:
                conn.assoc.send(CONTROL_PATH, Pong())
        elif isinstance(msg, Pong):
            pass  # its arrival already counted as a sign of life
        elif isinstance(msg, Watch):
            self.watch.on_watch(msg)
        elif isinstance(msg, Unwatch):
            self.watch.on_unwatch(msg)
        else:
            handler = self.control_handlers.get(type(msg))
            if handler is None:
                log.warning("unknown control message %s from %s", type(msg).__name__, conn.peer_label)
            else:
                handler(conn, msg)

    def _on_replies_refused(self, conn: Connection, msg: RepliesRefused) -> None:
        """A peer refused a message carrying reply slots of our asks: they fail now."""
        paths, type_name, reason = msg.paths, msg.type_name, msg.reason
        if not (
            type(paths) is tuple
            and all(type(p) is str and p.startswith("/temp/") for p in paths)
            and isinstance(type_name, str)
            and isinstance(reason, str)
        ):
            raise DeserializationError("malformed RepliesRefused: needs /temp/ paths, type_name and reason strings")
        # only asks sent to this peer: another peer's replies are not this one's to fail
        sent_to = conn.assoc.address if conn.assoc is not None else None
        if sent_to is None:
            return
        for path in paths:
            error = MessageRefused(f"{conn.peer_label} could not decode the request: {reason}", type_name or None)
            self.system.fail_reply(path, error, sent_to)

    def _on_refused(self, conn: Connection, msg: DeserializationFailed) -> None:
        """A peer could not decode a message we sent: log it once per type, publish the notice."""
        if not (isinstance(msg.path, str) and isinstance(msg.type_name, str) and isinstance(msg.reason, str)):
            raise DeserializationError("malformed DeserializationFailed: needs path, type_name and reason strings")
        logged = self._refusals_logged
        if msg.type_name not in logged and len(logged) < 1000:
            logged.add(msg.type_name)
            log.warning(
                "%s could not decode a message sent to %s: %s (it became a dead letter there; "
                "logged once per type)",
                conn.peer_label,
                msg.path,
                msg.reason,
            )
        self.system.event_stream.tell(Publish(msg))

    def log_refusal(self, peer_label: str, reason: str) -> None:
        """Log a refused connection: as a warning the first time a host is refused for a
        reason, then at debug level for ``REFUSAL_LOG_INTERVAL`` seconds, so a misconfigured
        peer that keeps retrying (another system name, no secret, no certificate) or a flood of
        them logs once, not on every attempt; the next warning counts the repeats."""
        host = peer_label.rpartition(":")[0] or peer_label
        key = (host, reason)
        now = self.loop.time()
        seen = self._refusal_warnings.get(key)
        if seen is not None and now - seen[0] < REFUSAL_LOG_INTERVAL:
            seen[1] += 1
            log.debug("refused connection from %s: %s", peer_label, reason)
            return
        repeats = int(seen[1]) if seen is not None else 0
        if seen is None and len(self._refusal_warnings) >= _REFUSALS_KEPT:
            self._refusal_warnings.clear()
        self._refusal_warnings[key] = [now, 0]
        more = f" (refused {repeats} more times for this since the last warning)" if repeats else ""
        log.warning("refused connection from %s: %s%s", peer_label, reason, more)

    def add_control_handler(self, cls: type, handler: Callable[[Connection, Any], None]) -> None:
        """Route control messages of type ``cls`` (sent with ``send_control``) to ``handler``."""
        self.control_handlers[cls] = handler

    def send_control(self, address: SystemAddress, msg: object) -> None:
        self.association(address).send(CONTROL_PATH, msg)
