"""Service discovery: keys, listings and the registry behind ``lookup``.

The registry holds this process's own registrations and, in a cluster, the replicas other
nodes gossip; the cluster layer feeds those in and says which nodes are reachable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from casty.actors.ref import ActorRef, NodeAddress

if TYPE_CHECKING:
    from casty.actors.behaviors import Behavior
    from casty.actors.context import ActorContext

__all__ = [
    "Deregister",
    "Find",
    "Listing",
    "Register",
    "Registry",
    "ServiceInstance",
    "ServiceKey",
    "ReceptionistMsg",
    "Subscribe",
    "receptionist_actor",
]

M = TypeVar("M")


@dataclass(frozen=True)
class ServiceKey(Generic[M]):
    """Names a service; the type parameter is the message type its actors accept."""

    name: str

    def __repr__(self) -> str:
        return f"ServiceKey({self.name!r})"


@dataclass(frozen=True, order=True)
class ServiceInstance(Generic[M]):
    """One actor registered under a key, and the node it lives on (None outside a cluster)."""

    ref: ActorRef[M]
    node: NodeAddress | None = None


@dataclass(frozen=True)
class Listing(Generic[M]):
    """The instances registered under ``key`` at the time of the lookup (a ``frozenset``; ``refs``
    gives their refs in a deterministic order)."""

    key: ServiceKey[M]
    instances: frozenset[ServiceInstance[M]] = frozenset()

    def __post_init__(self) -> None:
        if type(self.instances) is not frozenset:
            object.__setattr__(self, "instances", frozenset(self.instances))

    @property
    def refs(self) -> tuple[ActorRef[M], ...]:
        """The instances' refs, sorted by URI."""
        return tuple(sorted(i.ref for i in self.instances))

    def __len__(self) -> int:
        return len(self.instances)

    def __bool__(self) -> bool:
        return True


@dataclass(frozen=True)
class Register(Generic[M]):
    """Register ``ref`` under ``key``; ``reply_to`` (optional) gets the key back as confirmation."""

    key: ServiceKey[M]
    ref: ActorRef[M]
    reply_to: ActorRef[ServiceKey[M]] | None = None


@dataclass(frozen=True)
class Deregister(Generic[M]):
    key: ServiceKey[M]
    ref: ActorRef[M]


@dataclass(frozen=True)
class Find(Generic[M]):
    """Reply once with the current ``Listing`` of ``key``."""

    key: ServiceKey[M]
    reply_to: ActorRef[Listing[M]]


@dataclass(frozen=True)
class Subscribe(Generic[M]):
    """Reply with the current ``Listing`` of ``key`` now and again on every change."""

    key: ServiceKey[M]
    reply_to: ActorRef[Listing[M]]


@dataclass
class _Entries:
    refs: set[ActorRef[Any]] = field(default_factory=set)


