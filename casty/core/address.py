"""``casty.core.address`` of casty 0.21."""

from __future__ import annotations

from casty.actors.ref import ActorAddress, NodeAddress, SystemAddress

__all__ = ["ActorAddress", "NodeAddress", "SystemAddress"]
