"""Control messages of the cluster protocol (sent on the transport's control channel)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from casty.actors.ref import ActorRef, NodeAddress
from casty.cluster._membership import Gossip, Member

__all__ = [
    "ClientBye",
    "ClientHello",
    "ClientUpdate",
    "GossipEnvelope",
    "Heartbeat",
    "HeartbeatAck",
    "InitJoin",
    "InitJoinAck",
    "Join",
    "RegistryDigest",
    "RegistryPull",
    "RegistrySnapshot",
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


#: one node's own registrations: ((key name, (refs, ...)), ...)
Entries = tuple[tuple[str, tuple[ActorRef[Any], ...]], ...]


@dataclass(frozen=True)
class RegistrySnapshot:
    """All services registered on ``node`` (incarnation ``uid``), at ``version``."""

    node: NodeAddress
    uid: int
    version: int
    entries: Entries


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


@dataclass(frozen=True)
class ClientHello:
    """A ClusterClient asks to be kept up to date (membership and registry are pushed)."""

    client: str


@dataclass(frozen=True)
class ClientBye:
    """A ClusterClient is leaving: forget it now instead of waiting for it to come back."""

    client: str


@dataclass(frozen=True)
class ClientUpdate:
    """Pushed to clients: the members and every node's registrations."""

    members: tuple[Member, ...]
    unreachable: tuple[NodeAddress, ...]
    registries: tuple[RegistrySnapshot, ...]
