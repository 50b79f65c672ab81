"""ClusteredActorSystem: gossip membership, failure detection, downing and service discovery.

Joining
    A node whose own address is the first seed asks the other seeds (``InitJoin``) whether a
    cluster already runs; if none answers within two join intervals it forms the cluster by
    joining itself. Every other node sends ``Join`` to the seeds until one of them, already a
    member, answers ``Welcome`` with the membership gossip.

Membership
    The replicated state is a :class:`~casty.cluster._membership.Gossip` with a vector clock.
    Every ``cluster.gossip.interval`` each node sends its gossip to one member (preferring those
    that have not seen the current version); a receiver merges and answers with the merge when
    it knows more. The leader (lowest address among reachable up members) moves members
    joining -> up, leaving -> exiting -> removed and down -> removed once the gossip converged.

Failure detection and downing
    Every member sends heartbeats to the others every ``cluster.heartbeat.interval`` and feeds
    the answers to a phi-accrual detector per member. A member whose phi crosses the threshold
    is marked unreachable by this observer (and reachable again when heartbeats return).
    A node on the minority side of a partition (fewer than half the up members reachable; on an
    exact tie, the side without the lowest address) that has seen members unreachable for
    ``cluster.down_after`` seconds downs itself and shuts down. The majority side's leader
    downs those members a removal margin later (``max(1 s, two heartbeat or gossip
    intervals)``), so the minority has stopped before the majority counts it as gone and two
    halves never both keep serving. Downed members are removed,
    their incarnation is refused from then on, and remote watchers of their actors get
    ``Terminated``.

Service discovery
    Each node owns its registrations (``Behaviors.discoverable``, ``Register``) and pushes a
    versioned snapshot of them to every member when they change; digests piggyback on gossip so
    a member that missed a snapshot pulls it. Services of unreachable members are hidden from
    lookups until they are reachable again, those of removed members are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from casty.actors.receptionist import Listing, ServiceKey
from casty.actors.ref import ActorAddress, ActorRef, NodeAddress
from casty.cluster._failure_detector import FailureDetectorRegistry
from casty.cluster._membership import (
    ClusterState,
    Gossip,
    LeaderChanged,
    Member,
    MemberDowned,
    MemberEvent,
    MemberExited,
    MemberLeft,
    MemberRemoved,
    MembershipState,
    MemberStatus,
    MemberUp,
    ReachableMember,
    UnreachableMember,
    gossip_targets,
    keep_majority_decision,
)
from casty.cluster._protocol import (
    ClientBye,
    ClientHello,
    ClientUpdate,
    GossipEnvelope,
    Heartbeat,
    HeartbeatAck,
    InitJoin,
    InitJoinAck,
    Join,
    RegistryDigest,
    RegistryPull,
    RegistrySnapshot,
    Welcome,
)
from casty.remote.system import RemoteActorSystem
from casty.remote.transport import Association, Connection

if TYPE_CHECKING:
    from casty.config import CastyConfig
    from casty.serde import Serializer

__all__ = ["ClusteredActorSystem"]

log = logging.getLogger("casty.cluster")

_LIVE = (MemberStatus.JOINING, MemberStatus.UP, MemberStatus.LEAVING)
_LIVE_OR_EXITING = (*_LIVE, MemberStatus.EXITING)


def _node(address: ActorAddress) -> NodeAddress:
    return NodeAddress(address.host or "", address.port or 0)


class ClusteredActorSystem(RemoteActorSystem):
    """An actor system that is a member of a cluster.

    ``async with ClusteredActorSystem(name="app", host="127.0.0.1", port=25520,
    seed_nodes=[("127.0.0.1", 25520)]) as system`` binds, joins through the seeds, and on exit
    leaves the cluster gracefully before stopping its actors.
    """

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
    ) -> None:
        from casty.config import CastyConfig

        cfg = config if config is not None else CastyConfig()
        cluster = cfg.cluster
        super().__init__(
            name,
            host=host if host is not None else cluster.host,
            port=port if port is not None else cluster.port,
            bind_host=bind_host if bind_host is not None else (cluster.bind_host or None),
            bind_port=bind_port,
            config=cfg,
            serializer=serializer,
        )
        seeds = seed_nodes if seed_nodes is not None else cluster.seed_nodes
        self.seed_nodes: tuple[NodeAddress, ...] = tuple(NodeAddress(h, int(p)) for h, p in seeds)
        self.roles: tuple[str, ...] = tuple(roles if roles is not None else cluster.roles)
        self.node_id = node_id
        self.membership: MembershipState | None = None
        self._detectors = FailureDetectorRegistry.from_config(
            cluster.failure_detector, first_heartbeat_estimate=cluster.heartbeat.interval
        )
        self._rng = random.Random()
        self._tasks: list[asyncio.Task[Any]] = []
        self._unreachable_since: dict[str, float] = {}
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._registry_version = 0
        self._registry_known: dict[NodeAddress, tuple[int, int]] = {}
        self._registry_push_scheduled = False
        self._leaving = False
        self._clients: dict[ActorAddress, str] = {}
        self._joined_event = asyncio.Event()
        self._client_push_scheduled = False
        self._stopping_self = False

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
        )

    # -- start and join ----------------------------------------------------------------------
    async def start(self) -> None:
        if self.membership is not None:
            return
        await super().start()
        transport = self._require_transport()
        me = Member(self.self_node, transport.uid, MemberStatus.JOINING, self.roles)
        self.membership = MembershipState(me)
        if self.node_id is None:
            self.node_id = str(self.self_node)
        self._joined_event = asyncio.Event()
        for cls, handler in (
            (InitJoin, self._on_init_join),
            (InitJoinAck, self._on_init_join_ack),
            (Join, self._on_join),
            (Welcome, self._on_welcome),
            (GossipEnvelope, self._on_gossip),
            (Heartbeat, self._on_heartbeat),
            (HeartbeatAck, self._on_heartbeat_ack),
            (RegistrySnapshot, self._on_registry_snapshot),
            (RegistryDigest, self._on_registry_digest),
            (RegistryPull, self._on_registry_pull),
            (ClientHello, self._on_client_hello),
            (ClientBye, self._on_client_bye),
        ):
            transport.add_control_handler(cls, handler)
        transport.listeners.append(self._on_transport_event)
        self.registry.on_local_change = self._schedule_registry_push
        loop = self.loop
        self._tasks = [
            loop.create_task(self._join_loop()),
            loop.create_task(self._gossip_loop()),
            loop.create_task(self._heartbeat_loop()),
        ]

    def _self_node(self) -> NodeAddress | None:
        return self.self_node if self.transport is not None else None

    def _address_of(self, node: NodeAddress) -> ActorAddress:
        return ActorAddress(self.name, node.host, node.port)

    def _send(self, node: NodeAddress, msg: object) -> None:
        transport = self.transport
        if transport is not None and not transport.closing:
            transport.send_control(self._address_of(node), msg)

    async def _join_loop(self) -> None:
        state = self.membership
        assert state is not None
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
        if state is not None and state.is_member and state.self_member.status is MemberStatus.UP:
            self._send(msg.node, InitJoinAck(self.self_node))

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
        self._check_downing()
        reachable = self._reachable_keys()
        self._apply(state.leader_actions(now_wall, reachable))
        if ticks % 60 == 0:
            self._apply(state.prune_tombstones(now_wall))
        targets = gossip_targets(state, self._rng, fanout=1)
        digest = RegistryDigest(self.self_node, self._uid, self._registry_version)
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
        return self._require_transport().uid

    # -- heartbeats and failure detection ----------------------------------------------------
    async def _heartbeat_loop(self) -> None:
        cfg = self.config.cluster.heartbeat
        next_check = 0.0
        while True:
            await asyncio.sleep(cfg.interval)
            try:
                state = self.membership
                if state is None or not state.is_member:
                    continue
                me = self.self_node
                now = time.monotonic()
                for member in state.gossip.members:
                    if member.node != me and member.status in _LIVE_OR_EXITING:
                        self._send(member.node, Heartbeat(me, now))
                if now >= next_check:
                    next_check = now + cfg.availability_check_interval
                    self._check_availability()
            except Exception:
                log.exception("heartbeat round failed")

    def _on_heartbeat(self, conn: Connection, msg: Heartbeat) -> None:
        state = self.membership
        if state is not None and state.gossip.members_at(msg.sender):
            self._send(msg.sender, HeartbeatAck(self.self_node, msg.sent_at))

    def _on_heartbeat_ack(self, conn: Connection, msg: HeartbeatAck) -> None:
        self._detectors.heartbeat(msg.sender)

    def _check_availability(self) -> None:
        state = self.membership
        assert state is not None
        me = state.self_key
        mine = {subject for observer, subject in state.gossip.unreachable if observer == me}
        for member in state.gossip.members:
            if member.key == me or member.status not in _LIVE_OR_EXITING:
                continue
            node = member.node
            if not self._detectors.is_monitoring(node):
                # start monitoring with a synthetic first heartbeat so a node that never
                # answers is still detected
                self._detectors.heartbeat(node)
                continue
            available = self._detectors.is_available(node)
            if not available and member.key not in mine:
                log.warning("%s is unreachable (phi %.1f)", node, self._detectors.phi(node))
                self._apply(state.set_unreachable(member.key, True))
            elif available and member.key in mine:
                log.info("%s is reachable again", node)
                self._apply(state.set_unreachable(member.key, False))

    def _check_downing(self) -> None:
        """Keep-majority downing of members unreachable for longer than ``down_after``."""
        state = self.membership
        assert state is not None
        now = time.monotonic()
        unreachable = state.gossip.unreachable_keys
        for key in list(self._unreachable_since):
            if key not in unreachable:
                del self._unreachable_since[key]
        for key in unreachable:
            self._unreachable_since.setdefault(key, now)
        cfg = self.config.cluster
        down_after = cfg.down_after
        # the majority waits a little longer than the minority, so the minority has shut itself
        # down before the majority counts it as gone: the two sides never both serve
        margin = max(1.0, 2 * cfg.heartbeat.interval, 2 * cfg.gossip.interval)
        overdue = [k for k, since in self._unreachable_since.items() if now - since >= down_after]
        if not overdue:
            return
        up = [m.node for m in state.gossip.members if m.status in (MemberStatus.UP, MemberStatus.LEAVING)]
        mine = {subject for observer, subject in state.gossip.unreachable if observer == state.self_key}
        reachable = [m.node for m in state.gossip.members if m.key not in mine]
        decision = keep_majority_decision(up, reachable)
        if decision == "down_self":
            if not self._stopping_self:
                log.error(
                    "%s is on the minority side of a partition for %.1fs; downing itself", self.self_node, down_after
                )
                self._stop_self("minority side of a partition")
            return
        if decision == "down_unreachable" and state.is_leader:
            for key in overdue:
                if now - self._unreachable_since[key] < down_after + margin:
                    continue
                member = state.gossip.member(key)
                if member is not None and member.status is not MemberStatus.DOWN:
                    log.warning("downing %s: unreachable for more than %.1fs", member.node, down_after)
                    self._apply(state.mark_down(key))

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
        self._schedule_client_push()

    def _forget_member(self, member: Member, quarantine: bool) -> None:
        node = member.node
        self._detectors.remove(node)
        self._unreachable_since.pop(member.key, None)
        known = self._registry_known.get(node)
        if known is None or known[0] == member.uid:
            self._registry_known.pop(node, None)
            self.registry.remove_node(node)
        transport = self.transport
        if transport is not None:
            assoc = transport.associations.get(self._address_of(node))
            if assoc is not None and (assoc.peer_uid is None or assoc.peer_uid == member.uid):
                transport.mark_gone(assoc, f"member {member.status.value}", quarantine=quarantine)
            elif quarantine:
                transport.quarantined.add(member.uid)

    def _on_transport_event(self, event: str, assoc: Association) -> None:
        if event == "gone" and assoc.address in self._clients:
            log.info("client %s is gone", assoc.address)
            del self._clients[assoc.address]

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

    async def wait_for(self, n: int, timeout: float = 60.0) -> None:
        """Return once at least ``n`` members are up (this node's view); TimeoutError otherwise."""
        if self._up_count() >= n:
            return
        future: asyncio.Future[None] = self.loop.create_future()
        self._waiters.append((n, future))
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise TimeoutError(f"only {self._up_count()} of {n} members up after {timeout}s") from None

    async def get_cluster_state(self) -> ClusterState:
        """Members, unreachable members and leader as this node sees them now."""
        state = self.membership
        if state is None:
            raise RuntimeError("the cluster system is not started")
        return state.cluster_state()

    @property
    def self_member(self) -> Member:
        state = self.membership
        if state is None:
            raise RuntimeError("the cluster system is not started")
        return state.self_member

    def lookup(self, target: Any, *, node: Any = None, timeout: float = 5.0) -> Any:
        """``lookup(path)``: the ref of the local actor at ``path``, or None (synchronous);
        ``lookup(path, node=member)``: a ref to ``path`` on that member (a ``NodeAddress``, a
        ``(host, port)`` pair or a node id), without asking it whether the actor exists;
        ``await lookup(key)``: the current ``Listing`` of a service key (``timeout`` is accepted
        for programs written for casty 0.21; the answer is local and immediate)."""
        if isinstance(target, ServiceKey) or node is None:
            return super().lookup(target)
        if isinstance(node, str):
            if node == self.node_id:
                return super().lookup(target)
            host, sep, port = node.rpartition(":")
            if not sep or not port.isdigit():
                raise ValueError(f"unknown node {node!r}: give a NodeAddress, (host, port) or 'host:port'")
            node = NodeAddress(host, int(port))
        member = NodeAddress(node[0], int(node[1]))
        if member == self.self_node:
            return super().lookup(target)
        path = target if target.startswith(("/user/", "/system/")) else "/user/" + target.strip("/")
        return self.actor_ref(member, path)

    def listing(self, key: ServiceKey[Any]) -> Listing[Any]:
        """The current ``Listing`` of ``key`` (synchronous form of ``await lookup(key)``)."""
        return self.registry.listing(key)

    # -- service registry replication ---------------------------------------------------------
    def _snapshot(self) -> RegistrySnapshot:
        entries = tuple(
            (name, tuple(sorted(refs, key=lambda r: r.path))) for name, refs in sorted(self.registry.local.items())
        )
        return RegistrySnapshot(self.self_node, self._uid, self._registry_version, entries)

    def _schedule_registry_push(self) -> None:
        self._registry_version += 1
        if not self._registry_push_scheduled and self.transport is not None:
            self._registry_push_scheduled = True
            self.loop.call_soon(self._push_registry)

    def _push_registry(self) -> None:
        self._registry_push_scheduled = False
        state = self.membership
        if state is None or self.transport is None or self.transport.closing:
            return
        snapshot = self._snapshot()
        me = self.self_node
        for member in state.gossip.members:
            if member.node != me and member.status in _LIVE:
                self._send(member.node, snapshot)
        self._schedule_client_push()

    def _on_registry_snapshot(self, conn: Connection, msg: RegistrySnapshot) -> None:
        if msg.node == self.self_node:
            return
        state = self.membership
        if state is None:
            return
        member = next((m for m in state.gossip.members_at(msg.node) if m.uid == msg.uid), None)
        if member is None or member.status not in _LIVE_OR_EXITING:
            return
        known = self._registry_known.get(msg.node)
        if known is not None and known[0] == msg.uid and known[1] >= msg.version:
            return
        self._registry_known[msg.node] = (msg.uid, msg.version)
        self.registry.set_node(msg.node, {name: frozenset(refs) for name, refs in msg.entries})
        self._schedule_client_push()

    def _on_registry_digest(self, conn: Connection, msg: RegistryDigest) -> None:
        known = self._registry_known.get(msg.node)
        if known is None or known[0] != msg.uid or known[1] < msg.version:
            self._send(msg.node, RegistryPull(self.self_node))

    def _on_registry_pull(self, conn: Connection, msg: RegistryPull) -> None:
        self._send(msg.node, self._snapshot())

    # -- clients ------------------------------------------------------------------------------
    def _on_client_hello(self, conn: Connection, msg: ClientHello) -> None:
        assoc = conn.assoc
        if assoc is None:
            return
        if assoc.address not in self._clients:
            log.info("client %s connected", assoc.address)
        self._clients[assoc.address] = msg.client
        assoc.transport.send_control(assoc.address, self._client_update())

    def _on_client_bye(self, conn: Connection, msg: ClientBye) -> None:
        assoc = conn.assoc
        if assoc is not None and assoc.address in self._clients:
            log.info("client %s left", assoc.address)
            del self._clients[assoc.address]
            assoc.transport.mark_gone(assoc, "client left")

    def _client_update(self) -> ClientUpdate:
        state = self.membership
        assert state is not None
        unreachable = state.gossip.unreachable_keys
        snapshots = [self._snapshot()]
        for node, entries in self.registry.remote.items():
            uid = self._registry_known.get(node, (0, 0))[0]
            version = self._registry_known.get(node, (0, 0))[1]
            snapshots.append(
                RegistrySnapshot(
                    node,
                    uid,
                    version,
                    tuple((name, tuple(sorted(refs, key=lambda r: r.path))) for name, refs in sorted(entries.items())),
                )
            )
        return ClientUpdate(
            members=state.gossip.members,
            unreachable=tuple(m.node for m in state.gossip.members if m.key in unreachable),
            registries=tuple(snapshots),
        )

    def _schedule_client_push(self) -> None:
        if self._clients and not self._client_push_scheduled:
            self._client_push_scheduled = True
            self.loop.call_soon(self._push_clients)

    def _push_clients(self) -> None:
        self._client_push_scheduled = False
        transport = self.transport
        if transport is None or transport.closing or not self._clients or self.membership is None:
            return
        update = self._client_update()
        for address in list(self._clients):
            transport.send_control(address, update)

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

    async def _shutdown_services(self) -> None:
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
