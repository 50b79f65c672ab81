"""The service registry's replicas of other nodes' registrations."""

from __future__ import annotations

from typing import Any

from casty import ActorRef, ServiceKey, SystemAddress
from casty.actors.receptionist import Registry
from casty.actors.ref import NodeAddress

NODE = NodeAddress("10.0.0.1", 25520)
KEY: ServiceKey[Any] = ServiceKey("echo")


class _Target:
    """A ref target that records what it is told (the registry never tells it anything)."""

    def __init__(self) -> None:
        self.told: list[object] = []

    def tell(self, msg: object) -> None:
        self.told.append(msg)

    def is_local(self) -> bool:
        return False

    def add_watcher(self, watcher: ActorRef[Any]) -> None:
        pass

    def remove_watcher(self, watcher: ActorRef[Any]) -> None:
        pass


def _ref(uid: int) -> ActorRef[Any]:
    target = _Target()
    return ActorRef(SystemAddress("cluster", NODE.host, NODE.port), "/user/svc", target.tell, target, uid)


def test_a_restarted_nodes_registrations_replace_the_old_incarnations_refs() -> None:
    registry = Registry(lambda: None)
    old, new = _ref(1), _ref(2)
    assert old == new  # refs compare by address and path
    registry.set_node(NODE, {KEY.name: frozenset({old})})
    registry.set_node(NODE, {KEY.name: frozenset({new})})
    (instance,) = registry.listing(KEY).instances
    assert instance.ref.uid == 2


def test_an_unchanged_snapshot_notifies_nobody() -> None:
    registry = Registry(lambda: None)
    subscriber = _Target()
    registry.set_node(NODE, {KEY.name: frozenset({_ref(1)})})
    registry.subscribe(KEY, ActorRef(SystemAddress("local"), "/user/sub", subscriber.tell, subscriber))
    registry.set_node(NODE, {KEY.name: frozenset({_ref(1)})})
    assert len(subscriber.told) == 1  # the listing at subscription, nothing after
    registry.set_node(NODE, {KEY.name: frozenset({_ref(2)})})
    assert len(subscriber.told) == 2
