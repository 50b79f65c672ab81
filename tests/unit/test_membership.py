"""Phi accrual failure detector and the pure membership core (gossip lattice, leader, events)."""

from __future__ import annotations

import dataclasses
import enum
import itertools
import math
import random
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casty.actors.ref import NodeAddress
from casty.cluster._failure_detector import FailureDetectorRegistry, PhiAccrualFailureDetector
from casty.cluster.downing import keep_majority_decision
from casty.cluster.events import (
    LeaderChanged,
    MemberDowned,
    MemberEvent,
    MemberExited,
    MemberJoined,
    MemberLeft,
    MemberRemoved,
    MemberUp,
    ReachableMember,
    UnreachableMember,
    diff,
)
from casty.cluster.gossip import Gossip, gossip_targets, leader, leader_actions
from casty.cluster.members import ClusterState, Member, MemberStatus, member_key, new_uid, parse_member_key
from casty.cluster.state import MembershipState
from casty.cluster.vector_clock import VectorOrder, compare_versions, merge_versions
from casty.config import FailureDetectorConfig

# ---------------------------------------------------------------------------
# Failure detector
# ---------------------------------------------------------------------------


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _beating(clock: FakeClock, count: int = 50, interval: float = 0.5, **kwargs: Any) -> PhiAccrualFailureDetector:
    detector = PhiAccrualFailureDetector(clock=clock, **kwargs)
    for _ in range(count):
        detector.heartbeat()
        clock.advance(interval)
    return detector


def test_available_before_first_heartbeat() -> None:
    clock = FakeClock()
    detector = PhiAccrualFailureDetector(clock=clock)
    assert not detector.is_monitoring
    assert detector.phi() == 0.0
    clock.advance(1000)
    assert detector.is_available()
    detector.heartbeat()
    assert detector.is_monitoring


def test_regular_heartbeats_keep_phi_low() -> None:
    clock = FakeClock()
    detector = PhiAccrualFailureDetector(clock=clock)
    for _ in range(200):
        detector.heartbeat()
        clock.advance(0.5)
        assert detector.phi() < 1.0
        assert detector.is_available()


def test_jittery_heartbeats_stay_available() -> None:
    clock = FakeClock()
    rng = random.Random(7)
    detector = PhiAccrualFailureDetector(clock=clock)
    for _ in range(300):
        detector.heartbeat()
        clock.advance(0.5 + rng.uniform(-0.2, 0.3))
        assert detector.is_available()


def test_silence_raises_phi_monotonically_past_threshold() -> None:
    clock = FakeClock()
    detector = _beating(clock, interval=0.5)
    detector.heartbeat()
    phis: list[float] = []
    crossed_at: float | None = None
    for step in range(1, 200):
        clock.advance(0.05)
        phi = detector.phi()
        phis.append(phi)
        if crossed_at is None and not detector.is_available():
            crossed_at = step * 0.05
    assert all(b >= a for a, b in itertools.pairwise(phis))
    assert phis[-1] > phis[0]
    assert crossed_at is not None
    # Not before the acceptable pause, and within it plus a few heartbeat intervals.
    assert 2.0 < crossed_at < 2.0 + 4 * 0.5
    assert math.isfinite(phis[-1])


def test_phi_is_finite_for_extreme_elapsed_times() -> None:
    clock = FakeClock()
    detector = _beating(clock, interval=0.01, min_std_deviation=0.001, acceptable_heartbeat_pause=0.0)
    detector.heartbeat()
    assert 0.0 <= detector.phi() < 1.0
    for gap in (1.0, 1e3, 1e6, 1e9):
        clock.advance(gap)
        phi = detector.phi()
        assert math.isfinite(phi)
        assert phi > 8.0


def test_recovery_after_heartbeats_resume() -> None:
    clock = FakeClock()
    detector = _beating(clock)
    clock.advance(30.0)
    assert not detector.is_available()
    mean_before = detector.mean
    detector.heartbeat()
    assert detector.is_available()
    # The 30 s outage was not sampled as an interval.
    assert detector.mean == pytest.approx(mean_before)
    for _ in range(10):
        clock.advance(0.5)
        detector.heartbeat()
        assert detector.is_available()


def test_sample_window_is_bounded() -> None:
    clock = FakeClock()
    detector = _beating(clock, count=50, max_sample_size=5)
    assert detector.sample_count == 5
    assert detector.mean == pytest.approx(0.5)
    detector.reset()
    assert not detector.is_monitoring
    assert detector.sample_count == 0


def test_invalid_detector_settings() -> None:
    with pytest.raises(ValueError):
        PhiAccrualFailureDetector(threshold=0)
    with pytest.raises(ValueError):
        PhiAccrualFailureDetector(max_sample_size=0)
    with pytest.raises(ValueError):
        PhiAccrualFailureDetector(min_std_deviation=0)
    with pytest.raises(ValueError):
        PhiAccrualFailureDetector(acceptable_heartbeat_pause=-1)
    with pytest.raises(ValueError):
        PhiAccrualFailureDetector(first_heartbeat_estimate=0)


