"""A node strangers cannot starve: each attack runs from its own process against a node in
another, and during it fresh legitimate peers (new connection, handshake and ask) must be
answered within 1 s, every time.

Attackers connect from other loopback addresses (127.0.0.2 and up) than the legitimate peers
(127.0.0.1), as strangers on a network do. The programs are in ``tests/guard_app.py``.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from casty import (
    ActorContext,
    ActorRef,
    Behavior,
    Behaviors,
    CastyConfig,
    ClusteredActorSystem,
    EventStreamSubscribe,
    MemberDowned,
    MemberRemoved,
    RemoteActorSystem,
    UnreachableMember,
)
from casty.testkit import TestProbe
from tests.cluster_app import fast_cluster_config
from tests.conftest import eventually
from tests.guard_app import SYSTEM, rss_kib
from tests.procs import NodeProcess
from tests.remote_app import Echo, echo

pytestmark = pytest.mark.timeout(60)

#: how long fresh peers keep asking while an attack is in place
ASKING_FOR = 4.0


@asynccontextmanager
async def node_process(config: dict[str, Any] | None = None, seed: int | None = None) -> AsyncIterator[NodeProcess]:
    args = ["tests.guard_app", "node", json.dumps(config or {})]
    if seed is not None:
        args += ["--cluster", str(seed)]
    async with NodeProcess(*args) as node:
        yield node


@asynccontextmanager
async def attack(kind: str, port: int, count: int, source: str) -> AsyncIterator[NodeProcess]:
    async with NodeProcess("tests.guard_app", "attack", kind, str(port), str(count), source, ready_timeout=40) as proc:
        assert proc.info == {"ready": kind}
        yield proc


async def fresh_ask(port: int, n: int) -> float:
    """A new peer process-side: new system, new connection, handshake, one ask. Its duration."""
    started = time.monotonic()
    async with RemoteActorSystem(SYSTEM) as peer:
        ref = peer.ref(f"casty://{SYSTEM}@127.0.0.1:{port}/user/echo")
        assert await peer.ask(ref, lambda r: Echo(n, r), timeout=1.0) == n
        return time.monotonic() - started


async def fresh_peers_served(port: int, seconds: float = ASKING_FOR) -> list[float]:
    """Fresh peers ask one after another for ``seconds``; each must be answered within 1 s."""
    times: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        times.append(await fresh_ask(port, len(times)))
    assert max(times) < 1.0, times
    return times


def watch_then_forward(target: ActorRef[Any], notify: ActorRef[Any]) -> Behavior[Any]:
    async def setup(ctx: ActorContext[Any]) -> Behavior[Any]:
        ctx.watch(target)
        notify.tell("watching")

        async def receive(ctx: ActorContext[Any], msg: Any) -> None:
            notify.tell(msg)

        return Behaviors.receive(receive)

    return Behaviors.setup(setup)


async def test_handshaken_idle_connections_do_not_hold_every_slot() -> None:
    """256 hand-made connections complete the handshake (no secret) and send a Ping every 2 s:
    every slot of ``max_connections`` (256) is theirs, yet a fresh peer gets in at once (the
    least recently active of them makes room)."""
    async with node_process() as node:
        await fresh_ask(node.port, 0)
        async with attack("idle", node.port, 256, "127.0.0.2"):
            times = await fresh_peers_served(node.port)
        print(f"fresh peers during 256 idle handshaken connections: {len(times)} asks, max {max(times):.3f}s")


async def test_sockets_reopened_as_fast_as_dropped() -> None:
    """400 sockets that never send a byte, re-opened as soon as the node drops them."""
    async with node_process() as node:
        await fresh_ask(node.port, 0)
        async with attack("reopen", node.port, 400, "127.0.0.3"):
            times = await fresh_peers_served(node.port)
        print(f"fresh peers during the re-open flood: {len(times)} asks, max {max(times):.3f}s")


async def test_many_connections_held_open() -> None:
    """2,000 silent connections held open from eight addresses: more than the node keeps
    before authentication, so the pool is full; a fresh peer still gets a place."""
    sources = ",".join(f"127.0.0.{i}" for i in range(4, 12))
    async with node_process() as node:
        await fresh_ask(node.port, 0)
        async with attack("hold", node.port, 2000, sources):
            times = await fresh_peers_served(node.port)
        print(f"fresh peers during 2,000 held connections: {len(times)} asks, max {max(times):.3f}s")


async def test_partial_frames_are_bounded_node_wide() -> None:
    """20 handshaken connections each hold all but the last bytes of a 4 MiB frame: the node
    keeps at most ``max_partial_frame_bytes`` (16 MiB) of them, not 80 MiB."""
    async with node_process() as node:
        await fresh_ask(node.port, 0)
        before = rss_kib(node.info["pid"])
        async with attack("partial", node.port, 20, "127.0.0.12"):
            times = await fresh_peers_served(node.port)
            growth = (rss_kib(node.info["pid"]) - before) / 1024
        print(f"partial frames: node RSS +{growth:.1f} MB, fresh asks max {max(times):.3f}s")
        assert growth < 40, growth


@pytest.mark.parametrize("count", [60_000])
async def test_type_definitions_cost_little_and_do_not_stall(count: int) -> None:
    """Connections each defining ``count`` types (frames of 1,000 definitions of one real
    class): the budget refuses them at ``max_type_definitions``, definitions are not compiled
    one by one, and the node keeps answering."""
    async with node_process() as node:
        await fresh_ask(node.port, 0)
        before = rss_kib(node.info["pid"])
        async with attack("typedefs", node.port, count, "127.0.0.13"):
            times = await fresh_peers_served(node.port)
            growth = (rss_kib(node.info["pid"]) - before) / 1024
        print(f"type definitions: node RSS +{growth:.1f} MB, fresh asks max {max(times):.3f}s")
        assert growth < 30, growth


async def test_type_definitions_cannot_take_a_member_out_of_the_cluster() -> None:
    """120,000 type definitions at a time sent to a cluster member: the member keeps
    answering, and the other member never sees it unreachable, downed or removed."""
    async with ClusteredActorSystem(SYSTEM, "127.0.0.1", 0, config=fast_cluster_config(SYSTEM)) as seed:
        probe = TestProbe(seed)
        for event in (UnreachableMember, MemberDowned, MemberRemoved):
            seed.event_stream.tell(EventStreamSubscribe(event, probe.ref))
        cluster = {
            "cluster": {
                "down_after": 2.0,
                "retry_join_interval": 0.2,
                "gossip": {"interval": 0.2},
                "heartbeat": {"interval": 0.2, "availability_check_interval": 0.2},
                "failure_detector": {"threshold": 8.0, "acceptable_heartbeat_pause": 0.6},
            },
            "remote": {"reconnect_backoff_max": 0.3},
        }
        async with node_process(cluster, seed=seed.port) as member:
            await seed.wait_for(2, timeout=30)
            async with attack("typedefs", member.port, 120_000, "127.0.0.14"):
                times = await fresh_peers_served(member.port, 6.0)
            # nothing of the kind was published on the other member
            await probe.expect_no_message(0.5)
            state = await seed.get_cluster_state()
            assert len(state.members) == 2 and not state.unreachable
        print(f"cluster member under 120,000 type definitions: fresh asks max {max(times):.3f}s")


async def test_an_idle_connection_that_carries_nothing_is_closed() -> None:
    """``idle_timeout``: a peer that asked once and went quiet loses its connection (and gets
    a new one when it asks again); a peer that watches an actor here keeps its own."""
    cfg = CastyConfig.from_dict({"remote": {"idle_timeout": 1.0, "give_up_after": 2.0}})
    async with (
        RemoteActorSystem(SYSTEM, config=cfg) as node,
        RemoteActorSystem(SYSTEM) as quiet,
        RemoteActorSystem(SYSTEM) as watching,
    ):
        node.spawn(echo(), "echo")
        transport = node.transport
        assert transport is not None
        uri = f"{node.address}/user/echo"
        assert await quiet.ask(quiet.ref(uri), lambda r: Echo(1, r), timeout=5) == 1
        watched = watching.ref(uri)
        probe = TestProbe(watching)
        watching.spawn(watch_then_forward(watched, probe.ref), "watcher")
        assert await probe.receive(5) == "watching"

        def holds(peer: RemoteActorSystem) -> bool:
            return any(c.assoc is not None and c.assoc.address == peer.address for c in transport._established)

        await eventually(lambda: holds(watching), 5, what="the watching peer's connection")
        await eventually(lambda: len(transport._established) == 1, 10, what="the quiet peer's connection to close")
        (kept,) = transport._established
        assert kept.assoc is not None and kept.assoc.address == watching.address
        # once the quiet peer has seen its connection go, asking again opens a new one
        quiet_transport = quiet.transport
        assert quiet_transport is not None
        await eventually(
            lambda: all(a.conn is None for a in quiet_transport.associations.values()),
            5,
            what="the quiet peer to see its connection closed",
        )
        assert await quiet.ask(quiet.ref(uri), lambda r: Echo(2, r), timeout=5) == 2


async def test_large_frames_from_many_peers_all_arrive_under_a_small_partial_frame_budget() -> None:
    """Six peers send 2 MiB messages at once to a node whose budget for incomplete frames is
    1 MiB: connections wait their turn (the oldest incomplete frame always reads on), and
    every message arrives."""
    cfg = CastyConfig.from_dict({"remote": {"max_partial_frame_bytes": 1 << 20}})
    async with RemoteActorSystem(SYSTEM, config=cfg) as node:
        probe = TestProbe(node)
        uri = f"{node.address}{probe.ref.path}"
        peers = [RemoteActorSystem(SYSTEM) for _ in range(6)]
        try:
            for peer in peers:
                await peer.start()
            for i, peer in enumerate(peers):
                ref = peer.ref(uri)
                for j in range(3):
                    ref.tell(bytes([i * 3 + j]) * (2 << 20))
            got = sorted([(await probe.receive(20))[0] for _ in range(18)])
            assert got == list(range(18))
        finally:
            for peer in peers:
                await peer.shutdown()
        transport = node.transport
        assert transport is not None
        assert transport.guard.partial_bytes == 0
