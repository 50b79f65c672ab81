"""Cluster members: who a member is and where it is in its life cycle.

Identity
    A member is one *incarnation* of a node: ``(host, port)`` plus a random 63-bit
    ``uid`` drawn when the process starts (:func:`new_uid`).  Its *key* is the string
    ``"host:port#uid"`` (:func:`member_key`); keys name members in the vector clock,
    the seen set, the reachability table and the tombstones of the gossip.

Life cycle
    ``joining -> up -> leaving -> exiting -> removed`` for a graceful leave and
    ``* -> down -> removed`` when a member is downed.  A status never moves backwards
    (see :mod:`casty.cluster.gossip` for who moves it and when).

:class:`ClusterState` is the snapshot of the membership handed to subscribers.

Wire names: a record's type travels as ``module:qualname``.  The membership types were
first defined in ``casty.cluster._membership``, so they keep that module name (``__module__``)
and that module re-exports them: peers of any version decode them alike.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from casty.actors.ref import NodeAddress

if TYPE_CHECKING:
    from casty.cluster.gossip import Gossip

__all__ = ["ClusterState", "Member", "MemberStatus", "member_key", "new_uid", "parse_member_key"]

_WIRE_MODULE = "casty.cluster._membership"


def member_key(node: NodeAddress | tuple[str, int], uid: int) -> str:
    """The string naming one incarnation: ``"host:port#uid"``."""
    return f"{node[0]}:{node[1]}#{uid}"


def parse_member_key(key: str) -> tuple[NodeAddress, int]:
    """Inverse of :func:`member_key`."""
    hostport, sep, uid_text = key.rpartition("#")
    host, sep2, port_text = hostport.rpartition(":")
    if not sep or not sep2 or not host:
        raise ValueError(f"malformed member key: {key!r}")
    return NodeAddress(host, int(port_text)), int(uid_text)


def new_uid(rng: random.Random | None = None) -> int:
    """A fresh random 63-bit incarnation id (never 0)."""
    source = rng if rng is not None else random.SystemRandom()
    return source.getrandbits(63) or 1


class MemberStatus(Enum):
    """Where a member is in its life cycle; the declaration order is the progress order.

    The members are spelled in lower case (``MemberStatus.up``); the upper-case spellings
    (``MemberStatus.UP``) are aliases of the same members. A status travels as its value.
    """

    joining = "joining"
    up = "up"
    leaving = "leaving"
    exiting = "exiting"
    down = "down"
    removed = "removed"

    JOINING = "joining"
    UP = "up"
    LEAVING = "leaving"
    EXITING = "exiting"
    DOWN = "down"
    REMOVED = "removed"

    @property
    def rank(self) -> int:
        """Progress order: joining 0 < up 1 < leaving 2 < exiting 3 < down 4 < removed 5."""
        return _RANK[self]


_RANK = {status: i for i, status in enumerate(MemberStatus)}
_LIVE = frozenset({MemberStatus.joining, MemberStatus.up, MemberStatus.leaving, MemberStatus.exiting})
_CONVERGING = frozenset({MemberStatus.joining, MemberStatus.up, MemberStatus.leaving})
_LEADER_ELIGIBLE = frozenset({MemberStatus.up, MemberStatus.leaving})


@dataclass(frozen=True, slots=True)
class Member:
    """One incarnation of a cluster node and its status.

    ``uid`` tells incarnations on the same ``host:port`` apart (a restarted node gets
    a new one); ``up_number`` is the order in which members became UP (1 for the
    first), 0 while not yet up.
    """

    node: NodeAddress
    uid: int
    status: MemberStatus
    roles: tuple[str, ...] = ()
    up_number: int = 0

    def __post_init__(self) -> None:
        # Decoded messages carry the address as a plain tuple and may carry roles as a list.
        if type(self.node) is not NodeAddress:
            host, port = self.node
            object.__setattr__(self, "node", NodeAddress(host, port))
        if not isinstance(self.status, MemberStatus):
            object.__setattr__(self, "status", MemberStatus(self.status))
        if type(self.roles) is not tuple:
            object.__setattr__(self, "roles", tuple(self.roles))

    @property
    def address(self) -> NodeAddress:
        """The node's advertised ``(host, port)``."""
        return self.node

    @property
    def id(self) -> str:
        """``"host:port"``: the member's identity across the cluster.

        A node's ``node_id`` label is local to it (its logs, ``system.node_id``); members
        are known to each other by address, so this is also the node id a node gets
        when none is given."""
        return f"{self.node.host}:{self.node.port}"

    @property
    def key(self) -> str:
        """``"host:port#uid"``, the name of this incarnation inside a :class:`Gossip`."""
        return member_key(self.node, self.uid)

    def has_role(self, role: str) -> bool:
        """True when the member advertises ``role``."""
        return role in self.roles

    def with_status(self, status: MemberStatus) -> Member:
        """A copy with another status."""
        return dataclasses.replace(self, status=status)

    def __str__(self) -> str:
        return f"{self.node}#{self.uid}({self.status.value})"


def _as_address(node: NodeAddress | tuple[str, int] | None) -> NodeAddress | None:
    """A decoded address (a plain tuple on the wire) as a NodeAddress."""
    if node is None or type(node) is NodeAddress:
        return node
    return NodeAddress(node[0], node[1])


def _member_order(member: Member) -> tuple[int, int, tuple[str, ...]]:
    """Total order among records of one incarnation: the merge keeps the largest."""
    return (_RANK[member.status], member.up_number, member.roles)


def _address_order(member: Member) -> tuple[str, int, int]:
    return (member.node.host, member.node.port, member.uid)


@dataclass(frozen=True, slots=True)
class ClusterState:
    """A snapshot of the membership: its members, the addresses of those some live member
    reports unreachable, and the leader."""

    members: tuple[Member, ...] = ()
    unreachable: frozenset[NodeAddress] = frozenset()
    leader: NodeAddress | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "leader", _as_address(self.leader))
        if any(type(node) is not NodeAddress for node in self.unreachable):
            # decoded snapshots carry addresses as plain tuples
            object.__setattr__(self, "unreachable", frozenset(_as_address(node) for node in self.unreachable))

    @staticmethod
    def of(gossip: Gossip) -> ClusterState:
        """The snapshot a gossip describes."""
        from casty.cluster.gossip import leader

        unreachable = frozenset(m.node for m in gossip.members if m.key in gossip.unreachable_keys)
        return ClusterState(gossip.members, unreachable, leader(gossip))

    @property
    def up_members(self) -> tuple[Member, ...]:
        """Members whose status is up."""
        return tuple(m for m in self.members if m.status is MemberStatus.up)

    @property
    def unreachable_members(self) -> tuple[Member, ...]:
        """The members at the unreachable addresses."""
        return tuple(m for m in self.members if m.node in self.unreachable)


for _cls in (MemberStatus, Member, ClusterState):
    _cls.__module__ = _WIRE_MODULE  # the wire name, see the module docstring