def test_registry() -> None:
    clock = FakeClock()
    registry = FailureDetectorRegistry.from_config(
        FailureDetectorConfig(threshold=5.0, acceptable_heartbeat_pause=1.0), first_heartbeat_estimate=0.2, clock=clock
    )
    a, b = NodeAddress("127.0.0.1", 1), NodeAddress("127.0.0.1", 2)
    assert registry.is_available(a)
    assert registry.phi(a) == 0.0
    assert not registry.is_monitoring(a)
    for _ in range(20):
        registry.heartbeat(a)
        registry.heartbeat(b)
        clock.advance(0.2)
    assert registry.is_monitoring(a)
    assert a in registry
    assert sorted(registry) == [a, b]
    assert len(registry) == 2
    detector = registry.get(a)
    assert detector is not None
    assert detector.threshold == 5.0
    for _ in range(20):
        registry.heartbeat(b)
        clock.advance(0.2)
    assert not registry.is_available(a)
    assert registry.is_available(b)
    assert registry.phi(a) > registry.phi(b)
    registry.remove(a)
    assert registry.is_available(a)
    assert a not in registry
    registry.reset()
    assert len(registry) == 0


def test_registry_default_factory() -> None:
    registry = FailureDetectorRegistry()
    node = NodeAddress("h", 1)
    registry.heartbeat(node)
    assert registry.is_available(node)


# ---------------------------------------------------------------------------
# Membership helpers
# ---------------------------------------------------------------------------

HOST = "10.0.0.1"


def addr(port: int) -> NodeAddress:
    return NodeAddress(HOST, port)


def mk(port: int, status: MemberStatus = MemberStatus.UP, uid: int | None = None, up_number: int = 0) -> Member:
    return Member(addr(port), port * 1000 if uid is None else uid, status, up_number=up_number)


def gossip_of(*members: Member, seen_all: bool = True) -> Gossip:
    g = Gossip(members=members, version=(("x", 1),))
    return dataclasses.replace(g, seen=tuple(m.key for m in members)) if seen_all else g


def test_member_keys_and_coercion() -> None:
    m = Member(("h", 5), 42, "up", ["a", "b"])  # type: ignore[arg-type]
    assert type(m.node) is NodeAddress
    assert m.address == NodeAddress("h", 5)
    assert m.status is MemberStatus.UP
    assert m.roles == ("a", "b")
    assert m.has_role("a") and not m.has_role("c")
    assert m.key == "h:5#42" == member_key(m.node, 42)
    assert parse_member_key(m.key) == (NodeAddress("h", 5), 42)
    assert parse_member_key(member_key(NodeAddress("::1", 7), 3)) == (NodeAddress("::1", 7), 3)
    with pytest.raises(ValueError):
        parse_member_key("nonsense")
    assert str(m) == "h:5#42(up)"
    uid = new_uid(random.Random(1))
    assert 0 < uid < 2**63
    assert 0 < new_uid() < 2**63
    assert [s.rank for s in MemberStatus] == [0, 1, 2, 3, 4, 5]


def test_vector_clock_compare() -> None:
    a = (("a", 1), ("b", 2))
    assert compare_versions(a, a) is VectorOrder.SAME
    assert compare_versions((), ()) is VectorOrder.SAME
    assert compare_versions(a, (("a", 1), ("b", 3))) is VectorOrder.BEFORE
    assert compare_versions((("a", 2), ("b", 2)), a) is VectorOrder.AFTER
    assert compare_versions((("a", 2),), a) is VectorOrder.CONCURRENT
    assert compare_versions((), a) is VectorOrder.BEFORE
    assert merge_versions((("a", 2),), a) == (("a", 2), ("b", 2))
    g = Gossip().bump("k")
    assert g.version == (("k", 1),)
    assert g.bump("k").compare(g) is VectorOrder.AFTER
    assert g.compare(g.bump("k")) is VectorOrder.BEFORE


def test_gossip_is_canonical() -> None:
    up = mk(1)
    joining = dataclasses.replace(up, status=MemberStatus.JOINING)
    other = mk(2)
    g = Gossip(
        members=(other, joining, up),
        version=(("b", 1), ("a", 2), ("a", 1), ("z", 0)),
        seen=(up.key, "ghost", up.key),
        unreachable=((up.key, other.key), (up.key, "ghost"), (up.key, up.key)),
        tombstones=(("t", 5.0), ("t", 3.0)),
        reachability_versions=((up.key, 1), ("ghost", 4)),
    )
    assert g.members == (up, other)
    assert g.version == (("a", 2), ("b", 1))
    assert g.seen == (up.key,)
    assert g.unreachable == ((up.key, other.key),)
    assert g.tombstones == (("t", 5.0),)
    assert g.reachability_versions == ((up.key, 1),)
    tombstoned = Gossip(members=(up, other), tombstones=((up.key, 1.0),))
    assert tombstoned.members == (other,)
    with pytest.raises(TypeError):
        Gossip(members=("nope",))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# Lattice properties
