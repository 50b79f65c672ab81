"""Split-brain resolution: which side of a partition keeps running, and downing the other."""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from typing import TYPE_CHECKING, Literal

from casty.actors.ref import NodeAddress
from casty.cluster.members import MemberStatus

if TYPE_CHECKING:
    from casty.cluster.system import ClusteredActorSystem

__all__ = ["PartitionDowning", "keep_majority_decision"]

log = logging.getLogger("casty.cluster")


def keep_majority_decision(
    members_up: Collection[NodeAddress], reachable: Collection[NodeAddress]
) -> Literal["down_unreachable", "down_self", "wait"]:
    """Keep-majority split-brain resolution, decided by one node about its own side.

    ``members_up`` are the addresses of all UP members; ``reachable`` are those this
    node can still reach (itself included).  The UP members split into this node's
    side (``members_up & reachable``) and the other side (the rest).

    * ``"wait"`` when the other side is empty: there is nothing to resolve.
    * ``"down_unreachable"`` when this side holds a strict majority of the UP
      members: it keeps running and downs every member of the other side.
    * ``"down_self"`` when this side holds a strict minority: it downs itself
      (its members shut down), expecting the other side to down it too.
    * On an exact tie the side that contains the lowest ``(host, port)`` of all UP
      members keeps running (``"down_unreachable"``) and the other side downs
      itself (``"down_self"``).

    Both sides reach complementary decisions from the same ``members_up``, so at
    most one side survives."""
    up = set(members_up)
    if not up:
        return "wait"
    ours = up & set(reachable)
    theirs = up - ours
    if not theirs:
        return "wait"
    if len(ours) > len(theirs):
        return "down_unreachable"
    if len(ours) < len(theirs):
        return "down_self"
    return "down_unreachable" if min(up) in ours else "down_self"


class PartitionDowning:
    """Keep-majority downing of the members a node has seen unreachable for ``cluster.down_after``.

    A node on the minority side downs itself (it shuts down).  The majority side's leader downs
    the members of the other side a removal margin later (``max(1 s, two heartbeat or gossip
    intervals)``), so the minority has stopped before the majority counts it as gone and two
    halves never both keep serving."""

    __slots__ = ("_system", "unreachable_since")

    def __init__(self, system: ClusteredActorSystem) -> None:
        self._system = system
        #: member key -> monotonic time this node first saw it unreachable
        self.unreachable_since: dict[str, float] = {}

    def check(self) -> None:
        """Run once per gossip round."""
        system = self._system
        state = system.membership
        assert state is not None
        now = time.monotonic()
        unreachable = state.gossip.unreachable_keys
        for key in list(self.unreachable_since):
            if key not in unreachable:
                del self.unreachable_since[key]
        for key in unreachable:
            self.unreachable_since.setdefault(key, now)
        cfg = system.config.cluster
        down_after = cfg.down_after
        # the majority waits a little longer than the minority, so the minority has shut itself
        # down before the majority counts it as gone: the two sides never both serve
        margin = max(1.0, 2 * cfg.heartbeat.interval, 2 * cfg.gossip.interval)
        overdue = [k for k, since in self.unreachable_since.items() if now - since >= down_after]
        if not overdue:
            return
        up = [m.node for m in state.gossip.members if m.status in (MemberStatus.UP, MemberStatus.LEAVING)]
        mine = {subject for observer, subject in state.gossip.unreachable if observer == state.self_key}
        reachable = [m.node for m in state.gossip.members if m.key not in mine]
        decision = keep_majority_decision(up, reachable)
        if decision == "down_self":
            if not system._stopping_self:
                log.error(
                    "%s is on the minority side of a partition for %.1fs; downing itself", system.self_node, down_after
                )
                system._stop_self("minority side of a partition")
            return
        if decision == "down_unreachable" and state.is_leader:
            for key in overdue:
                if now - self.unreachable_since[key] < down_after + margin:
                    continue
                member = state.gossip.member(key)
                if member is not None and member.status is not MemberStatus.DOWN:
                    log.warning("downing %s: unreachable for more than %.1fs", member.node, down_after)
                    system._apply(state.mark_down(key))

    def forget(self, key: str) -> None:
        """The member with ``key`` is gone: stop timing it."""
        self.unreachable_since.pop(key, None)
