"""ClusteredActorSystem: gossip membership, failure detection, downing and service discovery.

Joining
    A node whose own address is the first seed asks the other seeds (``InitJoin``) whether a
    cluster already runs; if none answers within two join intervals it forms the cluster by
    joining itself. Every other node sends ``Join`` to the seeds until one of them, already a
    member, answers ``Welcome`` with the membership gossip. With ``cluster.discovery = "dns"``
    the contacts are the records of ``cluster.service_name`` instead, and the lowest of a
    stable set of them forms the cluster when none answers (:mod:`casty.cluster.discovery`).

Draining
    ``drain()`` (``casty.run`` calls it on SIGTERM/SIGINT) completes the node's streams after
    what they accepted, leaves the cluster and shuts down within ``[shutdown] drain_timeout``.

Membership
    The replicated state is a :class:`~casty.cluster.gossip.Gossip` with a vector clock.
    Every ``cluster.gossip.interval`` each node sends its gossip to one member (preferring those
    that have not seen the current version); a receiver merges and answers with the merge when
    it knows more. The leader (lowest address among reachable up members) moves members
    joining -> up, leaving -> exiting -> removed and down -> removed once the gossip converged.

Failure detection and downing
    Every member sends heartbeats to the others every ``cluster.heartbeat.interval`` and feeds
    the answers to a phi-accrual detector per member (:mod:`casty.cluster.heartbeat`). A member
    whose phi crosses the threshold is marked unreachable by this observer (and reachable again
    when heartbeats return).
    A node on the minority side of a partition (fewer than half the up members reachable; on an
    exact tie, the side without the lowest address) that has seen members unreachable for
    ``cluster.down_after`` seconds downs itself and shuts down. The majority side's leader
    downs those members a removal margin later (``max(1 s, two heartbeat or gossip
    intervals)``), so the minority has stopped before the majority counts it as gone and two
    halves never both keep serving (:mod:`casty.cluster.downing`). Downed members are removed,
    their incarnation is refused from then on, and remote watchers of their actors get
    ``Terminated``.

Service discovery
    Each node owns its registrations (``Behaviors.discoverable``, ``Register``) and pushes a
    versioned snapshot of them to every member when they change; digests piggyback on gossip so
    a member that missed a snapshot pulls it (:mod:`casty.cluster.registry_sync`). Services of
    unreachable members are hidden from lookups until they are reachable again, those of
    removed members are dropped.

Clients
    A node keeps every ``ClusterClient`` that said hello up to date
    (:mod:`casty.cluster.client_service`).

Over 500 lines because the node's lifecycle (joining, discovery, leader actions, draining,
leaving) is driven from here; the mechanisms themselves live in their own modules
(gossip, state, downing, heartbeat, registry_sync, client_service, discovery).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import time
import weakref
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Self

from casty.actors.receptionist import Listing, ServiceKey
from casty.actors.ref import ActorRef, NodeAddress, SystemAddress
from casty.cluster._protocol import (
    GossipEnvelope,
    Heartbeat,
    HeartbeatAck,
    InitJoin,
    InitJoinAck,
    InitJoinNack,
    Join,
    RegistryDigest,
    RegistryPull,
    Welcome,
)
from casty.cluster.client_protocol import ClientBye, ClientHello, RegistrySnapshot, RegistrySnapshotPart
from casty.cluster.client_service import ClientService
from casty.cluster.discovery import DnsDiscovery, GetaddrinfoResolver, Resolver
from casty.cluster.downing import PartitionDowning
from casty.cluster.events import (
    LeaderChanged,
    MemberDowned,
    MemberEvent,
    MemberExited,
    MemberLeft,
    MemberRemoved,
    MemberUp,
    ReachableMember,
    UnreachableMember,
)
from casty.cluster.gossip import Gossip, gossip_targets
from casty.cluster.heartbeat import Heartbeats
from casty.cluster.members import ClusterState, Member, MemberStatus
from casty.cluster.registry_sync import RegistryReplication
from casty.cluster.state import MembershipState
from casty.errors import ConfigError
from casty.remote.system import RemoteActorSystem
from casty.remote.tls import TlsContexts, contexts_of
from casty.remote.transport import Connection
from casty.streams import begin_drain, drain_streams

if TYPE_CHECKING:
    from casty.config import CastyConfig, TlsConfig
    from casty.serde import Serializer

__all__ = ["ClusteredActorSystem"]

log = logging.getLogger("casty.cluster")

_LIVE = (MemberStatus.JOINING, MemberStatus.UP, MemberStatus.LEAVING)

_RUNNING: weakref.WeakSet[ClusteredActorSystem] = weakref.WeakSet()


def _node(address: SystemAddress) -> NodeAddress:
    return NodeAddress(address.host or "", address.port or 0)


_NODE_ID_KEY_PREFIX = "casty.node-id/"


def node_id_key(node_id: str) -> ServiceKey[Any]:
    """The receptionist key a member whose ``node_id`` is not its ``"host:port"`` registers
    under, so that every member can resolve the id (``lookup(path, node=node_id)``)."""
    return ServiceKey(_NODE_ID_KEY_PREFIX + node_id)


class ClusteredActorSystem(RemoteActorSystem):
    """An actor system that is a member of a cluster.

    ``async with ClusteredActorSystem(name="app", host="127.0.0.1", port=25520,
    node_id="node-1", seed_nodes=[("127.0.0.1", 25520)]) as system`` binds, joins through the
    seeds, and on exit leaves the cluster gracefully before stopping its actors. Arguments left
    out come from ``config`` (``[system]``, ``[cluster]``, ``[tls]``). ``node_id`` labels this
    node in its logs (default ``cluster.node_id``, else ``"host:port"``); members know each
    other by address, so ``Member.id`` is ``"host:port"``, and a ``node_id`` given is made
    known to the other members through the receptionist (``lookup(path, node=node_id)``). ``tls`` replaces ``config.tls``; it may also be a
    :class:`~casty.remote.tls.TlsContexts` (two ready ``ssl.SSLContext``s, as casty 0.21 took TLS).
    With ``required_quorum=n``, ``async with`` returns only once n members are up in this
    node's view; after ``QUORUM_TIMEOUT`` seconds the node shuts down and it raises
    ``TimeoutError``.
    """

    QUORUM_TIMEOUT = 60.0

    def __init__(
        self,
        name: str | None = None,
        host: str | None = None,
        port: int | None = None,
        seed_nodes: Sequence[tuple[str, int]] | None = None,
        bind_host: str | None = None,
        node_id: str | None = None,
        config: CastyConfig | None = None,
        *,
        roles: Iterable[str] | None = None,
        bind_port: int | None = None,
        serializer: Serializer | None = None,
        tls: TlsConfig | TlsContexts | None = None,
        required_quorum: int | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        from casty.config import CastyConfig, TlsConfig

        cfg = config if config is not None else CastyConfig()
        contexts = None
        if isinstance(tls, TlsConfig):
            cfg = dataclasses.replace(cfg, tls=tls)
        elif tls is not None:
            contexts = contexts_of(tls)
            if contexts is None:
                raise TypeError(
                    "tls must be a [tls] TlsConfig or have server_context and client_context SSLContexts "
                    f"(TlsContexts), not {type(tls).__name__}"
                )
        if required_quorum is not None and (
            not isinstance(required_quorum, int) or isinstance(required_quorum, bool) or required_quorum < 1
        ):
            raise ConfigError(f"required_quorum: must be a whole number of members >= 1, got {required_quorum!r}")
        cluster = cfg.cluster
        super().__init__(
            name,
            host=host if host is not None else cluster.host,
            port=port if port is not None else cluster.port,
            bind_host=bind_host if bind_host is not None else (cluster.bind_host or None),
            bind_port=bind_port,
            config=cfg,
            serializer=serializer,
            ssl_server=contexts[0] if contexts is not None else None,
            ssl_client=contexts[1] if contexts is not None else None,
        )
        seeds = seed_nodes if seed_nodes is not None else cluster.seed_nodes
        self.seed_nodes: tuple[NodeAddress, ...] = tuple(NodeAddress(h, int(p)) for h, p in seeds)
        self._resolver: Resolver | None = None
        if seed_nodes is None and cluster.discovery == "dns":
            self._resolver = resolver if resolver is not None else GetaddrinfoResolver()
        elif resolver is not None:
            raise ConfigError("resolver: only used with cluster.discovery = 'dns' (and no seed_nodes argument)")
        self.discovery: DnsDiscovery | None = None
        """DNS discovery of this node's contacts (``cluster.discovery = "dns"``), once started."""
        if roles is None:
            roles = cluster.roles
        elif isinstance(roles, (set, frozenset)):
            roles = sorted(roles)
        self.roles: tuple[str, ...] = tuple(roles)
        self.node_id = node_id or cluster.node_id or None
        self.required_quorum = required_quorum
        self.membership: MembershipState | None = None
        self._heartbeats = Heartbeats(self)
        self._downing = PartitionDowning(self)
        self._rng = random.Random()
        self._tasks: list[asyncio.Task[Any]] = []
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._replication = RegistryReplication(self)
        self._leaving = False
        self._clients = ClientService(self)
        self._joined_event = asyncio.Event()
        self._stopping_self = False
        #: membership gossip messages received and sent
        self.gossip_received = 0
        self.gossip_sent = 0
        self._drain_task: asyncio.Task[float] | None = None

    @classmethod
    def from_config(
        cls,
        config: CastyConfig,
        *,
        host: str | None = None,
        port: int | None = None,
        node_id: str | None = None,
        seed_nodes: Sequence[tuple[str, int]] | None = None,
        bind_host: str | None = None,
        roles: Iterable[str] | None = None,
        tls: TlsConfig | TlsContexts | None = None,
        required_quorum: int | None = None,
        serializer: Serializer | None = None,
        resolver: Resolver | None = None,
    ) -> ClusteredActorSystem:
        """A node configured by ``config`` (``[system]``, ``[cluster]``...), with overrides."""
        return cls(
            name=config.system.name,
            host=host,
            port=port,
            seed_nodes=seed_nodes,
            bind_host=bind_host,
            node_id=node_id,
            config=config,
            roles=roles,
            tls=tls,
            required_quorum=required_quorum,
            serializer=serializer,
            resolver=resolver,
        )

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        quorum = self.required_quorum
        if quorum is not None:
            log.info("%s waits for %d members to be up", self.node_id, quorum)
            try:
                await self.wait_for(quorum, timeout=self.QUORUM_TIMEOUT)
            except BaseException:
                await self.shutdown()
                raise
            log.info("%s: cluster ready (%d members up)", self.node_id, quorum)
        return self

    # -- start and join ----------------------------------------------------------------------
    async def start(self) -> None:
        if self.membership is not None:
            return
        await super().start()
        transport = self.require_transport()
        me = Member(self.self_node, transport.uid, MemberStatus.JOINING, self.roles)
        self.membership = MembershipState(me)
        if self.node_id is None:
            self.node_id = str(self.self_node)
        self._joined_event = asyncio.Event()
        _RUNNING.add(self)
        if self._resolver is not None:
            self.discovery = DnsDiscovery(self, self._resolver)
        for cls, handler in (
            (InitJoin, self._on_init_join),
            (InitJoinAck, self._on_init_join_ack),
            (InitJoinNack, self._on_init_join_nack),
            (Join, self._on_join),
            (Welcome, self._on_welcome),
            (GossipEnvelope, self._on_gossip),
            (Heartbeat, self._heartbeats.on_heartbeat),
            (HeartbeatAck, self._heartbeats.on_ack),
            (RegistrySnapshot, self._replication.on_snapshot),
            (RegistrySnapshotPart, self._replication.on_part),
            (RegistryDigest, self._replication.on_digest),
            (RegistryPull, self._replication.on_pull),
            (ClientHello, self._clients.on_hello),
            (ClientBye, self._clients.on_bye),
        ):
            transport.add_control_handler(cls, handler)
        transport.listeners.append(self._clients.on_transport_event)
        self.registry.on_local_change = self._replication.on_local_change
        if self.node_id != str(self.self_node):
            # members know each other by address; an id given to this node is made known to
            # them through the receptionist, which replicates and withdraws it with the member
            self.registry.register(node_id_key(self.node_id), self.receptionist)
        loop = self.loop
        self._tasks = [
            loop.create_task(self._join_loop()),
            loop.create_task(self._gossip_loop()),
            loop.create_task(self._heartbeats.run()),
        ]

    def _self_node(self) -> NodeAddress | None:
        return self.self_node if self.transport is not None else None

    def _address_of(self, node: NodeAddress) -> SystemAddress:
        return SystemAddress(self.name, node.host, node.port)

    def _held_back(self, node: NodeAddress) -> bool:
        """True while this node does not read what ``node`` sends (its own inbound backpressure)."""
        transport = self.transport
        return transport is not None and transport.held_back(self._address_of(node))

    def _send(self, node: NodeAddress, msg: object) -> None:
        transport = self.transport
        if transport is not None and not transport.closing:
            if type(msg) is GossipEnvelope:
                self.gossip_sent += 1
            transport.send_control(self._address_of(node), msg)

    def _form_cluster(self) -> None:
        state = self.membership
        assert state is not None
        self._apply(state.join_self())

    async def _join_loop(self) -> None:
        state = self.membership
        assert state is not None
        discovery = self.discovery
        if discovery is not None:
            await discovery.join()
            self._joined_event.set()
            await discovery.refresh()
            return
        cfg = self.config.cluster
        me = self.self_node
        seeds = [s for s in self.seed_nodes if s != me]
        if not self.seed_nodes or (self.seed_nodes[0] == me and not seeds):
            self._apply(state.join_self())
            self._joined_event.set()
            return
        if self.seed_nodes[0] == me:
            # first seed: join an existing cluster if another seed is already a member
            deadline = self.loop.time() + max(1.0, 2 * cfg.retry_join_interval)
            while self.loop.time() < deadline and not state.is_member:
                for seed in seeds:
                    self._send(seed, InitJoin(me))
                await asyncio.sleep(cfg.retry_join_interval / 2)
            if not state.is_member:
                log.info("%s forms a new cluster as the first seed", me)
                self._apply(state.join_self())
        attempts = 0
        while not state.is_member:
            for seed in seeds:
                self._send(seed, Join(state.self_member))
            attempts += 1
            if attempts % 20 == 0:
                log.warning("%s still trying to join through %s", me, ", ".join(map(str, seeds)))
            await asyncio.sleep(cfg.retry_join_interval)
        self._joined_event.set()

    def _on_init_join(self, conn: Connection, msg: InitJoin) -> None:
        state = self.membership
        if state is None:
            return
        if state.is_member and state.self_member.status is MemberStatus.UP:
            self._send(msg.node, InitJoinAck(self.self_node))
        elif not state.is_member and self.discovery is not None:
            self._send(msg.node, InitJoinNack(self.self_node))

    def _on_init_join_nack(self, conn: Connection, msg: InitJoinNack) -> None:
        if self.discovery is not None:
            self.discovery.on_nack(conn, msg)

    def _on_init_join_ack(self, conn: Connection, msg: InitJoinAck) -> None:
        state = self.membership
        if state is not None and not state.is_member:
            self._send(msg.node, Join(state.self_member))

    def _on_join(self, conn: Connection, msg: Join) -> None:
        state = self.membership
        if state is None or not state.is_member or self._leaving:
            return
        member = msg.member
        if member.node == self.self_node:
            return
        existing = state.gossip.member(member.key)
        if existing is None:
            if state.gossip.is_tombstoned(member.key):
                return
            log.info("%s joins the cluster", member.node)
            self._apply(state.add_joining(member))
        self._send(member.node, Welcome(state.gossip))

    def _on_welcome(self, conn: Connection, msg: Welcome) -> None:
        state = self.membership
        if state is None:
            return
        self._apply(state.apply_incoming(msg.gossip))

    # -- gossip ------------------------------------------------------------------------------
    def _on_gossip(self, conn: Connection, msg: GossipEnvelope) -> None:
        state = self.membership
        if state is None:
            return
        self.gossip_received += 1
        self._apply(state.apply_incoming(msg.gossip))
        if state.gossip != msg.gossip and state.is_member and conn.assoc is not None:
            # the sender misses something (a newer version, or that we have seen its version)
            self._send(_node(conn.assoc.address), GossipEnvelope(state.self_key, state.gossip))

    async def _gossip_loop(self) -> None:
        cfg = self.config.cluster
        ticks = 0
        while True:
            await asyncio.sleep(cfg.gossip.interval)
            ticks += 1
            try:
                self._gossip_tick(ticks)
            except Exception:
                log.exception("gossip round failed")

    def _gossip_tick(self, ticks: int) -> None:
        state = self.membership
        if state is None or not state.is_member:
            return
        now_wall = time.time()
        self._downing.check()
        reachable = self._reachable_keys()
        self._apply(state.leader_actions(now_wall, reachable))
        if ticks % 60 == 0:
            self._apply(state.prune_tombstones(now_wall))
        targets = gossip_targets(state, self._rng, fanout=1)
        digest = self._replication.digest()
        for member in targets:
            self._send(member.node, GossipEnvelope(state.self_key, state.gossip))
            self._send(member.node, digest)

    def _reachable_keys(self) -> set[str]:
        state = self.membership
        assert state is not None
        unreachable = state.gossip.unreachable_keys
        return {m.key for m in state.gossip.members if m.key not in unreachable}

    @property
    def _uid(self) -> int:
        return self.require_transport().uid

    # -- applying membership changes ----------------------------------------------------------
    def _apply(self, events: list[MemberEvent]) -> None:
        if not events:
            return
        transport = self.transport
        state = self.membership
        assert state is not None
        me = state.self_key
        for event in events:
            member = getattr(event, "member", None)
            if isinstance(event, MemberUp) and member is not None:
                log.info("member up: %s", member.node)
                if transport is not None and member.key != me:
                    transport.association(self._address_of(member.node)).keep_alive = True
            elif isinstance(event, (MemberLeft, MemberExited)) and member is not None:
                if transport is not None and member.key != me:
                    # it is leaving: losing its connection is expected, not a failure to report
                    transport.association(self._address_of(member.node)).keep_alive = False
            elif isinstance(event, UnreachableMember) and member is not None:
                self.registry.set_reachable(member.node, False)
            elif isinstance(event, ReachableMember) and member is not None:
                self.registry.set_reachable(member.node, True)
            elif isinstance(event, (MemberDowned, MemberRemoved)) and member is not None:
                if member.key == me:
                    if not self._leaving and not self._stopping_self:
                        log.error("this node (%s) was %s by the cluster", member.node, member.status.value)
                        self._stop_self(f"{member.status.value} by the cluster")
                else:
                    self._forget_member(member, quarantine=True)
            elif isinstance(event, LeaderChanged):
                log.info("leader is now %s", event.leader)
            self._publish_event(event)
        self._check_waiters()
        self._clients.schedule_push()

    def _forget_member(self, member: Member, quarantine: bool) -> None:
        node = member.node
        self._heartbeats.forget(node)
        self._downing.forget(member.key)
        self._replication.forget(member)
        transport = self.transport
        if transport is not None:
            assoc = transport.associations.get(self._address_of(node))
            if assoc is not None and (assoc.peer_uid is None or assoc.peer_uid == member.uid):
                transport.mark_gone(assoc, f"member {member.status.value}", quarantine=quarantine)
            elif quarantine:
                transport.quarantined.add(member.uid)

    def _stop_self(self, reason: str) -> None:
        self._stopping_self = True
        self.loop.create_task(self._shutdown_after(reason))

    async def _shutdown_after(self, reason: str) -> None:
        log.warning("shutting down %s: %s", self.self_node, reason)
        await self.shutdown()

    # -- waiting and state --------------------------------------------------------------------
    def _up_count(self) -> int:
        state = self.membership
        if state is None:
            return 0
        return sum(1 for m in state.gossip.members if m.status is MemberStatus.UP)

    def _check_waiters(self) -> None:
        if not self._waiters:
            return
        count = self._up_count()
        keep = []
        for n, future in self._waiters:
            if future.done():
                continue
            if count >= n:
                future.set_result(None)
            else:
                keep.append((n, future))
        self._waiters = keep

    async def wait_for(self, n: int, timeout: float = 60.0) -> ClusterState:
        """The cluster state once at least ``n`` members are up (this node's view);
        ``TimeoutError`` after ``timeout`` seconds."""
        if self._up_count() < n:
            future: asyncio.Future[None] = self.loop.create_future()
            self._waiters.append((n, future))
            try:
                async with asyncio.timeout(timeout):
                    await future
            except TimeoutError:
                raise TimeoutError(f"only {self._up_count()} of {n} members up after {timeout}s") from None
        return self._cluster_state()

    async def get_cluster_state(self, *, timeout: float = 5.0) -> ClusterState:
        """Members, unreachable addresses and leader as this node sees them now.

        The state is this node's own, so it is returned at once; ``timeout`` is accepted
        for programs that pass one."""
        return self._cluster_state()

    def _cluster_state(self) -> ClusterState:
        state = self.membership
        if state is None:
            raise RuntimeError("the cluster system is not started; use `async with` or `await system.start()`")
        return state.cluster_state()

    @property
    def self_member(self) -> Member:
        state = self.membership
        if state is None:
            raise RuntimeError("the cluster system is not started")
        return state.self_member

    def lookup(self, target: Any, *, node: Any = None, timeout: float = 5.0) -> Any:
        """``lookup(path)``: the ref of the local actor at ``path``, or None (synchronous);
        ``lookup(path, node=member)``: a ref to ``path`` on that member, without asking it
        whether the actor exists; the member is a ``NodeAddress``, a ``(host, port)`` pair, its
        ``Member.id`` (``"host:port"``) or the ``node_id`` it was started with (as in casty
        0.21), and an unknown node is a ``ValueError``; ``await lookup(key)``: the current
        ``Listing`` of a service key (``timeout`` is accepted for programs written for casty
        0.21; the answer is local and immediate)."""
        if isinstance(target, ServiceKey) or node is None:
            return super().lookup(target)
        if isinstance(node, str):
            if node == self.node_id:
                return super().lookup(target)
            node = self._node_named(node)
        member = NodeAddress(node[0], int(node[1]))
        if member == self.self_node:
            return super().lookup(target)
        path = target if target.startswith(("/user/", "/system/")) else "/user/" + target.strip("/")
        return self.actor_ref(member, path)

    def _node_named(self, node: str) -> NodeAddress:
        """The member whose ``node_id`` or ``"host:port"`` is ``node``."""
        name = _NODE_ID_KEY_PREFIX + node
        registry = self.registry
        # unreachable members included: a ref to them is as good as one by address
        found = {member for member, entries in registry.remote.items() if entries.get(name)}
        if len(found) > 1:
            listed = ", ".join(sorted(str(m) for m in found))
            raise ValueError(f"node id {node!r} is claimed by several members ({listed}): give a NodeAddress")
        if found:
            return found.pop()
        host, sep, port = node.rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        if sep and host and port.isdigit():
            return NodeAddress(host, int(port))
        raise ValueError(
            f"unknown node {node!r}: no member has this node id; give a member's node id, a NodeAddress, "
            "(host, port) or 'host:port'"
        )

    def listing(self, key: ServiceKey[Any]) -> Listing[Any]:
        """The current ``Listing`` of ``key`` (synchronous form of ``await lookup(key)``)."""
        return self.registry.listing(key)

    # -- leaving ----------------------------------------------------------------------------
    async def leave(self, timeout: float | None = None) -> None:
        """Leave the cluster gracefully: the others see this member leave at once."""
        state = self.membership
        if state is None or not state.is_member or self._leaving:
            return
        self._leaving = True
        if state.self_member.status in (MemberStatus.JOINING, MemberStatus.UP):
            self._apply(state.leave())
        me = self.self_node
        for member in state.gossip.members:
            if member.node != me and member.status in _LIVE:
                self._send(member.node, GossipEnvelope(state.self_key, state.gossip))
        if timeout is None:
            timeout = max(1.0, 4 * self.config.cluster.gossip.interval)
        others = [m for m in state.gossip.members if m.node != me and m.status in (MemberStatus.UP,)]
        if not others:
            return
        deadline = self.loop.time() + timeout
        while self.loop.time() < deadline:
            if state.self_member.status in (MemberStatus.EXITING, MemberStatus.REMOVED, MemberStatus.DOWN):
                break
            await asyncio.sleep(self.config.cluster.gossip.interval / 4)
        # one last round so the others learn we are exiting rather than failing
        for member in state.gossip.members:
            if member.node != me and member.status in _LIVE:
                self._send(member.node, GossipEnvelope(state.self_key, state.gossip))
        if self.transport is not None:
            for assoc in list(self.transport.associations.values()):
                assoc.flush()
        await asyncio.sleep(0)

    async def shutdown(self) -> None:
        if self._terminated is None and self.membership is not None and not self._stopping_self:
            with contextlib.suppress(Exception):
                await self.leave()
        await super().shutdown()

    @staticmethod
    def running() -> list[ClusteredActorSystem]:
        """The cluster systems of this process that are started and not shut down yet."""
        return list(_RUNNING)

    @property
    def draining(self) -> bool:
        """True once :meth:`drain` began."""
        return self._drain_task is not None

    async def drain(self, timeout: float | None = None) -> float:
        """Stop this node gracefully within ``timeout`` seconds (default
        ``[shutdown] drain_timeout``) and return the seconds it took.

        In order: the node accepts no new stream subscription and no new element (``put`` raises
        :class:`~casty.errors.DrainingError`) and withdraws its services from the receptionist
        (lookups on every member stop finding them); its producers deliver what they accepted and
        complete their streams, its consumers finish; it leaves the cluster (the others see
        ``MemberLeft``, not an unreachable member) and clients move to other members; it shuts
        down. What still streams when the time is nearly up is stopped. Calling it again waits
        for the same drain. ``casty.run`` calls it on SIGTERM/SIGINT.
        """
        if self._drain_task is None:
            self.begin_drain(timeout)
        assert self._drain_task is not None
        return await asyncio.shield(self._drain_task)

    def begin_drain(self, timeout: float | None = None) -> None:
        """Start :meth:`drain` without waiting for it: from this call on the node accepts no new
        stream element or subscription (idempotent). ``await drain()`` then waits for the end."""
        if self._drain_task is None:
            begin_drain(self, self._drain_reason)
            # withdraw this node's services: lookups on every member stop finding them
            registry = self.registry
            for ref in {ref for refs in registry.local.values() for ref in refs}:
                registry.remove_ref(ref)
            self._drain_task = self.loop.create_task(self._drain(timeout))

    @property
    def _drain_reason(self) -> str:
        return f"the node {self.node_id} is draining"

    async def _drain(self, timeout: float | None) -> float:
        loop = self.loop
        started = loop.time()
        total = timeout if timeout is not None else self.config.shutdown.drain_timeout
        deadline = started + total
        leave_time = max(1.0, 4 * self.config.cluster.gossip.interval)
        reserve = min(total / 4, leave_time)
        log.warning("%s drains (at most %.1fs): no new streams or elements accepted", self.node_id, total)
        outcome = await drain_streams(self, deadline - reserve, self._drain_reason)
        remaining = deadline - loop.time()
        with contextlib.suppress(Exception):
            await self.leave(timeout=max(0.05, min(leave_time, remaining - 0.1)))
        await self.shutdown()
        elapsed = loop.time() - started
        log.warning(
            "%s drained in %.2fs: %d producers and %d consumers were streaming, %d stopped unfinished",
            self.node_id,
            elapsed,
            outcome.producers,
            outcome.consumers,
            outcome.unfinished,
        )
        return elapsed

    async def _shutdown_services(self) -> None:
        _RUNNING.discard(self)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for _, future in self._waiters:
            if not future.done():
                future.cancel()
        self._waiters.clear()
        await super()._shutdown_services()

    @staticmethod
    def _is_gossip(obj: object) -> bool:
        return isinstance(obj, Gossip)

    def __repr__(self) -> str:
        return f"<ClusteredActorSystem {self.name}@{self.address.host}:{self.address.port}>"

    def actor_ref(self, node: NodeAddress, path: str) -> ActorRef[Any]:
        """A ref to the actor at ``path`` on the member ``node``."""
        return self.remote_ref(node.host, node.port, path)
