"""ClusterClient against a cluster whose nodes run in separate processes."""

from __future__ import annotations

import asyncio
import logging
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
    Register,
    ServiceKey,
)
from casty.testkit import TestProbe
from tests.cluster_app import ECHO_KEY, Ping, fast_cluster_config
from tests.conftest import eventually
from tests.procs import NodeProcess
from tests.remote_app import AskIt, Echo, Forward, WatchIt, echo

pytestmark = pytest.mark.timeout(120)

NODE = "tests.cluster_node"
#: this file's clusters have a system name of their own: a node of a test running beside it in
#: another worker, given a port one of these nodes held before, is not taken for a member
SYSTEM = "client-tests"


async def cluster(stack: AsyncExitStack, extra_nodes: int) -> tuple[ClusteredActorSystem, list[NodeProcess]]:
    seed = await stack.enter_async_context(
        ClusteredActorSystem(SYSTEM, "127.0.0.1", 0, config=fast_cluster_config(SYSTEM))
    )
    seed.spawn(Behaviors.discoverable(_seed_service(), key=ECHO_KEY), "svc")
    procs = [NodeProcess(NODE, "--name", SYSTEM, "--seed", f"127.0.0.1:{seed.port}") for _ in range(extra_nodes)]
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
            ClusterClient([("127.0.0.1", nodes[0].port)], SYSTEM, config=client_config())
        )
        listing = await client.wait_for_service(ECHO_KEY, timeout=20, count=3)
        assert len(client.lookup(ECHO_KEY).instances) == 3
        assert {i.node.port for i in listing.instances} == {seed.port, *(n.port for n in nodes)}
        answers = sorted([await client.ask(i.ref, lambda r: Ping(r), timeout=10) for i in listing.instances])
        assert "seed" in answers and len(answers) == 3
        # an actor inside the client, reached by cluster nodes over the client's connections
        mine = client.spawn(echo(), "echo")
        assert mine.uri.startswith(f"casty://{SYSTEM}@client-")
        probe = TestProbe(client.system)
        forwarder = client.ref(f"casty://{SYSTEM}@127.0.0.1:{nodes[1].port}/user/forwarder")
        forwarder.tell(Forward(mine, Echo("from-the-cluster", probe.ref)))
        assert await probe.receive(10) == "from-the-cluster"
        # a cluster actor asks the client's actor
        asker = client.ref(f"casty://{SYSTEM}@127.0.0.1:{nodes[1].port}/user/asker")
        assert await client.ask(asker, lambda r: AskIt(mine, "ping-back", r), timeout=15) == "ping-back"
        # subscription to listing changes
        updates = client.listings(ServiceKey[Any]("echo"))
        first = await anext(updates)
        assert len(first.instances) == 3


async def test_contact_node_killed_client_moves_on(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with AsyncExitStack() as stack:
        seed, nodes = await cluster(stack, 2)
        contact = nodes[0]
        client = await stack.enter_async_context(
            ClusterClient([("127.0.0.1", contact.port)], SYSTEM, config=client_config())
        )
        await client.wait_for_service(ECHO_KEY, timeout=20, count=3)
        caplog.clear()
        await contact.kill()
        # the client reconnects through another member and sees the dead node's service go
        survivors = {seed.port, nodes[1].port}
        async for listing in client.listings(ECHO_KEY):
            if {i.node.port for i in listing.instances} == survivors:
                break
        await client.wait_connected(True, timeout=30)
        assert client.contact != ("127.0.0.1", contact.port)
        svc = client.ref(f"casty://{SYSTEM}@127.0.0.1:{nodes[1].port}/user/svc")
        assert await client.ask(svc, lambda r: Ping(r), timeout=10) == f"127.0.0.1:{nodes[1].port}"
        # the failover is logged once, accurately: which contact was lost, which member took over
        warnings = [r for r in caplog.records if r.name == "casty.client" and r.levelno >= logging.WARNING]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]
        message = warnings[0].getMessage()
        assert message.startswith(f"contact node 127.0.0.1:{contact.port} lost (")
        assert f"connected through {client.contact} after " in message
        moved_after = float(message.rsplit(" after ", 1)[1].rstrip("s"))
        assert moved_after < 3.0  # the lost node is tried last, not waited on first
        assert not [r for r in caplog.records if "no cluster member reachable" in r.getMessage()]


