"""A node's local view as plain values (what the inspection protocol answers and ``casty
status`` prints), and its readiness (what ``/ready`` answers).

Everything is read from the node's own state at the moment of the call: members and
reachability from its gossip, services from its registry (local registrations and the
replicas pushed by the other members), streams and peers from :mod:`casty.observe.stats`.
"""

from __future__ import annotations

import time
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from casty.actors.system import ActorSystem

__all__ = ["local_view", "readiness"]

#: systems whose cluster has reached ``min_members`` up members once (it then stays reached)
_reached: weakref.WeakSet[Any] = weakref.WeakSet()


def _members(system: Any) -> tuple[list[dict[str, Any]], str | None]:
    state = system.membership
    if state is None:
        return [], None
    gossip = state.gossip
    unreachable = gossip.unreachable_keys
    leader = state.leader
    members = [
        {
            "address": str(m.node),
            "uid": m.uid,
            "status": m.status.value,
            "roles": list(m.roles),
            "reachable": m.key not in unreachable,
            "leader": leader == m.node,
            "self": m.key == state.self_key,
        }
        for m in gossip.members
    ]
    return members, (str(leader) if leader is not None else None)


def _services(system: ActorSystem) -> dict[str, list[dict[str, Any]]]:
    registry = system.registry
    me = system.address
    here = f"{me.host}:{me.port}" if me.host else "local"
    services: dict[str, list[dict[str, Any]]] = {}
    for name, refs in registry.local.items():
        for ref in refs:
            services.setdefault(name, []).append({"node": here, "path": ref.path, "reachable": True})
    for node, entries in registry.remote.items():
        reachable = node not in registry.hidden
        for name, remote_refs in entries.items():
            for ref in remote_refs:
                services.setdefault(name, []).append({"node": str(node), "path": ref.path, "reachable": reachable})
    for instances in services.values():
        instances.sort(key=lambda i: (i["node"], i["path"]))
    return dict(sorted(services.items()))


def local_view(system: ActorSystem) -> dict[str, Any]:
    """This node's view of itself and its cluster, as JSON-able values."""
    stats = system.stats()
    members: list[dict[str, Any]] = []
    leader: str | None = None
    if getattr(system, "membership", None) is not None:
        members, leader = _members(system)
    ready, why = readiness(system)
    return {
        "node": stats.address,
        "system": system.name,
        "time": time.time(),
        "ready": ready,
        "ready_reason": why,
        "leader": leader,
        "members": members,
        "services": _services(system),
        "streams": [s.to_dict() for s in stats.streams],
        "connections": [p.to_dict() for p in stats.peers],
        "stats": {
            "actors": stats.actors,
            "dead_letters": stats.dead_letters,
            "dead_letters_by_reason": stats.dead_letters_by_reason,
            "busiest_mailboxes": [list(p) for p in stats.busiest_mailboxes],
            "bytes_sent": stats.bytes_sent,
            "bytes_received": stats.bytes_received,
            "gossip_sent": stats.gossip_sent,
            "gossip_received": stats.gossip_received,
            "members_by_status": stats.members_by_status,
            "asks": stats.asks,
            "ask_timeouts": stats.ask_timeouts,
        },
    }


def readiness(system: ActorSystem) -> tuple[bool, str]:
    """``(ready, reason)``: a cluster node is ready while it is up, the cluster has reached
    ``[cluster] min_members`` up members, or the system's ``required_quorum`` when larger (once reached, a smaller cluster stays ready, as
    when a member leaves), and it is not on the minority side of a partition;
    it stops being ready once it leaves, is downed or shuts down. A node outside a cluster is
    ready while it runs."""
    # the cluster package sits above this one: imported only for a cluster node
    from casty.cluster.downing import keep_majority_decision
    from casty.cluster.members import MemberStatus

    if system.is_shutting_down:
        return False, "shutting down"
    state = getattr(system, "membership", None)
    if state is None:
        if hasattr(system, "membership"):
            return False, "not started"
        return True, "running"
    if not state.is_member:
        return False, "not a member yet"
    me = state.self_member
    if me.status is not MemberStatus.UP:
        return False, f"this member is {me.status.value}"
    gossip = state.gossip
    up = [m.node for m in gossip.members if m.status in (MemberStatus.UP, MemberStatus.LEAVING)]
    wanted = max(system.config.cluster.min_members, getattr(system, "required_quorum", None) or 0)
    if system not in _reached:
        if len(up) < wanted:
            return False, f"{len(up)} of {wanted} members up (cluster.min_members or the required quorum)"
        _reached.add(system)
    mine = {subject for observer, subject in gossip.unreachable if observer == state.self_key}
    reachable = [m.node for m in gossip.members if m.key not in mine]
    if keep_majority_decision(up, reachable) == "down_self":
        return False, "on the minority side of a partition"
    return True, "up"
