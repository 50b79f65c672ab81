"""Clusters of 3 to 5 nodes in separate processes on loopback."""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import AsyncExitStack
from typing import Any

import pytest

from casty import (
    ActorContext,
    AskTimeoutError,
    Behavior,
    Behaviors,
    ClusteredActorSystem,
    EventStreamSubscribe,
    MemberLeft,
    MemberRemoved,
    MemberStatus,
    MemberUp,
    Terminated,
    UnreachableMember,
)
from casty.testkit import TestProbe
from tests.cluster_app import ECHO_KEY, LookupEcho, Ping, StopService, fast_cluster_config
from tests.procs import NodeProcess

pytestmark = pytest.mark.timeout(120)

NODE = "tests.cluster_node"
#: this file's clusters have a system name of their own: a node of a test running beside it in
#: another worker, given a port one of these nodes held before, is not taken for a member
SYSTEM = "cluster-tests"


def seed_of(system: ClusteredActorSystem) -> str:
    return f"127.0.0.1:{system.port}"


async def start_nodes(stack: AsyncExitStack, seed: str, n: int, name: str = SYSTEM) -> list[NodeProcess]:
    procs = [NodeProcess(NODE, "--name", name, "--seed", seed) for _ in range(n)]
    return list(await asyncio.gather(*(stack.enter_async_context(p) for p in procs)))


async def wait_listing(system: ClusteredActorSystem, count: int, timeout: float = 15.0) -> tuple[Any, ...]:
    """Await until the echo service has ``count`` instances (receptionist Subscribe, no polling)."""
    probe = TestProbe(system)
    from casty import Subscribe

    system.receptionist.tell(Subscribe(ECHO_KEY, probe.ref))
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        listing = await probe.receive(max(0.01, remaining))
        if len(listing.instances) == count:
            return tuple(sorted(listing.instances))


async def test_formation_discovery_and_deregistration() -> None:
    async with AsyncExitStack() as stack:
        seed = await stack.enter_async_context(
            ClusteredActorSystem(SYSTEM, "127.0.0.1", 0, config=fast_cluster_config(SYSTEM))
        )
        seed.spawn(Behaviors.discoverable(Behaviors.ignore(), key=ECHO_KEY), "local-svc")
        nodes = await start_nodes(stack, seed_of(seed), 3)
        await seed.wait_for(4, timeout=30)
        state = await seed.get_cluster_state()
        assert len(state.members) == 4 and all(m.status is MemberStatus.UP for m in state.members)
        assert state.leader is not None
        instances = await wait_listing(seed, 4)
        ports = {i.node.port for i in instances}
        assert ports == {seed.port, *(n.port for n in nodes)}
        # every discovered remote instance answers
        for inst in instances:
            if inst.node.port != seed.port:
                assert await seed.ask(inst.ref, lambda r: Ping(r), timeout=10) == str(inst.node)
        # every node sees every service
        for node in nodes:
            control = seed.remote_ref("127.0.0.1", node.port, "/user/control")
            for _ in range(100):
                seen = await seed.ask(control, lambda r: LookupEcho(r), timeout=10)
                if len(seen) == 4:
                    break
                await asyncio.sleep(0.05)
            assert len(seen) == 4
        # an actor that stops is deregistered everywhere
        victim = next(i for i in instances if i.node.port == nodes[0].port)
        victim.ref.tell(StopService())
        remaining = await wait_listing(seed, 3)
        assert victim.ref not in {i.ref for i in remaining}


async def test_kill_9_node_is_unreachable_then_removed_and_watchers_notified() -> None:
    # a system name of its own: its seed keeps dialing the killed node's port, which the kernel
    # may give to a node or proxy of another test running beside it
    async with AsyncExitStack() as stack:
        seed = await stack.enter_async_context(
            ClusteredActorSystem("kill9", "127.0.0.1", 0, config=fast_cluster_config("kill9"))
        )
        probe = TestProbe(seed)
        for event in (UnreachableMember, MemberRemoved):
            seed.event_stream.tell(EventStreamSubscribe(event, probe.ref))
        nodes = await start_nodes(stack, seed_of(seed), 2, name="kill9")
        await seed.wait_for(3, timeout=30)
        await wait_listing(seed, 2)
        victim = nodes[0]
        victim_svc = seed.remote_ref("127.0.0.1", victim.port, "/user/svc")
        watch_probe = TestProbe(seed)

        async def setup(ctx: ActorContext[Any]) -> Behavior[Any]:
            ctx.watch(victim_svc)

            async def receive(ctx: ActorContext[Any], msg: Any) -> None:
                watch_probe.ref.tell(msg)

            return Behaviors.receive(receive)

        seed.spawn(Behaviors.setup(setup), "watcher")
        assert await seed.ask(victim_svc, lambda r: Ping(r), timeout=10)  # the watch is in place
        started = time.monotonic()
        await victim.kill()
        unreachable = await probe.expect(UnreachableMember, timeout=20)
        detected = time.monotonic() - started
        assert unreachable.member.node.port == victim.port
        removed = await probe.expect(MemberRemoved, timeout=30)
        removed_after = time.monotonic() - started
        assert removed.member.node.port == victim.port
        terminated = await watch_probe.expect(Terminated, timeout=10)
        assert terminated.ref == victim_svc
        await wait_listing(seed, 1)
        state = await seed.get_cluster_state()
        assert {m.node.port for m in state.members} == {seed.port, nodes[1].port}
        logging.getLogger("casty.tests").info(
            "failure detected after %.2fs, removed after %.2fs", detected, removed_after
        )


