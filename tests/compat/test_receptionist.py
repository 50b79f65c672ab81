"""Programs written for casty 0.21: service discovery with a receptionist."""

from __future__ import annotations

from typing import Any

from casty import ActorContext, ActorSystem, Behavior, Behaviors, NodeAddress
from casty.cluster.receptionist import (
    Deregister,
    Find,
    Listing,
    Register,
    ServiceInstance,
    ServiceKey,
    Subscribe,
    receptionist_actor,
)
from casty.testkit import TestProbe

KEY: ServiceKey[Any] = ServiceKey("worker")


def worker() -> Behavior[Any]:
    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        return Behaviors.same()

    return Behaviors.receive(receive)


async def test_hand_spawned_receptionist_find_subscribe_and_stop() -> None:
    node = NodeAddress(host="127.0.0.1", port=2551)
    async with ActorSystem() as system:
        receptionist = system.spawn(
            receptionist_actor(self_node=node, system_name=system.name, event_stream=system.event_stream),
            "receptionist",
        )
        a = system.spawn(worker(), "a")
        b = system.spawn(worker(), "b")
        receptionist.tell(Register(key=KEY, ref=a))
        receptionist.tell(Register(key=KEY, ref=b))
        receptionist.tell(Register(key=ServiceKey("other"), ref=a))
        listing: Listing[Any] = await system.ask(receptionist, lambda r: Find(key=KEY, reply_to=r), timeout=5.0)
        assert isinstance(listing.instances, frozenset)
        assert listing.instances == frozenset({ServiceInstance(ref=a, node=node), ServiceInstance(ref=b, node=node)})

        probe = TestProbe(system)
        receptionist.tell(Subscribe(key=KEY, reply_to=probe.ref))
        assert len((await probe.expect(Listing)).instances) == 2
        await system.stop(a)  # a registered actor that stops leaves every listing
        assert {i.ref for i in (await probe.expect(Listing)).instances} == {b}
        other = await system.ask(receptionist, lambda r: Find(key=ServiceKey("other"), reply_to=r), timeout=5.0)
        assert other.instances == frozenset()
        receptionist.tell(Deregister(key=KEY, ref=b))
        assert (await probe.expect(Listing)).instances == frozenset()


async def test_system_receptionist_forgets_a_registered_actor_that_stops() -> None:
    async with ActorSystem() as system:
        a = system.spawn(worker(), "a")
        system.receptionist.tell(Register(key=KEY, ref=a))
        assert {i.ref for i in (await system.lookup(KEY)).instances} == {a}
        await system.stop(a)
        assert (await system.lookup(KEY)).instances == frozenset()
