"""ClusterClient: use a cluster from outside it, without joining and without a listening port.

The client runs a small actor system of its own whose address is ``casty://name@client-<id>:0``
(the host part is only a unique name: nodes know a client by the ``kind`` its handshake carries).
It never listens: it opens one connection to each node it talks to, and the nodes reach its
actors back over those same connections (so it works behind NAT).

It keeps a view of the cluster pushed by one contact node (``ClientHello`` once, then a
``ClientUpdate`` on every membership or registry change): ``lookup`` answers from that view
synchronously. When the contact node is lost the client moves to another up member it knows,
and while no member can be reached it retries with backoff and ``ask`` fails at once with
:class:`ClusterUnavailable` instead of waiting for its timeout.

Over 500 lines on purpose: the contact loop, the view it keeps and the failover rules are one
state machine around one connection at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from casty.actors.behaviors import Behavior
from casty.actors.mailbox import Mailbox
from casty.actors.receptionist import Listing, Registry, ServiceKey
from casty.actors.ref import ActorRef, NodeAddress, SystemAddress
from casty.cluster.client_protocol import (
    ClientBye,
    ClientHello,
    ClientUpdate,
    ClientUpdatePart,
    UpdateAssembler,
    merge_snapshots,
)
from casty.cluster.members import Member, MemberStatus
from casty.config import TlsConfig
from casty.errors import CastyError
from casty.remote import Association, Connection, RemoteActorSystem
from casty.remote.tls import client_context

if TYPE_CHECKING:
    from casty.config import CastyConfig
    from casty.serde import Serializer

__all__ = ["ClusterClient", "ClusterUnavailable"]

_LIVE = (MemberStatus.JOINING, MemberStatus.UP, MemberStatus.LEAVING)

log = logging.getLogger("casty.client")

M = TypeVar("M")
R = TypeVar("R")


class ClusterUnavailable(CastyError):
    """The client cannot reach any member of the cluster right now."""


class ClusterClient:
    """An external client of a cluster: discovers services, spawns addressable actors, asks,
    and streams in both directions.

    ``async with ClusterClient(contact_points=[("127.0.0.1", 25520)], system_name="app") as c``
    connects to the first reachable contact point and waits for the first view of the cluster
    (``connect_timeout`` seconds, then :class:`ClusterUnavailable`).
    """

    def __init__(
        self,
        contact_points: Sequence[tuple[str, int]],
        system_name: str,
        config: CastyConfig | None = None,
        *,
        connect_timeout: float = 10.0,
        serializer: Serializer | None = None,
        client_id: str | None = None,
        address_map: Callable[[tuple[str, int]], tuple[str, int]] | None = None,
        tls: TlsConfig | ssl.SSLContext | Any | None = None,
        client_host: str = "127.0.0.1",
        client_port: int = 0,
        advertised_host: str | None = None,
        advertised_port: int | None = None,
    ) -> None:
        """``address_map((host, port))`` turns a member's advertised address into one this client
        can reach (nodes behind NAT or inside a container network); every connection the client
        opens to a member goes to the mapped address, while refs keep the advertised one.

        ``tls`` encrypts the client's connections: a ``[tls]`` config section, an
        ``ssl.SSLContext`` for the client side, or an object with a ``client_context`` attribute
        holding one (default: the config's ``[tls]``). ``serializer`` replaces the wire serializer.

        ``client_host``, ``client_port``, ``advertised_host`` and ``advertised_port`` are accepted
        for programs written for casty 0.21 and have no effect: the client opens every connection
        itself and listens on no port.
        """
        if not contact_points:
            raise ValueError("a ClusterClient needs at least one contact point")
        if address_map is not None and not callable(address_map):
            raise TypeError("address_map must be a callable mapping (host, port) to (host, port)")
        self.contact_points: tuple[NodeAddress, ...] = tuple(NodeAddress(h, int(p)) for h, p in contact_points)
        self.system_name = system_name
        self.client_id = client_id or os.urandom(6).hex()
        self.address_map = address_map
        if (client_host, client_port, advertised_host, advertised_port) != ("127.0.0.1", 0, None, None):
            log.debug(
                "client_host/client_port/advertised_host/advertised_port have no effect: "
                "the client listens on no port and reaches the cluster over connections it opens"
            )
        self.system = RemoteActorSystem(
            system_name,
            host=f"client-{self.client_id}",
            port=0,
            config=config,
            serializer=serializer,
            ssl_client=_client_ssl(tls),
            listen=False,
            kind="client",
        )
        self.config = self.system.config
        self.connect_timeout = connect_timeout
        self.registry = Registry(lambda: None)
        self.members: tuple[Member, ...] = ()
        self.unreachable: frozenset[NodeAddress] = frozenset()
        self.contact: NodeAddress | None = None
        self._connected = False
        self._first_view: asyncio.Future[None] | None = None
        self._view_changed: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._rng = random.Random()
        self._closing = False
        self._switch_to: NodeAddress | None = None
        self._contact_lost: asyncio.Event | None = None
        self._state_events: dict[bool, asyncio.Event] = {}
        self._update_parts = UpdateAssembler()
        #: the contact lost and not yet replaced: (node, why, loop time of the loss)
        self._lost: tuple[NodeAddress, str, float] | None = None
        #: what each contact point answered in the last round in which none was reached
        self._last_tried: list[str] = []
        self._lost_reason = ""

    # -- life cycle --------------------------------------------------------------------------
    async def __aenter__(self) -> ClusterClient:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def start(self) -> None:
        if self._task is not None:
            return
        await self.system.start()
        if self.address_map is not None and self.system.transport is not None:
            self.system.transport.address_map = self.address_map
        loop = self.system.loop
        transport = self.system.require_transport()
        transport.add_control_handler(ClientUpdate, self._on_update)
        transport.add_control_handler(ClientUpdatePart, self._on_update_part)
        transport.listeners.append(self._on_transport_event)
        self._first_view = loop.create_future()
        self._view_changed = asyncio.Event()
        self._contact_lost = asyncio.Event()
        self._state_events = {True: asyncio.Event(), False: asyncio.Event()}
        self._state_events[False].set()
        self._task = loop.create_task(self._contact_loop())
        try:
            async with asyncio.timeout(self.connect_timeout):
                await asyncio.shield(self._first_view)
        except TimeoutError:
            await self.close()
            why = f" ({'; '.join(self._last_tried)})" if self._last_tried else ""
            raise ClusterUnavailable(
                f"no contact point of {', '.join(map(str, self.contact_points))} answered within "
                f"{self.connect_timeout}s{why}"
            ) from None

    async def close(self) -> None:
        """Stop the client's actors (cluster-side watchers get ``Terminated``) and disconnect."""
        if self._closing:
            return
        self._closing = True
        if self._contact_lost is not None:
            self._contact_lost.set()  # the contact loop ends at its next check even if a cancel is lost
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        # stop our actors first: their cluster-side watchers get Terminated, then say goodbye so
        # the nodes forget this client at once instead of waiting for it to reconnect
        await self.system.stop_actors()
        transport = self.system.transport
        if transport is not None:
            for assoc in list(transport.associations.values()):
                if assoc.conn is not None:
                    transport.send_control(assoc.address, ClientBye(self.client_id))
        await self.system.shutdown()

    @property
    def address(self) -> SystemAddress:
        return self.system.address

    @property
    def connected(self) -> bool:
        """True while the client has a live connection to its contact node."""
        return self._connected

    def _set_connected(self, connected: bool) -> None:
        self._connected = connected
        if self._state_events:
            self._state_events[connected].set()
            self._state_events[not connected].clear()

    async def wait_connected(self, connected: bool = True, timeout: float | None = None) -> None:
        """Wait until the client is connected to a member (or, with ``connected=False``, until it
        has lost its contact)."""
        event = self._state_events.get(connected)
        if event is None:
            raise RuntimeError("the client is not started")
        async with asyncio.timeout(timeout):
            await event.wait()

    # -- contact management ----------------------------------------------------------------------
    def _candidates(self) -> list[NodeAddress]:
        up = [m.node for m in self.members if m.status is MemberStatus.UP and m.node not in self.unreachable]
        self._rng.shuffle(up)
        if self._lost is not None and self._lost[0] in up:
            up.remove(self._lost[0])
            up.append(self._lost[0])  # the contact just lost is tried last
        if self._switch_to is not None:
            up.insert(0, self._switch_to)
            self._switch_to = None
        seen: set[NodeAddress] = set()
        ordered: list[NodeAddress] = []
        for node in [*up, *self.contact_points]:
            if node not in seen:
                seen.add(node)
                ordered.append(node)
        return ordered

    async def _contact_loop(self) -> None:
        """Keep a contact node: try the candidates in turn, stay with the first that answers,
        and start over when it is lost. What happened is logged once, when it is known: the
        contact that was lost and the member now used (or every member tried, with why)."""
        cfg = self.config.client
        backoff = cfg.reconnect_backoff_min
        transport = self.system.require_transport()
        assert self._contact_lost is not None
        loop = self.system.loop
        failures = 0
        while not self._closing:
            tried: list[str] = []
            lost_contact = False
            for node in self._candidates():
                if self._closing:
                    return
                self._contact_lost.clear()
                self.contact = node
                address = SystemAddress(self.system_name, node.host, node.port)
                assoc = transport.association(address)
                assoc.keep_alive = True
                transport.send_control(address, ClientHello(self.client_id))
                wait = self.config.remote.connect_timeout + 1
                try:
                    # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel
                    # that arrives as its inner wait completes, leaving close() waiting forever
                    async with asyncio.timeout(wait):
                        connected = await self._wait_connected(assoc)
                except TimeoutError:
                    connected = False
                if self._closing:
                    return
                if not connected:
                    assoc.keep_alive = False
                    tried.append(f"{node}: {assoc.last_failure or f'no answer within {wait:.0f}s'}")
                    continue
                self._report_contact(node)
                failures = 0
                backoff = cfg.reconnect_backoff_min
                await self._contact_lost.wait()
                self._set_connected(False)
                if self._switch_to is not None:
                    break  # the contact point is a member known by another address: use that one
                if not self._closing:
                    self._lost = (node, self._lost_reason or "connection lost", loop.time())
                    log.info("lost contact node %s (%s); trying the other members", node, self._lost[1])
                lost_contact = True
                break  # start over: the candidates changed, the lost node goes last
            else:
                failures += 1
                self._last_tried = tried
            if self._switch_to is not None or lost_contact:
                continue
            if failures == 1 or failures % 10 == 0:
                log.warning(
                    "no cluster member reachable (tried %s); retrying in %.1fs",
                    "; ".join(tried) or "none known",
                    backoff,
                )
            # jittered by half the delay either way: a fleet of clients that lost the cluster
            # together (a restart) comes back spread out, not in waves
            await asyncio.sleep(backoff * (0.5 + self._rng.random()))
            backoff = min(backoff * 2, cfg.reconnect_backoff_max)

    def _report_contact(self, node: NodeAddress) -> None:
        """A contact node answered: after a loss, say once what happened."""
        lost = self._lost
        if lost is None:
            return
        self._lost = None
        lost_node, reason, since = lost
        log.warning(
            "contact node %s lost (%s); connected through %s after %.1fs",
            lost_node,
            reason,
            node,
            self.system.loop.time() - since,
        )

    async def _wait_connected(self, assoc: Association) -> bool:
        """True once ``assoc``'s node is our contact and has sent its view; False as soon as
        dialing it failed (refused, reset, handshake refused)."""
        assert self._view_changed is not None
        while self._switch_to is None and not (
            assoc.conn is not None and self._connected and self.contact == _node(assoc.address)
        ):
            if assoc.conn is None and assoc.failing_since is not None:
                return False
            self._view_changed.clear()
            await self._view_changed.wait()
        return True

    def _on_update_part(self, conn: Connection, msg: ClientUpdatePart) -> None:
        """A part of an update too large for one frame: applied once all its parts are in."""
        if conn.assoc is None or _node(conn.assoc.address) != self.contact:
            return
        parts = self._update_parts.add((conn.assoc.address, msg.update), msg.index, msg.count, msg)
        if parts is None:
            return
        first: ClientUpdatePart = parts[0]
        registries = merge_snapshots([snap for part in parts for snap in part.registries])
        self._on_update(conn, ClientUpdate(first.members, first.unreachable, registries))

    def _on_update(self, conn: Connection, msg: ClientUpdate) -> None:
        if conn.assoc is None:
            return
        sender = _node(conn.assoc.address)
        if sender != self.contact:
            return  # a stale update from a previous contact
        alias = self._member_behind(sender, msg.members)
        if alias is not None:
            # The contact point is a member that advertises another address (address_map maps that
            # one to the contact point). Talk to it under its advertised address only: refs from
            # the cluster carry that one, and a second connection would replace this one.
            log.debug("contact point %s is member %s; reconnecting under that address", sender, alias)
            self._switch_to = alias
            conn.assoc.keep_alive = False
            conn.close()
            if self._contact_lost is not None:
                self._contact_lost.set()
            if self._view_changed is not None:
                self._view_changed.set()
            return
        old_members = {m.key: m for m in self.members}
        self.members = msg.members
        self.unreachable = frozenset(msg.unreachable)
        current = {m.key for m in msg.members}
        transport = self.system.transport
        # members the cluster removed or downed are gone for good: watchers get Terminated now
        for key, member in old_members.items():
            if (key not in current or member.status is MemberStatus.DOWN) and transport is not None:
                assoc = transport.associations.get(SystemAddress(self.system_name, *member.node))
                if assoc is not None and (assoc.peer_uid in (None, member.uid)):
                    transport.mark_gone(
                        assoc, f"member {member.node} left the cluster", quarantine=True, level=logging.INFO
                    )
        for member in msg.members:
            if member.status is MemberStatus.DOWN and transport is not None:
                assoc = transport.associations.get(SystemAddress(self.system_name, *member.node))
                if assoc is not None and assoc.peer_uid in (None, member.uid):
                    transport.mark_gone(assoc, f"member {member.node} was downed", quarantine=True, level=logging.INFO)
        live = {m.node for m in msg.members if m.status in (MemberStatus.JOINING, MemberStatus.UP, MemberStatus.LEAVING)}
        snapshots = {s.node: s for s in msg.registries if s.node in live}
        for node in list(self.registry.remote):
            if node not in snapshots:
                self.registry.remove_node(node)
        for node, snap in snapshots.items():
            self.registry.set_node(node, {name: frozenset(refs) for name, refs in snap.entries})
            self.registry.set_reachable(node, node not in self.unreachable)
        if not self._connected and self._lost is None:
            log.info("connected to the cluster through %s (%d members)", sender, len(msg.members))
        self._set_connected(True)
        if self._first_view is not None and not self._first_view.done():
            self._first_view.set_result(None)
        if self._view_changed is not None:
            self._view_changed.set()

    def _dial_target(self, node: NodeAddress) -> tuple[str, int]:
        if self.address_map is None:
            return (node.host, node.port)
        host, port = self.address_map((node.host, node.port))
        return (str(host), int(port))

    def _member_behind(self, contact: NodeAddress, members: Sequence[Member]) -> NodeAddress | None:
        """The live member that ``contact`` reaches under another address, if any."""
        if self.address_map is None or any(m.node == contact for m in members):
            return None
        target = self._dial_target(contact)
        for member in members:
            if member.status in _LIVE and self._dial_target(member.node) == target:
                return member.node
        return None

    def _on_transport_event(self, event: str, assoc: Association) -> None:
        if event == "disconnected" and not self._closing:
            # Nodes reach the client's actors only over connections the client opened: re-dial
            # a live member we were talking to, so its messages to us are not stranded.
            node = _node(assoc.address)
            if any(m.node == node and m.status in _LIVE for m in self.members):
                assoc.keep_alive = True
        if self.contact is None or _node(assoc.address) != self.contact:
            return
        if event == "unreachable" and self._view_changed is not None:
            self._view_changed.set()  # a candidate being tried failed: move on
        if event in ("disconnected", "gone", "restarted") and self._contact_lost is not None:
            if not self._contact_lost.is_set():
                self._lost_reason = {"disconnected": "connection lost", "gone": "gone", "restarted": "restarted"}[event]
            self._set_connected(False)
            self._contact_lost.set()

    # -- discovery ---------------------------------------------------------------------------
    def lookup(self, key: ServiceKey[M]) -> Listing[M]:
        """The instances of ``key`` in the client's current view of the cluster."""
        return self.registry.listing(key)

    async def wait_for_service(self, key: ServiceKey[M], timeout: float | None = None, count: int = 1) -> Listing[M]:
        """Wait until ``key`` has at least ``count`` instances (``TimeoutError`` after ``timeout``,
        default ``[client] service_wait_timeout``)."""
        assert self._view_changed is not None
        if timeout is None:
            timeout = self.config.client.service_wait_timeout

        async def wait() -> Listing[M]:
            assert self._view_changed is not None
            while True:
                listing = self.lookup(key)
                if len(listing.instances) >= count:
                    return listing
                self._view_changed.clear()
                await self._view_changed.wait()

        try:
            async with asyncio.timeout(timeout):
                return await wait()
        except TimeoutError:
            raise TimeoutError(f"service {key.name!r} had fewer than {count} instances after {timeout}s") from None

    def subscribe(self, key: ServiceKey[M], subscriber: ActorRef[Listing[M]]) -> None:
        """Tell ``subscriber`` the current ``Listing`` of ``key`` now and on every change."""
        self.registry.subscribe(key, subscriber)

    async def listings(self, key: ServiceKey[M]) -> AsyncIterator[Listing[M]]:
        """Async-iterate the ``Listing`` of ``key``: the current one, then one per change."""
        assert self._view_changed is not None
        last: Listing[M] | None = None
        while True:
            listing = self.lookup(key)
            if listing != last:
                last = listing
                yield listing
            self._view_changed.clear()
            await self._view_changed.wait()

    # -- actors ------------------------------------------------------------------------------
    def spawn(self, behavior: Behavior[M], name: str, *, mailbox: Mailbox[Any] | None = None) -> ActorRef[M]:
        """Start an actor inside the client; its ref can be sent to cluster actors, which reach it
        over the connections the client opened."""
        return self.system.spawn(behavior, name, mailbox=mailbox)

    async def ask(self, ref: ActorRef[Any], factory: Callable[[ActorRef[R]], Any], timeout: float | None = None) -> R:
        """Ask a cluster (or client-local) actor; raises :class:`ClusterUnavailable` at once while
        no member is reachable, ``AskTimeoutError`` when the reply does not come in time."""
        if not ref.is_local and not self._connected:
            raise ClusterUnavailable(f"cannot ask {ref}: no cluster member is reachable")
        return await self.system.ask(ref, factory, timeout=timeout)

    def ref(self, uri: str) -> ActorRef[Any]:
        """A ref to an actor from its URI."""
        return self.system.ref(uri)

    async def stop(self, ref: ActorRef[Any]) -> None:
        """Stop one of the client's own actors."""
        await self.system.stop(ref)

    async def wait_terminated(self, ref: ActorRef[Any], timeout: float | None = None) -> None:
        """Wait until one of the client's own actors has stopped."""
        await self.system.wait_terminated(ref, timeout)

    @property
    def event_stream(self) -> ActorRef[Any]:
        return self.system.event_stream


def _client_ssl(tls: Any) -> ssl.SSLContext | None:
    """The client-side SSL context for ``tls`` (None: the config's ``[tls]`` decides)."""
    if tls is None:
        return None
    if isinstance(tls, ssl.SSLContext):
        return tls
    if isinstance(tls, TlsConfig):
        return client_context(tls) if tls.enabled else None
    ctx = getattr(tls, "client_context", None)
    if isinstance(ctx, ssl.SSLContext):
        return ctx
    raise TypeError(
        f"tls must be a [tls] TlsConfig, an ssl.SSLContext or have a client_context SSLContext, "
        f"not {type(tls).__name__}"
    )


def _node(address: SystemAddress) -> NodeAddress:
    return NodeAddress(address.host or "", address.port or 0)
