"""Heartbeats between members and what the failure detector makes of them.

Every ``cluster.heartbeat.interval`` a member sends a :class:`~casty.cluster._protocol.Heartbeat`
to every other live or exiting member, which answers with a ``HeartbeatAck``; the acks feed a
phi-accrual detector per member.  Every ``availability_check_interval`` the verdicts are
recorded in the gossip: a member whose phi crosses the threshold is marked unreachable by this
observer, and reachable again when its heartbeats return.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from casty.actors.ref import NodeAddress
from casty.cluster._failure_detector import FailureDetectorRegistry
from casty.cluster._protocol import Heartbeat, HeartbeatAck
from casty.cluster.members import MemberStatus

if TYPE_CHECKING:
    from casty.cluster.system import ClusteredActorSystem
    from casty.remote.transport import Connection

__all__ = ["Heartbeats"]

log = logging.getLogger("casty.cluster")

_LIVE_OR_EXITING = (MemberStatus.JOINING, MemberStatus.UP, MemberStatus.LEAVING, MemberStatus.EXITING)


class Heartbeats:
    """One node's heartbeats and its failure detectors, one per other member."""

    __slots__ = ("_system", "detectors")

    def __init__(self, system: ClusteredActorSystem) -> None:
        self._system = system
        cluster = system.config.cluster
        self.detectors = FailureDetectorRegistry.from_config(
            cluster.failure_detector, first_heartbeat_estimate=cluster.heartbeat.interval
        )

    async def run(self) -> None:
        """Send heartbeats and check availability until cancelled."""
        system = self._system
        cfg = system.config.cluster.heartbeat
        next_check = 0.0
        while True:
            await asyncio.sleep(cfg.interval)
            try:
                state = system.membership
                if state is None or not state.is_member:
                    continue
                me = system.self_node
                now = time.monotonic()
                for member in state.gossip.members:
                    if member.node != me and member.status in _LIVE_OR_EXITING:
                        node = member.node
                        system._send(node, Heartbeat(me, now))
                        if system._held_back(node):
                            # This node does not read what that member sends (a mailbox here is
                            # too deep): its heartbeats and acks wait unread behind the rest, so
                            # its silence is ours. Count it as heard, and answer its heartbeats
                            # in advance so that it does not take this node for gone either.
                            system._send(node, HeartbeatAck(me, now))
                            self.detectors.heartbeat(node)
                if now >= next_check:
                    next_check = now + cfg.availability_check_interval
                    self.check_availability()
            except Exception:
                log.exception("heartbeat round failed")

    def on_heartbeat(self, conn: Connection, msg: Heartbeat) -> None:
        system = self._system
        state = system.membership
        if state is not None and state.gossip.members_at(msg.sender):
            system._send(msg.sender, HeartbeatAck(system.self_node, msg.sent_at))

    def on_ack(self, conn: Connection, msg: HeartbeatAck) -> None:
        self.detectors.heartbeat(msg.sender)

    def check_availability(self) -> None:
        """Record in the gossip which members this node's detectors now give up on, or trust again."""
        system = self._system
        state = system.membership
        assert state is not None
        me = state.self_key
        mine = {subject for observer, subject in state.gossip.unreachable if observer == me}
        for member in state.gossip.members:
            if member.key == me or member.status not in _LIVE_OR_EXITING:
                continue
            node = member.node
            if not self.detectors.is_monitoring(node):
                # start monitoring with a synthetic first heartbeat so a node that never
                # answers is still detected
                self.detectors.heartbeat(node)
                continue
            available = self.detectors.is_available(node)
            if not available and member.key not in mine:
                log.warning("%s is unreachable (phi %.1f)", node, self.detectors.phi(node))
                system._apply(state.set_unreachable(member.key, True))
            elif available and member.key in mine:
                log.info("%s is reachable again", node)
                system._apply(state.set_unreachable(member.key, False))

    def forget(self, node: NodeAddress) -> None:
        """Stop watching ``node``."""
        self.detectors.remove(node)
