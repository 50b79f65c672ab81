"""Cluster membership as a replicated, mergeable value: no I/O, no asyncio, no clocks.

The whole membership view of a node is one :class:`Gossip`, a frozen dataclass sent
as a message between nodes.  Nodes exchange gossips and fold them together with
:meth:`Gossip.merge`, a join in the lattice sense: commutative, associative and
idempotent, so the order and repetition of deliveries never matter.

Identity
    A member is one *incarnation* of a node: ``(host, port)`` plus a random 63-bit
    ``uid`` drawn when the process starts (:func:`new_uid`).  Its *key* is the string
    ``"host:port#uid"`` (:func:`member_key`); keys name members in the vector clock,
    the seen set, the reachability table and the tombstones.

Life cycle
    ``JOINING -> UP -> LEAVING -> EXITING -> REMOVED`` for a graceful leave and
    ``* -> DOWN -> REMOVED`` when a member is downed.  A status never moves backwards.
    Only the leader moves members forward on its own (:func:`leader_actions`), and
    only once the gossip has *converged* (every live, reachable member has seen the
    current version).  A removed member leaves ``members`` and leaves behind a
    tombstone ``(key, removal time)`` so that stale gossip cannot bring it back.

Merge rules (:meth:`Gossip.merge`)
    * Vector clocks: pointwise maximum.
    * Members are keyed by ``(node, uid)``.  For the same key the member with the more
      advanced status wins (``JOINING < UP < LEAVING < EXITING < DOWN < REMOVED``);
      equal statuses are settled by the larger ``up_number``, then the larger roles
      tuple, so the choice is a maximum under a total order.
    * Any member whose key has a tombstone is dropped.  Tombstones are unioned,
      keeping the later removal time per key.
    * Two incarnations of the same address are *not* collapsed by merge: both stay,
      each under its own key, until the older one is removed.  Replacement is
      expressed through status, which keeps merge a plain join:

      - a node accepting the join of a new incarnation (:meth:`Gossip.add_joining`)
        marks every older, still-live incarnation of that address DOWN, since a new
        uid on an address proves the old process is gone;
      - the leader promotes the new incarnation from JOINING to UP only once no other
        incarnation of its address is left in ``members``, i.e. after it has removed
        (and tombstoned) the old one;
      - as a safety net, when the leader sees several live incarnations of one
        address it keeps the least advanced one (JOINING: a restarted process always
        joins anew), ties broken by the larger uid, and downs the others.

      So a new incarnation replaces an older one exactly when the older one is DOWN
      or REMOVED, and the replacement becomes UP after the removal.
    * ``seen``: the union of the seen sets of those inputs whose version equals the
      merged version (empty when the versions were concurrent).
    * Reachability: every observer owns one row, ``(observer, row version)`` in
      ``reachability_versions`` plus its ``(observer, subject)`` pairs in
      ``unreachable``.  Merge keeps, per observer, the row with the higher row
      version (the union on a tie), so an observer that clears a record really
      clears it everywhere.  Rows and pairs whose observer or subject is no longer a
      member are dropped.

Every :class:`Gossip` is put in canonical form when it is built (sorted, one entry
per key, tombstoned members and dangling references dropped), so equal states
compare equal and any decoded message is well formed.  Helpers that change the
state (:meth:`Gossip.mark_down` and friends) do not touch the vector clock; the node
that makes the change calls :meth:`Gossip.bump` with its own key, which
:class:`MembershipState` does for every change it makes.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from enum import Enum
from functools import cached_property
from typing import Literal, Protocol

from casty.actors.ref import NodeAddress

__all__ = [
    "DEFAULT_TOMBSTONE_TTL",
    "ClusterState",
    "Gossip",
    "LeaderChanged",
    "Member",
    "MemberDowned",
    "MemberEvent",
    "MemberExited",
    "MemberJoined",
    "MemberLeft",
    "MemberRemoved",
    "MemberStatus",
    "MemberUp",
    "MembershipState",
    "ReachableMember",
    "UnreachableMember",
    "VectorOrder",
    "compare_versions",
    "diff",
    "gossip_targets",
    "keep_majority_decision",
    "leader",
    "leader_actions",
    "member_key",
    "merge_versions",
    "new_uid",
    "parse_member_key",
]

DEFAULT_TOMBSTONE_TTL = 24 * 3600.0
"""Seconds a tombstone is kept before :meth:`Gossip.prune_tombstones` may drop it."""

Version = tuple[tuple[str, int], ...]


# ---------------------------------------------------------------------------
# Identity
# ---------------------------------------------------------------------------


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
    """Where a member is in its life cycle; the declaration order is the progress order."""

    JOINING = "joining"
    UP = "up"
    LEAVING = "leaving"
    EXITING = "exiting"
    DOWN = "down"
    REMOVED = "removed"

    @property
    def rank(self) -> int:
        """Progress order: JOINING 0 < UP 1 < LEAVING 2 < EXITING 3 < DOWN 4 < REMOVED 5."""
        return _RANK[self]


_RANK = {status: i for i, status in enumerate(MemberStatus)}
_LIVE = frozenset({MemberStatus.JOINING, MemberStatus.UP, MemberStatus.LEAVING, MemberStatus.EXITING})
_CONVERGING = frozenset({MemberStatus.JOINING, MemberStatus.UP, MemberStatus.LEAVING})
_LEADER_ELIGIBLE = frozenset({MemberStatus.UP, MemberStatus.LEAVING})


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


# ---------------------------------------------------------------------------
# Vector clocks
# ---------------------------------------------------------------------------


class VectorOrder(Enum):
    """How one vector clock relates to another."""

    BEFORE = "before"
    AFTER = "after"
    SAME = "same"
    CONCURRENT = "concurrent"


def compare_versions(a: Iterable[tuple[str, int]], b: Iterable[tuple[str, int]]) -> VectorOrder:
    """Compare clock ``a`` with clock ``b`` (missing entries count as 0).

    ``BEFORE`` means ``a`` happened before ``b`` (``b`` has seen everything ``a`` has)."""
    left = dict(a)
    right = dict(b)
    a_bigger = b_bigger = False
    for key in left.keys() | right.keys():
        x = left.get(key, 0)
        y = right.get(key, 0)
        if x > y:
            a_bigger = True
        elif y > x:
            b_bigger = True
        if a_bigger and b_bigger:
            return VectorOrder.CONCURRENT
    if a_bigger:
        return VectorOrder.AFTER
    if b_bigger:
        return VectorOrder.BEFORE
    return VectorOrder.SAME


def merge_versions(*clocks: Iterable[tuple[str, int]]) -> Version:
    """Pointwise maximum of vector clocks, sorted by key."""
    out: dict[str, int] = {}
    for clock in clocks:
        for key, counter in clock:
            if counter > out.get(key, 0):
                out[key] = counter
    return tuple(sorted(out.items()))


# ---------------------------------------------------------------------------
# Gossip
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Gossip:
    """The replicated membership state; see the module docstring for the merge rules.

    Fields (all plain tuples so the value travels as a message):

    ``members``
        The members, sorted by ``(node, uid)``, one record per incarnation.
    ``version``
        Vector clock ``(member key, counter)`` pairs, sorted by key.
    ``seen``
        Keys of the members that have seen exactly this ``version``.
    ``unreachable``
        ``(observer key, subject key)`` pairs: the observer's failure detector gave up
        on the subject.  A subject is unreachable while at least one observer that is
        not DOWN says so.
    ``tombstones``
        ``(key, removal time)`` of removed members; a tombstoned key never comes back.
    ``reachability_versions``
        ``(observer key, row version)``: how many times each observer changed its
        reachability row; the merge keeps the newer row per observer.
    """

    members: tuple[Member, ...] = ()
    version: Version = ()
    seen: tuple[str, ...] = ()
    unreachable: tuple[tuple[str, str], ...] = ()
    tombstones: tuple[tuple[str, float], ...] = ()
    reachability_versions: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        tombs: dict[str, float] = {}
        for key, when in self.tombstones:
            when = float(when)
            if key not in tombs or when > tombs[key]:
                tombs[key] = when
        best: dict[str, Member] = {}
        for member in self.members:
            if not isinstance(member, Member):
                raise TypeError(f"Gossip.members holds {type(member).__name__}, not Member")
            key = member.key
            if key in tombs:
                continue
            current = best.get(key)
            if current is None or _member_order(member) > _member_order(current):
                best[key] = member
        rows: dict[str, int] = {}
        for observer, row_version in self.reachability_versions:
            if observer in best and row_version > rows.get(observer, 0):
                rows[observer] = row_version
        pairs = {
            (observer, subject)
            for observer, subject in self.unreachable
            if observer != subject and observer in best and subject in best
        }
        put = object.__setattr__
        put(self, "tombstones", tuple(sorted(tombs.items())))
        put(self, "members", tuple(sorted(best.values(), key=_address_order)))
        put(self, "version", merge_versions(self.version))
        put(self, "seen", tuple(sorted({key for key in self.seen if key in best})))
        put(self, "unreachable", tuple(sorted(pairs)))
        put(self, "reachability_versions", tuple(sorted(rows.items())))

    # -- lookups ------------------------------------------------------------------

    @cached_property
    def _by_key(self) -> dict[str, Member]:
        return {member.key: member for member in self.members}

    @cached_property
    def _tomb_keys(self) -> frozenset[str]:
        return frozenset(key for key, _ in self.tombstones)

    @cached_property
    def unreachable_keys(self) -> frozenset[str]:
        """Keys of the members at least one non-DOWN observer reports unreachable."""
        by_key = self._by_key
        return frozenset(subject for observer, subject in self.unreachable if by_key[observer].status in _LIVE)

    def member(self, key: str) -> Member | None:
        """The member with this key, if it is (still) a member."""
        return self._by_key.get(key)

    def members_at(self, node: NodeAddress | tuple[str, int]) -> tuple[Member, ...]:
        """Every incarnation at ``node`` (usually zero or one)."""
        address = NodeAddress(node[0], node[1])
        return tuple(m for m in self.members if m.node == address)

    def is_tombstoned(self, key: str) -> bool:
        """True when the member with this key was removed (and the tombstone not yet pruned)."""
        return key in self._tomb_keys

    def is_reachable(self, key: str) -> bool:
        """False when some live observer reports the member unreachable."""
        return key not in self.unreachable_keys

    def is_seen_by(self, key: str) -> bool:
        """True when the member with this key has seen this exact version."""
        return key in self.seen

    def compare(self, other: Gossip) -> VectorOrder:
        """Vector clock order of this gossip relative to ``other``."""
        return compare_versions(self.version, other.version)

    # -- the lattice join ---------------------------------------------------------

    def merge(self, other: Gossip) -> Gossip:
        """The join of two gossips; commutative, associative and idempotent."""
        if other is self or other == self:
            return self
        version = merge_versions(self.version, other.version)
        seen: set[str] = set()
        if self.version == version:
            seen.update(self.seen)
        if other.version == version:
            seen.update(other.seen)
        rows: dict[str, int] = {}
        subjects: dict[str, set[str]] = {}
        for gossip in (self, other):
            row_versions = dict(gossip.reachability_versions)
            own: dict[str, set[str]] = {}
            for observer, subject in gossip.unreachable:
                own.setdefault(observer, set()).add(subject)
            for observer in row_versions.keys() | own.keys():
                row_version = row_versions.get(observer, 0)
                current = rows.get(observer)
                if current is None or row_version > current:
                    rows[observer] = row_version
                    subjects[observer] = set(own.get(observer, ()))
                elif row_version == current:
                    subjects.setdefault(observer, set()).update(own.get(observer, ()))
        return Gossip(
            members=self.members + other.members,
            version=version,
            seen=tuple(seen),
            unreachable=tuple((o, s) for o, group in subjects.items() for s in group),
            tombstones=self.tombstones + other.tombstones,
            reachability_versions=tuple(rows.items()),
        )

    # -- versioning -----------------------------------------------------------------

    def bump(self, self_key: str) -> Gossip:
        """Increment ``self_key``'s clock entry; only ``self_key`` has seen the result."""
        counters = dict(self.version)
        counters[self_key] = counters.get(self_key, 0) + 1
        return dataclasses.replace(self, version=tuple(counters.items()), seen=(self_key,))

    def seen_by(self, key: str) -> Gossip:
        """This gossip with ``key`` added to the seen set (ignored for non-members)."""
        if key in self.seen or key not in self._by_key:
            return self
        return dataclasses.replace(self, seen=(*self.seen, key))

    def convergence(self, reachable_keys: Collection[str] | None = None) -> bool:
        """True when every JOINING, UP or LEAVING member that is reachable has seen this version.

        A member is left out when the gossip's reachability table reports it
        unreachable, or when ``reachable_keys`` is given and does not contain its key
        (the caller's own view, for example its failure detector).  EXITING, DOWN and
        REMOVED members are never waited for."""
        unreachable = self.unreachable_keys
        seen = set(self.seen)
        for member in self.members:
            if member.status not in _CONVERGING:
                continue
            key = member.key
            if key in unreachable or (reachable_keys is not None and key not in reachable_keys):
                continue
            if key not in seen:
                return False
        return True

    # -- changes (the caller bumps) -------------------------------------------------

    def _targets(self, target: NodeAddress | tuple[str, int] | str) -> list[Member]:
        if isinstance(target, str):
            member = self._by_key.get(target)
            return [] if member is None else [member]
        return list(self.members_at(target))

    def _with_members(self, changed: Iterable[Member]) -> Gossip:
        updates = {m.key: m for m in changed}
        if not updates:
            return self
        members = tuple(updates.get(m.key, m) for m in self.members)
        return dataclasses.replace(
            self, members=members + tuple(m for m in updates.values() if m.key not in self._by_key)
        )

    def add_joining(self, member: Member) -> Gossip:
        """Add ``member`` as JOINING; older live incarnations of its address become DOWN.

        Nothing changes when the incarnation is already known or was removed (a
        removed incarnation cannot come back; the process must restart with a new uid).
        """
        key = member.key
        if key in self._by_key or key in self._tomb_keys:
            return self
        joining = dataclasses.replace(member, status=MemberStatus.JOINING, up_number=0)
        downed = [m.with_status(MemberStatus.DOWN) for m in self.members_at(member.node) if m.status in _LIVE]
        return self._with_members([*downed, joining])

    def mark_down(self, target: NodeAddress | tuple[str, int] | str) -> Gossip:
        """Mark DOWN the member with key ``target``, or every live incarnation at address ``target``."""
        return self._with_members(m.with_status(MemberStatus.DOWN) for m in self._targets(target) if m.status in _LIVE)

    def mark_leaving(self, target: NodeAddress | tuple[str, int] | str) -> Gossip:
        """Mark LEAVING the JOINING or UP member with key ``target`` (or at address ``target``)."""
        return self._with_members(
            m.with_status(MemberStatus.LEAVING)
            for m in self._targets(target)
            if m.status in (MemberStatus.JOINING, MemberStatus.UP)
        )

    def set_unreachable(self, observer: str, subject: str, unreachable: bool) -> Gossip:
        """Record (``unreachable=True``) or clear ``observer``'s verdict on ``subject``.

        Only the observer itself should call this: it bumps the observer's row
        version so the change wins over older copies of the row.  Unchanged when the
        row already says so, or when either key is not a member."""
        if observer == subject or observer not in self._by_key or subject not in self._by_key:
            return self
        pair = (observer, subject)
        present = pair in self.unreachable
        if present == unreachable:
            return self
        rows = dict(self.reachability_versions)
        rows[observer] = rows.get(observer, 0) + 1
        pairs = (*self.unreachable, pair) if unreachable else tuple(p for p in self.unreachable if p != pair)
        return dataclasses.replace(self, unreachable=pairs, reachability_versions=tuple(rows.items()))

    def remove(self, key: str, now: float) -> Gossip:
        """Drop the member with ``key`` and tombstone it at time ``now``."""
        if key in self._tomb_keys:
            return self
        return dataclasses.replace(self, tombstones=(*self.tombstones, (key, now)))

    def prune_tombstones(self, now: float, ttl: float = DEFAULT_TOMBSTONE_TTL) -> Gossip:
        """Forget tombstones (and the clock entries of their keys) older than ``ttl`` seconds.

        Local housekeeping that every node does for itself; it does not bump the clock."""
        expired = {key for key, when in self.tombstones if now - when > ttl}
        if not expired:
            return self
        return dataclasses.replace(
            self,
            tombstones=tuple(t for t in self.tombstones if t[0] not in expired),
            version=tuple(v for v in self.version if v[0] not in expired),
        )


