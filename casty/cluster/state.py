"""One node's membership view: its own member record and the current gossip.

:class:`MembershipState` is the only mutable piece of the membership core; every change
returns the events it caused (see :mod:`casty.cluster.events`).
"""

from __future__ import annotations

from collections.abc import Collection

from casty.actors.ref import NodeAddress
from casty.cluster.events import MemberEvent, diff
from casty.cluster.gossip import DEFAULT_TOMBSTONE_TTL, Gossip, leader, leader_actions
from casty.cluster.members import ClusterState, Member, MemberStatus

__all__ = ["MembershipState"]


class MembershipState:
    """The membership view of one node: its own member record and current gossip.

    Every change goes through a method that returns the events it caused, bumps
    this node's clock entry when the change is this node's own (so the change wins
    over older gossip), and marks the result seen by this node.
    """

    __slots__ = ("_initial", "gossip", "tombstone_ttl")

    def __init__(
        self, self_member: Member, gossip: Gossip | None = None, tombstone_ttl: float = DEFAULT_TOMBSTONE_TTL
    ) -> None:
        self._initial = self_member
        self.gossip = gossip if gossip is not None else Gossip()
        self.tombstone_ttl = tombstone_ttl

    @property
    def self_key(self) -> str:
        """This node's member key."""
        return self._initial.key

    @property
    def self_address(self) -> NodeAddress:
        """This node's address."""
        return self._initial.node

    @property
    def self_member(self) -> Member:
        """This node's record as the gossip has it; REMOVED once tombstoned, the initial record before joining."""
        current = self.gossip.member(self.self_key)
        if current is not None:
            return current
        if self.gossip.is_tombstoned(self.self_key):
            return self._initial.with_status(MemberStatus.REMOVED)
        return self._initial

    @property
    def is_member(self) -> bool:
        """True while this node is in the gossip's members."""
        return self.gossip.member(self.self_key) is not None

    @property
    def leader(self) -> NodeAddress | None:
        """The current leader, per the gossip's reachability table."""
        return leader(self.gossip)

    @property
    def is_leader(self) -> bool:
        """True when this node is a member and the leader."""
        return self.is_member and self.leader == self.self_address

    def convergence(self, reachable_keys: Collection[str] | None = None) -> bool:
        """See :meth:`Gossip.convergence`."""
        return self.gossip.convergence(reachable_keys)

    @property
    def unreachable_members(self) -> frozenset[Member]:
        """Members some live observer reports unreachable."""
        keys = self.gossip.unreachable_keys
        return frozenset(m for m in self.gossip.members if m.key in keys)

    def cluster_state(self) -> ClusterState:
        """A snapshot for subscribers."""
        return ClusterState.of(self.gossip)

    @staticmethod
    def diff(old: Gossip, new: Gossip) -> list[MemberEvent]:
        """See :func:`diff`."""
        return diff(old, new)

    def _install(self, new: Gossip) -> list[MemberEvent]:
        old = self.gossip
        if new == old:
            return []
        self.gossip = new
        return diff(old, new)

    def _own_change(self, changed: Gossip) -> list[MemberEvent]:
        if changed is self.gossip or changed == self.gossip:
            return []
        return self._install(changed.bump(self.self_key))

    def join_self(self) -> list[MemberEvent]:
        """Add this node as JOINING to its own gossip (the first seed forms the cluster this way)."""
        return self.add_joining(self._initial)

    def add_joining(self, member: Member) -> list[MemberEvent]:
        """Accept the join of ``member`` (see :meth:`Gossip.add_joining`)."""
        return self._own_change(self.gossip.add_joining(member))

    def mark_down(self, target: NodeAddress | tuple[str, int] | str) -> list[MemberEvent]:
        """Down a member, by key or by address."""
        return self._own_change(self.gossip.mark_down(target))

    def mark_leaving(self, target: NodeAddress | tuple[str, int] | str) -> list[MemberEvent]:
        """Start a graceful leave of a member, by key or by address."""
        return self._own_change(self.gossip.mark_leaving(target))

    def leave(self) -> list[MemberEvent]:
        """Start this node's own graceful leave."""
        return self.mark_leaving(self.self_key)

    def set_unreachable(self, subject: NodeAddress | tuple[str, int] | str, unreachable: bool) -> list[MemberEvent]:
        """Record this node's failure detector verdict on ``subject`` (a key, or every incarnation at an address)."""
        gossip = self.gossip
        keys = [subject] if isinstance(subject, str) else [m.key for m in gossip.members_at(subject)]
        for key in keys:
            gossip = gossip.set_unreachable(self.self_key, key, unreachable)
        return self._own_change(gossip)

    def apply_incoming(self, remote: Gossip) -> list[MemberEvent]:
        """Fold a gossip received from another node into this one; this node has then seen the result."""
        merged = self.gossip.merge(remote).seen_by(self.self_key)
        return self._install(merged)

    def leader_actions(self, now: float, reachable: Collection[str] | None = None) -> list[MemberEvent]:
        """Run :func:`leader_actions` when this node leads and the gossip has converged."""
        if not self.is_leader:
            return []
        return self._own_change(leader_actions(self.gossip, now, reachable))

    def prune_tombstones(self, now: float) -> list[MemberEvent]:
        """Drop tombstones older than ``tombstone_ttl`` (local housekeeping, no clock bump)."""
        return self._install(self.gossip.prune_tombstones(now, self.tombstone_ttl))
