"""``casty.core.system`` of casty 0.21."""

from __future__ import annotations

from casty.actors.system import ActorSystem

__all__ = ["ActorSystem"]
