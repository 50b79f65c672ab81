"""DNS discovery: the seeds of a node are the current address records of a service name.

With ``[cluster] discovery = "dns"`` a node does not need seed addresses: it resolves
``cluster.service_name`` (the A/AAAA records an orchestrator keeps for a headless service)
every ``cluster.resolve_interval`` seconds while it joins, and every
``cluster.refresh_interval`` seconds after; each record is a contact at ``cluster.port`` (every
member listens on the same port, as pods of one StatefulSet do).

Joining, and forming exactly one cluster
    The node asks every contact whether it is an up member of a cluster (``InitJoin``); an up
    member answers ``InitJoinAck`` and the node joins through it. A contact that is not a member
    yet answers ``InitJoinNack``. When no cluster answers, the cluster is formed by one node
    only, the way Akka Cluster Bootstrap does it: the node whose address is the lowest of the
    contacts forms it (joins itself), and only once

    - its own address is among the records,
    - there are at least ``cluster.min_members`` contacts,
    - the set of contacts has not changed for ``cluster.stable_after`` seconds, and
    - every other contact has answered, since the set last changed, that it is not a member.

    Every other node keeps asking until the lowest one has formed the cluster and answers.
    Two nodes can only both form if each saw a different stable set of at least
    ``min_members`` records in which it was the lowest, so ``min_members`` should be the number
    of nodes started together (a majority of them at least).

The resolver is pluggable: anything with ``async def resolve(name) -> Sequence[str]`` returning
addresses (:class:`Resolver`); the default, :class:`GetaddrinfoResolver`, asks the system's
resolver through ``loop.getaddrinfo``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from casty.actors.ref import NodeAddress
from casty.cluster._protocol import InitJoin, InitJoinNack

if TYPE_CHECKING:
    from casty.cluster.system import ClusteredActorSystem
    from casty.remote.transport import Connection

__all__ = ["DnsDiscovery", "GetaddrinfoResolver", "Resolver", "node_order"]

log = logging.getLogger("casty.cluster.discovery")


@runtime_checkable
class Resolver(Protocol):
    """Where the records of a service name come from."""

    async def resolve(self, name: str) -> Sequence[str]:
        """The current addresses (A and AAAA records) of ``name``; empty when it has none.

        May raise ``OSError`` (a failed lookup), which the node logs and retries."""
        ...


class GetaddrinfoResolver:
    """The system resolver, through ``loop.getaddrinfo`` (A and AAAA records; ``/etc/hosts``
    too). A name that does not exist (yet) has no records."""

    async def resolve(self, name: str) -> Sequence[str]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(name, None, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)):
                return ()
            raise
        return sorted({str(info[4][0]) for info in infos})


def node_order(node: NodeAddress) -> tuple[int, int, str, int]:
    """Sort key of contacts: IP addresses by value (IPv4 before IPv6), then names; then port."""
    try:
        ip = ipaddress.ip_address(node.host)
    except ValueError:
        return (9, 0, node.host, node.port)
    return (ip.version, int(ip), "", node.port)


def _canonical(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return host


class DnsDiscovery:
    """Joins ``system`` to the cluster of the nodes found under ``cluster.service_name``."""

    def __init__(self, system: ClusteredActorSystem, resolver: Resolver) -> None:
        cfg = system.config.cluster
        self.system = system
        self.resolver = resolver
        self.service_name = cfg.service_name
        self.contacts: tuple[NodeAddress, ...] = ()
        """The contacts of the last successful resolution, lowest first."""
        self.formed = False
        """True when this node formed the cluster (it was the lowest of a stable set)."""
        self._answered: dict[NodeAddress, float] = {}
        self._stable_since = 0.0
        self._last_error = ""
        self._warned_absent = False

    # -- resolving ---------------------------------------------------------------------------
    async def resolve(self) -> tuple[NodeAddress, ...] | None:
        """The current contacts, lowest first; None when the lookup failed (logged once per
        distinct failure)."""
        cfg = self.system.config.cluster
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for returns the result of a lookup
            # that finished just as the task was cancelled, and the cancellation is lost (the
            # refresh loop then kept a shutting-down node waiting for it forever)
            async with asyncio.timeout(max(2.0, 4 * cfg.resolve_interval)):
                addresses = await self.resolver.resolve(self.service_name)
        except (OSError, TimeoutError) as exc:
            text = f"{type(exc).__name__}: {exc}"
            if text != self._last_error:
                log.warning("cannot resolve %r: %s (retrying)", self.service_name, text)
                self._last_error = text
            return None
        self._last_error = ""
        port = self.system.self_node.port
        found = {NodeAddress(_canonical(a), port) for a in addresses}
        contacts = tuple(sorted(found, key=node_order))
        if contacts != self.contacts:
            log.info(
                "%s resolves to %s", self.service_name, ", ".join(map(str, contacts)) if contacts else "no records"
            )
            self.contacts = contacts
            self._stable_since = self.system.loop.time()
            self.system.seed_nodes = contacts
        return contacts

    # -- joining -----------------------------------------------------------------------------
    def on_nack(self, conn: Connection, msg: InitJoinNack) -> None:
        self._answered[msg.node] = self.system.loop.time()

    def _may_form(self, contacts: tuple[NodeAddress, ...], me: NodeAddress) -> bool:
        cfg = self.system.config.cluster
        loop = self.system.loop
        stable = loop.time() - self._stable_since >= cfg.stable_after
        if me not in contacts:
            if contacts and stable and not self._warned_absent:
                log.warning(
                    "this node (%s) is not among the records of %r: it joins a cluster, never forms one",
                    me,
                    self.service_name,
                )
                self._warned_absent = True
            return False
        if len(contacts) < cfg.min_members or contacts[0] != me:
            return False
        if not stable:
            return False
        since = self._stable_since
        return all(self._answered.get(c, -1.0) >= since for c in contacts if c != me)

    async def join(self) -> None:
        """Return once this node is a member: joined through a contact that is one, or formed
        the cluster as the lowest of a stable set of contacts."""
        system = self.system
        state = system.membership
        assert state is not None
        cfg = system.config.cluster
        me = system.self_node
        rounds = 0
        while not state.is_member:
            contacts = await self.resolve()
            if state.is_member:
                break
            if contacts is not None:
                if self._may_form(contacts, me):
                    log.info(
                        "%s forms a new cluster: lowest of %d stable contacts of %r, none in a cluster",
                        me,
                        len(contacts),
                        self.service_name,
                    )
                    self.formed = True
                    system._form_cluster()
                    break
                for contact in contacts:
                    if contact != me:
                        system._send(contact, InitJoin(me))
            rounds += 1
            if rounds % max(1, int(10 / cfg.resolve_interval)) == 0:
                log.warning(
                    "%s still joining through %r (%d contacts, at least %d needed to form a cluster)",
                    me,
                    self.service_name,
                    len(self.contacts),
                    cfg.min_members,
                )
            await asyncio.sleep(cfg.resolve_interval)

    async def refresh(self) -> None:
        """Keep :attr:`contacts` current after joining (every ``cluster.refresh_interval``)."""
        interval = self.system.config.cluster.refresh_interval
        while True:
            await asyncio.sleep(interval)
            await self.resolve()
