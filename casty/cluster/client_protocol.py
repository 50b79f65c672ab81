"""What a cluster node and a :class:`~casty.client.ClusterClient` say to each other.

Sent on the transport's control channel.  A client says :class:`ClientHello` to one
contact node, which then pushes a :class:`ClientUpdate` (the members and every node's
registrations) on every membership or registry change until the client says
:class:`ClientBye` or its connection is gone.

Wire names: a record's type travels as ``module:qualname``.  These messages were first
defined in ``casty.cluster._protocol``, so they keep that module name (``__module__``) and
that module re-exports them: peers of any version decode them alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from casty.actors.ref import ActorRef, NodeAddress
from casty.cluster.members import Member

__all__ = ["ClientBye", "ClientHello", "ClientUpdate", "Entries", "RegistrySnapshot"]

_WIRE_MODULE = "casty.cluster._protocol"

#: one node's own registrations: ((key name, (refs, ...)), ...)
Entries = tuple[tuple[str, tuple[ActorRef[Any], ...]], ...]


@dataclass(frozen=True)
class RegistrySnapshot:
    """All services registered on ``node`` (incarnation ``uid``), at ``version``.

    Nodes also send it to each other to replicate their registrations."""

    node: NodeAddress
    uid: int
    version: int
    entries: Entries


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


for _cls in (RegistrySnapshot, ClientHello, ClientBye, ClientUpdate):
    _cls.__module__ = _WIRE_MODULE  # the wire name, see the module docstring
