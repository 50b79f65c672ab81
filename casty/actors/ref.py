"""Actor references: the only handle user code holds on an actor."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

__all__ = ["ActorAddress", "ActorRef", "NodeAddress", "RefTarget", "SystemAddress", "parse_uri"]

M = TypeVar("M", contravariant=True)


class SystemAddress(NamedTuple):
    """Where an actor system lives: its name and, when it is reachable over TCP, host and port.

    The key the transport routes and associates by; an actor's own address is
    :class:`ActorAddress`.
    """

    system: str
    host: str | None = None
    port: int | None = None

    def __str__(self) -> str:
        if self.host is None:
            return f"casty://{self.system}"
        return f"casty://{self.system}@{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class ActorAddress:
    """Where an actor lives: its system, its path and, for a system reachable over TCP, the
    system's host and port (``None`` for a system without remoting).

    Its URI is ``casty://system@host:port/path``, or ``casty://system/path`` without host and
    port; :meth:`from_uri` reads both back. ``node_id`` is carried for the caller and is not
    part of the URI. ``ref.address`` of any :class:`ActorRef` is one of these.
    """

    system: str
    path: str
    host: str | None = None
    port: int | None = None
    node_id: str | None = None

    @property
    def is_local(self) -> bool:
        """True when the address has no host (its system is not reachable over TCP)."""
        return self.host is None

    @property
    def system_address(self) -> SystemAddress:
        """The address of the actor system this actor lives in."""
        return SystemAddress(self.system, self.host, self.port)

    def to_uri(self) -> str:
        """``casty://system@host:port/path``, or ``casty://system/path`` without host and port."""
        path = self.path if self.path.startswith("/") else f"/{self.path}"
        if self.host is None or self.port is None:
            return f"casty://{self.system}{path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"casty://{self.system}@{host}:{self.port}{path}"

    @staticmethod
    def from_uri(uri: str) -> ActorAddress:
        """Parse what :meth:`to_uri` produces; anything else raises ``ValueError``."""
        if not isinstance(uri, str):
            raise ValueError(f"an actor URI is a str, got {type(uri).__name__}")
        system, path = parse_uri(uri)
        return ActorAddress(system.system, path, system.host, system.port)

    def __str__(self) -> str:
        return self.to_uri()


class NodeAddress(NamedTuple):
    """A cluster node's advertised address."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse_uri(uri: str) -> tuple[SystemAddress, str]:
    """Split ``casty://system@host:port/path`` (or ``casty://system/path``) into the system's
    address and the path."""
    if not uri.startswith("casty://"):
        raise ValueError(f"not a casty actor URI (expected casty://system@host:port/path): {uri!r}")
    rest = uri[8:]
    slash = rest.find("/")
    if slash <= 0:
        raise ValueError(f"actor URI has no path: {uri!r}")
    authority, path = rest[:slash], rest[slash:]
    if "@" not in authority:
        return SystemAddress(authority), path
    system, _, hostport = authority.partition("@")
    host, sep, port_s = hostport.rpartition(":")
    if not sep or not system or not host or not port_s.isdigit():
        raise ValueError(f"malformed actor URI (expected casty://system@host:port/path): {uri!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return SystemAddress(system, host, int(port_s)), path


class RefTarget(Protocol):
    """What an :class:`ActorRef` delivers to: the seam between refs and whatever runs behind them.

    Implemented by a local actor's cell, an ask's promise, the event stream, the receptionist,
    the stand-in for a path with no actor, and a remote actor's target in the transport. Code
    outside ``casty.actors`` reaches a ref's target only through ``ref.target`` and these four
    members, never through the concrete classes.

    ``is_local``
        True when the target lives in this process.
    ``tell(msg)``
        Deliver or dead-letter ``msg``; never blocks and never raises for delivery reasons.
    ``add_watcher(watcher)``
        Arrange for ``watcher`` to be told ``Terminated`` when the target stops (at once if it
        already has). Returns False, registering nothing, when the target cannot be watched
        (an ask's promise, the event stream, the receptionist); the caller decides what that
        means for the watcher.
    ``remove_watcher(watcher)``
        Undo ``add_watcher``; a watcher that was never added is ignored.

    One optional member, looked up with ``getattr``: ``flush_with(callback)`` on a target that
    batches its outbound writes (a remote actor's) runs ``callback`` just before its next
    write, so what the callback tells goes out in the same loop turn.
    """

    @property
    def is_local(self) -> bool: ...

    def tell(self, msg: object, /) -> None: ...

    def add_watcher(self, watcher: ActorRef[Any], /) -> bool: ...

    def remove_watcher(self, watcher: ActorRef[Any], /) -> None: ...


class ActorRef(Generic[M]):
    """An address an actor can be told messages at.

    ``tell`` never blocks and never raises for delivery reasons: a message that cannot be
    delivered becomes a :class:`~casty.DeadLetter` event. Refs are hashable, compare by
    address and path, survive being sent inside messages, and print as their URI.
    """

    __slots__ = ("__weakref__", "_hash", "_target", "path", "system_address", "tell", "uid")

    _target: RefTarget
    tell: Callable[[M], None]
    system_address: SystemAddress
    path: str
    uid: int

    def __init__(
        self,
        system_address: SystemAddress,
        path: str,
        tell: Callable[[Any], None],
        target: RefTarget,
        uid: int = 0,
    ) -> None:
        self.system_address = system_address
        self.path = path
        self.tell = tell
        self.uid = uid
        self._target = target
        # computed on first use: most refs (an ask's reply slot, refs decoded from the wire)
        # are never hashed
        self._hash: int | None = None

    @property
    def address(self) -> ActorAddress:
        """The actor's address: its system, path and the system's host and port."""
        system = self.system_address
        return ActorAddress(system.system, self.path, system.host, system.port)

    @property
    def uri(self) -> str:
        """``casty://system@host:port/path`` (``casty://system/path`` for a system without remoting)."""
        return f"{self.system_address}{self.path}"

    @property
    def id(self) -> str:
        """The actor's id: its path below ``/user/`` for user actors (``"a/b"``, which
        ``system.lookup`` accepts), the path without its leading slash otherwise."""
        path = self.path
        return path[6:] if path.startswith("/user/") else path.lstrip("/")

    @property
    def name(self) -> str:
        """The last element of the path."""
        return self.path.rsplit("/", 1)[-1]

    @property
    def target(self) -> RefTarget:
        """What this ref delivers to (see :class:`RefTarget`)."""
        return self._target

    @property
    def is_local(self) -> bool:
        """True when this ref points into the process that holds it."""
        return self._target.is_local

    def __hash__(self) -> int:
        h = self._hash
        if h is None:
            h = self._hash = hash((self.system_address, self.path))
        return h

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ActorRef):
            return NotImplemented
        return self.path == other.path and self.system_address == other.system_address

    def __lt__(self, other: ActorRef[Any]) -> bool:
        return self.uri < other.uri

    def __repr__(self) -> str:
        return self.uri

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("ActorRef cannot be pickled directly; it is encoded as its URI by casty.serde")