# ---------------------------------------------------------------------------

_PORTS = (1, 2, 3)
_UIDS = (11, 22)
_KEYS = [member_key(addr(p), u) for p in _PORTS for u in _UIDS]

member_strategy = st.builds(
    Member,
    node=st.sampled_from([addr(p) for p in _PORTS]),
    uid=st.sampled_from(_UIDS),
    status=st.sampled_from(list(MemberStatus)),
    roles=st.sampled_from([(), ("a",), ("a", "b")]),
    up_number=st.integers(0, 3),
)

gossip_strategy = st.builds(
    Gossip,
    members=st.lists(member_strategy, max_size=6).map(tuple),
    version=st.lists(st.tuples(st.sampled_from(_KEYS), st.integers(0, 3)), max_size=4).map(tuple),
    seen=st.lists(st.sampled_from(_KEYS), max_size=4).map(tuple),
    unreachable=st.lists(st.tuples(st.sampled_from(_KEYS), st.sampled_from(_KEYS)), max_size=4).map(tuple),
    tombstones=st.lists(st.tuples(st.sampled_from(_KEYS), st.sampled_from([1.0, 2.0])), max_size=2).map(tuple),
    reachability_versions=st.lists(st.tuples(st.sampled_from(_KEYS), st.integers(0, 2)), max_size=3).map(tuple),
)


@settings(max_examples=300, deadline=None)
@given(gossip_strategy, gossip_strategy)
def test_merge_is_commutative(a: Gossip, b: Gossip) -> None:
    assert a.merge(b) == b.merge(a)


@settings(max_examples=300, deadline=None)
@given(gossip_strategy, gossip_strategy, gossip_strategy)
def test_merge_is_associative(a: Gossip, b: Gossip, c: Gossip) -> None:
    assert a.merge(b).merge(c) == a.merge(b.merge(c))


@settings(max_examples=200, deadline=None)
@given(gossip_strategy, gossip_strategy)
def test_merge_is_idempotent(a: Gossip, b: Gossip) -> None:
    assert a.merge(a) == a
    ab = a.merge(b)
    assert ab.merge(b) == ab
    assert ab.merge(a) == ab


@settings(max_examples=200, deadline=None)
@given(gossip_strategy, gossip_strategy)
def test_merge_keeps_the_most_advanced_status(a: Gossip, b: Gossip) -> None:
    merged = a.merge(b)
    for m in merged.members:
        for source in (a, b):
            other = source.member(m.key)
            if other is not None:
                assert other.status.rank <= m.status.rank
    for key, _ in a.tombstones + b.tombstones:
        assert merged.member(key) is None
        assert merged.is_tombstoned(key)
    assert compare_versions(a.version, merged.version) in (VectorOrder.BEFORE, VectorOrder.SAME)


# ---------------------------------------------------------------------------
# A simulated cluster: nodes exchange gossip objects directly
# ---------------------------------------------------------------------------


class SimNode:
    def __init__(self, port: int, uid: int | None = None) -> None:
        self.member = Member(addr(port), uid if uid is not None else port * 1000, MemberStatus.JOINING)
        self.state = MembershipState(self.member)
        self.events: list[MemberEvent] = []

    @property
    def key(self) -> str:
        return self.member.key

    def status_of(self, node: SimNode) -> MemberStatus | None:
        m = self.state.gossip.member(node.key)
        return None if m is None else m.status


class Sim:
    def __init__(self, *nodes: SimNode, seed: int = 0) -> None:
        self.nodes = {n.key: n for n in nodes}
        self.rng = random.Random(seed)
        self.now = 1000.0
        self.partitioned: set[frozenset[str]] = set()

    def add(self, node: SimNode) -> None:
        self.nodes[node.key] = node

    def join(self, node: SimNode, seed: SimNode) -> None:
        seed.events += seed.state.add_joining(node.member)

    def send(self, src: SimNode, dst: SimNode) -> None:
        if frozenset((src.key, dst.key)) in self.partitioned:
            return
        dst.events += dst.state.apply_incoming(src.state.gossip)

    def round(self) -> None:
        self.now += 1.0
        order = list(self.nodes.values())
        self.rng.shuffle(order)
        for node in order:
            if not node.state.is_member:
                continue
            for target in gossip_targets(node.state, self.rng, fanout=1):
                peer = self.nodes.get(target.key)
                if peer is not None:
                    self.send(node, peer)
        for node in order:
            node.events += node.state.leader_actions(self.now)

    def run_until(self, predicate: Any, rounds: int = 300) -> int:
        for i in range(rounds):
            if predicate():
                return i
            self.round()
        raise AssertionError("did not converge")

    def all_agree(self, nodes: list[SimNode]) -> bool:
        first = nodes[0].state.gossip
        return all(
            n.state.gossip.members == first.members and n.state.gossip.unreachable == first.unreachable for n in nodes
        )


