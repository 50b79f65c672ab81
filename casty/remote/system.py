"""RemoteActorSystem: an ActorSystem whose actors are reachable over TCP."""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

from casty.actors.ref import ActorRef, NodeAddress, SystemAddress, parse_uri
from casty.actors.system import ActorSystem
from casty.observe.http import Observer, start_observer
from casty.remote.inspection import install_inspection
from casty.remote.tls import client_context, server_context
from casty.remote.transport import RemoteTransport
from casty.serde import Serializer

if TYPE_CHECKING:
    from casty.config import CastyConfig

__all__ = ["RemoteActorSystem"]


class RemoteActorSystem(ActorSystem):
    """An actor system listening on ``bind_host:bind_port`` and advertised as ``host:port``
    (``bind_port`` defaults to ``port``; they differ behind a proxy or NAT).

    Refs to its actors print as ``casty://name@host:port/path`` and work from any process
    that can reach it; ``system.ref(uri)`` gives a ref to an actor in another process.
    ``port=0`` picks a free port (read it back from ``system.port`` after start).
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        bind_host: str | None = None,
        bind_port: int | None = None,
        config: CastyConfig | None = None,
        serializer: Serializer | None = None,
        ssl_server: ssl.SSLContext | None = None,
        ssl_client: ssl.SSLContext | None = None,
        listen: bool = True,
        kind: str = "node",
    ) -> None:
        super().__init__(name, config)
        tls = self.config.tls
        if ssl_server is None and tls.enabled and listen:
            ssl_server = server_context(tls)
        if ssl_client is None and tls.enabled:
            ssl_client = client_context(tls)
        self._transport_args: dict[str, Any] = {
            "host": host,
            "port": port,
            "bind_host": bind_host or None,
            "bind_port": bind_port,
            "serializer": serializer,
            "secret": self.config.security.resolve_secret(),
            "ssl_server": ssl_server,
            "ssl_client": ssl_client,
            "kind": kind,
            "listen": listen,
        }
        self.transport: RemoteTransport | None = None
        self._observer: Observer | None = None
        self.address = SystemAddress(self.name, host, port)

    async def start(self) -> None:
        if self.transport is not None:
            return
        await super().start()
        transport = RemoteTransport(self, self.config.remote, **self._transport_args)
        address = await transport.start()
        self.transport = transport
        self._rebind_address(address)
        install_inspection(transport)
        try:
            self._observer = await start_observer(self)
        except BaseException:
            await transport.close()
            self.transport = None
            raise

    @property
    def host(self) -> str:
        assert self.address.host is not None
        return self.address.host

    @property
    def port(self) -> int:
        return self.address.port or 0

    @property
    def self_node(self) -> NodeAddress:
        return NodeAddress(self.host, self.port)

    def ref(self, uri: str) -> ActorRef[Any]:
        """A ref from its URI: the local actor for this system's address, else a remote ref."""
        transport = self.require_transport()
        return transport.resolve_ref(uri)

    def remote_ref(self, host: str, port: int, path: str, system: str | None = None) -> ActorRef[Any]:
        transport = self.require_transport()
        return transport.remote_ref(SystemAddress(system or self.name, host, port), path)

    def require_transport(self) -> RemoteTransport:
        """The running transport (``RuntimeError`` before ``start``)."""
        if self.transport is None:
            raise RuntimeError("the system is not started; use `async with` or `await system.start()`")
        return self.transport


    def resolve_local(self, path: str) -> ActorRef[Any]:
        return super().resolve_local(path)

    async def _shutdown_services(self) -> None:
        await super()._shutdown_services()
        if self.transport is not None:
            await self.transport.close()
        if self._observer is not None:
            await self._observer.close()
            self._observer = None

    @staticmethod
    def parse(uri: str) -> tuple[SystemAddress, str]:
        return parse_uri(uri)
