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

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from casty.actors.ref import ActorRef, NodeAddress
from casty.cluster.members import Member

__all__ = [
    "ClientBye",
    "ClientHello",
    "ClientUpdate",
    "ClientUpdatePart",
    "Entries",
    "RegistrySnapshot",
    "RegistrySnapshotPart",
    "UpdateAssembler",
    "merge_snapshots",
    "split_entries",
    "split_update",
]

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


@dataclass(frozen=True)
class RegistrySnapshotPart:
    """Part ``index`` of ``count`` of a :class:`RegistrySnapshot` too large for one frame.

    The receiver applies the snapshot once it holds every part of that version; ``entries``
    of the parts together are the snapshot's (a key with very many refs may span parts)."""

    node: NodeAddress
    uid: int
    version: int
    index: int
    count: int
    entries: Entries


@dataclass(frozen=True)
class ClientUpdatePart:
    """Part ``index`` of ``count`` of update ``update`` (numbered per node), for a
    :class:`ClientUpdate` too large for one frame. Part 0 carries the members; the registries
    of all parts together are the update's (one node's snapshot may span parts)."""

    update: int
    index: int
    count: int
    members: tuple[Member, ...]
    unreachable: tuple[NodeAddress, ...]
    registries: tuple[RegistrySnapshot, ...]


for _cls in (RegistrySnapshot, ClientHello, ClientBye, ClientUpdate, RegistrySnapshotPart, ClientUpdatePart):
    _cls.__module__ = _WIRE_MODULE  # the wire name, see the module docstring

#: what one ref is counted as when sizing parts: its URI in full (the first time a connection
#: sends a ref it defines it) plus the incarnation and msgpack framing
_REF_OVERHEAD = 64


def _ref_size(ref: ActorRef[Any]) -> int:
    return len(ref.path) + _REF_OVERHEAD


def split_entries(entries: Entries, budget: int) -> list[Entries]:
    """``entries`` cut into pieces of at most about ``budget`` encoded bytes each (a key with
    more refs than fit is cut between refs); one piece when they fit."""
    pieces: list[Entries] = []
    piece: list[tuple[str, tuple[ActorRef[Any], ...]]] = []
    size = 0
    for entry in entries:
        name, refs = entry
        head = len(name) + 16
        if len(refs) == 1:  # the common case, cheaply
            cost = head + len(refs[0].path) + _REF_OVERHEAD
            if cost <= budget:
                if piece and size + cost > budget:
                    pieces.append(tuple(piece))
                    piece, size = [], 0
                piece.append(entry)
                size += cost
                continue
        start = 0
        while True:
            take: list[ActorRef[Any]] = []
            used = size + head
            for ref in refs[start:]:
                cost = _ref_size(ref)
                if take and used + cost > budget:
                    break
                take.append(ref)
                used += cost
            if piece and used > budget:
                pieces.append(tuple(piece))
                piece, size = [], 0
                continue  # the same refs again, in a fresh piece
            piece.append((name, tuple(take)))
            size = used
            start += len(take)
            if start >= len(refs):
                break
            pieces.append(tuple(piece))
            piece, size = [], 0
    if piece or not pieces:
        pieces.append(tuple(piece))
    return pieces


def split_update(update: ClientUpdate, budget: int) -> list[tuple[tuple[RegistrySnapshot, ...], int]]:
    """The registries of ``update`` in groups of at most about ``budget`` bytes each, with their
    size; a snapshot larger than the budget is cut into several with the same node and version."""
    groups: list[tuple[tuple[RegistrySnapshot, ...], int]] = []
    group: list[RegistrySnapshot] = []
    size = 0
    for snap in update.registries:
        for entries in split_entries(snap.entries, budget):
            piece = RegistrySnapshot(snap.node, snap.uid, snap.version, entries)
            cost = _entries_size(entries) + 64
            if group and size + cost > budget:
                groups.append((tuple(group), size))
                group, size = [], 0
            group.append(piece)
            size += cost
    groups.append((tuple(group), size))
    return groups


def _entries_size(entries: Entries) -> int:
    return sum(len(name) + 16 + sum(_ref_size(r) for r in refs) for name, refs in entries)


def merge_entries(pieces: Sequence[Entries]) -> Entries:
    """The entries of one snapshot from its pieces, refs of a key cut between pieces joined."""
    merged: dict[str, list[ActorRef[Any]]] = {}
    for entries in pieces:
        for name, refs in entries:
            merged.setdefault(name, []).extend(refs)
    return tuple((name, tuple(refs)) for name, refs in merged.items())


def merge_snapshots(pieces: Sequence[RegistrySnapshot]) -> tuple[RegistrySnapshot, ...]:
    """Snapshots cut by :func:`split_update`, joined back: one per node, in order."""
    by_node: dict[NodeAddress, list[RegistrySnapshot]] = {}
    for snap in pieces:
        by_node.setdefault(snap.node, []).append(snap)
    return tuple(
        RegistrySnapshot(snaps[0].node, snaps[0].uid, snaps[0].version, merge_entries([s.entries for s in snaps]))
        for snaps in by_node.values()
    )


class UpdateAssembler:
    """Collects the parts of one update (the newest started) until it is whole."""

    __slots__ = ("_count", "_key", "_parts")

    def __init__(self) -> None:
        self._key: object = None
        self._count = 0
        self._parts: dict[int, Any] = {}

    def add(self, key: object, index: int, count: int, part: Any) -> list[Any] | None:
        """Add part ``index`` of ``count`` of update ``key``; all parts in order once complete.
        A part of another update than the one being collected starts over with that one."""
        if type(index) is not int or type(count) is not int or not 0 <= index < count:
            return None
        if key != self._key or count != self._count:
            self._key, self._count, self._parts = key, count, {}
        self._parts[index] = part
        if len(self._parts) < count:
            return None
        parts = [self._parts[i] for i in range(count)]
        self._key, self._count, self._parts = None, 0, {}
        return parts