def _all_up(nodes: list[SimNode]) -> bool:
    return all(all(n.status_of(o) is MemberStatus.UP for o in nodes) for n in nodes)


def _form_cluster(count: int = 5, seed: int = 0, via_chain: bool = False) -> tuple[Sim, list[SimNode]]:
    nodes = [SimNode(p) for p in range(1, count + 1)]
    sim = Sim(*nodes, seed=seed)
    first = nodes[0]
    first.events += first.state.join_self()
    first.events += first.state.leader_actions(sim.now)
    assert first.state.self_member.status is MemberStatus.UP
    for i, node in enumerate(nodes[1:], start=1):
        sim.join(node, nodes[i - 1] if via_chain else first)
        if via_chain:
            sim.run_until(lambda i=i: nodes[i].state.is_member)
    sim.run_until(lambda: _all_up(nodes) and sim.all_agree(nodes))
    return sim, nodes


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("via_chain", [False, True])
def test_five_nodes_join_and_converge(seed: int, via_chain: bool) -> None:
    sim, nodes = _form_cluster(5, seed=seed, via_chain=via_chain)
    up_numbers = sorted(nodes[0].state.gossip.member(n.key).up_number for n in nodes)  # type: ignore[union-attr]
    assert up_numbers == [1, 2, 3, 4, 5]
    assert nodes[0].state.gossip.member(nodes[0].key).up_number == 1  # type: ignore[union-attr]
    for node in nodes:
        assert node.state.leader == addr(1)
        assert node.state.cluster_state().leader == addr(1)
        assert len(node.state.cluster_state().up_members) == 5
        ups = Counter(e.member.key for e in node.events if isinstance(e, MemberUp))
        assert ups == Counter({n.key: 1 for n in nodes}), node.key
        joined = Counter(e.member.key for e in node.events if isinstance(e, MemberJoined))
        assert all(count == 1 for count in joined.values())
        assert not any(isinstance(e, (MemberRemoved, MemberDowned, UnreachableMember)) for e in node.events)
    # A few more rounds change nothing and emit nothing.
    before = [len(n.events) for n in nodes]
    for _ in range(10):
        sim.round()
    assert [len(n.events) for n in nodes] == before


def test_first_seed_leads_itself() -> None:
    node = SimNode(1)
    state = node.state
    assert not state.is_member
    assert state.self_member == node.member
    assert state.leader is None
    assert state.leader_actions(1.0) == []
    events = state.join_self()
    assert events == [MemberJoined(node.member), LeaderChanged(addr(1))]
    assert state.is_leader
    events = state.leader_actions(1.0)
    assert events == [MemberUp(dataclasses.replace(node.member, status=MemberStatus.UP, up_number=1))]
    assert state.join_self() == []


def test_leader_choice() -> None:
    a, b, c = mk(1), mk(2), mk(3)
    g = gossip_of(c, b, a)
    assert leader(g) == addr(1)
    assert leader(g, reachable={b.key, c.key}) == addr(2)
    g2 = g.set_unreachable(b.key, a.key, True)
    assert leader(g2) == addr(2)
    joining = gossip_of(mk(5, MemberStatus.JOINING), mk(4, MemberStatus.JOINING))
    assert leader(joining) == addr(4)
    # JOINING members do not lead once the cluster has UP members, even unreachable ones.
    mixed = gossip_of(mk(1), mk(2, MemberStatus.JOINING)).set_unreachable(mk(2).key, mk(1).key, True)
    assert leader(mixed) is None
    assert leader(Gossip()) is None
    assert leader(gossip_of(mk(1, MemberStatus.LEAVING), mk(2))) == addr(1)
    assert leader(gossip_of(mk(1, MemberStatus.EXITING), mk(2))) == addr(2)


def test_convergence_rules() -> None:
    a, b, c = mk(1), mk(2), mk(3)
    g = Gossip(members=(a, b, c), seen=(a.key, b.key))
    assert not g.convergence()
    assert g.convergence(reachable_keys={a.key, b.key})
    assert g.set_unreachable(a.key, c.key, True).convergence()
    assert g.mark_down(c.key).convergence()
    assert Gossip(members=(a, b, mk(3, MemberStatus.EXITING)), seen=(a.key, b.key)).convergence()
    assert not Gossip(members=(a, b, mk(3, MemberStatus.JOINING)), seen=(a.key, b.key)).convergence()
    assert g.seen_by(c.key).convergence()
    assert g.seen_by(c.key).is_seen_by(c.key)
    assert g.seen_by("ghost") is g
    assert leader_actions(g, 1.0) is g


