"""``casty.core.ref`` of casty 0.21."""

from __future__ import annotations

from casty.actors.ref import ActorRef

__all__ = ["ActorRef"]