async def test_no_member_reachable_fails_fast_and_recovers() -> None:
    async with AsyncExitStack() as stack:
        seed = await stack.enter_async_context(
            ClusteredActorSystem(SYSTEM, "127.0.0.1", 0, config=fast_cluster_config(SYSTEM))
        )
        port = seed.port
        seed.spawn(Behaviors.discoverable(_seed_service(), key=ECHO_KEY), "svc")
        client = await stack.enter_async_context(ClusterClient([("127.0.0.1", port)], SYSTEM, config=client_config()))
        listing = await client.wait_for_service(ECHO_KEY, timeout=10)
        svc = sorted(listing.instances)[0].ref
        await seed.shutdown()
        await client.wait_connected(False, timeout=10)
        with pytest.raises(ClusterUnavailable):
            await client.ask(svc, lambda r: Ping(r), timeout=5)
        # the cluster comes back on the same port: the client reconnects by itself
        seed2 = await stack.enter_async_context(
            ClusteredActorSystem(SYSTEM, "127.0.0.1", port, config=fast_cluster_config(SYSTEM))
        )
        seed2.spawn(Behaviors.discoverable(_seed_service(), key=ECHO_KEY), "svc")
        # the restarted node is a new incarnation: its service comes with a new ref (the old
        # one would reach nothing there: refs carry the incarnation they were obtained from).
        # Until the new node's view arrives the client may still list the old ref.
        old_svc = svc

        def new_incarnation_listed() -> bool:
            return any(i.ref.uid != old_svc.uid for i in client.lookup(ECHO_KEY).instances)

        await eventually(new_incarnation_listed, timeout=20, what="the restarted node's service in the view")
        svc = sorted(client.lookup(ECHO_KEY).instances)[0].ref
        assert svc == old_svc and svc.uid != old_svc.uid
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
        client = ClusterClient([("127.0.0.1", seed.port)], SYSTEM, config=client_config())
        await client.start()
        try:
            mine = client.spawn(Behaviors.ignore(), "watched")
            watcher = client.ref(f"casty://{SYSTEM}@127.0.0.1:{nodes[0].port}/user/watcher")
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
            NodeProcess(
                "tests.client_node", "--name", SYSTEM, "--contact", f"127.0.0.1:{seed.port}", "--expect", "2"
            )
        )
        assert sorted(proc.info["answers"]) == sorted(["seed", f"127.0.0.1:{nodes[0].port}"])
        client_echo = seed.ref(proc.info["echo"])
        # the seed reaches the client's actor over the connection the client opened to it
        assert await seed.ask(client_echo, lambda r: Echo("to-client", r), timeout=10) == "to-client"


async def test_client_leaving_is_info_on_the_node(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with ClusteredActorSystem(SYSTEM, "127.0.0.1", 0, config=fast_cluster_config(SYSTEM)) as seed:
        async with ClusterClient([("127.0.0.1", seed.port)], SYSTEM, config=client_config()) as client:
            address = client.address
            await eventually(lambda: bool(seed._clients.clients), what="the node serving the client")
        await eventually(lambda: not seed._clients.clients, what="the node forgetting the client")
        about_client = [r for r in caplog.records if str(address) in r.getMessage()]
        assert any(r.levelno == logging.INFO and "left" in r.getMessage() for r in about_client)
        assert [r.getMessage() for r in about_client if r.levelno >= logging.WARNING] == []


async def test_untouched_client_closes_promptly() -> None:
    """``async with ClusterClient(...) as c: pass`` returns at once (Python 3.11's wait_for used to
    swallow the close's cancel, leaving the contact loop waiting forever)."""
    async with ClusteredActorSystem(SYSTEM, "127.0.0.1", 0, config=fast_cluster_config(SYSTEM)) as seed:
        loop = asyncio.get_running_loop()
        for _ in range(5):
            closing_at: list[float] = []

            async def open_and_close(closing_at: list[float] = closing_at) -> None:
                async with ClusterClient([("127.0.0.1", seed.port)], SYSTEM, config=client_config()):
                    closing_at.append(loop.time())

            await asyncio.wait_for(open_and_close(), 10)
            assert loop.time() - closing_at[0] < 1.5


@pytest.mark.timeout(240)
async def test_registry_larger_than_a_frame_reaches_members_and_clients() -> None:
    """One actor under 40,000 service keys with long names: a registry snapshot of several MB,
    over ``max_frame_size`` (the names alone are). Another member learns every key, and a
    client whose contact is that member connects and sees them all."""
    keys = 40_000

    def name(i: int) -> str:
        return f"key-{i:06d}-" + "x" * 100

    async with AsyncExitStack() as stack:
        # a node busy with a registry this large may miss a heartbeat or two: no downing here
        seed = await stack.enter_async_context(
            ClusteredActorSystem(SYSTEM, "127.0.0.1", 0, config=fast_cluster_config(SYSTEM, down_after=60.0))
        )
        node = await stack.enter_async_context(
            NodeProcess(NODE, "--name", SYSTEM, "--seed", f"127.0.0.1:{seed.port}", "--down-after", "60")
        )
        await seed.wait_for(2, timeout=30)
        assert seed.config.remote.max_frame_size == 4 * 1024 * 1024
        assert keys * len(name(0)) > seed.config.remote.max_frame_size
        target = seed.spawn(_seed_service(), "many")
        loop = asyncio.get_running_loop()
        started = loop.time()
        for i in range(keys):
            seed.receptionist.tell(Register(ServiceKey[Any](name(i)), target))
        await eventually(lambda: len(seed.registry.local) >= keys, timeout=30, what="local registrations")
        client = await stack.enter_async_context(
            ClusterClient([("127.0.0.1", node.port)], SYSTEM, config=client_config(), connect_timeout=60)
        )
        # the client's view is the other member's: every key arrived there, and then here (a
        # member busy with such a registry may be seen unreachable for a moment, hiding its keys)
        await eventually(
            lambda: len(client.registry.remote.get(seed.self_node, {})) == keys
            and seed.self_node not in client.unreachable,
            timeout=90,
            interval=0.1,
            what="every key in the client's view",
        )
        seen = [k for k in range(keys) if client.lookup(ServiceKey[Any](name(k))).instances]
        assert len(seen) == keys
        listing = client.lookup(ServiceKey[Any](name(0)))
        assert [i.ref for i in listing.instances] == [target]
        assert loop.time() - started < 120
        # and the registry still serves: a key registered afterwards arrives too
        seed.receptionist.tell(Register(ServiceKey[Any]("late"), target))
        await client.wait_for_service(ServiceKey[Any]("late"), timeout=60)