def test_unreachable_and_reachable_again() -> None:
    sim, nodes = _form_cluster(5)
    observer, subject = nodes[1], nodes[3]
    for n in nodes:
        n.events.clear()
    events = observer.state.set_unreachable(subject.member.address, True)
    observer.events += events
    subject_member = observer.state.gossip.member(subject.key)
    assert subject_member is not None
    assert events == [UnreachableMember(subject_member)]
    assert observer.state.cluster_state().unreachable == frozenset({subject_member.node})
    stale = observer.state.gossip
    sim.run_until(lambda: all(subject.key in n.state.gossip.unreachable_keys for n in nodes))
    for n in nodes:
        assert n.events.count(UnreachableMember(subject_member)) == 1
        assert subject_member in n.state.unreachable_members
    # Clearing the record wins everywhere, even against the stale copy of the row.
    observer.events += observer.state.set_unreachable(subject.key, False)
    assert observer.state.gossip.merge(stale).is_reachable(subject.key)
    sim.run_until(lambda: all(n.state.gossip.is_reachable(subject.key) for n in nodes))
    for n in nodes:
        assert n.events.count(ReachableMember(subject_member)) == 1
        n.events += n.state.apply_incoming(stale)
        assert n.state.gossip.is_reachable(subject.key)
        assert n.events.count(ReachableMember(subject_member)) == 1
    assert observer.state.set_unreachable(subject.key, False) == []


def test_unreachable_by_a_downed_observer_does_not_count() -> None:
    a, b, c = mk(1), mk(2), mk(3)
    g = gossip_of(a, b, c).set_unreachable(a.key, c.key, True)
    assert not g.is_reachable(c.key)
    assert g.mark_down(a.key).is_reachable(c.key)
    assert g.set_unreachable(a.key, "ghost", True) is g
    assert g.set_unreachable(a.key, a.key, True) is g


def test_down_then_removed_with_tombstone_and_no_resurrection() -> None:
    sim, nodes = _form_cluster(5)
    victim = nodes[4]
    stale = nodes[2].state.gossip
    for n in nodes:
        n.events.clear()
    events = nodes[1].state.mark_down(victim.key)
    assert [type(e) for e in events] == [MemberDowned]
    others = nodes[:4]
    del sim.nodes[victim.key]
    sim.run_until(lambda: all(n.state.gossip.is_tombstoned(victim.key) for n in others) and sim.all_agree(others))
    for n in others:
        assert n.status_of(victim) is None
        downed = [e for e in n.events if isinstance(e, MemberDowned)]
        removed = [e for e in n.events if isinstance(e, MemberRemoved)]
        assert len(removed) == 1 and removed[0].member.key == victim.key
        assert removed[0].member.status is MemberStatus.REMOVED
        assert len(downed) <= 1
        # Stale gossip with the victim still UP does not bring it back.
        assert n.state.apply_incoming(stale) == []
        assert n.status_of(victim) is None
        assert victim.key not in {m.key for m in n.state.cluster_state().members}
    # A removed incarnation cannot rejoin.
    assert nodes[0].state.add_joining(victim.member) == []


def test_graceful_leave() -> None:
    sim, nodes = _form_cluster(3)
    leaving = nodes[0]  # the leader itself leaves
    for n in nodes:
        n.events.clear()
    assert [type(e) for e in leaving.state.leave()] == [MemberLeft]
    rest = nodes[1:]
    sim.run_until(lambda: all(leaving.status_of(n) is MemberStatus.EXITING for n in [leaving]))
    sim.run_until(lambda: all(n.state.gossip.is_tombstoned(leaving.key) for n in rest))
    for n in rest:
        kinds = [type(e) for e in n.events if getattr(e, "member", None) and e.member.key == leaving.key]  # type: ignore[union-attr]
        assert kinds == [MemberLeft, MemberExited, MemberRemoved]
        assert n.state.leader == addr(2)
        assert LeaderChanged(addr(2)) in n.events


def test_new_incarnation_replaces_downed_one() -> None:
    sim, nodes = _form_cluster(3)
    old = nodes[2]
    restarted = SimNode(3, uid=99)
    del sim.nodes[old.key]
    sim.add(restarted)
    for n in nodes:
        n.events.clear()
    sim.join(restarted, nodes[0])
    g = nodes[0].state.gossip
    assert g.member(old.key).status is MemberStatus.DOWN  # type: ignore[union-attr]
    assert g.member(restarted.key).status is MemberStatus.JOINING  # type: ignore[union-attr]
    live = [nodes[0], nodes[1], restarted]
    sim.run_until(lambda: _all_up(live) and sim.all_agree(live))
    for n in (nodes[0], nodes[1]):
        assert n.state.gossip.is_tombstoned(old.key)
        assert [m.key for m in n.state.gossip.members_at(addr(3))] == [restarted.key]
        kinds = [type(e) for e in n.events if getattr(e, "member", None) is not None and e.member.node == addr(3)]  # type: ignore[union-attr]
        assert kinds.count(MemberUp) == 1
        assert kinds.count(MemberRemoved) == 1
        assert kinds.index(MemberRemoved) < kinds.index(MemberUp)
    assert restarted.state.gossip.member(restarted.key).up_number == 4  # type: ignore[union-attr]


