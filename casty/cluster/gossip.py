"""The membership gossip: a replicated, mergeable value (no I/O, no asyncio, no clocks), and the leader.

The whole membership view of a node is one :class:`Gossip`, a frozen dataclass sent
as a message between nodes.  Nodes exchange gossips and fold them together with
:meth:`Gossip.merge`, a join in the lattice sense: commutative, associative and
idempotent, so the order and repetition of deliveries never matter.

Members are named by their keys, ``"host:port#uid"`` (see :mod:`casty.cluster.members`).

Leader actions
    A status never moves backwards.  Only the leader (:func:`leader`) moves members
    forward on its own (:func:`leader_actions`), and only once the gossip has
    *converged* (every live, reachable member has seen the current version).  A
    removed member leaves ``members`` and leaves behind a tombstone ``(key, removal
    time)`` so that stale gossip cannot bring it back.

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
:class:`~casty.cluster.state.MembershipState` does for every change it makes.

:func:`gossip_targets` picks the members a node sends its gossip to.

Wire names: a record's type travels as ``module:qualname``.  The membership types were
first defined in ``casty.cluster._membership``, so they keep that module name (``__module__``)
and that module re-exports them: peers of any version decode them alike.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

from casty.actors.ref import NodeAddress
from casty.cluster.members import (
    _CONVERGING,
    _LEADER_ELIGIBLE,
    _LIVE,
    _RANK,
    Member,
    MemberStatus,
    _address_order,
    _member_order,
)
from casty.cluster.vector_clock import VectorOrder, Version, compare_versions, merge_versions

if TYPE_CHECKING:
    from casty.cluster.state import MembershipState

__all__ = ["DEFAULT_TOMBSTONE_TTL", "Gossip", "gossip_targets", "leader", "leader_actions"]

_WIRE_MODULE = "casty.cluster._membership"

DEFAULT_TOMBSTONE_TTL = 24 * 3600.0
"""Seconds a tombstone is kept before :meth:`Gossip.prune_tombstones` may drop it."""


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

    The caller bumps the clock of the result (see :meth:`~casty.cluster.state.MembershipState.leader_actions`)."""
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
# Gossip targets
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


Gossip.__module__ = _WIRE_MODULE  # the wire name, see the module docstring