async def test_graceful_leave_is_seen_at_once() -> None:
    async with AsyncExitStack() as stack:
        seed = await stack.enter_async_context(
            ClusteredActorSystem(SYSTEM, "127.0.0.1", 0, config=fast_cluster_config(SYSTEM, down_after=30.0))
        )
        probe = TestProbe(seed)
        for event in (MemberLeft, MemberRemoved, UnreachableMember):
            seed.event_stream.tell(EventStreamSubscribe(event, probe.ref))
        nodes = await start_nodes(stack, seed_of(seed), 2)
        await seed.wait_for(3, timeout=30)
        await wait_listing(seed, 2)
        leaver = nodes[1]
        started = time.monotonic()
        assert await leaver.stop() == 0
        left = await probe.expect(MemberLeft, timeout=10)
        assert left.member.node.port == leaver.port
        removed = await probe.expect(MemberRemoved, timeout=10)
        assert removed.member.node.port == leaver.port
        # removal came from the leave, long before down_after (30 s) could have downed it
        assert time.monotonic() - started < 10
        await wait_listing(seed, 1)


async def test_restart_on_same_port_is_a_new_incarnation() -> None:
    async with AsyncExitStack() as stack:
        seed = await stack.enter_async_context(
            ClusteredActorSystem(SYSTEM, "127.0.0.1", 0, config=fast_cluster_config(SYSTEM))
        )
        probe = TestProbe(seed)
        seed.event_stream.tell(EventStreamSubscribe(MemberUp, probe.ref))
        node = await NodeProcess(NODE, "--name", SYSTEM, "--seed", seed_of(seed)).start()
        try:
            await seed.wait_for(2, timeout=30)
            port, old_uid = node.port, node.info["uid"]
            svc = seed.remote_ref("127.0.0.1", port, "/user/svc")
            assert await seed.ask(svc, lambda r: Ping(r), timeout=10)
            await node.kill()
            node = await NodeProcess(NODE, "--name", SYSTEM, "--seed", seed_of(seed), "--port", str(port)).start()
            new_uid = node.info["uid"]
            assert new_uid != old_uid
            while True:
                up = await probe.expect(MemberUp, timeout=40)
                if up.member.uid == new_uid:
                    break
            state = await seed.get_cluster_state()
            at_port = [m for m in state.members if m.node.port == port]
            assert [m.uid for m in at_port] == [new_uid]
            assert await seed.ask(svc, lambda r: Ping(r), timeout=10) == f"127.0.0.1:{port}"
            await wait_listing(seed, 1)
        finally:
            await node.kill()


async def test_node_with_wrong_system_name_is_refused() -> None:
    async with AsyncExitStack() as stack:
        seed = await stack.enter_async_context(
            ClusteredActorSystem(SYSTEM, "127.0.0.1", 0, config=fast_cluster_config(SYSTEM))
        )
        intruder = ClusteredActorSystem(
            "other", "127.0.0.1", 0, seed_nodes=[("127.0.0.1", seed.port)], config=fast_cluster_config("other")
        )
        await stack.enter_async_context(intruder)
        with pytest.raises(TimeoutError):
            await intruder.wait_for(2, timeout=2.0)
        state = await seed.get_cluster_state()
        assert [m.node.port for m in state.members] == [seed.port]
        with pytest.raises(AskTimeoutError):
            await intruder.ask(intruder.remote_ref("127.0.0.1", seed.port, "/user/x", "other"), lambda r: r, 0.3)


async def test_five_node_cluster_in_process_and_processes() -> None:
    async with AsyncExitStack() as stack:
        seed = await stack.enter_async_context(
            ClusteredActorSystem(SYSTEM, "127.0.0.1", 0, config=fast_cluster_config(SYSTEM))
        )
        await start_nodes(stack, seed_of(seed), 4)
        await seed.wait_for(5, timeout=40)
        await wait_listing(seed, 4)