def test_leader_holds_new_incarnation_until_old_one_is_gone() -> None:
    old = mk(3, MemberStatus.UP, uid=1, up_number=1)
    new = mk(3, MemberStatus.JOINING, uid=2)
    leader_member = mk(1, MemberStatus.UP, up_number=2)
    # Both incarnations present and live (the downing of the old one was missed).
    g = gossip_of(leader_member, old, new)
    g1 = leader_actions(g, 10.0)
    assert g1.member(old.key).status is MemberStatus.DOWN  # type: ignore[union-attr]
    assert g1.member(new.key).status is MemberStatus.JOINING  # type: ignore[union-attr]
    g2 = leader_actions(dataclasses.replace(g1, seen=(leader_member.key, new.key)), 11.0)
    assert g2.member(old.key) is None
    assert g2.tombstones == ((old.key, 11.0),)
    promoted = g2.member(new.key)
    assert promoted is not None and promoted.status is MemberStatus.UP and promoted.up_number == 3


def test_state_transition_events_exactly_once() -> None:
    a = mk(1, MemberStatus.JOINING)
    state = MembershipState(a)
    log: list[MemberEvent] = []
    log += state.join_self()
    b = mk(2, MemberStatus.JOINING)
    log += state.add_joining(b)
    log += state.add_joining(b)
    log += state.leader_actions(1.0)  # no convergence: b has not seen the gossip yet
    assert state.gossip.member(b.key).status is MemberStatus.JOINING  # type: ignore[union-attr]
    log += state.apply_incoming(state.gossip.seen_by(b.key))
    log += state.leader_actions(2.0)
    log += state.mark_leaving(b.key)
    log += state.apply_incoming(state.gossip.seen_by(b.key))
    log += state.leader_actions(3.0)
    log += state.apply_incoming(state.gossip)
    log += state.leader_actions(4.0)
    log += state.leader_actions(5.0)
    kinds = [(type(e).__name__, getattr(e, "member", None) and e.member.key) for e in log]  # type: ignore[union-attr]
    assert kinds == [
        ("MemberJoined", a.key),
        ("LeaderChanged", None),
        ("MemberJoined", b.key),
        ("MemberUp", a.key),
        ("MemberUp", b.key),
        ("MemberLeft", b.key),
        ("MemberExited", b.key),
        ("MemberRemoved", b.key),
    ]
    removed = log[-1]
    assert isinstance(removed, MemberRemoved) and removed.previous_status is MemberStatus.EXITING


def test_diff_of_skipped_transitions() -> None:
    a, b = mk(1), mk(2)
    old = gossip_of(a)
    new = gossip_of(a, b).mark_down(a.key)
    events = diff(old, new)
    assert events == [
        MemberDowned(a.with_status(MemberStatus.DOWN)),
        MemberUp(b),
        LeaderChanged(addr(2)),
    ]
    assert MembershipState.diff(new, new) == []
    gone = diff(new, gossip_of(b))
    assert gone == [MemberRemoved(a.with_status(MemberStatus.REMOVED), MemberStatus.DOWN)]


def test_concurrent_changes_merge() -> None:
    _, nodes = _form_cluster(4)
    # Two nodes change the state concurrently without talking to each other.
    nodes[1].state.set_unreachable(nodes[3].key, True)
    nodes[2].state.mark_leaving(nodes[2].key)
    g1, g2 = nodes[1].state.gossip, nodes[2].state.gossip
    assert g1.compare(g2) is VectorOrder.CONCURRENT
    merged = g1.merge(g2)
    assert merged.seen == ()
    assert merged.member(nodes[2].key).status is MemberStatus.LEAVING  # type: ignore[union-attr]
    assert not merged.is_reachable(nodes[3].key)
    assert compare_versions(g1.version, merged.version) is VectorOrder.BEFORE


def test_gossip_targets_prefer_unseen() -> None:
    a, b, c, d = mk(1), mk(2), mk(3), mk(4)
    state = MembershipState(a, Gossip(members=(a, b, c, d), seen=(a.key, b.key, c.key)))
    rng = random.Random(3)
    for _ in range(20):
        assert gossip_targets(state, rng) == [d]
    assert {m.key for m in gossip_targets(state, rng, fanout=2)} >= {d.key}
    assert len(gossip_targets(state, rng, fanout=10)) == 3
    assert gossip_targets(state, rng, fanout=0) == []
    state.gossip = state.gossip.mark_down(d.key).set_unreachable(a.key, c.key, True)
    for _ in range(20):
        assert gossip_targets(state, rng, fanout=3) == [b]


