"""One peer process as this process sees it: its connection, the outbound queue, reconnects.

Outbound path
    ``tell`` on a remote ref appends ``(path, message)`` to the peer's queue and, once per
    event-loop turn, the queue is encoded into one buffer and written with one ``write()``.
    A message sent while nothing waits (an empty queue, no flush pending) is written at once,
    and what follows it in the same turn is batched as usual; what is sent while a batch read
    from a connection is handled (the replies of the actors it woke) is written when that
    batch is done, in one ``write()`` per peer.
    The queue is bounded (``remote.outbound_queue_size``); encoding stops while the socket's
    buffer is above ``remote.outbound_buffer_size``. A message that cannot be sent (queue full,
    not serializable, too large, peer gone) becomes a ``DeadLetter`` carrying the reason.

Reconnect
    A node peer is dialed on first use and redialed with jittered exponential backoff while
    something waits on it (queued messages, watches, or ``keep_alive``); after
    ``remote.give_up_after`` seconds of failures it is declared gone. A client peer is never
    dialed: it is reached only over the connections it opens, and is declared gone when it
    does not come back within ``give_up_after``.

A dead process versus a silent one
    When the connection to a known incarnation is lost and the redial is refused (nothing
    listens on the peer's address any more), the peer's process is gone: no later connection
    can reach that incarnation again, so everything watched there ends with ``Terminated`` at
    once (streams to and from it fail within a reconnect delay) instead of after
    ``give_up_after``. Queued messages and the reconnect attempts are kept as before (a new
    incarnation on the same address gets them, and ends the old one's watches on its
    handshake). A peer that is merely silent (a partition, a host that vanished without a
    reset) is not refused, and keeps the resume-then-give-up behaviour.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import random
import ssl
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from casty.actors.events import Terminated
from casty.actors.ref import ActorRef, SystemAddress
from casty.errors import CastyError, HandshakeError
from casty.remote.connection import Connection
from casty.remote.control import CONTROL_PATH, Unwatch, Watch
from casty.remote.refs import RemoteTarget, split_target

if TYPE_CHECKING:
    from casty.remote.transport import RemoteTransport

__all__ = ["Association"]

log = logging.getLogger("casty.remote")

#: refs cached per peer before the cache is cleared (refs already handed out keep working)
_PEER_REF_CACHE_LIMIT = 10_000


class Association:
    """Everything this process knows about one peer process: connection, queue, watches."""

    def __init__(self, transport: RemoteTransport, address: SystemAddress, dialable: bool) -> None:
        self.transport = transport
        self.address = address
        self.dialable = dialable
        self.conn: Connection | None = None
        self.queue: deque[tuple[str, object]] = deque()
        #: ``remote.outbound_queue_size``, read once (``send`` checks it on every message)
        self.queue_limit = transport.config.outbound_queue_size
        self.flush_scheduled = False
        self.targets: dict[str, RemoteTarget] = {}
        #: refs by target key (the path, with the incarnation when known)
        self.refs: dict[str, ActorRef[Any]] = {}
        self.watches: dict[str, set[ActorRef[Any]]] = {}
        self.peer_uid: int | None = None
        #: what the peer said it is in its handshake: "node" or "client" (None before one)
        self.peer_kind: str | None = None
        self.dialing: asyncio.Task[None] | None = None
        self.retry_handle: asyncio.TimerHandle | None = None
        self.backoff = transport.config.reconnect_backoff_min
        self.failing_since: float | None = None
        #: why the last dial or connection failed ("" once connected)
        self.last_failure = ""
        self.gone = False
        self.idle_checks = 0
        self.keep_alive = False  # set by the cluster for members: never give up on our own
        self.simultaneous_wait: asyncio.TimerHandle | None = None
        #: bytes of this peer's closed connections (the open one keeps its own count)
        self.closed_bytes_in = 0
        self.closed_bytes_out = 0
        #: the incarnation whose address refused a redial after its connection was lost: its
        #: process is gone (None while no such refusal was seen since the last connection)
        self.dead_uid: int | None = None
        #: messages sent to the peer's actors (not counting control messages)
        self.sent = 0
        self._flush_cb = self.flush
        #: callbacks that run at the start of the next flush (stream producers moving their
        #: buffered elements into the queue), so what they send is written in the same turn
        self.pre_flush: list[Callable[[], None]] = []
        #: True while the queue is being written (a message sent meanwhile waits its turn)
        self.writing = False
        #: the transport's ``bytes_received`` when a message was last written through (sent
        #: alone, at once); -1 when a flush ran since. A send that finds it unchanged is taken
        #: to be part of the same burst and waits for the flush.
        self.through_mark = -1

    def __repr__(self) -> str:
        state = "open" if self.conn else ("gone" if self.gone else "idle")
        return f"<Association {self.address} {state}>"

    def ref(self, path: str, incarnation: int = 0) -> ActorRef[Any]:
        """The ref of the peer's actor at ``path``, obtained from incarnation ``incarnation`` of
        the peer (0: whichever incarnation is there). ``path`` may also be a target key, the
        path and incarnation a message was queued for."""
        if "\x00" in path:
            path, incarnation = split_target(path)
        if path.startswith("/temp/"):
            return self.temp_ref(path, incarnation)
        key = f"{path}\x00{incarnation:x}" if incarnation else path
        ref = self.refs.get(key)
        if ref is None:
            if len(self.refs) >= _PEER_REF_CACHE_LIMIT:
                # a cache, not a registry: refs already handed out keep working without it
                self.refs.clear()
                self.targets.clear()
            target = self.targets.get(key)
            if target is None:
                target = self.targets[key] = RemoteTarget(self.transport, self.address, path, self, incarnation)
            ref = self.refs[key] = ActorRef(self.address, path, target.tell, target, incarnation)
        return ref

    def temp_ref(self, path: str, incarnation: int) -> ActorRef[Any]:
        """The ref of the peer's short-lived target at ``path`` (under ``/temp/``, an ask's
        reply slot): not cached, or the association would grow with every ask."""
        temp = RemoteTarget(self.transport, self.address, path, self, incarnation)
        return ActorRef(self.address, path, temp.tell, temp, incarnation)

    # -- sending ---------------------------------------------------------------------------
    def send(self, path: str, msg: object) -> None:
        queue = self.queue
        if self.gone or len(queue) >= self.queue_limit:
            self._refuse(path, msg)
            return
        queue.append((path, msg))
        if path != CONTROL_PATH:
            self.sent += 1
        if type(msg) is Terminated:
            # a local actor this peer watched has stopped: the watch is over
            self.transport.watch.on_terminated_sent(self, msg.ref.path, path)
        if self.flush_scheduled:
            return
        conn = self.conn
        if conn is None:
            if self.dialing is None and self.retry_handle is None:
                self.connect()
            return
        transport = self.transport
        if transport.holding:
            # sent while a read batch is handled: written when the batch is done
            self.flush_scheduled = True
            transport.held.append(self)
            return
        if len(queue) == 1 and not conn.paused and not self.writing and self.through_mark != transport.bytes_received:
            # Nothing waits before it and nothing was written through since this process last
            # read: written now, not one loop turn later (the request/response case, which then
            # costs no extra loop turn). What is sent after it before the next read joins a
            # flush scheduled for the end of the turn, so a burst is still one write.
            self.through_mark = transport.bytes_received
            self.writing = True
            try:
                conn.write_queue(queue)
            finally:
                self.writing = False
            if not queue:
                return
        self.flush_scheduled = True
        transport.loop.call_soon(self._flush_cb)

    def _refuse(self, path: str, msg: object) -> None:
        """``msg`` cannot be queued: the peer is gone or the queue is full (a dead letter)."""
        why = f"{self.address} is gone" if self.gone else f"outbound queue to {self.address} is full"
        self.transport.system.dead_letter(msg, self.ref(path), why)

    def schedule_flush(self) -> None:
        if not self.flush_scheduled and self.queue and self.conn is not None:
            self.flush_scheduled = True
            self.transport.loop.call_soon(self._flush_cb)

    def flush_with(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` at the start of the next flush, before the queue is written: what it
        sends goes out with the same ``write()`` instead of one loop turn later."""
        self.pre_flush.append(callback)
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self.transport.loop.call_soon(self._flush_cb)

    def flush(self) -> None:
        hooks = self.pre_flush
        if hooks:
            self.pre_flush = []
            self.flush_scheduled = True  # what the hooks send joins this flush
            for hook in hooks:
                try:
                    hook()
                except Exception:
                    log.exception("pre-flush callback for %s failed", self.address)
        self.flush_scheduled = False
        self.through_mark = -1
        conn = self.conn
        if self.queue:
            if conn is not None:
                self.writing = True
                try:
                    conn.write_queue(self.queue)
                finally:
                    self.writing = False
            elif self.dialing is None and self.retry_handle is None:
                self.connect()
        if self.pre_flush and not self.flush_scheduled:
            # a callback asked for a flush while this one ran: it gets the next one
            self.flush_scheduled = True
            self.transport.loop.call_soon(self._flush_cb)

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
            async with asyncio.timeout(cfg.connect_timeout):
                await transport.loop.create_connection(
                    lambda: conn,
                    dial_host,
                    dial_port,
                    ssl=transport.ssl_client,
                    server_hostname=host if transport.ssl_client else None,
                )
            await conn.handshake_done
        except asyncio.CancelledError:
            self.dialing = None
            raise
        except (OSError, TimeoutError, CastyError, ssl.SSLError) as exc:
            self.dialing = None
            if self.peer_uid is not None and _refused(exc):
                self._process_gone(f"{type(exc).__name__}: {exc}")
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
            self.last_failure = reason
            if self.failing_since is None:
                self.failing_since = now
                # a refused handshake is a configuration error worth a warning; a peer that is
                # merely gone is only worth one when someone waits on it (and not on a client,
                # which reports the failover itself)
                refused = reason.startswith("HandshakeError")
                waited_on = (self.keep_alive or bool(self.watches)) and self.transport.kind != "client"
                level = logging.WARNING if (waited_on or refused) else logging.INFO
                log.log(level, "cannot reach %s (%s); retrying with backoff", self.address, reason)
                self.transport.notify("unreachable", self)
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

    def attach(self, conn: Connection, peer_uid: int, peer_kind: str) -> None:
        """A handshake completed on ``conn``: it becomes this association's connection."""
        old = self.conn
        if self.peer_uid is not None and peer_uid != self.peer_uid:
            self.transport.watch.on_peer_restarted(self, self.peer_uid, peer_uid)
        self.peer_uid = peer_uid
        self.peer_kind = peer_kind
        if peer_kind == "client":
            self.dialable = False  # it has no listening port: reached only over its connections
        self.conn = conn
        self.dead_uid = None
        self.failing_since = None
        self.last_failure = ""
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
        self.transport.notify("connected", self)
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
        self.transport.notify("disconnected", self)
        if self.dialable:
            self._schedule_retry(reason=reason, delay=self.transport.config.reconnect_backoff_min)
        elif not self.keep_alive:
            # a client that has no listening port: wait give_up_after for it to come back
            loop = self.transport.loop
            self.failing_since = loop.time()
            self.retry_handle = loop.call_later(self.transport.config.give_up_after, self._client_gone)

    def _process_gone(self, reason: str) -> None:
        """A redial after losing the connection was refused: the incarnation we knew is dead."""
        if self.dead_uid == self.peer_uid:
            return  # already ended (a later watch ends at once in add_watch)
        self.dead_uid = self.peer_uid
        log.info("the process at %s is gone (%s): ending the watches of its actors", self.address, reason)
        self.transport.watch.on_peer_process_gone(self, reason)

    def _client_gone(self) -> None:
        self.retry_handle = None
        if self.conn is None:
            self.transport.mark_gone(self, "client did not reconnect")

    # -- watching actors of this peer --------------------------------------------------------------
    def add_watch(self, path: str, watcher: ActorRef[Any]) -> None:
        if self.gone:
            watcher.tell(Terminated(self.ref(path), f"{self.address} is gone"))
            return
        if self.dead_uid is not None and self.conn is None:
            watcher.tell(Terminated(self.ref(path), f"node lost: process gone ({self.address} refuses connections)"))
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

    def end_watches(self, reason: str) -> None:
        """The peer's actors we watched are unreachable for good: watchers get Terminated."""
        watches = self.watches
        self.watches = {}
        for path, watchers in watches.items():
            terminated = Terminated(self.ref(path), reason)
            for watcher in watchers:
                watcher.tell(terminated)


def _refused(exc: BaseException) -> bool:
    """True when a dial failed because nothing listens at the address (not a timeout, not TLS)."""
    return isinstance(exc, ConnectionRefusedError) or (isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED)