# ---------------------------------------------------------------------------
# Leader
# ---------------------------------------------------------------------------


def leader(gossip: Gossip, reachable: Collection[str] | None = None) -> NodeAddress | None:
    """The lowest ``(host, port)`` among reachable UP or LEAVING members.

    Reachable means not reported unreachable in the gossip and, when ``reachable`` is
    given, with a key in it.  When the gossip holds no UP or LEAVING member at all
    (a cluster being formed), the lowest reachable JOINING member leads instead, so
    the first seed can promote itself.  None when there is no candidate."""
    unreachable = gossip.unreachable_keys

    def ok(member: Member) -> bool:
        key = member.key
        return key not in unreachable and (reachable is None or key in reachable)

    candidates = [m for m in gossip.members if m.status in _LEADER_ELIGIBLE and ok(m)]
    if not candidates and not any(m.status in _LEADER_ELIGIBLE for m in gossip.members):
        candidates = [m for m in gossip.members if m.status is MemberStatus.JOINING and ok(m)]
    if not candidates:
        return None
    return min(candidates, key=_address_order).node


def leader_actions(gossip: Gossip, now: float, reachable: Collection[str] | None = None) -> Gossip:
    """The leader's moves, applied only when the gossip has converged (else unchanged).

    In one round, based on the statuses at the start of the round:

    1. when one address has several live incarnations, the least advanced one
       (ties: the larger uid) is kept and the others are marked DOWN;
    2. DOWN and EXITING members are removed and tombstoned at ``now`` (wall-clock
       seconds, compared across nodes when tombstones are pruned);
    3. LEAVING members become EXITING;
    4. JOINING members become UP, with ``up_number`` counting on from the largest
       one present, in ``(host, port, uid)`` order; a JOINING member is held back
       while another incarnation of its address is still a member.

    The caller bumps the clock of the result (see :meth:`MembershipState.leader_actions`)."""
    if not gossip.convergence(reachable):
        return gossip
    changed: dict[str, Member] = {}
    by_address: dict[NodeAddress, list[Member]] = {}
    for member in gossip.members:
        if member.status in _LIVE:
            by_address.setdefault(member.node, []).append(member)
    for group in by_address.values():
        if len(group) > 1:
            keep = min(group, key=lambda m: (_RANK[m.status], -m.uid))
            for member in group:
                if member is not keep:
                    changed[member.key] = member.with_status(MemberStatus.DOWN)
    removed = [m.key for m in gossip.members if m.status in (MemberStatus.DOWN, MemberStatus.EXITING)]
    removed_set = set(removed)
    remaining = [m for m in gossip.members if m.key not in removed_set]
    addresses: dict[NodeAddress, int] = {}
    for member in remaining:
        addresses[member.node] = addresses.get(member.node, 0) + 1
    up_number = max((m.up_number for m in gossip.members), default=0)
    for member in remaining:
        if member.key in changed:
            continue
        if member.status is MemberStatus.LEAVING:
            changed[member.key] = member.with_status(MemberStatus.EXITING)
        elif member.status is MemberStatus.JOINING and addresses[member.node] == 1:
            up_number += 1
            changed[member.key] = dataclasses.replace(member, status=MemberStatus.UP, up_number=up_number)
    if not changed and not removed:
        return gossip
    members = tuple(changed.get(m.key, m) for m in remaining)
    return dataclasses.replace(
        gossip, members=members, tombstones=gossip.tombstones + tuple((key, now) for key in removed)
    )


