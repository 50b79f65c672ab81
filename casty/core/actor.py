"""``casty.core.actor`` of casty 0.21: the context an actor's behavior gets."""

from __future__ import annotations

from casty.actors.context import ActorContext

CellContext = ActorContext
"""The concrete context handed to behaviors (the same class as ``ActorContext``)."""

__all__ = ["ActorContext", "CellContext"]
