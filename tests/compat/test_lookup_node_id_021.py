"""Programs written for casty 0.21: ``lookup(path, node=...)`` on a cluster node with every form
0.21 took for ``node``: another member's ``node_id``, a ``NodeAddress``, and ours besides."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import pytest

from casty import ActorContext, ActorRef, Behavior, Behaviors, NodeAddress
from casty.cluster.system import ClusteredActorSystem
from tests.cluster_app import fast_cluster_config
from tests.conftest import eventually

pytestmark = pytest.mark.timeout(60)


@dataclass(frozen=True)
class Name:
    reply_to: ActorRef[str]


def named(name: str) -> Behavior[Any]:
    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        if isinstance(msg, Name):
            msg.reply_to.tell(name)
        return Behaviors.same()

    return Behaviors.receive(receive)


def node_known(system: ClusteredActorSystem, node_id: str) -> bool:
    try:
        system.lookup("worker", node=node_id)
    except ValueError:
        return False
    return True


async def test_lookup_on_a_member_named_by_its_node_id() -> None:
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(
            ClusteredActorSystem(name="ids", host="127.0.0.1", port=0, node_id="node-a", config=fast_cluster_config("ids"))
        )
        b = await stack.enter_async_context(
            ClusteredActorSystem(
                name="ids",
                host="127.0.0.1",
                port=0,
                node_id="node-b",
                seed_nodes=[("127.0.0.1", a.port)],
                config=fast_cluster_config("ids"),
            )
        )
        await a.wait_for(2, timeout=20)
        a.spawn(named("on a"), "worker")
        b.spawn(named("on b"), "worker")

        await eventually(lambda: node_known(a, "node-b"), timeout=10, what="node-b's id known on node-a")
        remote = a.lookup("/worker", node="node-b")
        assert remote is not None and not remote.is_local
        assert remote.address.path == "/user/worker" and (remote.address.host, remote.address.port) == ("127.0.0.1", b.port)
        assert await a.ask(remote, lambda r: Name(reply_to=r), timeout=5.0) == "on b"
        # the same member by every other form gives the same ref
        assert a.lookup("worker", node=NodeAddress("127.0.0.1", b.port)) == remote
        assert a.lookup("worker", node=("127.0.0.1", b.port)) == remote
        assert a.lookup("worker", node=f"127.0.0.1:{b.port}") == remote
        (member,) = [m for m in (await a.get_cluster_state()).members if m.node == b.self_node]
        assert a.lookup("worker", node=member.id) == remote
        # and the other way round, and a node's own id is local
        await eventually(lambda: node_known(b, "node-a"), timeout=10, what="node-a's id known on node-b")
        back = b.lookup("worker", node="node-a")
        assert back is not None and await b.ask(back, lambda r: Name(reply_to=r), timeout=5.0) == "on a"
        assert a.lookup("worker", node="node-a") == a.lookup("worker")

        with pytest.raises(ValueError, match="unknown node 'node-z'"):
            a.lookup("worker", node="node-z")

        # a member that leaves takes its id with it
        await b.leave()
        await eventually(lambda: not node_known(a, "node-b"), timeout=20, what="node-b's id withdrawn")
