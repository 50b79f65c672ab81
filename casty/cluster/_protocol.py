"""Control messages between cluster nodes (sent on the transport's control channel).

Joining, gossip, heartbeats and registry replication (with
:class:`~casty.cluster.client_protocol.RegistrySnapshot`, which clients receive too).  What
nodes and clients say to each other is in :mod:`casty.cluster.client_protocol`; those
messages keep this module's name on the wire (``module:qualname``), so it re-exports them.
"""

from __future__ import annotations

from dataclasses import dataclass

from casty.actors.ref import NodeAddress
from casty.cluster.client_protocol import ClientBye as ClientBye
from casty.cluster.client_protocol import ClientHello as ClientHello
from casty.cluster.client_protocol import ClientUpdate as ClientUpdate
from casty.cluster.client_protocol import ClientUpdatePart as ClientUpdatePart
from casty.cluster.client_protocol import RegistrySnapshot as RegistrySnapshot
from casty.cluster.client_protocol import RegistrySnapshotPart as RegistrySnapshotPart
from casty.cluster.gossip import Gossip
from casty.cluster.members import Member

__all__ = [
    "GossipEnvelope",
    "Heartbeat",
    "HeartbeatAck",
    "InitJoin",
    "InitJoinAck",
    "InitJoinNack",
    "Join",
    "RegistryDigest",
    "RegistryPull",
    "Welcome",
]


@dataclass(frozen=True)
class InitJoin:
    """Asked by the first seed of a (re)starting node: is there already a cluster?"""

    node: NodeAddress


@dataclass(frozen=True)
class InitJoinAck:
    """Yes: ``node`` is an up member; join through it."""

    node: NodeAddress


@dataclass(frozen=True)
class InitJoinNack:
    """No: ``node`` is alive and not a member of any cluster (sent only by nodes that discover
    their contacts by DNS, see :mod:`casty.cluster.discovery`)."""

    node: NodeAddress


@dataclass(frozen=True)
class Join:
    member: Member


@dataclass(frozen=True)
class Welcome:
    gossip: Gossip


@dataclass(frozen=True)
class GossipEnvelope:
    sender: str
    gossip: Gossip


@dataclass(frozen=True)
class Heartbeat:
    sender: NodeAddress
    sent_at: float


@dataclass(frozen=True)
class HeartbeatAck:
    sender: NodeAddress
    sent_at: float


@dataclass(frozen=True)
class RegistryDigest:
    """Sent with gossip: the version of the sender's own registrations."""

    node: NodeAddress
    uid: int
    version: int


@dataclass(frozen=True)
class RegistryPull:
    """Ask a node for its current RegistrySnapshot."""

    node: NodeAddress