def test_prune_tombstones() -> None:
    a = mk(1)
    state = MembershipState(a, gossip_of(a), tombstone_ttl=100.0)
    state.gossip = state.gossip.remove("10.0.0.1:9#9", 50.0).bump("10.0.0.1:9#9")
    assert state.gossip.remove("10.0.0.1:9#9", 60.0) is state.gossip
    state.prune_tombstones(120.0)
    assert state.gossip.is_tombstoned("10.0.0.1:9#9")
    state.prune_tombstones(151.0)
    assert not state.gossip.is_tombstoned("10.0.0.1:9#9")
    assert "10.0.0.1:9#9" not in dict(state.gossip.version)


def test_self_member_after_removal() -> None:
    a, b = mk(1), mk(2)
    state = MembershipState(b, gossip_of(a, b))
    assert state.self_member == b
    events = state.apply_incoming(gossip_of(a, b).mark_down(b.key).bump(a.key))
    assert events == [MemberDowned(b.with_status(MemberStatus.DOWN))]
    removed = gossip_of(a).remove(b.key, 5.0).bump(a.key).bump(a.key)
    state.apply_incoming(removed)
    assert not state.is_member
    assert state.self_member.status is MemberStatus.REMOVED


# ---------------------------------------------------------------------------
# Keep-majority downing
# ---------------------------------------------------------------------------


def test_keep_majority_three_two() -> None:
    up = [addr(p) for p in range(1, 6)]
    majority, minority = up[2:], up[:2]  # the minority holds the lowest address: size still wins
    assert keep_majority_decision(up, majority) == "down_unreachable"
    assert keep_majority_decision(up, minority) == "down_self"


def test_keep_majority_tie_keeps_lowest_address() -> None:
    up = [addr(p) for p in range(1, 5)]
    assert keep_majority_decision(up, [addr(1), addr(4)]) == "down_unreachable"
    assert keep_majority_decision(up, [addr(2), addr(3)]) == "down_self"
    # Five members, one of them not UP on either side: a 2/2 tie among the UP ones.
    assert keep_majority_decision(up, [addr(2), addr(3), addr(5)]) == "down_self"


def test_keep_majority_nothing_to_resolve() -> None:
    up = [addr(p) for p in range(1, 4)]
    assert keep_majority_decision(up, up) == "wait"
    assert keep_majority_decision([], [addr(1)]) == "wait"
    assert keep_majority_decision(up, []) == "down_self"


def test_partition_resolved_by_keep_majority() -> None:
    sim, nodes = _form_cluster(5)
    minority, majority = nodes[:2], nodes[2:]
    for a in minority:
        for b in majority:
            sim.partitioned.add(frozenset((a.key, b.key)))
    for side, other in ((minority, majority), (majority, minority)):
        for observer in side:
            for subject in other:
                observer.events += observer.state.set_unreachable(subject.key, True)
    decisions = {}
    for node in nodes:
        state = node.state
        up = [m.address for m in state.cluster_state().up_members]
        mine = {s for o, s in state.gossip.unreachable if o == node.key}
        reachable = [m.address for m in state.gossip.members if m.key not in mine]
        decisions[node.key] = keep_majority_decision(up, reachable)
    assert [decisions[n.key] for n in minority] == ["down_self"] * 2
    assert [decisions[n.key] for n in majority] == ["down_unreachable"] * 3
    for node in majority:
        for victim in minority:
            node.events += node.state.mark_down(victim.key)
    for victim in minority:
        del sim.nodes[victim.key]
    sim.run_until(lambda: all(len(n.state.gossip.members) == 3 for n in majority) and sim.all_agree(majority))
    for node in majority:
        assert node.state.leader == addr(3)
        assert node.state.gossip.unreachable == ()
        removed = sorted(e.member.key for e in node.events if isinstance(e, MemberRemoved))
        assert removed == sorted(v.key for v in minority)


# ---------------------------------------------------------------------------
# Wire safety
# ---------------------------------------------------------------------------


def _assert_plain(value: object, path: str = "gossip") -> None:
    if isinstance(value, (bool, int, float, str)) or value is None:
        return
    if isinstance(value, enum.Enum):
        _assert_plain(value.value, f"{path}.value")
        return
    if isinstance(value, (tuple, frozenset)):
        for i, item in enumerate(value):
            _assert_plain(item, f"{path}[{i}]")
        return
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        assert type(value).__dataclass_params__.frozen, path  # type: ignore[attr-defined]
        for f in dataclasses.fields(value):
            _assert_plain(getattr(value, f.name), f"{path}.{f.name}")
        return
    raise AssertionError(f"{path}: {type(value).__name__} is not a plain message type")


