"""The node side of the client protocol: keeping connected ClusterClients up to date.

A client says :class:`~casty.cluster.client_protocol.ClientHello` to a node, which answers with
a :class:`~casty.cluster.client_protocol.ClientUpdate` (members, unreachable members, every
node's registrations) and pushes a new one after every membership or registry change, at most
once per loop turn, until the client says ``ClientBye`` or its connection is gone. An update
too large for one frame goes as :class:`~casty.cluster.client_protocol.ClientUpdatePart`
messages, which the client puts back together.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from casty.actors.ref import SystemAddress
from casty.cluster.client_protocol import ClientBye, ClientHello, ClientUpdate, ClientUpdatePart, split_update
from casty.cluster.registry_sync import push_delay

if TYPE_CHECKING:
    from casty.cluster.system import ClusteredActorSystem
    from casty.remote.transport import Association, Connection

__all__ = ["ClientService"]

log = logging.getLogger("casty.cluster")


class ClientService:
    """The clients one cluster node serves, by the address of their connection."""

    __slots__ = ("_next_push", "_push_scheduled", "_system", "_updates", "clients")

    def __init__(self, system: ClusteredActorSystem) -> None:
        self._system = system
        self.clients: dict[SystemAddress, str] = {}
        self._push_scheduled = False
        self._updates = 0
        #: loop time before which no push starts: pushes are paced by their own cost
        self._next_push = 0.0

    def send_update(self, address: SystemAddress, update: ClientUpdate) -> None:
        """Send ``update`` to the client at ``address``: whole when it fits a frame, else in parts."""
        transport = self._system.require_transport()
        for msg in self.messages(update):
            transport.send_control(address, msg)

    def messages(self, update: ClientUpdate) -> list[ClientUpdate | ClientUpdatePart]:
        """``update`` as the messages that carry it: itself, or its parts."""
        groups = split_update(update, self._system._replication.part_budget())
        if len(groups) == 1:
            return [update]
        self._updates += 1
        count = len(groups)
        return [
            ClientUpdatePart(
                self._updates,
                index,
                count,
                update.members if index == 0 else (),
                update.unreachable if index == 0 else (),
                registries,
            )
            for index, (registries, _) in enumerate(groups)
        ]

    def on_hello(self, conn: Connection, msg: ClientHello) -> None:
        assoc = conn.assoc
        if assoc is None:
            return
        if assoc.address not in self.clients:
            log.info("client %s connected", assoc.address)
        self.clients[assoc.address] = msg.client
        self.send_update(assoc.address, self.update())

    def on_bye(self, conn: Connection, msg: ClientBye) -> None:
        assoc = conn.assoc
        if assoc is not None and assoc.address in self.clients:
            log.info("client %s left", assoc.address)
            del self.clients[assoc.address]
            assoc.transport.mark_gone(assoc, "client left", level=logging.INFO)

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
            loop = self._system.loop
            loop.call_later(max(0.0, self._next_push - loop.time()), self._push)

    def _push(self) -> None:
        self._push_scheduled = False
        system = self._system
        transport = system.transport
        if transport is None or transport.closing or not self.clients or system.membership is None:
            return
        started = time.perf_counter()
        messages = self.messages(self.update())
        for address in list(self.clients):
            for msg in messages:
                transport.send_control(address, msg)
        self._next_push = system.loop.time() + push_delay(time.perf_counter() - started)
