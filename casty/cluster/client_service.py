"""The node side of the client protocol: keeping connected ClusterClients up to date.

A client says :class:`~casty.cluster.client_protocol.ClientHello` to a node, which answers with
a :class:`~casty.cluster.client_protocol.ClientUpdate` (members, unreachable members, every
node's registrations) and pushes a new one after every membership or registry change, at most
once per loop turn, until the client says ``ClientBye`` or its connection is gone.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from casty.actors.ref import ActorAddress
from casty.cluster.client_protocol import ClientBye, ClientHello, ClientUpdate

if TYPE_CHECKING:
    from casty.cluster.system import ClusteredActorSystem
    from casty.remote.transport import Association, Connection

__all__ = ["ClientService"]

log = logging.getLogger("casty.cluster")


class ClientService:
    """The clients one cluster node serves, by the address of their connection."""

    __slots__ = ("_push_scheduled", "_system", "clients")

    def __init__(self, system: ClusteredActorSystem) -> None:
        self._system = system
        self.clients: dict[ActorAddress, str] = {}
        self._push_scheduled = False

    def on_hello(self, conn: Connection, msg: ClientHello) -> None:
        assoc = conn.assoc
        if assoc is None:
            return
        if assoc.address not in self.clients:
            log.info("client %s connected", assoc.address)
        self.clients[assoc.address] = msg.client
        assoc.transport.send_control(assoc.address, self.update())

    def on_bye(self, conn: Connection, msg: ClientBye) -> None:
        assoc = conn.assoc
        if assoc is not None and assoc.address in self.clients:
            log.info("client %s left", assoc.address)
            del self.clients[assoc.address]
            assoc.transport.mark_gone(assoc, "client left")

    def on_transport_event(self, event: str, assoc: Association) -> None:
        if event == "gone" and assoc.address in self.clients:
            log.info("client %s is gone", assoc.address)
            del self.clients[assoc.address]

    def update(self) -> ClientUpdate:
        """What clients are told: this node's view of the members and of every registration."""
        state = self._system.membership
        assert state is not None
        unreachable = state.gossip.unreachable_keys
        return ClientUpdate(
            members=state.gossip.members,
            unreachable=tuple(m.node for m in state.gossip.members if m.key in unreachable),
            registries=tuple(self._system._replication.snapshots()),
        )

    def schedule_push(self) -> None:
        """Push an update to every client once this loop turn is over."""
        if self.clients and not self._push_scheduled:
            self._push_scheduled = True
            self._system.loop.call_soon(self._push)

    def _push(self) -> None:
        self._push_scheduled = False
        system = self._system
        transport = system.transport
        if transport is None or transport.closing or not self.clients or system.membership is None:
            return
        update = self.update()
        for address in list(self.clients):
            transport.send_control(address, update)