def _busy_gossip() -> tuple[Gossip, list[MemberEvent], ClusterState]:
    sim, nodes = _form_cluster(4)
    nodes[1].state.set_unreachable(nodes[3].key, True)
    nodes[1].state.mark_down(nodes[2].key)
    nodes[0].state.apply_incoming(nodes[1].state.gossip)
    nodes[0].state.apply_incoming(nodes[1].state.gossip.seen_by(nodes[3].key).seen_by(nodes[2].key))
    events = nodes[0].state.leader_actions(sim.now)
    state = nodes[0].state
    assert state.gossip.tombstones and state.gossip.unreachable
    return state.gossip, [e for n in nodes for e in n.events] + events, state.cluster_state()


def test_messages_contain_only_plain_types() -> None:
    gossip, events, snapshot = _busy_gossip()
    _assert_plain(gossip)
    _assert_plain(snapshot)
    for event in events:
        _assert_plain(event)


def test_gossip_round_trips_through_msgpack() -> None:
    serde = pytest.importorskip("casty.serde")
    gossip, events, snapshot = _busy_gossip()

    def no_refs(ref: object) -> str:
        raise AssertionError("no actor refs expected")

    serializer = serde.MsgpackSerializer()
    encoder = serializer.new_encoder(no_refs)
    decoder = serializer.new_decoder(no_refs)
    assert decoder.decode(encoder.encode(NodeAddress("h", 1))) == NodeAddress("h", 1)
    for value in (gossip, snapshot, *events):
        decoded = decoder.decode(encoder.encode(value))
        assert decoded == value
    decoded_gossip = decoder.decode(encoder.encode(gossip))
    assert all(type(m.node) is NodeAddress for m in decoded_gossip.members)
    assert decoded_gossip.merge(gossip) == gossip


def test_decoded_addresses_become_node_addresses() -> None:
    assert type(LeaderChanged(("h", 1)).leader) is NodeAddress  # type: ignore[arg-type]
    assert LeaderChanged(None).leader is None
    assert type(ClusterState((), frozenset(), ("h", 1)).leader) is NodeAddress  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# Wire names
# ---------------------------------------------------------------------------


def test_cluster_types_keep_their_wire_names() -> None:
    """Types travel as ``module:qualname``; the cluster's keep the names they were first sent under."""
    from casty.cluster import _membership, _protocol, client_protocol, events, gossip, members, vector_clock
    from casty.serde import type_name
    from casty.serde._registry import lookup_loaded_class

    membership_types = [
        members.Member,
        members.MemberStatus,
        members.ClusterState,
        vector_clock.VectorOrder,
        gossip.Gossip,
        events.MemberJoined,
        events.MemberUp,
        events.MemberLeft,
        events.MemberExited,
        events.MemberDowned,
        events.MemberRemoved,
        events.UnreachableMember,
        events.ReachableMember,
        events.LeaderChanged,
    ]
    assert set(membership_types) == set(_membership.WIRE_TYPES)
    client_types = [
        client_protocol.ClientHello,
        client_protocol.ClientBye,
        client_protocol.ClientUpdate,
        client_protocol.RegistrySnapshot,
    ]
    node_types = [
        _protocol.InitJoin,
        _protocol.InitJoinAck,
        _protocol.Join,
        _protocol.Welcome,
        _protocol.GossipEnvelope,
        _protocol.Heartbeat,
        _protocol.HeartbeatAck,
        _protocol.RegistryDigest,
        _protocol.RegistryPull,
    ]
    for cls in membership_types:
        assert type_name(cls) == f"casty.cluster._membership:{cls.__name__}"
        assert lookup_loaded_class(type_name(cls)) is cls
    for cls in client_types + node_types:
        assert type_name(cls) == f"casty.cluster._protocol:{cls.__name__}"
        assert lookup_loaded_class(type_name(cls)) is cls


def test_cluster_messages_round_trip_under_their_wire_names() -> None:
    from casty.cluster._protocol import GossipEnvelope
    from casty.cluster.client_protocol import ClientUpdate, RegistrySnapshot
    from casty.serde import MsgpackSerializer

    a, b = mk(1, MemberStatus.UP), mk(2, MemberStatus.JOINING)
    gossip = Gossip(members=(a, b), version=((a.key, 1),), seen=(a.key,)).set_unreachable(a.key, b.key, True)
    serializer = MsgpackSerializer()
    encoder = serializer.new_encoder(lambda ref: ref.path)

    def no_refs(uri: str) -> Any:
        raise AssertionError(f"no actor refs in these messages, got {uri}")

    decoder = serializer.new_decoder(no_refs)
    for msg in (
        GossipEnvelope(a.key, gossip),
        ClientUpdate((a, b), (b.node,), (RegistrySnapshot(a.node, a.uid, 3, ()),)),
        ClusterState((a, b), frozenset({b.node}), a.node),
        MemberRemoved(b.with_status(MemberStatus.REMOVED), MemberStatus.DOWN),
    ):
        data = encoder.encode(msg)
        assert b"casty.cluster._" in data
        assert decoder.decode(data) == msg
