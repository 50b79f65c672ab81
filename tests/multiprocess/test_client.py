"""ClusterClient against a cluster whose nodes run in separate processes."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any

import pytest

from casty import (
    ActorContext,
    AskTimeoutError,
    Behavior,
    Behaviors,
    ClusterClient,
    ClusteredActorSystem,
    ClusterUnavailable,
    ServiceKey,
)
from casty.testkit import TestProbe
from tests.cluster_app import ECHO_KEY, Ping, fast_cluster_config
from tests.procs import NodeProcess
from tests.remote_app import AskIt, Echo, Forward, WatchIt, echo

pytestmark = pytest.mark.timeout(120)

NODE = "tests.cluster_node"


async def cluster(stack: AsyncExitStack, extra_nodes: int) -> tuple[ClusteredActorSystem, list[NodeProcess]]:
    seed = await stack.enter_async_context(
        ClusteredActorSystem("cluster", "127.0.0.1", 0, config=fast_cluster_config())
    )
    seed.spawn(Behaviors.discoverable(_seed_service(), key=ECHO_KEY), "svc")
    procs = [NodeProcess(NODE, "--name", "cluster", "--seed", f"127.0.0.1:{seed.port}") for _ in range(extra_nodes)]
    nodes = list(await asyncio.gather(*(stack.enter_async_context(p) for p in procs)))
    await seed.wait_for(1 + extra_nodes, timeout=30)
    return seed, nodes


def _seed_service() -> Behavior[Any]:
    async def receive(ctx: ActorContext[Any], msg: Any) -> None:
        if isinstance(msg, Ping):
            msg.reply_to.tell("seed")

    return Behaviors.receive(receive)


def client_config() -> Any:
    from casty import CastyConfig

    return CastyConfig.from_dict(
        {"client": {"reconnect_backoff_min": 0.05, "reconnect_backoff_max": 0.5}, "remote": {"connect_timeout": 1.0}}
    )


async def test_lookup_spawn_tell_back_and_ask_both_ways() -> None:
    async with AsyncExitStack() as stack:
        seed, nodes = await cluster(stack, 2)
        client = await stack.enter_async_context(
            ClusterClient([("127.0.0.1", nodes[0].port)], "cluster", config=client_config())
        )
        listing = await client.wait_for_service(ECHO_KEY, timeout=20, count=3)
        assert len(client.lookup(ECHO_KEY).instances) == 3
        assert {i.node.port for i in listing.instances} == {seed.port, *(n.port for n in nodes)}
        answers = sorted([await client.ask(i.ref, lambda r: Ping(r), timeout=10) for i in listing.instances])
        assert "seed" in answers and len(answers) == 3
        # an actor inside the client, reached by cluster nodes over the client's connections
        mine = client.spawn(echo(), "echo")
        assert mine.uri.startswith("casty://cluster@client-")
        probe = TestProbe(client.system)
        forwarder = client.ref(f"casty://cluster@127.0.0.1:{nodes[1].port}/user/forwarder")
        forwarder.tell(Forward(mine, Echo("from-the-cluster", probe.ref)))
        assert await probe.receive(10) == "from-the-cluster"
        # a cluster actor asks the client's actor
        asker = client.ref(f"casty://cluster@127.0.0.1:{nodes[1].port}/user/asker")
        assert await client.ask(asker, lambda r: AskIt(mine, "ping-back", r), timeout=15) == "ping-back"
        # subscription to listing changes
        updates = client.listings(ServiceKey[Any]("echo"))
        first = await anext(updates)
        assert len(first.instances) == 3


async def test_contact_node_killed_client_moves_on() -> None:
    async with AsyncExitStack() as stack:
        seed, nodes = await cluster(stack, 2)
        contact = nodes[0]
        client = await stack.enter_async_context(
            ClusterClient([("127.0.0.1", contact.port)], "cluster", config=client_config())
        )
        await client.wait_for_service(ECHO_KEY, timeout=20, count=3)
        await contact.kill()
        # the client reconnects through another member and sees the dead node's service go
        survivors = {seed.port, nodes[1].port}
        async for listing in client.listings(ECHO_KEY):
            if {i.node.port for i in listing.instances} == survivors:
                break
        await client.wait_connected(True, timeout=30)
        assert client.contact != ("127.0.0.1", contact.port)
        svc = client.ref(f"casty://cluster@127.0.0.1:{nodes[1].port}/user/svc")
        assert await client.ask(svc, lambda r: Ping(r), timeout=10) == f"127.0.0.1:{nodes[1].port}"


async def test_no_member_reachable_fails_fast_and_recovers() -> None:
    async with AsyncExitStack() as stack:
        seed = await stack.enter_async_context(
            ClusteredActorSystem("cluster", "127.0.0.1", 0, config=fast_cluster_config())
        )
        port = seed.port
        seed.spawn(Behaviors.discoverable(_seed_service(), key=ECHO_KEY), "svc")
        client = await stack.enter_async_context(ClusterClient([("127.0.0.1", port)], "cluster", config=client_config()))
        listing = await client.wait_for_service(ECHO_KEY, timeout=10)
        svc = sorted(listing.instances)[0].ref
        await seed.shutdown()
        await client.wait_connected(False, timeout=10)
        with pytest.raises(ClusterUnavailable):
            await client.ask(svc, lambda r: Ping(r), timeout=5)
        # the cluster comes back on the same port: the client reconnects by itself
        seed2 = await stack.enter_async_context(
            ClusteredActorSystem("cluster", "127.0.0.1", port, config=fast_cluster_config())
        )
        seed2.spawn(Behaviors.discoverable(_seed_service(), key=ECHO_KEY), "svc")
        await client.wait_for_service(ECHO_KEY, timeout=20)
        for _ in range(100):
            try:
                assert await client.ask(svc, lambda r: Ping(r), timeout=1) == "seed"
                break
            except (ClusterUnavailable, AskTimeoutError):
                await asyncio.sleep(0.05)
        else:
            raise AssertionError("the client did not recover")


async def test_client_shutdown_seen_by_cluster_side_watcher() -> None:
    async with AsyncExitStack() as stack:
        seed, nodes = await cluster(stack, 1)
        probe = TestProbe(seed)
        client = ClusterClient([("127.0.0.1", seed.port)], "cluster", config=client_config())
        await client.start()
        try:
            mine = client.spawn(Behaviors.ignore(), "watched")
            watcher = client.ref(f"casty://cluster@127.0.0.1:{nodes[0].port}/user/watcher")
            watcher.tell(WatchIt(mine, probe.ref))
            assert (await probe.receive(10))[0] == "watching"
        finally:
            await client.close()
        kind, ref = await probe.receive(15)
        assert kind == "terminated" and ref.uri == mine.uri
        # the node forgot the client: no association left to it
        assert seed.transport is not None
        assert all(not a.address.host.startswith("client-") or a.gone for a in seed.transport.associations.values())


async def test_client_in_its_own_process() -> None:
    async with AsyncExitStack() as stack:
        seed, nodes = await cluster(stack, 1)
        proc = await stack.enter_async_context(
            NodeProcess("tests.client_node", "--contact", f"127.0.0.1:{seed.port}", "--expect", "2")
        )
        assert sorted(proc.info["answers"]) == sorted(["seed", f"127.0.0.1:{nodes[0].port}"])
        client_echo = seed.ref(proc.info["echo"])
        # the seed reaches the client's actor over the connection the client opened to it
        assert await seed.ask(client_echo, lambda r: Echo("to-client", r), timeout=10) == "to-client"
