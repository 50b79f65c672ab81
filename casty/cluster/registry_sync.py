"""Service discovery across the cluster: every node's registrations, replicated to every member.

Each node owns its registrations (``Behaviors.discoverable``, ``Register``) and pushes a
versioned :class:`~casty.cluster.client_protocol.RegistrySnapshot` of them to every member
when they change; a :class:`~casty.cluster._protocol.RegistryDigest` piggybacks on gossip so
a member that missed a snapshot pulls it (``RegistryPull``).  Snapshots of members that are
not live are ignored, and those of removed members are dropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from casty.actors.ref import NodeAddress
from casty.cluster._protocol import RegistryDigest, RegistryPull
from casty.cluster.client_protocol import RegistrySnapshot
from casty.cluster.members import Member, MemberStatus

if TYPE_CHECKING:
    from casty.cluster.system import ClusteredActorSystem
    from casty.remote.transport import Connection

__all__ = ["RegistryReplication"]

_LIVE = (MemberStatus.JOINING, MemberStatus.UP, MemberStatus.LEAVING)
_LIVE_OR_EXITING = (*_LIVE, MemberStatus.EXITING)


class RegistryReplication:
    """The registry side of one cluster node: its own snapshot, and what it knows of the others'."""

    __slots__ = ("_push_scheduled", "_system", "known", "version")

    def __init__(self, system: ClusteredActorSystem) -> None:
        self._system = system
        self.version = 0
        #: per node: (uid, version) of the last snapshot applied
        self.known: dict[NodeAddress, tuple[int, int]] = {}
        self._push_scheduled = False

    def snapshot(self) -> RegistrySnapshot:
        """This node's own registrations, at the current version."""
        system = self._system
        entries = tuple(
            (name, tuple(sorted(refs, key=lambda r: r.path))) for name, refs in sorted(system.registry.local.items())
        )
        return RegistrySnapshot(system.self_node, system._uid, self.version, entries)

    def digest(self) -> RegistryDigest:
        """The version of this node's registrations, sent along with gossip."""
        system = self._system
        return RegistryDigest(system.self_node, system._uid, self.version)

    def snapshots(self) -> list[RegistrySnapshot]:
        """This node's snapshot followed by one for every other node whose registrations it holds."""
        system = self._system
        snapshots = [self.snapshot()]
        for node, entries in system.registry.remote.items():
            uid = self.known.get(node, (0, 0))[0]
            version = self.known.get(node, (0, 0))[1]
            snapshots.append(
                RegistrySnapshot(
                    node,
                    uid,
                    version,
                    tuple((name, tuple(sorted(refs, key=lambda r: r.path))) for name, refs in sorted(entries.items())),
                )
            )
        return snapshots

    def on_local_change(self) -> None:
        """A local registration changed: bump the version and push once this loop turn is over."""
        self.version += 1
        system = self._system
        if not self._push_scheduled and system.transport is not None:
            self._push_scheduled = True
            system.loop.call_soon(self._push)

    def _push(self) -> None:
        self._push_scheduled = False
        system = self._system
        state = system.membership
        if state is None or system.transport is None or system.transport.closing:
            return
        snapshot = self.snapshot()
        me = system.self_node
        for member in state.gossip.members:
            if member.node != me and member.status in _LIVE:
                system._send(member.node, snapshot)
        system._clients.schedule_push()

    def on_snapshot(self, conn: Connection, msg: RegistrySnapshot) -> None:
        system = self._system
        if msg.node == system.self_node:
            return
        state = system.membership
        if state is None:
            return
        member = next((m for m in state.gossip.members_at(msg.node) if m.uid == msg.uid), None)
        if member is None or member.status not in _LIVE_OR_EXITING:
            return
        known = self.known.get(msg.node)
        if known is not None and known[0] == msg.uid and known[1] >= msg.version:
            return
        self.known[msg.node] = (msg.uid, msg.version)
        system.registry.set_node(msg.node, {name: frozenset(refs) for name, refs in msg.entries})
        system._clients.schedule_push()

    def on_digest(self, conn: Connection, msg: RegistryDigest) -> None:
        known = self.known.get(msg.node)
        if known is None or known[0] != msg.uid or known[1] < msg.version:
            self._system._send(msg.node, RegistryPull(self._system.self_node))

    def on_pull(self, conn: Connection, msg: RegistryPull) -> None:
        self._system._send(msg.node, self.snapshot())

    def forget(self, member: Member) -> None:
        """Drop the registrations of ``member`` unless a newer incarnation of its node replaced them."""
        node = member.node
        known = self.known.get(node)
        if known is None or known[0] == member.uid:
            self.known.pop(node, None)
            self._system.registry.remove_node(node)
