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

from casty.actors.events import Terminated
from casty.actors.ref import ActorRef, SystemAddress, parse_uri
from casty.errors import DeserializationError

if TYPE_CHECKING:
    from casty.remote.association import Association
    from casty.remote.transport import RemoteTransport

__all__ = ["GoneIncarnation", "RefCache", "RemoteTarget", "split_target", "target_key"]

#: separates a path from the incarnation it was obtained from in an envelope target
_INCARNATION_MARK = "\x00"


def target_key(path: str, incarnation: int) -> str:
    """What a message to ``path`` of incarnation ``incarnation`` (0: any) is queued and sent to:
    the path, followed for a known incarnation by a NUL and the incarnation in hex. The peer
    delivers it only if that is still its own incarnation."""
    return f"{path}{_INCARNATION_MARK}{incarnation:x}" if incarnation else path


def split_target(key: str) -> tuple[str, int]:
    """The path and incarnation of a :func:`target_key`; raises ValueError for a malformed one."""
    path, mark, incarnation = key.partition(_INCARNATION_MARK)
    if not mark:
        return path, 0
    return path, int(incarnation, 16)


class GoneIncarnation:
    """What a ref to an actor of an earlier incarnation of this very process points at: every
    message becomes a dead letter ("incarnation gone"), a watcher is told it terminated."""

    __slots__ = ("incarnation", "path", "system")
    is_local = True

    def __init__(self, transport: RemoteTransport, path: str, incarnation: int) -> None:
        self.system = transport.system
        self.path = path
        self.incarnation = incarnation

    def reason(self) -> str:
        return f"incarnation gone: {self.path} belonged to incarnation {self.incarnation:x} of this process"

    def ref(self) -> ActorRef[Any]:
        return ActorRef(self.system.address, self.path, self.tell, self, self.incarnation)

    def tell(self, msg: object) -> None:
        self.system.dead_letter(msg, self.ref(), self.reason())

    def add_watcher(self, watcher: ActorRef[Any]) -> bool:
        watcher.tell(Terminated(self.ref(), self.reason()))
        return True

    def remove_watcher(self, watcher: ActorRef[Any]) -> None:
        return None

#: bounds of the caches: they are cleared when full, refs already handed out keep working
_REF_CACHE_LIMIT = 100_000
_ADDRESS_CACHE_LIMIT = 10_000


class RemoteTarget:
    """What a ref to an actor in another process points at.

    It binds to the peer's :class:`Association` on first use, and again if that association was
    dropped (the peer was declared gone, or it sat idle and was pruned): refs that arrive inside
    messages and are never used cost no association, so they cannot grow the transport's tables.
    """

    __slots__ = ("address", "assoc", "incarnation", "key", "path", "transport")
    is_local = False

    def __init__(
        self,
        transport: RemoteTransport,
        address: SystemAddress,
        path: str,
        assoc: Association | None = None,
        incarnation: int = 0,
    ) -> None:
        self.transport = transport
        self.address = address
        self.path = path
        self.assoc = assoc
        #: the incarnation of the peer process the ref was obtained from (0: whichever is there)
        self.incarnation = incarnation
        #: what messages are sent to: the path, and the incarnation when it is known
        #: (``target_key``, inline: a RemoteTarget is made for every ask's reply)
        self.key = f"{path}{_INCARNATION_MARK}{incarnation:x}" if incarnation else path

    def bound(self) -> Association:
        assoc = self.assoc
        if assoc is None or assoc.gone:
            assoc = self.assoc = self.transport.association(self.address)
        return assoc

    def tell(self, msg: object) -> None:
        assoc = self.assoc
        if assoc is None or assoc.gone:
            assoc = self.bound()
        assoc.send(self.key, msg)

    def flush_with(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` just before the next outbound write to this actor's process (a
        stream producer fills the write with its elements, in the same loop turn)."""
        assoc = self.assoc
        if assoc is None or assoc.gone:
            assoc = self.bound()
        assoc.flush_with(callback)

    def add_watcher(self, watcher: ActorRef[Any]) -> bool:
        # the watch names the incarnation too: the peer answers Terminated at once when the
        # actor's incarnation is gone, instead of watching a stranger at the same path
        self.bound().add_watch(self.key, watcher)
        return True

    def remove_watcher(self, watcher: ActorRef[Any]) -> None:
        assoc = self.assoc
        if assoc is not None and not assoc.gone:
            assoc.remove_watch(self.key, watcher)


class RefCache:
    """URI -> ref for the decoders of every connection of one transport."""

    __slots__ = ("_addresses", "_peers", "_refs", "transport")

    def __init__(self, transport: RemoteTransport) -> None:
        self.transport = transport
        self._refs: dict[str | tuple[str, int], ActorRef[Any]] = {}
        self._addresses: dict[str, SystemAddress] = {}
        #: the entries of ``_addresses`` that are another process's (a host, not this one)
        self._peers: dict[str, SystemAddress] = {}

    def __len__(self) -> int:
        return len(self._refs)

    def resolve(self, uri: str, incarnation: int = 0) -> ActorRef[Any]:
        """Turn a URI from the wire into a ref: local actors resolve to themselves, refs of an
        earlier incarnation of this process to a :class:`GoneIncarnation`."""
        transport = self.transport
        slash = uri.find("/", 8)
        if slash > 8 and uri.startswith("/temp/", slash):
            # an ask's reply slot in a connected peer (never cached): straight to its association
            address = self._peers.get(uri[:slash])
            # ``address != transport.address``: ``is_self`` as a tuple comparison, for a peer
            # remembered before this transport knew its own port
            if address is not None and address != transport.address:
                assoc = transport.associations.get(address)
                if assoc is not None:
                    # ``assoc.temp_ref``, inline: this runs for every ask a peer makes
                    path = uri[slash:]
                    target = RemoteTarget(transport, address, path, assoc, incarnation)
                    return ActorRef(address, path, target.tell, target, incarnation)
        key = (uri, incarnation) if incarnation else uri
        ref = self._refs.get(key)
        if ref is not None:
            return ref
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
                if address.host is not None and not transport.is_self(address):
                    self._peers[uri[:slash]] = address
        if address.host is None or transport.is_self(address):
            if incarnation and incarnation != transport.uid:
                return GoneIncarnation(transport, path, incarnation).ref()
            actor = transport.system.local_actor(path)
            if actor is None:
                return transport.system.resolve_local(path)  # asks and dead refs are not cached
            ref = actor
        else:
            assoc = transport.associations.get(address)
            if assoc is not None:
                if path.startswith("/temp/"):
                    return assoc.temp_ref(path, incarnation)  # an ask's reply: not cached
                ref = assoc.ref(path, incarnation)
            else:
                # bound to an association only when used: a ref that is merely passed along
                # costs no association
                target = RemoteTarget(transport, address, path, None, incarnation)
                ref = ActorRef(address, path, target.tell, target, incarnation)
            if path.startswith("/temp/"):
                return ref
        if len(self._refs) > _REF_CACHE_LIMIT:
            self._refs.clear()
        self._refs[key] = ref
        return ref

    def forget(self, address: SystemAddress) -> None:
        """Drop the cached refs to actors of ``address`` (its association was dropped)."""
        for uri in [u for u, r in self._refs.items() if r.system_address == address]:
            del self._refs[uri]
