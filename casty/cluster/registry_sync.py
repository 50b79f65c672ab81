"""Service discovery across the cluster: every node's registrations, replicated to every member.

Each node owns its registrations (``Behaviors.discoverable``, ``Register``) and pushes a
versioned :class:`~casty.cluster.client_protocol.RegistrySnapshot` of them to every member
when they change; a :class:`~casty.cluster._protocol.RegistryDigest` piggybacks on gossip so
a member that missed a snapshot pulls it (``RegistryPull``).  Snapshots of members that are
not live are ignored, and those of removed members are dropped.

A snapshot too large for one frame (``remote.max_frame_size``) travels as
:class:`~casty.cluster.client_protocol.RegistrySnapshotPart` messages of at most a quarter of
a frame each; the receiver applies it once it holds every part of that version, so no
registry size breaks replication. Pushes are paced by their own cost: after a push whose snapshot
took ``t`` seconds to build the next waits ``8 t`` (encoding it, and decoding it on the other
side, cost as much again), at most 2 s, so a registry growing by thousands of keys is not
re-sent whole on every loop turn.
"""

from __future__ import annotations

import time
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any

from casty.actors.ref import ActorRef, NodeAddress
from casty.cluster._protocol import RegistryDigest, RegistryPull
from casty.cluster.client_protocol import (
    RegistrySnapshot,
    RegistrySnapshotPart,
    UpdateAssembler,
    merge_entries,
    split_entries,
)
from casty.cluster.members import Member, MemberStatus

if TYPE_CHECKING:
    from casty.cluster.system import ClusteredActorSystem
    from casty.remote.transport import Connection

__all__ = ["RegistryReplication"]

_LIVE = (MemberStatus.JOINING, MemberStatus.UP, MemberStatus.LEAVING)
_LIVE_OR_EXITING = (*_LIVE, MemberStatus.EXITING)

#: a push that took t seconds to build is followed by PUSH_PACING * t seconds without one...
PUSH_PACING = 8.0
#: ...but at most this many
MAX_PUSH_DELAY = 2.0


def push_delay(elapsed: float) -> float:
    """How long to wait after a push that took ``elapsed`` seconds to build."""
    return min(MAX_PUSH_DELAY, PUSH_PACING * elapsed)


class RegistryReplication:
    """The registry side of one cluster node: its own snapshot, and what it knows of the others'."""

    __slots__ = ("_next_push", "_parts", "_push_scheduled", "_system", "known", "version")

    def __init__(self, system: ClusteredActorSystem) -> None:
        self._system = system
        self.version = 0
        #: per node: (uid, version) of the last snapshot applied
        self.known: dict[NodeAddress, tuple[int, int]] = {}
        self._push_scheduled = False
        #: per sending node: the parts of a snapshot too large for one frame, until complete
        self._parts: dict[NodeAddress, UpdateAssembler] = {}
        #: loop time before which no push starts (see PUSH_PACING)
        self._next_push = 0.0

    def part_budget(self) -> int:
        """The most bytes one snapshot part (or client update part) is sized to: a quarter of
        a frame, leaving room for what the estimate does not see."""
        return max(1024, self._system.config.remote.max_frame_size // 4)

    def send_snapshot(self, node: NodeAddress, snapshot: RegistrySnapshot) -> None:
        """Send ``snapshot`` to ``node``: in one message when it fits a frame, else in parts."""
        system = self._system
        pieces = split_entries(snapshot.entries, self.part_budget())
        if len(pieces) == 1:
            system._send(node, snapshot)
            return
        for index, entries in enumerate(pieces):
            system._send(
                node, RegistrySnapshotPart(snapshot.node, snapshot.uid, snapshot.version, index, len(pieces), entries)
            )

    def on_part(self, conn: Connection, msg: RegistrySnapshotPart) -> None:
        """One part of a large snapshot; the snapshot is applied once all its parts are in."""
        if msg.node == self._system.self_node or not isinstance(msg.node, NodeAddress):
            return
        assembler = self._parts.get(msg.node)
        if assembler is None:
            assembler = self._parts[msg.node] = UpdateAssembler()
        parts = assembler.add((msg.uid, msg.version), msg.index, msg.count, msg.entries)
        if parts is not None:
            del self._parts[msg.node]
            self.on_snapshot(conn, RegistrySnapshot(msg.node, msg.uid, msg.version, merge_entries(parts)))

    def snapshot(self) -> RegistrySnapshot:
        """This node's own registrations, at the current version."""
        system = self._system
        entries = tuple((name, _sorted_refs(refs)) for name, refs in sorted(system.registry.local.items()))
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
                    tuple((name, _sorted_refs(refs)) for name, refs in sorted(entries.items())),
                )
            )
        return snapshots

    def on_local_change(self) -> None:
        """A local registration changed: bump the version and push once this loop turn is over."""
        self.version += 1
        self._schedule_push()

    def _schedule_push(self) -> None:
        system = self._system
        if not self._push_scheduled and system.transport is not None:
            self._push_scheduled = True
            loop = system.loop
            loop.call_later(max(0.0, self._next_push - loop.time()), self._push)

    def _push(self) -> None:
        self._push_scheduled = False
        system = self._system
        state = system.membership
        if state is None or system.transport is None or system.transport.closing:
            return
        started = time.perf_counter()
        snapshot = self.snapshot()
        me = system.self_node
        for member in state.gossip.members:
            if member.node != me and member.status in _LIVE:
                self.send_snapshot(member.node, snapshot)
        self._next_push = system.loop.time() + push_delay(time.perf_counter() - started)
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
        """A member missed our latest snapshot: it goes out with the next (paced) push, so a
        member pulling on every gossip round while a large snapshot is on its way costs one."""
        if self._push_scheduled:
            return
        if self._next_push <= self._system.loop.time():
            self.send_snapshot(msg.node, self.snapshot())
        else:
            self._schedule_push()

    def forget(self, member: Member) -> None:
        """Drop the registrations of ``member`` unless a newer incarnation of its node replaced them."""
        node = member.node
        known = self.known.get(node)
        if known is None or known[0] == member.uid:
            self.known.pop(node, None)
            self._parts.pop(node, None)
            self._system.registry.remove_node(node)


def _path(ref: ActorRef[Any]) -> str:
    return ref.path


def _sorted_refs(refs: AbstractSet[ActorRef[Any]]) -> tuple[ActorRef[Any], ...]:
    return tuple(refs) if len(refs) < 2 else tuple(sorted(refs, key=_path))
