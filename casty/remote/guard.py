"""Who may hold a connection to this node, and how much of its memory and time they may use.

Two pools of inbound connections
    *Unauthenticated* connections (TCP accepted, handshake not complete: with a secret, not yet
    authenticated) live in their own pool of at most ``remote.max_connections``, of which one
    source address may hold ``remote.max_unauthenticated_per_address``. At most
    ``remote.max_handshakes`` of them (``remote.max_handshakes_per_address`` per address) run
    their handshake at once; the others wait, unread, and are admitted in arrival order, taking
    turns across source addresses. Every one of them is closed ``remote.handshake_timeout``
    after it was admitted (or after it started waiting, if it is never admitted).

    *Established* connections (handshake complete) live in a pool of ``remote.max_connections``.
    When it is full, a newly authenticated peer takes the place of the least recently active
    connection that carries nothing (no message to or from an actor since the last liveness
    round, no watch, nothing queued, not a cluster member); one that carries nothing for
    ``remote.idle_timeout`` is closed anyway. Neither pool can starve the other.

    A source address that opens connections faster than ``remote.accept_rate_per_address`` per
    second (beyond a burst of as many) has the excess closed at once, without a read.

Memory
    Bytes of incomplete frames held by all connections together are bounded by
    ``remote.max_partial_frame_bytes``: a connection whose partial frame would go beyond it
    stops reading until others complete theirs (TCP holds the rest); the connection that has
    held its incomplete frame longest always reads on, so they cannot all wait on each other. A connection whose
    messages wait in a mailbox that is ``remote.inbound_high_watermark`` deep stops reading
    until that mailbox is down to ``remote.inbound_low_watermark``.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from casty.remote.connection import Connection
    from casty.remote.transport import RemoteTransport

__all__ = ["ConnectionGuard"]

log = logging.getLogger("casty.remote")



class _Source:
    """The connections one source address holds before authentication, and its accept budget."""

    __slots__ = ("handshaking", "tokens", "unauthenticated", "updated", "waiting")

    def __init__(self, now: float, burst: float) -> None:
        self.unauthenticated = 0
        self.handshaking = 0
        self.waiting: deque[Connection] = deque()
        self.tokens = burst
        self.updated = now


class ConnectionGuard:
    """Admission, fairness and the node-wide memory bounds of one transport's inbound side."""

    def __init__(self, transport: RemoteTransport) -> None:
        self.transport = transport
        cfg = transport.config
        self.config = cfg
        #: inbound connections not yet established: waiting or handshaking
        self.unauthenticated: set[Connection] = transport._inbound
        #: inbound connections whose handshake completed
        self.established: set[Connection] = transport._established
        self._sources: dict[str, _Source] = {}
        #: source addresses with connections waiting, in turn order
        self._turns: deque[str] = deque()
        self.handshaking = 0
        #: bytes of incomplete frames held by every connection together
        self.partial_bytes = 0
        self._budget_waiters: deque[Connection] = deque()
        #: connections holding an incomplete frame, oldest first
        self._holders: dict[Connection, None] = {}
        #: mailbox -> the connections that stopped reading until it drains
        self._pressured: dict[Any, list[Connection]] = {}
        self.evicted = 0
        self.refused = 0

    # -- arrival ----------------------------------------------------------------------------
    def arrive(self, conn: Connection, host: str) -> bool:
        """A TCP connection was accepted: False when it is refused (and closed), else it joins
        the unauthenticated pool (``start`` then runs or queues its handshake)."""
        cfg = self.config
        loop = self.transport.loop
        now = loop.time()
        source = self._sources.get(host)
        rate = cfg.accept_rate_per_address
        if source is None:
            source = self._sources[host] = _Source(now, rate)
        else:
            source.tokens = min(rate, source.tokens + (now - source.updated) * rate)
            source.updated = now
        if source.tokens < 1.0:
            self._refuse(conn, source, host, f"too many connections from {host} (over remote.accept_rate_per_address)")
            return False
        source.tokens -= 1.0
        if source.unauthenticated >= cfg.max_unauthenticated_per_address:
            self._refuse(
                conn, source, host, f"too many connections from {host} (remote.max_unauthenticated_per_address)"
            )
            return False
        if len(self.unauthenticated) >= cfg.max_connections and not self._displace(source):
            self._refuse(conn, source, host, "too many connections (remote.max_connections not yet authenticated)")
            return False
        conn.source = host
        source.unauthenticated += 1
        self.unauthenticated.add(conn)
        return True

    def start(self, conn: Connection) -> None:
        """Start the handshake of a connection that joined the pool, or make it wait its turn."""
        cfg = self.config
        host = conn.source
        source = self._sources[host]
        if source.handshaking < cfg.max_handshakes_per_address and (
            self.handshaking < cfg.max_handshakes or self._preempt(source)
        ):
            self._admit(conn, source)
            return
        # wait unread; admitted in turn, or closed when it has waited a handshake timeout
        if not source.waiting:
            self._turns.append(host)
        source.waiting.append(conn)
        conn.wait_for_admission(cfg.handshake_timeout)

    def _displace(self, newcomer: _Source) -> bool:
        """The unauthenticated pool is full: make room by closing the newest connection of the
        source address that holds the most, if it holds more than the newcomer's. One address
        (or a few) cannot keep every other out."""
        biggest = max(self._sources.values(), key=lambda s: s.unauthenticated)
        if biggest.unauthenticated <= newcomer.unauthenticated + 1:
            return False
        victim: Connection | None
        if biggest.waiting:
            victim = biggest.waiting[-1]
        else:
            victim = max(
                (c for c in self.unauthenticated if self._sources.get(c.source) is biggest),
                key=lambda c: c.handshake_started,
                default=None,
            )
            if victim is None:
                return False
        victim.close_reason = "closed to make room for a connection from another address"
        self._leave_unauthenticated(victim)
        if victim.tcp is not None:
            victim.tcp.abort()
        return True

    def _preempt(self, newcomer: _Source) -> bool:
        """Every handshake slot is taken: free one by closing the oldest handshake of the source
        address that runs the most, if it runs more than the newcomer's. Handshake slots go
        round the addresses instead of to whoever came first."""
        biggest = max(self._sources.values(), key=lambda s: s.handshaking)
        if biggest.handshaking <= newcomer.handshaking + 1:
            return False
        victim = min(
            (c for c in self.unauthenticated if c.admitted and self._sources.get(c.source) is biggest),
            key=lambda c: c.handshake_started,
            default=None,
        )
        if victim is None:
            return False
        victim.close_reason = "closed to give its handshake slot to a connection from another address"
        self._leave_unauthenticated(victim, admit=False)
        if victim.tcp is not None:
            victim.tcp.abort()
        return self.handshaking < self.config.max_handshakes

    def _refuse(self, conn: Connection, source: _Source, host: str, reason: str) -> None:
        self.refused += 1
        self.transport.refuse_excess(conn.peer_label, reason)
        if conn.tcp is not None:
            conn.tcp.abort()
        if (
            not source.unauthenticated
            and not source.waiting
            and source.tokens >= self.config.accept_rate_per_address - 1
        ):
            self._sources.pop(host, None)

    def _admit(self, conn: Connection, source: _Source) -> None:
        self.handshaking += 1
        source.handshaking += 1
        conn.admitted = True
        conn.handshake_started = self.transport.loop.time()
        conn.admit()

    def _admit_waiting(self) -> None:
        cfg = self.config
        turns = self._turns
        sources = self._sources
        skipped = 0
        while turns and self.handshaking < cfg.max_handshakes and skipped < len(turns):
            host = turns[0]
            source = sources.get(host)
            if source is None or not source.waiting:
                turns.popleft()
                continue
            if source.handshaking >= cfg.max_handshakes_per_address:
                turns.rotate(-1)
                skipped += 1
                continue
            skipped = 0
            conn = source.waiting.popleft()
            if source.waiting:
                turns.rotate(-1)
            else:
                turns.popleft()
            self._admit(conn, source)

    # -- leaving the unauthenticated pool ---------------------------------------------------
    def _leave_unauthenticated(self, conn: Connection, admit: bool = True) -> None:
        if conn not in self.unauthenticated:
            return
        self.unauthenticated.discard(conn)
        host = conn.source
        source = self._sources.get(host)
        if source is None:
            return
        source.unauthenticated -= 1
        if conn.admitted:
            conn.admitted = False
            self.handshaking -= 1
            source.handshaking -= 1
        else:
            try:
                source.waiting.remove(conn)
            except ValueError:
                pass
        if not source.unauthenticated and source.tokens >= self.config.accept_rate_per_address - 1:
            del self._sources[host]
        if admit:
            self._admit_waiting()

    def make_room(self, conn: Connection) -> bool:
        """``conn`` has authenticated: is there room for it among the established connections?
        When the pool is full, the least recently active connection that carries nothing is
        closed to make room; False when there is none."""
        established = self.established
        if len(established) < self.config.max_connections:
            return True
        victim: Connection | None = None
        for other in established:
            if (victim is None or other.last_active < victim.last_active) and other.carries_nothing():
                victim = other
        if victim is None:
            return False
        self.evicted += 1
        log.info(
            "closing idle connection from %s to make room for %s (remote.max_connections = %d)",
            victim.peer_label,
            conn.peer_label,
            self.config.max_connections,
        )
        victim.close_reason = "closed to make room for another peer (idle)"
        established.discard(victim)
        victim.close()
        return True

    def on_established(self, conn: Connection) -> None:
        if conn.inbound:
            self._leave_unauthenticated(conn)
            self.established.add(conn)
            conn.last_active = self.transport.loop.time()
            if conn.assoc is not None:
                conn.sent_seen = conn.assoc.sent

    def on_closed(self, conn: Connection) -> None:
        if conn.inbound:
            self._leave_unauthenticated(conn)
            self.established.discard(conn)
        self.partial_changed(conn, -conn.partial_held)
        blocked = conn.pressured_by
        if blocked:
            conn.pressured_by = []
            for mailbox in blocked:
                waiters = self._pressured.get(mailbox)
                if waiters is not None and conn in waiters:
                    waiters.remove(conn)

    def check_idle(self, now: float) -> None:
        """Each liveness round: note which established connections carried something, and close
        those that carried nothing for ``remote.idle_timeout``."""
        limit = self.config.idle_timeout
        # source addresses with nothing pending: their accept budget has refilled by now
        idle_sources = [host for host, source in self._sources.items() if not source.unauthenticated]
        for host in idle_sources:
            del self._sources[host]
        for conn in list(self.established):
            if now - conn.last_active >= limit and conn.carries_nothing():
                conn.close_reason = f"idle for {now - conn.last_active:.0f}s (remote.idle_timeout)"
                log.info(
                    "closing connection from %s: carried nothing for %.0fs", conn.peer_label, now - conn.last_active
                )
                self.established.discard(conn)
                conn.close()

    # -- partial frames -----------------------------------------------------------------------
    def partial_changed(self, conn: Connection, delta: int) -> None:
        """``conn`` holds ``delta`` more (or fewer) bytes of an incomplete frame."""
        if not delta:
            return
        before = conn.partial_held
        conn.partial_held = held = before + delta
        self.partial_bytes += delta
        holders = self._holders
        if not before:
            holders[conn] = None
        elif not held:
            del holders[conn]
        budget = self.config.max_partial_frame_bytes
        if delta > 0:
            # the oldest holder always goes on, so incomplete frames cannot wait on each other
            if self.partial_bytes > budget and held > 0 and next(iter(holders)) is not conn:
                conn.block_reading(conn.BUDGET)
                self._budget_waiters.append(conn)
        elif self._budget_waiters:
            waiters = self._budget_waiters
            if self.partial_bytes < budget:
                self._budget_waiters = deque()
                for waiter in waiters:
                    waiter.unblock_reading(waiter.BUDGET)
            elif holders:
                oldest = next(iter(holders))
                if oldest.read_blocks & oldest.BUDGET:
                    waiters.remove(oldest)
                    oldest.unblock_reading(oldest.BUDGET)

    # -- inbound pressure -----------------------------------------------------------------------
    def pressured(self, conn: Connection, mailbox: Any) -> None:
        """A mailbox ``conn`` delivers to is ``inbound_high_watermark`` deep: stop reading until
        it is down to ``inbound_low_watermark``."""
        waiters = self._pressured.get(mailbox)
        if waiters is None:
            waiters = self._pressured[mailbox] = [conn]
            mailbox.notify_below(self.config.inbound_low_watermark, lambda: self._drained(mailbox))
        elif conn in waiters:
            return
        else:
            waiters.append(conn)
        conn.pressured_by.append(mailbox)
        conn.block_reading(conn.PRESSURE)

    def _drained(self, mailbox: Any) -> None:
        waiters = self._pressured.pop(mailbox, None)
        if not waiters:
            return
        for conn in waiters:
            blocked = conn.pressured_by
            if mailbox in blocked:
                blocked.remove(mailbox)
            if not blocked:
                conn.unblock_reading(conn.PRESSURE)