class Registry:
    """Local registrations plus replicas from other nodes; notifies subscribers of changes."""

    def __init__(self, self_node: Callable[[], NodeAddress | None]) -> None:
        self._self_node = self_node
        self.local: dict[str, set[ActorRef[Any]]] = {}
        self.remote: dict[NodeAddress, dict[str, frozenset[ActorRef[Any]]]] = {}
        self.hidden: set[NodeAddress] = set()
        self.subscribers: dict[str, set[ActorRef[Any]]] = {}
        self.keys: dict[str, ServiceKey[Any]] = {}
        self.on_local_change: Callable[[], None] | None = None

    # -- local registrations ---------------------------------------------------------------
    def register(self, key: ServiceKey[Any], ref: ActorRef[Any]) -> None:
        self.keys.setdefault(key.name, key)
        refs = self.local.setdefault(key.name, set())
        if ref not in refs:
            refs.add(ref)
            self._changed([key.name], local=True)

    def deregister(self, key: ServiceKey[Any], ref: ActorRef[Any]) -> None:
        refs = self.local.get(key.name)
        if refs is not None and ref in refs:
            refs.discard(ref)
            if not refs:
                del self.local[key.name]
            self._changed([key.name], local=True)

    def remove_ref(self, ref: ActorRef[Any]) -> None:
        """Drop ``ref`` from every local registration (it stopped)."""
        names = [name for name, refs in self.local.items() if ref in refs]
        for name in names:
            refs = self.local[name]
            refs.discard(ref)
            if not refs:
                del self.local[name]
        if names:
            self._changed(names, local=True)

    def local_snapshot(self) -> dict[str, frozenset[ActorRef[Any]]]:
        return {name: frozenset(refs) for name, refs in self.local.items()}

    # -- replicas from other nodes ---------------------------------------------------------
    def set_node(self, node: NodeAddress, entries: dict[str, frozenset[ActorRef[Any]]]) -> None:
        old = self.remote.get(node, {})
        if old == entries and _incarnations(old) == _incarnations(entries):
            # refs compare by address and path; the same registrations of a restarted node on
            # the same address are refs of its new incarnation, and replace the old ones
            return
        if entries:
            self.remote[node] = entries
        else:
            self.remote.pop(node, None)
        self._changed(set(old) | set(entries))

    def remove_node(self, node: NodeAddress) -> None:
        old = self.remote.pop(node, None)
        self.hidden.discard(node)
        if old:
            self._changed(list(old))

    def set_reachable(self, node: NodeAddress, reachable: bool) -> None:
        if reachable and node in self.hidden:
            self.hidden.discard(node)
        elif not reachable and node not in self.hidden:
            self.hidden.add(node)
        else:
            return
        entries = self.remote.get(node)
        if entries:
            self._changed(list(entries))

    # -- queries ---------------------------------------------------------------------------
    def listing(self, key: ServiceKey[M]) -> Listing[M]:
        me = self._self_node()
        instances: list[ServiceInstance[Any]] = [ServiceInstance(r, me) for r in self.local.get(key.name, ())]
        for node, entries in self.remote.items():
            if node in self.hidden:
                continue
            instances.extend(ServiceInstance(r, node) for r in entries.get(key.name, ()))
        return Listing(key, frozenset(instances))

    def subscribe(self, key: ServiceKey[Any], ref: ActorRef[Any]) -> None:
        self.keys.setdefault(key.name, key)
        self.subscribers.setdefault(key.name, set()).add(ref)
        ref.tell(self.listing(key))

    def unsubscribe_ref(self, ref: ActorRef[Any]) -> None:
        for subs in self.subscribers.values():
            subs.discard(ref)

    def _changed(self, names: Iterable[str], local: bool = False) -> None:
        for name in names:
            subs = self.subscribers.get(name)
            if subs:
                listing = self.listing(self.keys.get(name) or ServiceKey(name))
                for ref in list(subs):
                    ref.tell(listing)
        if local and self.on_local_change is not None:
            self.on_local_change()


def _incarnations(entries: dict[str, frozenset[ActorRef[Any]]]) -> dict[str, frozenset[tuple[ActorRef[Any], int]]]:
    """``entries`` with the incarnation each ref was obtained from beside it."""
    return {name: frozenset((ref, ref.uid) for ref in refs) for name, refs in entries.items()}


ReceptionistMsg = Register[Any] | Deregister[Any] | Find[Any] | Subscribe[Any]


def receptionist_actor(
    *,
    self_node: NodeAddress | None = None,
    system_name: str = "",
    event_stream: ActorRef[Any] | None = None,
) -> Behavior[ReceptionistMsg]:
    """A receptionist of its own, to spawn by hand (``system.receptionist`` is the system's).

    It answers ``Register``/``Deregister``/``Find``/``Subscribe`` from its own registry; its
    listings name ``self_node`` as the node of every instance. It watches every registered actor:
    one that stops leaves every listing it was in (subscribers are told), and a subscriber that
    stops is forgotten. ``system_name`` and ``event_stream`` are accepted for programs written
    for casty 0.21; death watch makes the event stream unnecessary, so they are not used.
    """
    from casty.actors.behaviors import Behaviors
    from casty.actors.events import Terminated

    async def setup(ctx: ActorContext[Any]) -> Behavior[Any]:
        if system_name or event_stream is not None:
            ctx.log.debug("receptionist_actor: system_name/event_stream are not needed here and are ignored")
        registry = Registry(lambda: self_node)
        keys_of: dict[ActorRef[Any], set[str]] = {}

        async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
            if isinstance(msg, Register):
                registry.register(msg.key, msg.ref)
                names = keys_of.setdefault(msg.ref, set())
                if not names:
                    ctx.watch(msg.ref)
                names.add(msg.key.name)
                if msg.reply_to is not None:
                    msg.reply_to.tell(msg.key)
            elif isinstance(msg, Deregister):
                registry.deregister(msg.key, msg.ref)
                registered = keys_of.get(msg.ref)
                if registered is not None:
                    registered.discard(msg.key.name)
            elif isinstance(msg, Find):
                msg.reply_to.tell(registry.listing(msg.key))
            elif isinstance(msg, Subscribe):
                registry.subscribe(msg.key, msg.reply_to)
                ctx.watch(msg.reply_to)
            elif isinstance(msg, Terminated):
                if msg.reason == "not watchable":
                    return Behaviors.same()  # a reply or probe ref: kept until deregistered
                registry.unsubscribe_ref(msg.ref)
                keys_of.pop(msg.ref, None)
                registry.remove_ref(msg.ref)
            else:
                return Behaviors.unhandled()
            return Behaviors.same()

        return Behaviors.receive(receive)

    return Behaviors.setup(setup)
