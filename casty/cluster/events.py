"""Membership events: what a subscriber hears when the membership changes.

:func:`diff` computes the events that take one gossip's view to another's; a node
publishes them on its event stream as it applies changes.

Wire names: a record's type travels as ``module:qualname``.  The membership types were
first defined in ``casty.cluster._membership``, so they keep that module name (``__module__``)
and that module re-exports them: peers of any version decode them alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from casty.actors.ref import NodeAddress
from casty.cluster.gossip import Gossip, leader
from casty.cluster.members import Member, MemberStatus, _address_order, _as_address

__all__ = [
    "LeaderChanged",
    "MemberDowned",
    "MemberEvent",
    "MemberExited",
    "MemberJoined",
    "MemberLeft",
    "MemberRemoved",
    "MemberUp",
    "ReachableMember",
    "UnreachableMember",
    "diff",
]

_WIRE_MODULE = "casty.cluster._membership"


@dataclass(frozen=True, slots=True)
class MemberJoined:
    """A member appeared with status joining."""

    member: Member


@dataclass(frozen=True, slots=True)
class MemberUp:
    """A member became up."""

    member: Member


@dataclass(frozen=True, slots=True)
class MemberLeft:
    """A member started to leave (status leaving)."""

    member: Member


@dataclass(frozen=True, slots=True)
class MemberExited:
    """A leaving member finished handing over (status exiting); removal follows."""

    member: Member


@dataclass(frozen=True, slots=True)
class MemberDowned:
    """A member was marked down; removal follows."""

    member: Member


@dataclass(frozen=True, slots=True)
class MemberRemoved:
    """A member left the membership; ``member.status`` is removed."""

    member: Member
    previous_status: MemberStatus


@dataclass(frozen=True, slots=True)
class UnreachableMember:
    """A live observer's failure detector gave up on the member."""

    member: Member


@dataclass(frozen=True, slots=True)
class ReachableMember:
    """A member that was unreachable is reachable again."""

    member: Member


@dataclass(frozen=True, slots=True)
class LeaderChanged:
    """The leader moved (None when there is no leader)."""

    leader: NodeAddress | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "leader", _as_address(self.leader))


MemberEvent = (
    MemberJoined
    | MemberUp
    | MemberLeft
    | MemberExited
    | MemberDowned
    | MemberRemoved
    | UnreachableMember
    | ReachableMember
    | LeaderChanged
)
"""Every event :func:`diff` produces."""

_STATUS_EVENTS: dict[MemberStatus, type[MemberJoined | MemberUp | MemberLeft | MemberExited | MemberDowned]] = {
    MemberStatus.joining: MemberJoined,
    MemberStatus.up: MemberUp,
    MemberStatus.leaving: MemberLeft,
    MemberStatus.exiting: MemberExited,
    MemberStatus.down: MemberDowned,
}


def _status_event(member: Member, previous: MemberStatus | None) -> MemberEvent:
    if member.status is MemberStatus.removed:
        return MemberRemoved(member, previous if previous is not None else MemberStatus.removed)
    return _STATUS_EVENTS[member.status](member)


def diff(old: Gossip, new: Gossip) -> list[MemberEvent]:
    """The events that take a subscriber from ``old``'s view to ``new``'s.

    First a :class:`MemberRemoved` for every member gone from ``members`` (so a
    subscriber drops an old incarnation before it hears of its replacement), then
    one event per member whose status changed, for its new status only (a member
    seen for the first time as up gives a single :class:`MemberUp`), then
    reachability changes (no :class:`ReachableMember` for a member that left), then
    :class:`LeaderChanged`.  Within each group events are in ``(host, port, uid)``
    order."""
    events: list[MemberEvent] = []
    old_by_key = old._by_key
    new_by_key = new._by_key
    if old.members != new.members:
        removals: list[tuple[tuple[str, int, int], MemberEvent]] = []
        changes: list[tuple[tuple[str, int, int], MemberEvent]] = []
        for key, member in old_by_key.items():
            if key not in new_by_key and member.status is not MemberStatus.removed:
                gone = member.with_status(MemberStatus.removed)
                removals.append((_address_order(member), MemberRemoved(gone, member.status)))
        for key, member in new_by_key.items():
            before = old_by_key.get(key)
            if before is None or before.status is not member.status:
                event = _status_event(member, None if before is None else before.status)
                (removals if isinstance(event, MemberRemoved) else changes).append((_address_order(member), event))
        removals.sort(key=lambda item: item[0])
        changes.sort(key=lambda item: item[0])
        events.extend(event for _, event in removals)
        events.extend(event for _, event in changes)
    old_unreachable = {k for k in old.unreachable_keys if k in old_by_key}
    new_unreachable = {k for k in new.unreachable_keys if k in new_by_key}
    if old_unreachable != new_unreachable:
        reach: list[tuple[tuple[str, int, int], MemberEvent]] = []
        for key in new_unreachable - old_unreachable:
            member = new_by_key[key]
            reach.append((_address_order(member), UnreachableMember(member)))
        for key in old_unreachable - new_unreachable:
            still = new_by_key.get(key)
            if still is not None:
                reach.append((_address_order(still), ReachableMember(still)))
        reach.sort(key=lambda item: item[0])
        events.extend(event for _, event in reach)
    old_leader = leader(old)
    new_leader = leader(new)
    if old_leader != new_leader:
        events.append(LeaderChanged(new_leader))
    return events


for _cls in (
    MemberJoined,
    MemberUp,
    MemberLeft,
    MemberExited,
    MemberDowned,
    MemberRemoved,
    UnreachableMember,
    ReachableMember,
    LeaderChanged,
):
    _cls.__module__ = _WIRE_MODULE  # the wire name, see the module docstring