# ---------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemberJoined:
    """A member appeared with status JOINING."""

    member: Member


@dataclass(frozen=True, slots=True)
class MemberUp:
    """A member became UP."""

    member: Member


@dataclass(frozen=True, slots=True)
class MemberLeft:
    """A member started to leave (status LEAVING)."""

    member: Member


@dataclass(frozen=True, slots=True)
class MemberExited:
    """A leaving member finished handing over (status EXITING); removal follows."""

    member: Member


@dataclass(frozen=True, slots=True)
class MemberDowned:
    """A member was marked DOWN; removal follows."""

    member: Member


@dataclass(frozen=True, slots=True)
class MemberRemoved:
    """A member left the membership; ``member.status`` is REMOVED."""

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
    MemberStatus.JOINING: MemberJoined,
    MemberStatus.UP: MemberUp,
    MemberStatus.LEAVING: MemberLeft,
    MemberStatus.EXITING: MemberExited,
    MemberStatus.DOWN: MemberDowned,
}


def _status_event(member: Member, previous: MemberStatus | None) -> MemberEvent:
    if member.status is MemberStatus.REMOVED:
        return MemberRemoved(member, previous if previous is not None else MemberStatus.REMOVED)
    return _STATUS_EVENTS[member.status](member)


def diff(old: Gossip, new: Gossip) -> list[MemberEvent]:
    """The events that take a subscriber from ``old``'s view to ``new``'s.

    First a :class:`MemberRemoved` for every member gone from ``members`` (so a
    subscriber drops an old incarnation before it hears of its replacement), then
    one event per member whose status changed, for its new status only (a member
    seen for the first time as UP gives a single :class:`MemberUp`), then
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
            if key not in new_by_key and member.status is not MemberStatus.REMOVED:
                gone = member.with_status(MemberStatus.REMOVED)
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


@dataclass(frozen=True, slots=True)
class ClusterState:
    """A snapshot of the membership for subscribers."""

    members: tuple[Member, ...] = ()
    unreachable: frozenset[Member] = frozenset()
    leader: NodeAddress | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "leader", _as_address(self.leader))

    @staticmethod
    def of(gossip: Gossip) -> ClusterState:
        """The snapshot a gossip describes."""
        unreachable = frozenset(m for m in gossip.members if m.key in gossip.unreachable_keys)
        return ClusterState(gossip.members, unreachable, leader(gossip))

    @property
    def up_members(self) -> tuple[Member, ...]:
        """Members whose status is UP."""
        return tuple(m for m in self.members if m.status is MemberStatus.UP)


# ---------------------------------------------------------------------------
# The node's mutable holder
# ---------------------------------------------------------------------------


class MembershipState:
    """The membership view of one node: its own member record and current gossip.

    Every change goes through a method that returns the events it caused, bumps
    this node's clock entry when the change is this node's own (so the change wins
    over older gossip), and marks the result seen by this node.
    """

    __slots__ = ("_initial", "gossip", "tombstone_ttl")

    def __init__(
        self, self_member: Member, gossip: Gossip | None = None, tombstone_ttl: float = DEFAULT_TOMBSTONE_TTL
    ) -> None:
        self._initial = self_member
        self.gossip = gossip if gossip is not None else Gossip()
        self.tombstone_ttl = tombstone_ttl

    @property
    def self_key(self) -> str:
        """This node's member key."""
        return self._initial.key

    @property
    def self_address(self) -> NodeAddress:
        """This node's address."""
        return self._initial.node

    @property
    def self_member(self) -> Member:
        """This node's record as the gossip has it; REMOVED once tombstoned, the initial record before joining."""
        current = self.gossip.member(self.self_key)
        if current is not None:
            return current
        if self.gossip.is_tombstoned(self.self_key):
            return self._initial.with_status(MemberStatus.REMOVED)
        return self._initial

    @property
    def is_member(self) -> bool:
        """True while this node is in the gossip's members."""
        return self.gossip.member(self.self_key) is not None

    @property
    def leader(self) -> NodeAddress | None:
        """The current leader, per the gossip's reachability table."""
        return leader(self.gossip)

    @property
    def is_leader(self) -> bool:
        """True when this node is a member and the leader."""
        return self.is_member and self.leader == self.self_address

    def convergence(self, reachable_keys: Collection[str] | None = None) -> bool:
        """See :meth:`Gossip.convergence`."""
        return self.gossip.convergence(reachable_keys)

    @property
    def unreachable_members(self) -> frozenset[Member]:
        """Members some live observer reports unreachable."""
        keys = self.gossip.unreachable_keys
        return frozenset(m for m in self.gossip.members if m.key in keys)

    def cluster_state(self) -> ClusterState:
        """A snapshot for subscribers."""
        return ClusterState.of(self.gossip)

    @staticmethod
    def diff(old: Gossip, new: Gossip) -> list[MemberEvent]:
        """See :func:`diff`."""
        return diff(old, new)

    def _install(self, new: Gossip) -> list[MemberEvent]:
        old = self.gossip
        if new == old:
            return []
        self.gossip = new
        return diff(old, new)

    def _own_change(self, changed: Gossip) -> list[MemberEvent]:
        if changed is self.gossip or changed == self.gossip:
            return []
        return self._install(changed.bump(self.self_key))

    def join_self(self) -> list[MemberEvent]:
        """Add this node as JOINING to its own gossip (the first seed forms the cluster this way)."""
        return self.add_joining(self._initial)

    def add_joining(self, member: Member) -> list[MemberEvent]:
        """Accept the join of ``member`` (see :meth:`Gossip.add_joining`)."""
        return self._own_change(self.gossip.add_joining(member))

    def mark_down(self, target: NodeAddress | tuple[str, int] | str) -> list[MemberEvent]:
        """Down a member, by key or by address."""
        return self._own_change(self.gossip.mark_down(target))

    def mark_leaving(self, target: NodeAddress | tuple[str, int] | str) -> list[MemberEvent]:
        """Start a graceful leave of a member, by key or by address."""
        return self._own_change(self.gossip.mark_leaving(target))

    def leave(self) -> list[MemberEvent]:
        """Start this node's own graceful leave."""
        return self.mark_leaving(self.self_key)

    def set_unreachable(self, subject: NodeAddress | tuple[str, int] | str, unreachable: bool) -> list[MemberEvent]:
        """Record this node's failure detector verdict on ``subject`` (a key, or every incarnation at an address)."""
        gossip = self.gossip
        keys = [subject] if isinstance(subject, str) else [m.key for m in gossip.members_at(subject)]
        for key in keys:
            gossip = gossip.set_unreachable(self.self_key, key, unreachable)
        return self._own_change(gossip)

    def apply_incoming(self, remote: Gossip) -> list[MemberEvent]:
        """Fold a gossip received from another node into this one; this node has then seen the result."""
        merged = self.gossip.merge(remote).seen_by(self.self_key)
        return self._install(merged)

    def leader_actions(self, now: float, reachable: Collection[str] | None = None) -> list[MemberEvent]:
        """Run :func:`leader_actions` when this node leads and the gossip has converged."""
        if not self.is_leader:
            return []
        return self._own_change(leader_actions(self.gossip, now, reachable))

    def prune_tombstones(self, now: float) -> list[MemberEvent]:
        """Drop tombstones older than ``tombstone_ttl`` (local housekeeping, no clock bump)."""
        return self._install(self.gossip.prune_tombstones(now, self.tombstone_ttl))


