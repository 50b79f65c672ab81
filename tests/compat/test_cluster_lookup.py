"""Programs written for casty 0.21: ``lookup`` on a cluster node, by path (synchronous, optionally
on another member) and by service key (awaitable)."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import pytest

from casty import ActorContext, ActorRef, Behavior, Behaviors, NodeAddress, ServiceKey
from casty.cluster.system import ClusteredActorSystem
from tests.cluster_app import fast_cluster_config
from tests.conftest import eventually

pytestmark = pytest.mark.timeout(60)

KEY: ServiceKey[Any] = ServiceKey("named")


@dataclass(frozen=True)
class Name:
    reply_to: ActorRef[str]


def named(name: str) -> Behavior[Any]:
    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        if isinstance(msg, Name):
            msg.reply_to.tell(name)
        return Behaviors.same()

    return Behaviors.receive(receive)


async def test_cluster_lookup_by_path_node_and_key() -> None:
    async with AsyncExitStack() as stack:
        seed = await stack.enter_async_context(
            ClusteredActorSystem(name="lk", host="127.0.0.1", port=0, config=fast_cluster_config("lk"))
        )
        other = await stack.enter_async_context(
            ClusteredActorSystem(
                name="lk",
                host="127.0.0.1",
                port=0,
                seed_nodes=[("127.0.0.1", seed.port)],
                config=fast_cluster_config("lk"),
            )
        )
        await seed.wait_for(2, timeout=20)
        local = seed.spawn(Behaviors.discoverable(named("seed"), key=KEY), "worker")
        other.spawn(Behaviors.discoverable(named("other"), key=KEY), "worker")

        assert seed.lookup("/worker") == local
        assert seed.lookup("missing") is None
        assert seed.lookup("/worker", node=seed.self_node) == local
        remote = seed.lookup("/worker", node=NodeAddress(other.host, other.port))
        assert remote is not None and not remote.is_local
        assert await seed.ask(remote, lambda r: Name(reply_to=r), timeout=5.0) == "other"
        by_id = seed.lookup("worker", node=f"{other.host}:{other.port}")
        assert by_id == remote

        await eventually(lambda: len(seed.listing(KEY).instances) == 2, timeout=10, what="registrations replicated")
        listing = await seed.lookup(KEY, timeout=5.0)
        assert {i.node for i in listing.instances} == {seed.self_node, other.self_node}
        with pytest.raises(ValueError):
            seed.lookup("worker", node="not-a-node")
