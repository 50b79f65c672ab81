"""Split-brain resolution: which side of a partition keeps running."""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

from casty.actors.ref import NodeAddress

__all__ = ["keep_majority_decision"]


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
