"""Refs to actors in other processes, and the caches that keep turning URIs into refs cheap.

A :class:`RemoteTarget` is the :class:`~casty.actors.ref.RefTarget` behind a ref to a remote
actor: it hands messages and watches to the peer's association. :class:`RefCache` turns the
URIs that arrive on the wire into refs (local ones through the actor system's delivery API),
remembering parsed addresses and the refs of long-lived actors; per-peer refs are cached by
the association itself (:meth:`Association.ref`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from casty.actors.ref import ActorAddress, ActorRef, parse_uri
from casty.errors import DeserializationError

if TYPE_CHECKING:
    from casty.remote.association import Association
    from casty.remote.transport import RemoteTransport

__all__ = ["RefCache", "RemoteTarget"]

#: bounds of the caches: they are cleared when full, refs already handed out keep working
_REF_CACHE_LIMIT = 100_000
_ADDRESS_CACHE_LIMIT = 10_000


class RemoteTarget:
    """What a ref to an actor in another process points at.

    It binds to the peer's :class:`Association` on first use, and again if that association was
    dropped (the peer was declared gone, or it sat idle and was pruned): refs that arrive inside
    messages and are never used cost no association, so they cannot grow the transport's tables.
    """

    __slots__ = ("address", "assoc", "path", "transport")
    is_local = False

    def __init__(
        self, transport: RemoteTransport, address: ActorAddress, path: str, assoc: Association | None = None
    ) -> None:
        self.transport = transport
        self.address = address
        self.path = path
        self.assoc = assoc

    def bound(self) -> Association:
        assoc = self.assoc
        if assoc is None or assoc.gone:
            assoc = self.assoc = self.transport.association(self.address)
        return assoc

    def tell(self, msg: object) -> None:
        assoc = self.assoc
        if assoc is None or assoc.gone:
            assoc = self.bound()
        assoc.send(self.path, msg)

    def flush_with(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` just before the next outbound write to this actor's process (a
        stream producer fills the write with its elements, in the same loop turn)."""
        assoc = self.assoc
        if assoc is None or assoc.gone:
            assoc = self.bound()
        assoc.flush_with(callback)

    def add_watcher(self, watcher: ActorRef[Any]) -> bool:
        self.bound().add_watch(self.path, watcher)
        return True

    def remove_watcher(self, watcher: ActorRef[Any]) -> None:
        assoc = self.assoc
        if assoc is not None and not assoc.gone:
            assoc.remove_watch(self.path, watcher)


class RefCache:
    """URI -> ref for the decoders of every connection of one transport."""

    __slots__ = ("_addresses", "_refs", "transport")

    def __init__(self, transport: RemoteTransport) -> None:
        self.transport = transport
        self._refs: dict[str, ActorRef[Any]] = {}
        self._addresses: dict[str, ActorAddress] = {}

    def __len__(self) -> int:
        return len(self._refs)

    def resolve(self, uri: str) -> ActorRef[Any]:
        """Turn a URI from the wire into a ref: local actors resolve to themselves."""
        ref = self._refs.get(uri)
        if ref is not None:
            return ref
        transport = self.transport
        slash = uri.find("/", 8)
        address = self._addresses.get(uri[:slash]) if slash > 8 else None
        if address is not None:
            path = uri[slash:]
        else:
            try:
                address, path = parse_uri(uri)
            except ValueError as exc:
                raise DeserializationError(str(exc), "ActorRef") from None
            if len(self._addresses) < _ADDRESS_CACHE_LIMIT:
                self._addresses[uri[:slash]] = address
        if address.host is None or transport.is_self(address):
            actor = transport.system.local_actor(path)
            if actor is None:
                return transport.system.resolve_local(path)  # asks and dead refs are not cached
            ref = actor
        else:
            assoc = transport.associations.get(address)
            if assoc is not None:
                ref = assoc.ref(path)
            else:
                # bound to an association only when used: a ref that is merely passed along
                # costs no association
                target = RemoteTarget(transport, address, path)
                ref = ActorRef(address, path, target.tell, target)
            if path.startswith("/temp/"):
                return ref
        if len(self._refs) > _REF_CACHE_LIMIT:
            self._refs.clear()
        self._refs[uri] = ref
        return ref

    def forget(self, address: ActorAddress) -> None:
        """Drop the cached refs to actors of ``address`` (its association was dropped)."""
        for uri in [u for u, r in self._refs.items() if r.address == address]:
            del self._refs[uri]