# ---------------------------------------------------------------------------
# Gossip targets and downing
# ---------------------------------------------------------------------------


class _Chooser(Protocol):
    def sample(self, population: list[Member], k: int) -> list[Member]: ...


def gossip_targets(state: MembershipState, rng: _Chooser, fanout: int = 1) -> list[Member]:
    """Up to ``fanout`` members to send the gossip to, preferring those that have not seen it.

    Candidates are the other live (not DOWN) members that this node itself has not
    recorded as unreachable (a member only others cannot reach still gets gossip
    from this node).  Members missing from the seen set are picked first, at random;
    the rest of the fanout is filled at random from those that have seen it."""
    gossip = state.gossip
    self_key = state.self_key
    unreachable = {subject for observer, subject in gossip.unreachable if observer == self_key}
    seen = set(gossip.seen)
    unseen_members: list[Member] = []
    seen_members: list[Member] = []
    for member in gossip.members:
        key = member.key
        if key == self_key or member.status not in _LIVE or key in unreachable:
            continue
        (seen_members if key in seen else unseen_members).append(member)
    if fanout <= 0:
        return []
    chosen = rng.sample(unseen_members, min(fanout, len(unseen_members)))
    missing = fanout - len(chosen)
    if missing > 0 and seen_members:
        chosen += rng.sample(seen_members, min(missing, len(seen_members)))
    return chosen


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
